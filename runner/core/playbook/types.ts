import type { SourceLocation } from '../util/errors.js';
import type { Vars } from '../util/vars.js';

export interface Task {
  name: string;
  /** Module name (`copy`, `template`...). */
  module: string;
  args: Record<string, unknown>;
  when: string[];
  loop?: unknown;
  loopVar: string;
  register?: string;
  changedWhen?: string[] | boolean;
  failedWhen?: string[] | boolean;
  retries?: number;
  until?: string[];
  delay?: number;
  notify: string[];
  tags: string[];
  become?: boolean;
  becomeUser?: string;
  runOnce: boolean;
  delegateTo?: string;
  ignoreErrors: boolean;
  noLog: boolean;
  /** Force this task into check mode (true) or out of it (false), as Ansible's `check_mode`. */
  checkMode?: boolean;
  /** Role the task belongs to ('' for play-level tasks). */
  role: string;
  location: SourceLocation;
  /** Variables set on the task itself (`vars:`). */
  vars?: Vars;
  /** Handlers only: extra names this handler answers to (Ansible's `listen`). */
  listen: string[];
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
  /** Variables given with the role in the play (`- role: x, vars: {...}`). */
  vars: Vars;
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
  vars: Vars;
  /** Batch sizes: numbers of hosts or percentages ("30%"); the last one repeats. Empty = all at once. */
  serial: Array<number | string>;
  maxFailPercentage?: number;
  anyErrorsFatal: boolean;
  strategy: Strategy;
  gatherFacts: boolean;
  become?: boolean;
  becomeUser?: string;
  tags: string[];
  location: SourceLocation;
}

export interface Playbook {
  path: string;
  dir: string;
  plays: Play[];
}
