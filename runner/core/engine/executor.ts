/**
 * Executors make dry runs structural: the engine hands every module call to an executor and never asks
 * "are we in check mode?" itself. CheckExecutor calls only `check`; ApplyExecutor calls `check`, then
 * `apply` with that plan when it says something would change; VerifyExecutor runs probes for real and
 * turns any change a state module would make into drift.
 */
import { runAppliesBatched, type ApplyJob, type BatchedApply } from './apply-batch.js';
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

/**
 * The apply rule, once: check, then — only when the plan says something would change — `applyChanged` with
 * that plan. The plain, async and fire-and-forget applies differ only in how they apply.
 */
function applyWhenChanged(
  applyChanged: (
    module: AnyModule,
    ctx: ModuleContext,
    args: Record<string, unknown>,
    plan: Planned,
  ) => Promise<ModuleResult>,
): Executor {
  return {
    kind: 'apply',
    async run(module, ctx, args) {
      const plan = await module.check(ctx, args);
      if (plan.failed !== undefined || !plan.changed || module.readOnly) {
        return { plan, result: resultFromPlan(plan), predicted: false };
      }
      return { plan, result: await applyChanged(module, ctx, args, plan), predicted: false };
    },
  };
}

export const applyExecutor: Executor = applyWhenChanged((module, ctx, args, plan) => module.apply(ctx, args, plan));

/**
 * The tasks that may travel with a task's apply (apply-batch.ts): `followers` is asked only when the task's own
 * plan says it changes something (a task that changes nothing sends nothing to batch with); `settle` gets
 * each follower's outcome, in order (ran with its result, or not started on the host).
 */
export interface ApplyBatch {
  /** The host goes on past this task's own failure (ignore_errors). */
  goOn: boolean;
  followers(): Promise<ApplyJob[]>;
  settle(outcomes: BatchedApply[]): void;
}

/**
 * apply for the first task of an apply batch: check as usual, then — when it would change — its apply and the
 * followers' go to the host in one round trip (apply-batch.ts), run there in order, stopping at the first
 * failure. A task whose script cannot travel in a batch applies alone, as applyExecutor would.
 */
export function batchedApplyExecutor(batch: ApplyBatch): Executor {
  return applyWhenChanged(async (module, ctx, args, plan) => {
    const followers = await batch.followers();
    if (!followers.length) return module.apply(ctx, args, plan);
    const [lead, ...rest] = await runAppliesBatched(ctx.conn, [
      { module, ctx, args, plan, goOn: batch.goOn },
      ...followers,
    ]);
    batch.settle(rest);
    return lead?.ran ? lead.result : module.apply(ctx, args, plan);
  });
}

/**
 * A task's apply that already ran in an earlier task's batch: check and apply answer what was planned and
 * done then, so the executor judges it as it would have judged running it now.
 */
export function appliedAhead(module: AnyModule, plan: Planned, result: Promise<ModuleResult>): AnyModule {
  const view = Object.create(module) as AnyModule;
  view.check = () => Promise.resolve(plan);
  view.apply = () => result;
  return view;
}

/**
 * apply for a task with `async`: check as usual (so check mode stays exact), then apply with the context
 * `detach` gives, whose connection runs each script as a detached, polled job (./async-job.ts).
 */
export function asyncApplyExecutor(detach: (ctx: ModuleContext) => ModuleContext): Executor {
  return applyWhenChanged((module, ctx, args, plan) => module.apply(detach(ctx), args, plan));
}

/**
 * apply for a task with `async` and `poll: 0`: check as usual, then apply with the one script started as a
 * detached job (./async-job.ts FireAndForgetConnection); the result is the job's id, as Ansible registers it.
 */
export function fireAndForgetExecutor(seconds: number): Executor {
  return applyWhenChanged(async (module, ctx, args, plan) => {
    const conn = new FireAndForgetConnection(ctx.conn, seconds);
    const result = await module.apply({ ...ctx, conn }, args, plan);
    if (result.failed || conn.jid === undefined) return result;
    return {
      changed: result.changed,
      data: { ansible_job_id: conn.jid, started: 1, finished: 0, results_file: `${conn.jid}/stdout` },
    };
  });
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
