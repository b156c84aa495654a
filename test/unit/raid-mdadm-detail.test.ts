/**
 * `mdadm --detail` parsing, table-driven over real outputs (test/fixtures/raid/*.detail, each citing its
 * source).
 */
import { describe, expect, it } from 'vitest';
import { CairnError } from '../../runner/core/util/errors.js';
import { mdName, parseMdadmDetails, type MdadmDevice } from '../../runner/core/modules/raid/mdadm-detail.js';
import { loadRaidFixture, raidFixtureNames } from '../fixtures/raid/fixture.js';

const cases: Array<{
  fixture: string;
  device: string;
  level: string;
  state: string[];
  counts: [number, number, number, number, number, number];
  progress?: { action: string; percent: number };
  devices: MdadmDevice[];
}> = [
  {
    fixture: 'detail-healthy-raid1.detail',
    device: '/dev/md2',
    level: 'raid1',
    state: ['clean'],
    counts: [4, 4, 4, 4, 0, 0],
    devices: [
      { number: 0, major: 8, minor: 5, slot: 0, state: ['active', 'sync'], path: '/dev/sda5' },
      { number: 1, major: 8, minor: 21, slot: 1, state: ['active', 'sync'], path: '/dev/sdb5' },
      { number: 2, major: 8, minor: 37, slot: 2, state: ['active', 'sync'], path: '/dev/sdc5' },
      { number: 4, major: 8, minor: 53, slot: 3, state: ['active', 'sync'], path: '/dev/sdd5' },
    ],
  },
  {
    fixture: 'detail-faulty-raid1.detail',
    device: '/dev/md1',
    level: 'raid1',
    state: ['active', 'degraded'],
    counts: [2, 2, 1, 1, 1, 0],
    devices: [
      { number: null, major: 0, minor: 0, slot: 0, state: ['removed'] },
      { number: 1, major: 8, minor: 19, slot: 1, state: ['active', 'sync'], path: '/dev/sdb3' },
      { number: 0, major: 8, minor: 3, slot: null, state: ['faulty'], path: '/dev/sda3' },
    ],
  },
  {
    fixture: 'detail-removed-raid1.detail',
    device: '/dev/md2',
    level: 'raid1',
    state: ['active', 'degraded'],
    counts: [2, 1, 1, 1, 0, 0],
    devices: [
      { number: 0, major: 0, minor: 0, slot: 0, state: ['removed'] },
      { number: 1, major: 8, minor: 34, slot: 1, state: ['active', 'sync'], path: '/dev/sdc2' },
    ],
  },
  {
    fixture: 'detail-recovering-raid1.detail',
    device: '/dev/md127',
    level: 'raid1',
    state: ['clean', 'degraded', 'recovering'],
    counts: [2, 2, 1, 2, 0, 1],
    progress: { action: 'rebuild', percent: 10 },
    devices: [
      { number: 2, major: 8, minor: 17, slot: 0, state: ['spare', 'rebuilding'], path: '/dev/sdb1' },
      { number: 1, major: 8, minor: 33, slot: 1, state: ['active', 'sync'], path: '/dev/sdc1' },
    ],
  },
];

describe('parseMdadmDetails on real outputs', () => {
  it('covers every .detail fixture', () => {
    expect(cases.map((c) => c.fixture).sort()).toEqual(raidFixtureNames().filter((n) => n.endsWith('.detail')));
  });

  for (const c of cases) {
    it(`${c.fixture} (${loadRaidFixture(c.fixture).source})`, () => {
      const [detail, ...rest] = parseMdadmDetails(loadRaidFixture(c.fixture).body, c.fixture);
      expect(rest).toEqual([]);
      expect(detail!.device).toBe(c.device);
      expect(detail!.level).toBe(c.level);
      expect(detail!.state).toEqual(c.state);
      expect([
        detail!.raidDevices,
        detail!.totalDevices,
        detail!.activeDevices,
        detail!.workingDevices,
        detail!.failedDevices,
        detail!.spareDevices,
      ]).toEqual(c.counts);
      expect(detail!.progress).toEqual(c.progress);
      expect(detail!.devices).toEqual(c.devices);
    });
  }

  it('splits concatenated outputs (one per array) and keeps every field', () => {
    const text = [
      loadRaidFixture('detail-healthy-raid1.detail').body,
      loadRaidFixture('detail-faulty-raid1.detail').body,
    ].join('\n');
    const details = parseMdadmDetails(text);
    expect(details.map((d) => d.device)).toEqual(['/dev/md2', '/dev/md1']);
    expect(details[1]!.fields['Consistency Policy']).toBe('resync');
    expect(details[1]!.fields['Creation Time']).toBe('Wed Aug  7 19:22:37 2024');
  });

  it('ignores an error line before the output; rejects text that is not mdadm output', () => {
    expect(parseMdadmDetails('mdadm: cannot open /dev/md9: No such file or directory\n')).toEqual([]);
    const renderOf = (text: string, source: string): string => {
      try {
        parseMdadmDetails(text, source);
      } catch (err) {
        return (err as CairnError).render();
      }
      return 'no error';
    };
    expect(renderOf('/dev/md0:\nnothing here\n', 'web1:detail')).toMatch(
      /^web1:detail:1: \/dev\/md0 has no "Key : value" fields/,
    );
    expect(renderOf('/dev/md0:\n State : clean\n    Number   Major   Minor   RaidDevice State\n  x y\n', 'd')).toMatch(
      /^d:4: cannot read this device row of \/dev\/md0/,
    );
  });

  it('names arrays as mdstat does', () => {
    expect(['/dev/md1', '/dev/md/1', '/dev/md/md1', '/dev/md/data', '/dev/md127'].map(mdName)).toEqual([
      'md1',
      'md1',
      'md1',
      'data',
      'md127',
    ]);
  });
});
