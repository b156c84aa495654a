/**
 * Executors make dry runs structural: the engine hands every module call to an executor and never asks
 * "are we in check mode?" itself. CheckExecutor calls only `check`; ApplyExecutor calls `check`, then
 * `apply` with that plan when it says something would change; VerifyExecutor runs probes for real and
 * turns any change a state module would make into drift.
 */
import { FireAndForgetConnection } from './async-job.js';
import type { AnyModule, ModuleContext, ModuleResult, Planned } from '../modules/types.js';

export interface Execution {
  result: ModuleResult;
  plan: Planned;
  /** The result is a prediction (nothing was changed). */
  predicted: boolean;
}

export interface Executor {
  readonly kind: 'check' | 'apply' | 'verify';
  run(module: AnyModule, ctx: ModuleContext, args: Record<string, unknown>): Promise<Execution>;
}

export function resultFromPlan(plan: Planned): ModuleResult {
  return {
    changed: plan.changed,
    failed: plan.failed !== undefined,
    msg: plan.failed ?? plan.skipped,
    diffs: plan.diffs,
    skipped: plan.skipped,
    data: plan.data ?? {},
  };
}

export const checkExecutor: Executor = {
  kind: 'check',
  async run(module, ctx, args) {
    const plan = await module.check(ctx, args);
    return { plan, result: resultFromPlan(plan), predicted: true };
  },
};

export const applyExecutor: Executor = {
  kind: 'apply',
  async run(module, ctx, args) {
    const plan = await module.check(ctx, args);
    if (plan.failed !== undefined || !plan.changed || module.readOnly) {
      return { plan, result: resultFromPlan(plan), predicted: false };
    }
    const result = await module.apply(ctx, args, plan);
    return { plan, result, predicted: false };
  },
};

/**
 * apply for a task with `async`: check as usual (so check mode stays exact), then apply with the context
 * `detach` gives, whose connection runs each script as a detached, polled job (./async-job.ts).
 */
export function asyncApplyExecutor(detach: (ctx: ModuleContext) => ModuleContext): Executor {
  return {
    kind: 'apply',
    async run(module, ctx, args) {
      const plan = await module.check(ctx, args);
      if (plan.failed !== undefined || !plan.changed || module.readOnly) {
        return { plan, result: resultFromPlan(plan), predicted: false };
      }
      const result = await module.apply(detach(ctx), args, plan);
      return { plan, result, predicted: false };
    },
  };
}

/**
 * apply for a task with `async` and `poll: 0`: check as usual, then apply with the one script started as a
 * detached job (./async-job.ts FireAndForgetConnection); the result is the job's id, as Ansible registers it.
 */
export function fireAndForgetExecutor(seconds: number): Executor {
  return {
    kind: 'apply',
    async run(module, ctx, args) {
      const plan = await module.check(ctx, args);
      if (plan.failed !== undefined || !plan.changed || module.readOnly) {
        return { plan, result: resultFromPlan(plan), predicted: false };
      }
      const conn = new FireAndForgetConnection(ctx.conn, seconds);
      const result = await module.apply({ ...ctx, conn }, args, plan);
      if (result.failed || conn.jid === undefined) return { plan, result, predicted: false };
      const job = { ansible_job_id: conn.jid, started: 1, finished: 0, results_file: `${conn.jid}/stdout` };
      return { plan, result: { changed: result.changed, data: job }, predicted: false };
    },
  };
}

/** Modules that only observe, so verification may run them for real. */
const PROBE_MODULES = new Set(['command', 'shell']);

export const verifyExecutor: Executor = {
  kind: 'verify',
  async run(module, ctx, args) {
    if (module.readOnly || PROBE_MODULES.has(module.name)) {
      const execution = await applyExecutor.run(module, ctx, args);
      // A probe's exit status is its verdict; "changed" means nothing for a postcondition.
      return { ...execution, result: { ...execution.result, changed: false } };
    }
    const plan = await module.check(ctx, args);
    const result = resultFromPlan(plan);
    if (plan.changed && plan.failed === undefined) {
      return {
        plan,
        predicted: true,
        result: {
          ...result,
          changed: false,
          failed: true,
          msg: `drift: ${plan.actions.join('; ') || 'the host differs from what the role wants'}`,
        },
      };
    }
    return { plan, result, predicted: true };
  },
};
