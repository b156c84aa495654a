/**
 * Migration steps against real sshd hosts: rsync runs ON the source host and logs into the target with a
 * one-off key (removed afterwards); a dry run writes nothing; batches resume after a kill -9; the checksum
 * comparison catches a file the copy's size+time check missed. Needs rsync on this machine (the test hosts
 * are sshd processes here).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../../runner/features/lab/preflight.js';
import type { MigrateEvidence, RolloutState } from '../../runner/features/rollout/types.js';
import { cairnBin, repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

// Missing sshd or rsync fails this file naming the package, never skips it (scripts/test-prereqs.sh installs both).
requireSshd();
if (!findExecutable('rsync'))
  throw new Error('rsync is not installed: apt-get install -y rsync (scripts/test-prereqs.sh does it)');

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Every regular file under `root`, relative path -> content. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (name === '.rsync-partial') continue;
      if (statSync(path).isDirectory()) walk(path);
      else out[relative(root, path)] = readFileSync(path, 'latin1');
    }
  };
  if (existsSync(root)) walk(root);
  return out;
}

describe('rollout migration steps', { timeout: 180_000 }, () => {
  let lab: TestSshLab;
  let stateDir: string;
  let checklist: string;
  let source: string;
  let target: string;
  const started: ChildProcess[] = [];

  beforeAll(async () => {
    lab = await startSshHosts(2, { names: ['old1', 'new1'] });
    // The test hosts share one authorized_keys file (see test/helpers/sshd.ts): tell cairn where it is.
    const authorizedKeys = join(lab.dir, 'authorized_keys');
    const inventory = lab.writeInventory(
      {},
      { old1: { cairn_authorized_keys_file: authorizedKeys }, new1: { cairn_authorized_keys_file: authorizedKeys } },
    );
    source = join(lab.hosts[0]!.dir, 'legacy');
    target = join(lab.hosts[1]!.dir, 'app-data');
    for (const d of ['a', 'b', 'c', 'd']) mkdirSync(join(source, d), { recursive: true });
    for (const d of ['a', 'b'])
      for (const f of ['f1', 'f2', 'f3']) writeFileSync(join(source, d, f), `${d}/${f} ${'x'.repeat(1000)}\n`);
    // Batch 2 holds 3 MiB, sent at 512 KiB/s: about 6 s, time to kill the run in the middle of it.
    writeFileSync(join(source, 'c', 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
    writeFileSync(join(source, 'd', 'note.txt'), 'd\n');
    writeFileSync(join(source, 'e.txt'), 'e\n');
    stateDir = join(lab.dir, 'state');
    checklist = join(lab.dir, 'rollout.yaml');
    writeFileSync(
      checklist,
      `inventory: ${inventory}
phases:
  - id: migration
    name: Migration
    days: D22-D28
    steps:
      - id: rehearsal
        name: Rehearsal
        migrate: { source: { host: old1, path: ${source} }, target: { host: new1, path: ${target} }, dry_run: true }
      - id: batches
        name: Batches
        migrate: { source: { host: old1, path: ${source} }, target: { host: new1, path: ${target} }, batches: 3, bwlimit_kib: 512 }
      - id: missing
        name: From a folder that is not there
        migrate: { source: { host: old1, path: ${join(lab.dir, 'nothing-here')} }, target: { host: new1, path: ${target} } }
    gate:
      steps: [rehearsal, batches]
`,
    );
  });
  afterAll(async () => {
    for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await lab?.stop();
  });

  const env = () => ({ CAIRN_STATE_DIR: stateDir, CAIRN_OPERATOR: 'ana' });
  const rollout = (args: string[]) =>
    runCairn(['rollout', ...args, '--checklist', checklist], { env: env(), timeoutMs: 180_000 });
  const state = (): RolloutState => JSON.parse(readFileSync(join(stateDir, 'rollout.json'), 'utf8')) as RolloutState;
  const authorizedKeys = () => readFileSync(join(lab.dir, 'authorized_keys'), 'utf8');
  /** rsync processes of this test still running (a killed run's rsync finishes its batch by itself). */
  const ourRsyncs = () => spawnSync('pgrep', ['-f', `rsync .*${source}`], { encoding: 'utf8' }).stdout.trim();

  it('a dry run reports what would go and writes nothing on the target', async () => {
    const r = await rollout(['run', 'rehearsal']);
    expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
    const ev = state().steps.rehearsal!.evidence as MigrateEvidence;
    expect(ev).toMatchObject({
      kind: 'migrate',
      dryRun: true,
      source: `old1:${source}/`,
      target: `new1:${target}/`,
      resumed: [],
    });
    expect(ev.batches).toHaveLength(1);
    expect(ev.batches[0]).toMatchObject({ name: '(whole folder)', filesTransferred: 9, files: 9 });
    expect(ev.batches[0]!.bytesTransferred).toBeGreaterThan(3 * 1024 * 1024);
    expect(existsSync(target)).toBe(false);
    // The one-off key is gone from the target and from the source's temp folder.
    expect(authorizedKeys()).not.toContain('cairn-migrate-');
    expect(state().steps.rehearsal!.migrateKeyDir).toBeUndefined();
  });

  it('batches resume after a kill -9, and the result is identical on the target', async () => {
    const child = spawn(process.execPath, [cairnBin, 'rollout', 'run', 'batches', '--checklist', checklist], {
      cwd: repoRoot,
      env: { ...process.env, ...env() },
      stdio: 'ignore',
    });
    started.push(child);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(state().steps.batches?.batchesDone ?? []).length) await sleep(50);
    expect(state().steps.batches).toMatchObject({ state: 'running', batchesDone: ['a', 'b'] });
    const keyDir = state().steps.batches!.migrateKeyDir!.path;
    expect(existsSync(keyDir)).toBe(true);
    process.kill(child.pid!, 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
    for (let i = 0; i < 200 && ourRsyncs(); i++) await sleep(100);
    // Killed mid-migration: the step reads back interrupted, the key is still authorised (nobody cleaned up).
    const status = await rollout(['status']);
    expect(status.stdout).toMatch(/INTERRUPTED\s+batches/);
    expect(authorizedKeys()).toContain('cairn-migrate-');

    const again = await rollout(['run', 'batches']);
    expect(again.code, again.stderr + again.stdout.slice(-2000)).toBe(0);
    expect(again.stdout).toContain('resuming: 2 entries already migrated by an earlier run');
    expect(again.stdout).toContain(`removed the one-off key ${keyDir} left on old1 by a run that was cut short`);
    const ev = state().steps.batches!.evidence as MigrateEvidence;
    expect(ev.resumed).toEqual(['a', 'b']);
    expect(ev.batches.map((b) => b.name)).toEqual(['c … d (2 entries)', 'e.txt']);
    expect(ev.batches.map((b) => b.checksums?.compared)).toEqual([2, 1]);
    expect(ev.batches.every((b) => b.checksums!.mismatched.length === 0 && b.checksums!.missing.length === 0)).toBe(
      true,
    );
    expect(tree(target)).toEqual(tree(source));
    expect(authorizedKeys()).not.toContain('cairn-migrate-');
    expect(existsSync(keyDir)).toBe(false);
    expect(state().steps.batches).toMatchObject({ state: 'done', runs: 2, batchesDone: ['a', 'b', 'c', 'd', 'e.txt'] });
  }, 180_000);

  it('the checksum comparison catches a file changed with the same size and time, and it is copied again', async () => {
    const file = join(target, 'a', 'f2');
    const original = readFileSync(file, 'utf8');
    const stat = statSync(file);
    writeFileSync(file, original.replace('a/f2', 'A/F2'));
    utimesSync(file, stat.atime, stat.mtime);
    // A done step runs from the start again: every batch, incrementally.
    const r = await rollout(['run', 'batches']);
    expect(r.code, r.stderr + r.stdout.slice(-2000)).toBe(0);
    expect(r.stdout).toContain(
      '1 file(s) differ by checksum after the copy (a/f2): copying them again with --checksum',
    );
    const ev = state().steps.batches!.evidence as MigrateEvidence;
    expect(ev.resumed).toEqual([]);
    expect(ev.batches[0]!.checksums).toEqual({ compared: 6, mismatched: [], missing: [], repaired: ['a/f2'] });
    expect(ev.batches[0]!.filesTransferred).toBe(0); // the copy's quick check did not see it
    expect(readFileSync(file, 'utf8')).toBe(original);
    const status = await rollout(['status']);
    expect(status.stdout).toContain(
      '3 batches, 0 files (0 B) sent, checksums of 9 files match (1 file copied again after a checksum mismatch)',
    );
  }, 120_000);

  it('a missing source folder fails the step with a clear message and leaves no key behind', async () => {
    const r = await rollout(['run', 'missing']);
    expect(r.code).toBe(2);
    expect(state().steps.missing).toMatchObject({
      state: 'failed',
      message: `old1: the source folder ${join(lab.dir, 'nothing-here')}/ does not exist`,
    });
    expect(authorizedKeys()).not.toContain('cairn-migrate-');
  });
});
