/**
 * Runs one command under GNU time (/usr/bin/time) and returns its wall time, CPU seconds (user + system,
 * children included: ansible's forks, not sshd's) and max RSS. Bench-only.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { trackPath, trackProcess, untrackPath } from './cleanup.js';

export interface Measured {
  wallSeconds: number;
  cpuSeconds: number;
  maxRssMb: number;
  code: number;
  output: string;
}

let counter = 0;

export function measure(
  command: string,
  args: string[],
  /** outputFile: every byte the command printed (stdout and stderr, as they came) is also written there. */
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; outputFile?: string } = {},
): Promise<Measured> {
  const timesFile = join(tmpdir(), `cairn-bench-time-${process.pid}-${++counter}`);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', timesFile, '--', command, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackProcess(child);
    trackPath(timesFile);
    let output = '';
    const log = opts.outputFile !== undefined ? createWriteStream(opts.outputFile) : undefined;
    // Only the tail is kept in memory; the whole output goes to outputFile when one is given.
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
      log?.write(chunk);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', async (code) => {
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const [user, system, rssKb] = readFileSync(timesFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      rmSync(timesFile, { force: true });
      untrackPath(timesFile);
      if (log) await new Promise((done) => log.end(done));
      resolve({ wallSeconds, cpuSeconds: user! + system!, maxRssMb: rssKb! / 1024, code: code ?? -1, output });
    });
  });
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
