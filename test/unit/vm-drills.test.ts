/**
 * The VM drills' reading of a host's storage (runner/features/drills/vm-faults.ts): which md arrays and ZFS
 * pools a data disk carries, and what is unhealthy, from the text a lab VM prints. The drills themselves run
 * on real VMs in test/lab/70-vm.test.ts and 72-vm-zfs.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  carriedBy,
  leafOf,
  parseStorage,
  storageProblems,
  vdevOnDisk,
} from '../../runner/features/drills/vm-faults.js';

const MDSTAT_HEALTHY = `Personalities : [raid1]
md127 : active raid1 vdd[1] vdc[0]
      1046528 blocks super 1.2 [2/2] [UU]

unused devices: <none>
`;
const MDSTAT_DEGRADED = `Personalities : [raid1]
md127 : active raid1 vdd[1]
      1046528 blocks super 1.2 [2/1] [_U]

unused devices: <none>
`;
const ZPOOL = (state: string, d1: string) => `  pool: tank
 state: ${state}
config:

	NAME                                      STATE     READ WRITE CKSUM
	tank                                      ${state}     0     0     0
	  raidz1-0                                ${state}     0     0     0
	    /dev/disk/by-id/virtio-vm1-d3-part1   ONLINE       0     0     0
	    /dev/disk/by-id/virtio-vm1-d4-part1   ${d1}       0     0     0
	    /dev/disk/by-id/virtio-vm1-d5-part1   ONLINE       0     0     0

errors: No known data errors
`;

function out(mdstat: string, zpool: string, disks: Record<number, string>): string {
  return [
    '@@cairn-drill disks',
    ...Object.entries(disks).map(([n, k]) => `${n} ${k ? `/dev/${k}` : ''}`),
    '@@cairn-drill mdstat',
    mdstat,
    '@@cairn-drill zpool',
    zpool,
    '@@cairn-drill ceph',
    '',
  ].join('\n');
}

describe('what a VM data disk carries', () => {
  it('maps disks to md members and pool vdevs by kernel name and by-id path', () => {
    const s = parseStorage(
      out(MDSTAT_HEALTHY, ZPOOL('ONLINE', 'ONLINE'), { 1: 'vdc', 2: 'vdd', 3: 'vde', 4: 'vdf', 5: 'vdg', 6: 'vdh' }),
    );
    expect(carriedBy(s, 'vm1', 1)).toEqual({ arrays: ['md127'], pools: [] });
    expect(carriedBy(s, 'vm1', 4)).toEqual({
      arrays: [],
      pools: [{ pool: 'tank', vdev: '/dev/disk/by-id/virtio-vm1-d4-part1' }],
    });
    expect(carriedBy(s, 'vm1', 6)).toEqual({ arrays: [], pools: [] });
    expect(storageProblems(s)).toEqual([]);
  });

  it('does not take disk 1 for disk 10, nor vdc for vdcd', () => {
    expect(vdevOnDisk('/dev/disk/by-id/virtio-vm1-d10-part1', '/dev/disk/by-id/virtio-vm1-d1', 'vdc')).toBe(false);
    expect(vdevOnDisk('/dev/vdcd1', '/dev/disk/by-id/virtio-vm1-d1', 'vdc')).toBe(false);
    expect(vdevOnDisk('/dev/vdc1', '/dev/disk/by-id/virtio-vm1-d1', 'vdc')).toBe(true);
  });

  it('names a degraded array and a DEGRADED pool with its lost vdev', () => {
    const s = parseStorage(out(MDSTAT_DEGRADED, ZPOOL('DEGRADED', 'REMOVED'), { 2: 'vdd' }));
    const problems = storageProblems(s);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^md127 \(raid1\): degraded/);
    expect(problems[1]).toMatch(/^pool tank: .*virtio-vm1-d4-part1.*REMOVED/);
  });

  it('finds a lost vdev that zpool lists by its GUID ("was PATH")', () => {
    const text = ZPOOL('DEGRADED', 'ONLINE').replace(
      '/dev/disk/by-id/virtio-vm1-d4-part1   ONLINE       0     0     0',
      '1234567890123456789                   UNAVAIL      0     0     0  was /dev/disk/by-id/virtio-vm1-d4-part1',
    );
    const s = parseStorage(out('', text, {}));
    expect(leafOf(s.pools[0], '/dev/disk/by-id/virtio-vm1-d4-part1')).toMatchObject({
      name: '1234567890123456789',
      state: 'UNAVAIL',
    });
    expect(leafOf(s.pools[0], '/dev/disk/by-id/virtio-vm1-d9-part1')).toBeUndefined();
  });

  it('reads a VM without OpenZFS or md as carrying nothing', () => {
    const s = parseStorage(out('Personalities : \nunused devices: <none>\n', '', { 1: 'vdc' }));
    expect(s.arrays).toEqual([]);
    expect(s.pools).toEqual([]);
    expect(carriedBy(s, 'vm1', 1)).toEqual({ arrays: [], pools: [] });
  });
});
