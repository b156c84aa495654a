/**
 * Running one checklist step, in this process, through the same machinery as the CLI commands: a session
 * (inventory, vault, run lock, reporters, run journal, Ctrl-C) and the engine, or the drill runner. The
 * step's evidence is then read back from the run journal the session wrote.
 *
 * State discipline: the step is recorded `running` (with this pid) BEFORE any work, and set to its result
 * after; anything that escapes is recorded as `failed`. A process killed in between leaves `running` with a
 * dead pid, which reads back as `interrupted` (state.ts) — never `done`.
 */
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { loadPlaybookFile, unknownRolesProblem } from '../../app/playbook.js';
import { openSession, type InterruptSource, type Session } from '../../app/session.js';
import { parseExtraVars, type CommonRunOptions } from '../../app/run-inputs.js';
import { runDrillInSession } from '../drills/run.js';
import { getDrill, drillNames } from '../drills/registry.js';
import type { RunEvent } from '../../core/engine/events.js';
import { connectionSpecFor } from '../../core/engine/connection-spec.js';
import { CairnError, ExitCode } from '../../core/util/errors.js';
import { readLimitFile } from '../../core/inventory/index.js';
import type { Inventory } from '../../core/inventory/types.js';
import type { Playbook } from '../../core/playbook/types.js';
import { readJournal } from '../../app/report/journal.js';
import { knownKeysFor } from '../../core/transport/known-hosts.js';
import { existsSync } from 'node:fs';
import { describeKind, playbookProblem } from './checklist.js';
import { drillEvidence, playEvidence, verifyEvidence } from './evidence.js';
import { assertStepMayStart } from './gate.js';
import { runMigration, type MigrateHost } from './migrate.js';
import { runnerIdentity, stepState, updateState } from './state.js';
import { describeTargetCheck } from './targets.js';
import type {
  Checklist,
  ChecklistStep,
  DrillStepSpec,
  MigrateStepSpec,
  PlayStepSpec,
  StepEvidence,
  StepStateName,
  VerifyStepSpec,
} from './types.js';

export interface StepRunContext {
  checklist: Checklist;
  statePath: string;
  /** The CLI's run options (-i, -l, -e, --json, ...). */
  runOptions: CommonRunOptions;
  /** Who runs it (recorded as "by"). */
  operator: string;
  /** Progress lines for the operator (headers, results); not used for the session's own output. */
  say(line: string): void;
  /** Ctrl-C for the step's sessions (the CLI passes the process's signals). */
  interrupts?: InterruptSource;
}

export interface StepOutcome {
  state: Exclude<StepStateName, 'pending' | 'running'>;
  message?: string;
  evidence?: StepEvidence;
  journal?: string;
  runId?: string;
}

export function defaultOperator(): string {
  if (process.env.CAIRN_OPERATOR) return process.env.CAIRN_OPERATOR;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Run `step`: refuse (CairnError) if it may not start now, else run it and record the result. */
export async function runStep(ctx: StepRunContext, step: ChecklistStep): Promise<StepOutcome> {
  const previousRun = await updateState(ctx.statePath, (state) => {
    assertStepMayStart(ctx.checklist, step, state, 'run');
    const previous = stepState(state, step.id);
    const startedAt = new Date().toISOString();
    // A migration resumes after its finished batches only when its last run did not complete.
    const batchesDone = previous.state === 'done' ? [] : (previous.batchesDone ?? []);
    state.checklist = ctx.checklist.file;
    const stale = previous.migrateKeyDir;
    state.steps[step.id] = {
      state: 'running',
      startedAt,
      by: ctx.operator,
      ...runnerIdentity(),
      runs: previous.runs + 1,
      batchesDone: batchesDone.length ? batchesDone : undefined,
      migrateKeyDir: stale,
    };
    state.history.push({ at: startedAt, step: step.id, event: 'started', by: ctx.operator });
    return {
      batchesDone,
      staleKeyDir:
        stale && step.spec.kind === 'migrate' && stale.host === step.spec.source.host ? stale.path : undefined,
    };
  });
  ctx.say(`== rollout step ${step.id} (${describeKind(step.spec)}): ${step.name}`);
  let outcome: StepOutcome;
  try {
    outcome = await execute(ctx, step, previousRun);
  } catch (err) {
    outcome = {
      state: 'failed',
      message: err instanceof CairnError ? err.render() : err instanceof Error ? err.message : String(err),
    };
  }
  await updateState(ctx.statePath, (state) => {
    const current = stepState(state, step.id);
    const finishedAt = new Date().toISOString();
    state.steps[step.id] = {
      ...current,
      state: outcome.state,
      finishedAt,
      pid: undefined,
      procStartTime: undefined,
      host: undefined,
      evidence: outcome.evidence,
      journal: outcome.journal,
      runId: outcome.runId,
      message: outcome.message,
    };
    state.history.push({
      at: finishedAt,
      step: step.id,
      event: outcome.state,
      by: ctx.operator,
      note: outcome.message,
    });
  });
  ctx.say(
    `== rollout step ${step.id}: ${outcome.state}${outcome.message ? ` — ${outcome.message.split('\n')[0]}` : ''}`,
  );
  return outcome;
}

function execute(
  ctx: StepRunContext,
  step: ChecklistStep,
  previous: { batchesDone: string[]; staleKeyDir?: string },
): Promise<StepOutcome> {
  const spec = step.spec;
  switch (spec.kind) {
    case 'play':
      return spec.validate ? validatePlay(ctx, step, spec) : runPlay(ctx, step, spec);
    case 'verify':
      return runVerify(ctx, step, spec);
    case 'drill':
      return runDrill(ctx, step, spec);
    case 'migrate':
      return runMigrate(ctx, step, spec, previous.batchesDone, previous.staleKeyDir);
    case 'manual':
      throw new CairnError(`step "${step.id}" is a manual step: sign it`, { kind: 'options' });
  }
}

// ---------------------------------------------------------------- helpers

function loadStepPlaybook(step: ChecklistStep, spec: PlayStepSpec | VerifyStepSpec): Playbook {
  const problem = playbookProblem(spec.playbook);
  if (problem) {
    throw new CairnError(
      `step "${step.id}": playbook ${spec.playbookAsWritten} ${problem}; it may not be written yet: write it or change the step`,
      { kind: 'input', location: step.location },
    );
  }
  const playbook = loadPlaybookFile(spec.playbook);
  const rolesProblem = spec.roles && unknownRolesProblem(playbook, spec.roles, spec.playbookAsWritten);
  if (rolesProblem)
    throw new CairnError(`step "${step.id}": ${rolesProblem}`, { kind: 'input', location: step.location });
  return playbook;
}

/** The session options for a step: the CLI's, with the step's limit, roles and variables. */
function sessionOptions(
  ctx: StepRunContext,
  spec: { limit?: string; roles?: string[]; extraVars: Record<string, unknown> },
  extra: Partial<CommonRunOptions> = {},
): CommonRunOptions {
  const cli = ctx.runOptions;
  // The step's variables first, the command line's -e after them (the operator's word wins).
  const extraVars = [
    ...(Object.keys(spec.extraVars).length ? [JSON.stringify(spec.extraVars)] : []),
    ...(cli.extraVars ?? []),
  ];
  return {
    ...cli,
    inventory: cli.inventory ?? ctx.checklist.inventory,
    limit: spec.limit ?? cli.limit,
    roles: spec.roles?.join(','),
    extraVars,
    // The evidence is read from the journal: a rollout step always writes one.
    journal: true,
    ...extra,
  };
}

/** With both a step limit and -l, the step's pattern picks the hosts and -l narrows them further. */
function narrowedHosts(ctx: StepRunContext, spec: { limit?: string }, inventory: Inventory): string[] | undefined {
  const cli = ctx.runOptions.limit;
  if (!spec.limit || !cli) return undefined;
  return inventory.select(cli.startsWith('@') ? readLimitFile(resolve(cli.slice(1))) : cli);
}

function journalEvents(session: Session): RunEvent[] {
  return session.journalPath && existsSync(session.journalPath) ? readJournal(session.journalPath) : [];
}

function finished(
  session: Session,
  state: StepOutcome['state'],
  evidence: StepEvidence | undefined,
  message?: string,
): StepOutcome {
  return { state, evidence, message, journal: session.journalPath, runId: session.runId };
}

// ---------------------------------------------------------------- kinds

async function validatePlay(ctx: StepRunContext, step: ChecklistStep, spec: PlayStepSpec): Promise<StepOutcome> {
  const playbook = loadStepPlaybook(step, spec);
  // Check mode and no lock: validation contacts no host.
  const session = await openSession(sessionOptions(ctx, spec, { check: true }), `rollout run ${step.id}`, {
    playbook: playbook.path,
    lock: false,
    interrupts: ctx.interrupts,
  });
  const only = narrowedHosts(ctx, spec, session.inventory);
  const engine = only ? session.newEngine({ onlyHosts: only }) : session.engine;
  try {
    engine.validateRoleVars(playbook);
    const hosts = new Set<string>();
    for (const play of playbook.plays) for (const h of engine.selectHosts(play.hosts, play.hostsLocation)) hosts.add(h);
    // Every host's connection settings must make sense (addresses, ports, keys), as a run would need them.
    for (const host of hosts)
      connectionSpecFor(host, session.inventory.hostVars(host), {
        baseDir: inventoryDir(session.inventory),
        acceptNewHostKeys: false,
      });
    const roles = [...new Set(playbook.plays.flatMap((p) => p.roles.map((r) => r.name)))];
    ctx.say(
      `validated ${playbook.plays.length} play(s), ${roles.length} role(s) (${roles.join(', ') || 'none'}) and the variables of ${hosts.size} host(s)`,
    );
    const code = session.finish(engine.outcome());
    const evidence = playEvidence(journalEvents(session), { check: false, validate: true, exitCode: code, roles });
    evidence.hosts = [...hosts];
    return finished(session, 'done', evidence);
  } catch (err) {
    session.finish(engine.outcome());
    throw err;
  } finally {
    await engine.close();
    if (engine !== session.engine) await session.engine.close();
  }
}

/**
 * Run a step's playbook (or only its verifications) in its session, on the hosts the step narrows to, and
 * finish the session (journal, recap) whatever happens; every engine opened is closed.
 */
async function runInSession(
  ctx: StepRunContext,
  session: Session,
  spec: { limit?: string },
  playbook: Playbook,
  verifyOnly: boolean,
): Promise<{ code: number; interrupted: boolean }> {
  const only = narrowedHosts(ctx, spec, session.inventory);
  const engine = only ? session.newEngine({ onlyHosts: only }) : session.engine;
  try {
    const outcome = await engine.runPlaybook(playbook, verifyOnly);
    return { code: session.finish(outcome), interrupted: outcome.interrupted };
  } catch (err) {
    session.finish(engine.outcome());
    throw err;
  } finally {
    await engine.close();
    if (engine !== session.engine) await session.engine.close();
  }
}

async function runPlay(ctx: StepRunContext, step: ChecklistStep, spec: PlayStepSpec): Promise<StepOutcome> {
  const playbook = loadStepPlaybook(step, spec);
  const session = await openSession(sessionOptions(ctx, spec, { check: spec.check }), `rollout run ${step.id}`, {
    playbook: playbook.path,
    interrupts: ctx.interrupts,
  });
  const { code, interrupted } = await runInSession(ctx, session, spec, playbook, false);
  const evidence = playEvidence(journalEvents(session), { check: spec.check, validate: false, exitCode: code });
  if (interrupted) return finished(session, 'interrupted', evidence, 'interrupted (Ctrl-C)');
  if (code !== ExitCode.ok) return finished(session, 'failed', evidence, describePlayFailure(code, evidence));
  if (!spec.check && evidence.hosts.length === 0)
    return finished(session, 'failed', evidence, 'no host matched: nothing was applied');
  return finished(session, 'done', evidence);
}

function describePlayFailure(
  code: number,
  ev: { failedHosts: string[]; unreachableHosts: string[]; verify: { failed: number; checks: number } },
): string {
  const parts: string[] = [];
  if (ev.failedHosts.length) parts.push(`failed on ${ev.failedHosts.join(', ')}`);
  if (ev.unreachableHosts.length) parts.push(`unreachable: ${ev.unreachableHosts.join(', ')}`);
  if (ev.verify.failed) parts.push(`${ev.verify.failed} of ${ev.verify.checks} verifications failed`);
  return `exit code ${code}${parts.length ? `: ${parts.join('; ')}` : ''}`;
}

async function runVerify(ctx: StepRunContext, step: ChecklistStep, spec: VerifyStepSpec): Promise<StepOutcome> {
  const playbook = loadStepPlaybook(step, spec);
  const session = await openSession(sessionOptions(ctx, spec), `rollout run ${step.id}`, {
    playbook: playbook.path,
    lock: false,
    interrupts: ctx.interrupts,
  });
  const { code, interrupted } = await runInSession(ctx, session, spec, playbook, true);
  const evidence = verifyEvidence(journalEvents(session), code);
  if (interrupted) return finished(session, 'interrupted', evidence, 'interrupted (Ctrl-C)');
  if (evidence.failed > 0) {
    const first = evidence.failures
      .slice(0, 3)
      .map((f) => `${f.host} ${f.role}: ${f.check}${f.msg ? ` (${f.msg.split('\n')[0]})` : ''}`)
      .join('; ');
    return finished(
      session,
      'failed',
      evidence,
      `${evidence.failed} of ${evidence.checks} checks failed: ${first}${evidence.failed > 3 ? '; …' : ''}`,
    );
  }
  if (code !== ExitCode.ok)
    return finished(
      session,
      'failed',
      evidence,
      `exit code ${code}${evidence.unreachableHosts.length ? `: unreachable: ${evidence.unreachableHosts.join(', ')}` : ''}`,
    );
  if (evidence.checks === 0)
    return finished(
      session,
      'failed',
      evidence,
      `no verification ran: the roles of ${spec.playbookAsWritten} have no verify.yaml checks for the selected hosts`,
    );
  return finished(session, 'done', evidence);
}

async function runDrill(ctx: StepRunContext, step: ChecklistStep, spec: DrillStepSpec): Promise<StepOutcome> {
  const drill = getDrill(spec.drill);
  if (!drill)
    throw new CairnError(
      `step "${step.id}": drill "${spec.drill}" is not known to this cairn (drills: ${drillNames().join(', ') || 'none'})`,
      { kind: 'input', location: step.location },
    );
  const session = await openSession(sessionOptions(ctx, { extraVars: spec.extraVars }), `rollout run ${step.id}`, {
    interrupts: ctx.interrupts,
  });
  let code: number;
  try {
    // As `cairn drill -e`: the step's variables, then the command line's.
    await runDrillInSession(session, drill, {
      extraVars: parseExtraVars(sessionOptions(ctx, { extraVars: spec.extraVars }).extraVars),
      set: spec.set,
    });
  } finally {
    code = session.finish(session.engine.outcome());
    await session.engine.close();
  }
  const evidence = drillEvidence(journalEvents(session), spec);
  if (session.signal.aborted) return finished(session, 'interrupted', evidence, 'interrupted (Ctrl-C)');
  if (!evidence) return finished(session, 'failed', undefined, `the journal holds no result of drill ${spec.drill}`);
  if (!evidence.passed)
    return finished(session, 'failed', evidence, `drill did not pass: ${evidence.msg ?? evidence.target}`);
  const missed = evidence.targets.filter((t) => !t.met);
  if (missed.length)
    return finished(session, 'failed', evidence, `targets missed: ${missed.map(describeTargetCheck).join('; ')}`);
  if (code !== ExitCode.ok)
    return finished(session, 'failed', evidence, `the drill passed but a play it ran failed (exit code ${code})`);
  return finished(session, 'done', evidence);
}

function inventoryDir(inventory: Inventory): string {
  const p = inventory.path;
  return existsSync(p) && !p.endsWith('.yaml') && !p.endsWith('.yml') ? p : resolve(p, '..');
}

function migrateHost(
  session: Session,
  ctx: StepRunContext,
  name: string,
  override: { address?: string; port?: number },
): { host: MigrateHost; knownHostsPath: string; authorizedKeysFile?: string } {
  if (!session.inventory.hosts.has(name))
    throw new CairnError(`migration host "${name}" is not in the inventory ${session.inventory.path}`, {
      kind: 'input',
    });
  const vars = session.inventory.hostVars(name);
  const spec = connectionSpecFor(name, vars, {
    baseDir: inventoryDir(session.inventory),
    acceptNewHostKeys: Boolean(ctx.runOptions.acceptNewHostKeys),
    knownHostsPath: ctx.runOptions.knownHosts ? resolve(ctx.runOptions.knownHosts) : undefined,
  });
  const authorizedKeysFile =
    typeof vars.cairn_authorized_keys_file === 'string' ? vars.cairn_authorized_keys_file : undefined;
  return {
    host: {
      name,
      exec: (script, opts) => session.engine.exec(name, script, opts),
      become: spec.become,
      user: spec.user,
      address: override.address ?? spec.address,
      port: override.port ?? spec.port,
    },
    knownHostsPath: spec.knownHostsPath,
    authorizedKeysFile,
  };
}

async function runMigrate(
  ctx: StepRunContext,
  step: ChecklistStep,
  spec: MigrateStepSpec,
  alreadyDone: string[],
  staleKeyDir: string | undefined,
): Promise<StepOutcome> {
  // A dry run changes nothing, but it logs into the target with a one-off key: it holds the lock all the same.
  const session = await openSession(sessionOptions(ctx, { extraVars: {} }), `rollout run ${step.id}`, {
    interrupts: ctx.interrupts,
  });
  let result: Awaited<ReturnType<typeof runMigration>> | undefined;
  try {
    const source = migrateHost(session, ctx, spec.source.host, {});
    const target = migrateHost(session, ctx, spec.target.host, {
      address: spec.target.address,
      port: spec.target.port,
    });
    // Connect to the target first: with --accept-new-host-keys that records its key; either way the key the
    // source will trust is the one cairn has just verified.
    await session.engine.exec(target.host.name, 'true');
    const realSpec = connectionSpecFor(target.host.name, session.inventory.hostVars(target.host.name), {
      baseDir: inventoryDir(session.inventory),
      acceptNewHostKeys: false,
      knownHostsPath: target.knownHostsPath,
    });
    const targetHostKeys = knownKeysFor(target.knownHostsPath, realSpec.address, realSpec.port);
    result = await runMigration(spec, {
      source: source.host,
      target: target.host,
      targetHostKeys,
      authorizedKeysFile: target.authorizedKeysFile,
      alreadyDone,
      onBatchDone: (entries) =>
        updateState(ctx.statePath, (state) => {
          const st = stepState(state, step.id);
          state.steps[step.id] = { ...st, batchesDone: [...(st.batchesDone ?? []), ...entries] };
        }),
      staleKeyDir,
      onKeyDir: (path) =>
        updateState(ctx.statePath, (state) => {
          const st = stepState(state, step.id);
          state.steps[step.id] = { ...st, migrateKeyDir: path ? { host: spec.source.host, path } : undefined };
        }),
      log: (line) =>
        session.bus.emit({ type: 'warning', time: new Date().toISOString(), msg: `migrate ${step.id}: ${line}` }),
      signal: session.signal,
    });
  } finally {
    session.finish(session.engine.outcome());
    await session.engine.close();
  }
  if (!result) throw new CairnError(`step "${step.id}": the migration did not run`, { kind: 'runtime' });
  if (result.interrupted) return finished(session, 'interrupted', result.evidence, result.error);
  if (result.error) return finished(session, 'failed', result.evidence, result.error);
  return finished(session, 'done', result.evidence);
}
