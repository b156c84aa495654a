/**
 * cairn's command line. Commander parses; each command lives in runner/commands/. Every error the user can
 * cause is a CairnError printed as one paragraph (file:line:col: what was expected) with exit code 5; a stack
 * trace is shown only with -vvv or CAIRN_DEBUG=1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { CairnError, ExitCode } from './core/util/errors.js';
import { packageRoot } from './core/util/paths.js';
import './core/modules/all.js';
import { registerPlayCommands } from './commands/play.js';
import { registerInventoryCommand } from './commands/inventory.js';
import { registerLabCommands } from './commands/lab.js';
import { registerVaultCommands } from './commands/vault.js';
import { registerVarsCommand } from './commands/vars.js';
import { registerTemplateCommands } from './commands/template.js';
import { registerDrillCommands } from './commands/drill.js';
import { registerReportCommand, registerRolloutCommands } from './commands/rollout.js';
import { registerInitCommand } from './commands/init.js';
import { registerDriftCommand } from './commands/drift.js';

function debugWanted(): boolean {
  return process.env.CAIRN_DEBUG === '1' || process.argv.includes('-vvv') || process.argv.includes('-vvvv');
}

/** The installed package's own version (package.json beside dist/), so `cairn --version` never drifts from it. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cairn')
    .description('An Ansible-style playbook runner for a high-availability platform, over real SSH')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerPlayCommands(program);
  registerInventoryCommand(program);
  registerLabCommands(program);
  registerVaultCommands(program);
  registerVarsCommand(program);
  registerTemplateCommands(program);
  registerDrillCommands(program);
  registerRolloutCommands(program);
  registerReportCommand(program);
  registerInitCommand(program);
  registerDriftCommand(program);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every other commander error is a bad option: Ansible's 5.
      return err.exitCode === 0 || err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
        ? 0
        : ExitCode.badInput;
    }
    if (err instanceof CairnError) {
      process.stderr.write(`ERROR! ${err.render()}\n`);
      if (debugWanted()) process.stderr.write(`${err.stack}\n`);
      return ExitCode.badInput;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`ERROR! unexpected internal error: ${message}\n`);
    if (debugWanted() && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    else process.stderr.write('(this is a bug in cairn; run again with CAIRN_DEBUG=1 for a stack trace)\n');
    return ExitCode.internal;
  }
}

// `cairn ... | head` closes the pipe early: stop quietly instead of crashing on EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
    throw err;
  });
}

const code = await main(process.argv);
// Let stdout drain before exiting; reporters write synchronously but pipes may buffer.
process.exitCode = code;
