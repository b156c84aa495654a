/**
 * The ZFS modules' planners and verdicts, table-driven over real outputs: `zfs get` (property table and
 * values) and `zpool status` captured on the lab's zfs-fuse host, OpenZFS documentation examples (each
 * fixture file cites its source). The probe sections' own markers (exists=, rc=, impl=) are the modules'
 * scripts' output format, not a tool's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  datasetApplyScript,
  datasetProbeScript,
  planDataset,
  zfsDatasetModule,
} from '../../runner/core/modules/zfs/dataset-module.js';
import { judgeHealth } from '../../runner/core/modules/zfs/health-module.js';
import { planPool, poolApplyScript, poolLayout, zfsPoolModule } from '../../runner/core/modules/zfs/pool-module.js';
import {
  accepts,
  effectiveProperties,
  parsePropertyTable,
  propertyChanges,
  parsePropertyValues,
  sizeToBytes,
} from '../../runner/core/modules/zfs/properties.js';
import { judgeSnapshotAge, parseSnapshotCreation } from '../../runner/core/modules/zfs/snapshot-age-module.js';
import { parseZpoolStatus } from '../../runner/core/modules/zfs/zpool-status.js';
import { FakeConnection, contextFor } from '../helpers/fake-connection.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'zfs');
function fixture(name: string): string {
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  return text.slice(text.indexOf('----- output -----\n') + '----- output -----\n'.length);
}

const USAGE = fixture('lab-fuse-zfs-get-usage.txt');
/** `zfs get -H -p -o property,value,source quota,compression,atime tq` on a fresh zfs-fuse pool (lab pve1, 2026-11-21). */
const FRESH_VALUES = 'quota\t0\tdefault\ncompression\toff\tdefault\natime\ton\tdefault\n';
/** The same after `zfs set compression=lzjb atime=off quota=100M` (values as zfs-fuse printed them with -p). */
const SET_VALUES = 'quota\t104857600\tlocal\ncompression\tlzjb\tlocal\natime\toff\tlocal\n';

function sections(map: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(map));
}

describe('properties', () => {
  const table = parsePropertyTable(USAGE);

  it('reads the property table zfs-fuse prints', () => {
    expect(table.get('compression')).toEqual(['on', 'off', 'lzjb', 'gzip', 'gzip-[1-9]', 'zle']);
    expect(table.get('quota')).toEqual(['<size>', 'none']);
    expect(table.get('userquota@...')).toEqual(['<size>', 'none']);
    expect(table.has('Sizes')).toBe(false);
  });

  const cases: Array<[string, string, boolean | undefined]> = [
    ['compression', 'lz4', false],
    ['compression', 'lzjb', true],
    ['compression', 'gzip-9', true],
    ['compression', 'gzip-10', false],
    ['atime', 'off', true],
    ['quota', '90G', true],
    ['recordsize', '128K', true],
    ['dedup', 'sha256,verify', true],
    ['dedup', 'sha512', false],
    ['org.example:note', 'x', undefined],
  ];
  for (const [property, value, want] of cases) {
    it(`${property}=${value} accepted: ${want}`, () => expect(accepts(table, property, value)).toBe(want));
  }

  it('replaces lz4 by lzjb with a note naming both, and refuses without a fallback', () => {
    const got = effectiveProperties(
      { compression: 'lz4', atime: 'off', quota: '90G' },
      table,
      { compression: { lz4: ['lzjb', 'on'] } },
      'zfs-fuse (pool version 23)',
    );
    expect(got.values).toEqual({ compression: 'lzjb', atime: 'off', quota: '90G' });
    expect(got.substitutions).toEqual([
      {
        property: 'compression',
        wanted: 'lz4',
        used: 'lzjb',
        note: 'compression=lz4 is not supported by zfs-fuse (pool version 23) (it accepts: on | off | lzjb | gzip | gzip-[1-9] | zle); using compression=lzjb, the nearest supported value',
      },
    ]);
    const none = effectiveProperties({ compression: 'zstd' }, table, {});
    expect(none.unsupported[0]).toMatch(
      /^compression=zstd is not supported by this ZFS .*give a fallback in zfs_property_fallbacks$/,
    );
    // Without a readable table, values pass as wanted and zfs judges them.
    expect(effectiveProperties({ compression: 'lz4', atime: false }, undefined).values).toEqual({
      compression: 'lz4',
      atime: 'off',
    });
  });

  it('compares sizes in bytes and plain values as text', () => {
    expect(sizeToBytes('90G')).toBe(90 * 1024 ** 3);
    expect(sizeToBytes('none')).toBe(0);
    expect(sizeToBytes('1.5K')).toBe(1536);
    expect(sizeToBytes('lots')).toBeUndefined();
    expect(
      propertyChanges({ quota: '100M', compression: 'lzjb', atime: 'off' }, parsePropertyValues(SET_VALUES)),
    ).toEqual([]);
    expect(propertyChanges({ quota: 'none', compression: 'lzjb' }, parsePropertyValues(FRESH_VALUES))).toEqual([
      { property: 'compression', from: 'off', to: 'lzjb' },
    ]);
  });
});

describe('zfs_dataset planning', () => {
  const fallbacks = { compression: { lz4: ['lzjb', 'on'] } };

  it('creates a missing dataset with every property, lz4 replaced and said', () => {
    const plan = planDataset(
      { name: 'tank/data', properties: { compression: 'lz4', atime: 'off', quota: '90G' }, fallbacks },
      sections({
        exists: "exists=0\nerror=cannot open 'tank/data': dataset does not exist ",
        table: USAGE,
        impl: 'impl=zfs-fuse',
      }),
    );
    expect(plan.changed).toBe(true);
    expect(plan.actions).toEqual([
      'create dataset tank/data with compression=lzjb, atime=off, quota=90G',
      expect.stringMatching(/^note: compression=lz4 is not supported by zfs-fuse \(pool version 23\)/),
    ]);
    expect(datasetApplyScript(plan.state!)).toBe(
      'zfs create -p -o compression=lzjb -o atime=off -o quota=90G tank/data',
    );
    expect(plan.data?.notes).toHaveLength(1);
  });

  it('sets only what differs, one zfs set per property', () => {
    const plan = planDataset(
      { name: 'tank/data', properties: { compression: 'lz4', atime: 'off', quota: '100M' }, fallbacks },
      sections({ exists: 'exists=1', values: FRESH_VALUES, table: USAGE, impl: 'impl=zfs-fuse' }),
    );
    expect(plan.actions.slice(0, 3)).toEqual([
      'set compression on tank/data: off -> lzjb',
      'set atime on tank/data: on -> off',
      'set quota on tank/data: 0 -> 100M',
    ]);
    expect(datasetApplyScript(plan.state!).split('\n')).toEqual([
      'zfs set compression=lzjb tank/data || exit 1',
      'zfs set atime=off tank/data || exit 1',
      'zfs set quota=100M tank/data || exit 1',
    ]);
  });

  it('is unchanged when the values match, and still carries the note for a NOTE task', () => {
    const plan = planDataset(
      { name: 'tank/data', properties: { compression: 'lz4', atime: 'off', quota: '100M' }, fallbacks },
      sections({ exists: 'exists=1', values: SET_VALUES, table: USAGE, impl: 'impl=zfs-fuse' }),
    );
    expect(plan.changed).toBe(false);
    expect(plan.actions).toEqual([]);
    expect(plan.data?.notes).toEqual([expect.stringContaining('using compression=lzjb')]);
  });

  it('fails when zfs cannot answer (daemon down), instead of planning a create', () => {
    const plan = planDataset(
      { name: 'tank/data', properties: {} },
      sections({
        exists: 'exists=0\nerror=connect: Connection refused Please make sure that the zfs-fuse daemon is running. ',
      }),
    );
    expect(plan.failed).toMatch(/^cannot ask ZFS about tank\/data: connect: Connection refused/);
  });

  it('quotes names and values in the probe and refuses names that are not datasets', async () => {
    expect(datasetProbeScript('tank/data', ['quota', 'compression'])).toContain(
      'zfs get -H -p -o property,value,source quota,compression tank/data',
    );
    const conn = new FakeConnection([]);
    await expect(
      zfsDatasetModule.check(contextFor(conn), { name: 'tank/data; rm -rf /', properties: {} }),
    ).rejects.toThrow(/is not a dataset name/);
    expect(conn.calls).toHaveLength(0);
  });
});

describe('zfs_pool planning', () => {
  const args = {
    name: 'tank',
    vdev_type: 'raidz' as const,
    ashift: 12,
    devices: ['/var/tmp/cap/r1.img', '/var/tmp/cap/r2.img', '/var/tmp/cap/r3.img'],
  };

  it('reads the layout of a raidz pool, missing devices by their "was" path', () => {
    const healthy = parseZpoolStatus(fixture('lab-fuse-healthy-two-pools.txt')).pools[0]!;
    expect(poolLayout(healthy.root)).toEqual([{ type: 'raidz1', leaves: args.devices }]);
    const unavail = parseZpoolStatus(fixture('lab-fuse-degraded-unavail.txt')).pools[0]!;
    expect(poolLayout(unavail.root)).toEqual([{ type: 'raidz1', leaves: args.devices }]);
  });

  it('is unchanged for an existing pool with the wanted layout (degraded or not)', () => {
    for (const file of [
      'lab-fuse-healthy-two-pools.txt',
      'lab-fuse-degraded-offline.txt',
      'lab-fuse-degraded-unavail.txt',
    ]) {
      const plan = planPool(args, sections({ list: 'tank\nvmdata\nrc=0', status: fixture(file) }));
      expect(plan, file).toMatchObject({ changed: false, actions: [] });
      expect(plan.failed, file).toBeUndefined();
    }
  });

  it('refuses to touch a pool with another layout', () => {
    const plan = planPool(
      { ...args, name: 'vmdata', vdev_type: 'raidz2' },
      sections({ list: 'tank\nvmdata\nrc=0', status: fixture('lab-fuse-healthy-two-pools.txt') }),
    );
    expect(plan.failed).toMatch(
      /^pool vmdata exists with layout mirror\(\/var\/tmp\/cap\/m1.img, \/var\/tmp\/cap\/m2.img\), not raidz2\(.*cairn does not rebuild pools/,
    );
  });

  it('plans sparse files and the create command for a missing file-backed pool', () => {
    const plan = planPool(
      { ...args, file_size: '512M' },
      sections({ list: 'no pools available\nrc=0', status: '', files: 'present\nabsent\nabsent' }),
    );
    expect(plan.actions).toEqual([
      'create sparse file /var/tmp/cap/r2.img (512M)',
      'create sparse file /var/tmp/cap/r3.img (512M)',
      'create pool tank: raidz of 3 devices, ashift=12',
    ]);
    expect(poolApplyScript(plan.state!).split('\n')).toEqual([
      'mkdir -p -- /var/tmp/cap || exit 1',
      '[ -e /var/tmp/cap/r2.img ] || truncate -s 512M -- /var/tmp/cap/r2.img || exit 1',
      'mkdir -p -- /var/tmp/cap || exit 1',
      '[ -e /var/tmp/cap/r3.img ] || truncate -s 512M -- /var/tmp/cap/r3.img || exit 1',
      'zpool create -o ashift=12 tank raidz /var/tmp/cap/r1.img /var/tmp/cap/r2.img /var/tmp/cap/r3.img',
    ]);
  });

  it('fails when pools cannot be listed, and refuses bad arguments before any round trip', async () => {
    expect(planPool(args, sections({ list: 'error=connect: Connection refused \nrc=1' })).failed).toBe(
      'cannot list ZFS pools: connect: Connection refused',
    );
    const conn = new FakeConnection([]);
    await expect(
      zfsPoolModule.check(contextFor(conn), { ...args, vdev_type: 'raidz2', devices: ['/a', '/b'] }),
    ).rejects.toThrow(/raidz2 needs at least 3 devices/);
    await expect(zfsPoolModule.check(contextFor(conn), { ...args, name: 'mirror' })).rejects.toThrow(
      /not a usable pool name/,
    );
    await expect(
      zfsPoolModule.check(contextFor(conn), { ...args, file_size: '1G', devices: ['a.img', 'b.img', 'c.img'] }),
    ).rejects.toThrow(/needs an absolute path/);
    expect(conn.calls).toHaveLength(0);
  });
});

describe('zpool_health verdict', () => {
  it('names the offline vdev and its place, with the pool state', () => {
    const verdict = judgeHealth(
      { pools: ['tank'] },
      sections({ status: fixture('lab-fuse-degraded-offline.txt'), list: 'tank\t752M\t1.30M\t751M\t0%\tDEGRADED\n' }),
    );
    expect(verdict.failed).toBe(
      '/var/tmp/cap/r2.img (in raidz1-0) is OFFLINE; raidz1-0 is DEGRADED; pool tank is DEGRADED',
    );
    expect(verdict.data?.problem_vdevs).toEqual([
      {
        pool: 'tank',
        vdev: '/var/tmp/cap/r2.img',
        path: 'tank > raidz1-0 > /var/tmp/cap/r2.img',
        state: 'OFFLINE',
        read: 0,
        write: 0,
        cksum: 0,
      },
      { pool: 'tank', vdev: 'raidz1-0', path: 'tank > raidz1-0', state: 'DEGRADED', read: 0, write: 0, cksum: 0 },
    ]);
  });

  it('passes a healthy pool under the limit and fails it over the limit', () => {
    const status = fixture('lab-fuse-healthy-two-pools.txt');
    const ok = judgeHealth(
      { pools: ['vmdata'] },
      sections({ status, list: 'vmdata\t250M\t41.4M\t209M\t16%\tONLINE\n' }),
    );
    expect(ok.failed).toBeUndefined();
    expect(ok.data?.msg).toBe('vmdata ONLINE 16% used');
    const full = judgeHealth(
      { pools: ['vmdata'], capacity_max_pct: 10 },
      sections({ status, list: 'vmdata\t250M\t41.4M\t209M\t16%\tONLINE\n' }),
    );
    expect(full.failed).toBe('pool vmdata is 16% full, over the 10% limit');
  });

  it('reports a wanted pool that is not imported, and no pools at all', () => {
    expect(
      judgeHealth({ pools: ['tank'] }, sections({ status: "cannot open 'tank': no such pool\n", list: '' })).failed,
    ).toBe('pool tank is not imported: no such pool');
    expect(judgeHealth({}, sections({ status: 'no pools available\n', list: '' })).failed).toBe(
      'no ZFS pool is imported (no pools available)',
    );
  });
});

describe('zfs_snapshot_age verdict', () => {
  /** `zfs get -H -p -r -d 1 creation tank/data` on the lab's pve1 after two sanoid runs and one manual snapshot. */
  const CREATION = [
    'tank/data\tcreation\t1795267454\t-',
    'tank/data@a1\tcreation\t1795267454\t-',
    'tank/data@autosnap_2026-11-21_13:24:27_daily\tcreation\t1795267467\t-',
    'tank/data@autosnap_2026-11-21_13:24:27_hourly\tcreation\t1795267467\t-',
    'tank/data/child@autosnap_x\tcreation\t1795267999\t-',
  ].join('\n');

  it("finds the dataset's own newest matching snapshot", () => {
    expect(parseSnapshotCreation(CREATION, 'tank/data').map((s) => s.name)).toEqual([
      'tank/data@a1',
      'tank/data@autosnap_2026-11-21_13:24:27_daily',
      'tank/data@autosnap_2026-11-21_13:24:27_hourly',
    ]);
    const ok = judgeSnapshotAge(
      { dataset: 'tank/data', max_age_s: 7200, name_contains: 'autosnap_' },
      sections({ now: '1795267767', snapshots: CREATION }),
    );
    expect(ok.failed).toBeUndefined();
    expect(ok.data).toMatchObject({ count: 2, age_s: 300, newest: 'tank/data@autosnap_2026-11-21_13:24:27_daily' });
  });

  it('fails when too old, when none matches, and when the dataset is missing', () => {
    const old = judgeSnapshotAge(
      { dataset: 'tank/data', max_age_s: 3600, name_contains: 'autosnap_' },
      sections({ now: String(1795267467 + 3 * 3600), snapshots: CREATION }),
    );
    expect(old.failed).toBe(
      'newest snapshot matching "autosnap_" of tank/data is 3.0 h old (tank/data@autosnap_2026-11-21_13:24:27_daily), over the 60 min the policy allows',
    );
    expect(
      judgeSnapshotAge(
        { dataset: 'tank/data', max_age_s: 60, name_contains: 'syncoid_' },
        sections({ now: '1795267767', snapshots: CREATION }),
      ).failed,
    ).toBe('tank/data has no snapshot matching "syncoid_" (3 snapshots in all)');
    expect(
      judgeSnapshotAge(
        { dataset: 'tank/x', max_age_s: 60 },
        sections({ now: '1', snapshots: "cannot open 'tank/x': dataset does not exist" }),
      ).failed,
    ).toBe('dataset tank/x does not exist');
  });
});
