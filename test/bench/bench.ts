/**
 * `npm run bench [-- --scales 1,20,100,500,1000] [--runs N] [--tasks N] [--forks N]`: cairn against the floor
 * (test/bench/floor.ts: node-ssh, one open connection per host, one exec per command) for 50 ×
 * `command: /bin/true` per host on loopback sshd hosts (test/bench/hosts.ts). For each scale: wall time
 * (median of the runs, floor and cairn interleaved), cairn ÷ floor, and each side's controller CPU seconds
 * and max RSS. Never part of `npm test`: timing belongs here, not in unit tests.
 *
 * Every cairn run's whole output is kept in --log-dir (default test-artifacts/bench/<time>/cairn-<hosts>-<run>.log),
 * and a run that fails prints why its hosts were unreachable; the bench goes on to the next scale and exits 1
 * at the end. `--cpu-prof-dir DIR` runs cairn under `node --cpu-prof` (profiles in DIR/<hosts>/). The load
 * average (1 min) is printed before and after each scale: on a shared machine it says what a figure is worth.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { startBenchHosts } from './hosts.js';
import { measure, median, type Measured } from './measure.js';
import { describeUnreachable, unreachableReasons } from './unreachable.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

const SCALES = option('scales', process.env.BENCH_SIZES ?? '1,20,100,500,1000')
  .split(',')
  .map(Number);
const RUNS = Number(option('runs', process.env.BENCH_RUNS ?? '3'));
const TASKS = Number(option('tasks', '50'));
const LOG_DIR = resolve(option('log-dir', join(repoRoot, 'test-artifacts', 'bench', new Date().toISOString())));
const CPU_PROF_DIR = option('cpu-prof-dir', '');
/** --cairn-only: no floor runs (its columns show "-"), when the time for a scale is short. */
const CAIRN_ONLY = process.argv.includes('--cairn-only');
/** Extra arguments for every cairn run (split on spaces), e.g. "-e ansible_timeout=2" to find a limit. */
const CAIRN_ARGS = option('cairn-args', '')
  .split(' ')
  .filter((arg) => arg !== '');
/** Hosts worked on at once, per scale, unless --forks says: see docs/performance.md for why. */
function forksFor(hosts: number): number {
  const forced = option('forks', '');
  if (forced !== '') return Number(forced);
  return hosts <= 20 ? 20 : hosts <= 100 ? 50 : 200;
}

function summary(runs: Measured[]): { wall: number; cpu: number; rss: number } {
  return {
    wall: median(runs.map((r) => r.wallSeconds)),
    cpu: median(runs.map((r) => r.cpuSeconds)),
    rss: Math.max(...runs.map((r) => r.maxRssMb)),
  };
}

function load(): string {
  return loadavg()[0]!.toFixed(1);
}

async function main(): Promise<void> {
  mkdirSync(LOG_DIR, { recursive: true });
  let failures = 0;
  const lab = await startBenchHosts(Math.max(...SCALES));
  try {
    const playbook = join(lab.dir, 'w1.yaml');
    const tasks = Array.from({ length: TASKS }, (_, i) => `    - name: no-op ${i + 1}\n      command: /bin/true\n`);
    writeFileSync(playbook, `- name: bench\n  hosts: all\n  gather_facts: false\n  tasks:\n${tasks.join('')}`);
    console.log(
      `cairn bench: ${TASKS} × command /bin/true per host, loopback sshd, user ${lab.user}, median of ${RUNS}`,
    );
    console.log(`cairn's output: ${LOG_DIR}`);
    const header =
      'hosts | forks | floor s | cairn s | ratio | floor CPU s | cairn CPU s | floor RSS MB | cairn RSS MB';
    console.log(`${header} | load before → after`);
    console.log(
      '------|-------|---------|---------|-------|-------------|-------------|--------------|-------------|---',
    );
    for (const n of SCALES) {
      const loadBefore = load();
      const forks = forksFor(n);
      const inventory = lab.writeInventory(n, `inventory-${n}.yml`);
      const floorHosts = join(lab.dir, `floor-${n}.json`);
      const hosts = lab.hosts.slice(0, n).map((h) => ({ address: h.address, port: h.port }));
      writeFileSync(floorHosts, JSON.stringify({ user: lab.user, privateKeyPath: lab.clientKeyPath, hosts }));
      const floor: Measured[] = [];
      const cairn: Measured[] = [];
      for (let r = 0; r < RUNS; r++) {
        if (!CAIRN_ONLY) {
          const f = await measure(process.execPath, [
            join(repoRoot, 'dist/test/bench/floor.js'),
            floorHosts,
            `${TASKS}`,
            `${forks}`,
          ]);
          if (f.code !== 0) throw new Error(`floor failed (${f.code}): ${f.output}`);
          floor.push(f);
        }
        const profile = CPU_PROF_DIR !== '' ? ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF_DIR, String(n))] : [];
        const args = [
          ...profile,
          join(repoRoot, 'bin/cairn.js'),
          'play',
          playbook,
          '-i',
          inventory,
          '--no-journal',
          '-f',
          `${forks}`,
          ...CAIRN_ARGS,
        ];
        const outputFile = join(LOG_DIR, `cairn-${n}-${r + 1}.log`);
        const c = await measure(process.execPath, args, {
          env: { CAIRN_STATE_DIR: join(lab.dir, 'state') },
          outputFile,
        });
        if (c.code !== 0) {
          const reasons = unreachableReasons(readFileSync(outputFile, 'utf8'));
          console.log(
            `cairn play failed at ${n} hosts (exit ${c.code}, ${c.wallSeconds.toFixed(2)} s); see ${outputFile}`,
          );
          console.log(reasons.length > 0 ? 'unreachable hosts, by reason:' : c.output.slice(-1500));
          for (const line of describeUnreachable(reasons)) console.log(line);
        }
        cairn.push(c);
      }
      if (cairn.some((c) => c.code !== 0)) {
        failures++;
        console.log(
          `${String(n).padStart(5)} | ${String(forks).padStart(5)} | cairn failed (above) | load ${loadBefore} → ${load()}`,
        );
        continue;
      }
      const fl = CAIRN_ONLY ? { wall: NaN, cpu: NaN, rss: NaN } : summary(floor);
      const ca = summary(cairn);
      const cells = [
        String(n).padStart(5),
        String(forks).padStart(5),
        fl.wall.toFixed(2).padStart(7),
        ca.wall.toFixed(2).padStart(7),
        (ca.wall / fl.wall).toFixed(2).padStart(5),
        fl.cpu.toFixed(2).padStart(11),
        ca.cpu.toFixed(2).padStart(11),
        fl.rss.toFixed(0).padStart(12),
        ca.rss.toFixed(0).padStart(12),
      ];
      console.log(`${cells.join(' | ')} | ${loadBefore} → ${load()}`);
    }
    console.log('\ncairn includes node start, inventory and playbook loading, host key checks and the report.');
  } finally {
    await lab.stop();
  }
  if (failures > 0) process.exitCode = 1;
}

await main();
