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
}

function toApt(args: PackageArgs): AptArgs {
  const state = args.state === 'installed' ? 'present' : args.state === 'removed' ? 'absent' : args.state;
  return { name: args.name, ...(state ? { state } : {}) } as AptArgs;
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
    },
  },
  check: (ctx, args) => aptModule.check(ctx, toApt(args)),
  apply: (ctx, args, plan) => aptModule.apply(ctx, toApt(args), plan),
};
