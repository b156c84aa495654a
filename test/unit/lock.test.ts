/**
 * The per-inventory run lock: in this process (refusal naming the holder, stale locks from dead pids and
 * reused pids, locks from another machine, release only if ours) and across real `node` processes: racing
 * for a free lock and for a stale one (exactly one wins), release on normal exit and on SIGINT/SIGTERM, and
 * a SIGKILLed holder's lock taken over. runner/lock.ts is compiled with the project's TypeScript into a
 * temporary folder so plain `node` children can load it.
 */
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CairnError } from '../../runner/core/util/errors.js';
import {
  acquireRunLock,
  commandLineForLock,
  processStart,
  runLockPath,
  type LockHolder,
  type RunLock,
} from '../../runner/app/lock.js';

const root = resolve(import.meta.dirname, '../..');
let work: string;
let inventory: string;
let stateDir: string;
const held: RunLock[] = [];

/** Child: take the lock, say "won" or "lost: <message>", then hold it until stdin closes. */
const holderChild = `
import { existsSync } from 'node:fs';
import { acquireRunLock } from './out/runner/app/lock.js';
const [inventory, stateDir, goFile, command] = process.argv.slice(2);
// Start together: every racer spins until the go file appears.
while (goFile && !existsSync(goFile)) await new Promise((r) => setTimeout(r, 1));
try {
  const lock = acquireRunLock(inventory, command, { stateDir, warn: (m) => process.stdout.write('warning: ' + m + '\\n') });
  process.stdout.write('won ' + lock.holder.token + '\\n');
} catch (err) {
  process.stdout.write('lost: ' + err.message + '\\n');
}
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cairn-lock-test-'));
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
  writeFileSync(join(work, 'package.json'), '{"type":"module"}\n');
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      ...['--outDir', join(work, 'out'), '--rootDir', root, '--module', 'NodeNext', '--moduleResolution', 'NodeNext'],
      ...[
        '--target',
        'ES2022',
        '--strict',
        '--skipLibCheck',
        '--esModuleInterop',
        '--types',
        'node',
        '--declaration',
        'false',
      ],
      join(root, 'runner/app/lock.ts'),
    ],
    { cwd: root, stdio: 'pipe' },
  );
  writeFileSync(join(work, 'holder.mjs'), holderChild);
  inventory = join(work, 'inv');
  mkdirSync(inventory);
  writeFileSync(join(inventory, 'hosts.yaml'), 'all:\n  hosts:\n    web1:\n');
  stateDir = join(work, 'state');
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

afterEach(() => {
  for (const lock of held.splice(0)) lock.release();
  rmSync(stateDir, { recursive: true, force: true });
});

function take(command = 'cairn play site.yaml', warnings: string[] = []): RunLock {
  const lock = acquireRunLock(inventory, command, { stateDir, warn: (m) => warnings.push(m) });
  held.push(lock);
  return lock;
}

function refusal(fn: () => unknown): CairnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw err;
  }
  throw new Error('expected the lock to be refused');
}

/** A lock file as another process would have left it. */
function plantLock(holder: Partial<LockHolder>): string {
  const path = runLockPath(inventory, stateDir);
  mkdirSync(join(stateDir, 'locks'), { recursive: true });
  const full: LockHolder = {
    pid: 1,
    startedAt: '2026-11-20T08:00:00.000Z',
    command: 'cairn play old.yaml',
    host: hostname(),
    inventory,
    token: 'planted',
    ...holder,
  };
  writeFileSync(path, JSON.stringify(full));
  return path;
}

/** A pid that certainly belonged to a process that has exited (and been reaped). */
function deadPid(): number {
  const run = spawnSync('sleep', ['0']);
  expect(run.status).toBe(0);
  return run.pid!;
}

describe('run lock in one process', () => {
  it('creates the lock with the holder, and a second acquire is refused naming it', () => {
    const lock = take('cairn play site.yaml');
    expect(lock.path).toBe(runLockPath(inventory, stateDir));
    expect(lock.path.startsWith(join(stateDir, 'locks'))).toBe(true);
    const onDisk = JSON.parse(readFileSync(lock.path, 'utf8')) as LockHolder;
    expect(onDisk).toMatchObject({
      pid: process.pid,
      command: 'cairn play site.yaml',
      host: hostname(),
      procStartTime: processStart(process.pid)!.startTime,
    });
    expect(Date.parse(onDisk.startedAt)).not.toBeNaN();

    const err = refusal(() => take('cairn verify site.yaml'));
    expect(err.kind).toBe('lock');
    expect(err.message).toBe(
      `another cairn run holds the lock on ${inventory}: pid ${process.pid}, started ${onDisk.startedAt}, command \`cairn play site.yaml\``,
    );
    expect(err.detail).toBe(`lock file: ${lock.path} (removed when that run ends)`);
    // The folder and its hosts.yaml are the same inventory, so they share the lock.
    expect(refusal(() => acquireRunLock(join(inventory, 'hosts.yaml'), 'x', { stateDir })).kind).toBe('lock');

    lock.release();
    expect(existsSync(lock.path)).toBe(false);
    take('cairn verify site.yaml');
  });

  it('takes over a lock left by a dead pid, with a warning', () => {
    const pid = deadPid();
    const path = plantLock({ pid });
    const warnings: string[] = [];
    const lock = take('cairn play site.yaml', warnings);
    expect(warnings).toEqual([
      `took over a stale lock on ${inventory}: pid ${pid}, started 2026-11-20T08:00:00.000Z, command \`cairn play old.yaml\` is no longer running`,
    ]);
    expect((JSON.parse(readFileSync(path, 'utf8')) as LockHolder).pid).toBe(process.pid);
    expect(readdirSync(join(stateDir, 'locks'))).toEqual([lock.path.split('/').pop()]);
  });

  it('takes over a lock whose pid is alive but started at another time (pid reused)', () => {
    const me = processStart(process.pid)!;
    plantLock({ pid: process.pid, procStartTime: me.startTime - 1 });
    const warnings: string[] = [];
    take('cairn play site.yaml', warnings);
    expect(warnings[0]).toMatch(
      new RegExp(`is no longer running \\(pid ${process.pid} now belongs to another process\\)$`),
    );
  });

  it('refuses a lock held by a live process with the right start time (pid 1 here)', () => {
    const init = processStart(1);
    plantLock({ pid: 1, procStartTime: init?.startTime });
    const err = refusal(() => take());
    expect(err.message).toMatch(/: pid 1, started 2026-11-20T08:00:00.000Z, command `cairn play old.yaml`$/);
  });

  it('never judges a lock from another machine stale', () => {
    plantLock({ pid: deadPid(), host: 'other-machine.example' });
    const err = refusal(() => take());
    expect(err.message).toMatch(/: pid \d+ on host other-machine.example, started /);
    expect(err.detail).toMatch(/held from another machine/);
  });

  it('refuses an unreadable lock file rather than guess', () => {
    const path = plantLock({});
    writeFileSync(path, 'not json');
    expect(refusal(() => take()).message).toBe(
      `the run lock on ${inventory} is unreadable (not a cairn lock file); remove ${path} if no cairn run is going`,
    );
  });

  it('release removes the lock only while it is still ours', () => {
    const lock = take();
    writeFileSync(
      lock.path,
      JSON.stringify({
        pid: 4242,
        startedAt: 'x',
        command: 'someone else',
        host: hostname(),
        inventory,
        token: 'theirs',
      }),
    );
    lock.release();
    expect(existsSync(lock.path)).toBe(true);
    rmSync(lock.path);
  });

  it('honours CAIRN_LOCK_DIR and elides extra vars from the recorded command', () => {
    const saved = process.env.CAIRN_LOCK_DIR;
    process.env.CAIRN_LOCK_DIR = join(work, 'env-locks');
    try {
      const lock = acquireRunLock(
        inventory,
        commandLineForLock(['play', 'site.yaml', '-e', 'db_password=hunter2', '--extra-vars=token=x', '-l', 'web 1']),
      );
      held.push(lock);
      expect(lock.path.startsWith(join(work, 'env-locks') + '/')).toBe(true);
      expect(lock.holder.command).toBe("cairn play site.yaml -e … --extra-vars=… -l 'web 1'");
      expect(readFileSync(lock.path, 'utf8')).not.toContain('hunter2');
    } finally {
      if (saved === undefined) delete process.env.CAIRN_LOCK_DIR;
      else process.env.CAIRN_LOCK_DIR = saved;
    }
  });
});

// ---------------------------------------------------------------------------------------------------------

interface Racer {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  /** Resolves with the first "won"/"lost" line. */
  result: Promise<string>;
}

function startHolder(goFile = '', command = 'cairn play race.yaml'): Racer {
  const child = spawn(process.execPath, ['holder.mjs', inventory, stateDir, goFile, command], {
    cwd: work,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const result = new Promise<string>((resolveResult, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      lines.push(line);
      if (line.startsWith('won') || line.startsWith('lost')) resolveResult(line);
    });
    child.on('exit', (code) => reject(new Error(`holder exited (${code}) before answering: ${lines.join(' | ')}`)));
  });
  return { child, lines, result };
}

function exitOf(
  child: ChildProcessWithoutNullStreams,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null)
      resolveExit({ code: child.exitCode, signal: child.signalCode });
    else child.on('exit', (code, signal) => resolveExit({ code, signal }));
  });
}

async function stopAll(racers: Racer[]): Promise<void> {
  for (const r of racers) r.child.stdin.end();
  await Promise.all(racers.map((r) => exitOf(r.child)));
}

describe('run lock across processes', () => {
  it('racing node processes for a free lock: exactly one wins each round; the others name it', async () => {
    for (let round = 0; round < 6; round++) {
      const go = join(work, `go-${round}`);
      const racers = [startHolder(go), startHolder(go), startHolder(go)];
      // Let them all start and spin, then release them together.
      await new Promise((r) => setTimeout(r, 300));
      writeFileSync(go, '');
      const results = await Promise.all(racers.map((r) => r.result));
      const winners = racers.filter((_, i) => results[i]!.startsWith('won'));
      expect(winners).toHaveLength(1);
      for (const [i, line] of results.entries()) {
        if (line.startsWith('lost'))
          expect(line).toBe(
            `lost: another cairn run holds the lock on ${inventory}: pid ${winners[0]!.child.pid}, started ${(JSON.parse(readFileSync(runLockPath(inventory, stateDir), 'utf8')) as LockHolder).startedAt}, command \`cairn play race.yaml\``,
          );
        else expect(racers[i]).toBe(winners[0]);
      }
      await stopAll(racers);
      expect(existsSync(runLockPath(inventory, stateDir))).toBe(false);
    }
  });

  it('racing for a stale lock: exactly one takes it over', async () => {
    for (let round = 0; round < 4; round++) {
      plantLock({ pid: deadPid() });
      const go = join(work, `stale-go-${round}`);
      const racers = [startHolder(go), startHolder(go), startHolder(go)];
      await new Promise((r) => setTimeout(r, 300));
      writeFileSync(go, '');
      const results = await Promise.all(racers.map((r) => r.result));
      expect(results.filter((l) => l.startsWith('won'))).toHaveLength(1);
      const winner = racers[results.findIndex((l) => l.startsWith('won'))]!;
      // The racer that clears the stale lock need not be the one that then wins the free lock: another may
      // create it first. Exactly one wins; at least one saw and reported the stale holder.
      expect(racers.some((r) => r.lines.some((l) => l.startsWith('warning: took over a stale lock')))).toBe(true);
      expect((JSON.parse(readFileSync(runLockPath(inventory, stateDir), 'utf8')) as LockHolder).pid).toBe(
        winner.child.pid,
      );
      await stopAll(racers);
    }
  });

  it('is released on normal exit and on SIGINT/SIGTERM; a SIGKILLed holder leaves a lock that is taken over', async () => {
    const path = runLockPath(inventory, stateDir);
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const holder = startHolder();
      expect(await holder.result).toMatch(/^won/);
      expect(existsSync(path)).toBe(true);
      holder.child.kill(signal);
      expect(await exitOf(holder.child)).toEqual({ code: null, signal });
      expect(existsSync(path)).toBe(false);
    }

    const killed = startHolder('', 'cairn play killed.yaml');
    expect(await killed.result).toMatch(/^won/);
    killed.child.kill('SIGKILL');
    await exitOf(killed.child);
    expect(existsSync(path)).toBe(true);
    const warnings: string[] = [];
    take('cairn play site.yaml', warnings);
    expect(warnings[0]).toMatch(
      new RegExp(
        `^took over a stale lock on .*: pid ${killed.child.pid}, started .*, command \`cairn play killed.yaml\` is no longer running$`,
      ),
    );
  });
});
