/**
 * Reading /proc to find the lab's own processes: the supervisor loop of each host, its systemd-nspawn and
 * the container's init. A pid is only trusted together with its start time, so a reused pid is never killed.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessRef {
  pid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  startTime: number;
}

export interface ProcessInfo extends ProcessRef {
  ppid: number;
  comm: string;
  state: string;
}

/** Parse /proc/PID/stat; the command name is in parentheses and may itself contain spaces and parentheses. */
export function parseProcStat(pid: number, text: string): ProcessInfo | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  const ppid = Number(rest[1]);
  const startTime = Number(rest[19]);
  if (!Number.isFinite(ppid) || !Number.isFinite(startTime)) return undefined;
  return { pid, ppid, startTime, comm: text.slice(open + 1, close), state: rest[0] ?? '?' };
}

export function processInfo(pid: number): ProcessInfo | undefined {
  try {
    return parseProcStat(pid, readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The same process is still there (not exited, not a zombie, not a new process with a reused pid). */
export function isAlive(ref: ProcessRef): boolean {
  const info = processInfo(ref.pid);
  return info !== undefined && info.startTime === ref.startTime && info.state !== 'Z';
}

export function allPids(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}

export function allProcesses(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const pid of allPids()) {
    const info = processInfo(pid);
    if (info) out.push(info);
  }
  return out;
}

/** Every descendant, nearest first. */
export function descendantsOf(pid: number, processes = allProcesses()): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const next: number[] = [];
    for (const parent of frontier) {
      for (const child of processes) {
        if (child.ppid === parent) {
          out.push(child);
          next.push(child.pid);
        }
      }
    }
    frontier = next;
  }
  return out;
}

export function readCmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '');
  } catch {
    return [];
  }
}

/** The pid namespace chain of a process ("NSpid:" in /proc/PID/status): [host pid, ..., innermost pid]. */
export function namespacePids(pid: number): number[] {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('NSpid:'));
    return line ? line.slice(6).trim().split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}

/** Send a signal; false when the process is already gone. Only ever called with a pid checked by isAlive. */
export function signal(ref: ProcessRef, sig: NodeJS.Signals): boolean {
  if (!isAlive(ref)) return false;
  try {
    process.kill(ref.pid, sig);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The process, or any thread of it, still runs. A thread group's leader shows as a zombie as soon as it has
 * exited, while its other threads may still be on their way out, holding the shared file table and so every
 * file and lock (seen with qemu: a vCPU thread leaving KVM_RUN after SIGKILL kept the disk image's write
 * lock, and the next qemu on that image failed with `Failed to get "write" lock`).
 */
export function stillRunning(ref: ProcessRef, statusOf: (pid: number) => string | undefined = readStatus): boolean {
  const info = processInfo(ref.pid);
  if (info === undefined || info.startTime !== ref.startTime) return false;
  if (info.state !== 'Z') return true;
  const threads = Number(/^Threads:\s+(\d+)/m.exec(statusOf(ref.pid) ?? '')?.[1] ?? 1);
  return threads > 1;
}

function readStatus(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Wait until none of the processes runs (no thread of it left); true when they all ended within the time. */
export async function waitForExit(refs: readonly ProcessRef[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!refs.some((ref) => stillRunning(ref))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}
