/**
 * Ansible's behavioural variables (`ansible_*`) that cairn does and does not implement. A variable cairn
 * does not act on is never silently dropped: the run warns once per variable, naming the hosts or play it
 * was set for, so an `ansible_become_method: su` does not quietly run through sudo.
 */
import type { Play } from '../playbook/types.js';
import type { Vars } from '../util/vars.js';

/** A play's connection keywords as the variables they stand for (inventory variables still win). */
export function playConnectionVars(play: Play): Vars {
  const vars: Vars = {};
  if (play.remoteUser !== undefined) vars.ansible_user = play.remoteUser;
  if (play.connection !== undefined) vars.ansible_connection = play.connection;
  if (play.port !== undefined) vars.ansible_port = play.port;
  return vars;
}

/** Variables cairn acts on (connection-spec.ts and the engine read them). */
export const IMPLEMENTED_ANSIBLE_VARS = new Set([
  'ansible_host',
  'ansible_ssh_host',
  'ansible_port',
  'ansible_ssh_port',
  'ansible_user',
  'ansible_ssh_user',
  'ansible_password',
  'ansible_ssh_pass',
  'ansible_ssh_password',
  'ansible_ssh_private_key_file',
  'ansible_private_key_file',
  'ansible_connection',
  'ansible_become',
  'ansible_become_user',
  'ansible_timeout',
  'ansible_ssh_retries',
  'ansible_group_priority',
]);

/**
 * Variables that only steer parts of Ansible cairn does not have (a Python interpreter on the host), so they
 * change nothing in cairn by design; warning about them in every inventory would bury the warnings that
 * matter. docs/ansible-compat.md lists them.
 */
export const NOT_APPLICABLE_ANSIBLE_VARS = new Set(['ansible_python_interpreter']);

/** Variables cairn sets itself (read-only to playbooks); a playbook setting one is not an unknown setting. */
const MAGIC_ANSIBLE_VARS = new Set([
  'ansible_facts',
  'ansible_check_mode',
  'ansible_loop_var',
  'ansible_failed_task',
  'ansible_failed_result',
  'ansible_play_hosts',
  'ansible_play_batch',
  'ansible_version',
]);

/** Names of `ansible_*` variables in `vars` that cairn does not implement, sorted. */
export function unimplementedAnsibleVars(vars: Vars): string[] {
  return Object.keys(vars)
    .filter(
      (key) =>
        key.startsWith('ansible_') &&
        !IMPLEMENTED_ANSIBLE_VARS.has(key) &&
        !NOT_APPLICABLE_ANSIBLE_VARS.has(key) &&
        !MAGIC_ANSIBLE_VARS.has(key),
    )
    .sort();
}

/** Remembers what was already warned about, so each variable is reported once per run. */
export class AnsibleVarWarnings {
  private readonly warned = new Set<string>();

  constructor(private readonly warn: (message: string) => void) {}

  /** Warn about every unimplemented variable in `vars` not warned about yet; `where` says whose vars they are. */
  check(vars: Vars, where: string): void {
    for (const name of unimplementedAnsibleVars(vars)) {
      if (this.warned.has(name)) continue;
      this.warned.add(name);
      this.warn(
        `${name} (set for ${where}) is an Ansible variable cairn does not implement; it has no effect here (see docs/ansible-compat.md)`,
      );
    }
  }
}
