/**
 * `cairn vars HOST [VARIABLE]`: a host's merged variables (or one), each with the file:line it came from and
 * the settings it beat, as the variable manager (core/engine/variables.ts) layers them. Reads the inventory
 * and -e only (no connection, no playbook): facts, play and task variables are not known before a run.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import {
  describeSetting,
  explainAll,
  explainVariable,
  hostLayers,
  type VarExplanation,
} from '../core/engine/variables.js';
import { inputError } from '../core/util/errors.js';
import { closestNames } from '../core/inventory/index.js';
import { SecretMasker } from '../app/report/mask.js';
import { defaultInventoryPath, openInventory, parseExtraVars, prepareVault } from '../app/run-inputs.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** One variable: `name = value  from FILE:LINE (layer)`, then one `beat ...` line per setting it overrode. */
export function formatExplanation(e: VarExplanation, show: (value: unknown) => string): string {
  const lines = [`${e.name} = ${show(e.value)}`, `    from ${describeSetting(e.from)}`];
  for (const b of e.beat) lines.push(`    beat ${describeSetting(b)}: ${show(b.value)}`);
  return lines.join('\n');
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
    .action(async (host: string, variable: string | undefined, opts: { inventory?: string; extraVars?: string[] }) => {
      await prepareVault(resolve(opts.inventory ?? defaultInventoryPath()), {});
      const inventory = openInventory(opts.inventory);
      if (!inventory.hosts.has(host)) {
        const near = closestNames(host, [...inventory.hosts.keys()]);
        throw inputError(
          `no host "${host}" in the inventory ${inventory.path}${near.length ? ` (did you mean ${near.join(', ')}?)` : ''}`,
        );
      }
      const masker = new SecretMasker();
      for (const secret of inventory.secretValues()) masker.add(secret);
      const show = (value: unknown) => masker.mask(JSON.stringify(value) ?? 'undefined');
      const layers = hostLayers({ inventory, host, extraVars: parseExtraVars(opts.extraVars) });
      if (variable !== undefined) {
        const one = explainVariable(layers, variable);
        if (!one) throw inputError(`host ${host} has no variable "${variable}" in the inventory or -e`);
        process.stdout.write(`${formatExplanation(one, show)}\n`);
        return;
      }
      for (const e of explainAll(layers)) process.stdout.write(`${formatExplanation(e, show)}\n`);
    });
}
