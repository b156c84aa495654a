/**
 * The module contract. A module is one file exporting a `Module`: `check` probes the host (one round trip
 * where possible) and returns the planned change and diff without changing anything; `apply` performs
 * exactly that plan. Check mode is structural: the check executor calls only `check`.
 */
import type { Connection } from '../transport/types.js';
import type { Vars } from '../util/vars.js';
import type { SourceLocation } from '../util/errors.js';

/** A before/after pair of a file's content, shown as a unified diff by `--diff`. */
export interface FileDiff {
  path: string;
  before: string;
  after: string;
  /** The file did not exist before / will not exist after. */
  beforeMissing?: boolean;
  afterMissing?: boolean;
  /** Attribute changes (owner, group, mode) in words, e.g. "mode 0644 -> 0600". */
  attributes?: string[];
}

export interface Planned<State = unknown> {
  /** Apply would change the host. */
  changed: boolean;
  /** What apply would do, in words, one line each ("install haproxy 2.6", "set net.core.somaxconn 4096 -> 1024"). */
  actions: string[];
  diffs?: FileDiff[];
  /** Module-private facts from the probe, handed to apply so it does not probe again. */
  state?: State;
  /**
   * Values a `register` receives in check mode (stat's result, an assert's outcome): read-only modules do
   * their whole job in `check`.
   */
  data?: Record<string, unknown>;
  /** The module cannot go on (missing source file, assertion false...). */
  failed?: string;
  /** Nothing to do on this host, with why ("skipped: read-only in a container"). */
  skipped?: string;
}

export interface ModuleResult {
  changed: boolean;
  failed?: boolean;
  msg?: string;
  diffs?: FileDiff[];
  skipped?: string;
  /** Registered under the task's `register` (rc, stdout, stderr, stat, status, ...). */
  data: Record<string, unknown>;
}

/** Everything a module may use on one host for one task. */
export interface ModuleContext {
  /** Inventory name of the host. */
  host: string;
  conn: Connection;
  /** Effective become for this task (sudo on the remote side). */
  become: boolean;
  becomeUser: string;
  /** The host's variables for this task (inventory, role, play, registered, facts, loop item). */
  vars: Vars;
  /** Gathered facts, if any (`facts` in vars too). */
  facts?: Record<string, unknown>;
  /** Find a task's local source file: `kind` folder of the current role, then the playbook's folder. */
  findLocalFile(kind: 'templates' | 'files', relativePath: string): string;
  /**
   * The playbook's folder on the controller: where a relative controller path a module writes to (fetch's
   * dest) resolves, as Ansible's path_dwim resolves it against the playbook's basedir.
   */
  playbookDir?: string;
  /** Render a Handlebars template file with the task's variables (strict; errors name file, line, variable). */
  renderTemplateFile(path: string, vars: Vars): string;
  /**
   * Evaluate a safe expression (`when` syntax) with the task's variables. `argPath` is where the expression
   * is written among the task's arguments (`['that', 1]`), so an error names that value's file:line:col.
   */
  evaluate(expression: string, vars: Vars, argPath?: ReadonlyArray<string | number>): unknown;
  /** Where the task is defined, for messages. */
  taskLocation?: SourceLocation;
  /** Abort long waits (wait_for, retries) when the run is interrupted. */
  signal?: AbortSignal;
  /**
   * Close this host's connection and open a new one (reboot, wait_for_connection): the new one is what later
   * tasks use too, so the run keeps one connection per host. Rejects (UnreachableError) when the host does
   * not answer within `connectTimeoutMs`; a later call tries again. Absent where no reconnect is possible.
   */
  reconnect?(opts?: { connectTimeoutMs?: number }): Promise<Connection>;
  /** The task runs over a local connection (no SSH): reboot refuses, as Ansible does. */
  local?: boolean;
}

/** add_host's request: the host, the groups to put it in, and variables for it (Ansible's add_host result). */
export interface AddHostRequest {
  kind: 'add_host';
  host: string;
  groups: string[];
  vars: Record<string, unknown>;
}

/** group_by's request: the task's host put into `group`, which is created under `parents` if new. */
export interface GroupByRequest {
  kind: 'group_by';
  group: string;
  parents: string[];
}

/** What an inventory action asks of the run's in-memory inventory. */
export type InventoryRequest = AddHostRequest | GroupByRequest;

export interface Module<Args = Record<string, unknown>, State = unknown> {
  name: string;
  /** JSON Schema for the module's arguments, checked (with file:line:col) when the playbook loads. */
  argsSchema: object;
  /**
   * Modules like command and shell take a free-form string (`command: ls -l /etc`); it arrives as this
   * argument (e.g. `cmd`).
   */
  freeFormArg?: string;
  /**
   * Ansible's argument aliases (alias -> the argument's name here: lineinfile's `dest` is `path`). The loader
   * renames them before the schema check, so a module only ever sees its own names.
   */
  argAliases?: Readonly<Record<string, string>>;
  /**
   * An Ansible module cairn knows by name but does not run (foreign.ts): the task loads (the loader warns
   * with this text) and fails with it when a host reaches it.
   */
  foreign?: string;
  /** Read-only modules (stat, assert, http, wait_for, facts) report `ok`, never `changed`. */
  readOnly?: boolean;
  /**
   * The module changes the run's in-memory inventory, not a host (add_host, group_by: Ansible's action
   * plugins with `_requires_connection = False`). The engine never connects for it: it asks this for the
   * request (from the rendered arguments; a bad name throws an input error at `where`), applies it to the
   * inventory and reports changed when the inventory changed, in check mode too (Ansible runs both there).
   */
  inventoryRequest?(args: Args, where?: SourceLocation): InventoryRequest;
  /** Ansible's BYPASS_HOST_LOOP (add_host): the task runs once per batch, on its first host, like run_once. */
  bypassHostLoop?: boolean;
  check(ctx: ModuleContext, args: Args): Promise<Planned<State>>;
  apply(ctx: ModuleContext, args: Args, plan: Planned<State>): Promise<ModuleResult>;
}

/**
 * A module with its argument type erased, as the engine stores it in the registry. `check` and `apply` are
 * declared as methods, so a `Module<CopyArgs>` is assignable here; the args were validated against
 * `argsSchema` before they reach the module.
 */
export type AnyModule = Module<any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- erased at the registry only
