/**
 * cairn's command line. Commander parses; each command lives in runner/commands/. Every error the user can
 * cause is a CairnError printed as one paragraph (file:line:col: what was expected) with exit code 5; a stack
 * trace is shown only with -vvv or CAIRN_DEBUG=1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { CairnError, ExitCode } from './core/util/errors.js';
import { limitHeapGrowth } from './core/util/heap.js';
import { packageRoot } from './core/util/paths.js';

type Register = (program: Command) => void;

/**
 * Each command's module, loaded only when that command runs: `cairn inventory --list` must not pay for ssh2,
 * the engine, the lab, drills or the HTML report (test/integration/cli-lazy-load.test.ts holds it to that).
 * Several names can share a module (play, verify and run are one file).
 */
const COMMAND_MODULES: Record<string, () => Promise<Register[]>> = {
  play: async () => [(await import('./commands/play.js')).registerPlayCommands],
  inventory: async () => [(await import('./commands/inventory.js')).registerInventoryCommand],
  lab: async () => [(await import('./commands/lab.js')).registerLabCommands],
  vault: async () => [(await import('./commands/vault.js')).registerVaultCommands],
  vars: async () => [(await import('./commands/vars.js')).registerVarsCommand],
  template: async () => [(await import('./commands/template.js')).registerTemplateCommands],
  drill: async () => [(await import('./commands/drill.js')).registerDrillCommands],
  rollout: async () => [(await import('./commands/rollout.js')).registerRolloutCommands],
  report: async () => [(await import('./commands/rollout.js')).registerReportCommand],
  init: async () => [(await import('./commands/init.js')).registerInitCommand],
  drift: async () => [(await import('./commands/drift.js')).registerDriftCommand],
  drain: async () => [(await import('./commands/traffic.js')).registerTrafficCommands],
};
COMMAND_MODULES.canary = COMMAND_MODULES.drain;
COMMAND_MODULES.verify = COMMAND_MODULES.play;
COMMAND_MODULES.run = COMMAND_MODULES.play;

/**
 * Which command modules argv needs: the named command's alone; none for a bare --version; every one otherwise
 * (top-level --help lists them all, and an unknown command's error suggests the nearest name).
 */
export function commandModulesFor(argv: string[]): string[] {
  const args = argv.slice(2);
  const named = args.find((a) => !a.startsWith('-'));
  if (named !== undefined && named in COMMAND_MODULES) return [named];
  if (named === undefined && args.length > 0 && args.every((a) => a === '--version' || a === '-V')) return [];
  return Object.keys(COMMAND_MODULES);
}

function debugWanted(): boolean {
  return process.env.CAIRN_DEBUG === '1' || process.argv.includes('-vvv') || process.argv.includes('-vvvv');
}

/** The installed package's own version (package.json beside dist/), so `cairn --version` never drifts from it. */
function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command();
  program
    .name('cairn')
    .description('An Ansible-style playbook runner for a high-availability platform, over real SSH')
    .version(packageVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const registered = new Set<Register>();
  for (const name of commandModulesFor(argv)) {
    for (const register of await COMMAND_MODULES[name]()) {
      if (registered.has(register)) continue;
      registered.add(register);
      register(program);
    }
  }
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
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

// A run at hundreds of hosts otherwise lets V8 keep up to 4× its live heap in garbage (./core/util/heap.ts).
limitHeapGrowth();
const code = await main(process.argv);
// Let stdout drain before exiting; reporters write synchronously but pipes may buffer.
process.exitCode = code;
