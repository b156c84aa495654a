/**
 * zfs_dataset: a dataset exists with the wanted properties. check is one round trip (does it exist, its
 * current values with `zfs get -H -p`, and the property table this ZFS accepts); apply runs `zfs create -p`
 * with every property, or one `zfs set` per differing property (old ZFS sets one property per call).
 * A wanted value this ZFS lacks (lz4 on zfs-fuse) is replaced by the first `fallbacks` candidate it accepts,
 * and the substitution is reported in the actions, the registered `notes` and `substitutions`: never silent.
 * In verify.yaml it reports drift (a property that differs) as a failure.
 */
import { argError } from '../attributes.js';
import { failureText, parseKeyValues, parseSections, runScript, section, stripEnds } from '../remote.js';
import type { Module, ModuleResult, Planned } from '../types.js';
import { argv, quote } from '../../transport/quote.js';
import {
  effectiveProperties,
  parsePropertyTable,
  parsePropertyValues,
  propertyChanges,
  type Fallbacks,
  type PropertyChange,
  type Substitution,
  type WantedValue,
} from './properties.js';

export interface ZfsDatasetArgs {
  name: string;
  properties?: Record<string, WantedValue>;
  /** { property: { wanted value: fallback or [fallbacks, best first] } }, used only when this ZFS rejects the wanted value. */
  fallbacks?: Fallbacks;
}

export interface ZfsDatasetPlan {
  name: string;
  create: boolean;
  /** Properties for `zfs create -o` (create) or the `zfs set` calls (existing dataset). */
  createProperties: Record<string, string>;
  changes: PropertyChange[];
}

/** Dataset names as zfs accepts them (pool/fs/child); no snapshots, no shell-special surprises. */
export const DATASET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]*(?:\/[A-Za-z0-9_.:-]+)*$/;
// Starts with a letter or digit: a property name is never read as an option of zfs get/set.
const PROPERTY_NAME = /^[a-z0-9][a-z0-9_:.@-]*$/;

export function datasetProbeScript(name: string, properties: string[]): string {
  const lines = [
    section(
      'exists',
      `if out=$(zfs list -H -o name ${quote(name)} 2>&1); then echo exists=1; else echo exists=0; printf 'error=%s\\n' "$(printf '%s' "$out" | head -c 300 | tr '\\n' ' ')"; fi`,
    ),
  ];
  if (properties.length) {
    lines.push(
      section(
        'values',
        `zfs get -H -p -o property,value,source ${quote(properties.join(','))} ${quote(name)} 2>/dev/null`,
      ),
    );
    // `zfs get` with no arguments prints the property table on stderr and exits 2: that is the point here.
    lines.push(section('table', 'zfs get 2>&1 | sed -n "/PROPERTY *EDIT/,\\$p"'));
    lines.push(
      section(
        'impl',
        'if [ -x /sbin/zfs-fuse ] || command -v zfs-fuse >/dev/null 2>&1; then echo impl=zfs-fuse; else echo impl=zfs; fi',
      ),
    );
  }
  lines.push(section('end'));
  return lines.join('\n');
}

/** The plan from the probe (pure; table-tested). */
export function planDataset(args: ZfsDatasetArgs, probe: Map<string, string>): Planned<ZfsDatasetPlan> {
  const exists = parseKeyValues(probe.get('exists') ?? '').get('exists') === '1';
  const existsError = parseKeyValues(probe.get('exists') ?? '').get('error') ?? '';
  // Only "dataset does not exist" means "create it"; anything else (no zfs command, the zfs-fuse daemon down,
  // the kernel module not loaded) is a failure to report, not a dataset to create.
  const notInstalled = !exists && /not found/.test(existsError);
  if (!exists && !notInstalled && !/dataset does not exist/.test(existsError)) {
    return { changed: false, actions: [], failed: `cannot ask ZFS about ${args.name}: ${existsError.trim()}` };
  }
  const tableText = probe.get('table') ?? '';
  const table = tableText.includes('PROPERTY') ? parsePropertyTable(tableText) : undefined;
  const implementation =
    parseKeyValues(probe.get('impl') ?? '').get('impl') === 'zfs-fuse' ? 'zfs-fuse (pool version 23)' : 'this ZFS';
  const effective = effectiveProperties(args.properties ?? {}, table, args.fallbacks, implementation);
  const notes = effective.substitutions.map((s) => s.note);
  const data = { name: args.name, notes, substitutions: effective.substitutions, properties: effective.values };
  if (effective.unsupported.length) {
    return { changed: false, actions: [], failed: effective.unsupported.join('; '), data: { ...data, exists } };
  }
  const plan: ZfsDatasetPlan = { name: args.name, create: !exists, createProperties: effective.values, changes: [] };
  const actions: string[] = [];
  if (!exists) {
    const props = Object.entries(effective.values).map(([k, v]) => `${k}=${v}`);
    if (notInstalled) actions.push('zfs is not installed yet (an earlier task must install it, or apply fails)');
    actions.push(`create dataset ${args.name}${props.length ? ` with ${props.join(', ')}` : ''}`);
  } else {
    plan.changes = propertyChanges(effective.values, parsePropertyValues(probe.get('values') ?? ''));
    for (const c of plan.changes) actions.push(`set ${c.property} on ${args.name}: ${c.from ?? '(unset)'} -> ${c.to}`);
  }
  // Substitutions are said whenever something changes, so --check and the changed result name them too.
  if (actions.length) actions.push(...notes.map((n) => `note: ${n}`));
  return { changed: actions.length > 0, actions, state: plan, data: { ...data, exists, changes: plan.changes } };
}

/** The apply script for a plan (pure; table-tested). */
export function datasetApplyScript(plan: ZfsDatasetPlan): string {
  if (plan.create) {
    const options = Object.entries(plan.createProperties).flatMap(([k, v]) => ['-o', `${k}=${v}`]);
    return argv('zfs', 'create', '-p', ...options, plan.name);
  }
  return plan.changes.map((c) => `${argv('zfs', 'set', `${c.property}=${c.to}`, plan.name)} || exit 1`).join('\n');
}

export const zfsDatasetModule: Module<ZfsDatasetArgs, ZfsDatasetPlan> = {
  name: 'zfs_dataset',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1 },
      properties: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
      fallbacks: {
        type: 'object',
        additionalProperties: {
          type: 'object',
          additionalProperties: {
            anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
          },
        },
      },
    },
  },

  async check(ctx, args) {
    if (!DATASET_NAME.test(args.name))
      throw argError(ctx, `zfs_dataset: "${args.name}" is not a dataset name (pool/filesystem, no snapshot)`);
    const names = Object.keys(args.properties ?? {});
    const bad = names.find((n) => !PROPERTY_NAME.test(n));
    if (bad !== undefined) throw argError(ctx, `zfs_dataset: "${bad}" is not a property name`);
    const res = await runScript(ctx, datasetProbeScript(args.name, names));
    if (res.code !== 0)
      return { changed: false, actions: [], failed: `probing ${args.name} failed: ${failureText(res)}` };
    return planDataset(args, parseSections(res.stdout));
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data: {} };
    const res = await runScript(ctx, datasetApplyScript(state));
    const data = { ...(plan.data ?? {}), stdout: stripEnds(res.stdout), stderr: stripEnds(res.stderr), rc: res.code };
    if (res.code !== 0)
      return {
        changed: true,
        failed: true,
        msg: `${state.create ? 'zfs create' : 'zfs set'} ${state.name} failed: ${failureText(res)}`,
        data,
      };
    return { changed: true, data };
  },
};

export type { Substitution };
