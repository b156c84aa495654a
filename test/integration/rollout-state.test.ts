/**
 * The rollout state file: concurrent writers in separate processes never lose an update (the lock), a
 * reader never sees a half-written file (temp + rename), and a step whose process is gone reads back as
 * interrupted, never done.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../runner/core/util/paths.js';
import { loadState, updateState } from '../../runner/features/rollout/state.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-rollout-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stateModule = join(packageRoot(), 'dist', 'runner', 'features', 'rollout', 'state.js');

/** A node process that appends `count` history entries named `who`, one locked update each. */
function writer(path: string, who: string, count: number): Promise<number> {
  const script = `
    const { updateState } = await import(${JSON.stringify(stateModule)});
    for (let i = 0; i < ${count}; i++) {
      await updateState(${JSON.stringify(path)}, (s) => { s.history.push({ at: new Date().toISOString(), step: ${JSON.stringify(who)}, event: String(i) }); });
    }`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(code) : reject(new Error(`writer ${who} exited ${code}: ${stderr}`)),
    );
  });
}

if (!existsSync(stateModule))
  throw new Error('dist/ is not built: run `npx tsc -p tsconfig.json` first (npm test does)');
describe('rollout state', () => {
  it('four processes writing at once lose no update and leave no temp file behind', async () => {
    const path = join(dir, 'concurrent', 'rollout.json');
    await Promise.all(['a', 'b', 'c', 'd'].map((who) => writer(path, who, 15)));
    const state = loadState(path);
    expect(state.history).toHaveLength(60);
    for (const who of ['a', 'b', 'c', 'd']) {
      // Each writer's own entries are all there, in its order.
      expect(state.history.filter((h) => h.step === who).map((h) => h.event)).toEqual(
        Array.from({ length: 15 }, (_, i) => String(i)),
      );
    }
    expect(readdirSync(join(dir, 'concurrent')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    // The lock file is gone once the writers are.
    expect(readdirSync(join(dir, 'concurrent', 'locks'))).toEqual([]);
  }, 120_000);

  it('a step whose process is gone reads back as interrupted', async () => {
    const path = join(dir, 'dead', 'rollout.json');
    // A real pid that has exited.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    await updateState(path, (s) => {
      s.steps.apply = { state: 'running', runs: 1, startedAt: '2026-03-02T09:00:00Z', pid: deadPid, host: hostname() };
      s.steps.alive = {
        state: 'running',
        runs: 1,
        startedAt: '2026-03-02T09:00:00Z',
        pid: process.pid,
        host: hostname(),
      };
    });
    const state = loadState(path);
    expect(state.steps.apply).toMatchObject({
      state: 'interrupted',
      message: `the run (pid ${deadPid}) ended without finishing the step: killed or crashed`,
    });
    expect(state.steps.alive!.state).toBe('running');
    // On disk it still says running until the next write: it is judged on every read.
    expect(JSON.parse(readFileSync(path, 'utf8')).steps.apply.state).toBe('running');
  });

  it('a change that throws writes nothing; a broken file is reported with its path', async () => {
    const path = join(dir, 'refuse', 'rollout.json');
    await updateState(path, (s) => void (s.startDate = '2026-03-02'));
    await expect(
      updateState(path, (s) => {
        s.startDate = '1999-01-01';
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(loadState(path).startDate).toBe('2026-03-02');
    writeFileSync(path, '{"version": 1, "steps": {');
    expect(() => loadState(path)).toThrow(/rollout state is not readable JSON/);
    writeFileSync(path, '{"version": 2, "steps": {}, "history": []}');
    expect(() => loadState(path)).toThrow(/not a cairn rollout state/);
  });
});
