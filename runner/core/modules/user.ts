/**
 * user: a local account, as Ansible's user module. check probes getent passwd/group/shadow and `id -Gn` in
 * one round trip; apply runs useradd/usermod/userdel once. The password is a crypt hash given by the
 * playbook; it goes to chpasswd -e on standard input, never on a command line, and never into the output.
 */
import { argv, quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseSections, runScript, section } from './remote.js';
import type { Module, ModuleResult, Planned } from './types.js';

export interface UserArgs {
  name: string;
  state?: 'present' | 'absent';
  uid?: number;
  group?: string;
  groups?: string | string[];
  append?: boolean;
  shell?: string;
  home?: string;
  system?: boolean;
  create_home?: boolean;
  password?: string;
  comment?: string;
  remove?: boolean;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  comment: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
}

export interface UserProbe {
  passwd?: PasswdEntry;
  /** `id -Gn`: every group, the primary one included. */
  groupNames: string[];
  primaryGroup?: GroupEntry;
  /** The requested groups that exist, by the name or gid they were asked by. */
  knownGroups: Map<string, GroupEntry>;
  /** The shadow hash, when the password is managed. */
  passwordHash?: string;
}

export interface UserPlan {
  name: string;
  /** useradd / usermod / userdel argv (without the program's name), or nothing. */
  useradd?: string[];
  usermod?: string[];
  userdel?: string[];
  setPassword: boolean;
  password?: string;
}

const USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*\$?$/;

export function parsePasswd(line: string): PasswdEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 7) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), comment: f[4]!, home: f[5]!, shell: f[6]! };
}

export function parseGroupLine(line: string): GroupEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 3) return undefined;
  return { name: f[0]!, gid: Number(f[2]) };
}

export function wantedGroups(args: UserArgs): string[] | undefined {
  if (args.groups === undefined) return undefined;
  const list = typeof args.groups === 'string' ? args.groups.split(',') : args.groups;
  return list.map((g) => g.trim()).filter((g) => g !== '');
}

export function userProbeScript(args: UserArgs): string {
  const name = quote(args.name);
  const lines = [
    section('passwd', `getent passwd -- ${name}`),
    section('id', `id -Gn -- ${name} 2>/dev/null`),
    section(
      'primary',
      `gid=$(getent passwd -- ${name} | cut -d: -f4); if [ -n "$gid" ]; then getent group -- "$gid"; fi`,
    ),
  ];
  const asked = [...(args.group !== undefined ? [args.group] : []), ...(wantedGroups(args) ?? [])];
  asked.forEach((group, i) => lines.push(section(`group-${i}`, `getent group -- ${quote(group)}`)));
  if (args.password !== undefined) lines.push(section('shadow', `getent shadow -- ${name} | cut -d: -f2`));
  lines.push(section('end'));
  return lines.join('\n');
}

export function parseUserProbe(args: UserArgs, stdout: string): UserProbe {
  const s = parseSections(stdout);
  const passwd = parsePasswd(s.get('passwd') ?? '');
  const asked = [...(args.group !== undefined ? [args.group] : []), ...(wantedGroups(args) ?? [])];
  const knownGroups = new Map<string, GroupEntry>();
  asked.forEach((group, i) => {
    const entry = parseGroupLine(s.get(`group-${i}`) ?? '');
    if (entry) knownGroups.set(group, entry);
  });
  const probe: UserProbe = {
    groupNames: (s.get('id') ?? '')
      .trim()
      .split(/\s+/)
      .filter((g) => g !== ''),
    knownGroups,
  };
  if (passwd) probe.passwd = passwd;
  const primary = parseGroupLine(s.get('primary') ?? '');
  if (primary) probe.primaryGroup = primary;
  if (s.has('shadow')) probe.passwordHash = (s.get('shadow') ?? '').trim();
  return probe;
}

/** The plan from the probe (pure; table-tested). */
export function planUser(args: UserArgs, probe: UserProbe): Planned<UserPlan> {
  const name = args.name;
  const plan: UserPlan = { name, setPassword: false };
  const actions: string[] = [];
  const data: Record<string, unknown> = { name, state: args.state ?? 'present' };
  if ((args.state ?? 'present') === 'absent') {
    if (!probe.passwd) return { changed: false, actions: [], state: plan, data };
    plan.userdel = [...(args.remove ? ['-r'] : []), name];
    actions.push(`remove user ${name}${args.remove ? ' and its home' : ''}`);
    return { changed: true, actions, state: plan, data };
  }
  const groups = wantedGroups(args);
  for (const group of [...(args.group !== undefined ? [args.group] : []), ...(groups ?? [])]) {
    if (!probe.knownGroups.has(group)) return { changed: false, actions: [], failed: `Group ${group} does not exist` };
  }
  const groupName = (g: string): string => probe.knownGroups.get(g)?.name ?? g;
  if (!probe.passwd) {
    const opts: string[] = [];
    const words: string[] = [];
    const option = (flag: string, value: string | undefined, word: string): void => {
      if (value === undefined) return;
      opts.push(flag, value);
      words.push(word);
    };
    option('-u', args.uid === undefined ? undefined : String(args.uid), `uid ${args.uid}`);
    option('-g', args.group, `group ${groupName(args.group ?? '')}`);
    if (groups && groups.length > 0) option('-G', groups.join(','), `groups ${groups.map(groupName).join(',')}`);
    option('-s', args.shell, `shell ${args.shell}`);
    option('-d', args.home, `home ${args.home}`);
    option('-c', args.comment, `comment ${JSON.stringify(args.comment)}`);
    if (args.system) {
      opts.push('-r');
      words.push('system');
    }
    opts.push((args.create_home ?? true) ? '-m' : '-M');
    plan.useradd = [...opts, name];
    actions.push(`create user ${name}${words.length > 0 ? ` (${words.join(', ')})` : ''}`);
    if (args.password !== undefined) {
      plan.setPassword = true;
      plan.password = args.password;
      actions.push(`set the password of ${name}`);
    }
    return { changed: true, actions, state: plan, data };
  }

  const current = probe.passwd;
  const opts: string[] = [];
  if (args.uid !== undefined && current.uid !== args.uid) {
    opts.push('-u', String(args.uid));
    actions.push(`change uid of ${name} ${current.uid} -> ${args.uid}`);
  }
  if (args.group !== undefined) {
    const wanted = probe.knownGroups.get(args.group)!;
    if (wanted.gid !== current.gid) {
      opts.push('-g', args.group);
      actions.push(`change primary group of ${name} ${probe.primaryGroup?.name ?? current.gid} -> ${wanted.name}`);
    }
  }
  if (groups !== undefined) {
    const primaryName = probe.primaryGroup?.name;
    const currentSupplementary = new Set(probe.groupNames.filter((g) => g !== primaryName));
    const wantedNames = groups.map(groupName);
    const missing = wantedNames.filter((g) => !currentSupplementary.has(g));
    if (args.append) {
      if (missing.length > 0) {
        opts.push('-a', '-G', missing.join(','));
        actions.push(`add ${name} to ${missing.join(', ')}`);
      }
    } else {
      const extra = [...currentSupplementary].filter((g) => !wantedNames.includes(g));
      if (missing.length > 0 || extra.length > 0) {
        opts.push('-G', wantedNames.join(','));
        actions.push(
          `set groups of ${name} to ${wantedNames.join(',') || '(none)'} (was ${[...currentSupplementary].join(',') || '(none)'})`,
        );
      }
    }
  }
  if (args.shell !== undefined && current.shell !== args.shell) {
    opts.push('-s', args.shell);
    actions.push(`change shell of ${name} ${current.shell} -> ${args.shell}`);
  }
  if (args.home !== undefined && current.home !== args.home) {
    opts.push('-d', args.home);
    actions.push(`change home of ${name} ${current.home} -> ${args.home}`);
  }
  if (args.comment !== undefined && current.comment !== args.comment) {
    opts.push('-c', args.comment);
    actions.push(`change comment of ${name} ${JSON.stringify(current.comment)} -> ${JSON.stringify(args.comment)}`);
  }
  if (opts.length > 0) plan.usermod = [...opts, name];
  if (args.password !== undefined && probe.passwordHash !== args.password) {
    plan.setPassword = true;
    plan.password = args.password;
    actions.push(`set the password of ${name}`);
  }
  return { changed: actions.length > 0, actions, state: plan, data };
}

/** The apply script (pure; table-tested). The password travels on stdin, not here. */
export function userApplyScript(plan: UserPlan): string {
  const lines: string[] = [];
  // The user name is the last word: `--` before it, so no name can ever be read as an option.
  const withName = (words: string[]): string[] => [...words.slice(0, -1), '--', ...words.slice(-1)];
  if (plan.useradd) lines.push(`${argv('useradd', ...withName(plan.useradd))} || exit 30`);
  if (plan.usermod) lines.push(`${argv('usermod', ...withName(plan.usermod))} || exit 31`);
  if (plan.setPassword) lines.push(`chpasswd -e || exit 32`);
  if (plan.userdel) lines.push(`${argv('userdel', ...withName(plan.userdel))} || exit 33`);
  return lines.join('\n');
}

export const userModule: Module<UserArgs, UserPlan> = {
  name: 'user',
  // Ansible's aliases (ansible.builtin.user's documentation).
  argAliases: { user: 'name' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1 },
      state: { enum: ['present', 'absent'] },
      uid: { type: 'integer', minimum: 0 },
      group: { type: 'string', minLength: 1 },
      groups: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 } }] },
      append: { type: 'boolean' },
      shell: { type: 'string', minLength: 1 },
      home: { type: 'string', minLength: 1 },
      system: { type: 'boolean' },
      create_home: { type: 'boolean' },
      password: { type: 'string' },
      comment: { type: 'string' },
      remove: { type: 'boolean' },
    },
  },

  async check(ctx, args): Promise<Planned<UserPlan>> {
    if (!USER_NAME.test(args.name)) throw argError(ctx, `user: ${JSON.stringify(args.name)} is not a valid user name`);
    for (const g of [...(args.group !== undefined ? [args.group] : []), ...(wantedGroups(args) ?? [])]) {
      if (!USER_NAME.test(g) && !/^\d+$/.test(g))
        throw argError(ctx, `user: ${JSON.stringify(g)} is not a valid group name`);
    }
    if (args.password !== undefined && /[:\n]/.test(args.password))
      throw argError(ctx, 'user: password must be a crypt hash (no ":" or line breaks)');
    for (const [key, value] of [
      ['comment', args.comment],
      ['home', args.home],
      ['shell', args.shell],
    ] as const) {
      if (value !== undefined && /[:\n]/.test(value))
        throw argError(ctx, `user: ${key} cannot contain ":" or a line break`);
    }
    const res = await runScript(ctx, userProbeScript(args));
    if (!parseSections(res.stdout).has('end'))
      return { changed: false, actions: [], failed: `cannot look up user ${args.name}: ${failureText(res)}` };
    return planUser(args, parseUserProbe(args, res.stdout));
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = plan.data ?? {};
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
    const res = await runScript(
      ctx,
      userApplyScript(state),
      state.setPassword && state.password !== undefined ? { stdin: `${state.name}:${state.password}\n` } : {},
    );
    if (res.code !== 0) {
      const step = { 30: 'useradd', 31: 'usermod', 32: 'chpasswd', 33: 'userdel' }[res.code] ?? 'changing the user';
      return {
        changed: res.code > 30,
        failed: true,
        msg: `${step} for ${state.name} failed: ${failureText(res)}`,
        data,
      };
    }
    return { changed: true, data };
  },
};
