/**
 * The JSON Schemas of an inventory file and of group_vars/host_vars files, and the inventory's own words
 * for their failures (a bad group or host name, each node's `description`). Validation itself is the shared
 * one (`validateAt` in ../util/schema.ts, one ajv instance); `validateShape` passes it these words and keeps
 * the shared wording (`describeAjvError`) for everything it does not say better itself.
 */
import type { ErrorObject } from 'ajv';
import {
  describeAjvError,
  describeValue,
  instancePathToYamlPath,
  validateAt,
  valueAt,
  type DescribedError,
} from '../util/schema.js';
import type { LoadedYaml, YamlPath } from '../util/yaml-source.js';

/** Group names: identifier-like, as Ansible recommends (dashes allowed). */
export const GROUP_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_-]*$';
/**
 * Host names: letters, digits, `_`, `.` and `-` (so FQDNs and IPv4 addresses work). Nothing that has a
 * meaning in a host pattern (`:` `,` `!` `&` `~` `*` `?` `[` `]`) or in a shell.
 */
export const HOST_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]*$';
/** Variable names: identifiers, so every variable can be written in a template. */
export const VAR_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

/** Variables cairn sets itself for every host; the inventory may not set them. */
export const MAGIC_VARIABLES = [
  'inventory_hostname',
  'inventory_hostname_short',
  'inventory_file',
  'inventory_dir',
  'group_names',
  'groups',
  'hostvars',
] as const;

const NAME_RULES: Record<string, string> = {
  'group name': 'letters, digits, "_" and "-", starting with a letter or "_"',
  'host name': 'letters, digits, "_", "." and "-", starting with a letter, digit or "_"',
  'variable name': 'letters, digits and "_", not starting with a digit',
};

/** A value that is a template is checked when it is rendered, not here. */
const TEMPLATE_STRING = { type: 'string', pattern: '\\{\\{' };

/**
 * Connection variables stay ordinary variables (the engine builds the ConnectionSpec from them); only their
 * types are checked here, so a typo like `ansible_port: 22a` points at its line instead of failing later.
 */
export const CONNECTION_VARIABLE_SCHEMAS: Record<string, object> = {
  ansible_host: { type: 'string', minLength: 1, description: 'a host name or address (a non-empty string)' },
  ansible_port: {
    anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, TEMPLATE_STRING],
    description: 'an integer from 1 to 65535',
  },
  ansible_user: { type: 'string', minLength: 1, description: 'a user name (a non-empty string)' },
  ansible_password: { type: 'string', description: 'a string' },
  ansible_ssh_private_key_file: { type: 'string', minLength: 1, description: 'a key file path (a non-empty string)' },
  ansible_private_key_file: { type: 'string', minLength: 1, description: 'a key file path (a non-empty string)' },
  ansible_connection: { anyOf: [{ enum: ['ssh', 'local'] }, TEMPLATE_STRING], description: '"ssh" or "local"' },
  // YAML 1.2 reads `yes` as a string; Ansible users write it anyway, and the engine reads it as true.
  ansible_become: {
    anyOf: [
      { type: 'boolean' },
      { type: 'string', pattern: '^([Yy]es|YES|[Nn]o|NO|[Tt]rue|TRUE|[Ff]alse|FALSE|[Oo]n|ON|[Oo]ff|OFF)$' },
      TEMPLATE_STRING,
    ],
    description: 'true or false (or yes/no, on/off)',
  },
  ansible_become_user: { type: 'string', minLength: 1, description: 'a user name (a non-empty string)' },
  ansible_timeout: {
    anyOf: [{ type: 'integer', minimum: 1 }, TEMPLATE_STRING],
    description: 'a whole number of seconds, at least 1',
  },
  cairn_jump: {
    anyOf: [
      { type: 'string', minLength: 1 },
      { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
    ],
    description: 'a jump host "[user@]host[:port]" (several separated by commas) or a list of them',
  },
  cairn_known_hosts: { type: 'string', minLength: 1, description: 'a known_hosts file path (a non-empty string)' },
};

function varsMapping(description: string): object {
  return {
    type: ['object', 'null'],
    description,
    propertyNames: { pattern: VAR_NAME_PATTERN, not: { enum: [...MAGIC_VARIABLES] }, description: 'variable name' },
    properties: CONNECTION_VARIABLE_SCHEMAS,
  };
}

/** A group_vars or host_vars file: a mapping of variables (an empty file is no variables). */
export const varsFileSchema: object = varsMapping('a mapping of variable names to values');

/** The Ansible YAML inventory shape: top-level keys are groups (`all` and any others). */
export const inventorySchema: object = {
  type: ['object', 'null'],
  description: 'a mapping of group names (all, web, ...) to groups',
  propertyNames: { pattern: GROUP_NAME_PATTERN, description: 'group name' },
  additionalProperties: { $ref: '#/$defs/group' },
  $defs: {
    group: {
      type: ['object', 'null'],
      description: 'a group: a mapping with hosts, vars and children (or empty)',
      properties: {
        hosts: {
          type: ['object', 'null'],
          description: 'a mapping of host names to their variables (not a list)',
          propertyNames: { pattern: HOST_NAME_PATTERN, description: 'host name' },
          additionalProperties: varsMapping('a mapping of variables, or empty'),
        },
        vars: varsMapping('a mapping of variable names to values'),
        children: {
          type: ['object', 'null'],
          description: 'a mapping of group names to groups (not a list)',
          propertyNames: { pattern: GROUP_NAME_PATTERN, description: 'group name' },
          additionalProperties: { $ref: '#/$defs/group' },
        },
      },
      additionalProperties: false,
    },
  },
};

function descriptionOf(err: ErrorObject): string | undefined {
  const parent = err.parentSchema as { description?: unknown } | undefined;
  return typeof parent?.description === 'string' ? parent.description : undefined;
}

function depth(err: ErrorObject): number {
  return err.instancePath.split('/').length;
}

/** The failure to report: a bad name first (the most specific), else the deepest, unknown keys preferred. */
function pickError(errors: ErrorObject[]): ErrorObject {
  const nameErrors = errors.filter((e) => e.propertyName !== undefined);
  if (nameErrors.length) return [...nameErrors].sort((a, b) => depth(b) - depth(a))[0]!;
  const score = (e: ErrorObject) =>
    depth(e) * 10 +
    (e.keyword === 'additionalProperties' ? 5 : 0) +
    (e.keyword === 'anyOf' || e.keyword === 'oneOf' ? -5 : 0);
  return [...errors].sort((a, b) => score(b) - score(a))[0]!;
}

function describe(errors: ErrorObject[], root: unknown, what: string, prefix: YamlPath): DescribedError {
  const err = pickError(errors);
  const localPath = instancePathToYamlPath(err.instancePath);
  const path = [...prefix, ...localPath];
  if (err.propertyName !== undefined) {
    const kind = descriptionOf(err) ?? 'name';
    const name = err.propertyName;
    if (err.keyword === 'not') {
      return {
        path: [...path, name],
        which: 'key',
        message: `"${name}" is set by cairn for every host; the inventory cannot set it`,
      };
    }
    const rule = NAME_RULES[kind];
    return {
      path: [...path, name],
      which: 'key',
      message: `invalid ${kind} ${JSON.stringify(name)}${rule ? ` (expected ${rule})` : ''}`,
    };
  }
  if (err.keyword !== 'additionalProperties') {
    // Among the failures at this node, the one whose schema says in words what is expected.
    const worded = errors.find(
      (e) => e.instancePath === err.instancePath && e.propertyName === undefined && descriptionOf(e) !== undefined,
    );
    if (worded) {
      const last = [...path].reverse().find((p) => typeof p === 'string');
      const subject = last !== undefined ? `"${String(last)}"` : 'the top level';
      return {
        path,
        which: 'value',
        message: `${subject} must be ${descriptionOf(worded)!}, got ${describeValue(valueAt(root, localPath), 'nothing')}`,
      };
    }
  }
  return describeAjvError(err, root, what, prefix);
}

/**
 * Validate `value` (sitting at `prefix` inside `loaded`) against one of the schemas above; throw one
 * CairnError naming file:line:col, with the source line and a caret.
 */
export function validateShape(
  loaded: LoadedYaml,
  schema: object,
  what: string,
  value: unknown = loaded.value,
  prefix: YamlPath = [],
): void {
  validateAt(loaded, schema, what, value, prefix, describe);
}
