/**
 * The settings file: ONE reader and ONE precedence rule for cairn.cfg and ansible.cfg. cairn reads the first
 * of these that exists, and only that one (never merged, as Ansible reads ansible.cfg):
 *
 *   1. CAIRN_CONFIG    the file it names (an error if it does not exist)
 *   2. ANSIBLE_CONFIG  the file it names (skipped if it does not exist, as Ansible does)
 *   3. ./cairn.cfg     the site's file, written by `cairn init`
 *   4. ./ansible.cfg
 *   5. ~/.ansible.cfg
 *   6. /etc/ansible/ansible.cfg
 *
 * Explicit environment variables first, then the folder cairn runs in (cairn's name before Ansible's), then
 * the user's and the system's: Ansible's order, with cairn's names beside their Ansible counterparts.
 * INI with a `[defaults]` section; the keys are Ansible's names, and each has a cairn equivalent that wins:
 *
 * | [defaults]              | means                                   | wins over it                          |
 * | inventory               | the default inventory (one path)        | -i, CAIRN_INVENTORY                   |
 * | roles_path              | searched before the built-in roles      | CAIRN_ROLES_PATH, ANSIBLE_ROLES_PATH  |
 * | vault_identity_file     | cairn's age key (cairn only)            | --vault-identity                      |
 * | forks                   | hosts at once                           | -f                                    |
 * | remote_user             | login user                              | -u, inventory and play                |
 * | private_key_file        | SSH key                                 | --private-key, inventory              |
 * | host_key_checking=False | trust on first use (changed keys fail)  | --accept-new-host-keys                |
 * | apply_batching=False    | each apply its own round trip (cairn)   | CAIRN_APPLY_BATCHING=0 / =1           |
 * | timeout                 | connect timeout, s (TCP + SSH banner)   | ANSIBLE_TIMEOUT, ansible_timeout      |
 *
 * and under [ssh_connection] (or [connection]), as Ansible's ssh plugin reads them:
 *
 * | retries                 | connect attempts after the first        | ANSIBLE_SSH_RETRIES, ansible_ssh_retries |
 * | timeout                 | as [defaults] timeout                   | ANSIBLE_SSH_TIMEOUT, ansible_timeout  |
 *
 * Relative paths are taken from the file's folder. A file named cairn.cfg is read strictly: an unknown key
 * or section, a line that is not `key = value`, or an empty value is an error at file:line, so a typo never
 * silently falls back to the lab's inventory. An ansible.cfg is shared with Ansible: keys and sections cairn
 * has no use for are ignored there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { inputError, optionsError, type SourceLocation } from '../core/util/errors.js';

export interface CairnConfig {
  /** The file read. */
  path: string;
  inventory?: string;
  rolesPath: string[];
  vaultIdentityFile?: string;
  forks?: number;
  remoteUser?: string;
  privateKeyFile?: string;
  hostKeyChecking?: boolean;
  /** Consecutive independent tasks' applies travel in one round trip (docs/performance.md). */
  applyBatching?: boolean;
  /** Connect timeout in seconds (Ansible's `timeout`). */
  timeout?: number;
  /** Connect attempts after a failed one (Ansible's ssh plugin `retries`, reconnection_retries). */
  sshRetries?: number;
}

const KNOWN_KEYS = [
  'inventory',
  'roles_path',
  'vault_identity_file',
  'forks',
  'remote_user',
  'private_key_file',
  'host_key_checking',
  'apply_batching',
  'timeout',
] as const;
/** Keys cairn reads under [ssh_connection] and [connection] (Ansible's ssh plugin settings). */
const SSH_CONNECTION_KEYS = ['retries', 'timeout'] as const;
// Ansible's other sections, accepted (and ignored) even in a strict cairn.cfg.
const ANSIBLE_SECTIONS = new Set([
  'privilege_escalation',
  'ssh_connection',
  'connection',
  'persistent_connection',
  'inventory',
  'colors',
  'diff',
  'galaxy',
]);

/** Where the settings come from here: the first candidate that exists (see the order above). */
export function configPath(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | undefined {
  if (env.CAIRN_CONFIG) return resolve(cwd, env.CAIRN_CONFIG);
  const home = env.HOME || homedir();
  const candidates = [
    env.ANSIBLE_CONFIG ? resolve(cwd, env.ANSIBLE_CONFIG) : undefined,
    join(cwd, 'cairn.cfg'),
    join(cwd, 'ansible.cfg'),
    join(home, '.ansible.cfg'),
    '/etc/ansible/ansible.cfg',
  ];
  return candidates.find((c): c is string => c !== undefined && existsSync(c));
}

export function parseConfig(path: string, text: string): CairnConfig {
  const strict = basename(path) === 'cairn.cfg';
  const base = dirname(path);
  const absolute = (p: string): string =>
    p.startsWith('~/') ? join(homedir(), p.slice(2)) : isAbsolute(p) ? p : resolve(base, p);
  const config: CairnConfig = { path, rolesPath: [] };
  let section: string | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    const where: SourceLocation = { file: path, line: index + 1, col: 1 };
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      if (strict && section !== 'defaults' && !ANSIBLE_SECTIONS.has(section))
        throw inputError(`unknown section [${section}] (expected [defaults])`, where);
      return;
    }
    const pair = /^([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(.*)$/.exec(line);
    if (!pair) {
      if (strict) throw inputError('expected "key = value", a [section] header or a # comment', where);
      return;
    }
    if (section === undefined) {
      if (strict) throw inputError(`"${pair[1]}" comes before any section: put it under [defaults]`, where);
      return;
    }
    const key = pair[1]!;
    // An inline comment after a value (Ansible allows " ;" and " #" there).
    const value = pair[2]!.replace(/\s+[#;].*$/, '').trim();
    if (section === 'ssh_connection' || section === 'connection') {
      if ((SSH_CONNECTION_KEYS as readonly string[]).includes(key) && value !== '')
        setSshConnectionKey(config, key as (typeof SSH_CONNECTION_KEYS)[number], value, where);
      return;
    }
    if (section !== 'defaults') return;
    if (!(KNOWN_KEYS as readonly string[]).includes(key)) {
      if (strict) throw inputError(`unknown key "${key}" (cairn.cfg knows ${KNOWN_KEYS.join(', ')})`, where);
      return;
    }
    if (value === '') {
      if (strict) throw inputError(`${key} needs a value`, where);
      return;
    }
    setKey(config, key as (typeof KNOWN_KEYS)[number], value, absolute, where);
  });
  return config;
}

function setKey(
  config: CairnConfig,
  key: (typeof KNOWN_KEYS)[number],
  value: string,
  absolute: (p: string) => string,
  where: SourceLocation,
): void {
  switch (key) {
    case 'inventory': {
      // Ansible's inventory setting is a list of paths; cairn reads one inventory (a folder can hold several).
      const paths = value
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      if (paths.length > 1)
        throw inputError(
          `inventory names ${paths.length} paths; cairn reads one (a folder can hold several files)`,
          where,
        );
      config.inventory = absolute(paths[0] ?? value);
      return;
    }
    case 'roles_path':
      config.rolesPath = value.split(':').filter(Boolean).map(absolute);
      return;
    case 'vault_identity_file':
      config.vaultIdentityFile = absolute(value);
      return;
    case 'forks': {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw inputError(`forks must be a whole number ≥ 1, got "${value}"`, where);
      config.forks = n;
      return;
    }
    case 'remote_user':
      config.remoteUser = value;
      return;
    case 'private_key_file':
      config.privateKeyFile = absolute(value);
      return;
    case 'host_key_checking':
      config.hostKeyChecking = !/^(false|no|off|0)$/i.test(value);
      return;
    case 'apply_batching':
      config.applyBatching = onOff(key, value, where);
      return;
    case 'timeout':
      config.timeout = wholeNumber(key, value, 1, where);
      return;
  }
}

function setSshConnectionKey(
  config: CairnConfig,
  key: (typeof SSH_CONNECTION_KEYS)[number],
  value: string,
  where: SourceLocation,
): void {
  if (key === 'retries') config.sshRetries = wholeNumber(key, value, 0, where);
  else config.timeout = wholeNumber(key, value, 1, where);
}

/** A whole number ≥ min, from the settings file or the environment (`where` absent). */
export function wholeNumber(key: string, value: string, min: number, where?: SourceLocation): number {
  const n = Number(value);
  if (value.trim() !== '' && Number.isInteger(n) && n >= min) return n;
  const message = `${key} must be a whole number ≥ ${min}, got "${value}"`;
  throw where ? inputError(message, where) : optionsError(message);
}

let cached: { key: string; config: CairnConfig | undefined } | undefined;

/** The settings that apply here (read once per folder and environment). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): CairnConfig | undefined {
  const key = [cwd, env.CAIRN_CONFIG, env.ANSIBLE_CONFIG, env.HOME].join('\0');
  if (cached?.key === key) return cached.config;
  const path = configPath(env, cwd);
  let config: CairnConfig | undefined;
  if (path) {
    if (!existsSync(path)) throw inputError('CAIRN_CONFIG names a file that does not exist', { file: path });
    config = parseConfig(path, readFileSync(path, 'utf8'));
  }
  cached = { key, config };
  return config;
}

function onOff(key: string, value: string, where?: SourceLocation): boolean {
  if (/^(true|yes|on|1)$/i.test(value)) return true;
  if (/^(false|no|off|0)$/i.test(value)) return false;
  const message = `${key} must be true or false, got "${value}"`;
  throw where ? inputError(message, where) : optionsError(message);
}

/**
 * Whether consecutive independent tasks' applies travel in one round trip (issue 17; docs/performance.md):
 * on, unless CAIRN_APPLY_BATCHING (0/1, false/true, off/on) or the settings file's apply_batching says off.
 */
export function applyBatchingEnabled(env: NodeJS.ProcessEnv = process.env, config = loadConfig(env)): boolean {
  const forced = env.CAIRN_APPLY_BATCHING;
  if (forced !== undefined && forced !== '') return onOff('CAIRN_APPLY_BATCHING', forced);
  return config?.applyBatching ?? true;
}
