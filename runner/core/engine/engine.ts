/**
 * The engine: schedules hosts (p-queue, --forks), runs each task through an executor, keeps per-host state
 * (facts, registered variables, notified handlers, failure), runs handlers and verifications, and emits a
 * typed event for everything. It never prints: reporters subscribe to the bus.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import PQueue from 'p-queue';
import { CairnError, formatLocation, inputError, type SourceLocation } from '../util/errors.js';
import type { Inventory } from '../inventory/types.js';
import { getModule } from '../modules/index.js';
import { foreignModule } from '../modules/foreign.js';
import { ANSIBLE_GATHERED } from './variables.js';
import type { AnyModule, ModuleContext, ModuleResult, Planned } from '../modules/types.js';
import { PlaybookLoader } from '../playbook/load.js';
import type { Play, Playbook, Task } from '../playbook/types.js';
import { includeVars } from './include-vars.js';
import { loopSubdir, searchCandidates, type SearchPath } from '../util/search-path.js';
import { extendedLoopVars, loopItems } from './loops.js';
import { compileSchema, describeAjvError } from '../util/schema.js';
import { snippetAt } from '../util/yaml-source.js';
import { evaluate, evaluateCondition } from '../template/index.js';
import type { Templater } from '../template/types.js';
import type { ValueOrigin } from '../template/index.js';
import { ansibleBool as filterBool, pythonString } from '../template/filters.js';
import { environmentExports, withEnvironment } from '../transport/environment.js';
import { asyncConnection } from './async-job.js';
import { ConnectionPool, openConnection, type ConnectionOpener } from '../transport/pool.js';
import {
  UnreachableError,
  type Connection,
  type ConnectionSpec,
  type ExecOptions,
  type ExecResult,
} from '../transport/types.js';
import { isPlainObject, layerVars, overlayVars, type Vars } from '../util/vars.js';
import { AnsibleVarWarnings, playConnectionVars } from './ansible-vars.js';
import { computeBatches } from './batches.js';
import { CONNECTION_VARIABLES, connectionSpecFor } from './connection-spec.js';
import {
  appliedAhead,
  applyExecutor,
  asyncApplyExecutor,
  batchedApplyExecutor,
  checkExecutor,
  fireAndForgetExecutor,
  verifyExecutor,
  type Executor,
} from './executor.js';
import { APPLY_BATCHABLE_MODULES, type ApplyJob } from './apply-batch.js';
import { BATCHABLE_MODULES, runChecksBatched, WatchedConnection, type CheckJob } from './probe-batch.js';
import { EventBus, now, type TaskRef, type TaskStatus } from './events.js';
import { materialise } from './lazy-vars.js';
import { taskSelected, type TagFilter } from './tags.js';
import { sleep } from '../util/sleep.js';
import {
  explainVariable,
  hostLayers,
  hostVariables,
  inventoryLayers,
  hostvarsView,
  mergeLayers,
  variablesView,
  type VarLayer,
} from './variables.js';

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
  /**
   * false: every task's check goes alone (one round trip per probe, as before issue 17's batching). For tests
   * that compare a batched run with an unbatched one; the CLI always batches.
   */
  probeBatching?: boolean;
  /**
   * true: the applies of consecutive independent tasks of a host travel in one round trip (apply-batch.ts,
   * Engine.applyBatchFor). Off unless asked: the session turns it on (cairn.cfg `apply_batching`,
   * CAIRN_APPLY_BATCHING); tests compare runs with it on and off.
   */
  applyBatching?: boolean;
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
  /**
   * Connection settings from the command line and ansible.cfg (-u, --private-key, -c, -b), as ansible_*
   * variables: every playbook keyword and inventory variable wins over them, as in Ansible.
   */
  connectionDefaults?: Vars;
  /** Opens a host's connection (default: the real transports); unit tests pass a fake. */
  openConnection?: ConnectionOpener;
  /** --start-at-task: tasks before the first one of this name (or glob) do not run. */
  startAtTask?: string;
  /** --step: asked once per task before it runs (on every host): run it, skip it, or stop asking. */
  confirmTask?: (task: Task) => Promise<'yes' | 'no' | 'continue'>;
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
  /** meta end_host / end_play / end_batch: the host's play is over, without failing it. */
  ended = false;
  /** Blocks with rescue or always the host is inside; each says whether it has a rescue. */
  catching: boolean[] = [];
  /** A failure inside a catching block, waiting for its rescue/always. */
  caught?: { task: Task; result: Record<string, unknown> };
  /** Variables of the scope the host runs in: rescue's ansible_failed_*, an include's loop variable. */
  scopeVars: Vars = {};
  /** Plans of later tasks, checked ahead in one round trip with an earlier task's (see Engine.batchedCheck). */
  readonly checkedAhead = new Map<Task, CheckedAhead>();
  /** How many tasks the next batch may check ahead: grows while nothing changes, drops to 1 after a change. */
  batchWindow?: number;
  /** The host connection's script count when the last batch was sent (WatchedConnection.execs). */
  execsAtBatch?: number;
  /** Later tasks whose applies already ran on the host, in an earlier task's batch (Engine.applyBatchFor). */
  readonly appliedAhead = new Map<Task, AppliedAhead>();
  /** How many tasks the next apply batch may hold: grows while every task of a batch runs. */
  applyWindow = FIRST_APPLY_BATCH;
  constructor(
    readonly name: string,
    /** The host's inventory layers (variables.ts), read once per run and again after add_host/group_by. */
    public inventoryLayers: VarLayer[],
    /** The inventory's revision when they were read. */
    public layersRevision: number,
  ) {}
  get active(): boolean {
    return !this.failed && !this.unreachable && !this.ended;
  }
}

/** A task's plan, checked ahead, and what must still hold when the task comes for it to be used. */
interface CheckedAhead {
  plan: Promise<Planned>;
  conn: WatchedConnection;
  /** Scripts sent through the host's connection at the time: any since means the host may have changed. */
  execs: number;
  argsKey: string;
  become: boolean;
  becomeUser: string;
}

/** A task's apply that ran in an earlier task's batch: its plan and result, and what it ran with. */
interface AppliedAhead {
  plan: Planned;
  result: Promise<ModuleResult>;
  conn: WatchedConnection;
  argsKey: string;
}

/** The first apply batch of a host: a few tasks, so a first task that fails wastes little rendering. */
const FIRST_APPLY_BATCH = 8;
/** Most tasks one apply batch holds (their output waits on the host until the last has run). */
const MAX_APPLY_BATCH = 64;

/** Most tasks one batch checks ahead (its script grows with each). */
const MAX_BATCH_WINDOW = 64;
/** The first batch of an applying run: large enough for a no-change rerun, small enough to waste little when the
 * first task changes something (its batch is then dropped and the window starts again at one). */
const FIRST_APPLY_WINDOW = 8;

interface PlayContext {
  play: Play;
  /**
   * Each top-level task's list and place in it, so a task can find the tasks after it. (Under the free strategy
   * a host may read another host's registered values at any moment: batching adds no race that free lacks.)
   */
  taskOrder?: Map<Task, { list: Task[]; index: number }>;
  playbookDir: string;
  /** run_once tasks started in the current batch, by task: their one outcome, shared by every host of the batch. */
  runOnce: Map<Task, Promise<TaskOutcome>>;
  /** any_errors_fatal tripped, or the run was interrupted: start no new tasks. */
  aborted: boolean;
  phase: 'tasks' | 'handlers' | 'verify';
  /** The play's handlers, with those of roles brought in by include_role as they are included. */
  handlers: Task[];
  /** The play's hosts and the current batch's (meta end_play, end_batch, clear_host_errors). */
  hosts: HostState[];
  batch: HostState[];
}

interface TaskOutcome {
  status: TaskStatus;
  registered: Record<string, unknown>;
  changed: boolean;
}

/** What a task_result event says besides its status. */
interface ResultDetails {
  msg?: string;
  result?: ModuleResult;
  predicted?: boolean;
  actions?: string[];
  ignored?: boolean;
  attempts?: number;
}

/** One item's module run: the judged result, or the host turned out unreachable. */
type Execution =
  | { unreachable: UnreachableError }
  | {
      unreachable?: undefined;
      result: ModuleResult;
      registered: Record<string, unknown>;
      failed: boolean;
      changed: boolean;
      predicted: boolean;
      actions: string[];
      attempts: number;
    };

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
    const messages = results
      .filter((r): r is Record<string, unknown> => isPlainObject(r) && r.failed === true)
      .map((r) => String(r.msg ?? 'failed'));
    if (messages.length) return messages.join('; ');
  }
  return status;
}

/**
 * Where a task keyword's value is written, so an error inside its `{{ }}` names that value's file:line:col
 * (a task built in code has only its own location). A loop may be written `with_items:`.
 */
function valueAt(task: Task, keyword: string, ...below: string[]): SourceLocation {
  if (!task.locate) return task.location;
  // A with_X loop is stored as the loop; its value sits under its own key.
  const withKey = keyword === 'loop' ? task.keywords?.find((k) => k.startsWith('with_')) : undefined;
  const key = withKey ?? keyword;
  return task.locate([key, ...below]);
}

type ConditionKeyword = 'when' | 'changed_when' | 'failed_when' | 'until';

/**
 * Every condition holds (evaluation stops at the first false one, as Ansible's); an error in one names that
 * condition's own file:line:col. `when` may hold a role's, block's or include's conditions in front of the
 * task's own (the loader recorded where each is written); the others are the task's own, item i at [keyword, i].
 */
function conditionsHold(task: Task, keyword: ConditionKeyword, conditions: string[], vars: Vars): boolean {
  return conditions.every((condition, i) => {
    const origin =
      keyword === 'when'
        ? (task.whenOrigins?.[i] ?? task.location)
        : task.locate
          ? task.locate([keyword, i])
          : task.location;
    return evaluateCondition(condition, vars, origin);
  });
}

/** Each argument's own location (the module's mapping, `args:` or the free-form string), for render errors. */
function argsAt(task: Task): ValueOrigin {
  return task.locateArg ?? task.location;
}

/** Two settings reach the host the same way (the become settings do not change the connection). */
function sameEndpoint(a: ConnectionSpec, b: ConnectionSpec): boolean {
  const endpoint = ({ become: _become, becomeUser: _becomeUser, ...rest }: ConnectionSpec) => JSON.stringify(rest);
  return endpoint(a) === endpoint(b);
}

function errorMessage(err: unknown): string {
  if (err instanceof CairnError) return err.render();
  return err instanceof Error ? err.message : String(err);
}

export class Engine {
  private readonly hosts = new Map<string, HostState>();
  private readonly pool: ConnectionPool;
  private readonly opts: EngineOptions;
  private changedAny = false;
  private verifyFailures = 0;
  /** Tasks that failed on bad input (undefined variable, template error): the run exits 5, not 2. */
  private inputErrors = 0;

  private readonly ansibleVarWarnings: AnsibleVarWarnings;
  /** The running play's connection keywords (remote_user, connection, port) as variables. */
  private playConnection: Vars = {};
  /**
   * Each host's connection settings, resolved once per play (they depend on the inventory, -e, the play's
   * connection keywords and what set_fact/include_vars/register wrote): specFor ran for every task on every
   * host and re-layered the host's variables each time (issue 17's 1000-host profile: hostVars 2.3 %,
   * existsSync 1.2 %). A write of a connection variable forgets the host's entry (setHostVars).
   */
  private readonly specs = new Map<string, ConnectionSpec>();
  /** The inventory path's folder, for relative key files: it does not change during a run. */
  private inventoryBaseDir?: string;
  /**
   * The playbook has add_host or group_by tasks: a play's pattern may name hosts and groups they create
   * during the run, so a name that matches nothing selects nothing (Ansible warns) instead of failing.
   */
  private inventoryActions = false;
  /** --start-at-task's task was reached (later plays run whole). */
  private startFound = false;
  /** --step: each task's answer (asked once for all hosts); 'continue' stops the asking. */
  private readonly stepAnswers = new Map<Task, Promise<'yes' | 'no' | 'continue'>>();
  private stepContinue = false;
  /** Each open connection as tasks see it: counting its scripts, for probe batching. */
  private readonly watched = new WeakMap<Connection, WatchedConnection>();

  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.ansibleVarWarnings = new AnsibleVarWarnings((msg) => opts.bus.emit({ type: 'warning', time: now(), msg }));
    this.pool = new ConnectionPool(opts.openConnection ?? openConnection, (spec, ms) =>
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
    const inv = this.opts.inventory;
    let state = this.hosts.get(name);
    if (!state) {
      state = new HostState(name, inventoryLayers(inv, name), inv.revision);
      this.hosts.set(name, state);
      this.ansibleVarWarnings.check(mergeLayers(state.inventoryLayers), `host ${name}`);
    } else {
      this.refreshLayers(state);
    }
    return state;
  }

  /**
   * Read a host's inventory layers again if add_host or group_by changed the inventory since they were read:
   * new groups bring their variables, and `groups` changed.
   */
  private refreshLayers(state: HostState): void {
    const inv = this.opts.inventory;
    if (state.layersRevision === inv.revision) return;
    state.inventoryLayers = inventoryLayers(inv, state.name);
    state.layersRevision = inv.revision;
  }

  private specFor(name: string): ConnectionSpec {
    const known = this.specs.get(name);
    if (known) return known;
    const inv = this.opts.inventory;
    const defaults = layerVars(this.opts.connectionDefaults ?? {}, this.playConnection);
    const state = this.hosts.has(name) ? this.host(name) : undefined;
    const hostVars = hostVariables({
      inventory: inv,
      host: name,
      inventoryLayers: state?.inventoryLayers,
      registered: state?.registered,
      extraVars: this.opts.extraVars,
    });
    const vars = layerVars(defaults, hostVars);
    this.inventoryBaseDir ??=
      existsSync(inv.path) && !inv.path.endsWith('.yaml') && !inv.path.endsWith('.yml')
        ? inv.path
        : resolve(inv.path, '..');
    const spec = connectionSpecFor(name, vars, {
      baseDir: this.inventoryBaseDir,
      acceptNewHostKeys: this.opts.acceptNewHostKeys,
      knownHostsPath: this.opts.knownHostsPath,
    });
    this.specs.set(name, spec);
    return spec;
  }

  /**
   * A new connection for the host in place of its pooled one (reboot, wait_for_connection). A failed attempt
   * is forgotten at once, so the next one really tries again instead of getting the remembered failure.
   */
  private async reconnect(name: string, connectTimeoutMs?: number): Promise<WatchedConnection> {
    await this.pool.drop(name);
    const spec = this.specFor(name);
    try {
      return this.watch(await this.pool.get(connectTimeoutMs !== undefined ? { ...spec, connectTimeoutMs } : spec));
    } catch (err) {
      await this.pool.drop(name);
      throw err;
    }
  }

  private async connect(name: string): Promise<WatchedConnection> {
    return this.watch(await this.pool.get(this.specFor(name)));
  }

  /** The one counting wrapper of a pooled connection (probe batching knows what was sent since a batch). */
  private watch(raw: Connection): WatchedConnection {
    let watched = this.watched.get(raw);
    if (!watched) {
      watched = new WatchedConnection(raw);
      this.watched.set(raw, watched);
    }
    return watched;
  }

  /**
   * set_fact, include_vars and register write a host's variables here. A connection variable among them
   * (ansible_host, ansible_port, ansible_user...) takes effect from the host's next task, as in Ansible: its
   * settings are resolved again, and if where or how it is reached changed, its pooled connection is let go
   * (the next task connects afresh; the host's own tasks run one at a time, so none is using it now).
   */
  /** The host whose facts a task writes: the delegated one under `delegate_facts` (Ansible), else its own. */
  private factHost(host: HostState, task: Task, vars: Vars): HostState {
    if (!task.delegateFacts || task.delegateTo === undefined) return host;
    return this.host(String(this.opts.templater.renderValue(task.delegateTo, vars, valueAt(task, 'delegate_to'))));
  }

  private setHostVars(host: HostState, values: Vars): void {
    Object.assign(host.registered, values);
    if (!Object.keys(values).some((name) => CONNECTION_VARIABLES.has(name))) return;
    const before = this.specs.get(host.name);
    this.specs.delete(host.name);
    if (before && !sameEndpoint(before, this.specFor(host.name))) void this.pool.drop(host.name);
  }

  /**
   * Hosts a play runs on: its pattern, narrowed by --limit and --rerun, without hosts already lost. A
   * pattern that matches nothing is reported at `where` (the play's `hosts:` value) when it is known.
   */
  selectHosts(pattern: string, where?: SourceLocation, allowUnknown = this.inventoryActions): string[] {
    const inv = this.opts.inventory;
    let hosts: string[];
    try {
      hosts = inv.select(pattern, { allowUnknown });
    } catch (err) {
      if (err instanceof CairnError && where && !err.location)
        throw inputError(`play "hosts": ${err.message}`, where, snippetAt(where));
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
    this.inventoryActions ||= changesInventory(playbook);
    for (const play of playbook.plays) {
      const hosts = this.selectHosts(play.hosts, play.hostsLocation);
      for (const role of play.roles) {
        if (!role.schema || !this.roleWanted(role.name)) continue;
        const validate = compileSchema(role.schema);
        for (const host of hosts) {
          const layers = hostLayers({
            inventory: this.opts.inventory,
            host,
            play,
            role,
            extraVars: this.opts.extraVars,
          });
          const vars: Vars = mergeLayers(layers);
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
          const from = explainVariable(layers, variable)?.from;
          const inPlay = from?.layer === 'role vars' || from?.layer === 'play vars';
          const shown = from?.location && (inPlay || from.layer.startsWith('inventory'));
          const where = shown ? ` (set in ${inPlay ? 'the play at ' : ''}${formatLocation(from.location!)})` : '';
          throw inputError(
            `host ${host}: role ${role.name}: variable ${d.message.replace(/^"/, '"')}${where}; see ${join(role.dir, 'schema.json')}`,
          );
        }
      }
    }
  }

  private roleWanted(role: string): boolean {
    return !this.opts.roles || this.opts.roles.includes(role);
  }

  /** The variables a task sees, layered as documented in docs/variables.md and rendered lazily. */
  private varsFor(host: HostState, ctx: PlayContext, task: Task, extra?: Vars): Vars {
    this.refreshLayers(host);
    const role = task.roleRef ?? ctx.play.roles.find((r) => r.name === task.role);
    const layers = hostLayers({
      inventory: this.opts.inventory,
      host: host.name,
      inventoryLayers: host.inventoryLayers,
      play: ctx.play,
      role,
      facts: host.facts,
      registered: host.registered,
      taskVars: task.vars,
      taskVarOrigins: task.varOrigins,
      taskLocation: task.location,
      loopVars: Object.keys(host.scopeVars).length ? { ...host.scopeVars, ...extra } : extra,
      extraVars: this.opts.extraVars,
      builtins: {
        hostvars: this.hostvarsView(),
        cairn_check_mode: this.opts.check,
        ansible_check_mode: this.opts.check,
        role_name: task.role,
        role_path: role?.dir,
        ansible_search_path: this.searchPathOf(task, ctx).stack,
      },
    });
    return variablesView(
      layers,
      (template, context, origin) => this.opts.templater.renderValue(template, context, origin),
      task.location,
    );
  }

  /** One `hostvars` view for the run: it reads the inventory and the hosts' state when read, so it is never stale. */
  private hostvars?: Vars;

  private hostvarsView(): Vars {
    return (this.hostvars ??= hostvarsView(this.opts.inventory, (host) => this.hosts.get(host)));
  }

  private executorFor(task: Task, ctx: PlayContext): Executor {
    if (ctx.phase === 'verify') return verifyExecutor;
    if (task.checkMode === true) return checkExecutor;
    if (task.checkMode === false) return applyExecutor;
    return this.opts.check ? checkExecutor : applyExecutor;
  }

  /**
   * The user a task becomes: `become_user` is templated like any task keyword (`{{ svc_user }}`), then must
   * be a plain user name or `#uid` (it reaches sudo's argv on the host).
   */
  private becomeUserFor(host: HostState, task: Task, vars: Vars, ctx: PlayContext): string {
    const raw = task.becomeUser ?? ctx.play.becomeUser ?? this.specFor(host.name).becomeUser;
    const rendered =
      raw.includes('{{') || raw.includes('{%')
        ? this.opts.templater.renderValue(raw, vars, task.becomeUser ? valueAt(task, 'become_user') : task.location)
        : raw;
    if (typeof rendered !== 'string' || !/^(#\d+|[A-Za-z0-9_][A-Za-z0-9_.-]*\$?)$/.test(rendered)) {
      throw inputError(`become_user must be a user name or #uid, got ${JSON.stringify(rendered)}`, task.location);
    }
    return rendered;
  }

  /**
   * The task's `environment` for this host: each layer (play, blocks, includes, role, task) rendered and
   * merged in order, inner names winning; values as Python's str() writes them, as Ansible passes them.
   */
  private environmentFor(task: Task, vars: Vars): Record<string, string> | undefined {
    if (!task.environment?.length) return undefined;
    const merged: Record<string, string> = {};
    for (const layer of task.environment) {
      const value = this.opts.templater.renderValue(layer, vars, valueAt(task, 'environment'));
      if (value === null || value === undefined || value === '') continue;
      if (typeof value !== 'object' || Array.isArray(value))
        throw inputError(
          `environment must be a mapping of variable names to values, got ${JSON.stringify(value)}`,
          valueAt(task, 'environment'),
        );
      for (const [name, v] of Object.entries(value as Record<string, unknown>))
        merged[name] = typeof v === 'string' ? v : pythonString(v);
    }
    environmentExports(merged); // a bad name fails the task here, at the keyword, before the host is asked
    return merged;
  }

  private moduleContext(
    host: HostState,
    conn: Connection,
    task: Task,
    vars: Vars,
    ctx: PlayContext,
    becomeUser: string,
  ): ModuleContext {
    const spec = this.specFor(host.name);
    const become = task.become ?? ctx.play.become ?? spec.become;
    return {
      host: host.name,
      conn,
      become,
      becomeUser,
      vars,
      facts: host.facts,
      taskLocation: task.location,
      signal: this.opts.signal,
      local: spec.connection === 'local',
      reconnect: (opts) => this.reconnect(host.name, opts?.connectTimeoutMs),
      findLocalFile: (kind, rel) => this.findLocalFile(kind, rel, this.searchPathOf(task, ctx), task.location),
      playbookDir: ctx.playbookDir,
      renderTemplateFile: (path, v) => this.opts.templater.renderFile(path, v),
      evaluate: (expression, v, argPath) =>
        evaluate(expression, v, argPath && task.locateArg ? task.locateArg(argPath) : task.location),
    };
  }

  /** A template or copy source, found along the task's search path (Ansible's `_find_needle`). */
  private findLocalFile(kind: 'templates' | 'files', rel: string, path: SearchPath, where: SourceLocation): string {
    const candidates = searchCandidates(path, kind, rel);
    const found = candidates.find((p) => existsSync(p));
    if (found) return found;
    const what = kind === 'templates' ? 'template' : 'file';
    if (isAbsolute(rel) || rel.startsWith('~')) throw inputError(`${what} "${rel}" does not exist`, where);
    throw inputError(`${what} "${rel}" not found (looked in: ${candidates.join(', ')})`, where);
  }

  // ---------------------------------------------------------------- tasks

  private emitResult(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    status: TaskStatus,
    started: number,
    extra: ResultDetails & { registered?: Record<string, unknown>; item?: unknown; loopSummary?: boolean },
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
      // Rendered file contents go into events (so the JSON output and the journal) only when --diff asked.
      diffs: hidden || !this.opts.diff ? undefined : extra.result?.diffs,
      result: hidden ? undefined : extra.registered,
      durationMs: Date.now() - started,
      handler: ctx.phase === 'handlers' || undefined,
      verify: ctx.phase === 'verify' || undefined,
      ignored: extra.ignored || undefined,
      // A failure a block's rescue takes over is counted "rescued", as Ansible's recap does.
      rescued: (status === 'failed' && !extra.ignored && host.catching.includes(true)) || undefined,
      check: extra.predicted || undefined,
      attempts: extra.attempts,
    });
  }

  /** Run one task on one host (all loop items), emit its events and update the host's state. */
  async runTask(host: HostState, task: Task, ctx: PlayContext): Promise<TaskOutcome> {
    if (task.block) return this.runBlock(host, task, ctx);
    if (this.opts.confirmTask && ctx.phase === 'tasks' && !this.stepContinue && task.name !== 'Gathering Facts') {
      let answer = this.stepAnswers.get(task);
      if (!answer) {
        answer = this.opts.confirmTask(task);
        this.stepAnswers.set(task, answer);
      }
      const said = await answer;
      if (said === 'continue') this.stepContinue = true;
      if (said === 'no') return { status: 'skipped', registered: { changed: false, skipped: true }, changed: false };
    }
    if (task.module === 'meta') return this.runMeta(host, task, ctx);
    // add_host bypasses the host loop as run_once does (Ansible's BYPASS_HOST_LOOP, strategy/linear.py).
    if (task.runOnce || getModule(task.module)?.bypassHostLoop) {
      const existing = ctx.runOnce.get(task);
      if (existing) {
        const outcome = await existing;
        if (task.register) this.setHostVars(host, { [task.register]: outcome.registered });
        return outcome;
      }
      const promise = this.runTaskNow(host, task, ctx);
      ctx.runOnce.set(task, promise);
      return promise;
    }
    return this.runTaskNow(host, task, ctx);
  }

  private async runTaskNow(host: HostState, planned: Task, ctx: PlayContext): Promise<TaskOutcome> {
    const started = Date.now();
    let task = planned;
    this.opts.bus.emit({
      type: 'task_start',
      time: now(),
      host: host.name,
      task: taskRef(task),
      handler: ctx.phase === 'handlers' || undefined,
      verify: ctx.phase === 'verify' || undefined,
    });
    let items: unknown[] | undefined;
    const baseVars = this.varsFor(host, ctx, task);
    try {
      // A templated ignore_errors is this host's value from here on (the copy keeps every other field).
      if (task.ignoreErrorsTemplate !== undefined) {
        const value = this.opts.templater.renderValue(
          task.ignoreErrorsTemplate,
          baseVars,
          valueAt(task, 'ignore_errors'),
        );
        task = { ...task, ignoreErrors: filterBool(value) };
      }
      // Templated no_log and retries likewise; no_log stays true if its template fails (nothing is shown).
      if (task.noLogTemplate !== undefined) {
        const value = this.opts.templater.renderValue(task.noLogTemplate, baseVars, valueAt(task, 'no_log'));
        task = { ...task, noLog: filterBool(value) };
      }
      if (task.retriesTemplate !== undefined) {
        const rendered = this.opts.templater.renderValue(task.retriesTemplate, baseVars, valueAt(task, 'retries'));
        const retries = Number(rendered);
        if (!Number.isInteger(retries) || retries < 0)
          throw inputError(
            `retries must be a whole number ≥ 0, got ${JSON.stringify(rendered)}`,
            valueAt(task, 'retries'),
          );
        task = { ...task, retries };
      }
      if (task.delayTemplate !== undefined) {
        const rendered = this.opts.templater.renderValue(task.delayTemplate, baseVars, valueAt(task, 'delay'));
        const delay = Number(rendered);
        if (!Number.isFinite(delay) || delay < 0)
          throw inputError(
            `delay must be a number of seconds ≥ 0, got ${JSON.stringify(rendered)}`,
            valueAt(task, 'delay'),
          );
        task = { ...task, delay };
      }
      if (task.loop !== undefined) items = this.itemsOf(task, baseVars, ctx);
    } catch (err) {
      return this.finishFailed(host, task, ctx, started, this.failureMessage(err, task));
    }

    if (task.include && task.include.kind !== 'vars') return this.runInclude(host, task, ctx, items, started);
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
    for (const [index, item] of items.entries()) {
      if (this.opts.signal.aborted) break;
      // Items of a module that never waits on a host (debug, assert, set_fact) resolve as microtasks: without
      // a turn of the event loop now and then, 20,000 of them starve every connection's keepalive answers
      // (hosts were marked unreachable: "no answer to keepalives") and Ctrl-C.
      if (index % 100 === 99) await new Promise<void>((resolve) => setImmediate(resolve));
      if (index > 0 && task.loopControl?.pause) await sleep(task.loopControl.pause * 1000, this.opts.signal);
      const itemVars = this.varsFor(host, ctx, task, this.loopScope(task, items, index));
      const shown = this.itemLabel(task, itemVars, item);
      const outcome = await this.runItem(host, task, ctx, itemVars, shown, Date.now());
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
    const registered: Record<string, unknown> = {
      results,
      changed: anyChanged,
      failed: anyFailed || anyIgnoredFail,
      skipped: allSkipped,
    };
    const status: TaskStatus = unreachable
      ? 'unreachable'
      : anyFailed || anyIgnoredFail
        ? 'failed'
        : allSkipped
          ? 'skipped'
          : anyChanged
            ? 'changed'
            : 'ok';
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
    if (task.register) this.setHostVars(host, { [task.register]: registered });
    this.afterTask(host, task, ctx, summary, anyIgnoredFail && !anyFailed);
    return summary;
  }

  private finishFailed(host: HostState, task: Task, ctx: PlayContext, started: number, msg: string): TaskOutcome {
    const registered = { failed: true, changed: false, msg };
    this.emitResult(host, task, ctx, 'failed', started, { msg, registered, ignored: task.ignoreErrors });
    const outcome: TaskOutcome = { status: 'failed', registered, changed: false };
    if (task.register) this.setHostVars(host, { [task.register]: registered });
    this.afterTask(host, task, ctx, outcome, task.ignoreErrors);
    return outcome;
  }

  private afterTask(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    outcome: TaskOutcome,
    ignored = task.ignoreErrors,
  ): void {
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
      // Inside a block with rescue or always, the block decides what the failure means.
      if (host.catching.length) host.caught ??= { task, result: outcome.registered };
      else this.markFailed(host, task, ctx, outcome.registered);
    }
  }

  private markFailed(host: HostState, task: Task, ctx: PlayContext, registered: Record<string, unknown>): void {
    if (host.failed) return;
    host.failed = true;
    const msg = task.noLog ? NO_LOG_MSG : String(registered.msg ?? 'task failed');
    this.opts.bus.emit({ type: 'host_failed', time: now(), host: host.name, msg });
    if (ctx.play.anyErrorsFatal) ctx.aborted = true;
  }

  /**
   * A failure's message. Bad input (an undefined variable, a template or argument error) is counted here and
   * nowhere else, so it gives the same exit code wherever it is found: loop, when, arguments, set_fact,
   * changed_when, failed_when, until.
   */
  private failureMessage(err: unknown, task?: Task): string {
    // An error that ignore_errors lets pass never makes the run exit 5.
    if (isInputError(err) && !task?.ignoreErrors) this.inputErrors++;
    return errorMessage(err);
  }

  /** One iteration: `when`, then set_fact or a module run (connect, execute with retries, judge), then report. */
  private async runItem(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    vars: Vars,
    item: unknown,
    started: number,
  ): Promise<TaskOutcome> {
    const finish = (
      status: TaskStatus,
      registered: Record<string, unknown>,
      extra: ResultDetails = {},
      changed = false,
    ) => {
      this.emitResult(host, task, ctx, status, started, { ...extra, registered, item });
      if (item === undefined && task.register) this.setHostVars(host, { [task.register]: registered });
      return { status, registered, changed };
    };
    const fail = (err: unknown): TaskOutcome => {
      const msg = this.failureMessage(err, task);
      return finish('failed', { failed: true, changed: false, msg }, { msg, ignored: task.ignoreErrors });
    };

    let args: Record<string, unknown>;
    let module: AnyModule;
    let becomeUser: string;
    let environment: Record<string, string> | undefined;
    try {
      if (task.when.length && !conditionsHold(task, 'when', task.when, vars)) {
        const registered = { changed: false, skipped: true, skip_reason: 'Conditional result was False' };
        return finish('skipped', registered, { msg: `when: ${task.when.join(' and ')}` });
      }
      if (task.module === 'set_fact') {
        const values = materialise(this.opts.templater.renderValue(task.args, vars, argsAt(task))) as Vars;
        this.setHostVars(this.factHost(host, task, vars), values);
        return finish('ok', { changed: false, ansible_facts: values });
      }
      if (task.module === 'include_vars') {
        const values = includeVars(task, vars, this.opts.templater, this.searchPathOf(task, ctx));
        this.setHostVars(host, values.vars);
        return finish('ok', { changed: false, ansible_facts: values.vars, ansible_included_var_files: values.files });
      }
      // A module cairn knows by name but does not run (foreign.ts) is not in the registry; it fails the task.
      module = getModule(task.module) ?? foreignModule(task.module);
      args = this.renderArgs(module, task, vars);
      if (module.inventoryRequest) {
        const { registered, changed } = this.runInventoryAction(host, module, args, task);
        return finish(changed ? 'changed' : 'ok', registered, {}, changed);
      }
      becomeUser = this.becomeUserFor(host, task, vars, ctx);
      environment = this.environmentFor(task, vars);
    } catch (err) {
      return fail(err);
    }

    const target = task.delegateTo
      ? String(this.opts.templater.renderValue(task.delegateTo, vars, valueAt(task, 'delegate_to')))
      : host.name;
    let conn: WatchedConnection;
    try {
      conn = await this.connect(target);
    } catch (err) {
      return this.unreachable(host, task, ctx, started, err, item, target);
    }
    // Sends through the environment still reach the host's counting wrapper (probe batching sees them).
    if (environment) conn = new WatchedConnection(withEnvironment(conn, environment));
    const run = await this.executeWithRetries(module, conn, args, host, task, ctx, vars, becomeUser);
    if (run.unreachable) return this.unreachable(host, task, ctx, started, run.unreachable, item, target);
    const { result, registered, failed, changed } = run;
    if (!failed) absorbFacts(task.delegateFacts ? this.host(target) : host, module.name, registered);
    const status: TaskStatus = failed ? 'failed' : result.skipped && !changed ? 'skipped' : changed ? 'changed' : 'ok';
    return finish(
      status,
      registered,
      {
        result,
        msg: failed ? String(registered.msg ?? 'failed') : (result.skipped ?? undefined),
        predicted: run.predicted,
        actions: run.actions,
        ignored: failed && task.ignoreErrors,
        attempts: task.until ? run.attempts : undefined,
      },
      changed,
    );
  }

  /**
   * add_host and group_by: the request applied to the run's inventory (Ansible's strategy hands the action's
   * result to add_dynamic_host/add_dynamic_group). The same in check mode: it changes no host. add_host is
   * changed when the inventory changed (add_dynamic_host sets it); group_by is always ok, as in Ansible.
   */
  private runInventoryAction(
    host: HostState,
    module: AnyModule,
    args: Record<string, unknown>,
    task: Task,
  ): { registered: Record<string, unknown>; changed: boolean } {
    const inv = this.opts.inventory;
    const request = module.inventoryRequest!(args, task.location);
    const update =
      request.kind === 'add_host'
        ? inv.addHost(request.host, request.groups, request.vars, task.location)
        : inv.addHostToGroup(host.name, request.group, request.parents, task.location);
    for (const secret of update.secrets) this.opts.addSecret?.(secret);
    if (update.changed) this.inventoryChanged();
    if (request.kind === 'group_by')
      return {
        registered: { changed: false, add_group: request.group, parent_groups: request.parents },
        changed: false,
      };
    const added = { host_name: request.host, groups: request.groups, host_vars: request.vars };
    return { registered: { changed: update.changed, add_host: added }, changed: update.changed };
  }

  /**
   * Every host's settings are resolved again (add_host's variables, or a new group's, may set ansible_host or
   * ansible_user); a host whose endpoint moved lets its pooled connection go, as setHostVars does.
   */
  private inventoryChanged(): void {
    const before = [...this.specs];
    this.specs.clear();
    for (const [name, spec] of before) {
      try {
        if (!sameEndpoint(spec, this.specFor(name))) void this.pool.drop(name);
      } catch {
        // Bad settings now: the host's next task reports them where they are used.
        void this.pool.drop(name);
      }
    }
  }

  /** The task's arguments rendered with the host's variables and checked against the module's schema. */
  private renderArgs(module: AnyModule, task: Task, vars: Vars): Record<string, unknown> {
    const args = materialise(this.opts.templater.renderValue(task.args, vars, argsAt(task))) as Record<string, unknown>;
    const validate = compileSchema(module.argsSchema);
    if (!validate(args)) {
      const d = describeAjvError(validate.errors![0]!, args, `module "${module.name}"`);
      throw inputError(`module "${module.name}" after rendering its arguments: ${d.message}`, task.location);
    }
    // No shell command can carry a NUL byte (it used to cut the SSH connection): refused here, as a task
    // error that names the argument, so ignore_errors applies.
    const withNul = nulBytePath(args);
    if (withNul !== undefined) {
      throw inputError(
        `module "${module.name}": argument ${withNul} contains a NUL byte, which cannot be sent to a host`,
        task.location,
      );
    }
    return args;
  }

  /** Run the module, judge each attempt (changed_when/failed_when) and retry until `until` holds. */
  private async executeWithRetries(
    module: AnyModule,
    conn: WatchedConnection,
    args: Record<string, unknown>,
    host: HostState,
    task: Task,
    ctx: PlayContext,
    vars: Vars,
    becomeUser: string,
  ): Promise<Execution> {
    const plainExecutor = this.executorFor(task, ctx);
    const mctx = this.moduleContext(host, conn, task, vars, ctx, becomeUser);
    const asyncSpec = task.async;
    const executor =
      asyncSpec && plainExecutor.kind === 'apply' && asyncSpec.pollSeconds === 0
        ? fireAndForgetExecutor(asyncSpec.seconds)
        : asyncSpec && plainExecutor.kind === 'apply'
          ? asyncApplyExecutor((c) => ({ ...c, conn: asyncConnection(c.conn, { ...asyncSpec, signal: c.signal }) }))
          : plainExecutor;
    const maxAttempts = task.until ? (task.retries ?? 3) + 1 : 1;
    for (let attempts = 1; ; attempts++) {
      let result: ModuleResult;
      let predicted = false;
      let actions: string[] = [];
      try {
        // Ran already in an earlier task's apply batch; else maybe the first of one (issue 17, item 3).
        const ahead = attempts === 1 ? this.takeAppliedAhead(module, conn, args, host, task) : undefined;
        const runModule =
          ahead ?? (attempts === 1 ? await this.batchedCheck(module, conn, mctx, args, host, task, ctx) : module);
        const runExecutor =
          ahead === undefined && attempts === 1 && executor === applyExecutor
            ? (this.applyBatchFor(host, task, ctx, conn, mctx, module) ?? executor)
            : executor;
        const execution = await runExecutor.run(runModule, mctx, args);
        ({ result, predicted } = execution);
        actions = execution.plan.actions;
      } catch (err) {
        if (err instanceof UnreachableError) return { unreachable: err };
        result = { changed: false, failed: true, msg: this.failureMessage(err, task), data: {} };
      }
      const registered: Record<string, unknown> = {
        ...result.data,
        changed: result.changed,
        failed: result.failed === true,
      };
      if (result.msg !== undefined) registered.msg = result.msg;
      if (result.skipped) registered.skipped = true;
      if (task.until) registered.attempts = attempts;
      const withResult = task.register ? overlayVars(vars, { [task.register]: registered }) : vars;
      let failed: boolean;
      let changed = result.changed;
      let untilMet = true;
      let badInput = false;
      try {
        ({ failed, changed } = this.judge(task, module, result, predicted, withResult));
        // As Ansible (task_executor.py: `cond.when = self._task.until`), `until` is asked of every attempt,
        // failed ones too: `until: r.rc != 1` stops at rc 2, and the task then fails with that attempt.
        if (task.until) untilMet = conditionsHold(task, 'until', task.until, withResult);
      } catch (err) {
        // Bad input in a condition does not get better by retrying.
        failed = true;
        badInput = true;
        registered.msg = this.failureMessage(err, task);
      }
      registered.changed = changed;
      registered.failed = failed;
      const done = !task.until || badInput || untilMet;
      if (done || attempts >= maxAttempts || this.opts.signal.aborted) {
        if (!failed && !untilMet) {
          failed = true;
          registered.failed = true;
          registered.msg = `until condition not met after ${attempts} attempts: ${task.until!.join(' and ')}`;
        }
        return { result, registered, failed, changed, predicted, actions, attempts };
      }
      await sleep((task.delay ?? 5) * 1000, this.opts.signal);
    }
  }

  /** A task may be checked ahead (with the tasks before it) only where nothing between can change its input. */
  private batchable(task: Task, ctx: PlayContext, module: AnyModule): boolean {
    return (
      ctx.phase === 'tasks' &&
      this.opts.confirmTask === undefined &&
      BATCHABLE_MODULES.has(module.name) &&
      task.loop === undefined &&
      task.delegateTo === undefined &&
      task.until === undefined &&
      !task.runOnce &&
      task.block === undefined &&
      task.include === undefined &&
      // A batch travels on the bare connection: its probes would lose the task's exported environment.
      !task.environment?.length
    );
  }

  /**
   * The module to run `task` with: itself, or — when its plan was checked ahead in an earlier batch and the
   * host cannot have changed since — a view of it whose `check` returns that plan. Otherwise this task's check
   * is sent now, together with the checks of the next tasks of its list that may be checked ahead (issue 17,
   * item 3): consecutive batchable tasks, up to the host's window, ending with the first that registers a
   * result (a later task may read it). A plan checked ahead is used only if its task's arguments, become and
   * connection are what they are now and not one script was sent to the host since the batch (every apply is
   * one): a change by task k drops the plans of k+1…, which are checked again, so apply sees the host as it is.
   */
  private async batchedCheck(
    module: AnyModule,
    conn: WatchedConnection,
    mctx: ModuleContext,
    args: Record<string, unknown>,
    host: HostState,
    task: Task,
    ctx: PlayContext,
  ): Promise<AnyModule> {
    if (this.opts.probeBatching === false || !this.batchable(task, ctx, module)) return module;
    const argsKey = JSON.stringify(args);
    const ahead = host.checkedAhead.get(task);
    if (ahead) {
      host.checkedAhead.delete(task);
      const valid =
        ahead.conn === conn &&
        ahead.execs === conn.execs &&
        ahead.argsKey === argsKey &&
        ahead.become === mctx.become &&
        ahead.becomeUser === mctx.becomeUser;
      if (valid) return withPlan(module, ahead.plan);
    }
    host.checkedAhead.clear();
    // Slow start: the window doubles while nothing changed since the last batch, and is one after a change.
    const checking = this.executorFor(task, ctx).kind === 'check';
    const window =
      host.execsAtBatch === undefined
        ? checking
          ? MAX_BATCH_WINDOW
          : FIRST_APPLY_WINDOW
        : host.execsAtBatch === conn.execs
          ? Math.min(MAX_BATCH_WINDOW, (host.batchWindow ?? 1) * 2)
          : 1;
    host.batchWindow = window;
    const jobs: CheckJob[] = [{ module, ctx: mctx, args }];
    const later: Array<{ task: Task; argsKey: string }> = [];
    const order = ctx.taskOrder?.get(task);
    if (order && task.register === undefined) {
      for (let i = order.index + 1; i < order.list.length && jobs.length < window; i++) {
        const next = order.list[i]!;
        const job = this.checkAheadJob(host, next, ctx, conn, mctx);
        if (!job) break;
        jobs.push(job);
        later.push({ task: next, argsKey: JSON.stringify(job.args) });
        if (next.register !== undefined) break;
      }
    }
    const plans = await runChecksBatched(conn.inner, jobs);
    host.execsAtBatch = conn.execs;
    later.forEach((entry, index) => {
      host.checkedAhead.set(entry.task, {
        plan: plans[index + 1]!,
        conn,
        execs: conn.execs,
        argsKey: entry.argsKey,
        become: mctx.become,
        becomeUser: mctx.becomeUser,
      });
    });
    return withPlan(module, plans[0]!);
  }

  /**
   * The executor that sends `task`'s apply together with the applies of the tasks after it (issue 17, item 3),
   * or undefined when it goes alone. The followers are consecutive tasks of the same list that cannot depend
   * on each other's results (applyFollower says what that means), up to the host's window; the batch ends
   * after a task that registers a result or has failed_when (a later task may read it, or the engine may judge
   * a failure the host did not see). Each follower's result is kept for its own turn (takeAppliedAhead): its
   * events, `when`, judgement and recap come then, as they would unbatched.
   */
  private applyBatchFor(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    conn: WatchedConnection,
    lead: ModuleContext,
    module: AnyModule,
  ): Executor | undefined {
    if (!this.opts.applyBatching || !this.leadsApplyBatch(task, ctx, module)) return undefined;
    const order = ctx.taskOrder?.get(task);
    if (!order || order.index + 1 >= order.list.length) return undefined;
    const window = host.applyWindow;
    const tasks: Task[] = [];
    const jobs: ApplyJob[] = [];
    return batchedApplyExecutor({
      goOn: task.ignoreErrors,
      followers: async () => {
        for (let i = order.index + 1; i < order.list.length && jobs.length + 1 < window; i++) {
          const next = order.list[i]!;
          const job = await this.applyFollower(host, next, ctx, conn, lead);
          if (!job) break;
          jobs.push(job);
          tasks.push(next);
          if (next.register !== undefined || next.failedWhen !== undefined) break;
        }
        return jobs;
      },
      settle: (outcomes) => {
        let all = true;
        outcomes.forEach((outcome, k) => {
          if (!outcome.ran) {
            all = false;
            return;
          }
          const job = jobs[k]!;
          host.appliedAhead.set(tasks[k]!, {
            plan: job.plan,
            result: outcome.result,
            conn,
            argsKey: JSON.stringify(job.args),
          });
        });
        host.applyWindow = all ? Math.min(MAX_APPLY_BATCH, window * 2) : FIRST_APPLY_BATCH;
      },
    });
  }

  /**
   * A task may start an apply batch, or join one, only where the engine would run its apply at once with the
   * plain apply executor, on the host's own connection, with nothing between its check and its apply that
   * another task's result could change: no loop, until, async, delegate_to, run_once, environment, include or
   * block; not in check mode, handlers or verification; not under --step or any_errors_fatal (a failure on
   * another host must stop this host before its next task, which a batch would already have run).
   */
  private leadsApplyBatch(task: Task, ctx: PlayContext, module: AnyModule): boolean {
    return (
      APPLY_BATCHABLE_MODULES.has(module.name) &&
      this.batchable(task, ctx, module) &&
      task.async === undefined &&
      this.executorFor(task, ctx) === applyExecutor &&
      task.register === undefined &&
      task.failedWhen === undefined &&
      !ctx.play.anyErrorsFatal
    );
  }

  /**
   * A later task's apply, prepared now to travel in an earlier task's batch; undefined ends the batch there.
   * It joins only if, besides what leadsApplyBatch asks, its `when` holds and its arguments render now (nothing
   * in the batch can change them: no task before it in the batch registers a result, and set_fact, include_vars
   * and meta end a batch), its keywords are not templated per host, its become is the lead's, and its check
   * plans a change without asking the host (a check that probes would read the host before the earlier tasks
   * changed it).
   */
  private async applyFollower(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    conn: WatchedConnection,
    lead: ModuleContext,
  ): Promise<ApplyJob | undefined> {
    if (task.module === 'meta' || task.module === 'set_fact' || task.module === 'include_vars') return undefined;
    const templated = [task.ignoreErrorsTemplate, task.noLogTemplate, task.retriesTemplate, task.delayTemplate];
    if (templated.some((t) => t !== undefined)) return undefined;
    try {
      const module = getModule(task.module) as AnyModule | undefined;
      if (!module || !this.leadsApplyBatch({ ...task, register: undefined, failedWhen: undefined }, ctx, module))
        return undefined;
      const vars = this.varsFor(host, ctx, task);
      if (task.when.length && !conditionsHold(task, 'when', task.when, vars)) return undefined;
      const args = this.renderArgs(module, task, vars);
      const becomeUser = this.becomeUserFor(host, task, vars, ctx);
      const mctx = this.moduleContext(host, conn, task, vars, ctx, becomeUser);
      if (mctx.become !== lead.become || mctx.becomeUser !== lead.becomeUser) return undefined;
      const plan = await module.check({ ...mctx, conn: new HostFreeConnection(conn) }, args);
      if (plan.failed !== undefined || !plan.changed || module.readOnly) return undefined;
      return { module, ctx: mctx, args, plan, goOn: task.ignoreErrors };
    } catch {
      // Its input cannot be rendered now, or its check needs the host: it runs on its own when it comes.
      return undefined;
    }
  }

  /**
   * The module to run `task` with when its apply already ran in an earlier task's batch: a view whose check
   * and apply answer what was planned and done then. Its arguments were rendered then with the same variables
   * (applyFollower's rule); a difference now means the rule missed a dependency, and is said, not hidden.
   */
  private takeAppliedAhead(
    module: AnyModule,
    conn: WatchedConnection,
    args: Record<string, unknown>,
    host: HostState,
    task: Task,
  ): AnyModule | undefined {
    const ahead = host.appliedAhead.get(task);
    if (!ahead) return undefined;
    host.appliedAhead.delete(task);
    if (ahead.conn !== conn || ahead.argsKey !== JSON.stringify(args)) {
      this.opts.bus.emit({
        type: 'warning',
        time: now(),
        msg: `${host.name}: task "${task.name}" ran in an apply batch before its arguments or connection changed; its result is from then`,
      });
    }
    return appliedAhead(module, ahead.plan, ahead.result);
  }

  /** A later task's check, prepared with the host's variables as they are now; undefined ends the batch. */
  private checkAheadJob(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    conn: WatchedConnection,
    lead: ModuleContext,
  ): CheckJob | undefined {
    if (task.module === 'meta' || task.module === 'set_fact' || task.module === 'include_vars') return undefined;
    try {
      const module = getModule(task.module) as AnyModule;
      if (!this.batchable(task, ctx, module)) return undefined;
      const vars = this.varsFor(host, ctx, task);
      const args = this.renderArgs(module, task, vars);
      const becomeUser = this.becomeUserFor(host, task, vars, ctx);
      const mctx = this.moduleContext(host, conn, task, vars, ctx, becomeUser);
      if (mctx.become !== lead.become || mctx.becomeUser !== lead.becomeUser) return undefined;
      return { module, ctx: mctx, args };
    } catch {
      // Its input cannot be rendered yet (it may need what an earlier task registers): it is checked when it comes.
      return undefined;
    }
  }

  /** changed_when and failed_when. A prediction has no real output to judge, except `changed_when: false`. */
  private judge(task: Task, module: AnyModule, result: ModuleResult, predicted: boolean, vars: Vars) {
    let changed = result.changed;
    let failed = result.failed === true;
    const judged = !(predicted && !module.readOnly);
    if (task.changedWhen !== undefined) {
      if (typeof task.changedWhen === 'boolean') changed = task.changedWhen && (judged || changed);
      else if (judged) changed = conditionsHold(task, 'changed_when', task.changedWhen, vars);
    }
    if (task.failedWhen !== undefined && judged) {
      failed =
        typeof task.failedWhen === 'boolean'
          ? task.failedWhen
          : conditionsHold(task, 'failed_when', task.failedWhen, vars);
    }
    return { changed, failed };
  }

  private unreachable(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    started: number,
    err: unknown,
    item: unknown,
    target: string,
  ): TaskOutcome {
    const msg = `${target === host.name ? '' : `delegated host ${target}: `}${errorMessage(err)}`;
    const registered = { unreachable: true, changed: false, msg };
    this.emitResult(host, task, ctx, 'unreachable', started, {
      msg,
      registered,
      item,
      ignored: task.ignoreUnreachable,
    });
    // ignore_unreachable (Ansible): the host stays in the play; the next task tries it again.
    if (!host.unreachable && !task.ignoreUnreachable) {
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

  /**
   * The play's tasks in order (roles first, then the play's own), filtered by --roles and tags (a block keeps
   * the tasks of its lists that are selected), then cut before --start-at-task's task.
   */
  private selectedTasks(play: Play): Task[] {
    const tasks: Task[] = [];
    for (const role of play.roles) {
      if (!this.roleWanted(role.name)) continue;
      for (const t of role.tasks) tasks.push(withExtraTags(t, role.tags));
    }
    if (!this.opts.roles) tasks.push(...play.tasks);
    const selected = selectTasks(tasks, this.opts.tags);
    if (this.opts.startAtTask === undefined || this.startFound) return selected;
    const rest = startAt(selected, this.opts.startAtTask);
    if (rest === undefined) return [];
    this.startFound = true;
    return rest;
  }

  /** The play's handlers, and those of every role its tasks came from (import_role, include_role). */
  private handlersOf(play: Play, tasks: Task[]): Task[] {
    const handlers: Task[] = [];
    for (const role of play.roles) if (this.roleWanted(role.name)) handlers.push(...role.handlers);
    // One role's handlers once, however many times import_role/include_role bring the role in.
    const seen = new Set<string>(play.roles.map((r) => r.dir));
    const visit = (list: Task[]) => {
      for (const t of list) {
        const role = t.roleRef ?? t.include?.role;
        if (role && !seen.has(role.dir)) {
          seen.add(role.dir);
          handlers.push(...role.handlers);
        }
        if (t.block) for (const l of [t.block.block, t.block.rescue, t.block.always]) visit(l);
        if (t.include?.tasks) visit(t.include.tasks);
      }
    };
    visit(tasks);
    handlers.push(...play.handlers);
    return handlers;
  }

  /** Whether a host should start its next task (in a block: not after a failure the block catches). */
  private mayContinue(host: HostState, ctx: PlayContext): boolean {
    return host.active && !host.caught && !this.opts.signal.aborted && !ctx.aborted;
  }

  private async runTasks(host: HostState, tasks: Task[], ctx: PlayContext): Promise<void> {
    for (const task of tasks) {
      if (!this.mayContinue(host, ctx)) break;
      await this.runTask(host, task, ctx);
    }
  }

  /**
   * Ansible's block/rescue/always (lib/ansible/executor/play_iterator.py): a failure in `block` runs `rescue`
   * with ansible_failed_task and ansible_failed_result set; a rescue that ends without failing clears the
   * failure. `always` runs whatever happened; a failure not rescued fails the host after it.
   */
  private async runBlock(host: HostState, task: Task, ctx: PlayContext): Promise<TaskOutcome> {
    const spec = task.block!;
    const outer = host.caught;
    host.caught = undefined;
    let failure: HostState['caught'];
    host.catching.push(spec.rescue.length > 0);
    try {
      await this.runTasks(host, spec.block, ctx);
      failure = host.caught as HostState['caught'];
      host.caught = undefined;
      if (failure && spec.rescue.length && host.active) {
        host.catching[host.catching.length - 1] = false;
        const saved = host.scopeVars;
        host.scopeVars = {
          ...saved,
          ansible_failed_task: {
            name: failure.task.name,
            action: failure.task.module,
            role: failure.task.role || undefined,
            location: formatLocation(failure.task.location),
          },
          ansible_failed_result: failure.result,
        };
        try {
          await this.runTasks(host, spec.rescue, ctx);
        } finally {
          host.scopeVars = saved;
        }
        failure = host.caught as HostState['caught'];
        host.caught = undefined;
      }
    } finally {
      host.catching.pop();
    }
    if (spec.always.length && !host.unreachable && !host.failed) {
      // always runs even when the block failed; its own failures go to an enclosing block or fail the host.
      const pending = failure;
      await this.runTasks(host, spec.always, ctx);
      failure = pending;
    }
    if (failure && !host.failed) {
      if (host.catching.length) host.caught ??= failure;
      else this.markFailed(host, failure.task, ctx, failure.result);
    }
    host.caught ??= outer;
    return { status: failure ? 'failed' : 'ok', registered: {}, changed: false };
  }

  /**
   * meta (lib/ansible/plugins/strategy/__init__.py _execute_meta). As in Ansible, a meta task that runs is not
   * a result of its own (no recap count); one skipped by its `when` is reported skipped.
   */
  private async runMeta(host: HostState, task: Task, ctx: PlayContext): Promise<TaskOutcome> {
    const action = String(task.args.action);
    const ok: TaskOutcome = { status: 'ok', registered: { changed: false }, changed: false };
    const vars = this.varsFor(host, ctx, task);
    try {
      if (task.when.length && !conditionsHold(task, 'when', task.when, vars)) {
        const started = Date.now();
        this.opts.bus.emit({ type: 'task_start', time: now(), host: host.name, task: taskRef(task) });
        const registered = { changed: false, skipped: true, skip_reason: 'Conditional result was False' };
        this.emitResult(host, task, ctx, 'skipped', started, { registered, msg: `when: ${task.when.join(' and ')}` });
        return { status: 'skipped', registered, changed: false };
      }
    } catch (err) {
      return this.finishFailed(host, task, ctx, Date.now(), this.failureMessage(err, task));
    }
    const say = (msg: string) =>
      this.opts.bus.emit({ type: 'warning', time: now(), msg: `${host.name}: meta: ${msg}` });
    switch (action) {
      case 'noop':
        break;
      case 'flush_handlers':
        if (ctx.phase === 'tasks') await this.runHandlers(host, ctx, ctx.handlers);
        break;
      case 'end_host':
        host.ended = true;
        say(`end_host: ending the play for ${host.name}`);
        break;
      case 'end_batch':
        for (const h of ctx.batch) h.ended = true;
        break;
      case 'end_play':
        for (const h of ctx.hosts) h.ended = true;
        ctx.aborted = true;
        break;
      case 'clear_host_errors':
        for (const h of ctx.hosts) h.failed = false;
        break;
      case 'reset_connection':
        await this.dropConnection(host.name);
        break;
      case 'clear_facts':
        host.facts = undefined;
        break;
    }
    return ok;
  }

  /** The items of a task's loop: the loop value rendered, then turned into items by its with_ lookup. */
  private itemsOf(task: Task, vars: Vars, ctx: PlayContext): unknown[] {
    const rendered = materialise(this.opts.templater.renderValue(task.loop, vars, valueAt(task, 'loop')));
    return loopItems(
      task.loopKind ?? 'loop',
      rendered,
      { searchPath: this.searchPathOf(task, ctx), subdir: loopSubdir(task.module) },
      task.location,
    );
  }

  /**
   * A task's search path (util/search-path.ts): its role's folder, the folder of the file it is written in, the
   * playbook's folder; Ansible's `ansible_search_path`.
   */
  /**
   * A task's search path, worked out once per task and play (varsFor asks for it for every task on every host:
   * at 1000 hosts its arrays were part of the per-task garbage, docs/performance.md "Branch sshperf"). Nobody
   * changes a SearchPath, so one is shared.
   */
  private readonly searchPaths = new WeakMap<Task, { play: Play; playbookDir: string; path: SearchPath }>();

  private searchPathOf(task: Task, ctx: PlayContext): SearchPath {
    const known = this.searchPaths.get(task);
    if (known && known.play === ctx.play && known.playbookDir === ctx.playbookDir) return known.path;
    const role = task.roleRef ?? ctx.play.roles.find((r) => r.name === task.role);
    const taskDir = task.location.file ? dirname(task.location.file) : undefined;
    const stack = [...(role ? [role.dir] : []), ...(taskDir ? [taskDir] : []), ctx.playbookDir];
    const path = { stack: stack.filter((d, i, all) => all.indexOf(d) === i), basedir: ctx.playbookDir, inRole: !!role };
    this.searchPaths.set(task, { play: ctx.play, playbookDir: ctx.playbookDir, path });
    return path;
  }

  /** The loop variable, index_var and ansible_loop (loop_control.extended) of item `index`. */
  private loopScope(task: Task, items: unknown[], index: number): Vars {
    const scope: Vars = { [task.loopVar]: items[index], ansible_loop_var: task.loopVar };
    const control = task.loopControl;
    if (control?.indexVar) {
      scope[control.indexVar] = index;
      scope.ansible_index_var = control.indexVar;
    }
    if (control?.extended) scope.ansible_loop = extendedLoopVars(items, index);
    return scope;
  }

  /** What an item is shown as: loop_control.label rendered, else the item. */
  private itemLabel(task: Task, vars: Vars, item: unknown): unknown {
    const label = task.loopControl?.label;
    if (label === undefined) return item;
    try {
      return materialise(this.opts.templater.renderValue(label, vars, valueAt(task, 'loop_control', 'label')));
    } catch {
      return item;
    }
  }

  /**
   * A dynamic include_tasks / include_role: for each item (or once), its `when`, then the included tasks run
   * for this host with the loop variable in scope. A templated file name is rendered and loaded now.
   */
  private async runInclude(
    host: HostState,
    task: Task,
    ctx: PlayContext,
    items: unknown[] | undefined,
    started: number,
  ): Promise<TaskOutcome> {
    const spec = task.include!;
    const list = items ?? [undefined];
    let ran = 0;
    for (const [index, item] of list.entries()) {
      if (!this.mayContinue(host, ctx)) break;
      const scope = items ? this.loopScope(task, items, index) : {};
      const vars = this.varsFor(host, ctx, task, scope);
      let tasks: Task[];
      try {
        if (task.when.length && !conditionsHold(task, 'when', task.when, vars)) {
          const registered = { changed: false, skipped: true, skip_reason: 'Conditional result was False' };
          this.emitResult(host, task, ctx, 'skipped', started, { registered, item: items ? item : undefined });
          continue;
        }
        tasks = spec.tasks ?? this.loadIncludedFile(task, vars);
      } catch (err) {
        return this.finishFailed(host, task, ctx, started, this.failureMessage(err, task));
      }
      for (const t of tasks) {
        const role = t.roleRef;
        if (role && !ctx.handlers.some((h) => h.roleRef?.dir === role.dir)) ctx.handlers.push(...role.handlers);
      }
      this.emitResult(host, task, ctx, 'ok', started, {
        registered: { changed: false, include: spec.file },
        msg: `included: ${spec.file}`,
        item: items ? this.itemLabel(task, vars, item) : undefined,
      });
      ran++;
      const saved = host.scopeVars;
      host.scopeVars = { ...saved, ...scope, ...(task.vars ?? {}) };
      try {
        await this.runTasks(host, selectTasks(tasks, this.opts.tags), ctx);
      } finally {
        host.scopeVars = saved;
      }
    }
    return { status: ran ? 'ok' : 'skipped', registered: { changed: false }, changed: false };
  }

  /** include_tasks with a templated file name: the name rendered for this host, the file loaded and checked. */
  private loadIncludedFile(task: Task, vars: Vars): Task[] {
    const spec = task.include!;
    const name = String(this.opts.templater.renderValue(spec.file, vars, task.location));
    const loader = new PlaybookLoader({ rolesPath: [] });
    return loader.loadIncludedTasks(name, spec, task.role, task.location);
  }

  private async runHandlers(host: HostState, ctx: PlayContext, handlers: Task[]): Promise<void> {
    if (!host.notified.size || ctx.phase !== 'tasks') return;
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
          targets.map((host) =>
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

  private async runBatch(hosts: HostState[], ctx: PlayContext, tasks: Task[]): Promise<void> {
    const handlers = ctx.handlers;
    const queue = new PQueue({ concurrency: Math.max(1, this.opts.forks) });
    const stop = () => this.opts.signal.aborted || ctx.aborted;
    ctx.taskOrder = new Map(tasks.map((task, index) => [task, { list: tasks, index }]));
    for (const h of hosts) {
      h.checkedAhead.clear();
      h.appliedAhead.clear();
    }
    if (ctx.play.strategy === 'linear') {
      if (ctx.play.gatherFacts) await Promise.all(hosts.map((h) => queue.add(() => this.gatherFacts(h, ctx))));
      for (const task of tasks) {
        if (stop()) break;
        await Promise.all(
          hosts
            .filter((h) => h.active)
            .map((h) =>
              queue.add(async () => {
                if (!stop() && h.active) await this.runTask(h, task, ctx);
              }),
            ),
        );
      }
      for (const h of hosts) await this.reportAppliedAhead(h, tasks, ctx);
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
          await this.reportAppliedAhead(h, tasks, ctx);
          if (h.active && !stop()) await this.runHandlers(h, ctx, handlers);
        }),
      ),
    );
  }

  /**
   * Tasks whose applies ran in a batch but whose turn never came (the run was interrupted: running tasks
   * finish, no new ones start): they did run on the host, so they are reported, in order, as they would have
   * been had the interrupt come after them.
   */
  private async reportAppliedAhead(host: HostState, tasks: Task[], ctx: PlayContext): Promise<void> {
    for (const task of tasks) {
      if (!host.appliedAhead.size || !host.active) break;
      if (host.appliedAhead.has(task)) await this.runTask(host, task, ctx);
    }
    host.appliedAhead.clear();
  }

  async runPlay(play: Play, playbookDir: string, verifyOnly = false): Promise<void> {
    const selected = this.selectHosts(play.hosts, play.hostsLocation);
    // meta end_host / end_play end one play only.
    for (const n of selected) this.host(n).ended = false;
    const hosts = selected.map((n) => this.host(n)).filter((h) => h.active);
    this.opts.bus.emit({
      type: 'play_start',
      time: now(),
      play: play.name,
      hosts: hosts.map((h) => h.name),
      check: this.opts.check,
    });
    if (!hosts.length) {
      this.opts.bus.emit({
        type: 'warning',
        time: now(),
        msg: `play "${play.name}": no hosts matched "${play.hosts}"${this.opts.limit ? ` with --limit ${this.opts.limit}` : ''}`,
      });
      this.opts.bus.emit({ type: 'play_end', time: now(), play: play.name });
      return;
    }
    this.ansibleVarWarnings.check(this.opts.extraVars, 'the run (-e)');
    this.playConnection = playConnectionVars(play);
    this.specs.clear(); // the play's remote_user/port/connection are part of every host's settings
    this.ansibleVarWarnings.check(play.vars, `play "${play.name}"`);
    const tasks = verifyOnly ? [] : this.selectedTasks(play);
    const ctx: PlayContext = {
      play,
      playbookDir,
      runOnce: new Map(),
      aborted: false,
      phase: 'tasks',
      handlers: this.handlersOf(play, tasks),
      hosts,
      batch: [],
    };
    const batches = computeBatches(hosts, play.serial);
    const verifyEachBatch = this.opts.verify && !this.opts.check;
    for (let b = 0; b < batches.length; b++) {
      const batch = batches[b]!.filter((h) => h.active);
      if (this.opts.signal.aborted || ctx.aborted) break;
      if (batches.length > 1) {
        this.opts.bus.emit({
          type: 'batch_start',
          time: now(),
          play: play.name,
          hosts: batch.map((h) => h.name),
          batch: b + 1,
          batches: batches.length,
        });
      }
      ctx.runOnce = new Map();
      ctx.batch = batch;
      if (verifyOnly) {
        const queue = new PQueue({ concurrency: this.opts.forks });
        if (play.gatherFacts) await Promise.all(batch.map((h) => queue.add(() => this.gatherFacts(h, ctx))));
      } else {
        await this.runBatch(batch, ctx, tasks);
      }
      let verifyFailed = 0;
      if ((verifyEachBatch || verifyOnly) && !this.opts.signal.aborted) verifyFailed = await this.runVerify(batch, ctx);
      const failedInBatch = batch.filter((h) => !h.active).length;
      // As Ansible: when every host of a batch is lost, the play ends ("no more hosts left").
      if (batch.length > 0 && failedInBatch === batch.length && b < batches.length - 1) {
        ctx.aborted = true;
        this.opts.bus.emit({
          type: 'warning',
          time: now(),
          msg: `play "${play.name}": every host of batch ${b + 1} failed; not touching the remaining hosts`,
        });
      }
      if (play.anyErrorsFatal && failedInBatch > 0) {
        ctx.aborted = true;
        this.opts.bus.emit({
          type: 'warning',
          time: now(),
          msg: `play "${play.name}": any_errors_fatal: stopping after a host failed`,
        });
      }
      if (
        play.maxFailPercentage !== undefined &&
        batch.length > 0 &&
        (failedInBatch / batch.length) * 100 > play.maxFailPercentage
      ) {
        ctx.aborted = true;
        this.opts.bus.emit({
          type: 'warning',
          time: now(),
          msg: `play "${play.name}": ${failedInBatch} of ${batch.length} hosts failed, over max_fail_percentage ${play.maxFailPercentage}: stopping`,
        });
      }
      if (verifyFailed > 0 && b < batches.length - 1 && !verifyOnly) {
        ctx.aborted = true;
        this.opts.bus.emit({
          type: 'warning',
          time: now(),
          msg: `play "${play.name}": verification failed after batch ${b + 1} of ${batches.length}; not touching the remaining hosts`,
        });
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
    return {
      failedHosts,
      unreachableHosts,
      changed: this.changedAny,
      interrupted: this.opts.signal.aborted,
      verifyFailures: this.verifyFailures,
      inputErrors: this.inputErrors,
    };
  }
}

/**
 * Whether a task of the playbook (its roles', blocks', static includes') is add_host or group_by, which add
 * hosts and groups to the inventory during the run. An include_tasks with a templated file name is not
 * known before the run and is not looked into.
 */
export function changesInventory(playbook: Playbook): boolean {
  const seen = new Set<Task[]>();
  const any = (list: Task[]): boolean => {
    if (seen.has(list)) return false;
    seen.add(list);
    return list.some(
      (t) =>
        getModule(t.module)?.inventoryRequest !== undefined ||
        (t.block !== undefined && [t.block.block, t.block.rescue, t.block.always].some(any)) ||
        (t.include?.tasks !== undefined && any(t.include.tasks)) ||
        (t.include?.role !== undefined && any(t.include.role.tasks)),
    );
  };
  return playbook.plays.some((play) => any(play.tasks) || play.roles.some((role) => any(role.tasks)));
}

/** A task with tags added, down into the lists of a block. */
function withExtraTags(task: Task, tags: string[]): Task {
  if (!tags.length) return task;
  const tagged: Task = { ...task, tags: [...tags, ...task.tags] };
  if (task.block) {
    const each = (list: Task[]) => list.map((t) => withExtraTags(t, tags));
    tagged.block = { block: each(task.block.block), rescue: each(task.block.rescue), always: each(task.block.always) };
  }
  return tagged;
}

/** Tasks selected by --tags/--skip-tags; a block keeps its selected tasks and goes when none is left. */
function selectTasks(tasks: Task[], filter: TagFilter): Task[] {
  const out: Task[] = [];
  for (const task of tasks) {
    if (!task.block) {
      if (taskSelected(task.tags, filter)) out.push(task);
      continue;
    }
    const block = {
      block: selectTasks(task.block.block, filter),
      rescue: selectTasks(task.block.rescue, filter),
      always: selectTasks(task.block.always, filter),
    };
    if (block.block.length || block.always.length) out.push({ ...task, block });
  }
  return out;
}

/** Ansible's --start-at-task: a task's name, or "role : name", equal to the pattern or matching it as a glob. */
export function taskNameMatches(task: Task, pattern: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  const names = [task.name, ...(task.role ? [`${task.role} : ${task.name}`] : [])];
  return names.some((n) => n === pattern || re.test(n));
}

/** The tasks from the first one --start-at-task names (into blocks); undefined when none matches. */
function startAt(tasks: Task[], pattern: string): Task[] | undefined {
  for (const [i, task] of tasks.entries()) {
    if (!task.block && taskNameMatches(task, pattern)) return tasks.slice(i);
    if (task.block) {
      const inner = startAt(task.block.block, pattern);
      if (inner) return [{ ...task, block: { ...task.block, block: inner } }, ...tasks.slice(i + 1)];
    }
  }
  return undefined;
}

/** The path (`content`, `headers.X`, `lines[2]`) of the first string holding a NUL byte, keys included. */
export function nulBytePath(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\0') ? path || '(value)' : undefined;
  if (Array.isArray(value)) {
    for (const [index, element] of value.entries()) {
      const found = nulBytePath(element, `${path}[${index}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, element] of Object.entries(value)) {
      const here = path ? `${path}.${key}` : key;
      if (key.includes('\0')) return JSON.stringify(here);
      const found = nulBytePath(element, here);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * Facts a module returned become the host's facts, as Ansible merges a module's `ansible_facts`: setup (a
 * gather or an explicit task) replaces cairn's tree; other fact modules (service_facts, package_facts) add
 * their keys beside it, under ANSIBLE_GATHERED (variables.ts names them `ansible_facts.x` and `ansible_x`).
 */
function absorbFacts(host: HostState, moduleName: string, registered: Record<string, unknown>): void {
  const previous = host.facts?.[ANSIBLE_GATHERED];
  const gathered = isPlainObject(previous) ? previous : {};
  if (moduleName === 'setup' && isPlainObject(registered.facts)) {
    host.facts = { ...registered.facts, ...(isPlainObject(previous) ? { [ANSIBLE_GATHERED]: previous } : {}) };
  } else if (moduleName !== 'setup' && isPlainObject(registered.ansible_facts)) {
    host.facts = { ...(host.facts ?? {}), [ANSIBLE_GATHERED]: { ...gathered, ...registered.ansible_facts } };
  }
}

/** The module with its `check` answered by a plan made earlier (the executor calls it as it would the module's). */
function withPlan(module: AnyModule, plan: Promise<Planned>): AnyModule {
  const view = Object.create(module) as AnyModule;
  view.check = () => plan;
  return view;
}

/** What a follower's check gets: any script it tries to send ends the batch before it (applyFollower). */
class HostFreeConnection implements Connection {
  constructor(private readonly conn: Connection) {}
  get host(): string {
    return this.conn.host;
  }
  get user(): string {
    return this.conn.user;
  }
  exec(): Promise<ExecResult> {
    return Promise.reject(new Error('this check needs the host: it cannot be planned ahead of an apply'));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
