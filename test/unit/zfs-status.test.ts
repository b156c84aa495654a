/**
 * zpool status parsing and pool health, table-driven over real outputs: OpenZFS documentation examples and
 * outputs captured on the lab's zfs-fuse hosts. Each fixture file names its source in its header.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assessPool, parseZpoolList } from '../../runner/core/modules/zfs/health.js';
import { leafVdevs, parseCounter, parseZpoolStatus, walkVdevs } from '../../runner/core/modules/zfs/zpool-status.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'zfs');
const MARK = '----- output -----\n';

/** The output part of a fixture (after its source header). */
function fixture(name: string): string {
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  const at = text.indexOf(MARK);
  if (at < 0) throw new Error(`${name}: no "${MARK.trim()}" line under the source header`);
  return text.slice(at + MARK.length);
}

interface Case {
  file: string;
  pools: Array<{
    name: string;
    state: string;
    leaves: Array<[name: string, state: string, read: number, write: number, cksum: number, note?: string]>;
    scan?: { kind: string; inProgress: boolean; percentDone?: number };
    healthy: boolean;
    /** Substrings the health problems must contain, in order. */
    problems: string[];
  }>;
}

const CASES: Case[] = [
  {
    file: 'lab-fuse-healthy-two-pools.txt',
    pools: [
      {
        name: 'tank',
        state: 'ONLINE',
        leaves: [
          ['/var/tmp/cap/r1.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/r2.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/r3.img', 'ONLINE', 0, 0, 0],
        ],
        scan: { kind: 'none', inProgress: false },
        healthy: true,
        problems: [],
      },
      {
        name: 'vmdata',
        state: 'ONLINE',
        leaves: [
          ['/var/tmp/cap/m1.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/m2.img', 'ONLINE', 0, 0, 0],
        ],
        healthy: true,
        problems: [],
      },
    ],
  },
  {
    file: 'lab-fuse-degraded-offline.txt',
    pools: [
      {
        name: 'tank',
        state: 'DEGRADED',
        leaves: [
          ['/var/tmp/cap/r1.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/r2.img', 'OFFLINE', 0, 0, 0],
          ['/var/tmp/cap/r3.img', 'ONLINE', 0, 0, 0],
        ],
        healthy: false,
        problems: ['/var/tmp/cap/r2.img (in raidz1-0) is OFFLINE', 'raidz1-0 is DEGRADED', 'pool tank is DEGRADED'],
      },
    ],
  },
  {
    file: 'lab-fuse-degraded-unavail.txt',
    pools: [
      {
        name: 'tank',
        state: 'DEGRADED',
        leaves: [
          ['/var/tmp/cap/r1.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/r2.img', 'ONLINE', 0, 0, 0],
          ['6631456833826233295', 'UNAVAIL', 0, 0, 0, 'was /var/tmp/cap/r3.img'],
        ],
        healthy: false,
        problems: ['6631456833826233295 (in raidz1-0) is UNAVAIL (was /var/tmp/cap/r3.img)', 'raidz1-0 is DEGRADED'],
      },
    ],
  },
  {
    file: 'lab-fuse-online-resilvered.txt',
    pools: [
      {
        name: 'tank',
        state: 'ONLINE',
        leaves: [
          ['/var/tmp/cap/r1.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/r2.img', 'ONLINE', 0, 0, 0, '12K resilvered'],
          ['/var/tmp/cap/r3.img', 'ONLINE', 0, 0, 0],
        ],
        scan: { kind: 'resilver', inProgress: false },
        healthy: true,
        problems: [],
      },
    ],
  },
  {
    file: 'lab-fuse-online-cksum-errors.txt',
    pools: [
      {
        name: 'vmdata',
        state: 'ONLINE',
        leaves: [
          ['/var/tmp/cap/m1.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/m2.img', 'ONLINE', 0, 0, 281, '31.3M repaired'],
        ],
        scan: { kind: 'scrub', inProgress: false },
        healthy: false,
        problems: ['/var/tmp/cap/m2.img (in mirror-0) is ONLINE but has 281 checksum errors (31.3M repaired)'],
      },
    ],
  },
  {
    file: 'lab-fuse-reimported-cksum.txt',
    pools: [
      {
        name: 'tank',
        state: 'ONLINE',
        leaves: [
          ['/var/tmp/cap/r1.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/r2.img', 'ONLINE', 0, 0, 0],
          ['/var/tmp/cap/r3.img', 'ONLINE', 0, 0, 1, '36K resilvered'],
        ],
        healthy: false,
        problems: ['/var/tmp/cap/r3.img (in raidz1-0) is ONLINE but has 1 checksum error (36K resilvered)'],
      },
    ],
  },
  {
    file: 'openzfs-8000-2Q-faulted-cannot-open.txt',
    pools: [
      {
        name: 'test',
        state: 'DEGRADED',
        leaves: [
          ['sda', 'ONLINE', 0, 0, 0],
          ['sdb', 'FAULTED', 0, 0, 0, 'cannot open'],
        ],
        scan: { kind: 'none', inProgress: false },
        healthy: false,
        problems: ['sdb (in mirror) is FAULTED (cannot open)', 'mirror is DEGRADED', 'pool test is DEGRADED'],
      },
    ],
  },
  {
    file: 'openzfs-8000-9P-online-cksum.txt',
    pools: [
      {
        name: 'test',
        state: 'ONLINE',
        leaves: [
          ['c0t0d0', 'ONLINE', 0, 0, 2],
          ['c0t0d1', 'ONLINE', 0, 0, 0],
        ],
        healthy: false,
        problems: ['c0t0d0 (in mirror) is ONLINE but has 2 checksum errors'],
      },
    ],
  },
  {
    file: 'openzfs-8000-9P-resilver-in-progress.txt',
    pools: [
      {
        name: 'test',
        state: 'DEGRADED',
        leaves: [
          ['c0t0d0', 'ONLINE', 0, 0, 3],
          ['c0t0d2', 'ONLINE', 0, 0, 0, '58.5K resilvered'],
          ['c0t0d1', 'ONLINE', 0, 0, 0],
        ],
        scan: { kind: 'resilver', inProgress: true, percentDone: 0.14 },
        healthy: false,
        problems: [
          'c0t0d0 (in replacing) is ONLINE but has 3 checksum errors',
          'pool test is DEGRADED',
          'pool test is resilvering (0.14% done)',
        ],
      },
    ],
  },
  {
    file: 'openzfs-8000-K4-faulted-log.txt',
    pools: [
      {
        name: 'test',
        state: 'FAULTED',
        leaves: [
          ['c3t2d0', 'ONLINE', 0, 0, 0],
          ['c5t3d0', 'UNAVAIL', 0, 0, 0, 'cannot open'],
        ],
        healthy: false,
        problems: [
          'c5t3d0 (in logs) is UNAVAIL (cannot open)',
          'logs (class) is FAULTED (bad intent log)',
          'pool test is FAULTED (bad intent log)',
        ],
      },
    ],
  },
  {
    file: 'openzfs-8000-K4-degraded-log-unavail.txt',
    pools: [
      {
        name: 'test',
        state: 'DEGRADED',
        leaves: [
          ['c3t2d0', 'ONLINE', 0, 0, 0],
          ['c5t3d0', 'UNAVAIL', 0, 0, 0, 'cannot open'],
        ],
        healthy: false,
        problems: ['c5t3d0 (in logs) is UNAVAIL (cannot open)', 'logs (class) is DEGRADED', 'pool test is DEGRADED'],
      },
    ],
  },
  {
    file: 'openzfs-8000-ER-errata-online.txt',
    pools: [
      {
        name: 'test',
        state: 'ONLINE',
        leaves: [
          ['vdev0', 'ONLINE', 0, 0, 0],
          ['vdev1', 'ONLINE', 0, 0, 0],
          ['vdev2', 'ONLINE', 0, 0, 0],
          ['vdev3', 'ONLINE', 0, 0, 0],
        ],
        scan: { kind: 'none', inProgress: false },
        healthy: true,
        problems: [],
      },
    ],
  },
];

describe('parseZpoolStatus + assessPool on real outputs', () => {
  for (const c of CASES) {
    it(c.file, () => {
      const report = parseZpoolStatus(fixture(c.file));
      expect(report.pools.map((p) => p.name)).toEqual(c.pools.map((p) => p.name));
      for (const [i, want] of c.pools.entries()) {
        const pool = report.pools[i]!;
        expect(pool.state).toBe(want.state);
        const leaves = leafVdevs(pool.root).map((l) => [
          l.name,
          l.state,
          l.read,
          l.write,
          l.cksum,
          ...(l.note ? [l.note] : []),
        ]);
        expect(leaves).toEqual(want.leaves);
        if (want.scan) expect(pool.scan).toMatchObject(want.scan);
        const health = assessPool(pool);
        expect(health.healthy).toBe(want.healthy);
        expect(health.problems.length).toBeGreaterThanOrEqual(want.problems.length);
        let from = 0;
        for (const expected of want.problems) {
          const at = health.problems.findIndex((p, idx) => idx >= from && p.includes(expected));
          expect(at, `"${expected}" in ${JSON.stringify(health.problems)}`).toBeGreaterThanOrEqual(from);
          from = at + 1;
        }
      }
    });
  }

  it('builds the tree with parents and classes (K4: a log device under "logs")', () => {
    const pool = parseZpoolStatus(fixture('openzfs-8000-K4-faulted-log.txt')).pools[0]!;
    const nodes = walkVdevs(pool.root);
    expect(nodes.map((n) => [n.name, n.kind, n.depth])).toEqual([
      ['test', 'pool', 0],
      ['c3t2d0', 'leaf', 1],
      ['logs', 'class', 1],
      ['c5t3d0', 'leaf', 2],
    ]);
    expect(nodes[3]!.vdevClass).toBe('logs');
    expect(nodes[3]!.parents).toEqual(['test', 'logs']);
    expect(pool.errors).toBeUndefined();
    expect(pool.status).toBe(
      'One or more of the intent logs could not be read. Waiting for administrator intervention to fix the faulted pool.',
    );
  });

  it('keeps multi-line header fields and the see: link', () => {
    const pool = parseZpoolStatus(fixture('lab-fuse-degraded-offline.txt')).pools[0]!;
    expect(pool.status).toBe(
      'One or more devices has been taken offline by the administrator. Sufficient replicas exist for the pool to continue functioning in a degraded state.',
    );
    expect(pool.action).toBe("Online the device using 'zpool online' or replace the device with 'zpool replace'.");
    expect(pool.errors).toBe('No known data errors');
    const unavail = parseZpoolStatus(fixture('lab-fuse-degraded-unavail.txt')).pools[0]!;
    expect(unavail.see).toBe('http://www.sun.com/msg/ZFS-8000-2Q');
  });

  it('names exactly the offline vdev and nothing healthy', () => {
    const health = assessPool(parseZpoolStatus(fixture('lab-fuse-degraded-offline.txt')).pools[0]!);
    const leafProblems = health.vdevProblems.filter((p) => p.vdev.startsWith('/'));
    expect(leafProblems.map((p) => [p.vdev, p.state, p.path])).toEqual([
      ['/var/tmp/cap/r2.img', 'OFFLINE', 'tank > raidz1-0 > /var/tmp/cap/r2.img'],
    ]);
  });

  it('reads `zpool status -x` with nothing to report', () => {
    const report = parseZpoolStatus(fixture('lab-fuse-x-healthy.txt'));
    expect(report).toEqual({ pools: [], allHealthy: true, noPools: false });
    expect(parseZpoolStatus('no pools available\n')).toEqual({ pools: [], allHealthy: false, noPools: true });
  });

  it('flags capacity over the limit and notes the last scan', () => {
    const pool = parseZpoolStatus(fixture('lab-fuse-online-resilvered.txt')).pools[0]!;
    const full = assessPool(pool, { capacityPct: 81, capacityMaxPct: 75 });
    expect(full.healthy).toBe(false);
    expect(full.problems).toEqual(['pool tank is 81% full, over the 75% limit']);
    expect(full.notes[0]).toMatch(/last scan: resilver completed after 0h0m with 0 errors/);
    expect(assessPool(pool, { capacityPct: 75, capacityMaxPct: 75 }).healthy).toBe(true);
  });
});

describe('parseCounter', () => {
  const table: Array<[string, number]> = [
    ['0', 0],
    ['281', 281],
    ['1K', 1024],
    ['1.5K', 1536],
    ['2M', 2 * 1024 * 1024],
  ];
  for (const [text, value] of table) it(`${text} -> ${value}`, () => expect(parseCounter(text)).toBe(value));
  it('is NaN for words', () => expect(parseCounter('cannot')).toBeNaN());
});

describe('parseZpoolList', () => {
  it('reads the lab capture', () => {
    expect(parseZpoolList(fixture('lab-fuse-zpool-list.txt'))).toEqual([
      { name: 'tank', size: '752M', allocated: '1.30M', free: '751M', capacityPct: 0, health: 'DEGRADED' },
      { name: 'vmdata', size: '250M', allocated: '41.4M', free: '209M', capacityPct: 16, health: 'ONLINE' },
    ]);
  });
});
