/** `cairn drill NAME`: run one timed fault drill, record its result in the journal and the JSON output. */
import { DriftCollector, type DriftReport } from '../drift/drift.js';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { now } from '../engine/events.js';
import { ExitCode, optionsError } from '../errors.js';
import '../drills/all.js';
import { drillNames, getDrill } from '../drills/registry.js';
import type { Drill, DrillContext, DrillOutcome, DrillPower } from '../drills/types.js';
import { labKill, labPlug, labStart, labStop, labUnplug } from '../lab/index.js';
import { addRunOptions, loadPlaybookFile } from './play.js';
import { openSession, parseExtraVars, type CommonRunOptions, type Session } from './session.js';
import type { Vars } from '../vars.js';

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
    .action(async (name: string | undefined, opts: CommonRunOptions & { list?: boolean; set?: Record<string, string> }) => {
      if (opts.list || !name) {
        for (const n of drillNames()) {
          const d = getDrill(n)!;
          process.stdout.write(`${n.padEnd(22)} ${d.summary}\n`);
          for (const [k, v] of Object.entries(d.options ?? {})) process.stdout.write(`${''.padEnd(24)}--set ${k}=…  ${v}\n`);
        }
        if (!name && !opts.list) process.exitCode = ExitCode.badInput;
        return;
      }
      const drill = getDrill(name);
      if (!drill) throw optionsError(`unknown drill "${name}" (drills: ${drillNames().join(', ')})`);
      const session = await openSession(opts, `drill ${name}`);
      const engine = session.engine;
      let code: number = ExitCode.ok;
      try {
        const outcome = await runDrillInSession(session, drill, { extraVars: parseExtraVars(opts.extraVars), set: opts.set ?? {} });
        code = outcome.passed ? ExitCode.ok : ExitCode.hostFailed;
      } finally {
        const finalCode = session.finish(engine.outcome());
        await engine.close();
        process.exitCode = session.signal.aborted ? ExitCode.interrupted : finalCode !== ExitCode.ok ? finalCode : code;
      }
    });
}

/**
 * Run one drill on an open session (its inventory, bus, journal and Ctrl-C handling) and emit its
 * `drill_result`. A drill that throws is a failed result, never a crash. Used by `cairn drill` and by the
 * rollout's drill steps.
 */
export async function runDrillInSession(session: Session, drill: Drill, opts: { extraVars: Vars; set: Record<string, string> }): Promise<DrillOutcome> {
  const name = drill.name;
  const engine = session.engine;
  const isLab = session.inventory.hosts.size > 0 && [...session.inventory.hosts.keys()].some((h) => session.inventory.hostVars(h).lab === true);
  const quiet = { log: () => {} };
  const power: DrillPower | undefined = isLab
    ? {
        stop: async (host) => {
          await labStop(host, quiet);
          await engine.dropConnection(host);
        },
        kill: async (host) => {
          await labKill(host, quiet);
          await engine.dropConnection(host);
        },
        start: async (host) => {
          await labStart(host, quiet);
          await engine.dropConnection(host);
        },
        unplug: async (host) => {
          await labUnplug(host, quiet);
        },
        plug: async (host) => {
          await labPlug(host, quiet);
          // The connection may have timed out while the cable was out: the next use opens a fresh one.
          await engine.dropConnection(host);
        },
      }
    : undefined;
  const extraVars = opts.extraVars;
  const ctx: DrillContext = {
    inventory: session.inventory,
    hostVars: (host) => ({ ...session.inventory.hostVars(host), ...extraVars }),
    exec: (host, script, execOpts) => engine.exec(host, script, execOpts),
    power,
    log: (line) => session.bus.emit({ type: 'warning', time: now(), msg: `drill ${name}: ${line}` }),
    signal: session.signal,
    options: opts.set,
    play: async (playbookPath, playOpts = {}) => {
      const playbook = loadPlaybookFile(resolve(playbookPath));
      const sub = session.newEngine({ limit: playOpts.limit, roles: playOpts.roles, extraVars: { ...extraVars, ...(playOpts.extraVars ?? {}) }, check: false });
      try {
        const outcome = await sub.runPlaybook(playbook);
        if (outcome.unreachableHosts.size) return ExitCode.hostUnreachable;
        if (outcome.failedHosts.size || outcome.verifyFailures) return ExitCode.hostFailed;
        return ExitCode.ok;
      } finally {
        await sub.close();
      }
    },
    drift: async (playbookPath, driftOpts = {}) => {
      const playbook = loadPlaybookFile(resolve(playbookPath));
      const sub = session.newEngine({ limit: driftOpts.limit, roles: driftOpts.roles, extraVars, check: true, verify: false });
      const collector = new DriftCollector(session.bus);
      let report: DriftReport;
      try {
        await sub.runPlaybook(playbook);
      } finally {
        // finish() also stops listening, so a failed run leaves no subscriber behind.
        report = collector.finish([...session.inventory.hosts.keys()]);
        await sub.close();
      }
      return report;
    },
  };
  let outcome: DrillOutcome;
  try {
    outcome = await drill.run(ctx);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    outcome = { passed: false, measured: {}, target: '', msg: `drill could not run: ${msg}` };
  }
  session.bus.emit({ type: 'drill_result', time: now(), drill: name, passed: outcome.passed, measured: outcome.measured, target: outcome.target, msg: outcome.msg });
  return outcome;
}
