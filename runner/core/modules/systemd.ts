/**
 * systemd (alias service): a unit's run state, enablement and mask, as Ansible's systemd module. check is
 * one `systemctl show`; apply runs the planned systemctl commands in one script. restarted and reloaded are
 * always changes, as in Ansible. daemon_reload is planned when systemd says the unit's files changed on disk
 * (NeedDaemonReload=yes), or always when no unit is named.
 */
import { argv } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseKeyValues, runScript } from './remote.js';
import type { Module, ModuleResult, Planned } from './types.js';

export interface SystemdArgs {
  name?: string;
  state?: 'started' | 'stopped' | 'restarted' | 'reloaded';
  enabled?: boolean;
  masked?: boolean;
  daemon_reload?: boolean;
  daemon_reexec?: boolean;
  use?: string;
}

export interface UnitStatus {
  id: string;
  loadState: string;
  activeState: string;
  subState: string;
  unitFileState: string;
  needDaemonReload: boolean;
}

export interface SystemdPlan {
  name?: string;
  /** systemctl verbs in order ('daemon-reload' has no unit). */
  steps: string[];
}

const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]+$/;
const ENABLED_STATES = new Set(['enabled', 'enabled-runtime', 'alias', 'static', 'indirect', 'generated', 'transient']);
const DISABLEABLE_STATES = new Set(['enabled', 'enabled-runtime', 'linked', 'linked-runtime', 'alias']);
const RUNNING_STATES = new Set(['active', 'activating', 'reloading']);
const STOPPED_STATES = new Set(['inactive', 'failed']);

export const SHOW_PROPERTIES = 'Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload';

/** `systemctl show -p ...` output. */
export function parseSystemctlShow(text: string): UnitStatus {
  const kv = parseKeyValues(text);
  return {
    id: kv.get('Id') ?? '',
    loadState: kv.get('LoadState') ?? '',
    activeState: kv.get('ActiveState') ?? '',
    subState: kv.get('SubState') ?? '',
    unitFileState: kv.get('UnitFileState') ?? '',
    needDaemonReload: kv.get('NeedDaemonReload') === 'yes',
  };
}

/** The plan from the unit's status (pure; table-tested). `unit` is undefined when no name was given. */
export function planSystemd(args: SystemdArgs, unit: UnitStatus | undefined): Planned<SystemdPlan> {
  const steps: string[] = [];
  const actions: string[] = [];
  const name = args.name;
  if (args.daemon_reexec) {
    steps.push('daemon-reexec');
    actions.push('re-execute the systemd manager');
  }
  if (args.daemon_reload && (unit === undefined || unit.needDaemonReload)) {
    steps.push('daemon-reload');
    actions.push(
      unit
        ? `reload systemd manager configuration (${unit.id} changed on disk)`
        : 'reload systemd manager configuration',
    );
  }
  if (unit && name) {
    const masked = unit.loadState === 'masked' || unit.unitFileState.startsWith('masked');
    const willBeMasked = args.masked ?? masked;
    if (args.masked === false && masked) {
      steps.push('unmask');
      actions.push(`unmask ${name}`);
    }
    // A unit that is not installed yet is planned like an inactive, disabled one: in check mode an earlier
    // task (the package install) may be about to bring it, as a missing folder for copy. The actions say so,
    // and apply fails with systemctl's own "not found" if it is still missing then.
    const notFound = unit.loadState === 'not-found' && !(args.masked === false && masked) && !willBeMasked;
    const firstUnitAction = actions.length;
    if (args.enabled === true && !ENABLED_STATES.has(unit.unitFileState)) {
      steps.push('enable');
      actions.push(`enable ${name}${unit.unitFileState ? ` (was ${unit.unitFileState})` : ''}`);
    } else if (args.enabled === false && DISABLEABLE_STATES.has(unit.unitFileState)) {
      steps.push('disable');
      actions.push(`disable ${name}`);
    }
    const running = RUNNING_STATES.has(unit.activeState);
    switch (args.state) {
      case 'started':
        if (!running) {
          steps.push('start');
          actions.push(`start ${name} (was ${unit.activeState})`);
        }
        break;
      case 'stopped':
        if (!STOPPED_STATES.has(unit.activeState)) {
          steps.push('stop');
          actions.push(`stop ${name} (was ${unit.activeState})`);
        }
        break;
      case 'restarted':
        steps.push('restart');
        actions.push(`restart ${name}`);
        break;
      case 'reloaded':
        // As Ansible: a unit that is not running is started instead.
        steps.push(running ? 'reload' : 'start');
        actions.push(running ? `reload ${name}` : `start ${name} (reload asked, was ${unit.activeState})`);
        break;
      default:
        break;
    }
    if (args.masked === true && !masked) {
      steps.push('mask');
      actions.push(`mask ${name}`);
    }
    if (notFound) {
      for (let i = firstUnitAction; i < actions.length; i++)
        actions[i] =
          `${actions[i]}: ${name} is not installed yet (LoadState=not-found); an earlier task must install it, or this fails`;
    }
  }
  const data: Record<string, unknown> = { name };
  if (unit)
    data.status = {
      ActiveState: unit.activeState,
      SubState: unit.subState,
      UnitFileState: unit.unitFileState,
      LoadState: unit.loadState,
    };
  return { changed: steps.length > 0, actions, state: { ...(name !== undefined ? { name } : {}), steps }, data };
}

/** The apply script (pure; table-tested). Each step reports which one failed through its exit code. */
export function systemdApplyScript(plan: SystemdPlan): string {
  return plan.steps
    .map((step, i) => {
      const command =
        step.startsWith('daemon-') || plan.name === undefined
          ? argv('systemctl', step)
          : argv('systemctl', step, '--', plan.name);
      return `${command} || exit ${20 + i}`;
    })
    .join('\n');
}

export const systemdModule: Module<SystemdArgs, SystemdPlan> = {
  name: 'systemd',
  // Ansible's aliases (ansible.builtin.systemd's documentation).
  // Ansible's systemd_service aliases, hyphenated ones included (`systemd: daemon-reload=true`).
  argAliases: { service: 'name', unit: 'name', 'daemon-reload': 'daemon_reload', 'daemon-reexec': 'daemon_reexec' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      name: { type: 'string', minLength: 1 },
      state: { enum: ['started', 'stopped', 'restarted', 'reloaded'] },
      enabled: { type: 'boolean' },
      masked: { type: 'boolean' },
      daemon_reload: { type: 'boolean' },
      daemon_reexec: { type: 'boolean' },
      // Ansible's service `use`: the backend. cairn drives systemd, which is what `auto` and `service` pick
      // on a Debian host; another backend (sysvinit, openrc...) is refused when the task runs.
      use: { type: 'string' },
    },
  },

  async check(ctx, args): Promise<Planned<SystemdPlan>> {
    if (args.use !== undefined && !['auto', 'systemd', 'service'].includes(args.use))
      throw argError(
        ctx,
        `service: use ${JSON.stringify(args.use)} is not supported: cairn manages services with systemd (use auto, systemd or service)`,
      );
    if (args.name !== undefined && !UNIT_NAME.test(args.name))
      throw argError(ctx, `systemd: ${JSON.stringify(args.name)} is not a unit name`);
    if (
      args.name === undefined &&
      (args.state !== undefined || args.enabled !== undefined || args.masked !== undefined)
    ) {
      throw argError(ctx, 'systemd needs name with state, enabled or masked');
    }
    if (args.masked === true && args.enabled === true) throw argError(ctx, 'systemd: a masked unit cannot be enabled');
    if (args.name === undefined) return planSystemd(args, undefined);
    const res = await runScript(ctx, `LC_ALL=C systemctl show -p ${SHOW_PROPERTIES} -- ${argv(args.name)}`);
    if (res.code !== 0) {
      const text = failureText(res);
      const why = /not been booted with systemd|Failed to connect to bus/i.test(text)
        ? 'systemd is not running on this host (PID 1 is not systemd)'
        : text;
      return { changed: false, actions: [], failed: `cannot query ${args.name}: ${why}` };
    }
    return planSystemd(args, parseSystemctlShow(res.stdout));
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = plan.data ?? {};
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
    const res = await runScript(ctx, systemdApplyScript(state), { timeoutMs: 10 * 60 * 1000 });
    if (res.code !== 0) {
      const step = state.steps[res.code - 20];
      return {
        changed: res.code > 20,
        failed: true,
        msg: `systemctl ${step ?? ''} ${state.name ?? ''} failed: ${failureText(res)}`.replace(/\s+/g, ' '),
        data,
      };
    }
    return { changed: true, data };
  },
};
