/** `cairn play`, `cairn verify` and `cairn run`: the commands that run tasks. */
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { optionsError } from '../core/util/errors.js';
// Fills the module registry: every command that loads a playbook comes through this file (drift, drill and
// rollout use addRunOptions), and the commands that load none (inventory, vars, vault, ...) skip it.
import '../core/modules/all.js';
import { getModule } from '../core/modules/index.js';
import { changesInventory, taskNameMatches } from '../core/engine/engine.js';
import { coerceKeyValueArgs, parseKeyValueArgs } from '../core/playbook/load.js';
import type { Playbook, Task } from '../core/playbook/types.js';
import { parseYaml } from '../core/util/yaml-source.js';
import { isPlainObject } from '../core/util/vars.js';
import { loadPlaybookFile, roleNames, unknownRolesProblem } from '../app/playbook.js';
import { openSession } from '../app/session.js';
import {
  configureAnsibleVault,
  defaultInventoryPath,
  openInventory,
  parseExtraVars,
  prepareVault,
  type CommonRunOptions,
} from '../app/run-inputs.js';
import { answerVarsPrompts } from './vars-prompt.js';
import { processInterrupts } from './signals.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function increase(_: string, previous = 0): number {
  return previous + 1;
}

/** The loader's warnings (Ansible constructs read but not acted on), and at -v where each role came from. */
function reportLoad(playbook: Playbook, verbose: number): void {
  for (const w of playbook.warnings ?? []) process.stderr.write(`[WARNING]: ${w}\n`);
  if (verbose < 1) return;
  const seen = new Set<string>();
  for (const play of playbook.plays) {
    for (const role of play.roles) {
      if (seen.has(role.dir)) continue;
      seen.add(role.dir);
      process.stderr.write(`role ${role.name}: ${role.dir} (${role.origin})\n`);
    }
  }
}

/** Options every task-running command shares, with Ansible's names. */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('-i, --inventory <path>', "inventory file or folder (default: the lab's, inventories/lab/hosts.yaml)")
    .option('-l, --limit <pattern>', 'further limit the hosts with a pattern (or @file with one pattern per line)')
    .option(
      '-e, --extra-vars <vars>',
      'extra variables: key=value, a YAML/JSON mapping, or @file.yaml (repeatable)',
      collect,
    )
    .option('-f, --forks <n>', 'hosts worked on at once (default 20, or ansible.cfg forks)')
    .option(
      '-u, --user <name>',
      'connect as this user (inventory ansible_user and play remote_user win over it, as in Ansible)',
    )
    .option('--private-key <file>', 'SSH private key file (ansible_ssh_private_key_file wins over it)')
    .option('-c, --connection <type>', 'ssh or local')
    .option('--become-user <user>', 'the user sudo becomes (default root)')
    .option('-K, --ask-become-pass', 'refused: cairn needs passwordless sudo')
    .option('-v, --verbose', 'more output (-vv, -vvv for more)', increase)
    .option('--json', 'one JSON event per line on stdout instead of the console output')
    .option('--compact', 'compact console: changes, failures and the recap only (the default from 10 hosts up)')
    .option('--full', 'Ansible-style console: every task on every host (the default under 10 hosts)')
    .option('--no-color', 'no colours')
    .option(
      '--accept-new-host-keys',
      'trust unknown host keys on first use and record them (mismatches are still refused)',
    )
    .option(
      '--known-hosts <file>',
      'known_hosts file to check host keys against (default: per host cairn_known_hosts, else ~/.ssh/known_hosts)',
    )
    .option('--no-journal', 'do not write .cairn/runs/<time>.ndjson')
    .option(
      '--vault-identity <file>',
      "age identity file that opens the inventory's vault files (or CAIRN_VAULT_IDENTITY)",
    )
    .option(
      '--vault-password-file <file>',
      'file holding the vault passphrase (or CAIRN_VAULT_PASSWORD_FILE / CAIRN_VAULT_PASSWORD)',
    )
    .option(
      '--vault-id <[label@]file>',
      'Ansible Vault password file, with the vault id it opens (repeatable)',
      collect,
    );
}

type PlayOptions = CommonRunOptions & {
  listHosts?: boolean;
  listTasks?: boolean;
  listTags?: boolean;
  syntaxCheck?: boolean;
  flushCache?: boolean;
};

/** A play's tasks as --list-tasks prints them: blocks opened, dynamic includes named (their files load later). */
function taskLines(tasks: Task[], prefix: string, indent = '    '): string[] {
  return tasks.flatMap((t) => {
    if (t.block)
      return [t.block.block, t.block.rescue, t.block.always].flatMap((list) => taskLines(list, prefix, indent));
    const name = t.include && !t.include.tasks ? `${t.module}: ${t.include.file}` : t.name;
    const line = `${indent}${prefix}${name}\tTAGS: [${t.tags.join(', ')}]`;
    return t.include?.tasks ? [line, ...taskLines(t.include.tasks, prefix, indent + '  ')] : [line];
  });
}

/** Every tag written in a play's tasks (into blocks and includes), sorted, as --list-tags prints them. */
function taskTags(tasks: Task[], into = new Set<string>()): Set<string> {
  for (const t of tasks) {
    for (const tag of t.tags) into.add(tag);
    if (t.block) for (const list of [t.block.block, t.block.rescue, t.block.always]) taskTags(list, into);
    if (t.include?.tasks) taskTags(t.include.tasks, into);
  }
  return into;
}

/** --step's question on the terminal, as ansible-playbook asks it. */
function askStep(task: Task): Promise<'yes' | 'no' | 'continue'> {
  return new Promise((resolveAnswer) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    rl.question(`Perform task: ${task.role ? `${task.role} : ` : ''}${task.name} (N)o/(y)es/(c)ontinue: `, (a) => {
      rl.close();
      const word = a.trim().toLowerCase();
      resolveAnswer(word.startsWith('y') ? 'yes' : word.startsWith('c') ? 'continue' : 'no');
    });
  });
}

export function registerPlayCommands(program: Command): void {
  addRunOptions(
    program
      .command('play')
      .description("run a playbook: its plays, roles and tasks, then each role's verifications")
      .argument('<playbook>', 'playbook YAML file'),
  )
    .option('-b, --become', 'run tasks through sudo -n (a play or task become: wins over it)')
    .option('-t, --tags <tags>', 'only run tasks with these tags (comma-separated)')
    .option('--skip-tags <tags>', 'skip tasks with these tags')
    .option('--roles <roles>', 'only run these roles (comma-separated), e.g. to repair drift')
    .option('-C, --check', 'predict the changes without making them')
    .option('-D, --diff', 'show the differences in changed files')
    .option('--detailed-exitcode', 'with --check: exit 3 when changes would be made')
    .option('--rerun <which>', '"failed": only the hosts that failed or were unreachable in the last run')
    .option('--list-hosts', 'list the hosts each play would run on, and stop')
    .option('--list-tasks', 'list the tasks each play would run, and stop')
    .option('--list-tags', 'list the tags of each play and its tasks, and stop')
    .option('--start-at-task <name>', 'start at the first task of this name (or "role : name"; a glob works)')
    .option('--step', 'ask before each task: (N)o/(y)es/(c)ontinue (needs a terminal)')
    .option(
      '--flush-cache',
      'accepted as ansible-playbook has it: cairn keeps no fact cache, facts are gathered each run',
    )
    .option('--syntax-check', 'load and validate the playbook, roles and inventory, and stop')
    .action(async (playbookPath: string, opts: PlayOptions) => {
      configureAnsibleVault(opts);
      const playbook = loadPlaybookFile(playbookPath);
      reportLoad(playbook, opts.verbose ?? 0);
      if (opts.syntaxCheck) {
        const inventoryPath = resolve(opts.inventory ?? defaultInventoryPath());
        await prepareVault(inventoryPath, opts);
        openInventory(opts.inventory);
        process.stdout.write(
          `playbook: ${playbook.path}: syntax OK (${playbook.plays.length} play${playbook.plays.length === 1 ? '' : 's'})\n`,
        );
        return;
      }
      const rolesProblem = opts.roles && unknownRolesProblem(playbook, roleNames(opts.roles), playbookPath);
      if (rolesProblem) throw optionsError(`--roles: ${rolesProblem}`);
      if (opts.startAtTask !== undefined) {
        const all = (tasks: Task[]): Task[] =>
          tasks.flatMap((t) => (t.block ? all([...t.block.block, ...t.block.rescue, ...t.block.always]) : [t]));
        const pattern = opts.startAtTask;
        const found = playbook.plays.some((p) =>
          all([...p.roles.flatMap((r) => r.tasks), ...p.tasks]).some((t) => taskNameMatches(t, pattern)),
        );
        if (!found)
          throw optionsError(
            `--start-at-task: no task named "${pattern}" in ${playbookPath} (it finds tasks known before the run, not those of an include_tasks with a templated name)`,
          );
      }
      if (opts.step && !process.stdin.isTTY)
        throw optionsError('--step asks before each task and needs a terminal on stdin (leave --step out here)');
      if (opts.listHosts || opts.listTasks || opts.listTags) {
        const session = await openSession({ ...opts, journal: false, json: false }, 'play', {
          lock: false,
          interrupts: processInterrupts,
        });
        for (const play of playbook.plays) {
          const hosts = session.engine.selectHosts(play.hosts, play.hostsLocation, changesInventory(playbook));
          process.stdout.write(`\nplay #${playbook.plays.indexOf(play) + 1} (${play.hosts}): ${play.name}\n`);
          if (opts.listHosts) {
            process.stdout.write(`  pattern: ['${play.hosts}']\n  hosts (${hosts.length}):\n`);
            for (const h of hosts) process.stdout.write(`    ${h}\n`);
          }
          const roles = opts.roles ? roleNames(opts.roles) : undefined;
          const wanted = play.roles.filter((role) => !roles || roles.includes(role.name));
          if (opts.listTasks) {
            process.stdout.write('  tasks:\n');
            const lines = [
              ...wanted.flatMap((role) =>
                taskLines(
                  role.tasks.map((t) => ({ ...t, tags: [...role.tags, ...t.tags] })),
                  `${role.name} : `,
                ),
              ),
              ...(roles ? [] : taskLines(play.tasks, '')),
            ];
            for (const line of lines) process.stdout.write(`${line}\n`);
          }
          if (opts.listTags) {
            const tags = new Set<string>();
            for (const role of wanted) {
              for (const tag of role.tags) tags.add(tag);
              taskTags(role.tasks, tags);
            }
            if (!roles) taskTags(play.tasks, tags);
            process.stdout.write(`  TAGS: [${play.tags.join(', ')}]\n`);
            process.stdout.write(`  TASK TAGS: [${[...tags].sort().join(', ')}]\n`);
          }
        }
        await session.engine.close();
        return;
      }
      await answerVarsPrompts(playbook, parseExtraVars(opts.extraVars));
      const session = await openSession(opts, 'play', {
        playbook: playbook.path,
        interrupts: processInterrupts,
        confirmTask: askStep,
      });
      try {
        const outcome = await session.engine.runPlaybook(playbook);
        process.exitCode = session.finish(outcome);
      } finally {
        await session.engine.close();
      }
    });

  addRunOptions(
    program
      .command('verify')
      .description("check every role's postconditions (verify.yaml) without changing anything")
      .argument('<playbook>', 'playbook YAML file'),
  )
    .option('--roles <roles>', 'only verify these roles')
    .action(async (playbookPath: string, opts: PlayOptions) => {
      configureAnsibleVault(opts);
      const playbook = loadPlaybookFile(playbookPath);
      const rolesProblem = opts.roles && unknownRolesProblem(playbook, roleNames(opts.roles), playbookPath);
      if (rolesProblem) throw optionsError(`--roles: ${rolesProblem}`);
      const session = await openSession(opts, 'verify', {
        playbook: playbook.path,
        lock: false,
        interrupts: processInterrupts,
      });
      try {
        const outcome = await session.engine.runPlaybook(playbook, true);
        process.exitCode = session.finish(outcome);
      } finally {
        await session.engine.close();
      }
    });

  addRunOptions(
    program
      .command('run')
      .description('run one module ad hoc on the hosts matching a pattern (like `ansible -m`)')
      .argument('<pattern>', 'host pattern'),
  )
    .requiredOption('-m, --module-name <module>', 'module to run', 'command')
    .option(
      '-a, --args <args>',
      'module arguments: key=value pairs, a YAML mapping, or the free-form text of command/shell',
    )
    .option('-b, --become', 'run with sudo')
    .option('-C, --check', 'predict the change without making it')
    .option('-D, --diff', 'show the differences in changed files')
    .action(
      async (pattern: string, opts: CommonRunOptions & { moduleName: string; args?: string; become?: boolean }) => {
        const module = getModule(opts.moduleName);
        if (!module) throw optionsError(`unknown module "${opts.moduleName}"`);
        let args: Record<string, unknown> = {};
        const text = opts.args ?? '';
        if (text.trim().startsWith('{')) {
          const v = parseYaml(text, '-a').value;
          if (!isPlainObject(v)) throw optionsError('-a: expected a mapping');
          args = v;
        } else if (module.freeFormArg) {
          args = text ? { [module.freeFormArg]: text } : {};
        } else if (text.trim()) {
          const kv = parseKeyValueArgs(text);
          if (!kv)
            throw optionsError(`-a: expected key=value pairs for module ${module.name}, got ${JSON.stringify(text)}`);
          args = coerceKeyValueArgs(module.argsSchema, kv);
        }
        const task: Task = {
          name: `${module.name}${text ? ' ' + text : ''}`,
          module: module.name,
          args,
          when: [],
          loopVar: 'item',
          notify: [],
          tags: [],
          runOnce: false,
          ignoreErrors: false,
          noLog: false,
          become: opts.become,
          role: '',
          location: { file: '<command line>' },
          listen: [],
        };
        const session = await openSession(opts, 'run', { interrupts: processInterrupts });
        try {
          const outcome = await session.engine.runAdhoc(pattern, task);
          process.exitCode = session.finish(outcome);
        } finally {
          await session.engine.close();
        }
      },
    );
}
