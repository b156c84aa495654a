/**
 * add_host: a host (and its groups, and its variables) added to the run's in-memory inventory, for the plays
 * that follow (Ansible's lib/ansible/plugins/action/add_host.py computes the request; the strategy hands it
 * to lib/ansible/inventory/manager.py add_dynamic_host, which says whether anything changed). It touches no
 * host: the engine runs it without a connection, once per batch (BYPASS_HOST_LOOP), in check mode too.
 */
import { inputError, type SourceLocation } from '../util/errors.js';
import { CONNECTION_VARIABLE_SCHEMAS, MAGIC_VARIABLES, VAR_NAME_PATTERN } from '../inventory/schema.js';
import type { AddHostRequest, Module, Planned } from './types.js';

export interface AddHostArgs {
  name: string;
  groups?: string | string[];
  [hostVariable: string]: unknown;
}

/** A group name as cairn's inventory allows it (and as a host pattern can name it). */
export const DYNAMIC_GROUP_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** A host name as a host pattern can name it: no pattern operator, separator or space. */
const DYNAMIC_HOST_PATTERN = /^[^\s,:!&~*?[\]]+$/;

const TEMPLATED = { type: 'string', pattern: '\\{\\{' };

export const addHostArgsSchema = {
  type: 'object',
  required: ['name'],
  propertyNames: {
    pattern: VAR_NAME_PATTERN,
    // `groups` is add_host's own argument here, not the magic variable.
    not: { enum: MAGIC_VARIABLES.filter((name) => name !== 'groups') },
    description: 'an argument or variable name (letters, digits and "_"; not one cairn sets itself)',
  },
  properties: {
    name: { type: 'string', minLength: 1, description: 'the new host\'s name, optionally with ":PORT"' },
    groups: {
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string', minLength: 1 } }],
      description: 'a group name, a comma-separated list of them, or a list',
    },
    ...Object.fromEntries(
      Object.entries(CONNECTION_VARIABLE_SCHEMAS).map(([name, schema]) => [
        name,
        // A key=value argument arrives as a string: "2222" is a port as Ansible would read it.
        name === 'ansible_port' || name === 'ansible_timeout'
          ? {
              anyOf: [schema, { type: 'string', pattern: '^[0-9]+$' }, TEMPLATED],
              description: (schema as { description: string }).description,
            }
          : schema,
      ]),
    ),
    // A play may add a host for a connection cairn does not have (docker, kubectl) that a later play only
    // uses where it runs: refused when a task connects to the host (connection-spec.ts), not at load.
    ansible_connection: { type: 'string', minLength: 1, description: 'a connection name (cairn runs ssh and local)' },
  },
} as const;

/**
 * Ansible's parse_address (lib/ansible/parsing/utils/addresses.py) without ranges: `host:PORT`,
 * `[address]:PORT`; a name it cannot read keeps the whole text and no port, as add_host.py does.
 */
export function parseHostPort(address: string): { host: string; port?: number } {
  let host = address;
  let port: number | undefined;
  const bracketed = /^\[(.+)\]:([0-9]+)$/.exec(host);
  if (bracketed) {
    host = bracketed[1]!;
    port = Number(bracketed[2]);
  }
  const hostPort = /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/.exec(host);
  if (hostPort) {
    host = hostPort[1]!;
    port = Number(hostPort[2]);
  }
  const ipv4 = /^(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]{1,2})$/;
  const ipv6 = /^[0-9a-f:.]*:[0-9a-f:.]*$/i;
  const label = '[\\p{L}\\p{N}_](?:[\\p{L}\\p{N}_-]*[\\p{L}\\p{N}_])?';
  const hostname = new RegExp(`^${label}(?:\\.${label})*$`, 'u');
  if (!ipv4.test(host) && !ipv6.test(host) && !hostname.test(host)) return { host: address };
  return port === undefined ? { host } : { host, port };
}

/** Ansible's groups argument: a list, or a string split on commas (each name trimmed, repeats dropped). */
export function groupList(groups: string | string[] | undefined): string[] {
  if (groups === undefined || groups === '') return [];
  const names = (Array.isArray(groups) ? groups : groups.split(',')).map((g) => g.trim());
  return names.filter((g, i) => g !== '' && names.indexOf(g) === i);
}

/** What add_host's (rendered, validated) arguments ask of the inventory; bad names fail the task at `where`. */
export function addHostRequest(args: AddHostArgs, where?: SourceLocation): AddHostRequest {
  const { name, groups, ...vars } = args;
  const { host, port } = parseHostPort(name);
  if (!DYNAMIC_HOST_PATTERN.test(host))
    throw inputError(
      `add_host: host name ${JSON.stringify(host)} cannot be named in a host pattern (no spaces, ",", ":", ` +
        `"!", "&", "~", "*", "?", "[" or "]")`,
      where,
    );
  const groupNames = groupList(groups);
  for (const group of groupNames) {
    if (!DYNAMIC_GROUP_PATTERN.test(group))
      throw inputError(
        `add_host: group name ${JSON.stringify(group)} must be letters, digits, "_", "." and "-"`,
        where,
      );
  }
  // As add_host.py: a port in the name is the legacy ansible_ssh_port (which wins over ansible_port).
  const hostVars: Record<string, unknown> = port === undefined ? vars : { ...vars, ansible_ssh_port: port };
  return { kind: 'add_host', host, groups: groupNames, vars: hostVars };
}

/** The plan Ansible's action plugin returns: `changed` is false until the inventory says what it added. */
function planOf(args: AddHostArgs): Planned {
  const request = addHostRequest(args);
  const groups = request.groups.length ? ` in ${request.groups.join(', ')}` : '';
  return {
    changed: false,
    actions: [`add host ${request.host}${groups} to the run's inventory`],
    data: { add_host: { host_name: request.host, groups: request.groups, host_vars: request.vars } },
  };
}

export const addHostModule: Module<AddHostArgs> = {
  name: 'add_host',
  argsSchema: addHostArgsSchema,
  // As add_host.py reads them (name, else hostname, else host; groupname, else groups, else group).
  argAliases: { hostname: 'name', host: 'name', groupname: 'groups', group: 'groups' },
  bypassHostLoop: true,
  inventoryRequest: (args, where) => addHostRequest(args, where),
  // The engine never sends add_host to a host; the plan is what Ansible's action plugin returns.
  check: (_ctx, args) => Promise.resolve(planOf(args)),
  apply: (_ctx, _args, plan) => Promise.resolve({ changed: false, data: plan.data ?? {} }),
};
