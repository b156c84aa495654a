/**
 * ansible.cfg, read as Ansible finds it (ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg,
 * /etc/ansible/ansible.cfg: the first that exists, never merged), for the [defaults] settings cairn has an
 * equivalent for. Command-line options and environment variables win over it, as in Ansible.
 *
 * | ansible.cfg [defaults]  | cairn equivalent (wins over ansible.cfg)                 |
 * | inventory               | -i, CAIRN_INVENTORY                                      |
 * | roles_path              | CAIRN_ROLES_PATH, ANSIBLE_ROLES_PATH (searched before it) |
 * | forks                   | -f                                                       |
 * | remote_user             | -u                                                       |
 * | private_key_file        | --private-key                                            |
 * | host_key_checking=False | --accept-new-host-keys (cairn still refuses changed keys) |
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { inputError } from '../core/util/errors.js';

export interface AnsibleCfg {
  file: string;
  inventory?: string;
  rolesPath: string[];
  forks?: number;
  remoteUser?: string;
  privateKeyFile?: string;
  hostKeyChecking?: boolean;
}

export function findAnsibleCfg(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | undefined {
  const candidates = [
    env.ANSIBLE_CONFIG,
    join(cwd, 'ansible.cfg'),
    join(homedir(), '.ansible.cfg'),
    '/etc/ansible/ansible.cfg',
  ];
  return candidates.find((c): c is string => c !== undefined && c !== '' && existsSync(c));
}

let cached: { key: string; cfg: AnsibleCfg | undefined } | undefined;

/** The [defaults] section of the ansible.cfg in effect (undefined when there is none). */
export function loadAnsibleCfg(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): AnsibleCfg | undefined {
  const file = findAnsibleCfg(env, cwd);
  const key = `${file ?? ''}`;
  if (cached?.key === key) return cached.cfg;
  const cfg = file === undefined ? undefined : parseAnsibleCfg(readFileSync(file, 'utf8'), resolve(file));
  cached = { key, cfg };
  return cfg;
}

export function parseAnsibleCfg(text: string, file: string): AnsibleCfg {
  const values = new Map<string, { value: string; line: number }>();
  let section = '';
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1]!.trim();
      return;
    }
    if (section !== 'defaults') return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*[=:]\s*(.*)$/.exec(line);
    if (m) values.set(m[1]!, { value: m[2]!.replace(/\s+[#;].*$/, '').trim(), line: i + 1 });
  });
  const dir = dirname(file);
  const path = (p: string) => resolve(dir, p.replace(/^~(?=\/)/, homedir()));
  const cfg: AnsibleCfg = { file, rolesPath: [] };
  const get = (k: string) => values.get(k);
  if (get('inventory'))
    cfg.inventory = get('inventory')!.value.includes(',') ? get('inventory')!.value : path(get('inventory')!.value);
  if (get('roles_path')) cfg.rolesPath = get('roles_path')!.value.split(':').filter(Boolean).map(path);
  const forks = get('forks');
  if (forks) {
    const n = Number(forks.value);
    if (!Number.isInteger(n) || n < 1)
      throw inputError(`forks must be a whole number ≥ 1, got "${forks.value}"`, { file, line: forks.line, col: 1 });
    cfg.forks = n;
  }
  if (get('remote_user')) cfg.remoteUser = get('remote_user')!.value;
  if (get('private_key_file')) cfg.privateKeyFile = path(get('private_key_file')!.value);
  const hkc = get('host_key_checking');
  if (hkc) cfg.hostKeyChecking = !/^(false|no|off|0)$/i.test(hkc.value);
  return cfg;
}
