/**
 * zfs_snapshot_age (read-only, for verify.yaml): the newest snapshot of a dataset (optionally only those whose
 * name contains e.g. "autosnap_" or "syncoid_") is at most `max_age_s` old, by the host's own clock. Reads
 * `zfs get -H -p -r -d 1 creation DATASET` (zfs-fuse has no `zfs list -p` nor `get -t`), so it works on
 * OpenZFS and zfs-fuse alike.
 */
import { failureText, parseSections, runScript, section } from '../remote.js';
import type { Module, Planned } from '../types.js';
import { argv } from '../../transport/quote.js';
import { DATASET_NAME } from './dataset-module.js';

export interface ZfsSnapshotAgeArgs {
  dataset: string;
  max_age_s: number;
  /** Count only snapshots whose name (after @) contains this. */
  name_contains?: string;
}

export interface SnapshotInfo {
  name: string;
  created: number;
}

/** `zfs get -H -p -r -d 1 creation DATASET` lines: the dataset's own snapshots only (not its children's). */
export function parseSnapshotCreation(text: string, dataset: string): SnapshotInfo[] {
  const out: SnapshotInfo[] = [];
  for (const line of text.split('\n')) {
    const [name, property, value] = line.split('\t');
    if (!name || property !== 'creation' || value === undefined) continue;
    if (!name.startsWith(`${dataset}@`)) continue;
    const created = Number(value);
    if (Number.isFinite(created)) out.push({ name, created });
  }
  return out;
}

export function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

/** The verdict (pure; table-tested). */
export function judgeSnapshotAge(args: ZfsSnapshotAgeArgs, probe: Map<string, string>): Planned {
  const now = Number((probe.get('now') ?? '').trim());
  const text = probe.get('snapshots') ?? '';
  if (/dataset does not exist/.test(text))
    return {
      changed: false,
      actions: [],
      failed: `dataset ${args.dataset} does not exist`,
      data: { dataset: args.dataset },
    };
  const all = parseSnapshotCreation(text, args.dataset);
  const matching = args.name_contains
    ? all.filter((s) => s.name.slice(s.name.indexOf('@') + 1).includes(args.name_contains!))
    : all;
  const which = args.name_contains ? ` matching "${args.name_contains}"` : '';
  if (!matching.length) {
    return {
      changed: false,
      actions: [],
      failed: `${args.dataset} has no snapshot${which} (${all.length} snapshot${all.length === 1 ? '' : 's'} in all)`,
      data: { dataset: args.dataset, count: 0 },
    };
  }
  const newest = matching.reduce((a, b) => (b.created > a.created ? b : a));
  const age = Math.max(0, now - newest.created);
  const data = {
    dataset: args.dataset,
    count: matching.length,
    newest: newest.name,
    newest_created: newest.created,
    age_s: age,
    max_age_s: args.max_age_s,
  };
  if (!Number.isFinite(now)) return { changed: false, actions: [], failed: 'could not read the host clock', data };
  if (age > args.max_age_s) {
    return {
      changed: false,
      actions: [],
      failed: `newest snapshot${which} of ${args.dataset} is ${formatAge(age)} old (${newest.name}), over the ${formatAge(args.max_age_s)} the policy allows`,
      data,
    };
  }
  return {
    changed: false,
    actions: [],
    data: {
      ...data,
      msg: `newest snapshot${which} of ${args.dataset}: ${newest.name}, ${formatAge(age)} old (limit ${formatAge(args.max_age_s)}); ${matching.length} kept`,
    },
  };
}

export const zfsSnapshotAgeModule: Module<ZfsSnapshotAgeArgs> = {
  name: 'zfs_snapshot_age',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['dataset', 'max_age_s'],
    properties: {
      dataset: { type: 'string', pattern: DATASET_NAME.source },
      max_age_s: { type: 'integer', minimum: 1 },
      name_contains: { type: 'string', minLength: 1 },
    },
  },

  async check(ctx, args) {
    const script = [
      section('now', 'date +%s'),
      section('snapshots', `${argv('zfs', 'get', '-H', '-p', '-r', '-d', '1', 'creation', args.dataset)} 2>&1`),
      section('end'),
    ].join('\n');
    const res = await runScript(ctx, script);
    if (res.code !== 0) return { changed: false, actions: [], failed: `snapshot probe failed: ${failureText(res)}` };
    return judgeSnapshotAge(args, parseSections(res.stdout));
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
