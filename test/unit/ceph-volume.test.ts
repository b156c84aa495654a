/**
 * OSDs by ceph-volume on whole devices (roles/ceph with ceph_osd_backend lvm; runner/core/modules/ceph/volume*.ts):
 * the listing `ceph-volume lvm list --format json` read strictly as hostile input (a table of broken and
 * malicious listings, each refused with what was wrong), the per-device plan (blank -> an OSD, this cluster's
 * OSD -> nothing, anything else -> refused naming host and device), the module's check and apply over a fake
 * host, the role's OSD tasks through the real engine (check predicts exactly the device added to the
 * inventory), and the probe and the apply script's last-moment guard run by this machine's /bin/sh on real
 * loop devices (blkid and lsblk for real; ceph-volume itself cannot run here: no device-mapper).
 *
 * The listing fixture is built in ceph-volume 16.2.15's own layout (test/fixtures/ceph/README.md says how);
 * the OSD trees are the lab captures the ceph_health tests use; blkid's and lsblk's texts below are what
 * util-linux 2.38.1 (Debian 12) printed on this machine for the cases named.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import '../../runner/core/modules/all.js';
import { CephOutputError } from '../../runner/core/modules/ceph/health.js';
import { parseOsdTreeJson } from '../../runner/core/modules/ceph/status.js';
import {
  parseBlkidExport,
  parseLsblkTree,
  parseLvmList,
  planVolumes,
  refusalMessage,
  upInProblems,
  type DeviceProbe,
  type VolumeEntry,
} from '../../runner/core/modules/ceph/volume.js';
import {
  cephOsdVolumesModule,
  deviceProbesFrom,
  listingFrom,
  volumeApplyScript,
  volumeProbeScript,
} from '../../runner/core/modules/ceph/volume-module.js';
import { formatSection, parseSections } from '../../runner/core/modules/remote.js';
import { contextFor, FakeConnection, frameSections, makeTestEngine } from '../helpers/fake-connection.js';
import { repoRoot } from '../helpers/cli.js';

const FSID = 'ce82dcad-1445-4e2a-a6e5-6ad4619944a6';
/** A cephx key's shape (the role's schema checks it); never a real cluster's. */
const KEY = 'AQBqPBFn1NgOIxAAJ0kPw3PhZ3hXkxyQ4E0R1Q==';
const OTHER_FSID = '0b5e0c39-8f0a-4d0e-9a4e-3f6d1b2c7a90';
const LISTING = readFileSync(new URL('../fixtures/ceph/ceph-volume-list-shape.json', import.meta.url), 'utf8');
const LISTED = JSON.parse(LISTING) as Record<string, Array<Record<string, unknown>>>;

/** An OSD tree from a lab capture (test/fixtures/ceph/lab-probe-*.txt, section osd_tree). */
function capturedTree(name: string): string {
  const text = readFileSync(new URL(`../fixtures/ceph/${name}`, import.meta.url), 'utf8');
  const section = parseSections(frameSections(text.slice(text.indexOf('\n---\n') + 5))).get('osd_tree')!;
  // The probe's own status line (::rc=0) follows the command's JSON.
  return section.replace(/\n::rc=\d+\s*$/, '').trim();
}

/** The fixture with one entry changed (a hostile or broken listing). */
function listingWith(edit: (doc: Record<string, unknown>) => void): string {
  const doc = JSON.parse(LISTING) as Record<string, unknown>;
  edit(doc);
  return JSON.stringify(doc);
}
const first = (doc: Record<string, unknown>) => (doc['0'] as Array<Record<string, unknown>>)[0]!;
const tagsOf = (doc: Record<string, unknown>) => first(doc).tags as Record<string, unknown>;

describe('ceph-volume lvm list --format json, read strictly', () => {
  it('reads the listing: each OSD with its type, LV, devices and fsids', () => {
    expect(parseLvmList(LISTING)).toEqual([
      {
        osdId: 0,
        type: 'block',
        path: LISTED['0']![0]!.path,
        devices: ['/dev/vdd'],
        osdFsid: '9b1f6c2e-3d4a-4e5f-8a7b-1c2d3e4f5a60',
        clusterFsid: FSID,
      },
      {
        osdId: 3,
        type: 'block',
        path: LISTED['3']![0]!.path,
        devices: ['/dev/vde'],
        osdFsid: '2c3d4e5f-6a7b-4c8d-9e0f-a1b2c3d4e5f6',
        clusterFsid: FSID,
      },
    ]);
  });

  it("reads an empty listing (a host without OSDs prints {}) and listing.py's report of a db partition", () => {
    expect(parseLvmList('{}\n')).toEqual([]);
    const withDb = listingWith((doc) => {
      (doc['0'] as unknown[]).push({ tags: { PARTUUID: 'a1b2' }, type: 'db', path: '/dev/vdf1' });
    });
    expect(parseLvmList(withDb).find((e) => e.type === 'db')).toEqual({
      osdId: 0,
      type: 'db',
      path: '/dev/vdf1',
      devices: ['/dev/vdf1'],
    });
  });

  const hostile: Array<[string, string, RegExp]> = [
    ['nothing', '', /printed nothing/],
    ['a warning instead of JSON', 'WARNING: lvmetad is running\n{}', /did not print JSON/],
    ['a list', '[]', /expected a JSON object of OSD ids/],
    ['a string', '"0"', /expected a JSON object of OSD ids/],
    ['an id that is a word', '{"osd.0": []}', /"osd\.0" is not an OSD id/],
    ['a negative id', '{"-1": []}', /"-1" is not an OSD id/],
    ['an id with a leading zero', listingWith((d) => ((d['03'] = d['3']), delete d['3'])), /"03" is not an OSD id/],
    ['an OSD with no volumes', '{"0": []}', /osd 0 is not a list of volumes/],
    ['an OSD that is an object', '{"0": {"type": "block"}}', /osd 0 is not a list of volumes/],
    ['an entry that is a string', '{"0": ["block"]}', /osd 0 entry 0 is not an object/],
    ['an unknown type', listingWith((d) => (first(d).type = 'blocky')), /type "blocky" is not one of/],
    [
      'a path outside /dev',
      listingWith((d) => (first(d).path = '/etc/shadow')),
      /path "\/etc\/shadow" is not a device path/,
    ],
    ['a path climbing out of /dev', listingWith((d) => (first(d).path = '/dev/../etc/x')), /is not a device path/],
    ['a path with a newline', listingWith((d) => (first(d).path = '/dev/vg/lv\nrc=0')), /is not a device path/],
    ['tags that are a string', listingWith((d) => (first(d).tags = 'ceph.osd_id=0')), /tags is not an object/],
    [
      'a tag that is a number',
      listingWith((d) => (tagsOf(d)['ceph.osd_id'] = 0)),
      /tag "ceph\.osd_id" is not a string/,
    ],
    [
      'an LV listed under another OSD than its tag',
      listingWith((d) => (tagsOf(d)['ceph.osd_id'] = '7')),
      /ceph\.osd_id "7" is not the OSD it is listed under/,
    ],
    [
      'a type that is not its tag',
      listingWith((d) => (tagsOf(d)['ceph.type'] = 'db')),
      /ceph\.type "db" is not its type/,
    ],
    [
      'an OSD fsid that is no UUID',
      listingWith((d) => (tagsOf(d)['ceph.osd_fsid'] = 'x')),
      /ceph\.osd_fsid "x" is not a UUID/,
    ],
    [
      'no cluster fsid',
      listingWith((d) => delete tagsOf(d)['ceph.cluster_fsid']),
      /ceph\.cluster_fsid undefined is not a UUID/,
    ],
    [
      'devices that are a string',
      listingWith((d) => (first(d).devices = '/dev/vdd')),
      /devices "\/dev\/vdd" is not a list/,
    ],
    [
      'a device with shell in it',
      listingWith((d) => (first(d).devices = ['/dev/vdd; rm -rf /'])),
      /is not a list of device paths/,
    ],
    [
      'a block volume without an OSD id',
      '{"0": [{"type": "block", "path": "/dev/vdd", "tags": {}}]}',
      /without a ceph\.osd_id tag/,
    ],
    [
      'a partition entry with devices',
      '{"0": [{"type": "db", "path": "/dev/vdd1", "tags": {}, "devices": ["/dev/vdd"]}]}',
      /a partition entry with devices/,
    ],
    ['more volumes for one OSD than any has', `{"0": [${Array(17).fill('{}').join(',')}]}`, /osd 0 lists 17 volumes/],
    ['more text than a listing holds', `{"0": [{"x": "${'a'.repeat(8 * 1024 * 1024)}"}]}`, /more than a listing holds/],
  ];
  for (const [what, text, error] of hostile) {
    it(`refuses ${what}`, () => {
      let caught: unknown;
      try {
        parseLvmList(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CephOutputError);
      expect((caught as Error).message).toMatch(/^`ceph-volume lvm list --format json`: /);
      expect((caught as Error).message).toMatch(error);
      // A message never carries more of the host's text than a short excerpt.
      expect((caught as Error).message.length).toBeLessThan(300);
    });
  }

  it('refuses a listing of more OSDs than a host carries', () => {
    const many = Object.fromEntries(Array.from({ length: 4097 }, (_, i) => [String(i), []]));
    expect(() => parseLvmList(JSON.stringify(many))).toThrow(/lists 4097 OSDs/);
  });
});

describe('blkid and lsblk', () => {
  it('reads blkid -p -o export', () => {
    // blkid -p -o export on a loop device holding a dos partition table (this machine, util-linux 2.38.1).
    const dos = parseBlkidExport('DEVNAME=/dev/loop1\nPTUUID=c0ffee00\nPTTYPE=dos\n');
    expect(dos.get('PTTYPE')).toBe('dos');
    // A line of another shape is kept, so it still counts as "something is there".
    expect(parseBlkidExport('garbage line\n').get('?')).toBe('garbage line');
  });

  it('reads lsblk -nr -o NAME,TYPE: the device, then what is under it', () => {
    expect(parseLsblkTree('vdd disk\nceph--5a0c-osd--block--9b1f lvm\n')).toEqual([
      { name: 'vdd', type: 'disk' },
      { name: 'ceph--5a0c-osd--block--9b1f', type: 'lvm' },
    ]);
    expect(parseLsblkTree('odd line with words\n')).toEqual([{ name: 'odd', type: '?' }]);
  });
});

// ------------------------------------------------------------------------------------------ the plan

const BY_ID = (n: number) => `/dev/disk/by-id/virtio-vmceph1-d${n}`;
const REAL = (n: number) => `/dev/vd${'abcdefgh'[n - 1]}`;

/** A blank whole disk as the probe reports it: blkid finds nothing (exit 2), lsblk lists only the disk. */
function blank(n: number, edit: Partial<DeviceProbe> = {}): DeviceProbe {
  return {
    path: BY_ID(n),
    exists: true,
    real: REAL(n),
    block: true,
    blkidRc: 2,
    signature: new Map(),
    tree: [{ name: REAL(n).slice(5), type: 'disk' }],
    ...edit,
  };
}

describe('the plan: per device, its OSD, a new OSD, or a refusal', () => {
  const entries: VolumeEntry[] = parseLvmList(LISTING); // osd.0 on /dev/vdd (d4), osd.3 on /dev/vde (d5)

  it('leaves the OSDs that exist alone and makes one on the blank device added', () => {
    const plan = planVolumes({ probes: [blank(4), blank(5), blank(6)], entries, clusterFsid: FSID });
    expect(plan.devices).toEqual([
      { path: BY_ID(4), real: '/dev/vdd', state: 'osd', osdId: 0, osdFsid: '9b1f6c2e-3d4a-4e5f-8a7b-1c2d3e4f5a60' },
      { path: BY_ID(5), real: '/dev/vde', state: 'osd', osdId: 3, osdFsid: '2c3d4e5f-6a7b-4c8d-9e0f-a1b2c3d4e5f6' },
      { path: BY_ID(6), real: '/dev/vdf', state: 'create' },
    ]);
    expect(plan.unlisted).toEqual([]);
    expect(refusalMessage('vmceph1', plan)).toBeUndefined();
  });

  it('reports an OSD on a device the inventory no longer gives, and leaves it alone', () => {
    const plan = planVolumes({ probes: [blank(4)], entries, clusterFsid: FSID });
    expect(plan.unlisted).toEqual([{ osdId: 3, devices: ['/dev/vde'] }]);
  });

  it('finds an OSD by the path LVM gives its PV, whichever that is', () => {
    const byPath = entries.map((e) => (e.osdId === 0 ? { ...e, devices: [BY_ID(4)] } : e));
    expect(planVolumes({ probes: [blank(4)], entries: byPath, clusterFsid: FSID }).devices[0]).toMatchObject({
      state: 'osd',
      osdId: 0,
    });
  });

  it('plans every blank device when ceph-volume is not installed yet (a new node under --check)', () => {
    const plan = planVolumes({ probes: [blank(4), blank(5)], entries: undefined, clusterFsid: FSID });
    expect(plan.devices.map((d) => d.state)).toEqual(['create', 'create']);
  });

  const refusals: Array<[string, DeviceProbe, VolumeEntry[], RegExp]> = [
    [
      'a device that does not exist',
      { ...blank(6), exists: false, real: undefined, block: false },
      [],
      /no such device/,
    ],
    ['a dangling by-id link', { ...blank(6), exists: false, real: '/dev/vdz', block: false }, [], /no such device/],
    [
      'a link that resolves outside /dev',
      { ...blank(6), real: '/tmp/x' },
      [],
      /resolves to "\/tmp\/x", not a device node/,
    ],
    ['a regular file', { ...blank(6), block: false, tree: [] }, [], /not a block device/],
    ['a partition', { ...blank(6), tree: [{ name: 'vdf1', type: 'part' }] }, [], /it is a part, not a whole disk/],
    [
      'a disk with partitions',
      {
        ...blank(6),
        tree: [
          { name: 'vdf', type: 'disk' },
          { name: 'vdf1', type: 'part' },
        ],
      },
      [],
      /has partitions or holders: vdf1 \(part\)/,
    ],
    [
      'a gpt partition table',
      { ...blank(6), blkidRc: 0, signature: parseBlkidExport('PTUUID=5e1f\nPTTYPE=gpt\n') },
      [],
      /holds a gpt partition table/,
    ],
    [
      'a file system',
      {
        ...blank(6),
        blkidRc: 0,
        signature: parseBlkidExport('UUID=1c4e\nBLOCK_SIZE=4096\nTYPE=ext4\nUSAGE=filesystem\n'),
      },
      [],
      /holds a ext4 signature/,
    ],
    [
      'LVM not made by ceph-volume',
      {
        ...blank(6),
        blkidRc: 0,
        signature: parseBlkidExport('UUID=x\nVERSION=LVM2 001\nTYPE=LVM2_member\nUSAGE=raid\n'),
      },
      [],
      /holds an LVM physical volume that ceph-volume does not list as an OSD/,
    ],
    [
      'LVM under which an LV is open',
      {
        ...blank(6),
        tree: [
          { name: 'vdf', type: 'disk' },
          { name: 'data-home', type: 'lvm' },
        ],
      },
      [],
      /has partitions or holders: data-home \(lvm\)/,
    ],
    [
      'an md member',
      { ...blank(6), blkidRc: 0, signature: new Map([['TYPE', 'linux_raid_member']]) },
      [],
      /md RAID member/,
    ],
    [
      'a signature blkid cannot name',
      { ...blank(6), blkidRc: 0, signature: new Map([['TYPE', 'x$(reboot)']]) },
      [],
      /holds a "x\$\(reboot\)" signature/,
    ],
    ['an ambivalent probe', { ...blank(6), blkidRc: 8 }, [], /blkid -p could not tell whether it is blank \(exit 8\)/],
    ['a probe with no exit status', { ...blank(6), blkidRc: undefined }, [], /could not tell/],
    [
      'an OSD of another cluster',
      blank(4),
      parseLvmList(LISTING).map((e) => ({ ...e, clusterFsid: OTHER_FSID })),
      /holds osd\.0 of another Ceph cluster \(fsid 0b5e0c39-/,
    ],
    [
      "another OSD's db",
      blank(6),
      [{ osdId: 2, type: 'db', path: '/dev/ceph-db/db-2', devices: ['/dev/vdf'], osdFsid: FSID, clusterFsid: FSID }],
      /holds the db of osd\.2, not an OSD's data/,
    ],
  ];
  for (const [what, probe, listed, reason] of refusals) {
    it(`refuses ${what}, naming host and device, and plans nothing for it`, () => {
      const plan = planVolumes({ probes: [probe], entries: listed, clusterFsid: FSID });
      expect(plan.devices.map((d) => d.state)).toEqual(['refused']);
      const message = refusalMessage('vmceph1', plan)!;
      expect(
        message.startsWith(`vmceph1: refusing to make an OSD on a device of ceph_osd_devices: ${probe.path}`),
      ).toBe(true);
      expect(message).toMatch(reason);
      expect(message).toContain('cairn never wipes a device');
    });
  }

  it('refuses one device given twice under two names', () => {
    const byPath = { ...blank(4), path: '/dev/disk/by-path/pci-0000:00:07.0' };
    const plan = planVolumes({ probes: [blank(4), byPath], entries: [], clusterFsid: FSID });
    expect(plan.devices.map((d) => d.state)).toEqual(['create', 'refused']);
    expect(refusalMessage('h', plan)).toMatch(/it is \/dev\/vdd, as \/dev\/disk\/by-id\/virtio-vmceph1-d4 is/);
  });
});

describe("every device's OSD up and in (verification)", () => {
  const entries = parseLvmList(
    listingWith((doc) => {
      // osd.0 and osd.1 of the captured trees.
      doc['1'] = doc['3'];
      delete doc['3'];
      const tags = (doc['1'] as Array<Record<string, unknown>>)[0]!.tags as Record<string, string>;
      tags['ceph.osd_id'] = '1';
    }),
  );
  const plan = planVolumes({ probes: [blank(4), blank(5)], entries, clusterFsid: FSID });

  it('passes when the cluster has each OSD up and in', () => {
    const tree = parseOsdTreeJson(JSON.parse(capturedTree('lab-probe-ok.txt')));
    expect(upInProblems('vmceph1', plan, tree)).toEqual([]);
  });

  it('names each OSD that is down, out or missing from the map', () => {
    const tree = parseOsdTreeJson(JSON.parse(capturedTree('lab-probe-ok.txt'))).map((o) =>
      o.id === 0 ? { ...o, up: false } : o.id === 1 ? { ...o, in: false } : o,
    );
    expect(upInProblems('vmceph1', plan, tree)).toEqual([
      `vmceph1: osd.0 on ${BY_ID(4)} is down`,
      `vmceph1: osd.1 on ${BY_ID(5)} is out`,
    ]);
    expect(
      upInProblems(
        'vmceph1',
        plan,
        tree.filter((o) => o.id !== 1),
      ),
    ).toContain(`vmceph1: osd.1 on ${BY_ID(5)} is not in the cluster's OSD map`);
  });
});

// ------------------------------------------------------------------------------------------ the module

/** What the probe prints for these devices (each as `blank` unless given) and this listing. */
function probeOutput(opts: {
  listing?: string;
  absent?: boolean;
  listRc?: number;
  devices: DeviceProbe[];
  tree?: string;
}): string {
  const out = [
    formatSection('volumes', opts.absent ? '' : (opts.listing ?? LISTING)),
    formatSection(
      'volumes_status',
      `state=${opts.absent ? 'absent' : 'present'}\nrc=${opts.absent ? '' : (opts.listRc ?? 0)}\n`,
    ),
    formatSection('volumes_err', opts.listRc ? '  stderr: Failed to find physical volume "/dev/vdq"\n' : ''),
  ];
  opts.devices.forEach((d, i) => {
    out.push(
      formatSection(
        `dev${i}`,
        `exists=${d.exists ? 1 : 0}\nreal_b64=${Buffer.from(d.real ?? '').toString('base64')}\nblock=${d.block ? 1 : 0}\nblkid_rc=${d.blkidRc ?? ''}\n`,
      ),
      formatSection(`blkid${i}`, [...d.signature].map(([k, v]) => `${k}=${v}`).join('\n')),
      formatSection(`lsblk${i}`, d.tree.map((t) => `${t.name} ${t.type}`).join('\n')),
    );
  });
  if (opts.tree !== undefined) {
    out.push(formatSection('tree', opts.tree), formatSection('tree_status', 'rc=0\nerr_b64=\n'));
  }
  out.push(formatSection('end', ''));
  return out.join('');
}

describe('ceph_osd_volumes', () => {
  const devices = [BY_ID(4), BY_ID(5), BY_ID(6)];

  it('check: plans exactly the device without an OSD, in one round trip', async () => {
    const conn = new FakeConnection([
      {
        match: 'ceph-volume lvm list --format json',
        reply: { stdout: probeOutput({ devices: [blank(4), blank(5), blank(6)] }) },
      },
    ]);
    const plan = await cephOsdVolumesModule.check(contextFor(conn), { devices, cluster_fsid: FSID });
    expect(conn.calls).toHaveLength(1);
    expect(plan.failed).toBeUndefined();
    expect(plan.changed).toBe(true);
    expect(plan.actions).toEqual([`create an OSD on ${BY_ID(6)} (ceph-volume lvm create --bluestore)`]);
    expect(plan.state).toEqual({ create: [{ path: BY_ID(6), real: '/dev/vdf' }] });
    expect(plan.data).toMatchObject({ ids: [0, 3], planned: [BY_ID(6)] });
    // Every device reaches the host as one quoted word.
    for (const d of devices) expect(conn.scripts[0]).toContain(`d=${d};`);
  });

  it('check: nothing to do when every device has its OSD', async () => {
    const conn = new FakeConnection([
      { match: () => true, reply: { stdout: probeOutput({ devices: [blank(4), blank(5)] }) } },
    ]);
    const plan = await cephOsdVolumesModule.check(contextFor(conn), {
      devices: devices.slice(0, 2),
      cluster_fsid: FSID,
    });
    expect([plan.changed, plan.actions, plan.failed]).toEqual([false, [], undefined]);
  });

  it('check: a device that holds a file system fails the task naming host and device; nothing is planned', async () => {
    const ext4 = blank(6, { blkidRc: 0, signature: new Map([['TYPE', 'ext4']]) });
    const conn = new FakeConnection([
      { match: () => true, reply: { stdout: probeOutput({ devices: [blank(4), blank(5), ext4] }) } },
    ]);
    const plan = await cephOsdVolumesModule.check(contextFor(conn, { host: 'vmceph1' }), {
      devices,
      cluster_fsid: FSID,
    });
    expect(plan.changed).toBe(false);
    expect(plan.state).toBeUndefined();
    expect(plan.failed).toMatch(
      /^vmceph1: refusing to make an OSD on a device of ceph_osd_devices: \/dev\/disk\/by-id\/virtio-vmceph1-d6 \(\/dev\/vdf\): it holds a ext4 signature/,
    );
  });

  it('check: a listing that is not what ceph-volume prints fails the task with what was wrong', async () => {
    const conn = new FakeConnection([
      { match: () => true, reply: { stdout: probeOutput({ listing: '{"0": "x"}', devices: [blank(4)] }) } },
    ]);
    const plan = await cephOsdVolumesModule.check(contextFor(conn, { host: 'vmceph1' }), { devices: [BY_ID(4)] });
    expect(plan.failed).toBe('vmceph1: `ceph-volume lvm list --format json`: osd 0 is not a list of volumes');
  });

  it('check: a failed listing fails with its exit status and stderr', async () => {
    const conn = new FakeConnection([
      { match: () => true, reply: { stdout: probeOutput({ listRc: 1, devices: [blank(4)] }) } },
    ]);
    const plan = await cephOsdVolumesModule.check(contextFor(conn, { host: 'h' }), { devices: [BY_ID(4)] });
    expect(plan.failed).toBe(
      'h: `ceph-volume lvm list --format json` failed (exit 1): stderr: Failed to find physical volume "/dev/vdq"',
    );
  });

  it('check: without ceph-volume yet, plans every blank device and says why apply still needs it', async () => {
    const conn = new FakeConnection([
      { match: () => true, reply: { stdout: probeOutput({ absent: true, devices: [blank(4), blank(5)] }) } },
    ]);
    const plan = await cephOsdVolumesModule.check(contextFor(conn), { devices: devices.slice(0, 2) });
    expect(plan.actions).toEqual([
      'ceph-volume is not installed yet (an earlier task installs ceph-osd, or apply fails)',
      `create an OSD on ${BY_ID(4)} (ceph-volume lvm create --bluestore)`,
      `create an OSD on ${BY_ID(5)} (ceph-volume lvm create --bluestore)`,
    ]);
  });

  it('check with require_up_in: fails naming the down OSD', async () => {
    const tree = capturedTree('lab-probe-ok.txt').replace(
      '"name":"osd.0","type":"osd","type_id":0,"crush_weight":0.0019989013671875,"depth":2,"pool_weights":{},"exists":1,"status":"up"',
      '"name":"osd.0","type":"osd","type_id":0,"crush_weight":0.0019989013671875,"depth":2,"pool_weights":{},"exists":1,"status":"down"',
    );
    const listing = listingWith((doc) => delete doc['3']);
    const conn = new FakeConnection([
      { match: 'osd tree -f json', reply: { stdout: probeOutput({ listing, devices: [blank(4)], tree }) } },
    ]);
    const plan = await cephOsdVolumesModule.check(contextFor(conn, { host: 'vmceph1' }), {
      devices: [BY_ID(4)],
      cluster_fsid: FSID,
      require_up_in: true,
    });
    expect(plan.failed).toBe(`vmceph1: osd.0 on ${BY_ID(4)} is down`);
  });

  it('refuses a device that is not a stable whole-device path, or one given twice, before touching the host', async () => {
    const conn = new FakeConnection([]);
    await expect(cephOsdVolumesModule.check(contextFor(conn), { devices: ['/dev/sdb'] })).rejects.toThrow(
      /device "\/dev\/sdb" is not a stable whole-device path/,
    );
    await expect(cephOsdVolumesModule.check(contextFor(conn), { devices: [BY_ID(4), BY_ID(4)] })).rejects.toThrow(
      /is listed twice/,
    );
    expect(conn.calls).toEqual([]);
  });

  it('apply: runs ceph-volume on exactly the planned devices and registers their new ids', async () => {
    const after = listingWith((doc) => {
      doc['5'] = JSON.parse(JSON.stringify(doc['3']));
      const e = (doc['5'] as Array<Record<string, unknown>>)[0]!;
      e.devices = ['/dev/vdf'];
      (e.tags as Record<string, string>)['ceph.osd_id'] = '5';
    });
    const conn = new FakeConnection([
      {
        match: 'lvm create',
        reply: {
          stdout: `created=${BY_ID(6)}\n${formatSection('volumes', after)}${formatSection('volumes_status', 'state=present\nrc=0\n')}${formatSection('volumes_err', '')}`,
          stderr: '--> ceph-volume lvm create successful for: /dev/disk/by-id/virtio-vmceph1-d6\n',
        },
      },
    ]);
    const ctx = contextFor(conn);
    const plan = {
      changed: true,
      actions: [],
      state: { create: [{ path: BY_ID(6), real: '/dev/vdf' }] },
      data: {
        osds: [
          { device: BY_ID(4), id: 0 },
          { device: BY_ID(5), id: 3 },
        ],
      },
    };
    const result = await cephOsdVolumesModule.apply(ctx, { devices }, plan);
    expect(result.failed).toBeUndefined();
    expect(result.data.created).toEqual([BY_ID(6)]);
    expect(result.data.ids).toEqual([0, 3, 5]);
    const script = conn.scripts[0]!;
    expect(script).toContain(`ceph-volume lvm create --bluestore --data ${BY_ID(6)} >&2`);
    expect(script.match(/--data/g)).toHaveLength(1);
  });

  it('apply: a failure names the device it happened on and those made before it', async () => {
    const conn = new FakeConnection([
      {
        match: () => true,
        reply: {
          code: 1,
          stdout: `created=${BY_ID(5)}\n`,
          stderr:
            '-->  RuntimeError: Unable to create a new OSD id\ncairn: ceph-volume lvm create failed on x (exit 1)\n',
        },
      },
    ]);
    const result = await cephOsdVolumesModule.apply(
      contextFor(conn, { host: 'vmceph2' }),
      { devices },
      {
        changed: true,
        actions: [],
        state: {
          create: [
            { path: BY_ID(5), real: '/dev/vde' },
            { path: BY_ID(6), real: '/dev/vdf' },
          ],
        },
      },
    );
    expect(result.failed).toBe(true);
    expect(result.changed).toBe(true);
    expect(result.msg).toMatch(
      new RegExp(
        `^vmceph2: making the OSD on ${BY_ID(6).replace(/[/.-]/g, '\\$&')} failed \\(made before it: ${BY_ID(5).replace(/[/.-]/g, '\\$&')}\\)`,
      ),
    );
  });
});

// ------------------------------------------------------------------------------------------ the role

/** A folder with playbooks/ceph.yaml's play over the repository's roles/ceph, and `hosts.yaml` as given. */
function cephSite(hosts: Record<string, Record<string, unknown>>, vars: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-ceph-lvm-'));
  mkdirSync(join(dir, 'roles'));
  symlinkSync(join(repoRoot, 'roles', 'ceph'), join(dir, 'roles', 'ceph'));
  writeFileSync(
    join(dir, 'site.yaml'),
    stringify([{ name: 'Ceph', hosts: 'pve', strategy: 'linear', gather_facts: false, roles: ['ceph'] }]),
  );
  writeCephInventory(dir, hosts, vars);
  return dir;
}

function writeCephInventory(
  dir: string,
  hosts: Record<string, Record<string, unknown>>,
  vars: Record<string, unknown>,
): void {
  const keys = { ceph_mon_key: KEY, ceph_admin_key: KEY, ceph_bootstrap_osd_key: KEY };
  writeFileSync(
    join(dir, 'hosts.yaml'),
    stringify({
      all: {
        vars: { ceph_fsid: FSID, ceph_public_network: '10.77.0.0/24', ...keys, ...vars },
        children: { pve: { hosts } },
      },
    }),
  );
}

describe("the ceph role's OSD tasks (backend lvm) through the engine", () => {
  let dir: string;
  beforeAll(() => {
    dir = cephSite({}, {});
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Two nodes; vmceph1 lists `extra` devices besides d4 and d5 (the inventory change under test). */
  async function runRole(opts: { check: boolean; extra?: number[]; devices?: Record<string, string[]> }) {
    const hosts = opts.devices ? Object.keys(opts.devices) : ['vmceph1', 'vmceph2'];
    const devicesOf = (host: string) =>
      opts.devices?.[host] ??
      [BY_ID(4), BY_ID(5), ...(host === 'vmceph1' ? (opts.extra ?? []).map(BY_ID) : [])].map((d) =>
        d.replace('vmceph1', host),
      );
    writeCephInventory(dir, Object.fromEntries(hosts.map((h) => [h, { ceph_osd_devices: devicesOf(h) }])), {});
    const scripts: Array<{ host: string; script: string }> = [];
    const engine = makeTestEngine({
      inventory: loadInventory(join(dir, 'hosts.yaml')),
      check: opts.check,
      startAtTask: opts.devices
        ? undefined
        : "OSDs on this host's devices (ceph-volume lvm create, one per whole device)",
      reply: (script, spec) => {
        scripts.push({ host: spec.name, script });
        if (script.includes('ceph-volume lvm list --format json')) {
          // Each node has osd.0/osd.3 on its d4/d5 (as the fixture), d6 blank.
          const wanted = devicesOf(spec.name);
          return {
            stdout: probeOutput({ devices: wanted.map((d) => blank(Number(d.slice(-1)), { path: d })) }),
          };
        }
        if (script.includes('systemctl show')) {
          const unit = /ceph-osd@(\d+)/.exec(script)?.[0] ?? '?';
          return {
            stdout: `Id=${unit}.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled-runtime\nNeedDaemonReload=no\n`,
          };
        }
        return { code: 97, stderr: `unexpected script in this test:\n${script.slice(0, 200)}` };
      },
    });
    const outcome = await engine.run(join(dir, 'site.yaml'));
    return { outcome, events: engine.events, scripts };
  }

  type TaskResult = Extract<RunEvent, { type: 'task_result' }>;
  const results = (events: RunEvent[]) => events.filter((e): e is TaskResult => e.type === 'task_result');

  it('--check after a device is added to one host plans exactly that OSD; the OSDs that exist are only started', async () => {
    const { events } = await runRole({ check: true, extra: [6] });
    const failed = results(events).filter((e) => e.status === 'failed');
    expect(failed.map((e) => `${e.host} ${e.task.name}: ${e.msg}`)).toEqual([]);
    const changed = results(events).filter((e) => e.status === 'changed' && !e.loopSummary);
    expect(changed.map((e) => [e.host, e.task.name, e.actions])).toEqual([
      [
        'vmceph1',
        "OSDs on this host's devices (ceph-volume lvm create, one per whole device)",
        [`create an OSD on ${BY_ID(6)} (ceph-volume lvm create --bluestore)`],
      ],
    ]);
    // The existing OSDs' units were looked at (started, not enabled for good), on both hosts.
    const started = results(events).filter(
      (e) => e.task.name === "OSDs on this host's devices running" && !e.loopSummary,
    );
    expect(started.map((e) => `${e.host} ${e.status}`).sort()).toEqual([
      'vmceph1 ok',
      'vmceph1 ok',
      'vmceph2 ok',
      'vmceph2 ok',
    ]);
    // The file backend's tasks were skipped.
    expect(
      results(events)
        .filter(
          (e) => e.task.name === 'OSDs of this host (ceph osd new, ceph-osd --mkfs on a sparse file)' && !e.loopSummary,
        )
        .map((e) => e.status),
    ).toEqual(['skipped', 'skipped']);
  });

  it('--check with nothing added predicts no change', async () => {
    const { events } = await runRole({ check: true });
    expect(results(events).filter((e) => e.status === 'changed' || e.status === 'failed')).toEqual([]);
  });

  it('an OSD host without devices fails at the first task, naming itself', async () => {
    const { events, scripts } = await runRole({ check: true, devices: { vmceph1: [] } });
    const failed = results(events).filter((e) => e.status === 'failed');
    expect(failed.map((e) => [e.host, e.task.name])).toEqual([
      ['vmceph1', 'This OSD host lists the devices its OSDs go on (ceph_osd_backend lvm)'],
    ]);
    expect(String(failed[0]!.msg)).toMatch(
      /^vmceph1 is in ceph_osd_hosts with ceph_osd_backend lvm, but its ceph_osd_devices is\s+empty/,
    );
    expect(scripts.filter((s) => s.host === 'vmceph1')).toEqual([]);
  });
});

describe("the ceph role's verification (backend lvm) through the engine", () => {
  let dir: string;
  beforeAll(() => {
    // pve1 of the captured lab cluster (3 monitors, osd.1 on pve1), its OSD made by ceph-volume on d4.
    dir = cephSite(
      { pve1: { ceph_osd_devices: ['/dev/disk/by-id/virtio-pve1-d4'] } },
      { ceph_mon_hosts: ['pve1', 'pve2', 'pve3'], ceph_osd_hosts: ['pve1'] },
    );
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The lab capture's probe with its `ceph osd dump` (osd-dump-lab.json, same cluster) added. */
  const clusterProbe = (() => {
    const text = readFileSync(new URL('../fixtures/ceph/lab-probe-ok.txt', import.meta.url), 'utf8');
    const dump = readFileSync(new URL('../fixtures/ceph/osd-dump-lab.json', import.meta.url), 'utf8').trim();
    return `${frameSections(text.slice(text.indexOf('\n---\n') + 5))}${formatSection('osd_dump', `${dump}\n::rc=0\n`)}`;
  })();
  const listing = listingWith((doc) => {
    doc['1'] = doc['0'];
    delete doc['0'];
    delete doc['3'];
    ((doc['1'] as Array<Record<string, unknown>>)[0]!.tags as Record<string, string>)['ceph.osd_id'] = '1';
  });

  async function verify(tree: string) {
    const engine = makeTestEngine({
      inventory: loadInventory(join(dir, 'hosts.yaml')),
      verify: true,
      reply: (script) => {
        if (script.includes('ceph-volume lvm list --format json'))
          return {
            stdout: probeOutput({ listing, devices: [blank(4, { path: '/dev/disk/by-id/virtio-pve1-d4' })], tree }),
          };
        if (script.includes('quorum_status')) return { stdout: clusterProbe };
        if (/systemctl.*is-active/.test(script)) return { stdout: 'active\n' };
        return { code: 97, stderr: `unexpected script in this test:\n${script.slice(0, 200)}` };
      },
    });
    const playbook = new PlaybookLoader({ rolesPath: [] }).loadPlaybook(join(dir, 'site.yaml'));
    await engine.engine.runPlaybook(playbook, true);
    await engine.engine.close();
    return engine.events.filter((e): e is Extract<RunEvent, { type: 'verify_result' }> => e.type === 'verify_result');
  }

  it("is green when every device's OSD is up and in, and judges the cluster with at least one OSD per host", async () => {
    const results = await verify(capturedTree('lab-probe-ok.txt'));
    expect(results.map((r) => `${r.check}: ${r.passed ? 'pass' : r.msg}`)).toEqual([
      "this node's monitor runs: pass",
      "this node's manager runs: pass",
      'every device of this node holds its OSD, up and in (ceph-volume): pass',
      'cluster health, quorum, OSDs, PGs and pools: pass',
    ]);
    expect(results[2]!.data).toMatchObject({ ids: [1], osds: [{ device: '/dev/disk/by-id/virtio-pve1-d4', id: 1 }] });
  });

  it('fails naming the device whose OSD is down', async () => {
    const down = capturedTree('lab-probe-ok.txt').replace(/("name":"osd\.1".*?"status":)"up"/, '$1"down"');
    const results = await verify(down);
    const failed = results.filter((r) => !r.passed).map((r) => `${r.check}: ${r.msg}`);
    expect(failed).toEqual([
      'every device of this node holds its OSD, up and in (ceph-volume): pve1: osd.1 on /dev/disk/by-id/virtio-pve1-d4 is down',
    ]);
  });
});

// ------------------------------------------------------------------------------------------ real devices

/** Loop devices attached by this file (detached in afterAll, by their own names). */
const attached: string[] = [];
const loopUnavailable = (() => {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'loop devices need root';
  const probe = spawnSync('losetup', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 ? undefined : 'losetup is missing';
})();

describe.skipIf(loopUnavailable)(
  `the probe and the apply guard on real block devices (loop)${loopUnavailable ? ` (skipped: ${loopUnavailable})` : ''}`,
  () => {
    let work: string;
    const loop = (file: string): string => {
      const res = spawnSync('losetup', ['-f', '--show', file], { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`losetup: ${res.stderr}`);
      const dev = res.stdout.trim();
      attached.push(dev);
      return dev;
    };
    const sh = (script: string, env: Record<string, string> = {}) =>
      spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', env: { ...process.env, ...env } });

    beforeAll(() => {
      work = mkdtempSync(join(tmpdir(), 'cairn-ceph-loop-'));
    });
    afterAll(() => {
      for (const dev of attached.splice(0)) spawnSync('losetup', ['-d', dev]);
      rmSync(work, { recursive: true, force: true });
    });

    function image(name: string, fill?: (path: string) => void): string {
      const path = join(work, name);
      writeFileSync(path, '');
      spawnSync('truncate', ['-s', '64M', path]);
      fill?.(path);
      return path;
    }
    /** An MBR with one Linux partition (start 2048, 8192 sectors) and the boot signature. */
    const dosTable = (path: string) => {
      const mbr = Buffer.alloc(512);
      Buffer.from([0x00, 0x20, 0x21, 0x00, 0x83, 0x35, 0x25, 0x01]).copy(mbr, 446);
      mbr.writeUInt32LE(2048, 446 + 8);
      mbr.writeUInt32LE(8192, 446 + 12);
      mbr[510] = 0x55;
      mbr[511] = 0xaa;
      const fd = spawnSync('dd', [`of=${path}`, 'conv=notrunc', 'status=none'], { input: mbr });
      if (fd.status !== 0) throw new Error('dd failed');
    };

    it('reads a blank device, a file system, a partition table and a missing path', () => {
      const blankDev = loop(image('blank.img'));
      const ext4Dev = loop(
        image('ext4.img', (p) => {
          const res = spawnSync('mkfs.ext4', ['-q', '-F', p], { encoding: 'utf8' });
          if (res.status !== 0) throw new Error(res.stderr);
        }),
      );
      const dosDev = loop(image('dos.img', dosTable));
      // A by-id style link to the blank device, as udev makes them.
      const link = join(work, 'virtio-test-d1');
      symlinkSync(blankDev, link);
      const devices = [link, ext4Dev, dosDev, join(work, 'no-such-disk')];
      const res = sh(volumeProbeScript({ devices }), { PATH: `/nonexistent:${process.env.PATH ?? ''}` });
      expect(res.status, res.stderr).toBe(0);
      const sections = parseSections(res.stdout);
      // This machine has no ceph-volume: the probe says so, and nothing is an OSD.
      expect(listingFrom(sections)).toBeUndefined();
      const [blankProbe, ext4Probe, dosProbe, missing] = deviceProbesFrom(devices, sections);
      expect(blankProbe).toMatchObject({ exists: true, real: blankDev, block: true, blkidRc: 2 });
      expect(blankProbe!.tree).toEqual([{ name: blankDev.slice(5), type: 'loop' }]);
      expect(ext4Probe).toMatchObject({ exists: true, block: true, blkidRc: 0 });
      expect(ext4Probe!.signature.get('TYPE')).toBe('ext4');
      expect(dosProbe!.signature.get('PTTYPE')).toBe('dos');
      // (This machine's kernel reads no partition from it, so lsblk lists none; the table refuses the device.)
      expect(missing).toMatchObject({ exists: false, block: false });
      // The plan on what this machine reported: a loop device is not a whole disk, so every one is refused.
      const plan = planVolumes({ probes: [blankProbe!, ext4Probe!, dosProbe!, missing!], entries: undefined });
      expect(plan.devices.map((d) => (d.state === 'refused' ? d.reason : d.state))).toEqual([
        'it is a loop, not a whole disk',
        'it is a loop, not a whole disk',
        'it is a loop, not a whole disk',
        'no such device',
      ]);
      // Judged as a disk, the same probes give the verdicts a disk would get.
      const asDisk = (p: DeviceProbe) => ({ ...p, tree: p.tree.map((t, i) => (i === 0 ? { ...t, type: 'disk' } : t)) });
      const disks = planVolumes({ probes: [blankProbe!, ext4Probe!, dosProbe!].map(asDisk), entries: undefined });
      expect(disks.devices.map((d) => (d.state === 'refused' ? d.reason : d.state))).toEqual([
        'create',
        'it holds a ext4 signature (file system or volume)',
        'it holds a dos partition table',
      ]);
    });

    it('apply: a device that stopped being blank after the probe is not touched, and ceph-volume never runs', () => {
      const dev = loop(image('late.img'));
      // Something writes a file system on it between the probe and the apply.
      expect(spawnSync('mkfs.ext4', ['-q', '-F', dev]).status).toBe(0);
      // A ceph-volume that records being called, first on the PATH.
      const bin = join(work, 'bin');
      mkdirSync(bin, { recursive: true });
      const calls = join(work, 'ceph-volume-calls');
      writeFileSync(join(bin, 'ceph-volume'), `#!/bin/sh\necho "$@" >> ${calls}\necho '{}'\n`, { mode: 0o755 });
      const res = sh(volumeApplyScript({ create: [{ path: dev, real: dev }] }), {
        PATH: `${bin}:${process.env.PATH ?? ''}`,
      });
      expect(res.status).toBe(3);
      expect(res.stderr).toBe(`cairn: ${dev} is no longer blank (blkid -p exit 0); it was not touched\n`);
      expect(() => readFileSync(calls, 'utf8')).toThrow();
      // The file system is still there.
      expect(spawnSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', dev], { encoding: 'utf8' }).stdout.trim()).toBe(
        'ext4',
      );
    });
  },
);
