/**
 * `cairn drain HOST [--undo]` and `cairn canary --backend B --servers S,...`: traffic control at the front
 * door through HAProxy's runtime API on every load balancer (runner/features/drills/traffic.ts does the
 * work and emits `traffic` events; the console or --json draws them). Exit 0 when done, 2 when a load
 * balancer refused, a drain timed out or a canary gate failed (rolled back), 5 on bad options.
 */
import type { Command } from 'commander';
import { ExitCode, optionsError } from '../core/util/errors.js';
import { hostVariables } from '../core/engine/variables.js';
import { now } from '../core/engine/events.js';
import { addRunOptions } from './play.js';
import { openSession, type Session } from '../app/session.js';
import { parseExtraVars, type CommonRunOptions } from '../app/run-inputs.js';
import { processInterrupts } from './signals.js';
import { canary, drain, type TrafficContext } from '../features/drills/traffic.js';
import { frontDoor } from '../features/drills/ha.js';

function trafficContext(session: Session, opts: CommonRunOptions, options: Record<string, string>): TrafficContext {
  const extraVars = parseExtraVars(opts.extraVars);
  return {
    inventory: session.inventory,
    hostVars: (host) => hostVariables({ inventory: session.inventory, host, extraVars }),
    exec: (host, script, execOpts) => session.engine.exec(host, script, execOpts),
    options,
    signal: session.signal,
    emit: (event) => session.bus.emit({ type: 'traffic', time: now(), ...event }),
  };
}

function numberOption(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw optionsError(`${name} ${raw}: expected a number`);
  return value;
}

/** Run `work` on an open session; its boolean is the command's success. */
async function inSession(
  opts: CommonRunOptions,
  name: string,
  work: (session: Session) => Promise<boolean>,
): Promise<void> {
  // --check changes nothing: it takes no run lock (openSession skips it in check mode).
  const session = await openSession(opts, name, { interrupts: processInterrupts });
  let ok = false;
  try {
    ok = await work(session);
  } finally {
    const finalCode = session.finish(session.engine.outcome());
    await session.engine.close();
    process.exitCode = session.signal.aborted
      ? ExitCode.interrupted
      : finalCode !== ExitCode.ok
        ? finalCode
        : ok
          ? ExitCode.ok
          : ExitCode.hostFailed;
  }
}

type DrainCli = CommonRunOptions & { undo?: boolean; timeout?: string; lbGroup?: string };
type CanaryCli = CommonRunOptions & {
  backend?: string;
  servers?: string;
  steps?: string;
  hold?: string;
  maxErrorPct?: string;
  maxP99Ms?: string;
  concurrency?: string;
  intervalMs?: string;
  requestTimeoutMs?: string;
  url?: string;
  lbGroup?: string;
};

export function registerTrafficCommands(program: Command): void {
  addRunOptions(
    program
      .command('drain')
      .description(
        "move a backend host's traffic 100 % -> 0 % on every load balancer (HAProxy DRAIN, wait for 0 sessions)",
      )
      .argument('<host>', 'the backend host (inventory name, matched by server name or address) or server name'),
  )
    .option('--undo', 'make the host READY again')
    .option('-C, --check', 'say what would change, change nothing')
    .option('--timeout <seconds>', 'how long to wait for its sessions to end (default 60)')
    .option('--lb-group <group>', 'the load balancers (default lb)')
    .action(async (host: string, opts: DrainCli) => {
      const timeoutS = numberOption('--timeout', opts.timeout, 60);
      await inSession(opts, `drain ${host}`, async (session) => {
        const ctx = trafficContext(session, opts, {});
        const results = await drain(ctx, {
          host,
          undo: Boolean(opts.undo),
          check: Boolean(opts.check),
          timeoutS,
          lbGroup: opts.lbGroup ?? 'lb',
        });
        return results.every((r) => r.ok);
      });
    });

  addRunOptions(
    program
      .command('canary')
      .description(
        'bring new servers of a backend in at 0 % and move traffic to them in steps (default 10) to 100 %, each gated on errors and P99; a failed gate rolls back',
      ),
  )
    .option('--backend <name>', 'the HAProxy backend (default web)')
    .option('--servers <names>', "the new servers, comma-separated (the backend's others are the old pool)")
    .option('--steps <n>', 'steps from 0 to 100 % (default 10, document 000)')
    .option('--hold <seconds>', 'how long each step runs under the load probe before its gate (default 30)')
    .option('--max-error-pct <pct>', 'gate: failed requests in a step, at most (default 0.05: availability 99.95 %)')
    .option('--max-p99-ms <ms>', 'gate: P99 latency in a step, at most (default 800, document 000)')
    .option('--concurrency <n>', 'load probe: concurrent clients (default 4)')
    .option('--interval-ms <ms>', "load probe: each client's pause between requests (default 50)")
    .option('--request-timeout-ms <ms>', 'load probe: a request not answered in this time fails (default 2000)')
    .option('--url <url>', 'the URL probed (default the VIP, http or https as the haproxy role serves it)')
    .option('--lb-group <group>', 'the load balancers (default lb)')
    .option('-C, --check', 'print the steps and weights, change nothing')
    .action(async (opts: CanaryCli) => {
      const servers = (opts.servers ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (!servers.length) throw optionsError('canary needs --servers NAME[,NAME...]: the new servers of the backend');
      const numbers = {
        steps: numberOption('--steps', opts.steps, 10),
        holdS: numberOption('--hold', opts.hold, 30),
        maxErrorPct: numberOption('--max-error-pct', opts.maxErrorPct, 0.05),
        maxP99Ms: numberOption('--max-p99-ms', opts.maxP99Ms, 800),
        concurrency: numberOption('--concurrency', opts.concurrency, 4),
        intervalMs: numberOption('--interval-ms', opts.intervalMs, 50),
        requestTimeoutMs: numberOption('--request-timeout-ms', opts.requestTimeoutMs, 2000),
      };
      await inSession(opts, 'canary', async (session) => {
        const lbGroup = opts.lbGroup ?? 'lb';
        const ctx = trafficContext(session, opts, {
          lb_group: lbGroup,
          ...(opts.url !== undefined ? { url: opts.url } : {}),
        });
        const door = frontDoor(ctx);
        const result = await canary(ctx, {
          ...numbers,
          backend: opts.backend ?? 'web',
          servers,
          url: door.url,
          ...(door.ca !== undefined ? { ca: door.ca } : {}),
          lbGroup,
          check: Boolean(opts.check),
        });
        if (!result.passed)
          session.bus.emit({
            type: 'traffic',
            time: now(),
            command: 'canary',
            phase: 'failed',
            passed: false,
            msg: result.msg ?? 'the canary did not finish',
            data: { steps_done: result.stepsDone, requests: result.requests, failed: result.failedRequests },
          });
        return result.passed;
      });
    });
}
