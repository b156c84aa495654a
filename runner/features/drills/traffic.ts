/**
 * Traffic control at the front door, through HAProxy's runtime API on every load balancer (issue 19 item 4):
 *
 * - drain (document 001: "move traffic 100 % -> 0 %" for maintenance): the host's server goes to DRAIN on
 *   every load balancer (no new sessions, the current ones finish), then cairn waits, bounded, until its
 *   current sessions are 0 everywhere; `undo` makes it READY again.
 * - canary (document 000: "canary release in 10 steps, 0-100 %"): new servers of a backend come in at weight
 *   0 and get 10 %, 20 % ... 100 % of the backend's traffic by weights; every step holds under the load probe
 *   and is gated on the error rate and P99 (document 000's acceptance: availability >= 99.95 %, so at most
 *   0.05 % errors; P99 <= 800 ms). A failed gate (or Ctrl-C) puts the starting weights back by itself.
 *
 * Each round trip to a load balancer is one script over its pooled SSH connection (haproxy-api.ts); the
 * load balancers are driven in parallel. What happens is emitted as `traffic` events; the consoles draw them.
 */
import type { Inventory } from '../../core/inventory/types.js';
import type { ExecOptions, ExecResult } from '../../core/transport/types.js';
import { inputError } from '../../core/util/errors.js';
import { sleep } from '../../core/util/sleep.js';
import type { Vars } from '../../core/util/vars.js';
import type { RunEvent } from '../../core/engine/events.js';
import {
  adminWord,
  HaproxyApiError,
  HaproxyRuntime,
  type RuntimeCommand,
  type ServerState,
  type ServerStat,
} from './haproxy-api.js';
import { groupHosts } from './ha.js';
import { pollUntil } from '../../core/util/poll.js';
import { ProbeLoop, summarise, type ProbeSample } from './probe.js';
import { hostSettings } from './settings.js';

export type TrafficEvent = Omit<Extract<RunEvent, { type: 'traffic' }>, 'type' | 'time'>;

export interface TrafficContext {
  inventory: Inventory;
  hostVars(host: string): Vars;
  exec(host: string, script: string, opts?: ExecOptions): Promise<ExecResult>;
  options: Record<string, string>;
  signal: AbortSignal;
  emit(event: TrafficEvent): void;
}

/** The runtime API of every load balancer of `lbGroup` (the socket from the haproxy role's settings). */
export function loadBalancers(ctx: TrafficContext, lbGroup: string): HaproxyRuntime[] {
  return groupHosts(ctx, lbGroup).map((lb) => {
    const socket = String(hostSettings(ctx, lb, 'haproxy').haproxy_stats_socket ?? '');
    return new HaproxyRuntime((script) => ctx.exec(lb, script, { timeoutMs: 20_000 }), socket, lb);
  });
}

const key = (s: { backend: string; server: string }) => `${s.backend}/${s.server}`;

// ---------------------------------------------------------------------------------------------------------
// drain
// ---------------------------------------------------------------------------------------------------------

export interface DrainOptions {
  /** An inventory host (matched by server name or by its ansible_host address) or a server name. */
  host: string;
  undo: boolean;
  check: boolean;
  timeoutS: number;
  lbGroup: string;
}

export interface DrainResult {
  lb: string;
  servers: string[];
  ok: boolean;
  sessions?: number;
  waitedS?: number;
  error?: string;
}

/** The servers on one load balancer that stand for `host`: by server name, or by the host's address. */
function serversOf(servers: ServerState[], name: string, address: string | undefined): ServerState[] {
  return servers.filter((s) => s.server === name || (address !== undefined && s.address === address));
}

function hostAddress(ctx: TrafficContext, host: string): string | undefined {
  if (!ctx.inventory.hosts.has(host)) return undefined;
  const value = hostSettings(ctx, host).ansible_host;
  return typeof value === 'string' && value !== '' ? value : undefined;
}

export async function drain(ctx: TrafficContext, opts: DrainOptions): Promise<DrainResult[]> {
  if (!Number.isFinite(opts.timeoutS) || opts.timeoutS <= 0 || opts.timeoutS > 3600)
    throw inputError(`--timeout ${opts.timeoutS}: expected seconds from 1 to 3600`);
  const address = hostAddress(ctx, opts.host);
  const apis = loadBalancers(ctx, opts.lbGroup);
  const want = opts.undo ? 'ready' : 'drain';
  const command = 'drain' as const;
  return Promise.all(
    apis.map(async (api): Promise<DrainResult> => {
      const lb = api.host;
      try {
        const before = await api.read();
        const mine = serversOf(before.servers, opts.host, address);
        if (!mine.length)
          throw new HaproxyApiError(
            `no server named ${opts.host}${address ? ` or at ${address}` : ''} in any backend of ${lb}`,
          );
        const names = mine.map(key);
        const sessionsNow = sessionsOf(before.stats, names);
        const states = mine.map((s) => `${key(s)} ${adminWord(s)} weight ${s.weight}`).join(', ');
        if (opts.check) {
          const todo = mine.filter((s) => adminWord(s) !== want);
          ctx.emit({
            command,
            host: lb,
            phase: 'check',
            msg: todo.length
              ? `would set ${todo.map(key).join(', ')} to ${want} (now ${states}; ${sessionsNow} current sessions)`
              : `nothing to do: ${states}`,
            data: { would_change: todo.length, sessions: sessionsNow },
          });
          return { lb, servers: names, ok: true, sessions: sessionsNow };
        }
        const sets: RuntimeCommand[] = mine.map((s) => ({ kind: 'set-state', ...s, state: want }));
        const after = await api.applyAndRead(sets);
        if (after.refused.length)
          throw new HaproxyApiError(after.refused.map((r) => `"${r.command}": ${r.text.trim()}`).join('; '));
        const wrong = serversOf(after.servers, opts.host, address).filter((s) => adminWord(s) !== want);
        if (wrong.length)
          throw new HaproxyApiError(`${wrong.map((s) => `${key(s)} is ${adminWord(s)}`).join(', ')}, not ${want}`);
        ctx.emit({ command, host: lb, phase: want, msg: `${names.join(', ')} set to ${want} (was ${states})` });
        if (opts.undo) return { lb, servers: names, ok: true, sessions: sessionsOf(after.stats, names) };
        const started = performance.now();
        const drained = await pollUntil(
          async () => {
            const sessions = sessionsOf((await api.read()).stats, names);
            return sessions === 0 ? true : undefined;
          },
          { timeoutMs: opts.timeoutS * 1000, everyMs: 250, signal: ctx.signal, since: started },
        );
        if (!drained) {
          const left = sessionsOf((await api.read()).stats, names);
          throw new HaproxyApiError(
            `${names.join(', ')} still ${left === 1 ? 'has 1 session' : `have ${left} sessions`} after ${opts.timeoutS} s` +
              ' (left in drain; raise --timeout, or `cairn drain --undo` to put it back)',
          );
        }
        const waitedS = Math.round(drained.afterMs) / 1000;
        ctx.emit({
          command,
          host: lb,
          phase: 'drained',
          passed: true,
          msg: `${names.join(', ')}: 0 current sessions`,
          data: { waited_s: waitedS },
        });
        return { lb, servers: names, ok: true, sessions: 0, waitedS };
      } catch (err) {
        if (!(err instanceof HaproxyApiError)) throw err;
        ctx.emit({ command, host: lb, phase: 'error', passed: false, msg: err.message });
        return { lb, servers: [], ok: false, error: err.message };
      }
    }),
  );
}

function sessionsOf(stats: ServerStat[], names: string[]): number {
  return stats.filter((s) => names.includes(key(s))).reduce((sum, s) => sum + s.sessions, 0);
}

// ---------------------------------------------------------------------------------------------------------
// canary
// ---------------------------------------------------------------------------------------------------------

export interface CanaryOptions {
  backend: string;
  /** The new servers (names in the backend); the backend's other servers are the old pool. */
  servers: string[];
  steps: number;
  holdS: number;
  /** Gates: at most this % of failed requests, and P99 at most this many ms, in every step. */
  maxErrorPct: number;
  maxP99Ms: number;
  /** The load probe: concurrent clients, pause between requests, per-request timeout. */
  concurrency: number;
  intervalMs: number;
  requestTimeoutMs: number;
  url: string;
  ca?: string;
  lbGroup: string;
  check: boolean;
}

export type Weights = Record<string, number>;

export interface CanaryResult {
  passed: boolean;
  stepsDone: number;
  /** Per load balancer: the weights the canary started from and would roll back to. */
  startWeights: Record<string, Weights>;
  /** Per load balancer: the weights HAProxy reports at the end. */
  endWeights: Record<string, Weights>;
  requests: number;
  failedRequests: number;
  worstP99Ms: number;
  gate?: { step: number; name: 'error_rate' | 'p99'; measured: number; limit: number };
  msg?: string;
}

/**
 * The weights for `share` (0..1) of the backend's traffic on the new servers. The old servers keep their
 * proportions scaled by (1 - share); the new ones split `share` of the old pool's total evenly, so the new
 * pool's part of the sum is `share` (up to rounding); all scaled down together if a weight would pass 256.
 */
export function canaryWeights(oldStart: Weights, newServers: string[], share: number): Weights {
  const total = Object.values(oldStart).reduce((a, b) => a + b, 0);
  const perNewFull = total / newServers.length;
  const scale = perNewFull > 256 ? 256 / perNewFull : 1;
  const out: Weights = {};
  for (const [name, w] of Object.entries(oldStart)) out[name] = Math.round(w * (1 - share) * scale);
  for (const name of newServers) out[name] = Math.round(perNewFull * share * scale);
  // A server meant to get some traffic never rounds down to none.
  if (share > 0) for (const name of newServers) out[name] = Math.max(1, out[name]!);
  if (share < 1) for (const [name, w] of Object.entries(oldStart)) if (w > 0) out[name] = Math.max(1, out[name]!);
  return out;
}

function weightsOf(servers: ServerState[], backend: string): Weights {
  const out: Weights = {};
  for (const s of servers) if (s.backend === backend) out[s.server] = s.weight;
  return out;
}

const setWeights = (backend: string, weights: Weights): RuntimeCommand[] =>
  Object.entries(weights).map(([server, weight]) => ({ kind: 'set-weight', backend, server, weight }));

const formatWeights = (w: Weights) =>
  Object.entries(w)
    .map(([s, n]) => `${s}=${n}`)
    .join(' ');

/** Set weights (and agent toggles) and read them back in one round trip; throws unless HAProxy took them. */
async function applyWeights(
  api: HaproxyRuntime,
  backend: string,
  weights: Weights,
  extra: RuntimeCommand[] = [],
): Promise<Weights> {
  const after = await api.applyAndRead([...extra, ...setWeights(backend, weights)]);
  if (after.refused.length)
    throw new HaproxyApiError(
      `${api.host}: HAProxy refused ${after.refused.map((r) => `"${r.command}": ${r.text.trim()}`).join('; ')}`,
    );
  const now = weightsOf(after.servers, backend);
  const off = Object.entries(weights).filter(([s, w]) => now[s] !== w);
  if (off.length)
    throw new HaproxyApiError(
      `${api.host}: HAProxy reports ${off.map(([s]) => `${s}=${now[s]}`).join(' ')} after setting ${formatWeights(weights)}`,
    );
  return now;
}

interface Pool {
  api: HaproxyRuntime;
  oldStart: Weights;
  newServers: string[];
  /** Servers whose agent-check cairn paused (an agent would overwrite the canary's weights). */
  agents: { old: string[]; new: string[] };
}

/** One step's load: `concurrency` probe loops for `holdS`, bounded; their samples together. */
async function holdUnderLoad(ctx: TrafficContext, opts: CanaryOptions): Promise<ProbeSample[]> {
  const durationMs = opts.holdS * 1000;
  const loops = Array.from(
    { length: opts.concurrency },
    () =>
      new ProbeLoop({
        url: opts.url,
        ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
        intervalMs: opts.intervalMs,
        timeoutMs: opts.requestTimeoutMs,
        maxRequests: Math.ceil(durationMs / Math.max(1, opts.intervalMs)) + 1,
        maxDurationMs: durationMs,
        signal: ctx.signal,
      }),
  );
  await sleep(durationMs, ctx.signal);
  const reports = await Promise.all(loops.map((l) => l.stop()));
  return reports.flatMap((r) => r.samples);
}

function checkCanaryOptions(opts: CanaryOptions): void {
  const bad = (what: string, expected: string) => inputError(`${what}: expected ${expected}`);
  if (!Number.isInteger(opts.steps) || opts.steps < 1 || opts.steps > 100)
    throw bad(`--steps ${opts.steps}`, 'a whole number from 1 to 100');
  if (!(opts.holdS > 0 && opts.holdS <= 3600)) throw bad(`--hold ${opts.holdS}`, 'seconds from 0.1 to 3600');
  if (!(opts.maxErrorPct >= 0 && opts.maxErrorPct <= 100))
    throw bad(`--max-error-pct ${opts.maxErrorPct}`, 'a percentage from 0 to 100');
  if (!(opts.maxP99Ms > 0)) throw bad(`--max-p99-ms ${opts.maxP99Ms}`, 'milliseconds above 0');
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1 || opts.concurrency > 200)
    throw bad(`--concurrency ${opts.concurrency}`, 'a whole number from 1 to 200');
  if (!opts.servers.length) throw bad('--servers', 'one or more server names of the backend');
  if (!/^https?:\/\/[^\s/]+/.test(opts.url)) throw bad(`--url ${opts.url}`, 'an http:// or https:// URL');
}

export async function canary(ctx: TrafficContext, opts: CanaryOptions): Promise<CanaryResult> {
  checkCanaryOptions(opts);
  const command = 'canary' as const;
  const apis = loadBalancers(ctx, opts.lbGroup);
  // 1. What every load balancer has now: the new servers must exist and be up; the old pool must carry traffic.
  const pools: Pool[] = await Promise.all(
    apis.map(async (api): Promise<Pool> => {
      const { servers } = await api.read();
      const inBackend = servers.filter((s) => s.backend === opts.backend);
      if (!inBackend.length) throw new HaproxyApiError(`${api.host}: no backend ${opts.backend}`);
      for (const name of opts.servers) {
        const s = inBackend.find((x) => x.server === name);
        if (!s) throw new HaproxyApiError(`${api.host}: backend ${opts.backend} has no server ${name}`);
        if (s.opState !== 2)
          throw new HaproxyApiError(`${api.host}: ${opts.backend}/${name} is not up (its health check fails)`);
      }
      const old = inBackend.filter((s) => !opts.servers.includes(s.server));
      const oldStart: Weights = {};
      for (const s of old) oldStart[s.server] = s.weight;
      if (!Object.values(oldStart).some((w) => w > 0))
        throw new HaproxyApiError(`${api.host}: the old pool of ${opts.backend} carries no traffic (all weights 0)`);
      return {
        api,
        oldStart,
        newServers: opts.servers,
        agents: {
          old: old.filter((s) => s.agentPort > 0).map((s) => s.server),
          new: inBackend.filter((s) => opts.servers.includes(s.server) && s.agentPort > 0).map((s) => s.server),
        },
      };
    }),
  );
  const startOf = (p: Pool) => canaryWeights(p.oldStart, p.newServers, 0);
  const startWeights = Object.fromEntries(pools.map((p) => [p.api.host, startOf(p)]));
  const plan = Array.from({ length: opts.steps }, (_, i) => (i + 1) / opts.steps);
  if (opts.check) {
    for (const p of pools)
      ctx.emit({
        command,
        host: p.api.host,
        phase: 'check',
        msg:
          `would start from ${formatWeights(startOf(p))}, then ` +
          plan
            .map(
              (share) =>
                `${Math.round(share * 100)} %: ${formatWeights(canaryWeights(p.oldStart, p.newServers, share))}`,
            )
            .join('; ') +
          ` (each held ${opts.holdS} s, gates: errors ≤ ${opts.maxErrorPct} %, P99 ≤ ${opts.maxP99Ms} ms)`,
      });
    return {
      passed: true,
      stepsDone: 0,
      startWeights,
      endWeights: startWeights,
      requests: 0,
      failedRequests: 0,
      worstP99Ms: 0,
    };
  }

  const result: CanaryResult = {
    passed: false,
    stepsDone: 0,
    startWeights,
    endWeights: {},
    requests: 0,
    failedRequests: 0,
    worstP99Ms: 0,
  };
  const agentCommands = (p: Pool, servers: string[], enable: boolean): RuntimeCommand[] =>
    servers.map((server) => ({ kind: 'agent', backend: opts.backend, server, enable }));
  const rollback = async (why: string): Promise<void> => {
    ctx.emit({ command, phase: 'rollback', passed: false, msg: `${why}: back to the starting weights` });
    await Promise.all(
      pools.map(async (p) => {
        // The old pool's agents (if any) steer its weights again; the new servers stay out at 0.
        result.endWeights[p.api.host] = await applyWeights(p.api, opts.backend, startOf(p), [
          ...agentCommands(p, p.agents.old, true),
        ]);
        ctx.emit({
          command,
          host: p.api.host,
          phase: 'rolled back',
          msg: formatWeights(result.endWeights[p.api.host]!),
        });
      }),
    );
  };

  // 2. The new servers come in at 0 % (ready, weight 0); agents paused so they cannot overwrite the weights.
  await Promise.all(
    pools.map(async (p) => {
      const ready: RuntimeCommand[] = p.newServers.map((server) => ({
        kind: 'set-state',
        backend: opts.backend,
        server,
        state: 'ready',
      }));
      const weights = await applyWeights(p.api, opts.backend, startOf(p), [
        ...agentCommands(p, [...p.agents.old, ...p.agents.new], false),
        ...ready,
      ]);
      ctx.emit({ command, host: p.api.host, phase: 'start', msg: `at 0 %: ${formatWeights(weights)}` });
    }),
  );

  try {
    for (const [i, share] of plan.entries()) {
      const step = i + 1;
      const pct = Math.round(share * 100);
      await Promise.all(
        pools.map(async (p) => {
          const weights = await applyWeights(p.api, opts.backend, canaryWeights(p.oldStart, p.newServers, share));
          ctx.emit({
            command,
            host: p.api.host,
            phase: `step ${step}/${opts.steps}`,
            msg: `${pct} %: ${formatWeights(weights)}`,
          });
        }),
      );
      const samples = await holdUnderLoad(ctx, opts);
      if (ctx.signal.aborted) {
        await rollback('interrupted');
        result.msg = 'interrupted: rolled back to the starting weights';
        return result;
      }
      const report = summarise(samples);
      const errorPct = report.sent ? (report.failed / report.sent) * 100 : 100;
      const p99 = Math.round(report.latencyP99Ms);
      result.requests += report.sent;
      result.failedRequests += report.failed;
      result.worstP99Ms = Math.max(result.worstP99Ms, p99);
      const firstFailure = samples.find((s) => !s.ok);
      const gate =
        errorPct > opts.maxErrorPct
          ? { step, name: 'error_rate' as const, measured: Math.round(errorPct * 1000) / 1000, limit: opts.maxErrorPct }
          : p99 > opts.maxP99Ms
            ? { step, name: 'p99' as const, measured: p99, limit: opts.maxP99Ms }
            : undefined;
      ctx.emit({
        command,
        phase: `gate ${step}/${opts.steps}`,
        passed: gate === undefined,
        msg: gate
          ? `${gate.name} ${gate.measured}${gate.name === 'p99' ? ' ms' : ' %'} is over ${gate.limit}` +
            (firstFailure ? `; first failure: ${firstFailure.error ?? `HTTP ${firstFailure.status}`}` : '')
          : `${pct} % held ${opts.holdS} s`,
        data: {
          requests: report.sent,
          failed: report.failed,
          error_pct: Math.round(errorPct * 1000) / 1000,
          p99_ms: p99,
        },
      });
      if (gate) {
        result.gate = gate;
        result.msg =
          `step ${step} (${pct} %): gate ${gate.name} failed: ${gate.measured}${gate.name === 'p99' ? ' ms' : ' %'}` +
          ` > ${gate.limit} (${report.failed} of ${report.sent} requests failed, P99 ${p99} ms)`;
        await rollback(`gate ${gate.name} failed at step ${step}`);
        return result;
      }
      result.stepsDone = step;
    }
  } catch (err) {
    // A refused weight or an unreachable load balancer mid-way: put back what can be put back, then report.
    if (!(err instanceof HaproxyApiError)) throw err;
    result.msg = err.message;
    await rollback(err.message).catch((again: Error) => (result.msg += `; the rollback failed too: ${again.message}`));
    return result;
  }
  // 3. All traffic on the new pool: its agents (if any) take the weights over again.
  await Promise.all(
    pools.map(async (p) => {
      const done = canaryWeights(p.oldStart, p.newServers, 1);
      result.endWeights[p.api.host] = await applyWeights(
        p.api,
        opts.backend,
        done,
        agentCommands(p, p.agents.new, true),
      );
    }),
  );
  result.passed = true;
  ctx.emit({
    command,
    phase: 'done',
    passed: true,
    msg: `${opts.servers.join(', ')} carry 100 % of ${opts.backend} after ${opts.steps} steps`,
    data: { requests: result.requests, failed: result.failedRequests, worst_p99_ms: result.worstP99Ms },
  });
  return result;
}
