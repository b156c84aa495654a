/**
 * canary (issue 19, document 000: canary release in 10 steps, 0-100 %): `cairn canary` run as a drill on the
 * platform. The backend's last server (or --set servers=) is brought in at 0 % and moved to 100 % in 10
 * steps under the load probe, each gated on error rate and P99; afterwards every load balancer gets back the
 * weights it had before the drill. Target: 100 % reached, 0 failed requests.
 *
 * `--set expect=rollback` proves the other half: the P99 gate is set below anything a network can answer
 * (max_p99_ms 0.001 unless given), so the first step's gate fails; target: the canary rolls back by itself,
 * the weights HAProxy reports are the starting weights, and no request failed on the way.
 */
import { inputError } from '../../core/util/errors.js';
import { frontDoor } from './ha.js';
import type { RuntimeCommand } from './haproxy-api.js';
import { registerDrill } from './registry.js';
import { canary, loadBalancers, type TrafficContext, type Weights } from './traffic.js';
import type { DrillContext, DrillOutcome } from './types.js';

function num(ctx: DrillContext, key: string, fallback: number): number {
  const raw = ctx.options[key];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw inputError(`--set ${key}=${raw}: expected a number`);
  return value;
}

registerDrill({
  name: 'canary',
  summary:
    'bring a backend server in at 0 % and move traffic to it in 10 gated steps to 100 % through the runtime API, then restore: 0 failed requests',
  options: {
    backend: 'the HAProxy backend (default web)',
    servers: "the canary's servers, comma-separated (default the backend's last server)",
    steps: 'steps (default 10)',
    hold_s: 'seconds each step holds under the load probe (default 5)',
    max_error_pct: 'gate: failed requests per step, % (default 0.05)',
    max_p99_ms: 'gate: P99 per step, ms (default 800; 0.001 with expect=rollback)',
    concurrency: 'load probe clients (default 4)',
    expect: '"promote" (default) or "rollback": force the P99 gate to fail and prove the rollback',
    lb_group: 'group of the load balancers (default lb)',
    url: 'the URL probed (default the VIP)',
  },
  async run(ctx: DrillContext): Promise<DrillOutcome> {
    const expectRollback = (ctx.options.expect ?? 'promote') === 'rollback';
    if (!['promote', 'rollback'].includes(ctx.options.expect ?? 'promote'))
      throw inputError(`--set expect=${ctx.options.expect}: expected promote or rollback`);
    const door = frontDoor(ctx);
    const lbGroup = ctx.options.lb_group ?? 'lb';
    const backend = ctx.options.backend ?? 'web';
    const traffic: TrafficContext = {
      inventory: ctx.inventory,
      hostVars: ctx.hostVars,
      exec: ctx.exec,
      options: ctx.options,
      signal: ctx.signal,
      emit: (e) => ctx.log(`${e.host ? `[${e.host}] ` : ''}${e.phase}: ${e.msg}`),
    };
    const apis = loadBalancers(traffic, lbGroup);
    // What every load balancer has before the drill: restored afterwards, whatever happens.
    const before = new Map<string, Weights>();
    const agents = new Map<string, string[]>();
    for (const api of apis) {
      const w: Weights = {};
      const { servers: found } = await api.read();
      for (const s of found) if (s.backend === backend) w[s.server] = s.weight;
      agents.set(
        api.host,
        found.filter((s) => s.backend === backend && s.agentPort > 0).map((s) => s.server),
      );
      if (!Object.keys(w).length) throw inputError(`${api.host} has no backend ${backend} (--set backend=NAME)`);
      before.set(api.host, w);
    }
    const first = [...before.values()][0]!;
    const servers = (ctx.options.servers ?? Object.keys(first).at(-1)!)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (Object.keys(first).length - servers.length < 1)
      throw inputError(`the backend ${backend} needs a server besides the canary's (${servers.join(', ')})`);
    const measured: Record<string, number | string> = {};
    const problems: string[] = [];
    try {
      const result = await canary(traffic, {
        backend,
        servers,
        steps: num(ctx, 'steps', 10),
        holdS: num(ctx, 'hold_s', 5),
        maxErrorPct: num(ctx, 'max_error_pct', 0.05),
        maxP99Ms: num(ctx, 'max_p99_ms', expectRollback ? 0.001 : 800),
        concurrency: num(ctx, 'concurrency', 4),
        intervalMs: 50,
        requestTimeoutMs: 2000,
        url: door.url,
        ...(door.ca !== undefined ? { ca: door.ca } : {}),
        lbGroup,
        check: false,
      });
      Object.assign(measured, {
        canary: servers.join(','),
        steps_done: result.stepsDone,
        requests: result.requests,
        failed_requests: result.failedRequests,
        worst_p99_ms: result.worstP99Ms,
        ...(result.gate ? { failed_gate: `${result.gate.name} at step ${result.gate.step}` } : {}),
      });
      if (result.failedRequests > 0) problems.push(`${result.failedRequests} requests failed`);
      if (expectRollback) {
        if (result.passed) problems.push('the forced gate did not fail: no rollback happened');
        for (const [lb, start] of Object.entries(result.startWeights)) {
          const end = result.endWeights[lb] ?? {};
          const off = Object.entries(start).filter(([s, w]) => end[s] !== w);
          if (off.length)
            problems.push(`${lb} reports ${JSON.stringify(end)} after the rollback, not ${JSON.stringify(start)}`);
        }
        measured.rolled_back = problems.length === 0 ? 'yes' : 'no';
      } else if (!result.passed) problems.push(result.msg ?? 'the canary did not reach 100 %');
    } finally {
      // The platform as it was: every server's weight from before the drill (agents, if any, steer on).
      for (const api of apis) {
        const w = before.get(api.host)!;
        const restore: RuntimeCommand[] = Object.entries(w).map(([server, weight]) => ({
          kind: 'set-weight',
          backend,
          server,
          weight,
        }));
        // The canary paused the agents it had to; after the drill every agent steers its server again.
        for (const server of agents.get(api.host) ?? []) restore.push({ kind: 'agent', backend, server, enable: true });
        try {
          await api.apply(restore);
        } catch (err) {
          // Reported, not thrown: a throw here would hide the drill's own outcome (and the other hosts' restore).
          problems.push(`restoring the weights on ${api.host}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
    return {
      passed: problems.length === 0,
      measured,
      target: expectRollback
        ? 'a failed gate rolls back by itself to the starting weights, 0 failed requests (document 000)'
        : '100 % on the canary in 10 gated steps, 0 failed requests (document 000)',
      ...(problems.length ? { msg: problems.join('; ') } : {}),
    };
  },
});
