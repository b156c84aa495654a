/**
 * `npm run bench:console`: how many lines the console prints for a no-change rerun on many hosts (issue 16:
 * at most 60 by default on 20 and on 100 hosts). Real sshd hosts on loopback, the engine's integration
 * playbook (test/fixtures/play/site.yaml: a role with a dependency, templates, loops, handlers, probes), run
 * once to converge, then rerun by default (compact from 10 hosts up) and with --full. Counts, not timings:
 * but it starts up to 100 sshd, so it is a bench, not a unit test.
 */
import { join } from 'node:path';
import { repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts } from '../helpers/sshd.js';

const SIZES = (process.env.BENCH_SIZES ?? '20,100').split(',').map(Number);
const playbook = join(repoRoot, 'test', 'fixtures', 'play', 'site.yaml');

function lines(text: string): number {
  return text.split('\n').filter((_, i, all) => i < all.length - 1 || all[i] !== '').length;
}

async function main(): Promise<void> {
  requireSshd();
  console.log('hosts | first run (default) | no-change rerun (default) | no-change rerun (--full) | exit codes');
  console.log('------|---------------------|---------------------------|--------------------------|-----------');
  for (const n of SIZES) {
    const names = Array.from({ length: n }, (_, i) => `app${i + 1}`);
    const lab = await startSshHosts(n, { names });
    try {
      const inventory = lab.writeInventory(
        { app: names },
        Object.fromEntries(lab.hosts.map((h) => [h.name, { host_dir: h.dir }])),
      );
      const env = { CAIRN_STATE_DIR: join(lab.dir, 'state') };
      const opts = { env, timeoutMs: 1_800_000 };
      const first = await runCairn(['play', playbook, '-i', inventory], opts);
      const again = await runCairn(['play', playbook, '-i', inventory], opts);
      const full = await runCairn(['play', playbook, '-i', inventory, '--full'], opts);
      console.log(
        `${String(n).padStart(5)} | ${String(lines(first.stdout)).padStart(19)} | ${String(lines(again.stdout)).padStart(25)} | ${String(lines(full.stdout)).padStart(24)} | ${first.code} ${again.code} ${full.code}`,
      );
      if (process.env.BENCH_SHOW) console.log(again.stdout);
    } finally {
      await lab.stop();
    }
  }
}

await main();
