/**
 * The CLI's heap growth limit (runner/core/util/heap.ts), counted in bytes, not timed: a child process keeps a
 * fixed set of objects alive and replaces a ring of longer-lived ones many times over (as a run at hundreds of
 * hosts does: a task's objects live for a round trip, long enough to be promoted, then die), and reports the
 * largest heap it reached and what was live at the end. With the limit the heap stays near what is live; the
 * control without it shows V8's default letting the heap grow to several times that.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

const CHURN = `
const [heapModule] = process.argv.slice(1);
if (heapModule) (await import(heapModule)).limitHeapGrowth();
const live = [];
for (let i = 0; i < 300000; i++) live.push({ i, name: 'live-' + i, list: [i] });
const ring = new Array(200000);
let peak = 0;
for (let round = 0; round < 40; round++) {
  for (let i = 0; i < 100000; i++) ring[(round * 100000 + i) % ring.length] = { round, i, name: 'churn-' + i, list: [i, round] };
  peak = Math.max(peak, process.memoryUsage().heapTotal);
}
globalThis.gc();
console.log(JSON.stringify({ peak, live: process.memoryUsage().heapUsed, kept: live.length + ring.length }));
`;

function churn(withLimit: boolean): { peak: number; live: number } {
  const heapModule = join(repoRoot, 'dist', 'runner', 'core', 'util', 'heap.js');
  const args = ['--expose-gc', '--input-type=module', '-e', CHURN, ...(withLimit ? [heapModule] : [])];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`churn child failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as { peak: number; live: number };
}

describe('heap growth limit', () => {
  it('keeps the heap within 2.5× of what is live, where V8 alone lets it reach several times that', () => {
    const limited = churn(true);
    const control = churn(false);
    // ~80 MB stays live in both.
    expect(limited.live).toBeGreaterThan(60 * 1024 * 1024);
    expect(limited.peak).toBeLessThan(limited.live * 2.5);
    expect(control.peak).toBeGreaterThan(limited.peak * 1.5);
  });
});
