/**
 * Turning a host's variables into a ConnectionSpec. The variable names are Ansible's (ansible_host,
 * ansible_port, ansible_user, ansible_ssh_private_key_file, ansible_connection, ansible_become,
 * ansible_become_user, ansible_timeout, ansible_ssh_retries) plus cairn_jump and cairn_known_hosts.
 *
 * The legacy names ansible_ssh_host, ansible_ssh_port, ansible_ssh_user and ansible_ssh_pass (and
 * ansible_ssh_password) mean what they mean to Ansible's ssh connection plugin, which lists each setting's
 * variables in order and takes the last one defined: the legacy name wins when both are set.
 */
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { inputError } from '../util/errors.js';
import type { ConnectionSpec, JumpSpec } from '../transport/types.js';
import type { Vars } from '../util/vars.js';

export interface SpecDefaults {
  /** Relative key and known_hosts paths are taken relative to this folder (the inventory's). */
  baseDir: string;
  acceptNewHostKeys: boolean;
  /** --known-hosts on the command line, if given. */
  knownHostsPath?: string;
  connectTimeoutMs?: number;
}

function str(vars: Vars, key: string): string | undefined {
  const v = vars[key];
  return v === undefined || v === null || v === '' ? undefined : String(v);
}

/** The value of the last of `keys` that is set (the ssh plugin's order: modern name first, legacy last). */
function lastSet(vars: Vars, ...keys: string[]): string | undefined {
  let found: string | undefined;
  for (const key of keys) found = str(vars, key) ?? found;
  return found;
}

function bool(vars: Vars, key: string): boolean | undefined {
  const v = vars[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  return /^(yes|true|on|1)$/i.test(String(v));
}

/** `user@host:port` (user and port optional); also `[v6]:port`. */
export function parseJumpTarget(text: string, fallbackUser: string, host: string): JumpSpec {
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:\s]+)(?::(\d+))?$/.exec(text.trim());
  if (!m) throw inputError(`host ${host}: cairn_jump entry "${text}" is not of the form user@host:port`);
  const port = m[3] ? Number(m[3]) : 22;
  if (port < 1 || port > 65535) throw inputError(`host ${host}: cairn_jump port ${port} is out of range`);
  return { user: m[1] ?? fallbackUser, address: m[2]!.replace(/^\[|\]$/g, ''), port };
}

/**
 * Every variable connectionSpecFor reads: a set_fact, include_vars or register that writes one of these
 * changes how the host is reached, so the engine resolves the host's settings again (Ansible reads them per task).
 */
export const CONNECTION_VARIABLES: ReadonlySet<string> = new Set([
  'ansible_host',
  'ansible_ssh_host',
  'ansible_connection',
  'ansible_port',
  'ansible_ssh_port',
  'ansible_user',
  'ansible_ssh_user',
  'ansible_ssh_private_key_file',
  'ansible_private_key_file',
  'ansible_timeout',
  'ansible_ssh_retries',
  'cairn_jump',
  'cairn_known_hosts',
  'ansible_password',
  'ansible_ssh_pass',
  'ansible_ssh_password',
  'ansible_become',
  'ansible_become_user',
]);

export function connectionSpecFor(name: string, vars: Vars, defaults: SpecDefaults): ConnectionSpec {
  const rel = (p: string) =>
    p.startsWith('~/') ? join(homedir(), p.slice(2)) : isAbsolute(p) ? p : resolve(defaults.baseDir, p);
  const hostVar = lastSet(vars, 'ansible_host', 'ansible_ssh_host');
  const address = hostVar ?? name;
  const explicit = str(vars, 'ansible_connection');
  const isLocalName = (name === 'localhost' || name === '127.0.0.1') && hostVar === undefined;
  const connection = explicit === 'local' || (!explicit && isLocalName) ? 'local' : 'ssh';
  if (explicit && explicit !== 'local' && explicit !== 'ssh' && explicit !== 'smart' && explicit !== 'paramiko') {
    throw inputError(`host ${name}: ansible_connection must be "ssh" or "local", got "${explicit}"`);
  }
  const portText = lastSet(vars, 'ansible_port', 'ansible_ssh_port') ?? '22';
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw inputError(`host ${name}: ansible_port must be 1..65535, got "${portText}"`);
  const user = lastSet(vars, 'ansible_user', 'ansible_ssh_user') ?? userInfo().username;
  const key = str(vars, 'ansible_ssh_private_key_file') ?? str(vars, 'ansible_private_key_file');
  const timeoutS = Number(str(vars, 'ansible_timeout') ?? NaN);
  const retriesText = str(vars, 'ansible_ssh_retries');
  const connectRetries = retriesText === undefined ? 0 : Number(retriesText);
  if (!Number.isInteger(connectRetries) || connectRetries < 0)
    throw inputError(`host ${name}: ansible_ssh_retries must be a whole number ≥ 0, got "${retriesText}"`);
  const jumpVar = vars.cairn_jump;
  const jumpList =
    jumpVar === undefined || jumpVar === null || jumpVar === ''
      ? []
      : Array.isArray(jumpVar)
        ? jumpVar.map(String)
        : String(jumpVar).split(',');
  const jump = jumpList.map((j) => {
    const spec = parseJumpTarget(j, user, name);
    return key ? { ...spec, privateKeyPath: rel(key) } : spec;
  });
  const knownHosts = defaults.knownHostsPath ?? str(vars, 'cairn_known_hosts') ?? '~/.ssh/known_hosts';
  return {
    name,
    connection,
    address,
    port,
    user,
    privateKeyPath: key ? rel(key) : undefined,
    password: lastSet(vars, 'ansible_password', 'ansible_ssh_pass', 'ansible_ssh_password'),
    jump,
    connectTimeoutMs:
      Number.isFinite(timeoutS) && timeoutS > 0 ? timeoutS * 1000 : (defaults.connectTimeoutMs ?? 10_000),
    connectRetries,
    knownHostsPath: rel(knownHosts),
    acceptNewHostKeys: defaults.acceptNewHostKeys,
    become: bool(vars, 'ansible_become') ?? false,
    becomeUser: str(vars, 'ansible_become_user') ?? 'root',
  };
}
