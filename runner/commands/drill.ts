/** `cairn drill NAME`: run one timed fault drill, record its result in the journal and the JSON output. */
import type { Command } from 'commander';
import { ExitCode, optionsError } from '../core/util/errors.js';
import '../features/drills/all.js';
import { drillNames, getDrill } from '../features/drills/registry.js';
import { runDrillInSession } from '../features/drills/run.js';
import { addRunOptions } from './play.js';
import { openSession } from '../app/session.js';
import { parseExtraVars, type CommonRunOptions } from '../app/run-inputs.js';
import { processInterrupts } from './signals.js';

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
    .action(
      async (name: string | undefined, opts: CommonRunOptions & { list?: boolean; set?: Record<string, string> }) => {
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
          process.exitCode = session.signal.aborted
            ? ExitCode.interrupted
            : finalCode !== ExitCode.ok
              ? finalCode
              : code;
        }
      },
    );
}
