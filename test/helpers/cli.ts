/** Runs the built cairn CLI (dist/) as a user would, and parses --json output. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { packageRoot } from '../../runner/core/util/paths.js';

// packageRoot() finds the repository from source (vitest) and from dist/ (npm run bench) alike.
export const repoRoot = packageRoot();
export const cairnBin = join(repoRoot, 'bin', 'cairn.js');

/**
 * The esbuild bundle's entry that bin/cairn.js runs under `root` (a repository or an installed package): the
 * stamp test/build/bundle.ts leaves as the last line of dist/runner/cli.js, if it is there and names a file.
 */
export function bundledCliOf(root: string = repoRoot): string | undefined {
  const compiled = join(root, 'dist', 'runner', 'cli.js');
  const stamp = /^\/\/ cairn-bundle: (\S+)$/m.exec(readFileSync(compiled, 'utf8'));
  const entry = stamp ? join(dirname(compiled), stamp[1] as string) : undefined;
  return entry !== undefined && existsSync(entry) ? entry : undefined;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCairn(
  args: string[],
  opts: {
    cwd?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    onStart?: (child: ChildProcess) => void;
  } = {},
): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cairnBin, ...args], {
      cwd: opts.cwd ?? repoRoot,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    opts.onStart?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? -1, stdout, stderr });
    });
  });
}

export function jsonEvents(stdout: string): RunEvent[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as RunEvent);
}

type TaskResultEvent = Extract<RunEvent, { type: 'task_result' }>;

export function taskResults(events: RunEvent[]): TaskResultEvent[] {
  return events.filter((e): e is TaskResultEvent => e.type === 'task_result');
}

/** "host | role : task [item]" for every result that changed (or would change), sorted. */
export function changedKeys(events: RunEvent[]): string[] {
  return taskResults(events)
    .filter((e) => e.status === 'changed' && !e.loopSummary)
    .map(
      (e) =>
        `${e.host} | ${e.task.role} : ${e.task.name}${e.item !== undefined ? ` [${JSON.stringify(e.item)}]` : ''}${e.handler ? ' (handler)' : ''}`,
    )
    .sort();
}
