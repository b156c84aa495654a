/**
 * What a bench leaves behind when it is interrupted: nothing. `npm run bench` starts sshd listeners (whose
 * per-connection children outlive a killed listener), measured runs under /usr/bin/time (whose cairn or
 * ansible child outlives a killed `time`) and a temp folder. Node's default for SIGINT and SIGTERM is to die
 * at once, running no 'exit' handler and no `finally`; so the bench registers what it starts here, and on
 * the first SIGINT or SIGTERM every registered process and everything below it is SIGKILLed by pid, every
 * registered path removed, and the bench exits 128 + the signal's number, as a shell reports it.
 * Tested by test/integration/bench-interrupt.test.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';

const processes = new Set<ChildProcess>();
const paths = new Set<string>();
let installed = false;

/** Kill this child and its descendants if the bench is interrupted (forgotten once it exits). */
export function trackProcess(child: ChildProcess): void {
  installInterruptCleanup();
  processes.add(child);
  child.once('exit', () => processes.delete(child));
}

/** Remove this file or folder if the bench is interrupted (call `untrackPath` once it is removed). */
export function trackPath(path: string): void {
  installInterruptCleanup();
  paths.add(path);
}

export function untrackPath(path: string): void {
  paths.delete(path);
}

/** Every live process below `root`, from /proc (children before grandchildren). */
export function descendantsOf(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: the parent pid is the 2nd field after it.
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // It ended while we read.
    }
  }
  const found: number[] = [];
  for (let i = -1; i < found.length; i++) {
    const parent = i === -1 ? root : found[i]!;
    for (const [pid, ppid] of parentOf) if (ppid === parent && !found.includes(pid)) found.push(pid);
  }
  return found;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** SIGKILL every registered process with its descendants and remove every registered path; synchronous. */
export function cleanUpNow(): void {
  for (const child of processes) {
    if (child.pid === undefined) continue;
    // Descendants first: once the parent is gone they are re-parented and no longer found below it.
    const below = descendantsOf(child.pid);
    kill(child.pid);
    for (const pid of below) kill(pid);
  }
  processes.clear();
  for (const path of paths) rmSync(path, { recursive: true, force: true });
  paths.clear();
}

function installInterruptCleanup(): void {
  if (installed) return;
  installed = true;
  for (const [signal, number] of [
    ['SIGINT', 2],
    ['SIGTERM', 15],
  ] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping sshd and runs, removing temp files\n`);
      cleanUpNow();
      process.exit(128 + number);
    });
  }
}
