/**
 * A step cut short is `interrupted`, never `done`: kill -9 of a running `cairn rollout run` (the step reads
 * back as interrupted because its pid is gone), and Ctrl-C (the run stops starting tasks and records it).
 * Against real sshd hosts; the step is a play whose role sleeps on the hosts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../runner/features/rollout/types.js';
import { cairnBin, repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();
const playbook = join(repoRoot, 'test', 'fixtures', 'rollout', 'site.yaml');

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe('an interrupted rollout step', () => {
  let lab: TestSshLab;
  let stateDir: string;
  let checklist: string;
  const started: ChildProcess[] = [];

  beforeAll(async () => {
    lab = await startSshHosts(1, { names: ['slow1'] });
    const inventory = lab.writeInventory(
      { app: ['slow1'] },
      { slow1: { marker_dir: join(lab.hosts[0]!.dir, 'marker') } },
    );
    stateDir = join(lab.dir, 'state');
    checklist = join(lab.dir, 'rollout.yaml');
    writeFileSync(
      checklist,
      `inventory: ${inventory}
phases:
  - id: deploy
    name: Deploy
    days: D1
    steps:
      - id: slow
        name: A slow play
        play: { playbook: ${playbook}, extra_vars: { marker_sleep: 20 } }
      - id: after
        name: After it
        manual: ok
    gate:
      steps: [slow]
`,
    );
  });
  afterAll(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await lab?.stop();
  });

  const env = { CAIRN_STATE_DIR: '', CAIRN_OPERATOR: 'ana', NO_COLOR: '1' };
  const state = (): RolloutState | undefined => {
    const path = join(stateDir, 'rollout.json');
    return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as RolloutState) : undefined;
  };

  /** Start `cairn rollout run slow` and wait until its play is inside the sleeping task on the host. */
  async function startSlowRun(extra: string[] = []): Promise<{ child: ChildProcess; output: () => string }> {
    const before = journals();
    const child = spawn(process.execPath, [cairnBin, 'rollout', 'run', 'slow', '--checklist', checklist, ...extra], {
      cwd: repoRoot,
      env: { ...process.env, ...env, CAIRN_STATE_DIR: stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const st = state()?.steps.slow;
      if (st?.state === 'running' && st.pid === child.pid && sleepingTaskStarted(before))
        return { child, output: () => output };
      if (child.exitCode !== null) throw new Error(`the run ended early (${child.exitCode}): ${output}`);
      await sleep(100);
    }
    throw new Error(`the step never got to its sleeping task: ${output}`);
  }

  /** The run journal is written event by event: the newest one shows the sleeping task has started. */
  function journals(): string[] {
    const runs = join(stateDir, 'runs');
    return existsSync(runs)
      ? readdirSync(runs)
          .filter((n) => n.endsWith('.ndjson'))
          .map((n) => join(runs, n))
      : [];
  }

  function sleepingTaskStarted(before: string[]): boolean {
    const mine = journals().filter((j) => !before.includes(j));
    return mine.some((j) =>
      readFileSync(j, 'utf8')
        .split('\n')
        .some((line) => line.includes('"type":"task_start"') && line.includes('Take some time')),
    );
  }

  function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (child.exitCode !== null || child.signalCode !== null)
      return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
    return new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  }

  it('kill -9 mid-step leaves the step interrupted, never done, and it can run again', async () => {
    const { child, output } = await startSlowRun();
    expect(state()!.steps.slow).toMatchObject({ state: 'running', pid: child.pid, by: 'ana' });
    // Killed inside the 20 s task, not after it.
    expect(output()).not.toContain('Extra file exists');
    process.kill(child.pid!, 'SIGKILL');
    expect((await exited(child)).signal).toBe('SIGKILL');

    const status = await runCairn(['rollout', 'status', '--json', '--checklist', checklist], {
      env: { ...env, CAIRN_STATE_DIR: stateDir },
    });
    expect(status.code, status.stderr).toBe(0);
    const slow = (
      JSON.parse(status.stdout) as { phases: Array<{ steps: Array<{ id: string; state: string; message?: string }> }> }
    ).phases[0]!.steps[0]!;
    expect(slow).toMatchObject({
      id: 'slow',
      state: 'interrupted',
      message: `the run (pid ${child.pid}) ended without finishing the step: killed or crashed`,
    });
    const text = await runCairn(['rollout', 'status', '--checklist', checklist], {
      env: { ...env, CAIRN_STATE_DIR: stateDir },
    });
    expect(text.stdout).toMatch(/INTERRUPTED\s+slow/);
    expect(text.stdout).toContain('Next: cairn rollout run slow (again: it was interrupted) — A slow play');
    // The gate does not count it.
    const sign = await runCairn(['rollout', 'sign', 'after', '--by', 'ana', '--note', 'x', '--checklist', checklist], {
      env: { ...env, CAIRN_STATE_DIR: stateDir },
    });
    expect(sign.code).toBe(5);
    expect(sign.stderr).toContain('it comes after step "slow" (A slow play), which was interrupted');

    // Run again (quickly this time): the dead run's inventory lock is taken over, the step is done.
    const again = await runCairn(['rollout', 'run', 'slow', '-e', 'marker_sleep=0', '--checklist', checklist], {
      env: { ...env, CAIRN_STATE_DIR: stateDir },
    });
    expect(again.code, again.stderr + again.stdout.slice(-1000)).toBe(0);
    expect(again.stderr).toContain('took over a stale lock');
    expect(state()!.steps.slow).toMatchObject({ state: 'done', runs: 2 });
    expect(
      state()!
        .history.map((h) => h.event)
        .filter((e) => e !== 'started'),
    ).toEqual(['done']);
  }, 120_000);

  it('Ctrl-C lets the running task finish, starts no other, and records the step as interrupted', async () => {
    await runCairn(['rollout', 'reset', 'slow', '--checklist', checklist], {
      env: { ...env, CAIRN_STATE_DIR: stateDir },
    });
    const { child, output } = await startSlowRun(['-e', 'marker_sleep=3']);
    process.kill(child.pid!, 'SIGINT');
    const end = await exited(child);
    expect(end.code, output()).toBe(99);
    expect(state()!.steps.slow).toMatchObject({ state: 'interrupted', message: 'interrupted (Ctrl-C)' });
    expect(state()!.steps.slow!.pid).toBeUndefined();
    expect(output()).toContain('== rollout step slow: interrupted');
    // The sleeping task finished; the tasks after it never started.
    expect(output()).toMatch(/Take some time[^\n]*\n\s*ok: \[slow1\]/);
    expect(output()).not.toContain('Extra file exists');
  }, 120_000);
});
