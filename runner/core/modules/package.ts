/**
 * Ansible's generic `package` module. cairn manages Debian hosts, so it is apt underneath: the same check
 * (one probe of dpkg and apt's policy) and apply, with `package`'s arguments (name, state; `use` may only
 * name apt or auto).
 */
import { aptModule, type AptArgs } from './apt.js';
import type { Module } from './types.js';

interface PackageArgs {
  name: string | string[];
  state?: 'present' | 'absent' | 'latest' | 'installed' | 'removed';
  use?: 'auto' | 'apt';
  allow_downgrade?: boolean;
  [backendOnly: string]: unknown;
}

/**
 * Arguments of the yum/dnf backends. Ansible's package passes every argument through to the backend, and
 * apt refuses these when they reach it, at run time: roles write them under `when: ansible_os_family ==
 * 'RedHat'`, or as `"{{ x | default(omit, true) }}"`, which leaves them out on Debian. So cairn loads them
 * and fails the task if one is still there when it runs.
 */
const YUM_DNF_ONLY = [
  'enablerepo',
  'disablerepo',
  'disable_gpg_check',
  'exclude',
  'conf_file',
  'installroot',
  'releasever',
  'skip_broken',
  'update_only',
  'security',
  'bugfix',
  'disable_plugin',
  'enable_plugin',
];

function backendRefusal(args: PackageArgs): string | undefined {
  const given = YUM_DNF_ONLY.filter((k) => args[k] !== undefined);
  return given.length
    ? `package: ${given.join(', ')} ${given.length > 1 ? 'are arguments' : 'is an argument'} of the yum/dnf ` +
        'backends; cairn installs with apt, which has none (leave it out on Debian, e.g. with default(omit, true))'
    : undefined;
}

function toApt(args: PackageArgs): AptArgs {
  const state = args.state === 'installed' ? 'present' : args.state === 'removed' ? 'absent' : args.state;
  return {
    name: args.name,
    ...(state ? { state } : {}),
    ...(args.allow_downgrade !== undefined ? { allow_downgrade: args.allow_downgrade } : {}),
  } as AptArgs;
}

type AptPlanOf = typeof aptModule extends Module<AptArgs, infer P> ? P : never;

export const packageModule: Module<PackageArgs, AptPlanOf> = {
  name: 'package',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 } }] },
      state: { enum: ['present', 'absent', 'latest', 'installed', 'removed'] },
      use: { enum: ['auto', 'apt'] },
      allow_downgrade: { type: 'boolean' },
      ...Object.fromEntries(YUM_DNF_ONLY.map((k) => [k, {}])),
    },
  },
  check: async (ctx, args) => {
    const refused = backendRefusal(args);
    return refused ? { changed: false, actions: [], failed: refused } : aptModule.check(ctx, toApt(args));
  },
  apply: (ctx, args, plan) => aptModule.apply(ctx, toApt(args), plan),
};
