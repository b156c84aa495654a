/** fail: stop the host with a message. Read-only: it fails in check mode too. */
import type { Module, Planned } from './types.js';

export interface FailArgs {
  msg?: string;
}

export const DEFAULT_FAIL_MSG = 'Failed as requested from task';

export const failModule: Module<FailArgs> = {
  name: 'fail',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { msg: { type: 'string' } },
  },

  check(_ctx, args): Promise<Planned> {
    const msg = args.msg ?? DEFAULT_FAIL_MSG;
    return Promise.resolve({ changed: false, actions: [], failed: msg, data: { msg } });
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({
      changed: false,
      failed: true,
      msg: plan.failed ?? DEFAULT_FAIL_MSG,
      data: plan.data ?? {},
    });
  },
};
