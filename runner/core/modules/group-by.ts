/**
 * group_by: the task's host put into a group named from its variables, for the plays that follow (Ansible's
 * lib/ansible/plugins/action/group_by.py computes the request; lib/ansible/inventory/manager.py
 * add_dynamic_group applies it). It touches no host: the engine runs it without a connection, per host, in
 * check mode too. Ansible reports it ok (add_dynamic_group never sets `changed`), and so does cairn.
 */
import { inputError, type SourceLocation } from '../util/errors.js';
import { DYNAMIC_GROUP_PATTERN } from './add-host.js';
import type { GroupByRequest, Module, Planned } from './types.js';

export interface GroupByArgs {
  key: string;
  parents?: string | string[];
}

export const groupByArgsSchema = {
  type: 'object',
  required: ['key'],
  additionalProperties: false,
  properties: {
    key: { type: 'string', minLength: 1, description: 'the group name (usually built from a variable)' },
    parents: {
      anyOf: [
        { type: 'string', minLength: 1 },
        { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      ],
      description: 'a parent group name or a list of them',
    },
  },
} as const;

/** What group_by's (rendered, validated) arguments ask; as group_by.py, every space becomes "-". */
export function groupByRequest(args: GroupByArgs, where?: SourceLocation): GroupByRequest {
  const dashed = (name: string) => name.replaceAll(' ', '-');
  const group = dashed(args.key);
  const parents = (args.parents === undefined ? ['all'] : [args.parents].flat()).map(dashed);
  for (const name of [group, ...parents]) {
    if (!DYNAMIC_GROUP_PATTERN.test(name))
      throw inputError(
        `group_by: group name ${JSON.stringify(name)} must be letters, digits, "_", "." and "-" ` +
          '(spaces become "-")',
        where,
      );
  }
  return { kind: 'group_by', group, parents };
}

function planOf(args: GroupByArgs): Planned {
  const request = groupByRequest(args);
  return {
    changed: false,
    actions: [`add the host to group ${request.group}`],
    data: { add_group: request.group, parent_groups: request.parents },
  };
}

export const groupByModule: Module<GroupByArgs> = {
  name: 'group_by',
  argsSchema: groupByArgsSchema,
  inventoryRequest: (args, where) => groupByRequest(args, where),
  // The engine never sends group_by to a host; the plan is what Ansible's action plugin returns.
  check: (_ctx, args) => Promise.resolve(planOf(args)),
  apply: (_ctx, _args, plan) => Promise.resolve({ changed: false, data: plan.data ?? {} }),
};
