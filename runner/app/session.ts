/**
 * Wiring shared by every command that runs tasks (play, verify, run, drills, rollout steps): loads the
 * inventory, sets up the event bus, masker, reporters and run journal, reacts to interrupts, and turns the
 * outcome into Ansible's exit codes. Where interrupts come from (the process's signals) and how to leave at
 * once (process.exit) is the CLI's business: it passes them in as an InterruptSource.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Engine, type EngineOptions, type RunOutcome } from '../core/engine/engine.js';
import { EventBus, now } from '../core/engine/events.js';
import { CairnError, ExitCode, optionsError } from '../core/util/errors.js';
import { loadInventory, readLimitFile } from '../core/inventory/index.js';
import type { Inventory } from '../core/inventory/types.js';
import { packageRoot, sharedTemplatesDir } from '../core/util/paths.js';
import {
  attachConsoleReporter,
  attachJsonReporter,
  RecapCollector,
  RunJournal,
  SecretMasker,
  hostsToRerun,
  latestRun,
  runIdFor,
} from './report/index.js';
import { createTemplater } from '../core/template/index.js';
import { isPlainObject, type Vars } from '../core/util/vars.js';
import { loadYamlFile, parseYaml } from '../core/util/yaml-source.js';
import { configureVault, readPasswordFile } from '../core/vault/index.js';
import {
  revealedAnsibleVaultValues,
  setAnsibleVaultSecrets,
  type AnsibleVaultSecret,
} from '../core/util/ansible-vault.js';
import { checkExpressions } from '../core/template/yaml-expressions.js';
import { checkSyntax } from '../core/template/expr.js';
import { acquireRunLock, commandLineForLock } from './lock.js';
import { dirname, join } from 'node:path';
import { loadAnsibleCfg } from './ansible-cfg.js';
import { siteConfig } from './site/config.js';
import { attachCompactReporter, chooseConsoleMode } from './report/compact.js';

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
 * A run's exit code: the recap's (Ansible's codes), except that a task that failed on bad input (an undefined
 * variable, a broken template) is the user's input error, as a malformed playbook is: exit 5 rather than 2.
 */
export function runExitCode(
  recap: RecapCollector,
  outcome: RunOutcome,
  opts: { check: boolean; detailedExitcode: boolean },
): number {
  const code: number = recap.exitCode({ ...opts, interrupted: outcome.interrupted });
  if (!outcome.interrupted && outcome.inputErrors > 0 && code !== ExitCode.hostUnreachable) return ExitCode.badInput;
  return code;
}

/**
 * The inventory when no -i is given: CAIRN_INVENTORY, else the site's cairn.cfg `inventory`, else ansible.cfg's,
 * else the lab's generated one, so the built-in lab works with no -i at all.
 */
export function defaultInventoryPath(): string {
  return (
    process.env.CAIRN_INVENTORY ??
    siteConfig()?.inventory ??
    loadAnsibleCfg()?.inventory ??
    join(packageRoot(), 'inventories', 'lab', 'hosts.yaml')
  );
}

/**
 * Connection settings from the command line (-u, --private-key, -c, -b, --become-user) and ansible.cfg
 * (remote_user, private_key_file), as the ansible_* variables they stand for; the engine puts them below
 * every play keyword and inventory variable, as Ansible does.
 */
export function connectionDefaults(opts: CommonRunOptions): Vars {
  if (opts.askBecomePass) {
    throw optionsError(
      '-K/--ask-become-pass: cairn becomes with sudo -n and needs passwordless sudo (NOPASSWD) for the login user; it never sends a sudo password',
    );
  }
  const cfg = loadAnsibleCfg();
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
    if (!path && siteConfig()?.inventory)
      throw optionsError(`the inventory ${file} named in ${siteConfig()!.path} does not exist`);
    if (!path)
      throw optionsError(
        `no inventory given and the lab's inventory (${file}) does not exist: pass -i INVENTORY or run \`cairn lab up\``,
      );
    throw optionsError(`inventory ${file} does not exist`);
  }
  return loadInventory(file);
}

function list(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export interface Session {
  bus: EventBus;
  engine: Engine;
  inventory: Inventory;
  masker: SecretMasker;
  signal: AbortSignal;
  /**
   * Another engine on the same inventory, bus and journal (drills use it to run plays): same options
   * unless overridden.
   */
  newEngine(overrides?: Partial<EngineOptions>): Engine;
  /** Finish: recap, journal, exit code. */
  finish(outcome: RunOutcome): number;
  startedAt: number;
  /** This run's id and journal file (absent with --no-journal): the rollout reads its evidence from there. */
  runId: string;
  journalPath?: string;
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
  const configured = given ? undefined : siteConfig()?.vaultIdentityFile;
  const vaultIdentity = opts.vaultIdentity ?? configured ?? (!given && existsSync(labKey) ? labKey : undefined);
  await configureVault(inventoryPath, { vaultIdentity, vaultPasswordFile: opts.vaultPasswordFile });
}

/** Hosts the run may touch: the inventory's, narrowed by -l when it is a pattern (an @file counts them all). */
function runHostCount(inventory: Inventory, limit: string | undefined): number {
  if (!limit || limit.startsWith('@')) return inventory.hosts.size;
  try {
    return inventory.select(limit).length;
  } catch {
    return inventory.hosts.size; // a bad pattern is reported by the engine, at its place
  }
}

/** The console: Ansible-style per task, or compact (the default from COMPACT_FROM_HOSTS hosts up). */
function attachConsole(
  bus: EventBus,
  inventory: Inventory,
  opts: CommonRunOptions,
  how: { color: boolean; tty: boolean; masker: SecretMasker },
): void {
  if (opts.compact && opts.full) throw optionsError('--compact and --full exclude each other');
  const hostCount = runHostCount(inventory, opts.limit);
  // -v and above ask for per-task detail: the full console, unless --compact says otherwise.
  const mode = (opts.verbose ?? 0) > 0 && !opts.compact ? 'full' : chooseConsoleMode(hostCount, opts);
  if (mode === 'compact') {
    attachCompactReporter(bus, {
      ...how,
      diff: Boolean(opts.diff),
      stream: process.stdout,
      hostCount,
      reason: opts.compact ? 'flag' : 'default',
    });
  } else {
    attachConsoleReporter(bus, {
      ...how,
      verbosity: opts.verbose ?? 0,
      diff: Boolean(opts.diff),
      stream: process.stdout,
    });
  }
}

/** The signals that stop a run. */
export type InterruptSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/**
 * Where interrupts come from and how to leave at once. The CLI passes the process's SIGINT, SIGTERM and
 * SIGHUP and process.exit (runner/commands/signals.ts); without one, a session is not interruptible from
 * outside.
 */
export interface InterruptSource {
  /** Call `handler` on each interrupt until the returned function is called. */
  listen(handler: (signal: InterruptSignal) => void): () => void;
  /** End the process now with `code` (a stop), after the session has closed its journal and lock. */
  exitNow(code: number): void;
}

/** How long a stop waits for hosts to end their commands and close before the process leaves anyway. */
const STOP_DEADLINE_MS = 4_000;

export async function openSession(
  opts: CommonRunOptions,
  command: string,
  extra: { playbook?: string; lock?: boolean; interrupts?: InterruptSource; console?: boolean } = {},
): Promise<Session> {
  const inventoryPath = resolve(opts.inventory ?? defaultInventoryPath());
  configureAnsibleVault(opts);
  // Vault files are decrypted in memory before the inventory reads them; plaintext never touches the disk.
  await prepareVault(inventoryPath, opts);
  const inventory = openInventory(opts.inventory);
  // A run that may change hosts holds the inventory's lock: two cairn processes never change one platform at once.
  const lock = extra.lock === false || opts.check ? undefined : acquireRunLock(inventory.path, commandLineForLock());
  const masker = new SecretMasker();
  for (const secret of inventory.secretValues()) masker.add(secret);
  // Ansible Vault values opened so far (the playbook is read before the session; the inventory just now).
  for (const secret of revealedAnsibleVaultValues()) masker.add(secret);
  const bus = new EventBus();
  const tty = Boolean(process.stdout.isTTY) && !opts.json;
  const color = opts.color !== false && !process.env.NO_COLOR && tty;
  if (opts.json) attachJsonReporter(bus, { stream: process.stdout, masker });
  // (A command with its own summary, such as `cairn drift`, asks for no per-task console.)
  else if (extra.console !== false) attachConsole(bus, inventory, opts, { color, tty, masker });
  // Read the last journal before this run opens its own.
  let onlyHosts: string[] | undefined;
  if (opts.rerun !== undefined) {
    if (opts.rerun !== 'failed') throw optionsError(`--rerun takes "failed", got "${opts.rerun}"`);
    const last = latestRun(join(stateDir(), 'runs'));
    if (!last) throw optionsError('--rerun failed: there is no earlier run journal in ' + join(stateDir(), 'runs'));
    onlyHosts = hostsToRerun(last);
  }
  const runId = runIdFor(new Date());
  let journal: RunJournal | undefined;
  if (opts.journal !== false) {
    journal = new RunJournal(masker);
    journal.open(join(stateDir(), 'runs'), runId);
    journal.attach(bus);
  }
  // One place counts results and derives the exit code, the same way the console's recap does.
  const recap = new RecapCollector(bus);

  let limit = opts.limit;
  if (limit?.startsWith('@')) limit = readLimitFile(resolve(limit.slice(1)));
  const forks = opts.forks === undefined ? (loadAnsibleCfg()?.forks ?? 20) : Number(opts.forks);
  if (!Number.isInteger(forks) || forks < 1)
    throw optionsError(`-f/--forks must be a whole number ≥ 1, got "${opts.forks}"`);

  const controller = new AbortController();
  // Every engine of this session (rollout steps make more than one): a stop closes their connections.
  const engines: Engine[] = [];
  let interrupts = 0;
  let stopping = false;
  /** run_end is written once: by finish() or by a stop. */
  let ended = false;
  /**
   * Stop now: the commands still running on hosts get TERM (their traps remove the atomic write's temp
   * file) and connections close, bounded by a few seconds; then the journal gets its run_end, the lock is
   * released and the process exits 99. A signal during these seconds leaves at once, journal and lock done.
   */
  const stopNow = (signal: InterruptSignal): void => {
    const leave = (): void => {
      // The run may have ended on its own meanwhile (its commands were stopped): its journal is complete.
      if (ended) {
        extra.interrupts?.exitNow(ExitCode.interrupted);
        return;
      }
      ended = true;
      bus.emit({ type: 'recap', time: now(), stats: recap.stats() });
      bus.emit({
        type: 'run_end',
        time: now(),
        exitCode: ExitCode.interrupted,
        durationMs: Date.now() - startedAt,
        interrupted: true,
      });
      journal?.close();
      lock?.release();
      extra.interrupts?.exitNow(ExitCode.interrupted);
    };
    if (stopping) {
      leave();
      return;
    }
    stopping = true;
    bus.emit({ type: 'warning', time: now(), msg: `${signal}: stopping now (running commands on hosts get TERM)` });
    controller.abort();
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolveGiveUp) => (timer = setTimeout(resolveGiveUp, STOP_DEADLINE_MS)));
    void Promise.race([Promise.allSettled(engines.map((engine) => engine.close())), giveUp]).then(() => {
      clearTimeout(timer);
      leave();
    });
  };
  // Ctrl-C once lets running tasks finish (an operator at a terminal can press it again); SIGTERM and SIGHUP
  // come from a service manager, a timeout or a closed terminal, which send one signal and expect an end.
  const onInterrupt = (signal: InterruptSignal = 'SIGINT') => {
    interrupts++;
    if (signal === 'SIGINT' && interrupts === 1) {
      bus.emit({
        type: 'warning',
        time: now(),
        msg: 'interrupted: letting running tasks finish, starting no new ones (Ctrl-C again to abort at once)',
      });
      controller.abort();
    } else {
      stopNow(signal);
    }
  };
  const stopListening = extra.interrupts?.listen(onInterrupt);

  const templater = createTemplater({ partialsDirs: [sharedTemplatesDir()] });
  const engineOptions = {
    inventory,
    bus,
    templater,
    check: Boolean(opts.check),
    diff: Boolean(opts.diff),
    forks,
    extraVars: parseExtraVars(opts.extraVars),
    limit,
    onlyHosts,
    tags: { tags: list(opts.tags), skipTags: list(opts.skipTags) },
    roles: opts.roles ? list(opts.roles) : undefined,
    verify: true,
    // ansible.cfg host_key_checking = False: cairn trusts unknown keys on first use but still refuses a changed one.
    acceptNewHostKeys: Boolean(opts.acceptNewHostKeys) || loadAnsibleCfg()?.hostKeyChecking === false,
    connectionDefaults: connectionDefaults(opts),
    knownHostsPath: opts.knownHosts ? resolve(opts.knownHosts) : undefined,
    signal: controller.signal,
    addSecret: (v: string) => masker.add(v),
  };
  const engine = new Engine(engineOptions);
  engines.push(engine);
  const startedAt = Date.now();
  bus.emit({
    type: 'run_start',
    time: now(),
    runId,
    command,
    check: Boolean(opts.check),
    diff: Boolean(opts.diff),
    inventory: inventory.path,
    playbook: extra.playbook,
  });

  return {
    bus,
    engine,
    inventory,
    masker,
    signal: controller.signal,
    startedAt,
    runId,
    journalPath: journal?.path,
    newEngine: (overrides) => {
      const another = new Engine({ ...engineOptions, ...overrides });
      engines.push(another);
      return another;
    },
    finish(outcome) {
      if (ended) return ExitCode.interrupted;
      ended = true;
      bus.emit({ type: 'recap', time: now(), stats: recap.stats() });
      const code = runExitCode(recap, outcome, {
        check: Boolean(opts.check),
        detailedExitcode: Boolean(opts.detailedExitcode),
      });
      bus.emit({
        type: 'run_end',
        time: now(),
        exitCode: code,
        durationMs: Date.now() - startedAt,
        interrupted: outcome.interrupted,
      });
      journal?.close();
      lock?.release();
      stopListening?.();
      return code;
    },
  };
}
