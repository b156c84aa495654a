/**
 * `npm run bench [-- --scales 1,20,100,500,1000] [--runs N] [--tasks N] [--forks N]`: cairn against the floor
 * (test/bench/floor.ts: node-ssh, one open connection per host, one exec per command) for 50 ×
 * `command: /bin/true` per host on loopback sshd hosts (test/bench/hosts.ts). For each scale: wall time
 * (median of the runs, floor and cairn interleaved), cairn ÷ floor, and each side's controller CPU seconds
 * and max RSS. Never part of `npm test`: timing belongs here, not in unit tests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { startBenchHosts } from './hosts.js';
import { measure, median, type Measured } from './measure.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

const SCALES = option('scales', process.env.BENCH_SIZES ?? '1,20,100,500,1000')
  .split(',')
  .map(Number);
const RUNS = Number(option('runs', process.env.BENCH_RUNS ?? '3'));
const TASKS = Number(option('tasks', '50'));
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

async function main(): Promise<void> {
  const lab = await startBenchHosts(Math.max(...SCALES));
  try {
    const playbook = join(lab.dir, 'w1.yaml');
    const tasks = Array.from({ length: TASKS }, (_, i) => `    - name: no-op ${i + 1}\n      command: /bin/true\n`);
    writeFileSync(playbook, `- name: bench\n  hosts: all\n  gather_facts: false\n  tasks:\n${tasks.join('')}`);
    console.log(
      `cairn bench: ${TASKS} × command /bin/true per host, loopback sshd, user ${lab.user}, median of ${RUNS}`,
    );
    console.log('hosts | forks | floor s | cairn s | ratio | floor CPU s | cairn CPU s | floor RSS MB | cairn RSS MB');
    console.log('------|-------|---------|---------|-------|-------------|-------------|--------------|-------------');
    for (const n of SCALES) {
      const forks = forksFor(n);
      const inventory = lab.writeInventory(n, `inventory-${n}.yml`);
      const floorHosts = join(lab.dir, `floor-${n}.json`);
      const hosts = lab.hosts.slice(0, n).map((h) => ({ address: h.address, port: h.port }));
      writeFileSync(floorHosts, JSON.stringify({ user: lab.user, privateKeyPath: lab.clientKeyPath, hosts }));
      const floor: Measured[] = [];
      const cairn: Measured[] = [];
      for (let r = 0; r < RUNS; r++) {
        const f = await measure(process.execPath, [
          join(repoRoot, 'dist/test/bench/floor.js'),
          floorHosts,
          `${TASKS}`,
          `${forks}`,
        ]);
        if (f.code !== 0) throw new Error(`floor failed (${f.code}): ${f.output}`);
        floor.push(f);
        const args = [
          join(repoRoot, 'bin/cairn.js'),
          'play',
          playbook,
          '-i',
          inventory,
          '--no-journal',
          '-f',
          `${forks}`,
        ];
        const c = await measure(process.execPath, args, { env: { CAIRN_STATE_DIR: join(lab.dir, 'state') } });
        if (c.code !== 0) throw new Error(`cairn play failed (${c.code}): ${c.output}`);
        cairn.push(c);
      }
      const fl = summary(floor);
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
      console.log(cells.join(' | '));
    }
    console.log('\ncairn includes node start, inventory and playbook loading, host key checks and the report.');
  } finally {
    await lab.stop();
  }
}

await main();
