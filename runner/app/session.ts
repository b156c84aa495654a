/**
 * Wiring shared by every command that runs tasks (play, verify, run, drills, rollout steps): loads the
 * inventory, sets up the event bus, masker, reporters and run journal, reacts to interrupts, and turns the
 * outcome into Ansible's exit codes. Where interrupts come from (the process's signals) and how to leave at
 * once (process.exit) is the CLI's business: it passes them in as an InterruptSource.
 */
import { join, resolve } from 'node:path';
import { Engine, type EngineOptions, type RunOutcome } from '../core/engine/engine.js';
import { EventBus, now } from '../core/engine/events.js';
import { ExitCode, optionsError } from '../core/util/errors.js';
import { readLimitFile } from '../core/inventory/index.js';
import type { Inventory } from '../core/inventory/types.js';
import type { Task } from '../core/playbook/types.js';
import { sharedTemplatesDir } from '../core/util/paths.js';
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
import { revealedAnsibleVaultValues } from '../core/util/ansible-vault.js';
import { acquireRunLock, commandLineForLock } from './lock.js';
import { applyBatchingEnabled, loadConfig } from './config.js';
import { attachCompactReporter, chooseConsoleMode } from './report/compact.js';
import {
  configureAnsibleVault,
  connectionDefaults,
  defaultInventoryPath,
  openInventory,
  parseExtraVars,
  prepareVault,
  stateDir,
  type CommonRunOptions,
} from './run-inputs.js';

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
  extra: {
    playbook?: string;
    lock?: boolean;
    interrupts?: InterruptSource;
    console?: boolean;
    /** --step's question, asked by the command (it owns the terminal). */
    confirmTask?: (task: Task) => Promise<'yes' | 'no' | 'continue'>;
  } = {},
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
  const forks = opts.forks === undefined ? (loadConfig()?.forks ?? 20) : Number(opts.forks);
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
    acceptNewHostKeys: Boolean(opts.acceptNewHostKeys) || loadConfig()?.hostKeyChecking === false,
    connectionDefaults: connectionDefaults(opts),
    knownHostsPath: opts.knownHosts ? resolve(opts.knownHosts) : undefined,
    signal: controller.signal,
    addSecret: (v: string) => masker.add(v),
    startAtTask: opts.startAtTask,
    confirmTask: opts.step ? extra.confirmTask : undefined,
    applyBatching: applyBatchingEnabled(),
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
