/**
 * service_facts: the host's services as Ansible's `ansible_facts.services`, in one round trip. As Ansible's
 * module: SysV scripts from `service --status-all` first, then, when PID 1 is systemd, `systemctl
 * list-units` and `list-unit-files` (state running/stopped, status enabled/disabled/static/masked...).
 * The parsing is pure and table-tested. Reference: ansible/modules/service_facts.py.
 */
import { failureText, parseSections, runScript, section } from './remote.js';
import type { Module, Planned } from './types.js';

export interface ServiceFact {
  name: string;
  state: string;
  status?: string;
  source: 'sysv' | 'systemd';
}

export function serviceFactsScript(): string {
  return [
    section('pid1', 'cat /proc/1/comm 2>/dev/null'),
    section('sysv', 'if command -v service >/dev/null 2>&1; then service --status-all 2>/dev/null; fi'),
    section(
      'units',
      'if grep -q systemd /proc/1/comm 2>/dev/null; then systemctl list-units --no-pager --type service --all --plain --no-legend; fi',
    ),
    section(
      'unit-files',
      'if grep -q systemd /proc/1/comm 2>/dev/null; then systemctl list-unit-files --no-pager --type service --plain --no-legend; fi',
    ),
  ].join('\n');
}

const BAD_STATES = new Set(['not-found', 'masked', 'failed']);
/** A service name as systemd or /etc/init.d has it: nothing a host could use to smuggle structure. */
const SERVICE_NAME = /^[A-Za-z0-9:_.@\\-]{1,256}$/;

/** Ansible's parsing of the three listings (pure). */
export function parseServiceFacts(sysv: string, units: string, unitFiles: string): Record<string, ServiceFact> {
  const services: Record<string, ServiceFact> = {};
  for (const m of sysv.matchAll(/^\s*\[ ([+-]) \]\s+(.+)$/gm)) {
    const name = m[2]!.trim();
    if (!SERVICE_NAME.test(name)) continue;
    services[name] = { name, state: m[1] === '+' ? 'running' : 'stopped', source: 'sysv' };
  }
  for (const line of units.split('\n')) {
    if (!line.includes('.service')) continue;
    // --plain drops the "●" column; a leading one (older systemd) is dropped here too.
    let fields = line.trim().split(/\s+/);
    if (fields[0] === '●' || fields[0] === '*') fields = fields.slice(1);
    const [name, load, active, sub] = fields;
    if (!name || !SERVICE_NAME.test(name) || sub === undefined) continue;
    const bad = [load, active, sub].find((f) => BAD_STATES.has(f!));
    services[name] = {
      name,
      state: sub === 'running' ? 'running' : 'stopped',
      status: bad ?? active!,
      source: 'systemd',
    };
  }
  for (const line of unitFiles.split('\n')) {
    if (!line.includes('.service')) continue;
    const [name, status] = line.trim().split(/\s+/);
    if (!name || !status || !SERVICE_NAME.test(name)) continue;
    const known = services[name];
    // A unit file systemd has not loaded is not active (what `systemctl show -p ActiveState` says of it).
    if (!known || known.source !== 'systemd') services[name] = { name, state: 'inactive', status, source: 'systemd' };
    else if (!BAD_STATES.has(known.status ?? '')) known.status = status;
  }
  return services;
}

export const serviceFactsModule: Module<Record<string, never>> = {
  name: 'service_facts',
  readOnly: true,
  argsSchema: { type: 'object', additionalProperties: false, properties: {} },

  async check(ctx): Promise<Planned> {
    const res = await runScript(ctx, serviceFactsScript());
    if (res.code !== 0) return { changed: false, actions: [], failed: `listing services failed: ${failureText(res)}` };
    const s = parseSections(res.stdout);
    const services = parseServiceFacts(s.get('sysv') ?? '', s.get('units') ?? '', s.get('unit-files') ?? '');
    if (Object.keys(services).length === 0)
      return {
        changed: false,
        actions: [],
        skipped: 'Failed to find any services. This can be due to privileges or some other configuration issue.',
      };
    return { changed: false, actions: [], data: { ansible_facts: { services } } };
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({
      changed: false,
      data: plan.data ?? {},
      ...(plan.skipped ? { skipped: plan.skipped } : {}),
    });
  },
};
