/**
 * JSON Schema of the rollout checklist (rollout.yaml). Structure only: that each step names exactly one
 * kind, that ids are unique, that gates name steps of the right kind and that day ranges fit their phase are
 * checked after it (checklist.ts), with the same file:line:col errors.
 */

// Ids, day ranges and targets are strings here; their shape is checked in checklist.ts, whose messages say
// what is expected in words rather than as a regular expression.
const id = { type: 'string', minLength: 1 } as const;
const idList = { type: 'array', items: id, uniqueItems: true } as const;
/** "D1-D7", "D1–D7", "D22", "8-21". */
export const DAYS_PATTERN = '^\\s*D?(\\d{1,3})\\s*(?:(?:-|–|—|\\.\\.)\\s*D?(\\d{1,3}))?\\s*$';
const days = { type: 'string', minLength: 1 } as const;
const extraVars = { type: 'object' } as const;
const roles = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 } as const;

const text = { type: 'string', minLength: 1 } as const;
/** What a play step and a verify step both name: the playbook, a --limit, roles and extra variables. */
const playbookTarget = {
  playbook: text,
  limit: text,
  roles,
  extra_vars: extraVars,
} as const;

const playSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['playbook'],
  properties: { ...playbookTarget, check: { type: 'boolean' }, validate: { type: 'boolean' } },
} as const;

const verifySpec = {
  type: 'object',
  additionalProperties: false,
  required: ['playbook'],
  properties: playbookTarget,
} as const;

/** ">= 99.95", "<= 800", "== lb2"; also ≥ and ≤. */
export const TARGET_PATTERN = '^\\s*(>=|<=|==|>|<|≥|≤)\\s*(\\S.*?)\\s*$';

const drillSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', minLength: 1 },
    set: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
    targets: { type: 'object', additionalProperties: { type: ['string', 'number'] } },
    extra_vars: extraVars,
  },
} as const;

const endpoint = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'path'],
  properties: {
    host: { type: 'string', minLength: 1 },
    path: { type: 'string', pattern: '^/' },
    address: { type: 'string', minLength: 1 },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
  },
} as const;

const migrateSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'target'],
  properties: {
    source: endpoint,
    target: endpoint,
    dry_run: { type: 'boolean' },
    batches: {
      anyOf: [
        { type: 'integer', minimum: 1, maximum: 1000 },
        { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', minLength: 1 } },
      ],
    },
    checksum: { type: 'boolean' },
    delete: { type: 'boolean' },
    bwlimit_kib: { type: 'integer', minimum: 1 },
    exclude: { type: 'array', items: { type: 'string', minLength: 1 } },
  },
} as const;

const manualSpec = {
  anyOf: [
    { type: 'string', minLength: 1 },
    {
      type: 'object',
      additionalProperties: false,
      required: ['instructions'],
      properties: { instructions: { type: 'string', minLength: 1 } },
    },
  ],
} as const;

export const STEP_KINDS = ['play', 'verify', 'drill', 'migrate', 'manual'] as const;

const step = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    id,
    name: text,
    days,
    play: playSpec,
    verify: verifySpec,
    drill: drillSpec,
    migrate: migrateSpec,
    manual: manualSpec,
  },
} as const;

const gate = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    verifications: idList,
    drills: idList,
    signoffs: idList,
    steps: idList,
  },
} as const;

const phase = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'days', 'steps', 'gate'],
  properties: {
    id,
    name: text,
    days,
    steps: { type: 'array', minItems: 1, items: step },
    gate,
  },
} as const;

export const checklistSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['phases'],
  properties: {
    name: { type: 'string', minLength: 1 },
    inventory: { type: 'string', minLength: 1 },
    phases: { type: 'array', minItems: 1, items: phase },
  },
} as const;
