/**
 * assert: every expression in `that` must be true. Read-only: evaluated with ctx.evaluate in check mode
 * too, with no remote call.
 */
import { errorMessage } from './remote.js';
import { isTruthy } from '../template/helpers.js';
import type { Module, Planned } from './types.js';

export interface AssertArgs {
  that: string | string[];
  fail_msg?: string;
  msg?: string;
  success_msg?: string;
  quiet?: boolean;
}

export const assertModule: Module<AssertArgs> = {
  name: 'assert',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['that'],
    properties: {
      that: {
        anyOf: [
          { type: 'string', minLength: 1 },
          { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
        ],
      },
      fail_msg: { type: 'string' },
      msg: { type: 'string' },
      success_msg: { type: 'string' },
      quiet: { type: 'boolean' },
    },
  },

  check(ctx, args): Promise<Planned> {
    const expressions = typeof args.that === 'string' ? [args.that] : args.that;
    for (const [i, expression] of expressions.entries()) {
      let value: unknown;
      try {
        value = ctx.evaluate(expression, ctx.vars, typeof args.that === 'string' ? ['that'] : ['that', i]);
      } catch (err) {
        const msg = `assertion ${JSON.stringify(expression)} could not be evaluated: ${errorMessage(err)}`;
        return Promise.resolve({
          changed: false,
          actions: [],
          failed: msg,
          data: { assertion: expression, evaluated_to: null, msg },
        });
      }
      // Ansible's truthiness, the same rule as `when`: an empty list or mapping fails the assertion.
      if (!isTruthy(value)) {
        const msg = args.fail_msg ?? args.msg ?? 'Assertion failed';
        return Promise.resolve({
          changed: false,
          actions: [],
          failed: msg,
          data: { assertion: expression, evaluated_to: value ?? null, msg },
        });
      }
    }
    const msg = args.success_msg ?? 'All assertions passed';
    return Promise.resolve({
      changed: false,
      actions: [],
      data: args.quiet ? { msg } : { msg, assertions: expressions },
    });
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
