/**
 * `npm run bench`: cairn's per task-host overhead against the raw floor (node-ssh exec on one open connection
 * per host), for 50 no-op `command` tasks on 1, 5 and 20 loopback sshd hosts. Medians of several runs.
 * Never part of `npm test`: timing belongs here, not in unit tests.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openSshConnection } from '../../runner/core/transport/ssh.js';
import { runCairn } from '../helpers/cli.js';
import { sshdAvailable, startSshHosts } from '../helpers/sshd.js';

const TASKS = 50;
const SIZES = (process.env.BENCH_SIZES ?? '1,5,20').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const ok = sshdAvailable();
  if (!ok.ok) {
    console.error(`bench needs local sshd hosts: ${ok.reason}`);
    process.exit(1);
  }
  const max = Math.max(...SIZES);
  const lab = await startSshHosts(max);
  const rows: string[] = [];
  try {
    const playbook = join(lab.dir, 'bench.yaml');
    const tasks = Array.from({ length: TASKS }, (_, i) => `    - name: no-op ${i + 1}\n      command: "true"\n`).join('');
    writeFileSync(playbook, `- name: bench\n  hosts: all\n  gather_facts: false\n  tasks:\n${tasks}`);
    console.log(`cairn bench: ${TASKS} no-op command tasks per host, median of ${RUNS} runs\n`);
    console.log('hosts | raw floor (s) | cairn play (s) | ratio | cairn overhead per task-host (ms)');
    console.log('------|---------------|----------------|-------|----------------------------------');
    for (const n of SIZES) {
      const hosts = lab.hosts.slice(0, n);
      const inventory = lab.writeInventory({}, {});
      const pattern = hosts.map((h) => h.name).join(':');
      const raw: number[] = [];
      const cairn: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t0 = performance.now();
        await Promise.all(
          hosts.map(async (h) => {
            const conn = await openSshConnection(lab.spec(h.name));
            for (let i = 0; i < TASKS; i++) await conn.exec('true');
            await conn.close();
          }),
        );
        raw.push((performance.now() - t0) / 1000);
        const t1 = performance.now();
        const res = await runCairn(['play', playbook, '-i', inventory, '-l', pattern, '--no-journal', '-f', '20'], { env: { CAIRN_STATE_DIR: join(lab.dir, 'state') } });
        cairn.push((performance.now() - t1) / 1000);
        if (res.code !== 0) throw new Error(`cairn play failed (${res.code}): ${res.stderr}${res.stdout.slice(-1000)}`);
      }
      const rawMedian = median(raw);
      const cairnMedian = median(cairn);
      const perTask = ((cairnMedian - rawMedian) * 1000) / (TASKS * n);
      const row = `${String(n).padStart(5)} | ${rawMedian.toFixed(3).padStart(13)} | ${cairnMedian.toFixed(3).padStart(14)} | ${(cairnMedian / rawMedian).toFixed(2).padStart(5)} | ${perTask.toFixed(2)}`;
      rows.push(row);
      console.log(row);
    }
    console.log('\ncairn play includes the node process start, inventory and playbook loading, one SSH handshake per host and the report.');
  } finally {
    await lab.stop();
  }
}

await main();
