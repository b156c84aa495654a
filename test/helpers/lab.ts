/**
 * For lab test files: bring the shared lab up (warm: seconds) and say why when this machine cannot run it;
 * run the CLI, scripts and drills against it (below). Lab files run one at a time (vitest.lab.config.ts), so
 * they may change the hosts freely; each file leaves the hosts as it found them where it can (drills restore
 * what they broke).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { labUp, type LabUpResult } from '../../runner/features/lab/index.js';
import { findExecutable } from '../../runner/features/lab/preflight.js';
import { defaultTopology, type LabTopology } from '../../runner/features/lab/topology.js';
import { jsonEvents, repoRoot, runCairn, type CliResult } from './cli.js';

export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return 'the lab needs root (bridge, overlay mounts, containers)';
  for (const [tool, pkg] of [
    ['systemd-nspawn', 'systemd-container'],
    ['debootstrap', 'debootstrap'],
    ['dpkg-scanpackages', 'dpkg-dev'],
    ['ssh', 'openssh-client'],
  ] as const) {
    if (!findExecutable(tool)) return `${tool} is missing (install ${pkg}, or run scripts/lab-prereqs.sh)`;
  }
  if (!existsSync('/proc/filesystems') || !readFileSync('/proc/filesystems', 'utf8').includes('overlay'))
    return 'the kernel has no overlayfs';
  return undefined;
}

let upResult: Promise<LabUpResult> | undefined;

/** The default lab (lb1 lb2 web1 web2 mon1, plus pve1-3 with withPve), up and answering SSH. */
export function ensureLab(opts: { withPve?: boolean } = {}): Promise<LabUpResult> {
  if (!upResult || opts.withPve)
    upResult = labUp({ withPve: opts.withPve, log: (line) => console.log(`lab: ${line}`) });
  return upResult;
}

/**
 * A lab file's `describe`: skipped, saying why, where this machine cannot run the lab; the shared lab up
 * (ensureLab) before the first test; what the tests push to `measured` printed after the last, as
 * "SUBJECT, measured:" (for the issue note). The title is "SUBJECT on the lab".
 */
export function describeOnLab(subject: string, body: (measured: string[]) => void): void {
  const unavailable = labUnavailable();
  describe.skipIf(Boolean(unavailable))(
    `${subject} on the lab${unavailable ? ` (skipped: ${unavailable})` : ''}`,
    () => {
      const measured: string[] = [];
      beforeAll(async () => {
        await ensureLab();
      });
      afterAll(() => {
        if (measured.length) console.log(`${subject}, measured:\n  ${measured.join('\n  ')}`);
      });
      body(measured);
    },
  );
}

/**
 * A one-VM topology for the VM test files (70-vm, 72-vm-zfs): the default lab's network, the VM beside the
 * shared container lab. 1536 MiB and one vCPU: enough for md, OpenZFS's ARC and base-tuning under TCG.
 * `zfs` boots the VM image with OpenZFS (built once, minutes; the base VM image is about one).
 */
export function vmTestTopology(
  name: string,
  address: string,
  groups: string[],
  disksGiB: number[],
  opts: { zfs?: boolean; source?: string } = {},
): LabTopology {
  return {
    ...defaultTopology(),
    source: opts.source ?? `test topology (${name})`,
    hosts: [
      {
        name,
        address,
        groups,
        devices: [],
        kind: 'vm',
        vm: { memoryMiB: 1536, cpus: 1, disksGiB: [...disksGiB], zfs: opts.zfs ?? false },
      },
    ],
  };
}

/** Limits for plays on a VM under TCG on a shared 2-core machine (slow): one run, and one test. */
export const VM_RUN: LabJsonOptions = { timeoutMs: 900_000, lockWaitMs: 600_000, ms: 'total' };
export const VM_TEST_TIMEOUT_MS = 1_200_000;

/** The VM files' measurements, printed by them for the issue note and docs/lab.md. */
export const vmSeconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/*
 * Running the CLI and scripts against the shared lab. Other engineers use the same containers while they
 * develop: their runs take the lab inventory's lock, their drills power hosts off and on. The helpers below
 * wait or retry for exactly those, and never for a failure of what a test runs.
 */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const LOCK_HELD = /another cairn run holds the lock/;

export interface LabCairnOptions {
  /** One attempt is killed after this long (default 240 s). */
  timeoutMs?: number;
  /** How long to keep retrying, every 2 s, while another cairn run holds the lock (default 600 s). */
  lockWaitMs?: number;
  /**
   * How many times a run that ended with a host unreachable (exit 4) is tried again, 15 s later (default 0).
   * For files whose hosts someone else's drill may power off mid-run; a role failure is never retried.
   */
  unreachableRetries?: number;
  env?: Record<string, string>;
}

/**
 * The built CLI, retried while another cairn run (someone else's, on the shared lab) holds the lock, and
 * with `unreachableRetries` when a host was unreachable. `attemptMs` is how long the last attempt took,
 * without the time spent waiting for the lock or before a retry.
 */
export async function labCairnTimed(
  args: string[],
  opts: LabCairnOptions = {},
): Promise<{ res: CliResult; attemptMs: number }> {
  const giveUpAt = Date.now() + (opts.lockWaitMs ?? 600_000);
  let unreachableRetries = opts.unreachableRetries ?? 0;
  for (;;) {
    const started = Date.now();
    const res = await runCairn(args, { timeoutMs: opts.timeoutMs ?? 240_000, env: opts.env });
    const attemptMs = Date.now() - started;
    if (res.code === 5 && LOCK_HELD.test(res.stderr) && Date.now() <= giveUpAt) {
      await sleep(2000);
      continue;
    }
    if (res.code === 4 && unreachableRetries-- > 0) {
      console.log(`cairn ${args.join(' ')}: a host was unreachable (someone else's drill?); retrying in 15 s`);
      await sleep(15_000);
      continue;
    }
    return { res, attemptMs };
  }
}

/** {@link labCairnTimed} for its result only. */
export async function labCairn(args: string[], opts: LabCairnOptions = {}): Promise<CliResult> {
  return (await labCairnTimed(args, opts)).res;
}

export interface LabJsonOptions extends LabCairnOptions {
  /**
   * What `ms` measures: 'attempt' (default) the last CLI attempt; 'total' the whole call, lock waits and
   * retries included; 'run' the run's own run_start..run_end (from when it got the lock; -1 without run_end).
   */
  ms?: 'attempt' | 'total' | 'run';
}

export interface LabJsonRun {
  res: CliResult;
  events: RunEvent[];
  ms: number;
}

/** {@link labCairn} with --json: the result, its events and a duration (see {@link LabJsonOptions.ms}). */
export async function labJson(args: string[], opts: LabJsonOptions = {}): Promise<LabJsonRun> {
  const started = Date.now();
  const { res, attemptMs } = await labCairnTimed([...args, '--json'], opts);
  const events = jsonEvents(res.stdout);
  let ms = attemptMs;
  if (opts.ms === 'total') ms = Date.now() - started;
  if (opts.ms === 'run')
    ms = events.find((e): e is Extract<RunEvent, { type: 'run_end' }> => e.type === 'run_end')?.durationMs ?? -1;
  return { res, events, ms };
}

export interface OnHostOptions {
  /** Default 60 s. */
  timeoutMs?: number;
  /** Return the output of a non-zero exit instead of failing the test. */
  allowFailure?: boolean;
}

/** A script on a lab host (as root over the lab's SSH, through the CLI): its exit code and output. */
export function runOnHost(host: string, script: string, opts: { timeoutMs?: number } = {}): Promise<CliResult> {
  return runCairn(['lab', 'ssh', host, '--', 'sh', '-c', script], { timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** A script on a lab host; its trimmed stdout. Fails the test on a non-zero exit unless allowed. */
export async function onHost(host: string, script: string, opts: OnHostOptions = {}): Promise<string> {
  const res = await runOnHost(host, script, opts);
  if (res.code !== 0 && !opts.allowFailure)
    throw new Error(`${host}: ${script}: exit ${res.code}: ${res.stderr}${res.stdout}`);
  return res.stdout.trim();
}

export type VerifyResult = Extract<RunEvent, { type: 'verify_result' }>;
export type DrillResult = Extract<RunEvent, { type: 'drill_result' }>;

export function verifyResults(events: RunEvent[]): VerifyResult[] {
  return events.filter((e): e is VerifyResult => e.type === 'verify_result');
}

export function failedVerifyResults(events: RunEvent[]): VerifyResult[] {
  return verifyResults(events).filter((v) => !v.passed);
}

/** Each failed verification as a line, "host: check: msg" unless `line` says otherwise. */
export function failedVerifies(
  events: RunEvent[],
  line: (v: VerifyResult) => string = (v) => `${v.host}: ${v.check}: ${v.msg ?? ''}`,
): string[] {
  return failedVerifyResults(events).map(line);
}

export function drillResult(events: RunEvent[]): DrillResult | undefined {
  return events.find((e): e is DrillResult => e.type === 'drill_result');
}

/**
 * `cairn drill NAME --set ...` with --json: its verdict, noted in `measured` (printed for the issue note).
 * Fails the test when there is no verdict, or when the exit code does not follow it (0 passed, 2 failed).
 */
export async function labDrill(
  name: string,
  set: string[],
  measured: string[],
  opts: LabCairnOptions = {},
): Promise<DrillResult> {
  const { res, events } = await labJson(['drill', name, ...set.flatMap((s) => ['--set', s])], opts);
  const result = drillResult(events);
  if (!result)
    throw new Error(`drill ${name}: no drill_result (exit ${res.code}): ${res.stderr}${res.stdout.slice(-2000)}`);
  measured.push(
    `${name}${set.length ? ` (${set.join(' ')})` : ''}: ${result.passed ? 'PASS' : 'FAIL'} ${JSON.stringify(result.measured)}`,
  );
  expect(res.code, `exit code follows the verdict: ${result.msg}`).toBe(result.passed ? 0 : 2);
  return result;
}

/**
 * One idle root session per address until the returned function ends them (call it in afterAll). The lab's
 * hosts stop root's systemd user manager when its last session closes, and under load that stop can outlast
 * SSH's keepalive window (measured: a login waiting 15 s behind "user@0.service: Failed with result
 * 'timeout'"). Holding a session open keeps the manager up; nothing on the hosts is changed. The sessions
 * are ended by PID, only those still running.
 */
export function holdRootSessions(addresses: readonly string[]): () => void {
  const generated = join(repoRoot, 'inventories', 'lab', 'generated');
  const keepers: ChildProcess[] = addresses.map((address) =>
    spawn(
      'ssh',
      [
        '-i',
        join(generated, 'id_ed25519'),
        '-o',
        `UserKnownHostsFile=${join(generated, 'known_hosts')}`,
        '-o',
        'BatchMode=yes',
        '-o',
        'ServerAliveInterval=30',
        `root@${address}`,
        'sleep 3600',
      ],
      { stdio: 'ignore' },
    ),
  );
  return () => {
    for (const child of keepers)
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  };
}
