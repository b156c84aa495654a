/**
 * One cairn run per inventory at a time: two runs changing the same hosts at once would interleave their
 * edits and restarts. The lock is `<lock folder>/<hash of the inventory's real path>.lock`, a JSON file
 * naming its holder (pid, start time, command, host). The lock folder is one per machine, never per working
 * directory (the same inventory run from two folders must meet the same lock): CAIRN_LOCK_DIR when set, else
 * /run/cairn/locks for root, else $XDG_RUNTIME_DIR/cairn/locks or <tmp>/cairn-<uid>/locks for other users
 * (see runLockDirectory and docs/security.md).
 *
 * Creating it is exclusive and atomic: the holder's JSON is written to a private temp file (O_EXCL) and then
 * hard-linked to the lock name, which fails if the lock exists. So a lock file is never seen half-written,
 * and a reader never mistakes a lock being created for a broken one.
 *
 * A lock whose holder is gone is stale and taken over with a warning. "Gone" is decided on this machine
 * only: process.kill(pid, 0) says whether the pid exists, and the start time in /proc/<pid>/stat, recorded
 * in the lock, tells the holder from an unrelated process that got the same pid later. Taking over moves the
 * stale file aside and checks that what was moved is byte for byte the stale lock that was judged, so two
 * processes racing over one stale lock cannot both win (the loser puts back what it moved).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fsyncSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { CairnError } from '../core/util/errors.js';
import { INVENTORY_FILE_NAMES } from '../core/inventory/index.js';
import { quote } from '../core/transport/quote.js';

/** What a lock file holds. */
export interface LockHolder {
  pid: number;
  /** ISO time the run started. */
  startedAt: string;
  /** The command line, e.g. "cairn play site.yaml" (extra vars elided: they may hold secrets). */
  command: string;
  /** Machine name: a lock from another machine (shared folder) cannot be checked, so it is never stale. */
  host: string;
  /** The inventory as locked (its real path). */
  inventory: string;
  /** Start time of the holder in clock ticks since boot (field 22 of /proc/PID/stat), against pid reuse. */
  procStartTime?: number;
  /** Random: tells this acquisition from any other, so release() and take-over never remove another's lock. */
  token: string;
}

export interface RunLock {
  readonly path: string;
  readonly holder: LockHolder;
  /** Remove the lock if it is still ours. Idempotent; also done on process exit and on SIGINT/SIGTERM/SIGHUP. */
  release(): void;
}

export interface RunLockOptions {
  /** The folder holding lock files. Default: runLockDirectory(). */
  lockDir?: string;
  /** Locks kept in `<stateDir>/locks` instead (the rollout's state file lock, which lives with its state). */
  stateDir?: string;
  /** Where the stale-lock warning goes; default stderr. */
  warn?: (message: string) => void;
  /** Release on exit and on termination signals (default true). */
  releaseOnExit?: boolean;
}

/** The state folder: CAIRN_STATE_DIR, else `.cairn` in the current folder. */
export function stateDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.CAIRN_STATE_DIR || '.cairn');
}

/**
 * What is locked: the inventory folder when given a folder or its hosts.yaml (they are the same inventory),
 * else the inventory file; by real path, so symlinks and relative paths agree.
 */
export function lockedInventory(inventoryPath: string): string {
  let target = resolve(inventoryPath);
  try {
    const isDir = statSync(target).isDirectory();
    if (!isDir && INVENTORY_FILE_NAMES.includes(basename(target))) target = dirname(target);
    return realpathSync(target);
  } catch {
    return target; // missing: the inventory loader reports it
  }
}

/**
 * Where run locks live on this machine: CAIRN_LOCK_DIR, else /run/cairn/locks when running as root (tmpfs:
 * a reboot ends every run, and clears their locks), else the user's runtime folder. Never relative to the
 * working directory or the state folder, which differ between two shells running the same inventory.
 */
export function runLockDirectory(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CAIRN_LOCK_DIR) return resolve(env.CAIRN_LOCK_DIR);
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid === 0) return '/run/cairn/locks';
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'cairn', 'locks');
  return join(tmpdir(), `cairn-${uid}`, 'locks');
}

/** The lock file of an inventory: in `<stateDir>/locks` when a state folder is given, else runLockDirectory(). */
export function runLockPath(inventoryPath: string, stateDir?: string): string {
  const hash = createHash('sha256').update(lockedInventory(inventoryPath)).digest('hex').slice(0, 32);
  return join(stateDir !== undefined ? join(stateDir, 'locks') : runLockDirectory(), `${hash}.lock`);
}

/**
 * Creates the lock folder, private to its user, and refuses one that someone else could have planted (a
 * shared /tmp): it must be a real folder owned by us and writable by nobody else.
 */
function ensureLockFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = lstatSync(dir);
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o022) !== 0) {
    throw new Error(`${dir} is not a folder owned by this user and writable by it alone`);
  }
}

/** `cairn` and its arguments for the lock file, with -e/--extra-vars values elided (they may be secrets). */
export function commandLineForLock(args: readonly string[] = process.argv.slice(2)): string {
  const shown: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-e' || arg === '--extra-vars') {
      shown.push(arg, '…');
      i++;
    } else if (/^(-e|--extra-vars=)./.test(arg)) {
      shown.push(arg.startsWith('--') ? '--extra-vars=…' : '-e…');
    } else {
      shown.push(quote(arg));
    }
  }
  return ['cairn', ...shown].join(' ');
}

/** Start time (clock ticks since boot) and state of a process, from /proc; undefined without /proc. */
export function processStart(pid: number): { startTime: number; state: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name, in parentheses, may hold spaces and parentheses: fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const startTime = Number(fields[19]);
  return Number.isFinite(startTime) ? { startTime, state: fields[0] ?? '?' } : undefined;
}

type HolderState = { state: 'alive' } | { state: 'remote' } | { state: 'gone'; why: string };

/** Whether the process that wrote a lock is still running. */
export function holderState(holder: LockHolder): HolderState {
  if (holder.host !== hostname()) return { state: 'remote' };
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user; it is alive.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return { state: 'gone', why: 'no longer running' };
  }
  const proc = processStart(holder.pid);
  if (proc === undefined) return { state: 'alive' }; // no /proc here: kill(0) has to do
  if (proc.state === 'Z') return { state: 'gone', why: 'exited (a zombie awaiting its parent)' };
  if (holder.procStartTime !== undefined && proc.startTime !== holder.procStartTime) {
    return { state: 'gone', why: `no longer running (pid ${holder.pid} now belongs to another process)` };
  }
  return { state: 'alive' };
}

function parseHolder(raw: string): LockHolder | undefined {
  try {
    const value = JSON.parse(raw) as Partial<LockHolder>;
    if (
      typeof value.pid === 'number' &&
      Number.isInteger(value.pid) &&
      value.pid > 0 &&
      typeof value.startedAt === 'string' &&
      typeof value.command === 'string' &&
      typeof value.host === 'string'
    ) {
      return {
        pid: value.pid,
        startedAt: value.startedAt,
        command: value.command,
        host: value.host,
        inventory: typeof value.inventory === 'string' ? value.inventory : '',
        procStartTime: typeof value.procStartTime === 'number' ? value.procStartTime : undefined,
        token: typeof value.token === 'string' ? value.token : '',
      };
    }
  } catch {
    // not JSON
  }
  return undefined;
}

function readRaw(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CairnError(`cannot read the run lock ${path}: ${(err as Error).message}`, { kind: 'lock' });
  }
}

/** Create the lock with its full content in one step; false if it exists. */
function tryCreate(path: string, text: string): boolean {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  } catch (err) {
    throw new CairnError(`cannot create the run lock ${path}: ${(err as Error).message}`, { kind: 'lock' });
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // not created
    }
  }
}

/** Remove a stale lock, but only if it is still exactly the one judged stale. */
function removeStale(path: string, staleText: string): boolean {
  const aside = `${path}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(path, aside);
  } catch {
    return false; // gone already: someone released or took it over
  }
  let moved: string | undefined;
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    moved = undefined;
  }
  if (moved === staleText) {
    unlinkSync(aside);
    return true;
  }
  // Another process took the lock over between our read and our rename: give it back.
  try {
    linkSync(aside, path);
  } catch {
    // a third process got in meanwhile; it holds the lock now and the next attempt will say so
  }
  unlinkSync(aside);
  return false;
}

function describeHolder(holder: LockHolder): string {
  const where = holder.host !== hostname() ? ` on host ${holder.host}` : '';
  return `pid ${holder.pid}${where}, started ${holder.startedAt}, command \`${holder.command}\``;
}

const TAKE_ATTEMPTS = 5;

/**
 * Take the run lock of an inventory, or throw a CairnError (kind 'lock') naming the holder. A stale lock
 * (its process is gone) is taken over with a warning.
 */
export function acquireRunLock(inventoryPath: string, command: string, opts: RunLockOptions = {}): RunLock {
  const hash = basename(runLockPath(inventoryPath, opts.stateDir));
  const path = opts.lockDir !== undefined ? join(opts.lockDir, hash) : runLockPath(inventoryPath, opts.stateDir);
  const warn = opts.warn ?? ((message: string) => process.stderr.write(`WARNING: ${message}\n`));
  try {
    ensureLockFolder(dirname(path));
  } catch (err) {
    throw new CairnError(`cannot create the lock folder ${dirname(path)}: ${(err as Error).message}`, { kind: 'lock' });
  }
  const holder: LockHolder = {
    pid: process.pid,
    startedAt: new Date().toISOString(),
    command,
    host: hostname(),
    inventory: lockedInventory(inventoryPath),
    procStartTime: processStart(process.pid)?.startTime,
    token: randomBytes(12).toString('hex'),
  };
  const text = `${JSON.stringify(holder, null, 2)}\n`;

  for (let attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
    if (tryCreate(path, text)) return ownedLock(path, holder, text, opts.releaseOnExit !== false);
    const existingText = readRaw(path);
    if (existingText === undefined) continue; // released between our two steps
    const existing = parseHolder(existingText);
    if (!existing) {
      throw new CairnError(
        `the run lock on ${inventoryPath} is unreadable (not a cairn lock file); remove ${path} if no cairn run is going`,
        { kind: 'lock' },
      );
    }
    const state = holderState(existing);
    if (state.state === 'gone') {
      if (removeStale(path, existingText))
        warn(`took over a stale lock on ${inventoryPath}: ${describeHolder(existing)} is ${state.why}`);
      continue;
    }
    throw new CairnError(`another cairn run holds the lock on ${inventoryPath}: ${describeHolder(existing)}`, {
      kind: 'lock',
      detail:
        state.state === 'remote'
          ? `lock file: ${path} (held from another machine, so cairn cannot tell whether that run is still going; remove the file if it is not)`
          : `lock file: ${path} (removed when that run ends)`,
    });
  }
  throw new CairnError(`could not take the run lock on ${inventoryPath}: it kept changing hands; try again`, {
    kind: 'lock',
  });
}

const TERMINATING_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function ownedLock(path: string, holder: LockHolder, text: string, releaseOnExit: boolean): RunLock {
  let released = false;
  const onExit = () => lock.release();
  // Only when nobody else handles the signal: then its default action (ending the process) would skip the
  // 'exit' event, so release here and re-raise it. A session's own Ctrl-C handler ends the run through
  // process.exit or a normal exit instead, and 'exit' releases.
  const onSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    lock.release();
    process.kill(process.pid, signal);
  };
  const lock: RunLock = {
    path,
    holder,
    release() {
      if (released) return;
      released = true;
      if (releaseOnExit) {
        process.off('exit', onExit);
        for (const signal of TERMINATING_SIGNALS) process.off(signal, onSignal);
      }
      try {
        if (readFileSync(path, 'utf8') === text) unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
  if (releaseOnExit) {
    process.on('exit', onExit);
    for (const signal of TERMINATING_SIGNALS) process.on(signal, onSignal);
  }
  return lock;
}
