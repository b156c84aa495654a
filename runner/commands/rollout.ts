/**
 * `cairn rollout status|next|run|sign|reset|start|check` — the D1–D35 checklist — and `cairn report`, the
 * self-contained HTML report.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import '../features/drills/all.js';
import { CairnError, ExitCode, optionsError } from '../core/util/errors.js';
import { stateDirectory } from '../app/lock.js';
import { packageRoot } from '../core/util/paths.js';
import { checklistProblems, loadChecklist } from '../features/rollout/checklist.js';
import { dayNumberOfDate, localDate } from '../features/rollout/days.js';
import { assertStepMayStart, findTarget, nextAction, runningStep } from '../features/rollout/gate.js';
import { buildReportData, writeReport } from '../features/rollout/report.js';
import { drillNames } from '../features/drills/registry.js';
import { loadSchedule, renderDueTable, schedulePath } from '../features/drills/schedule.js';
import { loadState, rolloutStatePath, stepState, updateState } from '../features/rollout/state.js';
import { renderStatusText, rolloutStatus } from '../features/rollout/status.js';
import { processInterrupts } from './signals.js';
import { defaultOperator, runStep, type StepOutcome, type StepRunContext } from '../features/rollout/steps.js';
import type { Checklist, ChecklistStep } from '../features/rollout/types.js';
import { addRunOptions } from './play.js';
import type { CommonRunOptions } from '../app/run-inputs.js';

interface ChecklistOptions {
  checklist?: string;
}

/** --checklist, else CAIRN_ROLLOUT, else ./rollout.yaml, else the repository's rollout.yaml. */
export function checklistPath(opts: ChecklistOptions): string {
  if (opts.checklist) return resolve(opts.checklist);
  if (process.env.CAIRN_ROLLOUT) return resolve(process.env.CAIRN_ROLLOUT);
  const here = resolve('rollout.yaml');
  return existsSync(here) ? here : join(packageRoot(), 'rollout.yaml');
}

function openChecklist(opts: ChecklistOptions): Checklist {
  const path = checklistPath(opts);
  if (!existsSync(path))
    throw optionsError(`no rollout checklist at ${path}: pass --checklist FILE (or set CAIRN_ROLLOUT)`);
  return loadChecklist(path);
}

function withChecklist(cmd: Command): Command {
  return cmd.option(
    '--checklist <file>',
    "the rollout checklist (default: CAIRN_ROLLOUT, ./rollout.yaml, or the repository's rollout.yaml)",
  );
}

function todayOption(cmd: Command): Command {
  return cmd.option('--today <date>', 'plan as if today were this date (YYYY-MM-DD), e.g. to see what will be late');
}

function checkDate(text: string, what: string): string {
  if (dayNumberOfDate(text) === undefined) throw optionsError(`${what} must be a date as YYYY-MM-DD, got "${text}"`);
  return text;
}

type RunOpts = CommonRunOptions & ChecklistOptions & { by?: string };

function stepContext(checklist: Checklist, opts: RunOpts): StepRunContext {
  const json = Boolean(opts.json);
  return {
    checklist,
    statePath: rolloutStatePath(stateDirectory()),
    runOptions: opts,
    operator: opts.by ?? defaultOperator(),
    // With --json, stdout carries only JSON lines: our own lines go to stderr.
    say: (line) => (json ? process.stderr : process.stdout).write(`${line}\n`),
    interrupts: processInterrupts,
  };
}

function exitCodeFor(outcome: StepOutcome): number {
  if (outcome.state === 'done') return ExitCode.ok;
  if (outcome.state === 'interrupted') return ExitCode.interrupted;
  return ExitCode.hostFailed;
}

function reportOutcome(step: ChecklistStep, outcome: StepOutcome, opts: RunOpts): void {
  if (opts.json)
    process.stdout.write(
      `${JSON.stringify({ type: 'rollout_step', step: step.id, state: outcome.state, message: outcome.message, evidence: outcome.evidence, journal: outcome.journal })}\n`,
    );
}

async function runOne(checklist: Checklist, step: ChecklistStep, opts: RunOpts): Promise<StepOutcome> {
  const outcome = await runStep(stepContext(checklist, opts), step);
  reportOutcome(step, outcome, opts);
  return outcome;
}

export function registerRolloutCommands(program: Command): void {
  const rollout = program
    .command('rollout')
    .description('the D1–D35 rollout checklist: phases, gates, sign-offs and evidence');

  todayOption(
    withChecklist(
      rollout
        .command('status')
        .description('where the rollout stands: every phase and step with state, when, by whom and evidence'),
    ),
  )
    .option('--json', 'the status as one JSON document')
    .action((opts: ChecklistOptions & { json?: boolean; today?: string }) => {
      const checklist = openChecklist(opts);
      const state = loadState(rolloutStatePath(stateDirectory()));
      const status = rolloutStatus(checklist, state, opts.today ? checkDate(opts.today, '--today') : localDate());
      process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatusText(status));
    });

  withChecklist(
    rollout
      .command('check')
      .description('validate the checklist and list steps that would fail at once (missing playbooks, unknown drills)'),
  ).action((opts: ChecklistOptions) => {
    const checklist = openChecklist(opts);
    const problems = checklistProblems(checklist);
    const steps = checklist.steps.size;
    process.stdout.write(`${checklist.file}: ${checklist.phases.length} phases, ${steps} steps: schema and gates OK\n`);
    for (const p of problems)
      process.stdout.write(
        `${p.location.file}:${p.location.line ?? '?'}:${p.location.col ?? '?'}: step ${p.step}: ${p.message}\n`,
      );
    if (problems.length) process.exitCode = ExitCode.badInput;
  });

  withChecklist(
    addRunOptions(
      rollout
        .command('next')
        .description('run the next step of the plan (refuses when it needs a sign-off or a gate is not met)'),
    ),
  )
    .option('--by <name>', 'who runs it (default: CAIRN_OPERATOR or the login name)')
    .action(async (opts: RunOpts) => {
      const checklist = openChecklist(opts);
      const state = loadState(rolloutStatePath(stateDirectory()));
      const next = nextAction(checklist, state);
      switch (next.kind) {
        case 'complete':
          process.stdout.write('every phase is complete and every gate has passed: nothing to run\n');
          return;
        case 'running':
          throw new CairnError(
            `step "${next.step.id}" is running (pid ${next.st.pid}, started ${next.st.startedAt}); one step at a time`,
            { kind: 'lock' },
          );
        case 'sign':
          throw new CairnError(
            `the next step, "${next.step.id}" (${next.step.name}), is manual: a person does it and signs it off: cairn rollout sign ${next.step.id} --by NAME --note TEXT`,
            {
              kind: 'options',
              detail:
                next.step.spec.kind === 'manual' ? `  what to confirm: ${next.step.spec.instructions}` : undefined,
            },
          );
        case 'gate':
          throw new CairnError(`every step of phase "${next.phase.id}" is done but its gate is not met`, {
            kind: 'options',
            detail: next.missing.map((m) => `  - ${m}`).join('\n'),
          });
        case 'run': {
          const outcome = await runOne(checklist, next.step, opts);
          process.exitCode = exitCodeFor(outcome);
        }
      }
    });

  withChecklist(
    addRunOptions(
      rollout
        .command('run')
        .description('run one step, or the remaining steps of a phase in order (stopping at a failure or a sign-off)')
        .argument('<id>', 'a phase or step id'),
    ),
  )
    .option('--by <name>', 'who runs it (default: CAIRN_OPERATOR or the login name)')
    .action(async (id: string, opts: RunOpts) => {
      const checklist = openChecklist(opts);
      const target = findTarget(checklist, id);
      if ('step' in target) {
        const outcome = await runOne(checklist, target.step, opts);
        process.exitCode = exitCodeFor(outcome);
        return;
      }
      const phase = target.phase;
      for (const step of phase.steps) {
        const st = stepState(loadState(rolloutStatePath(stateDirectory())), step.id);
        if (st.state === 'done') continue;
        if (step.spec.kind === 'manual') {
          // Say why we stop (the phase may also be closed: assertStepMayStart says that first).
          assertStepMayStart(checklist, step, loadState(rolloutStatePath(stateDirectory())), 'sign');
          throw new CairnError(
            `phase "${phase.id}" stops at step "${step.id}" (${step.name}): it needs a sign-off: cairn rollout sign ${step.id} --by NAME --note TEXT`,
            { kind: 'options', detail: `  what to confirm: ${step.spec.instructions}` },
          );
        }
        const outcome = await runOne(checklist, step, opts);
        if (outcome.state !== 'done') {
          process.exitCode = exitCodeFor(outcome);
          return;
        }
      }
      process.stdout.write(`phase ${phase.id}: every step is done\n`);
    });

  withChecklist(
    rollout
      .command('sign')
      .description('sign off a manual step: who, and a note (the time is recorded)')
      .argument('<step>', 'a manual step id'),
  )
    .requiredOption('--by <name>', 'who signs')
    .requiredOption('--note <text>', 'what was checked, or where the record is')
    .action(async (id: string, opts: ChecklistOptions & { by: string; note: string }) => {
      const checklist = openChecklist(opts);
      const target = findTarget(checklist, id);
      if (!('step' in target)) throw optionsError(`"${id}" is a phase; sign its manual steps one by one`);
      if (!opts.by.trim()) throw optionsError('--by must name who signs');
      if (!opts.note.trim()) throw optionsError('--note must say what was checked');
      const step = target.step;
      const at = new Date().toISOString();
      await updateState(rolloutStatePath(stateDirectory()), (state) => {
        assertStepMayStart(checklist, step, state, 'sign');
        const previous = stepState(state, step.id);
        state.checklist = checklist.file;
        state.steps[step.id] = {
          state: 'done',
          runs: previous.runs + 1,
          startedAt: at,
          finishedAt: at,
          by: opts.by,
          signoff: { by: opts.by, at, note: opts.note },
        };
        state.history.push({ at, step: step.id, event: 'signed', by: opts.by, note: opts.note });
      });
      process.stdout.write(`signed ${step.id} (${step.name}) by ${opts.by} at ${at}\n`);
    });

  withChecklist(
    rollout
      .command('reset')
      .description("forget a step's result (and a migration's progress) so it runs again from the start")
      .argument('<step>', 'a step id'),
  )
    .option('--by <name>', 'who resets it')
    .action(async (id: string, opts: ChecklistOptions & { by?: string }) => {
      const checklist = openChecklist(opts);
      const target = findTarget(checklist, id);
      if (!('step' in target)) throw optionsError(`"${id}" is a phase; reset its steps one by one`);
      const at = new Date().toISOString();
      const was = await updateState(rolloutStatePath(stateDirectory()), (state) => {
        const running = runningStep(checklist, state);
        if (running?.step.id === id)
          throw new CairnError(`step "${id}" is running (pid ${running.st.pid}); stop it first`, { kind: 'lock' });
        const previous = stepState(state, id).state;
        delete state.steps[id];
        state.history.push({ at, step: id, event: 'reset', by: opts.by ?? defaultOperator(), note: `was ${previous}` });
        return previous;
      });
      process.stdout.write(`reset ${id} (was ${was}); it is pending\n`);
    });

  withChecklist(
    rollout.command('start').description("set the plan's day 1 (D1), so status shows which day it is and what is late"),
  )
    .option('--date <date>', 'day 1 as YYYY-MM-DD (default: today)')
    .option('--by <name>', 'who starts the plan')
    .action(async (opts: ChecklistOptions & { date?: string; by?: string }) => {
      const checklist = openChecklist(opts);
      const date = opts.date ? checkDate(opts.date, '--date') : localDate();
      const by = opts.by ?? defaultOperator();
      await updateState(rolloutStatePath(stateDirectory()), (state) => {
        const before = state.startDate;
        state.checklist = checklist.file;
        state.startDate = date;
        state.startedBy = by;
        state.history.push({
          at: new Date().toISOString(),
          step: '-',
          event: 'started-plan',
          by,
          note: before && before !== date ? `D1 moved from ${before} to ${date}` : `D1 = ${date}`,
        });
      });
      process.stdout.write(`rollout "${checklist.name}": D1 is ${date}\n`);
    });
}

export function registerReportCommand(program: Command): void {
  todayOption(
    withChecklist(
      program
        .command('report')
        .description('write one self-contained HTML report: rollout timeline, host × role matrix, drill results'),
    ),
  )
    .option('-o, --output <file>', 'where to write it (default: <state dir>/report.html)')
    .option(
      '--schedule <file>',
      "the drill schedule (default: CAIRN_DRILLS, drills.yaml beside the checklist, ./drills.yaml, or cairn's)",
    )
    .option('--no-color', 'no colours in the drill schedule printed after the report')
    .action((opts: ChecklistOptions & { output?: string; today?: string; schedule?: string; color?: boolean }) => {
      const checklist = openChecklist(opts);
      const stateDir = stateDirectory();
      const output = resolve(opts.output ?? join(stateDir, 'report.html'));
      const schedule = loadSchedule(schedulePath(opts.schedule, dirname(checklist.file)), drillNames());
      const data = buildReportData(
        checklist,
        rolloutStatePath(stateDir),
        join(stateDir, 'runs'),
        opts.today ? checkDate(opts.today, '--today') : localDate(),
        schedule,
      );
      writeReport(data, output);
      process.stdout.write(`report: ${output}\n`);
      // The schedule in text too: what is overdue is seen without opening the report.
      const colour = opts.color !== false && !process.env.NO_COLOR && Boolean(process.stdout.isTTY);
      process.stdout.write(`\nDRILL SCHEDULE ${schedule.file}\n${renderDueTable(data.drillSchedule!.due, { colour })}`);
    });
}
