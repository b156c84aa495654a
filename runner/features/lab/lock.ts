/**
 * One lab command at a time on this machine: `up`, `down`, `start`, `stop`... change shared things (the
 * bridge, the overlays, the state file). The lock is a file holding the owner's pid and start time; a lock
 * left by a process that died is taken over. Inside one process, calls queue; a call made from within a
 * locked call runs at once (re-entrant), and `holdLab()` lets a test file keep the lab across its tests.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { CairnError } from '../../core/util/errors.js';
import { LAB_DIR, LOCK_FILE } from './paths.js';
import { isAlive, processInfo, sleep, type ProcessRef } from './proc.js';

const insideLock = new AsyncLocalStorage<true>();
/** In-process queue: each locked call waits for the previous one. */
let queueTail: Promise<void> = Promise.resolve();
/** Set while holdLab() holds the file lock for this whole process. */
let heldByProcess = false;

function ownRef(): ProcessRef {
  const info = processInfo(process.pid);
  return { pid: process.pid, startTime: info?.startTime ?? 0 };
}

function readHolder(): ProcessRef | undefined {
  try {
    const parsed = JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as Partial<ProcessRef>;
    if (typeof parsed.pid === 'number' && typeof parsed.startTime === 'number')
      return { pid: parsed.pid, startTime: parsed.startTime };
  } catch {
    // unreadable or half-written: treated as stale below
  }
  return undefined;
}

async function acquireFileLock(timeoutMs: number, log: (line: string) => void): Promise<void> {
  mkdirSync(LAB_DIR, { recursive: true });
  const me = ownRef();
  const deadline = Date.now() + timeoutMs;
  let told = false;
  for (;;) {
    try {
      writeFileSync(LOCK_FILE, JSON.stringify(me), { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolder();
    if (!holder || !isAlive(holder)) {
      // The owner died (or never finished writing): the lock is stale.
      rmSync(LOCK_FILE, { force: true });
      continue;
    }
    if (!told) {
      log(`waiting for another cairn lab command (pid ${holder.pid}) to finish`);
      told = true;
    }
    if (Date.now() >= deadline) {
      throw new CairnError(
        `another cairn lab command (pid ${holder.pid}) has held the lab for over ${Math.round(timeoutMs / 1000)} s`,
        { kind: 'runtime' },
      );
    }
    await sleep(250);
  }
}

function releaseFileLock(): void {
  const holder = readHolder();
  if (holder && holder.pid === process.pid) rmSync(LOCK_FILE, { force: true });
}

export interface LockOptions {
  timeoutMs?: number;
  log?: (line: string) => void;
}

const DEFAULT_LOCK_TIMEOUT_MS = 20 * 60_000;

export async function withLabLock<T>(fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  if (insideLock.getStore()) return fn();
  const previous = queueTail;
  let done!: () => void;
  queueTail = new Promise<void>((resolve) => (done = resolve));
  await previous;
  try {
    const takeFile = !heldByProcess;
    if (takeFile) await acquireFileLock(opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, opts.log ?? (() => {}));
    try {
      return await insideLock.run(true, fn);
    } finally {
      if (takeFile) releaseFileLock();
    }
  } finally {
    done();
  }
}

/**
 * Hold the lab for this process until the returned function is called (a test file's beforeAll/afterAll):
 * other processes' lab commands wait; this process's lab calls still run one at a time.
 */
export async function holdLab(opts: LockOptions = {}): Promise<() => void> {
  if (heldByProcess) throw new CairnError('this process already holds the lab', { kind: 'runtime' });
  await withLabLock(async () => {
    // Taking the file lock inside the queue keeps it ordered with in-flight calls.
  }, opts);
  await acquireFileLock(opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, opts.log ?? (() => {}));
  heldByProcess = true;
  return () => {
    if (!heldByProcess) return;
    heldByProcess = false;
    releaseFileLock();
  };
}
