/**
 * Running host commands for the lab. Commands are argv arrays handed to spawn (no shell), so no value is
 * ever parsed by a shell here; the one place a shell runs (the supervisor loop) builds its script with quote().
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { CairnError } from '../../core/util/errors.js';
import { findExecutable } from './preflight.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Append stdout and stderr to this file instead of capturing them (for long, chatty builds). */
  logFile?: string;
  stdin?: string;
  timeoutMs?: number;
}

/** Captured output is cut to this many bytes per stream: enough for any error message. */
const MAX_CAPTURE = 4 * 1024 * 1024;

export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    let logFd: number | undefined;
    if (opts.logFile) logFd = openSync(opts.logFile, 'a');
    // Resolved like the preflight check does, so a PATH without the sbin dirs still finds ip and mount.
    const resolved = command.includes('/') ? command : (findExecutable(command) ?? command);
    const child = spawn(resolved, [...args], {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', logFd ?? 'pipe', logFd ?? 'pipe'],
    });
    if (logFd !== undefined) closeSync(logFd);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      if (stdout.length < MAX_CAPTURE) stdout += chunk.toString('utf8');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_CAPTURE) stderr += chunk.toString('utf8');
    });
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 + 9 : 1), stdout, stderr });
    });
  });
}

/** Run and throw a CairnError naming the command when it fails. */
export async function runChecked(
  command: string,
  args: readonly string[],
  what: string,
  opts: RunOptions = {},
): Promise<CommandResult> {
  let result: CommandResult;
  try {
    result = await run(command, args, opts);
  } catch (err) {
    throw new CairnError(`${what}: cannot run ${command}: ${err instanceof Error ? err.message : String(err)}`, {
      kind: 'runtime',
    });
  }
  if (result.code !== 0) {
    const output = opts.logFile ? readTail(opts.logFile) : result.stderr || result.stdout;
    const tail = output.trim().split('\n').slice(-15).join('\n');
    const where = opts.logFile ? ` (full log: ${opts.logFile})` : '';
    throw new CairnError(`${what}: ${command} exited with ${result.code}${where}`, {
      kind: 'runtime',
      detail: tail || undefined,
    });
  }
  return result;
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-8192);
  } catch {
    return '';
  }
}
