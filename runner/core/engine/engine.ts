/**
 * The engine: schedules hosts (p-queue, --forks), runs each task through an executor, keeps per-host state
 * (facts, registered variables, notified handlers, failure), runs handlers and verifications, and emits a
 * typed event for everything. It never prints: reporters subscribe to the bus.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import PQueue from 'p-queue';
import { CairnError, formatLocation, inputError, type SourceLocation } from '../util/errors.js';
import type { Inventory } from '../inventory/types.js';
import { getModule } from '../modules/index.js';
import type { AnyModule, ModuleContext, ModuleResult } from '../modules/types.js';
import type { Play, Playbook, Role, Task } from '../playbook/types.js';
import { compileSchema, describeAjvError } from '../util/schema.js';
import { snippetAt } from '../util/yaml-source.js';
import { evaluate, evaluateAll } from '../template/index.js';
import type { Templater } from '../template/types.js';
import { ConnectionPool } from '../transport/pool.js';
import { UnreachableError, type Connection, type ConnectionSpec, type ExecOptions, type ExecResult } from '../transport/types.js';
import { isPlainObject, layerVars, type Vars } from '../util/vars.js';
import { computeBatches } from './batches.js';
import { connectionSpecFor } from './connection-spec.js';
import { applyExecutor, checkExecutor, verifyExecutor, type Executor } from './executor.js';
import { EventBus, now, type TaskRef, type TaskStatus } from './events.js';
import { lazyVars, materialise } from './lazy-vars.js';
import { taskSelected, type TagFilter } from './tags.js';
import { sleep } from '../util/sleep.js';

export interface EngineOptions {
  inventory: Inventory;
  bus: EventBus;
  templater: Templater;
  check: boolean;
  diff: boolean;
  forks: number;
  extraVars: Vars;
  /** -l/--limit pattern. */
  limit?: string;
  /** Only these hosts (--rerun failed). */
  onlyHosts?: string[];
  tags: TagFilter;
  /** --roles: run only the tasks of these roles. */
  roles?: string[];
  /** Run each role's verify.yaml after the play (and after each serial batch). */
  verify: boolean;
  acceptNewHostKeys: boolean;
  knownHostsPath?: string;
  signal: AbortSignal;
  /** Values to hide in every output (from vault files, no_log results); the engine adds to it. */
  addSecret?: (value: string) => void;
}

export interface RunOutcome {
  failedHosts: Set<string>;
  unreachableHosts: Set<string>;
  /** Some task changed (or would change, in check mode) some host. */
  changed: boolean;
  interrupted: boolean;
  verifyFailures: number;
  /** Failures caused by bad input (undefined variables, template errors): exit code 5. */
  inputErrors: number;
}

class HostState {
  facts?: Record<string, unknown>;
  registered: Vars = {};
  notified = new Set<string>();
  failed = false;
  unreachable = false;
  constructor(
    readonly name: string,
    readonly inventoryVars: Vars,
  ) {}
  get active(): boolean {
    return !this.failed && !this.unreachable;
  }
}

interface PlayContext {
  play: Play;
  playbookDir: string;
  /** run_once tasks started in the current batch, by task: their one outcome, shared by every host of the batch. */
  runOnce: Map<Task, Promise<TaskOutcome>>;
  /** any_errors_fatal tripped, or the run was interrupted: start no new tasks. */
  aborted: boolean;
  roleDefaults: Vars;
  phase: 'tasks' | 'handlers' | 'verify';
}

interface TaskOutcome {
  status: TaskStatus;
  registered: Record<string, unknown>;
  changed: boolean;
}

const NO_LOG_MSG = "the output has been hidden due to the fact that 'no_log: true' was specified for this result";

function taskRef(task: Task): TaskRef {
  return { name: task.name, role: task.role, module: task.module, location: formatLocation(task.location) };
}

function isInputError(err: unknown): boolean {
  return err instanceof CairnError && (err.kind === 'input' || err.kind === 'options');
}

/**
 * Why a verification failed. A looped check's summary has no message of its own: its failed items' messages
 * say what is wrong ("drift: set atime ...", "pool tank is DEGRADED"), not just "failed".
 */
function verifyFailureMessage(registered: Record<string, unknown>, status: TaskStatus): string {
  if (registered.msg !== undefined) return String(registered.msg);
  const results = registered.results;
  if (Array.isArray(results)) {
    const messages = results.filter((r): r is Record<string, unknown> => isPlainObject(r) && r.failed === true).map((r) => String(r.msg ?? 'failed'));
    if (messages.length) return messages.join('; ');
  }
  return status;
}

function errorMessage(err: unknown): string {
  if (err instanceof CairnError) return err.render();
  return err instanceof Error ? err.message : String(err);
}

export class Engine {
  private readonly hosts = new Map<string, HostState>();
  private readonly pool = new ConnectionPool(undefined, (spec, ms) =>
    this.opts.bus.emit({
      type: 'connection_open',
      time: now(),
      host: spec.name,
      transport: spec.connection,
      user: spec.user,
      address: spec.address,
      port: spec.port,
      via: spec.jump.map((j) => `${j.user}@${j.address}:${j.port}`),
      ms,
    }),
  );
  private readonly opts: EngineOptions;
  private changedAny = false;
  private verifyFailures = 0;
  /** Tasks that failed on bad input (undefined variable, template error): the run exits 5, not 2. */
  private inputErrors = 0;

  constructor(opts: EngineOptions) {
    this.opts = opts;
  }

  get connectionsOpened(): number {
    return this.pool.opened;
  }

  async close(): Promise<void> {
    await this.pool.closeAll();
  }

  /** Run a script on a host over its pooled connection (drills and verifications that span hosts). */
  async exec(host: string, script: string, opts?: ExecOptions): Promise<ExecResult> {
    const conn = await this.connect(host);
    return conn.exec(script, opts);
  }

  /** Forget a host's connection (after a drill powered it off or on): the next use connects afresh. */
  async dropConnection(host: string): Promise<void> {
    await this.pool.drop(host);
  }

  private host(name: string): HostState {
    let state = this.hosts.get(name);
    if (!state) {
      state = new HostState(name, this.opts.inventory.hostVars(name));
      this.hosts.set(name, state);
    }
    return state;
  }

  private specFor(name: string): ConnectionSpec {
    const inv = this.opts.inventory;
    const vars = inv.hosts.has(name) ? layerVars(inv.hostVars(name), this.opts.extraVars) : layerVars(this.opts.extraVars);
    const baseDir = existsSync(inv.path) && !inv.path.endsWith('.yaml') && !inv.path.endsWith('.yml') ? inv.path : resolve(inv.path, '..');
    return connectionSpecFor(name, vars, {
      baseDir,
      acceptNewHostKeys: this.opts.acceptNewHostKeys,
      knownHostsPath: this.opts.knownHostsPath,
    });
  }

  private async connect(name: string): Promise<Connection> {
    return this.pool.get(this.specFor(name));
  }

  /**
   * Hosts a play runs on: its pattern, narrowed by --limit and --rerun, without hosts already lost. A
   * pattern that matches nothing is reported at `where` (the play's `hosts:` value) when it is known.
   */
  selectHosts(pattern: string, where?: SourceLocation): string[] {
    const inv = this.opts.inventory;
    let hosts: string[];
    try {
      hosts = inv.select(pattern);
    } catch (err) {
      if (err instanceof CairnError && where && !err.location) throw inputError(`play "hosts": ${err.message}`, where, snippetAt(where));
      throw err;
    }
    if (this.opts.limit) {
      const limited = new Set(inv.select(this.opts.limit));
      hosts = hosts.filter((h) => limited.has(h));
    }
    if (this.opts.onlyHosts) {
      const only = new Set(this.opts.onlyHosts);
      hosts = hosts.filter((h) => only.has(h));
    }
    return hosts;
  }

  /** Before anything runs: every role's variables on every host must satisfy the role's schema. */
  validateRoleVars(playbook: Playbook): void {
    for (const play of playbook.plays) {
      const hosts = this.selectHosts(play.hosts, play.hostsLocation);
      const defaults = this.roleDefaults(play);
      for (const role of play.roles) {
        if (!role.schema || !this.roleWanted(role.name)) continue;
        const validate = compileSchema(role.schema);
        for (const host of hosts) {
          const vars: Vars = layerVars(defaults, this.opts.inventory.hostVars(host), play.vars, role.vars, this.opts.extraVars);
          // (not `if (validate(vars))`: ajv's type guard would narrow `vars` to never below)
          const valid = validate(vars) as boolean;
          if (valid) continue;
          const errors = (validate.errors ?? []).filter((e) => {
            const top = e.instancePath.split('/')[1];
            const v = top ? vars[top] : undefined;
            return !(typeof v === 'string' && v.includes('{{'));
          });
          if (!errors.length) continue;
          const err = errors[0]!;
          const d = describeAjvError(err, vars, 'variables');
          const variable = String(d.path[0] ?? (err.params as { missingProperty?: string }).missingProperty ?? '');
          const origin = this.opts.inventory.varOrigin(host, variable);
          const where = origin ? ` (set in ${formatLocation(origin)})` : role.vars[variable] !== undefined ? ` (set in the play at ${formatLocation(play.location)})` : '';
          throw inputError(`host ${host}: role ${role.name}: variable ${d.message.replace(/^"/, '"')}${where}; see ${join(role.dir, 'schema.json')}`);
        }
      }
    }
  }

  private roleWanted(role: string): boolean {
    return !this.opts.roles || this.opts.roles.includes(role);
  }

  private roleDefaults(play: Play): Vars {
    return layerVars(...play.roles.map((r) => r.defaults));
  }

  /** The variables a task sees, layered as documented in docs/variables.md and rendered lazily. */
  private varsFor(host: HostState, ctx: PlayContext, task: Task, extra?: Vars): Vars {
    const role = ctx.play.roles.find((r) => r.name === task.role);
    const facts = host.facts ? { facts: host.facts, ansible_facts: host.facts } : {};
    const layered = layerVars(
      ctx.roleDefaults,
      host.inventoryVars,
      facts,
      ctx.play.vars,
      role?.vars,
      host.registered,
      task.vars,
      extra,
      this.opts.extraVars,
      { hostvars: this.hostvarsView(), cairn_check_mode: this.opts.check, ansible_check_mode: this.opts.check, role_name: task.role, role_path: role?.dir },
    );
    const origin = task.location;
    const view: Vars = lazyVars(layered, (template, context) => this.opts.templater.renderValue(template, context, origin));
    return view;
  }

  private hostvarsView(): Vars {
    const inv = this.opts.inventory;
    return new Proxy({} as Vars, {
      get: (_t, key) => {
        if (typeof key !== 'string' || !inv.hosts.has(key)) return undefined;
        const state = this.hosts.get(key);
        return layerVars(inv.hostVars(key), state?.facts ? { facts: state.facts, ansible_facts: state.facts } : {}, state?.registered);
      },
      has: (_t, key) => typeof key === 'string' && inv.hosts.has(key),
      ownKeys: () => [...inv.hosts.keys()],
      getOwnPropertyDescriptor: (_t, key) => (typeof key === 'string' && inv.hosts.has(key) ? { enumerable: true, configurable: true } : undefined),
    });
  }

  private executorFor(task: Task, ctx: PlayContext): Executor {
    if (ctx.phase === 'verify') return verifyExecutor;
    if (task.checkMode === true) return checkExecutor;
    if (task.checkMode === false) return applyExecutor;
    return this.opts.check ? checkExecutor : applyExecutor;
  }

  private moduleContext(host: HostState, conn: Connection, task: Task, vars: Vars, ctx: PlayContext): ModuleContext {
    const spec = this.specFor(host.name);
    const become = task.become ?? ctx.play.become ?? spec.become;
    const role = ctx.play.roles.find((r) => r.name === task.role);
    return {
      host: host.name,
      conn,
      become,
      becomeUser: task.becomeUser ?? ctx.play.becomeUser ?? spec.becomeUser,
      vars,
      facts: host.facts,
      taskLocation: task.location,
      signal: this.opts.signal,
      findLocalFile: (kind, rel) => this.findLocalFile(kind, rel, role, ctx.playbookDir, task.location),
      renderTemplateFile: (path, v) => this.opts.templater.renderFile(path, v),
      evaluate: (expression, v) => evaluate(expression, v, task.location),
    };
  }

  private findLocalFile(kind: 'templates' | 'files', rel: string, role: Role | undefined, playbookDir: string, where: SourceLocation): string {
    if (isAbsolute(rel)) {
      if (existsSync(rel)) return rel;
      throw inputError(`${kind === 'templates' ? 'template' : 'file'} "${rel}" does not exist`, where);
    }
    const candidates = [
      ...(role ? [join(role.dir, kind, rel), join(role.dir, rel)] : []),
      join(playbookDir, kind, rel),
      join(playbookDir, rel),
    ];
    const found = candidates.find((p) => existsSync(p));
    if (!found) throw inputError(`${kind === 'templates' ? 'template' : 'file'} "${rel}" not found (looked in: ${candidates.join(', ')})`, where);
    return found;
  }

  // ---------------------------------------------------------------- tasks

  private emitResult(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    status: TaskStatus,
    started: number,
    extra: { msg?: string; result?: ModuleResult; registered?: Record<string, unknown>; item?: unknown; loopSummary?: boolean; predicted?: boolean; actions?: string[]; ignored?: boolean; attempts?: number },
  ): void {
    const hidden = task.noLog;
    this.opts.bus.emit({
      type: 'task_result',
      time: now(),
      host: host.name,
      task: taskRef(task),
      status,
      item: hidden && extra.item !== undefined ? '(censored due to no_log)' : extra.item,
      loopSummary: extra.loopSummary,
      msg: hidden && status === 'failed' ? NO_LOG_MSG : extra.msg,
      actions: hidden ? undefined : (extra.actions ?? undefined),
      diffs: hidden ? undefined : extra.result?.diffs,
      result: hidden ? undefined : extra.registered,
      durationMs: Date.now() - started,
      handler: ctx.phase === 'handlers' || undefined,
      verify: ctx.phase === 'verify' || undefined,
      ignored: extra.ignored || undefined,
      check: extra.predicted || undefined,
      attempts: extra.attempts,
    });
  }

  /** Run one task on one host (all loop items), emit its events and update the host's state. */
  async runTask(host: HostState, task: Task, ctx: PlayContext): Promise<TaskOutcome> {
    if (task.runOnce) {
      const existing = ctx.runOnce.get(task);
      if (existing) {
        const outcome = await existing;
        if (task.register) host.registered[task.register] = outcome.registered;
        return outcome;
      }
      const promise = this.runTaskNow(host, task, ctx);
      ctx.runOnce.set(task, promise);
      return promise;
    }
    return this.runTaskNow(host, task, ctx);
  }

  private async runTaskNow(host: HostState, task: Task, ctx: PlayContext): Promise<TaskOutcome> {
    const started = Date.now();
    this.opts.bus.emit({ type: 'task_start', time: now(), host: host.name, task: taskRef(task), handler: ctx.phase === 'handlers' || undefined, verify: ctx.phase === 'verify' || undefined });
    let items: unknown[] | undefined;
    const baseVars = this.varsFor(host, ctx, task);
    try {
      if (task.loop !== undefined) {
        const rendered = this.opts.templater.renderValue(task.loop, baseVars, task.location);
        if (!Array.isArray(rendered)) {
          throw inputError(`loop must be a list, got ${rendered === null ? 'null' : typeof rendered}`, task.location);
        }
        items = materialise(rendered) as unknown[];
      }
    } catch (err) {
      if (isInputError(err)) this.inputErrors++;
      return this.finishFailed(host, task, ctx, started, errorMessage(err));
    }

    if (items === undefined) {
      const one = await this.runItem(host, task, ctx, baseVars, undefined, started);
      this.afterTask(host, task, ctx, one);
      return one;
    }

    const results: Array<Record<string, unknown>> = [];
    let anyChanged = false;
    let anyFailed = false;
    let anyIgnoredFail = false;
    let allSkipped = items.length > 0;
    let unreachable = false;
    for (const item of items) {
      if (this.opts.signal.aborted) break;
      const itemVars = this.varsFor(host, ctx, task, { [task.loopVar]: item, ansible_loop_var: task.loopVar });
      const outcome = await this.runItem(host, task, ctx, itemVars, item, Date.now());
      results.push({ ...outcome.registered, [task.loopVar]: item });
      if (outcome.status === 'unreachable') {
        unreachable = true;
        break;
      }
      anyChanged ||= outcome.changed;
      if (outcome.status === 'failed') {
        if (task.ignoreErrors) anyIgnoredFail = true;
        else anyFailed = true;
      }
      if (outcome.status !== 'skipped') allSkipped = false;
    }
    const registered: Record<string, unknown> = { results, changed: anyChanged, failed: anyFailed || anyIgnoredFail, skipped: allSkipped };
    const status: TaskStatus = unreachable ? 'unreachable' : anyFailed || anyIgnoredFail ? 'failed' : allSkipped ? 'skipped' : anyChanged ? 'changed' : 'ok';
    const summary: TaskOutcome = { status, registered, changed: anyChanged };
    if (status !== 'unreachable') {
      this.emitResult(host, task, ctx, status, started, {
        registered,
        loopSummary: true,
        ignored: anyIgnoredFail && !anyFailed,
        msg: anyFailed || anyIgnoredFail ? 'one or more items failed' : undefined,
        predicted: this.executorFor(task, ctx).kind === 'check' || undefined,
      });
    }
    if (task.register) host.registered[task.register] = registered;
    this.afterTask(host, task, ctx, summary, anyIgnoredFail && !anyFailed);
    return summary;
  }

  private finishFailed(host: HostState, task: Task, ctx: PlayContext, started: number, msg: string): TaskOutcome {
    const registered = { failed: true, changed: false, msg };
    this.emitResult(host, task, ctx, 'failed', started, { msg, registered, ignored: task.ignoreErrors });
    const outcome: TaskOutcome = { status: 'failed', registered, changed: false };
    if (task.register) host.registered[task.register] = registered;
    this.afterTask(host, task, ctx, outcome, task.ignoreErrors);
    return outcome;
  }

  private afterTask(host: HostState, task: Task, ctx: PlayContext, outcome: TaskOutcome, ignored = task.ignoreErrors): void {
    if (outcome.changed && ctx.phase !== 'verify') {
      this.changedAny = true;
      for (const name of task.notify) {
        if (!host.notified.has(name)) {
          host.notified.add(name);
          this.opts.bus.emit({ type: 'handler_notified', time: now(), host: host.name, handler: name, by: task.name });
        }
      }
    }
    if (ctx.phase === 'verify') return;
    if (outcome.status === 'failed' && !ignored && !host.failed) {
      host.failed = true;
      const msg = task.noLog ? NO_LOG_MSG : String(outcome.registered.msg ?? 'task failed');
      this.opts.bus.emit({ type: 'host_failed', time: now(), host: host.name, msg });
      if (ctx.play.anyErrorsFatal) ctx.aborted = true;
    }
  }

  /** One iteration: when, render, validate, connect, execute with retries, changed_when/failed_when, register. */
  private async runItem(host: HostState, task: Task, ctx: PlayContext, vars: Vars, item: unknown, started: number): Promise<TaskOutcome> {
    const isItem = item !== undefined;
    const fail = (msg: string): TaskOutcome => {
      const registered = { failed: true, changed: false, msg };
      this.emitResult(host, task, ctx, 'failed', started, { msg, registered, item, ignored: task.ignoreErrors });
      if (!isItem && task.register) host.registered[task.register] = registered;
      return { status: 'failed', registered, changed: false };
    };
    try {
      if (task.when.length && !evaluateAll(task.when, vars, task.location)) {
        const registered = { changed: false, skipped: true, skip_reason: 'Conditional result was False' };
        this.emitResult(host, task, ctx, 'skipped', started, { registered, item, msg: `when: ${task.when.join(' and ')}` });
        if (!isItem && task.register) host.registered[task.register] = registered;
        return { status: 'skipped', registered, changed: false };
      }
    } catch (err) {
      if (isInputError(err)) this.inputErrors++;
      return fail(errorMessage(err));
    }

    if (task.module === 'set_fact') {
      try {
        const values = materialise(this.opts.templater.renderValue(task.args, vars, task.location)) as Vars;
        Object.assign(host.registered, values);
        const registered = { changed: false, ansible_facts: values };
        this.emitResult(host, task, ctx, 'ok', started, { registered, item });
        return { status: 'ok', registered, changed: false };
      } catch (err) {
        return fail(errorMessage(err));
      }
    }

    const module = getModule(task.module) as AnyModule;
    let args: Record<string, unknown>;
    try {
      args = materialise(this.opts.templater.renderValue(task.args, vars, task.location)) as Record<string, unknown>;
      const validate = compileSchema(module.argsSchema);
      if (!validate(args)) {
        const d = describeAjvError(validate.errors![0]!, args, `module "${module.name}"`);
        throw inputError(`module "${module.name}" after rendering its arguments: ${d.message}`, task.location);
      }
    } catch (err) {
      if (isInputError(err)) this.inputErrors++;
      return fail(errorMessage(err));
    }

    const target = task.delegateTo ? String(this.opts.templater.renderValue(task.delegateTo, vars, task.location)) : host.name;
    let conn: Connection;
    try {
      conn = await this.connect(target);
    } catch (err) {
      return this.unreachable(host, task, ctx, started, err, item, target);
    }
    const executor = this.executorFor(task, ctx);
    const mctx = this.moduleContext(host, conn, task, vars, ctx);
    const maxAttempts = task.until ? (task.retries ?? 3) + 1 : 1;
    let attempts = 0;
    let result: ModuleResult | undefined;
    let registered: Record<string, unknown>;
    let predicted = false;
    let actions: string[] = [];
    let failed: boolean;
    let changed: boolean;
    for (;;) {
      attempts++;
      try {
        const execution = await executor.run(module, mctx, args);
        result = execution.result;
        predicted = execution.predicted;
        actions = execution.plan.actions;
      } catch (err) {
        if (err instanceof UnreachableError) return this.unreachable(host, task, ctx, started, err, item, target);
        if (isInputError(err)) this.inputErrors++;
        result = { changed: false, failed: true, msg: errorMessage(err), data: {} };
      }
      registered = { ...result.data, changed: result.changed, failed: result.failed === true };
      if (result.msg !== undefined) registered.msg = result.msg;
      if (result.skipped) registered.skipped = true;
      if (task.until) registered.attempts = attempts;
      const condVars = task.register ? { [task.register]: registered } : {};
      const withResult = task.register ? lazyVarsWith(vars, condVars) : vars;
      failed = result.failed === true;
      changed = result.changed;
      // A prediction has no real output to judge, except that `changed_when: false` marks a pure probe.
      const judged = !(predicted && !module.readOnly);
      try {
        if (task.changedWhen !== undefined) {
          if (typeof task.changedWhen === 'boolean') changed = task.changedWhen && (judged || changed);
          else if (judged) changed = evaluateAll(task.changedWhen, withResult, task.location);
        }
        if (task.failedWhen !== undefined && judged) {
          failed = typeof task.failedWhen === 'boolean' ? task.failedWhen : evaluateAll(task.failedWhen, withResult, task.location);
        }
      } catch (err) {
        failed = true;
        registered.msg = errorMessage(err);
      }
      registered.changed = changed;
      registered.failed = failed;
      if (!task.until || attempts >= maxAttempts || this.opts.signal.aborted) break;
      let done: boolean;
      try {
        done = !failed && evaluateAll(task.until, withResult, task.location);
      } catch (err) {
        registered.msg = errorMessage(err);
        failed = true;
        break;
      }
      if (done) break;
      await sleep((task.delay ?? 5) * 1000, this.opts.signal);
    }
    if (task.until && !failed) {
      const condVars = task.register ? { [task.register]: registered } : {};
      let met: boolean;
      try {
        met = evaluateAll(task.until, lazyVarsWith(vars, condVars), task.location);
      } catch {
        met = false;
      }
      if (!met) {
        failed = true;
        registered.failed = true;
        registered.msg = `until condition not met after ${attempts} attempts: ${task.until.join(' and ')}`;
      }
    }
    if (!isItem && task.register) host.registered[task.register] = registered;
    const status: TaskStatus = failed ? 'failed' : result?.skipped && !changed ? 'skipped' : changed ? 'changed' : 'ok';
    this.emitResult(host, task, ctx, status, started, {
      result,
      registered,
      item,
      msg: failed ? String(registered.msg ?? 'failed') : (result?.skipped ?? undefined),
      predicted,
      actions,
      ignored: failed && task.ignoreErrors,
      attempts: task.until ? attempts : undefined,
    });
    return { status, registered, changed };
  }

  private unreachable(host: HostState, task: Task, ctx: PlayContext, started: number, err: unknown, item: unknown, target: string): TaskOutcome {
    const msg = `${target === host.name ? '' : `delegated host ${target}: `}${errorMessage(err)}`;
    const registered = { unreachable: true, changed: false, msg };
    this.emitResult(host, task, ctx, 'unreachable', started, { msg, registered, item });
    if (!host.unreachable) {
      host.unreachable = true;
      this.opts.bus.emit({ type: 'host_unreachable', time: now(), host: host.name, msg });
    }
    return { status: 'unreachable', registered, changed: false };
  }

  // ---------------------------------------------------------------- plays

  private factsTask(play: Play): Task {
    return {
      name: 'Gathering Facts',
      module: 'setup',
      args: {},
      when: [],
      loopVar: 'item',
      notify: [],
      tags: ['always'],
      runOnce: false,
      ignoreErrors: false,
      noLog: false,
      checkMode: false,
      role: '',
      location: play.location,
      listen: [],
    };
  }

  private async gatherFacts(host: HostState, ctx: PlayContext): Promise<void> {
    if (host.facts || !host.active) return;
    const outcome = await this.runTask(host, this.factsTask(ctx.play), { ...ctx, phase: 'tasks' });
    const facts = outcome.registered.facts;
    if (isPlainObject(facts)) host.facts = facts;
  }

  /** The play's tasks in order (roles first, then the play's own), filtered by --roles and tags. */
  private selectedTasks(play: Play): Task[] {
    const tasks: Task[] = [];
    for (const role of play.roles) {
      if (!this.roleWanted(role.name)) continue;
      for (const t of role.tasks) tasks.push({ ...t, tags: [...role.tags, ...t.tags] });
    }
    if (!this.opts.roles) tasks.push(...play.tasks);
    return tasks.filter((t) => taskSelected(t.tags, this.opts.tags));
  }

  private handlersOf(play: Play): Task[] {
    const handlers: Task[] = [];
    for (const role of play.roles) if (this.roleWanted(role.name)) handlers.push(...role.handlers);
    handlers.push(...play.handlers);
    return handlers;
  }

  private async runHandlers(host: HostState, ctx: PlayContext, handlers: Task[]): Promise<void> {
    if (!host.notified.size) return;
    const hctx: PlayContext = { ...ctx, phase: 'handlers' };
    for (const handler of handlers) {
      if (!host.active || this.opts.signal.aborted || ctx.aborted) break;
      const names = [handler.name, ...handler.listen];
      if (!names.some((n) => host.notified.has(n))) continue;
      await this.runTask(host, handler, hctx);
    }
    host.notified.clear();
  }

  private async runVerify(hosts: HostState[], ctx: PlayContext): Promise<number> {
    const roles = ctx.play.roles.filter((r) => r.verify.length && this.roleWanted(r.name));
    if (!roles.length) return 0;
    const active = hosts.filter((h) => h.active);
    if (!active.length) return 0;
    this.opts.bus.emit({ type: 'verify_start', time: now(), play: ctx.play.name, hosts: active.map((h) => h.name) });
    const vctx: PlayContext = { ...ctx, phase: 'verify', runOnce: new Map() };
    let failures = 0;
    // Verification runs task by task across the batch (linear), so a later check can compare what every
    // host registered before it (e.g. "the VIP is held by exactly one load balancer" over hostvars).
    const queue = new PQueue({ concurrency: this.opts.forks });
    const lost = new Set<string>();
    for (const role of roles) {
      for (const task of role.verify) {
        if (this.opts.signal.aborted) break;
        const remaining = active.filter((host) => !lost.has(host.name));
        // A run_once check (a cross-host verdict) runs on the first host only and is reported once.
        const targets = task.runOnce ? remaining.slice(0, 1) : remaining;
        await Promise.all(
          targets
            .map((host) =>
              queue.add(async () => {
                const outcome = await this.runTask(host, task, vctx);
                if (outcome.status === 'skipped') return;
                const passed = outcome.status === 'ok' || outcome.status === 'changed';
                if (!passed) failures++;
                this.opts.bus.emit({
                  type: 'verify_result',
                  time: now(),
                  host: host.name,
                  role: role.name,
                  check: task.name,
                  passed,
                  msg: passed ? undefined : verifyFailureMessage(outcome.registered, outcome.status),
                  data: task.noLog ? undefined : (materialise(outcome.registered) as Record<string, unknown>),
                });
                if (outcome.status === 'unreachable') lost.add(host.name);
              }),
            ),
        );
      }
    }
    this.verifyFailures += failures;
    return failures;
  }

  private async runBatch(hosts: HostState[], ctx: PlayContext, tasks: Task[], handlers: Task[]): Promise<void> {
    const queue = new PQueue({ concurrency: Math.max(1, this.opts.forks) });
    const stop = () => this.opts.signal.aborted || ctx.aborted;
    if (ctx.play.strategy === 'linear') {
      if (ctx.play.gatherFacts) await Promise.all(hosts.map((h) => queue.add(() => this.gatherFacts(h, ctx))));
      for (const task of tasks) {
        if (stop()) break;
        await Promise.all(hosts.filter((h) => h.active).map((h) => queue.add(async () => { if (!stop() && h.active) await this.runTask(h, task, ctx); })));
      }
      for (const h of hosts) if (h.active && !stop()) await this.runHandlers(h, ctx, handlers);
      return;
    }
    await Promise.all(
      hosts.map((h) =>
        queue.add(async () => {
          if (ctx.play.gatherFacts) await this.gatherFacts(h, ctx);
          for (const task of tasks) {
            if (stop() || !h.active) break;
            await this.runTask(h, task, ctx);
          }
          if (h.active && !stop()) await this.runHandlers(h, ctx, handlers);
        }),
      ),
    );
  }

  async runPlay(play: Play, playbookDir: string, verifyOnly = false): Promise<void> {
    const selected = this.selectHosts(play.hosts, play.hostsLocation);
    const hosts = selected.map((n) => this.host(n)).filter((h) => h.active);
    this.opts.bus.emit({ type: 'play_start', time: now(), play: play.name, hosts: hosts.map((h) => h.name), check: this.opts.check });
    if (!hosts.length) {
      this.opts.bus.emit({ type: 'warning', time: now(), msg: `play "${play.name}": no hosts matched "${play.hosts}"${this.opts.limit ? ` with --limit ${this.opts.limit}` : ''}` });
      this.opts.bus.emit({ type: 'play_end', time: now(), play: play.name });
      return;
    }
    const ctx: PlayContext = { play, playbookDir, runOnce: new Map(), aborted: false, roleDefaults: this.roleDefaults(play), phase: 'tasks' };
    const tasks = verifyOnly ? [] : this.selectedTasks(play);
    const handlers = this.handlersOf(play);
    const batches = computeBatches(hosts, play.serial);
    const verifyEachBatch = this.opts.verify && !this.opts.check;
    for (let b = 0; b < batches.length; b++) {
      const batch = batches[b]!.filter((h) => h.active);
      if (this.opts.signal.aborted || ctx.aborted) break;
      if (batches.length > 1) {
        this.opts.bus.emit({ type: 'batch_start', time: now(), play: play.name, hosts: batch.map((h) => h.name), batch: b + 1, batches: batches.length });
      }
      ctx.runOnce = new Map();
      if (verifyOnly) {
        const queue = new PQueue({ concurrency: this.opts.forks });
        if (play.gatherFacts) await Promise.all(batch.map((h) => queue.add(() => this.gatherFacts(h, ctx))));
      } else {
        await this.runBatch(batch, ctx, tasks, handlers);
      }
      let verifyFailed = 0;
      if ((verifyEachBatch || verifyOnly) && !this.opts.signal.aborted) verifyFailed = await this.runVerify(batch, ctx);
      const failedInBatch = batch.filter((h) => !h.active).length;
      // As Ansible: when every host of a batch is lost, the play ends ("no more hosts left").
      if (batch.length > 0 && failedInBatch === batch.length && b < batches.length - 1) {
        ctx.aborted = true;
        this.opts.bus.emit({ type: 'warning', time: now(), msg: `play "${play.name}": every host of batch ${b + 1} failed; not touching the remaining hosts` });
      }
      if (play.anyErrorsFatal && failedInBatch > 0) {
        ctx.aborted = true;
        this.opts.bus.emit({ type: 'warning', time: now(), msg: `play "${play.name}": any_errors_fatal: stopping after a host failed` });
      }
      if (play.maxFailPercentage !== undefined && batch.length > 0 && (failedInBatch / batch.length) * 100 > play.maxFailPercentage) {
        ctx.aborted = true;
        this.opts.bus.emit({ type: 'warning', time: now(), msg: `play "${play.name}": ${failedInBatch} of ${batch.length} hosts failed, over max_fail_percentage ${play.maxFailPercentage}: stopping` });
      }
      if (verifyFailed > 0 && b < batches.length - 1 && !verifyOnly) {
        ctx.aborted = true;
        this.opts.bus.emit({ type: 'warning', time: now(), msg: `play "${play.name}": verification failed after batch ${b + 1} of ${batches.length}; not touching the remaining hosts` });
      }
    }
    this.opts.bus.emit({ type: 'play_end', time: now(), play: play.name });
  }

  async runPlaybook(playbook: Playbook, verifyOnly = false): Promise<RunOutcome> {
    this.validateRoleVars(playbook);
    for (const play of playbook.plays) {
      if (this.opts.signal.aborted) break;
      await this.runPlay(play, playbook.dir, verifyOnly);
    }
    return this.outcome();
  }

  /** `cairn run PATTERN -m MODULE -a ARGS`: one task on matching hosts, no facts. */
  async runAdhoc(pattern: string, task: Task): Promise<RunOutcome> {
    const play: Play = {
      name: `Ad hoc: ${task.module} on ${pattern}`,
      hosts: pattern,
      roles: [],
      tasks: [task],
      handlers: [],
      vars: {},
      serial: [],
      anyErrorsFatal: false,
      strategy: 'free',
      gatherFacts: false,
      tags: [],
      location: task.location,
    };
    await this.runPlay(play, process.cwd());
    return this.outcome();
  }

  outcome(): RunOutcome {
    const failedHosts = new Set<string>();
    const unreachableHosts = new Set<string>();
    for (const [name, h] of this.hosts) {
      if (h.failed) failedHosts.add(name);
      if (h.unreachable) unreachableHosts.add(name);
    }
    return { failedHosts, unreachableHosts, changed: this.changedAny, interrupted: this.opts.signal.aborted, verifyFailures: this.verifyFailures, inputErrors: this.inputErrors };
  }
}

/** A variable view with a few extra (already concrete) values on top, e.g. the registered result. */
function lazyVarsWith(vars: Vars, extra: Vars): Vars {
  return new Proxy(vars, {
    get(target, key, receiver) {
      if (typeof key === 'string' && Object.prototype.hasOwnProperty.call(extra, key)) return extra[key];
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      return (typeof key === 'string' && Object.prototype.hasOwnProperty.call(extra, key)) || Reflect.has(target, key);
    },
    getOwnPropertyDescriptor(target, key) {
      if (typeof key === 'string' && Object.prototype.hasOwnProperty.call(extra, key)) return { value: extra[key], enumerable: true, configurable: true, writable: true };
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  });
}
