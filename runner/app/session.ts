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
import { attachConsoleReporter, attachJsonReporter, RecapCollector, RunJournal, SecretMasker, hostsToRerun, latestRun, runIdFor } from './report/index.js';
import { createTemplater } from '../core/template/index.js';
import { isPlainObject, type Vars } from '../core/util/vars.js';
import { loadYamlFile, parseYaml } from '../core/util/yaml-source.js';
import { checkExpressions } from '../core/template/yaml-expressions.js';
import { checkSyntax } from '../core/template/expr.js';
import { configureVault } from '../core/vault/index.js';
import { acquireRunLock, commandLineForLock } from './lock.js';
import { dirname, join } from 'node:path';

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
}

/** The lab's generated inventory is the default, so the built-in lab works with no -i at all. */
export function defaultInventoryPath(): string {
  return process.env.CAIRN_INVENTORY ?? join(packageRoot(), 'inventories', 'lab', 'hosts.yaml');
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
      if (!isPlainObject(loaded.value)) throw new CairnError('extra vars file must hold a mapping of variable names to values', { location: { file } });
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
        const valueText = pair.slice(eq + 1).replace(/^"(.*)"$/s, '$1').replace(/^'(.*)'$/s, '$1');
        const parsed = parseYaml(valueText, '-e').value;
        out[key] = parsed === null && valueText !== '' && valueText !== 'null' && valueText !== '~' ? valueText : parsed;
        checkSyntax(out[key], { file: `-e ${key}` });
      }
    }
  }
  return out;
}

export function openInventory(path: string | undefined): Inventory {
  const file = resolve(path ?? defaultInventoryPath());
  if (!existsSync(file)) {
    if (!path) throw optionsError(`no inventory given and the lab's inventory (${file}) does not exist: pass -i INVENTORY or run \`cairn lab up\``);
    throw optionsError(`inventory ${file} does not exist`);
  }
  return loadInventory(file);
}

function list(text: string | undefined): string[] {
  return (text ?? '').split(',').map((s) => s.trim()).filter(Boolean);
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
  const given = opts.vaultIdentity ?? opts.vaultPasswordFile ?? process.env.CAIRN_VAULT_IDENTITY ?? process.env.CAIRN_VAULT_PASSWORD_FILE ?? process.env.CAIRN_VAULT_PASSWORD;
  const dir = statSync(inventoryPath).isDirectory() ? inventoryPath : dirname(inventoryPath);
  const labKey = join(dir, 'lab-vault.key');
  const vaultIdentity = opts.vaultIdentity ?? (!given && existsSync(labKey) ? labKey : undefined);
  await configureVault(inventoryPath, { vaultIdentity, vaultPasswordFile: opts.vaultPasswordFile });
}

/**
 * Where interrupts come from and how to leave at once. The CLI passes the process's SIGINT/SIGTERM and
 * process.exit (runner/commands/signals.ts); without one, a session is not interruptible from outside.
 */
export interface InterruptSource {
  /** Call `handler` on each interrupt until the returned function is called. */
  listen(handler: () => void): () => void;
  /** End the process now with `code` (a second interrupt), after the session has closed its journal and lock. */
  exitNow(code: number): void;
}

export async function openSession(
  opts: CommonRunOptions,
  command: string,
  extra: { playbook?: string; lock?: boolean; interrupts?: InterruptSource } = {},
): Promise<Session> {
  const inventoryPath = resolve(opts.inventory ?? defaultInventoryPath());
  // Vault files are decrypted in memory before the inventory reads them; plaintext never touches the disk.
  await prepareVault(inventoryPath, opts);
  const inventory = openInventory(opts.inventory);
  // A run that may change hosts holds the inventory's lock: two cairn processes never change one platform at once.
  const lock = extra.lock === false || opts.check ? undefined : acquireRunLock(inventory.path, commandLineForLock(), { stateDir: stateDir() });
  const masker = new SecretMasker();
  for (const secret of inventory.secretValues()) masker.add(secret);
  const bus = new EventBus();
  const tty = Boolean(process.stdout.isTTY) && !opts.json;
  const color = opts.color !== false && !process.env.NO_COLOR && tty;
  if (opts.json) attachJsonReporter(bus, { stream: process.stdout, masker });
  else attachConsoleReporter(bus, { verbosity: opts.verbose ?? 0, diff: Boolean(opts.diff), color, tty, masker, stream: process.stdout });
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
  const forks = opts.forks === undefined ? 20 : Number(opts.forks);
  if (!Number.isInteger(forks) || forks < 1) throw optionsError(`-f/--forks must be a whole number ≥ 1, got "${opts.forks}"`);

  const controller = new AbortController();
  let interrupts = 0;
  const onInterrupt = () => {
    interrupts++;
    if (interrupts === 1) {
      bus.emit({ type: 'warning', time: now(), msg: 'interrupted: letting running tasks finish, starting no new ones (Ctrl-C again to abort at once)' });
      controller.abort();
    } else {
      // Remote writes are atomic (temp file + rename), so leaving now cannot leave a partial file.
      bus.emit({ type: 'run_end', time: now(), exitCode: ExitCode.interrupted, durationMs: Date.now() - startedAt, interrupted: true });
      journal?.close();
      lock?.release();
      extra.interrupts?.exitNow(ExitCode.interrupted);
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
    acceptNewHostKeys: Boolean(opts.acceptNewHostKeys),
    knownHostsPath: opts.knownHosts ? resolve(opts.knownHosts) : undefined,
    signal: controller.signal,
    addSecret: (v: string) => masker.add(v),
  };
  const engine = new Engine(engineOptions);
  const startedAt = Date.now();
  bus.emit({ type: 'run_start', time: now(), runId, command, check: Boolean(opts.check), diff: Boolean(opts.diff), inventory: inventory.path, playbook: extra.playbook });

  return {
    bus,
    engine,
    inventory,
    masker,
    signal: controller.signal,
    startedAt,
    runId,
    journalPath: journal?.path,
    newEngine: (overrides) => new Engine({ ...engineOptions, ...overrides }),
    finish(outcome) {
      bus.emit({ type: 'recap', time: now(), stats: recap.stats() });
      let code: number = recap.exitCode({ check: Boolean(opts.check), detailedExitcode: Boolean(opts.detailedExitcode), interrupted: outcome.interrupted });
      // A task that failed on bad input (an undefined variable, a broken template) is the user's input
      // error, as a malformed playbook is: exit 5 rather than Ansible's 2.
      if (!outcome.interrupted && outcome.inputErrors > 0 && code !== ExitCode.hostUnreachable) code = ExitCode.badInput;
      bus.emit({ type: 'run_end', time: now(), exitCode: code, durationMs: Date.now() - startedAt, interrupted: outcome.interrupted });
      journal?.close();
      lock?.release();
      stopListening?.();
      return code;
    },
  };
}
