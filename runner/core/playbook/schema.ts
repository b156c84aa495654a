/** JSON Schemas for playbooks, plays, tasks and role files. Module arguments have their own schemas. */
import { PLAY_KEYWORDS_WARNED } from './ansible-keywords.js';

const stringList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const condition = {
  anyOf: [{ type: 'string' }, { type: 'boolean' }, { type: 'array', items: { type: ['string', 'boolean'] } }],
};

/** Keywords a task may carry besides its one module key. */
/**
 * Ansible's `environment` keyword: a mapping of variable names to values, or a template that renders to one
 * (`environment: "{{ proxy_env }}"`). The names are checked when it is rendered (engine).
 */
const environmentSchema = {
  anyOf: [
    { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'null'] } },
    { type: 'string', pattern: '\\{\\{' },
  ],
};

export const taskKeywordSchemas: Record<string, object> = {
  name: { type: 'string' },
  when: condition,
  loop: {},
  with_items: {},
  loop_control: {
    type: 'object',
    additionalProperties: false,
    properties: {
      loop_var: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
      index_var: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
      label: { type: 'string' },
      pause: { type: 'number', minimum: 0 },
      extended: { type: ['boolean', 'string'] },
      extended_allitems: { type: ['boolean', 'string'] },
    },
  },
  register: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  changed_when: condition,
  failed_when: condition,
  retries: { type: ['integer', 'string'] },
  until: condition,
  delay: { type: ['number', 'string'] },
  notify: stringList,
  listen: stringList,
  tags: stringList,
  become: { type: ['boolean', 'string'] },
  become_user: { type: 'string' },
  run_once: { type: ['boolean', 'string'] },
  delegate_to: { type: 'string' },
  delegate_facts: { type: ['boolean', 'string'] },
  ignore_errors: { type: ['boolean', 'string'] },
  environment: environmentSchema,
  no_log: { type: ['boolean', 'string'] },
  check_mode: { type: ['boolean', 'string'] },
  vars: { type: 'object' },
  args: { type: 'object' },
  ignore_unreachable: { type: ['boolean', 'string'] },
  async: { type: ['integer', 'string'] },
  poll: { type: ['integer', 'string'] },
};

/**
 * Task keywords of Ansible that cairn refuses by name, with what to do instead (issue 12 item 7): each would
 * change what a task does, so running without it would be wrong.
 */
export const TASK_KEYWORDS_UNSUPPORTED: Record<string, string> = {
  become_method: 'cairn becomes with sudo only (leave become_method out)',
  remote_user: 'set ansible_user for the host in the inventory, or remote_user on the play',
  connection: 'set ansible_connection for the host in the inventory, or connection on the play',
  throttle: 'use serial on the play or --forks',
  debugger: 'cairn has no task debugger',
  module_defaults: 'give the arguments on each task',
};

export const TASK_KEYWORDS = new Set(Object.keys(taskKeywordSchemas));

export const taskListSchema = {
  anyOf: [{ type: 'null' }, { type: 'array', items: { type: 'object' } }],
};

/** A role entry: `- name` or a mapping with `role:` (or `name:`); keys that are not keywords are role parameters. */
const roleRef = {
  anyOf: [
    { type: 'string' },
    {
      type: 'object',
      properties: {
        role: { type: 'string' },
        name: { type: 'string' },
        vars: { type: 'object' },
        tags: stringList,
        when: condition,
      },
    },
  ],
};

const boolish = { type: ['boolean', 'string', 'integer'] };

export const playSchema = {
  type: 'object',
  required: ['hosts'],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    hosts: {
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      ],
    },
    become_method: { type: 'string' },
    remote_user: { type: 'string' },
    connection: { type: 'string' },
    port: { type: ['integer', 'string'] },
    ignore_errors: boolish,
    ignore_unreachable: boolish,
    no_log: boolish,
    check_mode: boolish,
    run_once: boolish,
    collections: stringList,
    environment: environmentSchema,
    vars_prompt: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: {
          name: { type: 'string' },
          prompt: { type: 'string' },
          private: boolish,
          confirm: boolish,
          encrypt: { type: 'string' },
          salt_size: { type: 'integer' },
          unsafe: boolish,
        },
      },
    },
    roles: { type: 'array', items: roleRef },
    tasks: taskListSchema,
    pre_tasks: taskListSchema,
    post_tasks: taskListSchema,
    handlers: taskListSchema,
    vars: { anyOf: [{ type: 'object' }, { type: 'null' }] },
    vars_files: {
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } },
      ],
    },
    serial: {
      anyOf: [
        { type: 'integer', minimum: 1 },
        { type: 'string', pattern: '^\\d+%?$' },
        {
          type: 'array',
          minItems: 1,
          items: {
            anyOf: [
              { type: 'integer', minimum: 1 },
              { type: 'string', pattern: '^\\d+%?$' },
            ],
          },
        },
      ],
    },
    max_fail_percentage: { type: 'number', minimum: 0, maximum: 100 },
    any_errors_fatal: boolish,
    strategy: { enum: ['free', 'linear', 'host_pinned'] },
    gather_facts: boolish,
    become: boolish,
    become_user: { type: 'string' },
    tags: stringList,
    verify: boolish,
    // Ansible's play keywords cairn reads but does not act on: accepted, and warned about by the loader.
    ...Object.fromEntries(Object.keys(PLAY_KEYWORDS_WARNED).map((k) => [k, {}])),
  },
};

export const playbookSchema = { type: 'array', minItems: 1, items: { type: 'object' } };

export const metaSchema = {
  anyOf: [
    { type: 'null' },
    {
      type: 'object',
      additionalProperties: false,
      properties: {
        dependencies: { type: 'array', items: roleRef },
        description: { type: 'string' },
        galaxy_info: { type: 'object' },
        allow_duplicates: { type: ['boolean', 'string'] },
        collections: stringList,
        platforms: { type: 'array' },
      },
    },
  ],
};

export const defaultsSchema = { anyOf: [{ type: 'null' }, { type: 'object' }] };
