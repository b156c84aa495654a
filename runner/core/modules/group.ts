/**
 * group: a local group, as Ansible's group module (name, gid, state, system, local, non_unique). check reads
 * the group's entry in one round trip and plans groupadd / groupmod -g / groupdel; apply runs exactly that.
 * Reference: ansible/modules/group.py.
 */
import { argv } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseSections, ProbeError, runScript, section } from './remote.js';
import type { Module, ModuleContext, Planned } from './types.js';

export interface GroupArgs {
  name: string;
  gid?: number;
  state?: 'present' | 'absent';
  system?: boolean;
  local?: boolean;
  non_unique?: boolean;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

interface GroupPlan {
  /** The one command apply runs (an argv), or none. */
  command?: string[];
}

/** Group names as shadow-utils accepts them (and no leading '-', so a name is never an option). */
const GROUP_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,31}\$?$/;

/** One line of /etc/group (or `getent group`), validated: a malformed line is refused, never guessed at. */
export function parseGroupLine(name: string, text: string): GroupEntry | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}:`));
  if (line === undefined) return undefined;
  const fields = line.split(':');
  if (fields.length !== 4 || !/^\d{1,10}$/.test(fields[2]!))
    throw new ProbeError(`the host reported a malformed group entry for ${name}`);
  return { name, gid: Number(fields[2]), members: fields[3] ? fields[3].split(',') : [] };
}

export function probeGroupScript(name: string, local: boolean): string {
  // local: only /etc/group counts (a group from LDAP/NIS is not a local group), as Ansible's local: yes.
  return local
    ? section('group', `grep -F -- ${argv(`${name}:`)} /etc/group || true`)
    : section('group', `getent group -- ${argv(name)} || true`);
}

/** The plan from the probed entry (pure; table-tested). */
export function planGroup(args: GroupArgs, entry: GroupEntry | undefined): Planned<GroupPlan> {
  const state = args.state ?? 'present';
  const data = (gid: number | undefined) => ({
    name: args.name,
    state,
    ...(gid !== undefined ? { gid, system: Boolean(args.system) } : {}),
  });
  if (state === 'absent') {
    if (!entry) return { changed: false, actions: [], state: {}, data: data(undefined) };
    return {
      changed: true,
      actions: [`delete group ${args.name}`],
      state: { command: ['groupdel', '--', args.name] },
      data: data(undefined),
    };
  }
  if (!entry) {
    const command = ['groupadd'];
    if (args.gid !== undefined) command.push('-g', String(args.gid));
    if (args.non_unique) command.push('-o');
    if (args.system) command.push('-r');
    command.push('--', args.name);
    const gidWords = args.gid !== undefined ? ` with gid ${args.gid}` : '';
    return {
      changed: true,
      actions: [`create ${args.system ? 'system ' : ''}group ${args.name}${gidWords}`],
      state: { command },
      data: data(args.gid),
    };
  }
  if (args.gid !== undefined && args.gid !== entry.gid) {
    const command = ['groupmod', '-g', String(args.gid), ...(args.non_unique ? ['-o'] : []), '--', args.name];
    return {
      changed: true,
      actions: [`change gid of group ${args.name} ${entry.gid} -> ${args.gid}`],
      state: { command },
      data: data(args.gid),
    };
  }
  return { changed: false, actions: [], state: {}, data: data(entry.gid) };
}

async function probeGroup(ctx: ModuleContext, args: GroupArgs): Promise<GroupEntry | undefined> {
  const res = await runScript(ctx, probeGroupScript(args.name, Boolean(args.local)));
  if (res.code !== 0) throw new ProbeError(`cannot read group ${args.name}: ${failureText(res)}`);
  return parseGroupLine(args.name, parseSections(res.stdout).get('group') ?? '');
}

export const groupModule: Module<GroupArgs, GroupPlan> = {
  name: 'group',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1 },
      gid: { type: 'integer', minimum: 0 },
      state: { enum: ['present', 'absent'] },
      system: { type: 'boolean' },
      local: { type: 'boolean' },
      non_unique: { type: 'boolean' },
    },
  },

  async check(ctx, args) {
    if (!GROUP_NAME.test(args.name)) throw argError(ctx, `group name ${JSON.stringify(args.name)} is not valid`);
    if (args.non_unique && args.gid === undefined) throw argError(ctx, 'group: non_unique needs gid');
    try {
      return planGroup(args, await probeGroup(ctx, args));
    } catch (err) {
      if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
      throw err;
    }
  },

  async apply(ctx, args, plan) {
    const data = { ...(plan.data ?? {}) };
    const command = plan.state?.command;
    if (!plan.changed || !command) return { changed: false, data };
    const res = await runScript(ctx, argv(...command));
    if (res.code !== 0) return { changed: false, failed: true, msg: failureText(res), data };
    return { changed: true, data: { ...data, name: args.name } };
  },
};
