/**
 * What a command reads before it runs anything: its common options, the inventory (with its vault files
 * decrypted), -e extra variables and the connection settings given on the command line. Kept apart from
 * session.ts so that commands which only read the inventory (`cairn inventory`, `cairn vars`) load no engine,
 * transport (ssh2), reporters or templates: a command loads only what it uses.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CairnError, optionsError } from '../core/util/errors.js';
import { loadInventory } from '../core/inventory/index.js';
import type { Inventory } from '../core/inventory/types.js';
import { packageRoot } from '../core/util/paths.js';
import { isPlainObject, type Vars } from '../core/util/vars.js';
import { loadYamlFile, parseYaml } from '../core/util/yaml-source.js';
import { findInventoryVaultFiles } from '../core/vault/find.js';
import { readPasswordFile } from '../core/vault/key-file.js';
import { setAnsibleVaultSecrets, type AnsibleVaultSecret } from '../core/util/ansible-vault.js';
import { checkExpressions } from '../core/template/yaml-expressions.js';
import { checkSyntax } from '../core/template/expr.js';
import { loadConfig, wholeNumber } from './config.js';

export interface CommonRunOptions {
  inventory?: string;
  limit?: string;
  extraVars?: string[];
  forks?: string;
  check?: boolean;
  diff?: boolean;
  json?: boolean;
  verbose?: number;
  tags?: string;
  skipTags?: string;
  roles?: string;
  acceptNewHostKeys?: boolean;
  knownHosts?: string;
  rerun?: string;
  color?: boolean;
  journal?: boolean;
  detailedExitcode?: boolean;
  vaultIdentity?: string;
  vaultPasswordFile?: string;
  /** Ansible's --vault-id [LABEL@]FILE, repeatable. */
  vaultId?: string[];
  user?: string;
  privateKey?: string;
  connection?: string;
  become?: boolean;
  becomeUser?: string;
  askBecomePass?: boolean;
  /** --compact / --full: the console's mode (default: compact from COMPACT_FROM_HOSTS hosts up). */
  compact?: boolean;
  full?: boolean;
  /** ansible-playbook's --start-at-task NAME (a glob), and --step (asks before each task, on a TTY). */
  startAtTask?: string;
  step?: boolean;
}

/**
 * The passwords for Ansible Vault files and inline `!vault` values: --vault-id [LABEL@]FILE (repeatable),
 * --vault-password-file FILE, else ANSIBLE_VAULT_PASSWORD_FILE, as ansible-playbook takes them. Call it
 * before any playbook or inventory is read. A password file is read, never run (Ansible runs an executable
 * one as a script; cairn says so instead of running it).
 */
export function configureAnsibleVault(opts: CommonRunOptions, env: NodeJS.ProcessEnv = process.env): void {
  const secrets: AnsibleVaultSecret[] = [];
  const sources: Array<{ label: string; file: string; via: string }> = [];
  for (const id of opts.vaultId ?? []) {
    const at = id.indexOf('@');
    sources.push(
      at > 0
        ? { label: id.slice(0, at), file: id.slice(at + 1), via: '--vault-id' }
        : { label: 'default', file: id, via: '--vault-id' },
    );
  }
  if (opts.vaultPasswordFile)
    sources.push({ label: 'default', file: opts.vaultPasswordFile, via: '--vault-password-file' });
  else if (!sources.length && env.ANSIBLE_VAULT_PASSWORD_FILE) {
    sources.push({ label: 'default', file: env.ANSIBLE_VAULT_PASSWORD_FILE, via: 'ANSIBLE_VAULT_PASSWORD_FILE' });
  }
  for (const source of sources) {
    if (source.file === 'prompt') {
      throw optionsError(
        `${source.via} ${source.label}@prompt: cairn does not prompt for vault passwords; put the password in a file (mode 0600) and pass its path`,
      );
    }
    const file = resolve(source.file);
    let mode: number;
    try {
      mode = statSync(file).mode;
    } catch {
      throw optionsError(`${source.via}: vault password file ${file} does not exist`);
    }
    if ((mode & 0o111) !== 0) {
      throw optionsError(
        `${source.via}: ${file} is executable; Ansible would run it as a password script, cairn reads password files only (chmod -x it, or write the password to a plain file)`,
      );
    }
    const password = readPasswordFile(file, `vault password file ${file} (${source.via})`).passphrase;
    secrets.push({ label: source.label, password });
  }
  setAnsibleVaultSecrets(secrets);
}

/**
 * The inventory when no -i is given: CAIRN_INVENTORY, else the settings file's `inventory` (app/config.ts),
 * else the lab's generated one, so the built-in lab works with no -i at all.
 */
export function defaultInventoryPath(): string {
  return (
    process.env.CAIRN_INVENTORY ?? loadConfig()?.inventory ?? join(packageRoot(), 'inventories', 'lab', 'hosts.yaml')
  );
}

/**
 * Connection settings from the command line (-u, --private-key, -c, -b, --become-user) and the settings file
 * (remote_user, private_key_file), as the ansible_* variables they stand for; the engine puts them below
 * every play keyword and inventory variable, as Ansible does.
 */
export function connectionDefaults(opts: CommonRunOptions): Vars {
  if (opts.askBecomePass) {
    throw optionsError(
      '-K/--ask-become-pass: cairn becomes with sudo -n and needs passwordless sudo (NOPASSWD) for the login user; it never sends a sudo password',
    );
  }
  const cfg = loadConfig();
  const vars: Vars = {};
  const user = opts.user ?? cfg?.remoteUser;
  if (user !== undefined) vars.ansible_user = user;
  const key = opts.privateKey !== undefined ? resolve(opts.privateKey) : cfg?.privateKeyFile;
  if (key !== undefined) vars.ansible_ssh_private_key_file = key;
  if (opts.connection !== undefined) {
    if (!['ssh', 'local', 'smart', 'paramiko'].includes(opts.connection))
      throw optionsError(`-c/--connection: cairn connects with ssh or local, got "${opts.connection}"`);
    vars.ansible_connection = opts.connection;
  }
  if (opts.become) vars.ansible_become = true;
  if (opts.becomeUser !== undefined) vars.ansible_become_user = opts.becomeUser;
  // Ansible's ssh plugin settings: the environment over the settings file, both below any variable.
  const env = process.env;
  const timeoutText = env.ANSIBLE_SSH_TIMEOUT || env.ANSIBLE_TIMEOUT;
  const envTimeoutName = env.ANSIBLE_SSH_TIMEOUT ? 'ANSIBLE_SSH_TIMEOUT' : 'ANSIBLE_TIMEOUT';
  const timeout = timeoutText ? wholeNumber(envTimeoutName, timeoutText, 1) : cfg?.timeout;
  if (timeout !== undefined) vars.ansible_timeout = timeout;
  const retriesText = env.ANSIBLE_SSH_RETRIES;
  const retries = retriesText ? wholeNumber('ANSIBLE_SSH_RETRIES', retriesText, 0) : cfg?.sshRetries;
  if (retries !== undefined) vars.ansible_ssh_retries = retries;
  return vars;
}

export function stateDir(): string {
  return resolve(process.env.CAIRN_STATE_DIR ?? '.cairn');
}

export function parseExtraVars(values: string[] | undefined): Vars {
  const out: Vars = {};
  for (const raw of values ?? []) {
    const text = raw.trim();
    if (text.startsWith('@')) {
      const file = resolve(text.slice(1));
      const loaded = loadYamlFile(file, 'extra vars file');
      if (!isPlainObject(loaded.value))
        throw new CairnError('extra vars file must hold a mapping of variable names to values', { location: { file } });
      checkExpressions(loaded);
      Object.assign(out, loaded.value);
    } else if (text.startsWith('{')) {
      const loaded = parseYaml(text, '-e');
      if (!isPlainObject(loaded.value)) throw optionsError(`-e ${text}: expected a mapping`);
      checkExpressions(loaded);
      Object.assign(out, loaded.value);
    } else {
      // key=value pairs, values parsed as YAML scalars (so 3 is a number and true a boolean).
      for (const pair of text.match(/(?:[^\s"']+|"[^"]*"|'[^']*')+/g) ?? []) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw optionsError(`-e ${pair}: expected key=value, @file.yaml or a YAML mapping`);
        const key = pair.slice(0, eq);
        const valueText = pair
          .slice(eq + 1)
          .replace(/^"(.*)"$/s, '$1')
          .replace(/^'(.*)'$/s, '$1');
        const parsed = parseYaml(valueText, '-e').value;
        out[key] =
          parsed === null && valueText !== '' && valueText !== 'null' && valueText !== '~' ? valueText : parsed;
        checkSyntax(out[key], { file: `-e ${key}` });
      }
    }
  }
  return out;
}

export function openInventory(path: string | undefined): Inventory {
  // Ansible's `-i host1,host2,` (a comma-separated host list, not a file).
  const given = path ?? defaultInventoryPath();
  if (given.includes(',') && !existsSync(given)) return loadInventory(given);
  const file = resolve(path ?? defaultInventoryPath());
  if (!existsSync(file)) {
    if (!path && loadConfig()?.inventory)
      throw optionsError(`the inventory ${file} named in ${loadConfig()!.path} does not exist`);
    if (!path)
      throw optionsError(
        `no inventory given and the lab's inventory (${file}) does not exist: pass -i INVENTORY or run \`cairn lab up\``,
      );
    throw optionsError(`inventory ${file} does not exist`);
  }
  return loadInventory(file);
}

/**
 * Decrypt the inventory's vault files in memory before the inventory is read. The built-in lab's vault is
 * encrypted to a lab-only identity committed beside its inventory (lab-vault.key), used when no other key
 * is given, so the lab works with no setup; a production inventory never carries its key.
 */
export async function prepareVault(inventoryPath: string, opts: CommonRunOptions): Promise<void> {
  if (!existsSync(inventoryPath)) return;
  const given =
    opts.vaultIdentity ??
    opts.vaultPasswordFile ??
    process.env.CAIRN_VAULT_IDENTITY ??
    process.env.CAIRN_VAULT_PASSWORD_FILE ??
    process.env.CAIRN_VAULT_PASSWORD;
  const dir = statSync(inventoryPath).isDirectory() ? inventoryPath : dirname(inventoryPath);
  const labKey = join(dir, 'lab-vault.key');
  // The site's cairn.cfg vault_identity_file stands in for --vault-identity when nothing else is given.
  const configured = given ? undefined : loadConfig()?.vaultIdentityFile;
  const vaultIdentity = opts.vaultIdentity ?? configured ?? (!given && existsSync(labKey) ? labKey : undefined);
  // No encrypted file and no key asked for: nothing to decrypt, so the age code is not even loaded (issue 17).
  // A key that was given is still read, so a wrong key path is reported as before.
  if (!given && configured === undefined && findInventoryVaultFiles(inventoryPath).length === 0) return;
  const { configureVault } = await import('../core/vault/index.js');
  await configureVault(inventoryPath, { vaultIdentity, vaultPasswordFile: opts.vaultPasswordFile });
}
