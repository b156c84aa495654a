/**
 * ceph_osd_volumes: each whole device the inventory gives (by stable path) holds one OSD made by `ceph-volume
 * lvm create --bluestore --data DEVICE`. check is one round trip: `ceph-volume lvm list --format json` (which
 * OSDs exist, on which devices) and, per device, where it resolves, blkid -p and lsblk; the plan (./volume.ts)
 * names exactly the devices that get an OSD. A device that holds anything else (a partition table, a file
 * system, LVM not made by ceph-volume, an OSD of another cluster) fails the task naming host and device and is
 * never touched. apply checks each device is still blank just before ceph-volume runs on it, then reads the
 * listing again so the new OSDs' ids are registered. With `require_up_in` (verification) the cluster's OSD
 * tree is read too, and every device's OSD must be up and in.
 * Registers: osds (device, real, id), ids, planned (devices that get an OSD), unlisted (ceph-volume OSDs on
 * devices the inventory does not give), and after apply created.
 */
import { argError } from '../attributes.js';
import { registerModule } from '../index.js';
import {
  decodeBase64Value,
  failureText,
  parseKeyValues,
  parseSections,
  runScript,
  section,
  stripEnds,
} from '../remote.js';
import type { Module, ModuleResult, Planned } from '../types.js';
import { argv, quote } from '../../transport/quote.js';
import { CephOutputError, parseJsonOutput } from './health.js';
import { parseOsdTreeJson, type OsdNode } from './status.js';
import {
  entriesOn,
  LVM_LIST_COMMAND,
  parseBlkidExport,
  parseLsblkTree,
  parseLvmList,
  planVolumes,
  refusalMessage,
  upInProblems,
  type DeviceProbe,
  type VolumeEntry,
  type VolumePlan,
} from './volume.js';

export interface CephOsdVolumesArgs {
  devices: string[];
  cluster_fsid?: string;
  require_up_in?: boolean;
  /** Seconds the `ceph osd tree` of require_up_in may take (it waits that long for a quorum). */
  command_timeout_s?: number;
}

export interface CephOsdVolumesState {
  /** The devices to make an OSD on, in order, with where each resolved when probed. */
  create: Array<{ path: string; real: string }>;
}

/** Whole devices by a stable name: /dev/disk/by-id/... or /dev/disk/by-path/... (never /dev/sdX, which moves). */
export const STABLE_DEVICE_PATTERN = '^/dev/disk/by-(id|path)/[A-Za-z0-9._:+@,=-]+$';
const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';

/**
 * Shell that runs the listing once into variables (stdout, exit status, the head of stderr) and prints them
 * as sections `volumes`, `volumes_status` and `volumes_err`: stderr never mixes into the JSON.
 */
export function listingScript(): string {
  return [
    'cv_state=absent; cv_rc=; cv_out=; cv_err=',
    'if command -v ceph-volume >/dev/null 2>&1; then',
    '  cv_state=present',
    '  cv_errf=$(mktemp) || exit 1',
    `  cv_out=$(${LVM_LIST_COMMAND} 2>"$cv_errf"); cv_rc=$?`,
    '  cv_err=$(tail -c 2000 "$cv_errf"); rm -f "$cv_errf"',
    'fi',
    section('volumes', `printf '%s' "$cv_out"`),
    section('volumes_status', 'echo "state=$cv_state"', 'echo "rc=$cv_rc"'),
    section('volumes_err', `printf '%s' "$cv_err"`),
  ].join('\n');
}

/** The probe: the listing, then per device i the sections dev<i> (key=values), blkid<i> and lsblk<i>. */
export function volumeProbeScript(
  args: Pick<CephOsdVolumesArgs, 'devices' | 'require_up_in' | 'command_timeout_s'>,
): string {
  const lines = [listingScript()];
  args.devices.forEach((device, i) => {
    lines.push(
      `d=${quote(device)}; b=; brc=`,
      'if [ -b "$d" ]; then b=$(blkid -p -o export -- "$d" 2>/dev/null); brc=$?; fi',
      section(
        `dev${i}`,
        'if [ -e "$d" ]; then echo exists=1; else echo exists=0; fi',
        `printf 'real_b64=%s\\n' "$(readlink -f -- "$d" | base64 -w0)"`,
        'if [ -b "$d" ]; then echo block=1; else echo block=0; fi',
        'echo "blkid_rc=$brc"',
      ),
      section(`blkid${i}`, `printf '%s' "$b"`),
      section(`lsblk${i}`, 'if [ -b "$d" ]; then lsblk -nr -o NAME,TYPE -- "$d" 2>/dev/null; fi'),
    );
  });
  if (args.require_up_in) {
    const timeoutS = args.command_timeout_s ?? 20;
    lines.push(
      `tree_errf=$(mktemp) || exit 1`,
      `tree_out=$(timeout ${timeoutS + 5} ceph --connect-timeout ${timeoutS} osd tree -f json 2>"$tree_errf"); tree_rc=$?`,
      'tree_err=$(tail -c 2000 "$tree_errf"); rm -f "$tree_errf"',
      section('tree', `printf '%s' "$tree_out"`),
      section('tree_status', 'echo "rc=$tree_rc"', `printf 'err_b64=%s\\n' "$(printf '%s' "$tree_err" | base64 -w0)"`),
    );
  }
  lines.push(section('end'));
  return lines.join('\n');
}

/** The listing's sections: its entries, undefined when ceph-volume is not installed; a failure throws. */
export function listingFrom(sections: Map<string, string>): VolumeEntry[] | undefined {
  const status = parseKeyValues(sections.get('volumes_status') ?? '');
  if (status.get('state') === 'absent') return undefined;
  if (status.get('state') !== 'present')
    throw new CephOutputError(`\`${LVM_LIST_COMMAND}\`: the probe printed no status`);
  if (status.get('rc') !== '0') {
    const err = (sections.get('volumes_err') ?? '').trim().split('\n').slice(-3).join(' ').slice(0, 400);
    throw new CephOutputError(
      `\`${LVM_LIST_COMMAND}\` failed (exit ${status.get('rc') ?? '?'})${err ? `: ${err}` : ''}`,
    );
  }
  return parseLvmList(sections.get('volumes') ?? '');
}

/** Each device's probe from its sections. */
export function deviceProbesFrom(devices: string[], sections: Map<string, string>): DeviceProbe[] {
  return devices.map((path, i) => {
    const kv = parseKeyValues(sections.get(`dev${i}`) ?? '');
    if (!kv.has('exists')) throw new CephOutputError(`the probe printed nothing for ${path}`);
    const real = decodeBase64Value(`where ${path} resolves`, kv.get('real_b64') ?? '')
      .toString('utf8')
      .trim();
    const rc = kv.get('blkid_rc') ?? '';
    const probe: DeviceProbe = {
      path,
      exists: kv.get('exists') === '1',
      block: kv.get('block') === '1',
      signature: parseBlkidExport(sections.get(`blkid${i}`) ?? ''),
      tree: parseLsblkTree(sections.get(`lsblk${i}`) ?? ''),
    };
    if (real !== '') probe.real = real;
    if (/^\d{1,3}$/.test(rc)) probe.blkidRc = Number(rc);
    return probe;
  });
}

/** The OSD tree of require_up_in's sections; a failed command throws with its stderr. */
export function treeFrom(sections: Map<string, string>): OsdNode[] {
  const status = parseKeyValues(sections.get('tree_status') ?? '');
  if (status.get('rc') !== '0') {
    const err = decodeBase64Value('ceph osd tree stderr', status.get('err_b64') ?? '').toString('utf8');
    throw new CephOutputError(
      `\`ceph osd tree -f json\` failed (exit ${status.get('rc') ?? '?'})${err.trim() ? `: ${err.trim().split('\n').slice(-2).join(' ').slice(0, 300)}` : ''}`,
    );
  }
  return parseOsdTreeJson(parseJsonOutput(sections.get('tree') ?? '', 'ceph osd tree -f json'));
}

/** What a plan registers. */
export function planData(plan: VolumePlan): Record<string, unknown> {
  const osds = plan.devices.flatMap((d) => (d.state === 'osd' ? [{ device: d.path, real: d.real, id: d.osdId }] : []));
  return {
    osds,
    ids: osds.map((o) => o.id),
    planned: plan.devices.filter((d) => d.state === 'create').map((d) => d.path),
    unlisted: plan.unlisted,
  };
}

/**
 * The apply script: for each device, in order, make sure it is still blank (a block device, no signature for
 * blkid -p, nothing under it for lsblk) and run ceph-volume on it, its chatter on stderr; stop at the first
 * failure. Then the listing again, for the new OSDs' ids.
 */
export function volumeApplyScript(state: CephOsdVolumesState): string {
  const lines = ['set -u'];
  for (const { path: device } of state.create) {
    const d = quote(device);
    lines.push(
      `if [ ! -b ${d} ]; then echo ${quote(`cairn: ${device} is no longer a block device; nothing was made on it`)} >&2; exit 3; fi`,
      `blkid -p -- ${d} >/dev/null 2>&1; rc=$?`,
      `if [ "$rc" -ne 2 ]; then echo ${quote(`cairn: ${device} is no longer blank (blkid -p exit `)}"$rc)"${quote('; it was not touched')} >&2; exit 3; fi`,
      `if [ "$(lsblk -nr -o NAME -- ${d} 2>/dev/null | wc -l)" -ne 1 ]; then echo ${quote(`cairn: ${device} has partitions or holders since it was probed; it was not touched`)} >&2; exit 3; fi`,
      `${argv('ceph-volume', 'lvm', 'create', '--bluestore', '--data', device)} >&2 || { rc=$?; echo ${quote(`cairn: ceph-volume lvm create failed on ${device} (exit `)}"$rc)" >&2; exit "$rc"; }`,
      `echo ${quote(`created=${device}`)}`,
    );
  }
  lines.push(listingScript());
  return lines.join('\n');
}

function validate(ctx: Parameters<Module['check']>[0], args: CephOsdVolumesArgs): void {
  const pattern = new RegExp(STABLE_DEVICE_PATTERN);
  const bad = args.devices.find((d) => !pattern.test(d));
  if (bad !== undefined)
    throw argError(
      ctx,
      `ceph_osd_volumes: device ${JSON.stringify(bad)} is not a stable whole-device path (/dev/disk/by-id/... or /dev/disk/by-path/...)`,
    );
  const twice = args.devices.find((d, i) => args.devices.indexOf(d) !== i);
  if (twice !== undefined) throw argError(ctx, `ceph_osd_volumes: device ${twice} is listed twice`);
}

export const cephOsdVolumesModule: Module<CephOsdVolumesArgs, CephOsdVolumesState> = {
  name: 'ceph_osd_volumes',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['devices'],
    properties: {
      devices: { type: 'array', items: { type: 'string', pattern: STABLE_DEVICE_PATTERN }, minItems: 1 },
      cluster_fsid: { type: 'string', pattern: UUID_PATTERN },
      require_up_in: { type: 'boolean' },
      command_timeout_s: { type: 'integer', minimum: 1, maximum: 300 },
    },
  },

  async check(ctx, args): Promise<Planned<CephOsdVolumesState>> {
    validate(ctx, args);
    const res = await runScript(ctx, volumeProbeScript(args));
    if (res.code !== 0)
      return {
        changed: false,
        actions: [],
        failed: `${ctx.host}: probing the OSD devices failed: ${failureText(res)}`,
      };
    let plan: VolumePlan;
    let entries: VolumeEntry[] | undefined;
    let tree: OsdNode[] | undefined;
    try {
      const sections = parseSections(res.stdout);
      entries = listingFrom(sections);
      plan = planVolumes({ probes: deviceProbesFrom(args.devices, sections), entries, clusterFsid: args.cluster_fsid });
      if (args.require_up_in) tree = treeFrom(sections);
    } catch (err) {
      if (err instanceof CephOutputError) return { changed: false, actions: [], failed: `${ctx.host}: ${err.message}` };
      throw err;
    }
    const data = planData(plan);
    const refused = refusalMessage(ctx.host, plan);
    if (refused !== undefined) return { changed: false, actions: [], failed: refused, data };
    const create = plan.devices.flatMap((d) =>
      d.state === 'create' ? [{ path: d.path, real: d.real ?? d.path }] : [],
    );
    if (tree !== undefined) {
      const problems = upInProblems(ctx.host, plan, tree);
      if (problems.length) return { changed: false, actions: [], failed: problems.join('; '), data };
    }
    const actions = [
      ...(entries === undefined && create.length
        ? ['ceph-volume is not installed yet (an earlier task installs ceph-osd, or apply fails)']
        : []),
      ...create.map((d) => `create an OSD on ${d.path} (ceph-volume lvm create --bluestore)`),
    ];
    return { changed: create.length > 0, actions, state: { create }, data };
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data: {} };
    const res = await runScript(ctx, volumeApplyScript(state));
    const created = res.stdout
      .split('\n')
      .filter((l) => l.startsWith('created='))
      .map((l) => l.slice('created='.length));
    const data: Record<string, unknown> = {
      ...(plan.data ?? {}),
      created,
      stderr: stripEnds(res.stderr),
      rc: res.code,
    };
    if (res.code !== 0) {
      const failedOn = state.create[created.length]?.path;
      return {
        changed: created.length > 0,
        failed: true,
        msg: `${ctx.host}: making the OSD on ${failedOn ?? 'a device'} failed${created.length ? ` (made before it: ${created.join(', ')})` : ''}: ${failureText(res)}`,
        data,
      };
    }
    try {
      const sections = parseSections(res.stdout);
      const entries = listingFrom(sections) ?? [];
      const made = state.create.map(({ path, real }) => ({
        device: path,
        real,
        id: entriesOn(entries, path, real).find((e) => e.type === 'block')?.osdId,
      }));
      const missing = made.filter((m) => m.id === undefined).map((m) => m.device);
      if (missing.length)
        return {
          changed: true,
          failed: true,
          msg: `${ctx.host}: ceph-volume lvm create succeeded, but its listing shows no OSD on ${missing.join(', ')}`,
          data,
        };
      const before = (plan.data?.osds ?? []) as Array<{ id: number }>;
      const osds = [...before, ...made];
      return { changed: true, data: { ...data, osds, ids: osds.map((o) => o.id) } };
    } catch (err) {
      if (err instanceof CephOutputError)
        return { changed: true, failed: true, msg: `${ctx.host}: the OSDs were made, but ${err.message}`, data };
      throw err;
    }
  },
};

registerModule(cephOsdVolumesModule);
