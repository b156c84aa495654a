/**
 * A site repository's settings file, `cairn.cfg` (or `ansible.cfg`), read from the folder cairn runs in as
 * Ansible reads its own: CAIRN_CONFIG names the file explicitly, otherwise ./cairn.cfg, then ./ansible.cfg.
 * INI format with a `[defaults]` section; the keys cairn understands are Ansible's names where one exists:
 *
 *   inventory = inventories/production/hosts.yaml     # the default -i
 *   roles_path = roles:vendor/roles                   # searched before cairn's built-in roles
 *   vault_identity_file = ~/.config/cairn/site.key    # the default --vault-identity (cairn's own key)
 *
 * Relative paths are taken from the file's folder, so a site works from any subfolder invocation that
 * points CAIRN_CONFIG at it. An unknown key or section is an error at file:line, so a typo never silently
 * falls back to the lab's inventory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { inputError } from '../../core/util/errors.js';

export interface SiteConfig {
  /** The config file read. */
  path: string;
  inventory?: string;
  rolesPath: string[];
  vaultIdentityFile?: string;
}

const KNOWN_KEYS = new Set(['inventory', 'roles_path', 'vault_identity_file']);
// Ansible's other sections and keys a shared ansible.cfg may carry: accepted and ignored, never an error.
const IGNORED_SECTIONS = new Set([
  'privilege_escalation',
  'ssh_connection',
  'persistent_connection',
  'inventory',
  'colors',
  'diff',
  'galaxy',
]);

let cached: { cwd: string; env: string | undefined; config: SiteConfig | undefined } | undefined;

/** The file that applies here, if any. */
export function siteConfigPath(cwd = process.cwd()): string | undefined {
  const explicit = process.env.CAIRN_CONFIG;
  if (explicit) return resolve(cwd, explicit);
  for (const name of ['cairn.cfg', 'ansible.cfg']) {
    const candidate = join(cwd, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

export function parseSiteConfig(path: string, text: string): SiteConfig {
  const base = dirname(path);
  const absolute = (p: string): string =>
    p.startsWith('~/') ? join(homedir(), p.slice(2)) : isAbsolute(p) ? p : resolve(base, p);
  const config: SiteConfig = { path, rolesPath: [] };
  let section: string | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/^\s+|\s+$/g, '');
    const where = { file: path, line: index + 1, col: 1 };
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      if (section !== 'defaults' && !IGNORED_SECTIONS.has(section)) {
        throw inputError(`unknown section [${section}] (expected [defaults])`, where);
      }
      return;
    }
    const pair = /^([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(.*)$/.exec(line);
    if (!pair) throw inputError('expected "key = value", a [section] header or a # comment', where);
    if (section === undefined)
      throw inputError(`"${pair[1]}" comes before any section: put it under [defaults]`, where);
    if (section !== 'defaults') return;
    const key = pair[1]!;
    // An inline comment after a value (Ansible allows " ;" and " #" there).
    const value = pair[2]!.replace(/\s+[#;].*$/, '').trim();
    if (!KNOWN_KEYS.has(key)) {
      // Ansible keys cairn has no use for are fine in an ansible.cfg shared with Ansible; in cairn.cfg a key
      // cairn does not know is a typo.
      if (path.endsWith('ansible.cfg')) return;
      throw inputError(`unknown key "${key}" (cairn.cfg knows ${[...KNOWN_KEYS].join(', ')})`, where);
    }
    if (value === '') throw inputError(`${key} needs a value`, where);
    if (key === 'inventory') config.inventory = absolute(value.split(',')[0]!.trim());
    else if (key === 'roles_path') config.rolesPath = value.split(':').filter(Boolean).map(absolute);
    else config.vaultIdentityFile = absolute(value);
  });
  return config;
}

/** The settings that apply in the current folder (read once per folder). */
export function siteConfig(cwd = process.cwd()): SiteConfig | undefined {
  if (cached && cached.cwd === cwd && cached.env === process.env.CAIRN_CONFIG) return cached.config;
  const path = siteConfigPath(cwd);
  let config: SiteConfig | undefined;
  if (path) {
    if (!existsSync(path)) throw inputError('CAIRN_CONFIG names a file that does not exist', { file: path });
    config = parseSiteConfig(path, readFileSync(path, 'utf8'));
  }
  cached = { cwd, env: process.env.CAIRN_CONFIG, config };
  return config;
}
