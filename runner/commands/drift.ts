/**
 * `cairn drift [PLAYBOOK]`: run the site in check mode and print a host x role table of the changes it
 * predicts; exit 3 when something drifted, 0 when nothing did, 4 when a host was unreachable (2 when a task
 * failed). `--metrics FILE` also writes node-exporter textfile metrics (the hourly timer of docs/drift.md
 * points it into the textfile collector's folder; the prometheus role alerts on them).
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  DriftCollector,
  driftExitCode,
  renderDriftMetrics,
  renderDriftTable,
  writeFileAtomic,
} from '../app/report/drift.js';
import { optionsError } from '../core/util/errors.js';
import { addRunOptions } from './play.js';
import { loadPlaybookFile, roleNames, unknownRolesProblem } from '../app/playbook.js';
import { openSession } from '../app/session.js';
import type { CommonRunOptions } from '../app/run-inputs.js';
import { processInterrupts } from './signals.js';

type DriftOptions = CommonRunOptions & { metrics?: string };

export function registerDriftCommand(program: Command): void {
  addRunOptions(
    program
      .command('drift')
      .description(
        'check mode over the site: a host x role table of predicted changes (exit 3 drift, 0 none, 4 unreachable)',
      )
      .argument('[playbook]', 'playbook YAML file', 'site.yaml'),
  )
    .option('--roles <roles>', 'only these roles (comma-separated)')
    .option('--metrics <file>', 'also write node-exporter textfile metrics to this file (atomically)')
    .action(async (playbookPath: string, opts: DriftOptions) => {
      const playbook = loadPlaybookFile(playbookPath);
      const rolesProblem = opts.roles && unknownRolesProblem(playbook, roleNames(opts.roles), playbookPath);
      if (rolesProblem) throw optionsError(`--roles: ${rolesProblem}`);
      const session = await openSession({ ...opts, check: true, diff: false }, 'drift', {
        playbook: playbook.path,
        console: opts.json ? undefined : false,
        interrupts: processInterrupts,
      });
      const collector = new DriftCollector(session.bus);
      // Drift is what the roles would change; their postconditions are `cairn verify`'s business.
      const engine = session.newEngine({ check: true, verify: false });
      let code: number;
      try {
        const outcome = await engine.runPlaybook(playbook);
        const report = collector.finish([...session.inventory.hosts.keys()]);
        session.finish(outcome);
        if (!opts.json)
          process.stdout.write(
            `DRIFT ${playbook.path} (check mode, ${new Date(report.checkedAt * 1000).toISOString()})\n\n${renderDriftTable(report)}`,
          );
        if (opts.metrics) writeFileAtomic(resolve(opts.metrics), renderDriftMetrics(report));
        code = outcome.interrupted ? 99 : driftExitCode(report);
      } finally {
        await engine.close();
        await session.engine.close();
      }
      process.exitCode = code;
    });
}
