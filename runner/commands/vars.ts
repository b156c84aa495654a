/**
 * `cairn vars HOST [VARIABLE]`: a host's merged variables (or one), each with the file:line it came from and
 * the settings it beat, as the variable manager (core/engine/variables.ts) layers them for a run.
 *
 * With a playbook (`--playbook FILE`, or the site's `site.yaml` in the current folder, the playbook
 * `cairn drift` also defaults to) the role defaults, play vars, vars_files and role vars of every play that
 * targets the host enter through the same `hostLayers` call the engine makes for a task; `--no-playbook`
 * reads the inventory and -e alone. Facts, registered values and task vars exist only during a run.
 */
import { existsSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  describeSetting,
  explainAll,
  explainVariable,
  hostLayers,
  hostvarsView,
  variablesView,
  type VarExplanation,
  type VarLayer,
} from '../core/engine/variables.js';
import { materialise } from '../core/engine/lazy-vars.js';
import type { Inventory } from '../core/inventory/types.js';
import type { Play, Playbook, Role } from '../core/playbook/types.js';
import { renderValue } from '../core/template/expr.js';
import { CairnError, formatLocation, inputError } from '../core/util/errors.js';
import type { Vars } from '../core/util/vars.js';
import { closestNames } from '../core/inventory/index.js';
import { SecretMasker } from '../app/report/mask.js';
import { defaultInventoryPath, openInventory, parseExtraVars, prepareVault } from '../app/run-inputs.js';
import { loadPlaybookFile } from '../app/playbook.js';

/** The playbook `cairn vars` reads when none is named: the site's, as `cairn drift` defaults to. */
export const DEFAULT_PLAYBOOK = 'site.yaml';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** One variable: `name = value  from FILE:LINE (layer)`, then one `beat ...` line per setting it overrode. */
export function formatExplanation(e: VarExplanation, show: (value: unknown) => string): string {
  const lines = [`${e.name} = ${show(e.value)}`, `    from ${describeSetting(e.from)}`];
  for (const b of e.beat) lines.push(`    beat ${describeSetting(b)}: ${show(b.value)}`);
  return lines.join('\n');
}

/**
 * Where a task of a play reads its variables: the play's own tasks (no role), or one role's tasks (with
 * that role's vars). The engine picks the same role for a task (`task.roleRef`).
 */
interface ReadingContext {
  label: string;
  layers: VarLayer[];
  role?: Role;
}

function contextsOf(inventory: Inventory, host: string, playbook: Playbook | undefined, extraVars: Vars) {
  if (!playbook) return [{ label: '', layers: hostLayers({ inventory, host, extraVars }) }];
  const contexts: ReadingContext[] = [];
  const where = (p: Play) => `play "${p.name}" (${formatLocation(shortLocation(p.location))})`;
  for (const play of playbook.plays) {
    if (!targets(inventory, play, host)) continue;
    const readers: Array<Role | undefined> = [...play.roles, ...(play.tasks.length ? [undefined] : [])];
    for (const role of readers) {
      contexts.push({
        label: `${where(play)}, ${role ? `role ${role.name}` : 'its tasks'}`,
        layers: hostLayers({ inventory, host, play, role, extraVars }),
        role,
      });
    }
  }
  if (!contexts.length)
    throw inputError(`host ${host} is in no play of ${playbook.path} (use --no-playbook for the inventory alone)`);
  return contexts;
}

function targets(inventory: Inventory, play: Play, host: string): boolean {
  try {
    return inventory.select(play.hosts).includes(host);
  } catch (err) {
    // A pattern naming a group this inventory lacks matches none of its hosts (a run says so at the play).
    if (err instanceof CairnError) return false;
    throw err;
  }
}

function shortLocation<T extends { file: string }>(where: T): T {
  const rel = relative(process.cwd(), where.file);
  return { ...where, file: rel.startsWith('..') ? where.file : rel };
}

/**
 * What a templated value renders to, as a task of that context would read it (the same lazy view the
 * engine builds), or why it cannot be known before the run (a fact, a registered value...).
 */
function rendered(
  ctx: ReadingContext,
  name: string,
  inventory: Inventory,
  host: string,
): { value: unknown } | { error: string } {
  const builtins: Vars = {
    hostvars: hostvarsView(inventory, () => undefined),
    cairn_check_mode: false,
    ansible_check_mode: false,
    role_name: ctx.role?.name ?? '',
    role_path: ctx.role?.dir,
  };
  const layers = [...ctx.layers, { layer: 'cairn built-ins', vars: builtins }];
  const view = variablesView(layers, (t, v, origin) => renderValue(t, v, origin), { file: `host ${host}` });
  try {
    return { value: materialise(view[name]) };
  } catch (err) {
    if (err instanceof CairnError) return { error: err.render().split('\n')[0]! };
    throw err;
  }
}

function hasTemplate(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('{{') || value.includes('{%');
  if (Array.isArray(value)) return value.some(hasTemplate);
  if (value !== null && typeof value === 'object') return Object.values(value).some(hasTemplate);
  return false;
}

export function registerVarsCommand(program: Command): void {
  program
    .command('vars <host> [variable]')
    .description("a host's merged variables (or one), with the file:line each came from and what it beat")
    .option('-i, --inventory <path>', "inventory file or folder (default: the lab's, inventories/lab/hosts.yaml)")
    .option(
      '-e, --extra-vars <vars>',
      'extra variables: key=value, a YAML/JSON mapping, or @file.yaml (repeatable)',
      collect,
    )
    .option(
      '--playbook <file>',
      `add the role defaults, play vars and role vars of the plays targeting the host (default: ./${DEFAULT_PLAYBOOK} when it exists)`,
    )
    .option('--no-playbook', 'read the inventory and -e only')
    .action(
      async (
        host: string,
        variable: string | undefined,
        opts: { inventory?: string; extraVars?: string[]; playbook?: string | false },
      ) => {
        await prepareVault(resolve(opts.inventory ?? defaultInventoryPath()), {});
        const inventory = openInventory(opts.inventory);
        if (!inventory.hosts.has(host)) {
          const near = closestNames(host, [...inventory.hosts.keys()]);
          throw inputError(
            `no host "${host}" in the inventory ${inventory.path}${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`,
          );
        }
        const playbookFile =
          opts.playbook === false
            ? undefined
            : (opts.playbook ?? (existsSync(DEFAULT_PLAYBOOK) ? DEFAULT_PLAYBOOK : undefined));
        // A playbook's tasks are checked against the module registry when it loads: fill it only then, so
        // `cairn vars` without a playbook loads no module code (test/integration/cli-lazy-load.test.ts).
        if (playbookFile !== undefined) await import('../core/modules/all.js');
        const playbook = playbookFile === undefined ? undefined : loadPlaybookFile(resolve(playbookFile));
        const masker = new SecretMasker();
        for (const secret of inventory.secretValues()) masker.add(secret);
        const show = (value: unknown) => masker.mask(JSON.stringify(value) ?? 'undefined');
        const extraVars = parseExtraVars(opts.extraVars);
        const contexts = contextsOf(inventory, host, playbook, extraVars);
        const describe = (ctx: ReadingContext, e: VarExplanation): string => {
          const text = formatExplanation(e, show);
          if (!hasTemplate(e.value)) return text;
          const r = rendered(ctx, e.name, inventory, host);
          return `${text}\n    ${'value' in r ? `renders to ${show(r.value)}` : `renders only in a run: ${r.error}`}`;
        };
        // Contexts that resolve alike are printed once, under the names of all of them (named unless every
        // task of the playbook reads the same).
        const groups = new Map<string, string[]>();
        for (const ctx of contexts) {
          const found = variable === undefined ? explainAll(ctx.layers) : [explainVariable(ctx.layers, variable)];
          const text = found
            .filter((e): e is VarExplanation => e !== undefined)
            .map((e) => describe(ctx, e))
            .join('\n');
          if (text !== '') groups.set(text, [...(groups.get(text) ?? []), ctx.label]);
        }
        if (!groups.size) {
          const read = playbook
            ? `the inventory, -e or ${relative(process.cwd(), playbook.path)}`
            : 'the inventory or -e';
          throw inputError(`host ${host} has no variable "${variable}" in ${read}`);
        }
        const out: string[] = [];
        for (const [text, labels] of groups) {
          if (labels.length < contexts.length) out.push(...labels.map((l) => `# in ${l}`));
          out.push(text);
        }
        process.stdout.write(`${out.join('\n')}\n`);
      },
    );
}
