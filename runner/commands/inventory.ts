/**
 * `cairn inventory --list | --graph | --host NAME`: the inventory as ansible-inventory prints it (the same
 * JSON shape and key order, the same graph), so the two can be compared line for line.
 */
import type { Command } from 'commander';
import { optionsError } from '../core/util/errors.js';
import type { Inventory } from '../core/inventory/types.js';
import { isPlainObject, type Vars } from '../core/util/vars.js';
import {
  configureAnsibleVault,
  defaultInventoryPath,
  openInventory,
  prepareVault,
  type CommonRunOptions,
} from '../app/run-inputs.js';
import { resolve } from 'node:path';

/** Variables cairn adds for templates that are not inventory variables (ansible-inventory leaves them out). */
const MAGIC = new Set([
  'inventory_hostname',
  'inventory_hostname_short',
  'inventory_file',
  'inventory_dir',
  'group_names',
  'groups',
  'ansible_group_priority',
]);

/** A host's inventory variables as ansible-inventory shows them. */
export function inventoryHostVars(inventory: Inventory, host: string): Vars {
  const vars = inventory.hostVars(host);
  return Object.fromEntries(Object.entries(vars).filter(([k]) => !MAGIC.has(k)));
}

/** Python's json.dumps(sort_keys=True, indent=4): keys sorted at every level, lists in order. */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isPlainObject(value)) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys(value[k])]),
    );
  }
  return value;
}

/** Children of a group in Ansible's order: `ungrouped` first under `all`, then as the groups were defined. */
function childrenOf(inventory: Inventory, group: string): string[] {
  const children = [...(inventory.groups.get(group)?.children ?? [])];
  if (group !== 'all') return children;
  return [...children.filter((c) => c === 'ungrouped'), ...children.filter((c) => c !== 'ungrouped')];
}

export function inventoryList(inventory: Inventory): Record<string, unknown> {
  const hostvars: Record<string, Vars> = {};
  for (const host of inventory.hosts.keys()) {
    const vars = inventoryHostVars(inventory, host);
    if (Object.keys(vars).length) hostvars[host] = vars;
  }
  const out: Record<string, unknown> = { _meta: { hostvars } };
  for (const [name, group] of inventory.groups) {
    const entry: Record<string, unknown> = {};
    const children = childrenOf(inventory, name);
    if (children.length) entry.children = children;
    if (name !== 'all' && group.hosts.length) entry.hosts = group.hosts;
    // ansible-inventory leaves out a group with neither hosts nor children (it still appears as a child).
    if (name !== 'all' && !Object.keys(entry).length) continue;
    out[name] = entry;
  }
  return sortKeys(out) as Record<string, unknown>;
}

export function inventoryGraph(inventory: Inventory, root = 'all'): string {
  const lines: string[] = [];
  const walk = (group: string, depth: number) => {
    const pad = depth === 0 ? '' : `${'  |'.repeat(depth)}--`;
    lines.push(`${pad}@${group}:`);
    for (const child of childrenOf(inventory, group)) walk(child, depth + 1);
    for (const host of group === 'all' ? [] : (inventory.groups.get(group)?.hosts ?? []))
      lines.push(`${'  |'.repeat(depth + 1)}--${host}`);
  };
  if (!inventory.groups.has(root)) throw optionsError(`--graph: no group "${root}" in the inventory`);
  walk(root, 0);
  return lines.join('\n') + '\n';
}

export function registerInventoryCommand(program: Command): void {
  program
    .command('inventory')
    .description('show the inventory as ansible-inventory does: --list (JSON), --graph [GROUP], --host NAME')
    .option('-i, --inventory <path>', "inventory file, folder or host list (default: the lab's)")
    .option('--list', "every group and host, with each host's variables, as JSON")
    .option('--graph [group]', 'the group tree')
    .option('--host <name>', "one host's variables, as JSON")
    .option('--vault-password-file <file>', 'Ansible Vault password file')
    .option(
      '--vault-id <[label@]file>',
      'Ansible Vault password file with its vault id (repeatable)',
      (v: string, p: string[] = []) => [...p, v],
    )
    .action(async (opts: CommonRunOptions & { list?: boolean; graph?: string | boolean; host?: string }) => {
      const modes = [opts.list, opts.graph, opts.host].filter((m) => m !== undefined && m !== false).length;
      if (modes !== 1) throw optionsError('give one of --list, --graph or --host NAME');
      configureAnsibleVault(opts);
      if (!opts.inventory?.includes(',')) await prepareVault(resolve(opts.inventory ?? defaultInventoryPath()), opts);
      const inventory = openInventory(opts.inventory);
      if (opts.list) process.stdout.write(JSON.stringify(inventoryList(inventory), null, 4) + '\n');
      else if (opts.graph !== undefined)
        process.stdout.write(inventoryGraph(inventory, typeof opts.graph === 'string' ? opts.graph : 'all'));
      else {
        if (!inventory.hosts.has(opts.host!)) throw optionsError(`--host: no host "${opts.host}" in the inventory`);
        process.stdout.write(JSON.stringify(sortKeys(inventoryHostVars(inventory, opts.host!)), null, 4) + '\n');
      }
    });
}
