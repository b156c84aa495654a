/**
 * The rollout's own drills: backup-age reads the newest archive from borgmatic's JSON (a real capture,
 * test/fixtures/rollout/borgmatic/README.md); load-probe finds the VIP's URL and probes a real HTTP server on
 * loopback, bounded in requests.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { getDrill } from '../../runner/features/drills/registry.js';
import { newestArchiveTime, probeUrl } from '../../runner/features/drills/rollout.js';
import type { DrillContext } from '../../runner/features/drills/types.js';
import type { Inventory } from '../../runner/core/inventory/types.js';
import { packageRoot } from '../../runner/core/util/paths.js';

function context(options: Record<string, string>, vars: Record<string, unknown> = {}): DrillContext {
  const inventory = {
    path: '/inv',
    hosts: new Map([['lb1', { name: 'lb1', vars, groups: ['all'], location: { file: '/inv' } }]]),
    groups: new Map(),
    hostVars: () => vars,
    varOrigin: () => undefined,
    select: () => ['lb1'],
    secretValues: () => [],
  } as unknown as Inventory;
  return {
    inventory,
    hostVars: () => vars,
    exec: () => Promise.reject(new Error('no host in this test')),
    log: () => {},
    signal: new AbortController().signal,
    options,
    play: () => Promise.resolve(0),
    drift: () => Promise.reject(new Error('no drift check in this test')),
    verify: () => Promise.reject(new Error('no verify in this test')),
  };
}

describe('backup-age', () => {
  it('reads the newest archive time from `borgmatic list --last 1 --json`', () => {
    const json = readFileSync(
      join(packageRoot(), 'test', 'fixtures', 'rollout', 'borgmatic', 'list-last-1.json'),
      'utf8',
    );
    expect(newestArchiveTime(json)).toBe('2026-11-21T13:51:11.000000');
  });

  it('takes the newest over several repositories, and finds none in an empty one or in junk', () => {
    const two = JSON.stringify([
      { archives: [{ time: '2026-01-01T01:00:00.000000' }] },
      { archives: [{ time: '2026-01-01T03:00:00.000000' }, { start: '2026-01-01T02:00:00.000000' }] },
    ]);
    expect(newestArchiveTime(two)).toBe('2026-01-01T03:00:00.000000');
    expect(newestArchiveTime('[{"archives": [], "repository": {}}]')).toBeUndefined();
    expect(newestArchiveTime('borgmatic: error: unrecognized arguments')).toBeUndefined();
  });
});

describe('load-probe', () => {
  it('probes the VIP from vip_address, or the URL given', () => {
    expect(probeUrl(context({}, { vip_address: '10.77.0.10' }))).toBe('http://10.77.0.10:80/');
    expect(probeUrl(context({ vip: '10.0.0.5', port: '8080' }))).toBe('http://10.0.0.5:8080/');
    expect(probeUrl(context({ url: 'http://127.0.0.1:9/x' }))).toBe('http://127.0.0.1:9/x');
    expect(() => probeUrl(context({}, { vip_address: '{{ lookup }}' }))).toThrow(
      /no VIP: set vip_address in the inventory, or --set vip=ADDRESS or --set url=URL/,
    );
    expect(() => probeUrl(context({ url: 'ftp://x' }))).toThrow(/expected an http:\/\/ URL/);
  });

  it('sends exactly the bounded number of requests and reports availability and P99', async () => {
    let served = 0;
    const server = createServer((_req, res) => {
      served++;
      // Every tenth request fails: availability 90 %.
      res.statusCode = served % 10 === 0 ? 503 : 200;
      res.end('ok\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const outcome = await getDrill('load-probe')!.run(
        context({ url, concurrency: '7', requests: '100', interval_ms: '0' }),
      );
      expect(served).toBe(100);
      expect(outcome.measured).toMatchObject({ requests: 100, failed: 10, availability_pct: 90, concurrency: 7 });
      expect(outcome.passed).toBe(false);
      expect(outcome.target).toBe('availability ≥ 99.95 %, P99 ≤ 800 ms (document 000)');
      expect(outcome.msg).toMatch(/^100 requests, 10 failed \(90 %\), P99 [\d.]+ ms; first failure: HTTP 503$/);
      await expect(getDrill('load-probe')!.run(context({ url, concurrency: '500' }))).rejects.toThrow(
        /--set concurrency=500: expected a number from 1 to 200/,
      );
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
