/**
 * OSDs made by `ceph-volume lvm` on whole devices: what a host's ceph-volume reports (`ceph-volume lvm list
 * --format json`), what blkid and lsblk say of each device the inventory gives, and the plan drawn from
 * both, per device: its OSD is there, it is blank (an OSD is to be made on it), or it holds something else
 * (refused, never wiped). The host is hostile input: the listing is read strictly in the shape Ceph 16's
 * ceph_volume/devices/lvm/listing.py prints (`{"ID": [{"type", "path", "devices", "tags": {...}}, ...]}`,
 * an LV's entry being its `lvs` fields plus those) and anything else is refused with what was wrong, never
 * guessed at. Pure, so table-tested (test/unit/ceph-volume.test.ts); the module is ./volume-module.ts.
 */
import { CephOutputError } from './health.js';
import type { OsdNode } from './status.js';

export const LVM_LIST_COMMAND = 'ceph-volume lvm list --format json';

/** One LV (or, for a db/wal/journal on a plain partition, one device) ceph-volume lists for an OSD. */
export interface VolumeEntry {
  osdId: number;
  /** ceph.type: block (the OSD's data), db, wal, or the filestore-era data/journal. */
  type: string;
  /** The LV's path (/dev/VG/LV), or the device's for a non-LV db/wal/journal. */
  path: string;
  /** The physical devices under it, as LVM names them (/dev/vdb). */
  devices: string[];
  osdFsid?: string;
  clusterFsid?: string;
}

const VOLUME_TYPES = new Set(['block', 'db', 'wal', 'journal', 'data']);
const OSD_ID = /^(0|[1-9][0-9]{0,5})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * A device node path as LVM and readlink print it (/dev/vdb, /dev/VG/LV, /dev/mapper/X): nothing a shell or a
 * message could trip on, and no "." or ".." step out of /dev.
 */
function isDevicePath(value: string): boolean {
  return /^\/dev(\/[A-Za-z0-9._:+@,=-]+)+$/.test(value) && !value.split('/').some((s) => s === '.' || s === '..');
}
/** Bounds on what a listing may hold: a host does not carry more OSDs than this, nor an OSD more LVs. */
const MAX_LISTING_BYTES = 8 * 1024 * 1024;
const MAX_OSDS = 4096;
const MAX_ENTRIES_PER_OSD = 16;

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function fail(what: string): never {
  throw new CephOutputError(`\`${LVM_LIST_COMMAND}\`: ${what}`);
}

/** A value from the listing for a message: short, one line, quoted. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

function entryOf(osdKey: string, index: number, raw: unknown): VolumeEntry {
  const where = `osd ${osdKey} entry ${index}`;
  if (!isRecord(raw)) fail(`${where} is not an object`);
  const { type, path } = raw;
  if (typeof type !== 'string' || !VOLUME_TYPES.has(type))
    fail(`${where}: type ${shown(type)} is not one of ${[...VOLUME_TYPES].join(', ')}`);
  if (typeof path !== 'string' || !isDevicePath(path)) fail(`${where}: path ${shown(path)} is not a device path`);
  if (!isRecord(raw.tags)) fail(`${where}: tags is not an object`);
  const tags = raw.tags;
  for (const [key, value] of Object.entries(tags))
    if (typeof value !== 'string') fail(`${where}: tag ${shown(key)} is not a string`);
  const osdId = Number(osdKey);
  if (tags['ceph.osd_id'] === undefined) {
    // listing.py's report of a db/wal/journal on a plain partition: {"tags": {"PARTUUID"}, "type", "path"}.
    if (type === 'block' || type === 'data') fail(`${where}: a ${type} volume without a ceph.osd_id tag`);
    if (raw.devices !== undefined) fail(`${where}: a partition entry with devices`);
    return { osdId, type, path, devices: [path] };
  }
  if (tags['ceph.osd_id'] !== osdKey)
    fail(`${where}: tag ceph.osd_id ${shown(tags['ceph.osd_id'])} is not the OSD it is listed under`);
  if (tags['ceph.type'] !== type) fail(`${where}: tag ceph.type ${shown(tags['ceph.type'])} is not its type`);
  const osdFsid = tags['ceph.osd_fsid'];
  const clusterFsid = tags['ceph.cluster_fsid'];
  if (typeof osdFsid !== 'string' || !UUID.test(osdFsid))
    fail(`${where}: ceph.osd_fsid ${shown(osdFsid)} is not a UUID`);
  if (typeof clusterFsid !== 'string' || !UUID.test(clusterFsid))
    fail(`${where}: ceph.cluster_fsid ${shown(clusterFsid)} is not a UUID`);
  const devices = raw.devices;
  if (!Array.isArray(devices) || devices.some((d) => typeof d !== 'string' || !isDevicePath(d)))
    fail(`${where}: devices ${shown(devices)} is not a list of device paths`);
  return { osdId, type, path, devices: devices as string[], osdFsid, clusterFsid };
}

/**
 * `ceph-volume lvm list --format json`: every entry of every OSD, strictly. An empty listing is `{}` (the
 * command prints that, exit 0, on a host without OSDs).
 */
export function parseLvmList(text: string): VolumeEntry[] {
  if (text.length > MAX_LISTING_BYTES) fail(`printed ${text.length} bytes, more than a listing holds`);
  const trimmed = text.trim();
  if (trimmed === '') fail('printed nothing');
  let root: unknown;
  try {
    root = JSON.parse(trimmed);
  } catch {
    fail(`did not print JSON: ${shown(trimmed.slice(0, 120))}`);
  }
  if (!isRecord(root)) fail('expected a JSON object of OSD ids');
  const keys = Object.keys(root);
  if (keys.length > MAX_OSDS) fail(`lists ${keys.length} OSDs, more than a host carries`);
  const entries: VolumeEntry[] = [];
  for (const key of keys) {
    if (!OSD_ID.test(key)) fail(`${shown(key)} is not an OSD id`);
    const list = root[key];
    if (!Array.isArray(list) || list.length === 0) fail(`osd ${key} is not a list of volumes`);
    if (list.length > MAX_ENTRIES_PER_OSD) fail(`osd ${key} lists ${list.length} volumes`);
    list.forEach((raw, i) => entries.push(entryOf(key, i, raw)));
  }
  return entries;
}

// ------------------------------------------------------------------------------------------ device probes

/** What the probe found about one device the inventory gives (see volumeProbeScript). */
export interface DeviceProbe {
  /** As the inventory gives it (/dev/disk/by-id/...). */
  path: string;
  exists: boolean;
  /** Where it resolves (readlink -f): /dev/vdb. */
  real?: string;
  block: boolean;
  /** blkid -p's exit status: 0 found a signature, 2 found none, anything else could not tell. */
  blkidRc?: number;
  /** blkid -p -o export: TYPE, PTTYPE, ... (values as printed). */
  signature: Map<string, string>;
  /** lsblk -nr -o NAME,TYPE: the device itself first, then its partitions and holders. */
  tree: Array<{ name: string; type: string }>;
}

/** `blkid -p -o export` lines (KEY=value); lines of any other shape are kept under '?' so they still count. */
export function parseBlkidExport(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const m = /^([A-Z][A-Z0-9_]{0,40})=(.*)$/.exec(line);
    if (m && !out.has(m[1]!)) out.set(m[1]!, m[2]!);
    else out.set('?', line.slice(0, 80));
  }
  return out;
}

/** `lsblk -nr -o NAME,TYPE`: one "name type" line per block device (lsblk escapes odd bytes as \xHH). */
export function parseLsblkTree(text: string): Array<{ name: string; type: string }> {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const words = line.trim().split(/\s+/);
      return { name: (words[0] ?? '').slice(0, 80), type: (words.length === 2 ? words[1]! : '?').slice(0, 20) };
    });
}

// ------------------------------------------------------------------------------------------ the plan

export type DeviceVerdict =
  | { path: string; real?: string; state: 'osd'; osdId: number; osdFsid: string }
  | { path: string; real?: string; state: 'create' }
  | { path: string; real?: string; state: 'refused'; reason: string };

export interface VolumePlan {
  devices: DeviceVerdict[];
  /** OSDs ceph-volume lists on devices the inventory does not give (left alone; reported). */
  unlisted: Array<{ osdId: number; devices: string[] }>;
}

/** A signature, in words, for a refusal. */
function describeSignature(sig: Map<string, string>): string {
  const type = sig.get('TYPE');
  const pttype = sig.get('PTTYPE');
  const word = (v: string) => (/^[A-Za-z0-9_.+-]{1,40}$/.test(v) ? v : shown(v));
  if (pttype !== undefined) return `a ${word(pttype)} partition table`;
  if (type === 'LVM2_member') return 'an LVM physical volume that ceph-volume does not list as an OSD';
  if (type === 'ceph_bluestore') return 'a BlueStore label (an OSD made without LVM)';
  if (type === 'linux_raid_member') return 'an md RAID member';
  if (type === 'zfs_member') return 'a ZFS pool member';
  if (type !== undefined) return `a ${word(type)} signature (file system or volume)`;
  return 'a signature blkid reports';
}

/** The entries whose physical devices include this device (by its inventory path or where it resolves). */
export function entriesOn(entries: VolumeEntry[], path: string, real: string | undefined): VolumeEntry[] {
  return entries.filter((e) => e.devices.some((d) => d === path || (real !== undefined && d === real)));
}

export interface PlanVolumesInput {
  probes: DeviceProbe[];
  /** The listing, or undefined when ceph-volume is not installed (no OSD can exist then, as far as it knows). */
  entries: VolumeEntry[] | undefined;
  /** This cluster's fsid: an OSD of another cluster on a device is refused. */
  clusterFsid?: string;
}

export function planVolumes(input: PlanVolumesInput): VolumePlan {
  const entries = input.entries ?? [];
  const byReal = new Map<string, string>();
  const devices = input.probes.map((probe): DeviceVerdict => {
    const base = probe.real === undefined ? { path: probe.path } : { path: probe.path, real: probe.real };
    const refuse = (reason: string): DeviceVerdict => ({ ...base, state: 'refused', reason });
    if (!probe.exists) return refuse('no such device');
    if (probe.real === undefined || !isDevicePath(probe.real))
      return refuse(`it resolves to ${shown(probe.real ?? '')}, not a device node`);
    const twin = byReal.get(probe.real);
    if (twin !== undefined) return refuse(`it is ${probe.real}, as ${twin} is: one device listed twice`);
    byReal.set(probe.real, probe.path);
    const mine = entriesOn(entries, probe.path, probe.real);
    if (mine.length > 0) {
      const other = mine.find((e) => e.clusterFsid !== undefined && e.clusterFsid !== input.clusterFsid);
      if (other && input.clusterFsid !== undefined)
        return refuse(`it holds osd.${other.osdId} of another Ceph cluster (fsid ${other.clusterFsid})`);
      const block = mine.find((e) => e.type === 'block');
      if (!block) return refuse(`it holds the ${mine[0]!.type} of osd.${mine[0]!.osdId}, not an OSD's data`);
      if (mine.some((e) => e.osdId !== block.osdId))
        return refuse(
          `it holds volumes of several OSDs (${[...new Set(mine.map((e) => `osd.${e.osdId}`))].join(', ')})`,
        );
      return { ...base, state: 'osd', osdId: block.osdId, osdFsid: block.osdFsid ?? '' };
    }
    if (!probe.block) return refuse('it is not a block device');
    const [self, ...children] = probe.tree;
    if (self?.type !== 'disk')
      return refuse(`it is ${self ? `a ${self.type}` : 'not listed by lsblk'}, not a whole disk`);
    if (children.length > 0)
      return refuse(
        `it has partitions or holders: ${children
          .slice(0, 4)
          .map((c) => `${c.name} (${c.type})`)
          .join(', ')}${children.length > 4 ? `, and ${children.length - 4} more` : ''}`,
      );
    if (probe.blkidRc === 0) return refuse(`it holds ${describeSignature(probe.signature)}`);
    if (probe.blkidRc !== 2)
      return refuse(`blkid -p could not tell whether it is blank (exit ${probe.blkidRc ?? '?'})`);
    return { ...base, state: 'create' };
  });
  const given = new Set(input.probes.flatMap((p) => [p.path, ...(p.real === undefined ? [] : [p.real])]));
  const unlisted = new Map<number, string[]>();
  for (const e of entries)
    if (e.type === 'block' && !e.devices.some((d) => given.has(d))) unlisted.set(e.osdId, e.devices);
  return { devices, unlisted: [...unlisted].map(([osdId, devs]) => ({ osdId, devices: devs })) };
}

/**
 * The refusals of a plan as one message naming the host and each device, and what to do: cairn never wipes a
 * device (a disk that holds something may hold someone's data).
 */
export function refusalMessage(host: string, plan: VolumePlan): string | undefined {
  const refused = plan.devices.filter((d): d is Extract<DeviceVerdict, { state: 'refused' }> => d.state === 'refused');
  if (!refused.length) return undefined;
  const each = refused.map((d) => `${d.path}${d.real && d.real !== d.path ? ` (${d.real})` : ''}: ${d.reason}`);
  return `${host}: refusing to make an OSD on ${refused.length === 1 ? 'a device' : `${refused.length} devices`} of ceph_osd_devices: ${each.join('; ')}. cairn never wipes a device: check what is on it, clear it by hand if it is not needed (wipefs -a, sgdisk --zap-all, ceph-volume lvm zap --destroy), or take it out of ceph_osd_devices`;
}

/**
 * The OSDs of a plan against the cluster's OSD tree: every device's OSD exists in the cluster, up and in.
 * One problem per OSD that is not.
 */
export function upInProblems(host: string, plan: VolumePlan, tree: OsdNode[]): string[] {
  const problems: string[] = [];
  for (const d of plan.devices) {
    if (d.state !== 'osd') continue;
    const node = tree.find((o) => o.id === d.osdId);
    const where = `${host}: osd.${d.osdId} on ${d.path}`;
    if (!node) problems.push(`${where} is not in the cluster's OSD map`);
    else {
      if (!node.up) problems.push(`${where} is down`);
      if (!node.in) problems.push(`${where} is out`);
    }
  }
  return problems;
}
