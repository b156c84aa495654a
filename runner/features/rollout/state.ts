/**
 * The rollout's recorded state: `<state dir>/rollout.json` (CAIRN_STATE_DIR, else .cairn).
 *
 * - Written atomically: a temp file in the same folder, fsync, rename. A reader never sees half a file.
 * - Changed only under a lock (runner/app/lock.ts's lock file, keyed on this file), and always as
 *   load -> change -> write inside that lock, so two cairn processes never lose each other's changes. The
 *   lock is held only for that instant, not while a step runs: a person can sign a manual step while a long
 *   drill is running.
 * - A step is marked `running` with the pid (and its start time, against pid reuse) BEFORE its work starts.
 *   When a `running` step's process is gone (killed, crashed, machine rebooted) the step reads back as
 *   `interrupted`: a crash mid-step can never leave it `done`.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CairnError } from '../../core/util/errors.js';
import { acquireRunLock, holderState, processStart, stateDirectory, type RunLock } from '../../app/lock.js';
import { isPlainObject } from '../../core/util/vars.js';
import type { RolloutState, StepState } from './types.js';

export const STATE_FILE_NAME = 'rollout.json';
/** How long a writer waits for another one to finish its (short) update before giving up. */
const LOCK_WAIT_MS = 15_000;
const HISTORY_LIMIT = 2000;

export function rolloutStatePath(stateDir: string = stateDirectory()): string {
  return join(stateDir, STATE_FILE_NAME);
}

export function emptyState(): RolloutState {
  return { version: 1, steps: {}, history: [] };
}

export function stepState(state: RolloutState, id: string): StepState {
  return state.steps[id] ?? { state: 'pending', runs: 0 };
}

/** Read the state (an empty one when the file does not exist yet), with dead `running` steps as `interrupted`. */
export function loadState(path: string): RolloutState {
  if (!existsSync(path)) return emptyState();
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CairnError(
      `the rollout state is not readable JSON (${err instanceof Error ? err.message : String(err)}); it is written atomically, so this file was edited by hand or by another program`,
      { kind: 'runtime', location: { file: path } },
    );
  }
  if (
    !isPlainObject(parsed) ||
    parsed.version !== 1 ||
    !isPlainObject(parsed.steps) ||
    !Array.isArray(parsed.history)
  ) {
    throw new CairnError(
      'the rollout state is not a cairn rollout state (expected {"version": 1, "steps": {...}, "history": [...]})',
      { kind: 'runtime', location: { file: path } },
    );
  }
  const state = parsed as unknown as RolloutState;
  for (const [id, step] of Object.entries(state.steps)) {
    if (step.state === 'running' && !runnerAlive(step)) {
      state.steps[id] = {
        ...step,
        state: 'interrupted',
        message: `the run (pid ${step.pid ?? '?'}) ended without finishing the step: killed or crashed`,
        pid: undefined,
        procStartTime: undefined,
      };
    }
  }
  return state;
}

/** Whether the process recorded as running a step still runs (on this machine; another machine's is trusted). */
export function runnerAlive(step: StepState): boolean {
  if (step.pid === undefined) return false;
  const verdict = holderState({
    pid: step.pid,
    host: step.host ?? hostname(),
    procStartTime: step.procStartTime,
    startedAt: step.startedAt ?? '',
    command: '',
    inventory: '',
    token: '',
  });
  return verdict.state !== 'gone';
}

/** This process, as recorded on a step it starts. */
export function runnerIdentity(): Pick<StepState, 'pid' | 'procStartTime' | 'host'> {
  return { pid: process.pid, procStartTime: processStart(process.pid)?.startTime, host: hostname() };
}

function writeAtomically(path: string, text: string): void {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(temp, 'wx', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    throw new CairnError(
      `cannot write the rollout state ${path}: ${err instanceof Error ? err.message : String(err)}`,
      { kind: 'runtime' },
    );
  }
}

let updating = false;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function lockState(path: string, stateDir: string): Promise<RunLock> {
  // Keyed on the real path of the folder plus the file name, so the key is the same before and after the
  // file first exists (the lock module resolves symlinks of existing paths only).
  const key = join(realpathSync(stateDir), STATE_FILE_NAME);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      return acquireRunLock(key, 'cairn rollout (state update)', { stateDir, releaseOnExit: true });
    } catch (err) {
      if (!(err instanceof CairnError) || err.kind !== 'lock' || Date.now() > deadline) {
        if (err instanceof CairnError && err.kind === 'lock')
          throw new CairnError(`the rollout state ${path} stayed locked for ${LOCK_WAIT_MS / 1000} s: ${err.message}`, {
            kind: 'lock',
            detail: err.detail,
          });
        throw err;
      }
      await sleep(25 + Math.random() * 50);
    }
  }
}

/**
 * Change the state under the lock: read the newest state, apply `change` (synchronous, so the lock is held
 * for an instant), write it atomically, return what `change` returned. `change` may throw to refuse; then
 * nothing is written.
 */
export async function updateState<T>(path: string, change: (state: RolloutState) => T): Promise<T> {
  if (updating) throw new Error('rollout state update nested inside another (a bug)');
  const stateDir = join(path, '..');
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  updating = true;
  try {
    const lock = await lockState(path, stateDir);
    try {
      const state = loadState(path);
      const result = change(state);
      if (state.history.length > HISTORY_LIMIT) state.history.splice(0, state.history.length - HISTORY_LIMIT);
      writeAtomically(path, `${JSON.stringify(state, null, 2)}\n`);
      return result;
    } finally {
      lock.release();
    }
  } finally {
    updating = false;
  }
}
