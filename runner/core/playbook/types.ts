import type { SourceLocation } from '../util/errors.js';
import type { Vars } from '../util/vars.js';

/** Where each variable of a vars mapping is written (its key's file:line:col), for `cairn vars` and errors. */
export type VarOrigins = ReadonlyMap<string, SourceLocation>;

/** The file:line:col of the value at a path below some YAML node. */
export type ValueLocator = (path: ReadonlyArray<string | number>) => SourceLocation;

export interface Task {
  name: string;
  /** Module name (`copy`, `template`...). */
  module: string;
  args: Record<string, unknown>;
  when: string[];
  /**
   * Where each condition of `when` is written (same index): a role's, block's or include's conditions are
   * merged in front of the task's own when the playbook loads, each keeping its own file:line:col. Absent for
   * tasks built in code; the task's location stands in.
   */
  whenOrigins?: SourceLocation[];
  loop?: unknown;
  loopVar: string;
  register?: string;
  changedWhen?: string[] | boolean;
  failedWhen?: string[] | boolean;
  retries?: number;
  /** `retries: "{{ expr }}"`: rendered per host when the task runs; a whole number ≥ 0 then. */
  retriesTemplate?: string;
  until?: string[];
  delay?: number;
  /** `delay: "{{ expr }}"`: rendered per host when the task runs; a number of seconds ≥ 0 then. */
  delayTemplate?: string;
  /** `async`/`poll`: apply runs detached on the host, polled every pollSeconds, killed after seconds. */
  async?: { seconds: number; pollSeconds: number };
  notify: string[];
  tags: string[];
  become?: boolean;
  becomeUser?: string;
  runOnce: boolean;
  delegateTo?: string;
  /** `delegate_facts`: facts the task sets or gathers go to the delegated host, not the inventory host. */
  delegateFacts?: boolean;
  ignoreErrors: boolean;
  /** `ignore_errors: "{{ expr }}"`: rendered per host when the task runs (Ansible templates it then too). */
  ignoreErrorsTemplate?: string;
  /**
   * `environment` of the play, enclosing blocks and includes, and the task, outermost first: each a mapping or
   * a template rendering to one, merged in that order (inner names win) when the task runs.
   */
  environment?: unknown[];
  noLog: boolean;
  /**
   * `no_log: "{{ expr }}"`: rendered per host when the task runs. Until it has rendered false, noLog is true:
   * a value that cannot be decided is hidden, never shown.
   */
  noLogTemplate?: string;
  /** Force this task into check mode (true) or out of it (false), as Ansible's `check_mode`. */
  checkMode?: boolean;
  /** Role the task belongs to ('' for play-level tasks). */
  role: string;
  location: SourceLocation;
  /**
   * Where a value of the task is written (file:line:col of the YAML value), for errors found when it is
   * rendered: `locateArg(['dest'])` an argument (in the module's mapping, its `args:` or its free-form string),
   * `locate(['loop'])` a keyword. Absent for tasks built in code; the task's location stands in.
   */
  locateArg?: ValueLocator;
  locate?: ValueLocator;
  /** Variables set on the task itself (`vars:`), with an enclosing block's or include's under them. */
  vars?: Vars;
  /** Where each key of `vars` is written. */
  varOrigins?: VarOrigins;
  /** Handlers only: extra names this handler answers to (Ansible's `listen`). */
  listen: string[];
  /** The role instance the task belongs to (a role listed twice with different parameters runs twice). */
  roleRef?: Role;
  /** The keywords written on the task itself (so play-level defaults fill only the others). */
  keywords?: string[];
  /** Ansible's ignore_unreachable: an unreachable host does not end the host's play. */
  ignoreUnreachable?: boolean;
  /** How `loop`/`with_*` turns its value into items (Ansible's lookup behind each `with_` word). */
  loopKind?: LoopKind;
  /** loop_control besides loop_var. */
  loopControl?: LoopControl;
  /** module 'block': Ansible's block/rescue/always, run in place of a module. */
  block?: BlockSpec;
  /** module 'include_tasks' / 'include_role': tasks decided when the task runs (a loop, or a templated name). */
  include?: IncludeSpec;
}

/** `loop` takes a list as it is; each `with_X` is Ansible's lookup X (lib/ansible/plugins/lookup/X.py). */
export type LoopKind =
  | 'loop'
  | 'items'
  | 'list'
  | 'dict'
  | 'together'
  | 'first_found'
  | 'fileglob'
  | 'sequence'
  | 'nested'
  | 'cartesian'
  | 'subelements'
  | 'indexed_items'
  | 'flattened';

export interface LoopControl {
  indexVar?: string;
  label?: string;
  pause?: number;
  extended?: boolean;
}

export interface BlockSpec {
  block: Task[];
  rescue: Task[];
  always: Task[];
}

/**
 * A dynamic include. `tasks` is set when the file is known when the playbook loads (loaded then, so its errors
 * are found by --syntax-check); otherwise `file` is a template rendered per host and loaded at run time.
 */
export interface IncludeSpec {
  kind: 'tasks' | 'role' | 'vars';
  /** include_tasks: the file's name (may hold `{{ }}`); include_role: the role's name. */
  file: string;
  /** include_role's tasks_from / vars_from / defaults_from / handlers_from. */
  tasksFrom?: string;
  varsFrom?: string;
  defaultsFrom?: string;
  /** The folder the name is relative to (the including file's folder), and the playbook's folder. */
  baseDir: string;
  playbookDir: string;
  /** Loaded when the file name is not templated. */
  tasks?: Task[];
  role?: Role;
  /** Keywords of the include applied to each included task (include_role's `apply`, tags). */
  tags: string[];
}

export interface Role {
  name: string;
  dir: string;
  defaults: Vars;
  tasks: Task[];
  handlers: Task[];
  verify: Task[];
  dependencies: string[];
  /** JSON Schema for the role's variables, if the role has schema.json. */
  schema?: object;
  /** Tags every task of the role carries (from the play's role entry). */
  tags: string[];
  /** Variables given with the role in the play (`- role: x, vars: {...}`, and role parameters beside `role:`). */
  vars: Vars;
  /** The role's own vars/main.yml (Ansible's role vars: above inventory and play vars). */
  roleVars: Vars;
  /** Where each key of `defaults`, `roleVars` and `vars` is written. */
  defaultOrigins?: VarOrigins;
  roleVarOrigins?: VarOrigins;
  varOrigins?: VarOrigins;
  /** Where the role was found: "the playbook's roles/", "roles_path", "built-in", ... (-v prints it). */
  origin: string;
  /** Ansible's allow_duplicates in meta/main.yml: listed twice with the same parameters, it still runs twice. */
  allowDuplicates: boolean;
}

export type Strategy = 'free' | 'linear';

export interface Play {
  name: string;
  hosts: string;
  /** Where the `hosts:` value is written (absent for ad hoc runs): an unmatched pattern is reported there. */
  hostsLocation?: SourceLocation;
  /** Roles in run order, dependencies first, each once. */
  roles: Role[];
  /** Play-level tasks, run after the roles (as Ansible's `tasks:`). */
  tasks: Task[];
  handlers: Task[];
  /** `vars:` of the play, then its vars_files (a later file wins), under the vars of an import_playbook. */
  vars: Vars;
  /** Where each key of `vars` is written (its own line in the play or in the vars file that won). */
  varOrigins?: VarOrigins;
  /** Batch sizes: numbers of hosts or percentages ("30%"); the last one repeats. Empty = all at once. */
  serial: Array<number | string>;
  maxFailPercentage?: number;
  anyErrorsFatal: boolean;
  strategy: Strategy;
  gatherFacts: boolean;
  become?: boolean;
  becomeUser?: string;
  /** Connection keywords of the play; inventory variables (ansible_user, ...) win over them, as in Ansible. */
  remoteUser?: string;
  connection?: string;
  port?: number;
  /** vars_prompt entries, answered from -e, a prompt on a TTY, or their default before the run. */
  varsPrompt?: Array<{ name: string; prompt: string; default?: unknown; private: boolean }>;
  tags: string[];
  location: SourceLocation;
}

export interface Playbook {
  path: string;
  dir: string;
  plays: Play[];
  /** Ansible constructs read but not acted on, each with where it is written (printed before the run). */
  warnings?: string[];
}
