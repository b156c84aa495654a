/** debug: show a message or a variable, with no remote call. Read-only. */
import { errorMessage } from './remote.js';
import type { Module, Planned } from './types.js';

export interface DebugArgs {
  msg?: unknown;
  var?: string;
  verbosity?: number;
}

export const NOT_DEFINED = 'VARIABLE IS NOT DEFINED!';

export const debugModule: Module<DebugArgs> = {
  name: 'debug',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      msg: {},
      var: { type: 'string', minLength: 1 },
      verbosity: { type: 'integer', minimum: 0 },
    },
  },

  check(ctx, args): Promise<Planned> {
    if (args.var !== undefined) {
      let value: unknown;
      try {
        value = ctx.evaluate(args.var, ctx.vars);
      } catch (err) {
        // An undefined variable is shown, as Ansible does, rather than failing the task.
        value = /undefined|not defined/i.test(errorMessage(err)) ? NOT_DEFINED : `error: ${errorMessage(err)}`;
      }
      return Promise.resolve({
        changed: false,
        actions: [],
        data: { [args.var]: value === undefined ? NOT_DEFINED : value },
      });
    }
    return Promise.resolve({ changed: false, actions: [], data: { msg: args.msg ?? 'Hello world!' } });
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
