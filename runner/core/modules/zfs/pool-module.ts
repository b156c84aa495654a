/**
 * zfs_pool: a pool exists with the wanted layout (vdev type and devices, ashift at creation). check is one
 * round trip (`zpool list`, `zpool status NAME`, and which file devices exist); apply creates missing sparse
 * files for file-backed vdevs (the lab's, or a test pool's) and runs `zpool create`. A pool that exists with
 * another layout is reported as a failure, never rebuilt: changing a pool's layout destroys data.
 */
import { posix } from 'node:path';
import { argError } from '../attributes.js';
import { failureText, parseKeyValues, parseSections, runScript, section, stripEnds } from '../remote.js';
import type { Module, ModuleResult, Planned } from '../types.js';
import { argv, quote } from '../../transport/quote.js';
import { sizeToBytes } from './properties.js';
import { leafVdevs, parseZpoolStatus, type VdevNode } from './zpool-status.js';

export type VdevType = 'stripe' | 'mirror' | 'raidz' | 'raidz1' | 'raidz2' | 'raidz3';

export interface ZfsPoolArgs {
  name: string;
  vdev_type?: VdevType;
  devices: string[];
  ashift?: number;
  /**
   * Devices are files: create the missing ones as sparse files of this size ("512M", "1G") before creating
   * the pool. "" means the same as leaving it out (a role can pass `{{default item.file_size ''}}`).
   */
  file_size?: string;
}

export interface ZfsPoolPlan {
  name: string;
  create: boolean;
  /** Files to create (sparse) first. */
  files: string[];
  fileSize?: string;
  command: string[];
}

const POOL_NAME = /^[A-Za-z][A-Za-z0-9_.:-]*$/;
/** Words zpool create treats as vdev types or classes: a pool may not be named so. */
const RESERVED = new Set([
  'mirror',
  'raidz',
  'raidz1',
  'raidz2',
  'raidz3',
  'spare',
  'log',
  'cache',
  'special',
  'dedup',
  'draid',
]);

/** Minimum number of devices per type. */
const MIN_DEVICES: Record<VdevType, number> = { stripe: 1, mirror: 2, raidz: 2, raidz1: 2, raidz2: 3, raidz3: 4 };

export function poolProbeScript(args: ZfsPoolArgs): string {
  const lines = [
    section(
      'list',
      `if out=$(zpool list -H -o name 2>&1); then printf '%s\\n' "$out"; echo rc=0; else printf 'error=%s\\n' "$(printf '%s' "$out" | head -c 300 | tr '\\n' ' ')"; echo rc=1; fi`,
    ),
    section('status', `zpool status ${quote(args.name)} 2>/dev/null`),
  ];
  if (args.file_size !== undefined) {
    lines.push(
      section(
        'files',
        ...args.devices.map((device) => `if [ -e ${quote(device)} ]; then echo present; else echo absent; fi`),
      ),
    );
  }
  lines.push(section('end'));
  return lines.join('\n');
}

/** The top-level data vdevs of a parsed pool as (type, leaves) pairs; classes (logs, cache...) left out. */
export function poolLayout(root: VdevNode | undefined): Array<{ type: VdevType; leaves: string[] }> {
  if (!root) return [];
  return root.children
    .filter((child) => child.kind !== 'class')
    .map((child) => {
      if (child.kind === 'leaf') return { type: 'stripe' as const, leaves: [child.name] };
      const m = /^(mirror|raidz[123]?)(?:-\d+)?$/.exec(child.name);
      const type = (m ? (m[1] === 'raidz' ? 'raidz1' : m[1]) : child.name) as VdevType;
      return {
        type,
        leaves: leafVdevs(child).map((leaf) => (leaf.note?.startsWith('was ') ? leaf.note.slice(4) : leaf.name)),
      };
    });
}

/** zpool prints /dev/sdb as sdb and /dev/disk/by-id/x as x: compare by the printed name or its last component. */
function sameDevice(wanted: string, printed: string): boolean {
  return (
    wanted === printed ||
    posix.basename(wanted) === printed ||
    (wanted.startsWith('/dev/') && wanted.slice(5) === printed)
  );
}

/** The plan from the probe (pure; table-tested). */
export function planPool(args: ZfsPoolArgs, probe: Map<string, string>): Planned<ZfsPoolPlan> {
  const listed = (probe.get('list') ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const list = parseKeyValues(probe.get('list') ?? '');
  const listError = (list.get('error') ?? 'zpool failed').trim();
  // zpool not installed yet: in --check an earlier task is about to install it; apply fails plainly if not.
  const notInstalled = list.get('rc') !== '0' && /not found/.test(listError);
  if (list.get('rc') !== '0' && !notInstalled) {
    return { changed: false, actions: [], failed: `cannot list ZFS pools: ${listError}` };
  }
  const type: VdevType = args.vdev_type ?? 'stripe';
  if (!notInstalled && listed.includes(args.name)) {
    const pool = parseZpoolStatus(probe.get('status') ?? '').pools.find((p) => p.name === args.name);
    const layout = poolLayout(pool?.root);
    const wantedType = type === 'raidz' ? 'raidz1' : type;
    const leaves = layout.flatMap((v) => v.leaves);
    const typesOk =
      type === 'stripe'
        ? layout.every((v) => v.type === 'stripe')
        : layout.length === 1 && layout[0]!.type === wantedType;
    const devicesOk =
      leaves.length === args.devices.length && args.devices.every((d) => leaves.some((l) => sameDevice(d, l)));
    const data = { name: args.name, exists: true, layout };
    if (!typesOk || !devicesOk) {
      const have = layout.map((v) => `${v.type}(${v.leaves.join(', ')})`).join(' + ');
      return {
        changed: false,
        actions: [],
        failed: `pool ${args.name} exists with layout ${have || '(unknown)'}, not ${type}(${args.devices.join(', ')}); cairn does not rebuild pools (that destroys data): change the inventory or the pool by hand`,
        data,
      };
    }
    return { changed: false, actions: [], data };
  }
  const presence = (probe.get('files') ?? '').split('\n').filter((l) => l === 'present' || l === 'absent');
  const files = args.file_size === undefined ? [] : args.devices.filter((_, i) => presence[i] !== 'present');
  const command = [
    'zpool',
    'create',
    ...(args.ashift !== undefined ? ['-o', `ashift=${args.ashift}`] : []),
    args.name,
    ...(type === 'stripe' ? [] : [type === 'raidz1' ? 'raidz' : type]),
    ...args.devices,
  ];
  const actions = [
    ...(notInstalled ? ['zpool is not installed yet (an earlier task must install it, or apply fails)'] : []),
    ...files.map((f) => `create sparse file ${f} (${args.file_size})`),
    `create pool ${args.name}: ${type === 'stripe' ? 'striped over' : `${type} of`} ${args.devices.length} device${args.devices.length === 1 ? '' : 's'}${args.ashift !== undefined ? `, ashift=${args.ashift}` : ''}`,
  ];
  return {
    changed: true,
    actions,
    state: { name: args.name, create: true, files, fileSize: args.file_size, command },
    data: { name: args.name, exists: false, command: command.join(' ') },
  };
}

/** The apply script (pure; table-tested): make the sparse files (in their directories), then create the pool. */
export function poolApplyScript(plan: ZfsPoolPlan): string {
  const lines: string[] = [];
  for (const file of plan.files) {
    lines.push(`${argv('mkdir', '-p', '--', posix.dirname(file))} || exit 1`);
    // truncate makes a sparse file; a file that appeared since the probe is left as it is.
    lines.push(`[ -e ${quote(file)} ] || ${argv('truncate', '-s', plan.fileSize ?? '1G', '--', file)} || exit 1`);
  }
  lines.push(argv(...plan.command));
  return lines.join('\n');
}

export const zfsPoolModule: Module<ZfsPoolArgs, ZfsPoolPlan> = {
  name: 'zfs_pool',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'devices'],
    properties: {
      name: { type: 'string', minLength: 1 },
      vdev_type: { enum: ['stripe', 'mirror', 'raidz', 'raidz1', 'raidz2', 'raidz3'] },
      devices: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
      ashift: { type: 'integer', minimum: 9, maximum: 16 },
      file_size: { type: 'string' },
    },
  },

  async check(ctx, givenArgs) {
    const args: ZfsPoolArgs = givenArgs.file_size === '' ? { ...givenArgs, file_size: undefined } : givenArgs;
    if (!POOL_NAME.test(args.name) || RESERVED.has(args.name))
      throw argError(ctx, `zfs_pool: "${args.name}" is not a usable pool name`);
    const type = args.vdev_type ?? 'stripe';
    if (args.devices.length < MIN_DEVICES[type])
      throw argError(ctx, `zfs_pool: ${type} needs at least ${MIN_DEVICES[type]} devices, got ${args.devices.length}`);
    if (new Set(args.devices).size !== args.devices.length)
      throw argError(ctx, `zfs_pool: a device is listed twice in ${args.name}`);
    if (args.file_size !== undefined) {
      if (sizeToBytes(args.file_size) === undefined)
        throw argError(ctx, `zfs_pool: file_size "${args.file_size}" is not a size (like 512M or 2G)`);
      const relative = args.devices.find((d) => !d.startsWith('/'));
      if (relative !== undefined)
        throw argError(
          ctx,
          `zfs_pool: with file_size every device is a file and needs an absolute path, got "${relative}"`,
        );
    }
    const res = await runScript(ctx, poolProbeScript(args));
    if (res.code !== 0)
      return { changed: false, actions: [], failed: `probing pool ${args.name} failed: ${failureText(res)}` };
    return planPool(args, parseSections(res.stdout));
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data: {} };
    const res = await runScript(ctx, poolApplyScript(state));
    const data = { ...(plan.data ?? {}), stdout: stripEnds(res.stdout), stderr: stripEnds(res.stderr), rc: res.code };
    if (res.code !== 0)
      return { changed: true, failed: true, msg: `creating pool ${state.name} failed: ${failureText(res)}`, data };
    return { changed: true, data };
  },
};
