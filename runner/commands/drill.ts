/**
 * `cairn drill NAME`: run one timed fault drill, record its result in the journal and the JSON output.
 * `cairn drill --due`: the drill schedule (drills.yaml) against the recorded runs — last run, verdict, next
 * due, overdue; `--run` runs the overdue ones, `--metrics FILE` exports the schedule for Prometheus.
 *
 * Exit codes of --due: 0 every scheduled drill within its period, 3 at least one overdue, 5 a bad schedule
 * or option. With --run: 0 every due drill passed (or none was due), 2 one failed, 4 a host unreachable,
 * 99 interrupted.
 */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { CairnError, ExitCode, optionsError } from '../core/util/errors.js';
import '../features/drills/all.js';
import { drillNames, getDrill } from '../features/drills/registry.js';
import { addRunOptions } from './play.js';
import { parseExtraVars, type CommonRunOptions } from '../app/run-inputs.js';
import { processInterrupts } from './signals.js';

type DrillOptions = CommonRunOptions & {
  list?: boolean;
  set?: Record<string, string>;
  due?: boolean;
  run?: boolean;
  schedule?: string;
  metrics?: string;
  now?: string;
};

/** `cairn drill --due [--run] [--metrics FILE]`. Reading the schedule opens no session and no connection. */
async function drillsDueCommand(opts: DrillOptions): Promise<number> {
  const { drillsDue, loadSchedule, readDrillRuns, renderDrillMetrics, renderDueTable, schedulePath } =
    await import('../features/drills/schedule.js');
  const { stateDirectory } = await import('../app/lock.js');
  let now = new Date();
  if (opts.now !== undefined) {
    now = new Date(opts.now);
    if (Number.isNaN(now.getTime())) throw optionsError(`--now must be an ISO date or time, got "${opts.now}"`);
  }
  const schedule = loadSchedule(schedulePath(opts.schedule), drillNames());
  const runsDir = join(stateDirectory(), 'runs');
  const due = drillsDue(schedule, readDrillRuns(runsDir), now);
  if (opts.metrics) {
    const { writeFileAtomic } = await import('../app/report/drift.js');
    const target = resolve(opts.metrics);
    try {
      writeFileAtomic(target, renderDrillMetrics(due, now));
    } catch (err) {
      // Nothing half-written: the temp file is removed and the old metrics stay.
      throw new CairnError(`--metrics: cannot write ${target}: ${err instanceof Error ? err.message : String(err)}`, {
        kind: 'runtime',
      });
    }
  }
  const overdue = due.filter((d) => d.overdue);
  const out = opts.json ? process.stderr : process.stdout;
  if (opts.json) {
    for (const d of due)
      process.stdout.write(
        `${JSON.stringify({
          type: 'drill_due',
          id: d.entry.id,
          drill: d.entry.drill,
          every: d.entry.every,
          set: d.entry.set,
          lastRun: d.lastRun ? { at: d.lastRun.at, passed: d.lastRun.passed, journal: d.lastRun.journal } : null,
          lastPassed: d.lastPassed?.at ?? null,
          nextDue: d.nextDue?.toISOString() ?? null,
          overdue: d.overdue,
        })}\n`,
      );
  } else {
    const colour = opts.color !== false && !process.env.NO_COLOR && Boolean(process.stdout.isTTY);
    out.write(`DRILL SCHEDULE ${schedule.file} (${now.toISOString()}; runs from ${runsDir})\n\n`);
    out.write(renderDueTable(due, { colour }));
  }
  if (!opts.run) return overdue.length ? ExitCode.changesPending : ExitCode.ok;
  if (!overdue.length) return ExitCode.ok;

  // --run: the overdue drills, in the schedule's order, in one session (one journal, one connection per host).
  const { openSession } = await import('../app/session.js');
  const { runDrillInSession } = await import('../features/drills/run.js');
  const session = await openSession(opts, `drill --due --run`, { interrupts: processInterrupts });
  const engine = session.engine;
  let code: number = ExitCode.ok;
  try {
    for (const d of overdue) {
      if (session.signal.aborted) break;
      out.write(`\n== ${d.entry.id}: cairn drill ${d.entry.drill}\n`);
      const outcome = await runDrillInSession(session, getDrill(d.entry.drill)!, {
        extraVars: { ...d.entry.extraVars, ...parseExtraVars(opts.extraVars) },
        set: { ...d.entry.set, ...(opts.set ?? {}) },
      });
      if (!outcome.passed) code = ExitCode.hostFailed;
    }
  } finally {
    const finalCode = session.finish(engine.outcome());
    await engine.close();
    code = session.signal.aborted ? ExitCode.interrupted : finalCode !== ExitCode.ok ? finalCode : code;
  }
  return code;
}

function collectSet(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = value.indexOf('=');
  if (eq <= 0) throw optionsError(`--set ${value}: expected key=value`);
  return { ...previous, [value.slice(0, eq)]: value.slice(eq + 1) };
}

export function registerDrillCommands(program: Command): void {
  addRunOptions(
    program
      .command('drill')
      .description('run a timed fault drill against the platform and record the result against its target')
      .argument('[name]', 'the drill (see --list)'),
  )
    .option('--list', 'list the drills')
    .option('--set <key=value>', 'a drill option (repeatable), e.g. variant=poweroff', collectSet)
    .option('--due', 'the drill schedule: last run, verdict, next due, overdue (exit 3 when one is overdue)')
    .option('--run', 'with --due: run the overdue drills, in the order of the schedule')
    .option('--schedule <file>', 'the drill schedule (default: CAIRN_DRILLS, ./drills.yaml, or the shipped one)')
    .option('--metrics <file>', 'with --due: write node-exporter textfile metrics for the DrillOverdue alert')
    .option('--now <time>', 'with --due: judge as if it were this time (ISO 8601), e.g. to see what falls due')
    .action(async (name: string | undefined, opts: DrillOptions) => {
      if (opts.due) {
        if (name) throw optionsError(`--due lists the schedule's drills: give no drill name (got "${name}")`);
        process.exitCode = await drillsDueCommand(opts);
        return;
      }
      for (const flag of ['run', 'metrics', 'now'] as const)
        if (opts[flag] !== undefined) throw optionsError(`--${flag} goes with --due`);
      if (opts.list || !name) {
        for (const n of drillNames()) {
          const d = getDrill(n)!;
          process.stdout.write(`${n.padEnd(22)} ${d.summary}\n`);
          for (const [k, v] of Object.entries(d.options ?? {}))
            process.stdout.write(`${''.padEnd(24)}--set ${k}=…  ${v}\n`);
        }
        if (!name && !opts.list) process.exitCode = ExitCode.badInput;
        return;
      }
      const drill = getDrill(name);
      if (!drill) throw optionsError(`unknown drill "${name}" (drills: ${drillNames().join(', ')})`);
      const { openSession } = await import('../app/session.js');
      const { runDrillInSession } = await import('../features/drills/run.js');
      const session = await openSession(opts, `drill ${name}`, { interrupts: processInterrupts });
      const engine = session.engine;
      let code: number = ExitCode.ok;
      try {
        const outcome = await runDrillInSession(session, drill, {
          extraVars: parseExtraVars(opts.extraVars),
          set: opts.set ?? {},
        });
        code = outcome.passed ? ExitCode.ok : ExitCode.hostFailed;
      } finally {
        const finalCode = session.finish(engine.outcome());
        await engine.close();
        process.exitCode = session.signal.aborted ? ExitCode.interrupted : finalCode !== ExitCode.ok ? finalCode : code;
      }
    });
}
