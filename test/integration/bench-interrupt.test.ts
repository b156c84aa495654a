/**
 * `npm run bench` interrupted (Ctrl-C, or a SIGTERM from whoever runs it) leaves nothing behind: no sshd
 * listener, no sshd session, no measured cairn run, no temp folder (test/bench/cleanup.ts). The bench is
 * started as `npm run bench` starts it after building (node dist/test/bench/bench.js; npm passes the
 * signal on to it), on 2 loopback hosts, and signalled while a measured run is in flight.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';
import { requireSshd } from '../helpers/sshd.js';
import { descendantsOf } from '../bench/cleanup.js';

requireSshd();

/** Every live process whose command line mentions `fragment`. */
function processesMentioning(fragment: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(fragment)) found.push(`${entry}: ${cmdline}`);
    } catch {
      // It ended while we read.
    }
  }
  return found;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function interruptBench(signal: 'SIGINT' | 'SIGTERM') {
  const bench = spawn(
    process.execPath,
    [join(repoRoot, 'dist/test/bench/bench.js'), '--scales', '2', '--runs', '20', '--tasks', '30'],
    { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  let stdout = '';
  bench.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  bench.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    bench.once('exit', (code, sig) => resolve({ code, signal: sig })),
  );
  // Wait until its hosts are up and a measured run (floor or cairn, under /usr/bin/time) is going.
  let dir = '';
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    dir = /bench hosts: \d+ in (\S+)/.exec(stderr)?.[1] ?? '';
    if (dir && stdout.includes('hosts | forks') && processesMentioning(dir).some((p) => p.includes('/usr/bin/time')))
      break;
    if (bench.exitCode !== null) break;
    await sleep(50);
  }
  expect(dir, `the bench did not start: ${stderr}`).not.toBe('');
  const started = processesMentioning(dir);
  expect(started.some((p) => p.includes('sshd'))).toBe(true);
  // Everything the bench runs, with what runs below it: sshd's sessions ("sshd: cairnbench@notty") do not
  // name the folder, so they are found as descendants of the bench process.
  const pids = [bench.pid!, ...descendantsOf(bench.pid!)];
  expect(pids.length).toBeGreaterThan(3);
  bench.kill(signal);
  const result = await exited;
  return { dir, result, stderr, pids };
}

describe('npm run bench, interrupted', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(`${signal}: stops every sshd and run it started and removes its temp folder`, async () => {
      const { dir, result, stderr, pids } = await interruptBench(signal);
      expect(result.code, stderr).toBe(code);
      expect(stderr).toContain(`bench: ${signal}: stopping sshd and runs`);
      expect(existsSync(dir)).toBe(false);
      // SIGKILLed processes are gone at once, but give /proc a moment to drop the zombies' reapers.
      let left = processesMentioning(dir);
      for (let i = 0; i < 40 && left.length > 0; i++) {
        await sleep(50);
        left = processesMentioning(dir);
      }
      expect(left).toEqual([]);
      const alive = (pid: number) =>
        existsSync(`/proc/${pid}`) && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      expect(pids.filter(alive)).toEqual([]);
    });
  }
});
