/** JSON Schemas for playbooks, plays, tasks and role files. Module arguments have their own schemas. */

const stringList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] };
const condition = { anyOf: [{ type: 'string' }, { type: 'boolean' }, { type: 'array', items: { type: ['string', 'boolean'] } }] };

/** Keywords a task may carry besides its one module key. */
export const taskKeywordSchemas: Record<string, object> = {
  name: { type: 'string' },
  when: condition,
  loop: {},
  with_items: {},
  loop_control: {
    type: 'object',
    additionalProperties: false,
    properties: { loop_var: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }, label: { type: 'string' }, pause: { type: 'number' } },
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
  ignore_errors: { type: ['boolean', 'string'] },
  no_log: { type: ['boolean', 'string'] },
  check_mode: { type: ['boolean', 'string'] },
  vars: { type: 'object' },
  args: { type: 'object' },
};

export const TASK_KEYWORDS = new Set(Object.keys(taskKeywordSchemas));

export const taskListSchema = {
  anyOf: [{ type: 'null' }, { type: 'array', items: { type: 'object' } }],
};

const roleRef = {
  anyOf: [
    { type: 'string' },
    {
      type: 'object',
      required: ['role'],
      additionalProperties: false,
      properties: { role: { type: 'string' }, name: { type: 'string' }, vars: { type: 'object' }, tags: stringList, when: condition },
    },
  ],
};

export const playSchema = {
  type: 'object',
  required: ['hosts'],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    hosts: { type: 'string', minLength: 1 },
    roles: { type: 'array', items: roleRef },
    tasks: taskListSchema,
    pre_tasks: taskListSchema,
    post_tasks: taskListSchema,
    handlers: taskListSchema,
    vars: { anyOf: [{ type: 'object' }, { type: 'null' }] },
    vars_files: { type: 'array', items: { type: 'string' } },
    serial: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^\\d+%?$' }, { type: 'array', minItems: 1, items: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^\\d+%?$' }] } }] },
    max_fail_percentage: { type: 'number', minimum: 0, maximum: 100 },
    any_errors_fatal: { type: 'boolean' },
    strategy: { enum: ['free', 'linear'] },
    gather_facts: { type: 'boolean' },
    become: { type: 'boolean' },
    become_user: { type: 'string' },
    tags: stringList,
    verify: { type: 'boolean' },
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
        platforms: { type: 'array' },
      },
    },
  ],
};

export const defaultsSchema = { anyOf: [{ type: 'null' }, { type: 'object' }] };
