/** mount's pure parts: fstab editing as Ansible's set_mount/unset_mount, escapes, and the apply script. */
import { describe, expect, it } from 'vitest';
import {
  editFstab,
  escapeFstab,
  escapeMountinfo,
  mountApplyScript,
  wantedEntry,
  type MountPlan,
} from '../../../runner/core/modules/mount.js';

const tmp = wantedEntry({ path: '/mnt/t', src: 'tmpfs', fstype: 'tmpfs', opts: 'size=1m', state: 'mounted' });

describe('editFstab', () => {
  it.each([
    [
      'appends a missing entry',
      'proc /proc proc defaults 0 0\n',
      { set: tmp },
      'proc /proc proc defaults 0 0\ntmpfs /mnt/t tmpfs size=1m 0 0\n',
      true,
    ],
    [
      'leaves an equal entry byte for byte (any spacing, a trailing comment)',
      'tmpfs\t/mnt/t  tmpfs size=1m 0 0 # scratch\n',
      { set: tmp },
      'tmpfs\t/mnt/t  tmpfs size=1m 0 0 # scratch\n',
      false,
    ],
    [
      'rewrites a different entry in place',
      '# c\ntmpfs /mnt/t tmpfs size=2m 0 0\nx /y ext4 defaults 0 2\n',
      { set: tmp },
      '# c\ntmpfs /mnt/t tmpfs size=1m 0 0\nx /y ext4 defaults 0 2\n',
      true,
    ],
    [
      'a 4-field line reads dump and passno as 0',
      'tmpfs /mnt/t tmpfs size=1m\n',
      { set: tmp },
      'tmpfs /mnt/t tmpfs size=1m\n',
      false,
    ],
    [
      'removes every line of the mount point',
      'a /mnt/t tmpfs x 0 0\nb /keep ext4 d 0 0\nc /mnt/t tmpfs y 0 0\n',
      { remove: { name: '/mnt/t' } },
      'b /keep ext4 d 0 0\n',
      true,
    ],
    [
      'removing a missing entry changes nothing',
      'b /keep ext4 d 0 0',
      { remove: { name: '/mnt/t' } },
      'b /keep ext4 d 0 0',
      false,
    ],
    [
      'swap entries match by source',
      '/dev/a none swap sw 0 0\n',
      { remove: { name: 'none', src: '/dev/b' } },
      '/dev/a none swap sw 0 0\n',
      false,
    ],
  ] as const)('%s', (_what, before, change, after, changed) => {
    expect(editFstab(before, change as Parameters<typeof editFstab>[1])).toEqual({ text: after, changed });
  });

  it('escapes as fstab and mountinfo do; boot: false adds noauto once', () => {
    expect(escapeFstab('/a b&c\\d')).toBe('/a\\040b\\046c\\134d');
    expect(escapeMountinfo('/a b\tc\\')).toBe('/a\\040b\\011c\\134');
    expect(wantedEntry({ path: '/m', src: 's', fstype: 't', state: 'present', boot: false }).opts).toBe(
      'defaults,noauto',
    );
    expect(wantedEntry({ path: '/m', src: 's', fstype: 't', opts: 'noauto', state: 'present', boot: false }).opts).toBe(
      'noauto',
    );
  });
});

describe('mountApplyScript', () => {
  const base: MountPlan = {
    path: "/mnt/it's",
    fstab: '/etc/fstab',
    backup: false,
    mkdir: false,
    mount: false,
    remount: false,
    umount: false,
    rmdir: false,
  };
  it('quotes the path, ends options with --, and passes -T only for another fstab', () => {
    expect(mountApplyScript({ ...base, mount: true })).toBe(`mount -- '/mnt/it'\\''s' 2>&1 || exit 83`);
    expect(mountApplyScript({ ...base, fstab: '/x/fstab', mount: true })).toBe(
      `mount -T /x/fstab -- '/mnt/it'\\''s' 2>&1 || exit 83`,
    );
    expect(mountApplyScript({ ...base, remount: true, remountOpts: 'ro' })).toContain(`mount -o remount,ro -- `);
  });
});
