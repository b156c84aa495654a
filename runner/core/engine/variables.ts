/**
 * The variable manager: the ONE place where a host's variables are layered. Every consumer (task variables,
 * role schema validation, `hostvars`, connection settings, drills, `cairn vars`) asks for the layers here and
 * merges them with `mergeLayers`, so precedence is written down once (docs/variables.md lists the same order).
 *
 * Each layer keeps where its values came from, so `explainVariable` can say which file:line won and which
 * layers it beat.
 */
import { join } from 'node:path';
import { formatLocation, type SourceLocation } from '../util/errors.js';
import type { Inventory } from '../inventory/types.js';
import type { Play, Role, VarOrigins } from '../playbook/types.js';
import { isPlainObject, layerVars, type Vars } from '../util/vars.js';
import { ansibleFactView } from '../modules/ansible-facts.js';
import type { Facts } from '../modules/facts.js';
import { lazyVars } from './lazy-vars.js';

/** One source of variables. `layer` names the precedence level; `origin` says where a key was written. */
export interface VarLayer {
  layer: string;
  vars: Vars;
  origin?: (name: string) => SourceLocation | undefined;
}

/** The precedence levels, lowest first: the order `hostLayers` stacks them in (and docs/variables.md). */
export const LAYER_ORDER = [
  'role defaults',
  'inventory group vars',
  'inventory host vars',
  'inventory magic vars',
  'facts',
  'play vars',
  'role vars (vars/main.yml)',
  'role vars',
  'registered and set_fact',
  'task vars',
  'loop vars',
  'extra vars',
  'cairn built-ins',
] as const;
export type LayerName = (typeof LAYER_ORDER)[number];

/** What a host's variables are built from; a caller leaves out what it does not have (no play, no task). */
export interface HostVarsSources {
  inventory: Inventory;
  host: string;
  /** The host's inventory layers if already read (the engine reads them once per host). */
  inventoryLayers?: VarLayer[];
  play?: Play;
  /** The role whose task is running (its `vars:` from the play). */
  role?: Role;
  facts?: Record<string, unknown>;
  registered?: Vars;
  taskVars?: Vars;
  /** Where each key of `taskVars` is written (else the task's location). */
  taskVarOrigins?: VarOrigins;
  taskLocation?: SourceLocation;
  loopVars?: Vars;
  extraVars?: Vars;
  /** Values cairn computes per task (hostvars, check mode, role_name): always on top. */
  builtins?: Vars;
  /** Role defaults to put under everything when there is no play (drills read a role's defaults). */
  roleDefaults?: VarLayer[];
}

const at = (location: SourceLocation | undefined) => (location ? () => location : undefined);

/** Each key's own line when the loader recorded it, else `fallback` (a play built in code has no lines). */
function keyed(origins: VarOrigins | undefined, fallback: SourceLocation | undefined): VarLayer['origin'] {
  if (!origins) return at(fallback);
  return (name) => origins.get(name) ?? fallback;
}

/** Role defaults of a play's roles, each its own layer (a later role's default wins). */
export function roleDefaultLayers(play: Play): VarLayer[] {
  return play.roles.map((r) => ({
    layer: 'role defaults',
    vars: r.defaults,
    origin: keyed(r.defaultOrigins, { file: join(r.dir, 'defaults') }),
  }));
}

/** The inventory's layers of a host (group vars, host vars, magic vars) with their origins. */
export function inventoryLayers(inventory: Inventory, host: string): VarLayer[] {
  return inventory
    .varLayers(host)
    .map((l) => ({ layer: l.layer, vars: l.vars, origin: (name) => l.origins.get(name) }));
}

/** Where the engine keeps facts that modules other than setup returned (service_facts' `services`...). */
export const ANSIBLE_GATHERED = 'ansible_gathered';

const factVarsCache = new WeakMap<Record<string, unknown>, Vars>();

/**
 * The facts layer: cairn's tree as `facts`, Ansible's names as `ansible_facts.x` and (INJECT_FACTS_AS_VARS)
 * `ansible_x`. Facts another module returned (service_facts' `services`) are injected under the key the module
 * returned, as Ansible injects them, and under `ansible_facts` without an `ansible_` prefix
 * (lib/ansible/vars/manager.py: `namespace_facts` beside `clean_facts`): `services` and
 * `ansible_facts.services`. Computed once per gathered tree: hostLayers runs for every task.
 */
export function factVars(facts: Record<string, unknown>): Vars {
  const cached = factVarsCache.get(facts);
  if (cached) return cached;
  const { [ANSIBLE_GATHERED]: gathered, ...tree } = facts;
  const vars: Vars = { facts: tree };
  // A tree that is not what setup gathers (a test's partial facts) has no Ansible names of its own.
  const isTree = Array.isArray(tree.interfaces) && isPlainObject(tree.os) && isPlainObject(tree.memory);
  const setupView = isTree ? ansibleFactView(tree as unknown as Facts) : {};
  const returned = isPlainObject(gathered) ? gathered : {};
  const view: Vars = { ...setupView };
  for (const [key, value] of Object.entries(returned)) view[key.replace(/^ansible_/, '')] = value;
  vars.ansible_facts = isTree || isPlainObject(gathered) ? view : tree;
  for (const [key, value] of Object.entries(setupView)) vars[`ansible_${key}`] = value;
  for (const [key, value] of Object.entries(returned)) if (key !== 'facts') vars[key] = value;
  factVarsCache.set(facts, vars);
  return vars;
}

/** The host's layers, lowest precedence first (see LAYER_ORDER). */
export function hostLayers(src: HostVarsSources): VarLayer[] {
  const layers: VarLayer[] = [];
  const add = (layer: LayerName, vars: Vars | undefined, origin?: VarLayer['origin']) => {
    if (vars && Object.keys(vars).length) layers.push({ layer, vars, origin });
  };
  layers.push(...(src.roleDefaults ?? (src.play ? roleDefaultLayers(src.play) : [])));
  // A role brought in by import_role/include_role is not one of the play's roles: its defaults count for its tasks.
  if (src.role && src.play && !src.play.roles.includes(src.role))
    add('role defaults', src.role.defaults, at({ file: join(src.role.dir, 'defaults') }));
  if (src.inventoryLayers) layers.push(...src.inventoryLayers);
  else if (src.inventory.hosts.has(src.host)) layers.push(...inventoryLayers(src.inventory, src.host));
  if (src.facts) add('facts', factVars(src.facts), at({ file: `facts gathered from ${src.host}` }));
  add('play vars', src.play?.vars, keyed(src.play?.varOrigins, src.play?.location));
  const role = src.role;
  add(
    'role vars (vars/main.yml)',
    role?.roleVars,
    keyed(role?.roleVarOrigins, role && { file: join(role.dir, 'vars') }),
  );
  add('role vars', role?.vars, keyed(role?.varOrigins, src.play?.location));
  add('registered and set_fact', src.registered, at({ file: 'registered or set_fact during the run' }));
  add('task vars', src.taskVars, keyed(src.taskVarOrigins, src.taskLocation));
  add('loop vars', src.loopVars, at(src.taskLocation));
  add('extra vars', src.extraVars, at({ file: '-e (command line)' }));
  add('cairn built-ins', src.builtins);
  return layers;
}

/** Merge layers: a later layer wins, a mapping replaces the earlier mapping whole (hash_behaviour=replace). */
export function mergeLayers(layers: VarLayer[]): Vars {
  return layerVars(...layers.map((l) => l.vars));
}

/** The host's variables, merged. */
export function hostVariables(src: HostVarsSources): Vars {
  return mergeLayers(hostLayers(src));
}

/** Renders a template met in a variable's value; `origin` is where that variable is written. */
export type RenderVariable = (template: string, vars: Vars, origin: SourceLocation) => unknown;

/**
 * The layers merged as a task reads them: a value that is a template is rendered when it is read (lazyVars),
 * and an error inside it names the file:line:col where that variable was set (the winning layer's key), not
 * the task that happened to read it. `fallback` is used for a value with no recorded origin.
 */
export function variablesView(layers: VarLayer[], render: RenderVariable, fallback: SourceLocation): Vars {
  return lazyVars(mergeLayers(layers), (template, context, path) => {
    const name = path.split('.')[0]!;
    const origin = explainVariable(layers, name)?.from.location ?? fallback;
    return render(template, context, origin);
  });
}

/** What the run has learnt of a host so far (nothing, before it starts). */
export type RunState = (host: string) => { facts?: Record<string, unknown>; registered?: Vars } | undefined;

/** `hostvars`: every inventory host's variables (its inventory layers, facts and registered values, -e). */
export function hostvarsView(inventory: Inventory, state: RunState, extraVars?: Vars): Vars {
  return new Proxy({} as Vars, {
    get: (_t, key) => {
      if (typeof key !== 'string' || !inventory.hosts.has(key)) return undefined;
      const known = state(key);
      return hostVariables({ inventory, host: key, facts: known?.facts, registered: known?.registered, extraVars });
    },
    has: (_t, key) => typeof key === 'string' && inventory.hosts.has(key),
    ownKeys: () => [...inventory.hosts.keys()],
    getOwnPropertyDescriptor: (_t, key) =>
      typeof key === 'string' && inventory.hosts.has(key) ? { enumerable: true, configurable: true } : undefined,
  });
}

export interface VarSetting {
  layer: string;
  location?: SourceLocation;
  value: unknown;
}

/** Where a variable's value came from and the settings it beat (highest first). */
export interface VarExplanation {
  name: string;
  value: unknown;
  from: VarSetting;
  beat: VarSetting[];
}

export function explainVariable(layers: VarLayer[], name: string): VarExplanation | undefined {
  const settings: VarSetting[] = [];
  for (const l of layers) {
    if (!Object.prototype.hasOwnProperty.call(l.vars, name)) continue;
    settings.push({ layer: l.layer, location: l.origin?.(name), value: l.vars[name] });
  }
  if (!settings.length) return undefined;
  settings.reverse();
  return { name, value: settings[0]!.value, from: settings[0]!, beat: settings.slice(1) };
}

/** Every variable the layers set, by name. */
export function explainAll(layers: VarLayer[]): VarExplanation[] {
  const names = [...new Set(layers.flatMap((l) => Object.keys(l.vars)))].sort();
  return names.map((n) => explainVariable(layers, n)!);
}

/** "file:line:col (layer)" */
export function describeSetting(s: VarSetting): string {
  return `${s.location ? formatLocation(s.location) : '(no file)'} (${s.layer})`;
}
