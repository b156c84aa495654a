/**
 * /proc/mdstat parsing, table-driven over real outputs (test/fixtures/raid/*.mdstat, each citing its source).
 */
import { describe, expect, it } from 'vitest';
import { CairnError } from '../../runner/core/util/errors.js';
import { parseMdstat, type MdArray } from '../../runner/core/modules/raid/mdstat.js';
import { loadRaidFixture, raidFixtureNames } from '../fixtures/raid/fixture.js';

interface ArrayExpectation {
  name: string;
  active: boolean;
  level?: string;
  members: string[];
  faulty?: string[];
  spares?: string[];
  raidDisks?: number;
  workingDisks?: number;
  slotMap?: string;
  sync?: MdArray['sync'];
  metadata?: string;
  bitmap?: string;
}

const cases: Array<{ fixture: string; personalities: string[]; arrays: ArrayExpectation[] }> = [
  {
    fixture: 'healthy-raid1.mdstat',
    personalities: ['linear', 'multipath', 'raid0', 'raid1', 'raid6', 'raid5', 'raid4', 'raid10'],
    arrays: [
      {
        name: 'md127',
        active: true,
        level: 'raid1',
        members: ['sdc1', 'sdc2'],
        raidDisks: 2,
        workingDisks: 2,
        slotMap: 'UU',
        metadata: '1.2',
      },
    ],
  },
  {
    fixture: 'resync-raid1.mdstat',
    personalities: ['linear', 'multipath', 'raid0', 'raid1', 'raid6', 'raid5', 'raid4', 'raid10'],
    arrays: [
      {
        name: 'md127',
        active: true,
        level: 'raid1',
        members: ['sdc1', 'sdc2'],
        slotMap: 'UU',
        sync: {
          action: 'resync',
          percent: 50.4,
          done: 26409536,
          total: 52395008,
          finishMinutes: 6.4,
          speedKiBps: 67648,
        },
      },
    ],
  },
  {
    fixture: 'inactive.mdstat',
    personalities: ['linear', 'multipath', 'raid0', 'raid1', 'raid6', 'raid5', 'raid4', 'raid10'],
    arrays: [{ name: 'md127', active: false, members: ['sdc1'], spares: ['sdc1'], metadata: '1.2' }],
  },
  {
    fixture: 'healthy-2.4-raid5-raid1.mdstat',
    personalities: ['raid1', 'raid5'],
    arrays: [
      {
        name: 'md2',
        active: true,
        level: 'raid5',
        members: ['hdc3', 'hde3', 'hdg3'],
        raidDisks: 3,
        workingDisks: 3,
        slotMap: 'UUU',
      },
      {
        name: 'md1',
        active: true,
        level: 'raid1',
        members: ['hdc2', 'hde2', 'hdg2'],
        raidDisks: 2,
        workingDisks: 2,
        slotMap: 'UU',
      },
      {
        name: 'md0',
        active: true,
        level: 'raid1',
        members: ['hdc1', 'hde1', 'hdg1'],
        raidDisks: 3,
        workingDisks: 3,
        slotMap: 'UUU',
      },
    ],
  },
  {
    fixture: 'failed-raid1-2.4.mdstat',
    personalities: ['raid1'],
    arrays: [
      // The 2.4 kernel printed [2/2] next to [U_] here: both are kept as printed.
      {
        name: 'md3',
        active: true,
        level: 'raid1',
        members: ['sdb1', 'sda1'],
        faulty: ['sdb1'],
        raidDisks: 2,
        workingDisks: 2,
        slotMap: 'U_',
      },
      {
        name: 'md2',
        active: true,
        level: 'raid1',
        members: ['sdb2', 'sda2'],
        faulty: ['sdb2'],
        raidDisks: 2,
        workingDisks: 2,
        slotMap: 'U_',
      },
      {
        name: 'md1',
        active: true,
        level: 'raid1',
        members: ['sdb3', 'sda3'],
        faulty: ['sdb3'],
        raidDisks: 2,
        workingDisks: 1,
        slotMap: 'U_',
      },
      {
        name: 'md4',
        active: true,
        level: 'raid1',
        members: ['sdb4', 'sda4'],
        faulty: ['sdb4'],
        raidDisks: 2,
        workingDisks: 1,
        slotMap: 'U_',
      },
    ],
  },
  {
    fixture: 'recovery-raid1-2.4.mdstat',
    personalities: ['raid1'],
    arrays: [
      { name: 'md3', active: true, level: 'raid1', members: ['sdb1', 'sda1'], faulty: ['sdb1'], slotMap: 'U_' },
      { name: 'md2', active: true, level: 'raid1', members: ['sdb2', 'sda2'], faulty: ['sdb2'], slotMap: 'U_' },
      {
        name: 'md1',
        active: true,
        level: 'raid1',
        members: ['sdb3', 'sda3'],
        faulty: [],
        raidDisks: 2,
        workingDisks: 1,
        slotMap: 'U_',
        sync: { action: 'recovery', percent: 8.1, done: 251596, total: 3068288, finishMinutes: 6.7, speedKiBps: 6963 },
      },
      { name: 'md4', active: true, level: 'raid1', members: ['sdb4', 'sda4'], faulty: ['sdb4'], slotMap: 'U_' },
    ],
  },
  {
    fixture: 'degraded-raid10.mdstat',
    personalities: ['raid10'],
    arrays: [
      {
        name: 'md127',
        active: true,
        level: 'raid10',
        members: [
          'sdw',
          'sdv',
          'sdu',
          'sds',
          'sdq',
          'sdp',
          'sdo',
          'sdk',
          'sdm',
          'sdn',
          'sdl',
          'sdj',
          'sdi',
          'sdh',
          'sdg',
          'sdf',
          'sde',
          'sdc',
          'sda',
          'sdb',
        ],
        faulty: [],
        raidDisks: 22,
        workingDisks: 20,
        slotMap: 'UUUUUUUUUUUUUUUUU_U_UU',
        metadata: '1.2',
      },
    ],
  },
  { fixture: 'none.mdstat', personalities: ['linear', 'raid0', 'raid1', 'raid5'], arrays: [] },
  {
    fixture: 'resync-spares-bitmap.mdstat',
    personalities: ['linear', 'raid0', 'raid1', 'raid10', 'raid6', 'raid5', 'raid4', 'multipath'],
    arrays: [
      {
        name: 'md1',
        active: true,
        level: 'raid5',
        members: ['sda3', 'sdc3', 'sdd3'],
        slotMap: 'UUU',
        metadata: '1.0',
        sync: {
          action: 'resync',
          percent: 2.5,
          done: 100223808,
          total: 3897063424,
          finishMinutes: 744.1,
          speedKiBps: 85037,
        },
      },
      {
        name: 'md256',
        active: true,
        level: 'raid1',
        members: ['sdb2', 'sdf2', 'sda2', 'sdc2', 'sdd2'],
        spares: ['sdb2', 'sdf2', 'sda2'],
        slotMap: 'UU',
        bitmap: '0/1 pages [0KB], 65536KB chunk',
      },
      {
        name: 'md13',
        active: true,
        level: 'raid1',
        members: ['sdb4', 'sdf4', 'sdd4', 'sda4', 'sdc4'],
        raidDisks: 24,
        workingDisks: 5,
        slotMap: 'UUUUU___________________',
      },
      {
        name: 'md9',
        active: true,
        level: 'raid1',
        members: ['sdb1', 'sdf1', 'sdd1', 'sda1', 'sdc1'],
        raidDisks: 24,
        workingDisks: 5,
        bitmap: '1/1 pages [4KB], 65536KB chunk',
      },
    ],
  },
];

describe('parseMdstat on real outputs', () => {
  it('covers every .mdstat fixture', () => {
    expect(cases.map((c) => c.fixture).sort()).toEqual(raidFixtureNames().filter((n) => n.endsWith('.mdstat')));
  });

  for (const c of cases) {
    it(`${c.fixture} (${loadRaidFixture(c.fixture).source})`, () => {
      const parsed = parseMdstat(loadRaidFixture(c.fixture).body, c.fixture);
      expect(parsed.personalities).toEqual(c.personalities);
      expect(parsed.unusedDevices).toEqual([]);
      expect(parsed.arrays.map((a) => a.name)).toEqual(c.arrays.map((a) => a.name));
      c.arrays.forEach((want, i) => {
        const got = parsed.arrays[i]!;
        expect(got.active, want.name).toBe(want.active);
        expect(got.level, want.name).toBe(want.level);
        expect(
          got.members.map((m) => m.device),
          want.name,
        ).toEqual(want.members);
        if (want.faulty)
          expect(
            got.members.filter((m) => m.faulty).map((m) => m.device),
            want.name,
          ).toEqual(want.faulty);
        expect(
          got.members.filter((m) => m.spare).map((m) => m.device),
          want.name,
        ).toEqual(want.spares ?? []);
        if (want.raidDisks !== undefined)
          expect([got.raidDisks, got.workingDisks], want.name).toEqual([want.raidDisks, want.workingDisks]);
        if (want.slotMap !== undefined) expect(got.slotMap, want.name).toBe(want.slotMap);
        expect(got.sync, want.name).toEqual(want.sync);
        if (want.metadata !== undefined) expect(got.metadata, want.name).toBe(want.metadata);
        if (want.bitmap !== undefined) expect(got.bitmap, want.name).toBe(want.bitmap);
      });
    });
  }
});

describe('parseMdstat details', () => {
  it('keeps member numbers and the write-mostly, journal and replacement flags', () => {
    // Header shapes from prometheus/procfs#505 (md6, md11), which quotes real mdstat header lines.
    const parsed = parseMdstat(
      'md11 : active (auto-read-only) raid1 sdb2[0] sdc2[1] sdc3[2](F) hda[4](S) ssdc2[3](S)\n      1 blocks [2/2] [UU]\n',
    );
    const md11 = parsed.arrays[0]!;
    expect(md11.readOnly).toBe('auto-read-only');
    expect(md11.level).toBe('raid1');
    expect(md11.members.map((m) => [m.device, m.number, m.faulty, m.spare])).toEqual([
      ['sdb2', 0, false, false],
      ['sdc2', 1, false, false],
      ['sdc3', 2, true, false],
      ['hda', 4, false, true],
      ['ssdc2', 3, false, true],
    ]);
    const flags = parseMdstat('md0 : active raid1 sda1[0](W) sdb1[1](R) nvme0n1[2](J)\n').arrays[0]!.members;
    expect(flags.map((m) => [m.writeMostly, m.replacement, m.journal])).toEqual([
      [true, false, false],
      [false, true, false],
      [false, false, true],
    ]);
  });

  it('reads waiting sync actions and the 2.4 inline progress', () => {
    expect(
      parseMdstat('md1 : active raid1 sda1[0] sdb1[1]\n  100 blocks [2/2] [UU]\n    resync=DELAYED\n').arrays[0]!.sync,
    ).toEqual({ action: 'resync', waiting: 'delayed' });
    expect(
      parseMdstat('md0 : active raid1 sda2[1] sdb2[0]\n 9940 blocks [2/2] [UU] resync=1% finish=12.3min\n').arrays[0]!
        .sync,
    ).toEqual({ action: 'resync', percent: 1, finishMinutes: 12.3 });
  });

  it('an empty or absent-array file is no arrays, not an error', () => {
    expect(parseMdstat('').arrays).toEqual([]);
    expect(parseMdstat('Personalities : \nunused devices: <none>\n')).toEqual({
      personalities: [],
      arrays: [],
      unusedDevices: [],
    });
  });

  it('a header it cannot read is an error naming the source, line and word', () => {
    let caught: unknown;
    try {
      parseMdstat('Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1{1}\n', 'web1:/tmp/mdstat');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CairnError);
    expect((caught as CairnError).render()).toBe(
      'web1:/tmp/mdstat:2: cannot read "sdb1{1}" in the header of md0 (expected a level like raid1, then members like sda1[0](F))\n2 | md0 : active raid1 sda1[0] sdb1{1}',
    );
    const renderOf = (text: string): string => {
      try {
        parseMdstat(text, 'x');
      } catch (err) {
        return (err as CairnError).render();
      }
      return 'no error';
    };
    expect(renderOf('md0 : started raid1\n')).toMatch(/^x:1: cannot read this array header/);
    expect(renderOf('   12 blocks [2/2] [UU]\n')).toMatch(/^x:1: a line outside any array block/);
  });
});
