/**
 * `connection: local`: run tasks on this machine with /bin/sh, no SSH. Same ExecOptions semantics and result
 * shape as the SSH transport. Also holds the become (sudo) rules both transports share.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants, userInfo } from 'node:os';
import { carryScript, type CarriedScript } from './carrier.js';
import { CappedOutput } from './output.js';
import type { Connection, ConnectionSpec, ExecOptions, ExecResult } from './types.js';
import { UnreachableError } from './types.js';

/** Exit code reported for a command killed by `timeoutMs`, as timeout(1) does. */
export const TIMEOUT_EXIT_CODE = 124;

/**
 * The argv that runs `script` with /bin/sh, through `sudo -n` when become asks for a user other than the login
 * user. `-n` makes sudo fail at once instead of waiting for a password nobody will type.
 */
export function commandArgv(script: string, loginUser: string, opts: ExecOptions = {}): string[] {
  return shellArgv(['-c', script], loginUser, opts);
}

/** The same with /bin/sh's own arguments given (`-s` to read the script from stdin: ./carrier.ts). */
export function shellArgv(shellArgs: string[], loginUser: string, opts: ExecOptions = {}): string[] {
  const becomeUser = opts.becomeUser ?? 'root';
  if (opts.become && becomeUser !== loginUser) {
    return ['sudo', '-n', '-H', '-u', becomeUser, '--', '/bin/sh', ...shellArgs];
  }
  return ['/bin/sh', ...shellArgs];
}

/** Whether this exec goes through sudo (see commandArgv). */
export function usesSudo(loginUser: string, opts: ExecOptions = {}): boolean {
  return Boolean(opts.become) && (opts.becomeUser ?? 'root') !== loginUser;
}

const SUDO_REFUSALS: Array<{ pattern: RegExp; explain: (user: string, login: string) => string }> = [
  {
    pattern: /^sudo: (a password is required|a terminal is required)/m,
    explain: (user, login) =>
      `sudo asks ${login} for a password to become ${user}; cairn needs passwordless sudo (NOPASSWD)`,
  },
  {
    pattern: /^sudo: unknown user/m,
    explain: (user) => `user ${user} does not exist`,
  },
  {
    pattern: /is not in the sudoers file|is not allowed to (run sudo|execute)/m,
    explain: (user, login) => `${login} may not use sudo to become ${user}`,
  },
  {
    pattern: /sudo: (command )?not found/m,
    explain: () => 'sudo is not installed',
  },
];

/**
 * When sudo itself refused (rather than the script failing), put one clear line first in stderr so the task
 * failure says what to fix instead of echoing sudo's terse output.
 */
export function explainBecomeFailure(
  result: ExecResult,
  host: string,
  loginUser: string,
  opts: ExecOptions,
): ExecResult {
  if (result.code === 0 || !usesSudo(loginUser, opts)) return result;
  const becomeUser = opts.becomeUser ?? 'root';
  for (const refusal of SUDO_REFUSALS) {
    if (refusal.pattern.test(result.stderr)) {
      const line = `become failed on ${host}: ${refusal.explain(becomeUser, loginUser)}`;
      return { ...result, stderr: `${line}\n${result.stderr}` };
    }
  }
  return result;
}

export function openLocalConnection(spec: ConnectionSpec): Promise<Connection> {
  return Promise.resolve(new LocalConnection(spec.name, userInfo().username));
}

class LocalConnection implements Connection {
  private closed = false;
  /** Commands still running, by process group: close() stops them. */
  private readonly running = new Map<number, Promise<void>>();

  constructor(
    readonly host: string,
    readonly user: string,
  ) {}

  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.closed)
      return Promise.reject(new UnreachableError(this.host, `local connection to ${this.host} is closed`));
    // Same carriage as over SSH (./carrier.ts): an argument is limited to 128 KiB and visible in `ps`.
    let carried: CarriedScript;
    try {
      carried = carryScript(script, opts.stdin);
    } catch (error) {
      return Promise.reject(error);
    }
    const [command, ...args] = shellArgv(carried.shellArgs, this.user, opts) as [string, ...string[]];
    return new Promise((resolve) => {
      // Own process group, so a timeout kills the whole script and not just the shell.
      const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      const stdout = new CappedOutput();
      const stderr = new CappedOutput();
      let timedOut = false;
      let spawnError: Error | undefined;
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // A command that exits without reading its input closes the pipe under us: not an error.
      child.stdin.on('error', () => undefined);
      child.on('error', (error) => {
        spawnError = error;
      });
      child.stdin.end(carried.input);
      const pid = child.pid;
      if (pid !== undefined) this.running.set(pid, new Promise<void>((ended) => child.once('close', () => ended())));

      const timer =
        opts.timeoutMs !== undefined
          ? setTimeout(() => {
              timedOut = true;
              killGroup(child.pid, 'SIGTERM');
              // sudo relays SIGTERM but cannot relay SIGKILL: give it a moment before forcing.
              setTimeout(() => killGroup(child.pid, 'SIGKILL'), 500).unref();
            }, opts.timeoutMs)
          : undefined;

      child.on('close', (code, signal) => {
        if (pid !== undefined) this.running.delete(pid);
        if (timer) clearTimeout(timer);
        const result: ExecResult = {
          stdout: stdout.text(),
          stderr: stderr.text(),
          code: timedOut ? TIMEOUT_EXIT_CODE : exitCodeOf(code, signal, spawnError),
        };
        if (stdout.cutBytes > 0 || stderr.cutBytes > 0) {
          result.cut = {
            ...(stdout.cutBytes > 0 ? { stdout: stdout.totalBytes } : {}),
            ...(stderr.cutBytes > 0 ? { stderr: stderr.totalBytes } : {}),
          };
        }
        if (spawnError && !timedOut) result.stderr += `${command}: ${spawnError.message}\n`;
        if (timedOut) result.timedOut = true;
        resolve(explainBecomeFailure(result, this.host, this.user, opts));
      });
    });
  }

  /** As over SSH: commands still running when the connection closes get TERM, and a moment to clean up. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.running.size === 0) return;
    const ended = [...this.running.values()];
    for (const pid of this.running.keys()) killGroup(pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(ended), new Promise<void>((resolve) => (timer = setTimeout(resolve, 2_000)))]);
    clearTimeout(timer);
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Shell conventions: 128+N for a signal, 127 when the program could not be started. */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null, spawnError: Error | undefined): number {
  if (code !== null) return code;
  if (spawnError) return 127;
  if (signal) return 128 + (signalNumber(signal) ?? 0);
  return 255;
}

export function signalNumber(signal: string): number | undefined {
  const name = signal.startsWith('SIG') ? signal : `SIG${signal}`;
  return (osConstants.signals as Record<string, number | undefined>)[name];
}
