/**
 * RAID verdicts from real outputs: which arrays pass, and the one-line message an operator reads.
 */
import { describe, expect, it } from 'vitest';
import { assessRaid, compressNumbers, summariseRaid, type ArrayHealth } from '../../runner/core/modules/raid/health.js';
import { parseMdadmDetails } from '../../runner/core/modules/raid/mdadm-detail.js';
import { parseMdstat } from '../../runner/core/modules/raid/mdstat.js';
import { loadRaidFixture } from '../fixtures/raid/fixture.js';

function fromMdstat(name: string, allowRecovering?: boolean): ArrayHealth[] {
  return assessRaid(
    parseMdstat(loadRaidFixture(name).body, name),
    [],
    allowRecovering === undefined ? {} : { allowRecovering },
  );
}

function fromDetail(name: string): ArrayHealth[] {
  return assessRaid(undefined, parseMdadmDetails(loadRaidFixture(name).body, name));
}

const verdicts: Array<{ fixture: string; arrays: Array<[string, ArrayHealth['verdict'], boolean]> }> = [
  { fixture: 'healthy-raid1.mdstat', arrays: [['md127', 'healthy', true]] },
  {
    fixture: 'healthy-2.4-raid5-raid1.mdstat',
    arrays: [
      ['md2', 'healthy', true],
      ['md1', 'healthy', true],
      ['md0', 'healthy', true],
    ],
  },
  { fixture: 'resync-raid1.mdstat', arrays: [['md127', 'resyncing', true]] },
  { fixture: 'inactive.mdstat', arrays: [['md127', 'inactive', false]] },
  {
    fixture: 'failed-raid1-2.4.mdstat',
    arrays: [
      ['md3', 'failed', false],
      ['md2', 'failed', false],
      ['md1', 'failed', false],
      ['md4', 'failed', false],
    ],
  },
  {
    fixture: 'recovery-raid1-2.4.mdstat',
    arrays: [
      ['md3', 'failed', false],
      ['md2', 'failed', false],
      ['md1', 'recovering', true],
      ['md4', 'failed', false],
    ],
  },
  { fixture: 'degraded-raid10.mdstat', arrays: [['md127', 'degraded', false]] },
  { fixture: 'none.mdstat', arrays: [] },
  {
    fixture: 'resync-spares-bitmap.mdstat',
    arrays: [
      ['md1', 'resyncing', true],
      ['md256', 'healthy', true],
      ['md13', 'degraded', false],
      ['md9', 'degraded', false],
    ],
  },
];

describe('assessRaid verdicts on real mdstat outputs', () => {
  for (const c of verdicts) {
    it(c.fixture, () => {
      expect(fromMdstat(c.fixture).map((a) => [a.name, a.verdict, a.ok])).toEqual(c.arrays);
    });
  }
});

describe('assessRaid messages', () => {
  it('a failed member is named, with the slot it left and what is still in the array', () => {
    const md3 = fromMdstat('failed-raid1-2.4.mdstat')[0]!;
    expect(md3).toMatchObject({
      level: 'raid1',
      state: 'active',
      failed: ['sdb1'],
      missing: ['slot 1'],
      members: ['sdb1 (faulty)', 'sda1'],
      sources: ['mdstat'],
    });
    expect(md3.message).toBe(
      'md3 (raid1): failed: member sdb1 is faulty; 1 member missing (slot 1); [2/2] [U_]; members: sdb1 (faulty), sda1',
    );
  });

  it('missing members without (F) are counted by slot', () => {
    expect(fromMdstat('degraded-raid10.mdstat')[0]!.message).toMatch(
      /^md127 \(raid10\): degraded: 2 members missing \(slots 17, 19\); \[22\/20\] \[UUUUUUUUUUUUUUUUU_U_UU\]; members: sdw, /,
    );
    expect(fromMdstat('resync-spares-bitmap.mdstat')[2]!.message).toBe(
      'md13 (raid1): degraded: 19 members missing (slots 5-23); [24/5] [UUUUU___________________]; members: sdb4, sdf4, sdd4, sda4, sdc4',
    );
  });

  it('a rebuild reports its progress, and passes unless recovering arrays are refused', () => {
    const md1 = fromMdstat('recovery-raid1-2.4.mdstat')[2]!;
    expect(md1.progress).toEqual({
      action: 'recovery',
      percent: 8.1,
      done: 251596,
      total: 3068288,
      finishMinutes: 6.7,
      speedKiBps: 6963,
    });
    expect(md1.message).toBe(
      'md1 (raid1): recovering: 1 member missing (slot 1); recovery 8.1% done, 6963K/sec, about 6.7 min left; [2/1] [U_]; members: sdb3, sda3',
    );
    expect(fromMdstat('recovery-raid1-2.4.mdstat', false)[2]).toMatchObject({ verdict: 'recovering', ok: false });
  });

  it('an inactive array lists its (spare) members', () => {
    expect(fromMdstat('inactive.mdstat')[0]!.message).toBe('md127: inactive: not running (members: sdc1 (spare))');
  });

  it('mdadm --detail alone: faulty devices, removed and rebuilding slots', () => {
    expect(fromDetail('detail-healthy-raid1.detail')[0]).toMatchObject({
      name: 'md2',
      verdict: 'healthy',
      ok: true,
      state: 'clean',
      message: 'md2 (raid1): healthy; [4/4]',
    });
    expect(fromDetail('detail-faulty-raid1.detail')[0]!.message).toBe(
      'md1 (raid1): failed: member /dev/sda3 is faulty; 1 member missing (slot 0); [2/1]; members: /dev/sdb3, /dev/sda3 (faulty)',
    );
    expect(fromDetail('detail-removed-raid1.detail')[0]).toMatchObject({
      verdict: 'degraded',
      ok: false,
      missing: ['slot 0'],
      state: 'active, degraded',
    });
    expect(fromDetail('detail-recovering-raid1.detail')[0]).toMatchObject({
      verdict: 'recovering',
      ok: true,
      missing: ['slot 0'],
      progress: { action: 'rebuild', percent: 10 },
      members: ['/dev/sdb1 (spare, rebuilding)', '/dev/sdc1'],
    });
  });

  it('mdadm adds the names mdstat lacks when both describe an array', () => {
    // The kernel's view of md1 says only [2/1] [U_]; mdadm names the faulty device and the empty slot.
    const mdstat = parseMdstat(
      'Personalities : [raid1]\nmd1 : active raid1 sdb3[1]\n      41909248 blocks super 1.2 [2/1] [_U]\n\nunused devices: <none>\n',
    );
    const [md1] = assessRaid(mdstat, parseMdadmDetails(loadRaidFixture('detail-faulty-raid1.detail').body));
    expect(md1).toMatchObject({
      name: 'md1',
      verdict: 'failed',
      failed: ['sda3'],
      missing: ['slot 0'],
      sources: ['mdstat', 'mdadm'],
      state: 'active',
    });
    // Arrays only mdadm knows are still judged.
    expect(
      assessRaid(mdstat, parseMdadmDetails(loadRaidFixture('detail-healthy-raid1.detail').body)).map((a) => [
        a.name,
        a.verdict,
      ]),
    ).toEqual([
      ['md1', 'degraded'],
      ['md2', 'healthy'],
    ]);
  });
});

describe('summariseRaid', () => {
  it('passes with no arrays, all healthy, or with notes for resync and rebuild', () => {
    expect(summariseRaid([])).toEqual({ ok: true, message: 'no md arrays', notes: [] });
    expect(summariseRaid(fromMdstat('healthy-2.4-raid5-raid1.mdstat')).message).toBe('3 md arrays healthy');
    const resync = summariseRaid(fromMdstat('resync-raid1.mdstat'));
    expect(resync.ok).toBe(true);
    expect(resync.message).toBe(
      '1 md array passes (0 healthy): md127 (raid1): resyncing: resync 50.4% done, 67648K/sec, about 6.4 min left; [2/2] [UU]; members: sdc1, sdc2',
    );
  });

  it('fails with every failing array in the message', () => {
    const summary = summariseRaid(fromMdstat('recovery-raid1-2.4.mdstat'));
    expect(summary.ok).toBe(false);
    expect(summary.message.split(' | ').map((m) => m.split(':')[0])).toEqual([
      'md3 (raid1)',
      'md2 (raid1)',
      'md4 (raid1)',
    ]);
    expect(summary.notes).toHaveLength(1);
  });

  it('compresses slot numbers into ranges', () => {
    expect(compressNumbers([5, 6, 7, 8, 1, 3])).toBe('1, 3, 5-8');
    expect(compressNumbers([17, 19])).toBe('17, 19');
    expect(compressNumbers([2, 3])).toBe('2, 3');
  });
});
