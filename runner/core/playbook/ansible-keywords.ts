/**
 * Ansible's spellings that cairn reads the same way: booleans in keywords (`become: yes`, `"True"`, `1`),
 * fully qualified module names (`ansible.builtin.copy`), and the play keywords Ansible has that cairn
 * implements, accepts as meaning nothing here, or refuses with a clear word.
 */

/** Ansible's boolean() (module_utils/parsing/convert_bool): these strings, compared in lower case. */
const TRUE_WORDS = new Set(['y', 'yes', 'on', '1', 'true', 't']);
const FALSE_WORDS = new Set(['n', 'no', 'off', '0', 'false', 'f']);

/**
 * A keyword's boolean as Ansible reads it: true/false, 1/0, or one of Ansible's boolean words in any case.
 * undefined when the value is none of them (the caller reports it at its file:line:col).
 */
export function ansibleBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value !== 'string') return undefined;
  const word = value.trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}

/** JSON Schema of a boolean keyword as Ansible takes it (the exact words are checked by ansibleBool). */
export const boolishSchema = { type: ['boolean', 'string', 'integer'] };

/**
 * Collections whose modules cairn has under the same short name. `ansible.builtin.copy`, `ansible.legacy.copy`
 * and `copy` are one module; `ansible.posix.sysctl`, `community.general.*` the same when cairn has it.
 */
const COLLECTION_PREFIXES = [
  'ansible.builtin.',
  'ansible.legacy.',
  'ansible.posix.',
  'community.general.',
  'community.crypto.',
];

/** The short module name for a fully qualified one (unchanged when it is not qualified). */
export function shortModuleName(name: string): string {
  for (const prefix of COLLECTION_PREFIXES) if (name.startsWith(prefix)) return name.slice(prefix.length);
  return name;
}

/** A name written as `namespace.collection.module`. */
export function isQualifiedName(name: string): boolean {
  return /^[a-z0-9_]+\.[a-z0-9_]+\.[A-Za-z0-9_]+$/.test(name);
}

/**
 * Play keywords of Ansible that cairn accepts but that change nothing in how cairn runs: each is reported
 * as a warning naming it (never silently dropped), with what cairn does instead.
 */
export const PLAY_KEYWORDS_WARNED: Record<string, string> = {
  gather_subset: 'cairn gathers one fixed set of facts',
  gather_timeout: 'cairn gathers one fixed set of facts',
  fact_path: 'cairn reads no local facts (facts.d)',
  order: 'cairn runs hosts in inventory order',
  debugger: 'cairn has no task debugger',
  throttle: 'use --forks or serial',
  timeout: 'cairn has no per-task timeout',
  force_handlers: 'handlers run only on hosts that did not fail',
  module_defaults: 'give the arguments on each task',
  diff: 'use --diff',
  become_exe: 'cairn becomes with sudo',
  become_flags: 'cairn becomes with sudo -n',
};

/** Play keywords cairn acts on (schema.ts validates their shapes). */
export const PLAY_KEYWORDS_IMPLEMENTED = [
  'name',
  'hosts',
  'roles',
  'tasks',
  'pre_tasks',
  'post_tasks',
  'handlers',
  'vars',
  'vars_files',
  'vars_prompt',
  'serial',
  'max_fail_percentage',
  'any_errors_fatal',
  'strategy',
  'gather_facts',
  'become',
  'become_user',
  'become_method',
  'remote_user',
  'connection',
  'port',
  'ignore_errors',
  'ignore_unreachable',
  'no_log',
  'check_mode',
  'run_once',
  'collections',
  'tags',
  'verify',
  'environment',
];
