/**
 * What workload W2 (test/bench/workloads.ts) costs the HOSTS, by measures the machine's load does not move:
 *   node dist/test/bench/host-cost.js [--hosts 1] [--old DIR] [--no-strace]
 *
 * For cairn's first run (clean tree), no-change rerun and --check, and for the W2 floor's sequential and
 * batched first run and probe (test/bench/floor-w2.ts):
 * - **host CPU**: user + system seconds of everything sshd runs for the hosts (the listeners, each
 *   connection's sshd, every session's shell and the processes it starts), from a cpuacct cgroup the listeners
 *   are put in (its children inherit it; exited processes stay counted);
 * - **controller CPU**: cairn's (or the floor's) own user + system seconds (GNU time);
 * - in a second pass under `strace -f` (its overhead is left out of the CPU figures above): **round trips**
 *   per host (session channels: a program sshd itself starts for a channel) and **processes exec'd** per host
 *   and per task, by program.
 * `--old DIR` measures another built checkout's cairn the same way (a before/after). Run as root (bench hosts,
 * cgroup, strace). Not part of `npm test`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { trackProcess } from './cleanup.js';
import { BENCH_USER, startBenchHosts } from './hosts.js';
import { measure, type Measured } from './measure.js';
import { w2, W2_ROOT, W2_TEMPLATE } from './workloads.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

const HOSTS = Number(option('hosts', '1'));
const OLD = option('old', '');
const STRACE = !process.argv.includes('--no-strace');
const TASKS = 20;
const CGROUP = `/sys/fs/cgroup/cpuacct/cairn-host-cost-${process.pid}`;

/** What strace saw: exec'd programs by name, and how many of them sshd started for a channel. */
export interface ExecCount {
  channels: number;
  /** Processes created (fork, vfork, clone), sshd's own included. */
  forks: number;
  execs: number;
  byProgram: Map<string, number>;
}

/**
 * Read `strace -f -e trace=execve,clone,clone3,fork,vfork` output (pid-prefixed lines). A program exec'd by a
 * process whose program is sshd, other than sshd itself (its re-exec per connection), is a session channel's
 * command: one round trip.
 */
export function countExecs(text: string, rootPids: number[], sshd: string): ExecCount {
  const program = new Map<number, string>(rootPids.map((pid) => [pid, sshd]));
  const pendingExec = new Map<number, string>();
  const count: ExecCount = { channels: 0, forks: 0, execs: 0, byProgram: new Map() };
  const exec = (pid: number, path: string): void => {
    const parentProgram = program.get(pid);
    program.set(pid, path);
    if (path === sshd) return;
    count.execs++;
    count.byProgram.set(basename(path), (count.byProgram.get(basename(path)) ?? 0) + 1);
    if (parentProgram === sshd) count.channels++;
  };
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const pid = Number(m[1]);
    const rest = m[2]!;
    const forked = /^(?:<\.\.\. )?(?:clone3?|fork|vfork)\b.*= (\d+)$/.exec(rest);
    if (forked) {
      program.set(Number(forked[1]), program.get(pid) ?? '?');
      count.forks++;
      continue;
    }
    const execStart = /^execve\("((?:[^"\\]|\\.)*)"/.exec(rest);
    if (execStart) {
      if (rest.endsWith('<unfinished ...>')) pendingExec.set(pid, execStart[1]!);
      else if (/\) = 0$/.test(rest)) exec(pid, execStart[1]!);
      continue;
    }
    if (/^<\.\.\. execve resumed>.*= 0$/.test(rest) && pendingExec.has(pid)) exec(pid, pendingExec.get(pid)!);
    if (/^<\.\.\. execve resumed>/.test(rest)) pendingExec.delete(pid);
  }
  return count;
}

function cgroupUsageNs(): bigint {
  return BigInt(readFileSync(join(CGROUP, 'cpuacct.usage'), 'utf8').trim());
}

function load(): string {
  return loadavg()[0]!.toFixed(2);
}

interface Row {
  name: string;
  hostCpu: number;
  controller: Measured;
  counts?: ExecCount;
}

async function main(): Promise<void> {
  const lab = await startBenchHosts(HOSTS);
  const listeners = spawnSync('pgrep', ['-f', `sshd -D -e -f ${lab.dir}/`], { encoding: 'utf8' })
    .stdout.trim()
    .split('\n')
    .filter((line) => line !== '')
    .map(Number);
  if (listeners.length === 0) throw new Error('no bench sshd found');
  mkdirSync(CGROUP);
  try {
    for (const pid of listeners) writeFileSync(join(CGROUP, 'cgroup.procs'), `${pid}\n`);
    const inventory = lab.writeInventory(HOSTS, 'inventory.yml');
    const templatePath = join(lab.dir, 'app.conf.j2');
    writeFileSync(templatePath, W2_TEMPLATE);
    const playbook = join(lab.dir, 'w2.yml');
    writeFileSync(playbook, w2(templatePath));
    const floorHosts = join(lab.dir, 'floor-w2.json');
    const hostList = lab.hosts.map((h) => ({ name: h.name, address: h.address, port: h.port }));
    writeFileSync(floorHosts, JSON.stringify({ user: lab.user, privateKeyPath: lab.clientKeyPath, hosts: hostList }));
    const clean = (): void => {
      if (existsSync(W2_ROOT)) rmSync(W2_ROOT, { recursive: true, force: true });
      mkdirSync(W2_ROOT, { recursive: true });
      spawnSync('chown', [`${BENCH_USER}:`, W2_ROOT]);
    };
    const cairn = (bin: string, check: boolean) => (): Promise<Measured> =>
      measure(
        process.execPath,
        [bin, 'play', playbook, '-i', inventory, '--no-journal', '-f', '20', ...(check ? ['--check'] : [])],
        { env: { CAIRN_STATE_DIR: join(lab.dir, 'state') } },
      );
    const floor = (mode: string, shape: string) => (): Promise<Measured> =>
      measure(process.execPath, [
        join(repoRoot, 'dist/test/bench/floor-w2.js'),
        floorHosts,
        mode,
        shape,
        '20',
        W2_ROOT,
      ]);

    /** Cases in order; `fresh` ones start on a clean tree, the others on what the one before left. */
    const builds: Array<[string, string]> = [['cairn', join(repoRoot, 'bin/cairn.js')]];
    if (OLD !== '') builds.push(['cairn old', join(resolve(OLD), 'bin/cairn.js')]);
    const cases: Array<{ name: string; fresh: boolean; run: () => Promise<Measured> }> = [
      { name: 'floor sequential first', fresh: true, run: floor('first', 'sequential') },
      { name: 'floor sequential probe', fresh: false, run: floor('probe', 'sequential') },
      { name: 'floor batched first', fresh: true, run: floor('first', 'batched') },
      { name: 'floor batched probe', fresh: false, run: floor('probe', 'batched') },
    ];
    for (const [label, bin] of builds) {
      cases.push(
        { name: `${label} first run`, fresh: true, run: cairn(bin, false) },
        { name: `${label} rerun`, fresh: false, run: cairn(bin, false) },
        { name: `${label} --check`, fresh: false, run: cairn(bin, true) },
      );
    }

    const rows = new Map<string, Row>();
    // Pass 1: CPU, no tracer.
    for (const c of cases) {
      if (c.fresh) clean();
      const before = cgroupUsageNs();
      const controller = await c.run();
      if (controller.code !== 0) throw new Error(`${c.name} failed (${controller.code}): ${controller.output}`);
      const hostCpu = Number(cgroupUsageNs() - before) / 1e9;
      rows.set(c.name, { name: c.name, hostCpu, controller });
      process.stderr.write(`  ${c.name}: host CPU ${hostCpu.toFixed(3)} s (load ${load()})\n`);
    }
    // Pass 2: counts under strace.
    if (STRACE) {
      for (const c of cases) {
        if (c.fresh) clean();
        const out = join(lab.dir, 'strace.out');
        const strace = spawn(
          'strace',
          [
            '-f',
            '-qq',
            '-s',
            '256',
            '-e',
            'trace=execve,clone,clone3,fork,vfork',
            '-e',
            'signal=none',
            '-o',
            out,
            ...listeners.flatMap((pid) => ['-p', String(pid)]),
          ],
          { stdio: ['ignore', 'ignore', 'inherit'] },
        );
        trackProcess(strace);
        await new Promise((r) => setTimeout(r, 500));
        const controller = await c.run();
        if (controller.code !== 0) throw new Error(`${c.name} failed under strace: ${controller.output}`);
        // Sessions end a moment after the client sees their channel close.
        await new Promise((r) => setTimeout(r, 300));
        strace.kill('SIGINT');
        await new Promise((r) => strace.once('exit', r));
        rows.get(c.name)!.counts = countExecs(readFileSync(out, 'utf8'), listeners, '/usr/sbin/sshd');
        rmSync(out, { force: true });
      }
    }

    console.log(`\nW2 host cost: ${HOSTS} host(s), ${TASKS} tasks, one run each (load now ${load()})`);
    console.log(
      '| case | host CPU s | controller CPU s | wall s | round trips per host | forks per host | execs per host | execs per task |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const row of rows.values()) {
      const n = row.counts;
      const cells = [
        row.name,
        row.hostCpu.toFixed(3),
        row.controller.cpuSeconds.toFixed(2),
        row.controller.wallSeconds.toFixed(2),
        n ? (n.channels / HOSTS).toFixed(1) : '-',
        n ? (n.forks / HOSTS).toFixed(1) : '-',
        n ? (n.execs / HOSTS).toFixed(1) : '-',
        n ? (n.execs / HOSTS / TASKS).toFixed(1) : '-',
      ];
      console.log(`| ${cells.join(' | ')} |`);
    }
    if (STRACE) {
      console.log('\nprocesses exec’d per host, by program:');
      for (const row of rows.values()) {
        const top = [...(row.counts?.byProgram ?? [])].sort((a, b) => b[1] - a[1]);
        console.log(`  ${row.name}: ${top.map(([p, k]) => `${p} ${(k / HOSTS).toFixed(0)}`).join(', ')}`);
      }
    }
  } finally {
    await lab.stop();
    try {
      rmdirSync(CGROUP);
    } catch {
      // A process of it is still exiting; the empty group is harmless.
    }
  }
}

await main();
