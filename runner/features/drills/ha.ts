/**
 * Drills of the HA front door: document 004's load-balancer acceptance tests, timed.
 *
 * - backend-down: stop one web host's nginx while probing the VIP -> no request fails (haproxy retries on
 *   the other server, then its health checks take the dead one out); nginx is started again.
 * - failover: stop keepalived on the load balancer that holds the VIP (`--set variant=poweroff`: shut the
 *   host down; `variant=powercut`: it dies at once; `variant=unplug`: its network cable is pulled, so it
 *   keeps running and keeps the VIP, isolated, as document 001's "cut the network" drill) -> the backup takes the VIP; the outage seen by the
 *   probe loop is timed (≤ 3 s, document 000) and so is the switch (≤ 30 s, document 003); the master is
 *   restored and takes the VIP back.
 * - failback: with the master down and the VIP on the backup, restore the master -> it takes the VIP back
 *   (preempt); the failed requests and any outage are reported.
 *
 * Every drill measures from the jump host with the probe loop (100 ms, bounded in count and time), polls
 * the hosts over their pooled SSH connections, and restores what it broke in a finally block, also when
 * the operator presses Ctrl-C.
 */
import { inputError } from '../../core/util/errors.js';
import { argv, quote } from '../../core/transport/quote.js';
import { ProbeLoop, type ProbeReport, type ProbeSample } from './probe.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import type { DrillContext, DrillOutcome, SettingsContext } from './types.js';
import { sleep } from '../../core/util/sleep.js';
import { hostSettings, hostValue } from './settings.js';

// ---------------------------------------------------------------------------------------------------------
// haproxy's `show stat` (the runtime API's CSV)
// ---------------------------------------------------------------------------------------------------------

export { parseShowStat, type HaproxyStatRow } from './haproxy-api.js';
import { parseShowStat, type HaproxyStatRow } from './haproxy-api.js';

/** The servers of a `show stat` (not the FRONTEND/BACKEND lines): "backend/server" -> status ("UP", "DOWN", "UP 1/2"...). */
export function serverStatuses(rows: HaproxyStatRow[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const row of rows) {
    if (row.svname === 'FRONTEND' || row.svname === 'BACKEND' || row.svname === undefined) continue;
    out.set(`${row.pxname}/${row.svname}`, row.status ?? '');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Inventory values and host probes
// ---------------------------------------------------------------------------------------------------------

/**
 * A host variable rendered as a task would see it (`keepalived_vip: "{{ vip_address }}"`); undefined when
 * it is not set or its template cannot be rendered (the caller then falls back or says what is missing).
 */
function optionalHostValue(ctx: SettingsContext, host: string, name: string): unknown {
  try {
    return hostValue(ctx, host, name);
  } catch {
    return undefined;
  }
}

export function groupHosts(ctx: SettingsContext, group: string): string[] {
  const hosts = ctx.inventory.select(group);
  if (!hosts.length)
    throw inputError(
      `the inventory has no hosts in group "${group}" (set another with --set ${group === 'web' ? 'web_group' : 'lb_group'}=NAME)`,
    );
  return hosts;
}

export interface FrontDoor {
  lbs: string[];
  vip: string;
  url: string;
  /** With TLS at the front door: the CA certificate (PEM) the probe checks the VIP's chain against. */
  ca?: string;
}

/**
 * TLS at the front door (haproxy_tls, with the haproxy role's defaults under the inventory): the HTTPS
 * port and the CA the chain must lead to (the role's trust PEM: the lab CA's or the site CA's certificate).
 */
function frontDoorTls(ctx: SettingsContext, lb: string): { port: string; ca: string } | undefined {
  try {
    const settings = hostSettings(ctx, lb, 'haproxy');
    if (settings.haproxy_tls !== true) return undefined;
    return { port: String(tlsPortOf(settings)), ca: String(settings.haproxy_tls_trust_pem) };
  } catch (err) {
    throw inputError(`haproxy_tls is on but the front door's CA certificate cannot be read: ${(err as Error).message}`);
  }
}

/** The HTTPS port of the first frontend (its tls_port, else haproxy_tls_port): the one the probe uses. */
export function tlsPortOf(settings: Record<string, unknown>): number {
  const frontends = settings.haproxy_frontends;
  const first = Array.isArray(frontends) ? (frontends[0] as Record<string, unknown> | undefined) : undefined;
  return Number(first?.tls_port ?? settings.haproxy_tls_port ?? 443);
}

export function frontDoor(ctx: SettingsContext): FrontDoor {
  const lbs = groupHosts(ctx, ctx.options.lb_group ?? 'lb');
  const vip = String(
    ctx.options.vip ??
      optionalHostValue(ctx, lbs[0]!, 'keepalived_vip') ??
      optionalHostValue(ctx, lbs[0]!, 'vip_address') ??
      optionalHostValue(ctx, lbs[0]!, 'haproxy_vip') ??
      '',
  );
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(vip))
    throw inputError(`no VIP: set keepalived_vip or vip_address in the inventory, or --set vip=ADDRESS (got "${vip}")`);
  const tls = frontDoorTls(ctx, lbs[0]!);
  const url =
    ctx.options.url ??
    (tls ? `https://${vip}:${ctx.options.port ?? tls.port}/` : `http://${vip}:${ctx.options.port ?? '80'}/`);
  return { lbs, vip, url, ...(tls ? { ca: tls.ca } : {}) };
}

/** Does `host` hold the VIP? false when it does not answer (powered off) within a few seconds. */
async function holdsVip(ctx: DrillContext, host: string, vip: string): Promise<boolean> {
  try {
    const res = await ctx.exec(host, argv('ip', '-o', '-4', 'addr', 'show', 'to', `${vip}/32`), { timeoutMs: 5000 });
    return res.code === 0 && res.stdout.trim() !== '';
  } catch {
    return false;
  }
}

async function vipHolders(ctx: DrillContext, hosts: string[], vip: string): Promise<string[]> {
  const held = await Promise.all(hosts.map((h) => holdsVip(ctx, h, vip)));
  return hosts.filter((_, i) => held[i]);
}

/** The load balancer holding the VIP; the drill refuses to start unless exactly one does. */
async function currentMaster(ctx: DrillContext, door: FrontDoor): Promise<string> {
  const holders = await vipHolders(ctx, door.lbs, door.vip);
  if (holders.length !== 1) {
    throw new Error(
      holders.length
        ? `split brain before the drill: ${holders.join(' and ')} hold the VIP ${door.vip}`
        : `no load balancer holds the VIP ${door.vip} (asked ${door.lbs.join(', ')}): nothing to drill`,
    );
  }
  return holders[0]!;
}

/** One GET to the VIP before breaking anything: a drill against a dead service proves nothing. */
export async function requireAnswer(door: FrontDoor, signal: AbortSignal): Promise<void> {
  const probe = new ProbeLoop({
    url: door.url,
    ...(door.ca !== undefined ? { ca: door.ca } : {}),
    intervalMs: 200,
    timeoutMs: 2000,
    maxRequests: 5,
    maxDurationMs: 5000,
    signal,
  });
  await pollUntil(async () => (probe.count >= 5 || probe.lastOk(1) ? true : undefined), {
    timeoutMs: 8000,
    everyMs: 100,
    signal,
  });
  const report = await probe.stop();
  if (!report.samples.some((s) => s.ok))
    throw new Error(
      `${door.url} does not answer before the drill (${report.samples[0]?.error ?? `status ${report.samples[0]?.status}`})`,
    );
}

async function run(ctx: DrillContext, host: string, script: string): Promise<void> {
  const res = await ctx.exec(host, script, { timeoutMs: 30_000 });
  if (res.code !== 0)
    throw new Error(
      `${host}: \`${script}\` failed (exit ${res.code}): ${(res.stderr || res.stdout).trim().slice(0, 300)}`,
    );
}

const PROBE_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 1000;

export function startProbe(ctx: DrillContext, door: FrontDoor, maxDurationMs: number): ProbeLoop {
  return new ProbeLoop({
    url: door.url,
    ...(door.ca !== undefined ? { ca: door.ca } : {}),
    intervalMs: PROBE_INTERVAL_MS,
    timeoutMs: PROBE_TIMEOUT_MS,
    maxRequests: Math.ceil(maxDurationMs / PROBE_INTERVAL_MS),
    maxDurationMs,
    signal: ctx.signal,
  });
}

/**
 * Wait until the probe has seen `n` answers in a row, all recorded after sample `from` (the fault): the
 * answers from before the fault must not count, bounded.
 */
async function untilAnswering(
  probe: ProbeLoop,
  from: number,
  n: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  return (
    (await pollUntil(async () => (probe.count >= from + n && probe.lastOk(n) ? true : undefined), {
      timeoutMs,
      everyMs: PROBE_INTERVAL_MS,
      signal,
    })) !== undefined
  );
}

const seconds = (ms: number) => Math.round(ms) / 1000;

export function probeMeasures(report: ProbeReport): Record<string, number | string> {
  const firstFailure = report.samples.find((s) => !s.ok);
  return {
    requests: report.sent,
    failed_requests: report.failed,
    outage_s: seconds(report.longestOutageMs),
    availability_pct: Math.round(report.availabilityPct * 100) / 100,
    latency_p99_ms: Math.round(report.latencyP99Ms),
    ...(firstFailure ? { first_failure: firstFailure.error ?? `HTTP ${firstFailure.status}` } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Breaking and restoring a load balancer
// ---------------------------------------------------------------------------------------------------------

type Variant = 'service' | 'poweroff' | 'powercut' | 'unplug';

function variantOf(ctx: DrillContext): Variant {
  const variant = ctx.options.variant ?? 'service';
  if (variant !== 'service' && variant !== 'poweroff' && variant !== 'powercut' && variant !== 'unplug')
    throw inputError(`--set variant=${variant}: expected service, poweroff, powercut or unplug`);
  if (variant !== 'service' && !ctx.power)
    throw inputError(`--set variant=${variant} needs power and network control, which only the built-in lab has`);
  return variant;
}

const VARIANT_WORDS: Record<Variant, string> = {
  service: 'stop keepalived on',
  poweroff: 'power off',
  powercut: 'cut the power of',
  unplug: 'pull the network cable of',
};

/**
 * Take a node down by `variant`; with `service`, only its `service` stops (keepalived on a load balancer, nginx on
 * a backend), the others act on the whole host through the lab's power control.
 */
async function breakNode(ctx: DrillContext, host: string, variant: Variant, service = 'keepalived'): Promise<void> {
  ctx.log(variant === 'service' ? `stop ${service} on ${host}` : `${VARIANT_WORDS[variant]} ${host}`);
  if (variant === 'service') await run(ctx, host, `systemctl stop ${service}`);
  else if (variant === 'poweroff') await ctx.power!.stop(host);
  else if (variant === 'unplug') await ctx.power!.unplug(host);
  else await ctx.power!.kill(host);
}

/** Undo breakNode. */
async function restoreNode(ctx: DrillContext, host: string, variant: Variant, service = 'keepalived'): Promise<void> {
  ctx.log(
    variant === 'service'
      ? `start ${service} on ${host}`
      : variant === 'unplug'
        ? `plug ${host} back in`
        : `power ${host} on`,
  );
  if (variant === 'service') await run(ctx, host, `systemctl start ${service}`);
  else if (variant === 'unplug') await ctx.power!.plug(host);
  else await ctx.power!.start(host);
}

/**
 * After a restore: the VIP on `master` and on no other load balancer. An unplugged master kept the VIP all
 * along (it saw no peer), so "the master holds it" alone would pass at once; the backup must also let go.
 */
async function waitForSoleHolder(ctx: DrillContext, door: FrontDoor, master: string, timeoutMs: number) {
  return pollUntil(
    async () => {
      const holders = await vipHolders(ctx, door.lbs, door.vip);
      return holders.length === 1 && holders[0] === master ? master : undefined;
    },
    { timeoutMs, everyMs: 50, signal: ctx.signal },
  );
}

/** What failover and failback start from: the variant, the front door, its one master, a backup, the VIP answering. */
async function pairReady(
  ctx: DrillContext,
): Promise<{ variant: Variant; door: FrontDoor; master: string; backups: string[] }> {
  const variant = variantOf(ctx);
  const door = frontDoor(ctx);
  const master = await currentMaster(ctx, door);
  const backups = door.lbs.filter((h) => h !== master);
  if (!backups.length)
    throw new Error(`only ${master} is in the load-balancer group: there is no backup to fail over to`);
  await requireAnswer(door, ctx.signal);
  return { variant, door, master, backups };
}

/** The VIP on one of `hosts`, polled every 50 ms: which one and after how long. */
function waitForVipOn(ctx: DrillContext, hosts: string[], vip: string, timeoutMs: number) {
  return pollUntil(async () => (await vipHolders(ctx, hosts, vip))[0], { timeoutMs, everyMs: 50, signal: ctx.signal });
}

// ---------------------------------------------------------------------------------------------------------
// The drills
// ---------------------------------------------------------------------------------------------------------

const OUTAGE_TARGET_S = 3;
const SWITCH_TARGET_S = 30;
/**
 * Fail-back moves the VIP between two healthy balancers, so the bound is document 001's "VIP moves < 200 ms",
 * not a fail-over's seconds. Zero failed requests cannot be promised: a request in flight to the backup at the
 * instant the restored master's gratuitous ARP lands reaches a kernel without its connection and is reset (seen
 * once on CI: 1 of 66 failed, 0.101 s). What the drill holds the pair to is that no gap is longer than the move.
 */
const FAILBACK_OUTAGE_TARGET_S = 0.2;

/** "served by web1" in the page's first line -> web1. */
function servedBy(sample: ProbeSample): string | undefined {
  return /served by ([A-Za-z0-9._-]+)/.exec(sample.body ?? '')?.[1];
}

/**
 * The status haproxy on `lb` gives the server named `server` in every backend ("UP", "DOWN", "UP 1/2"...;
 * comma-joined when several backends have it), read from its runtime API's `show stat`.
 */
async function backendStatus(ctx: DrillContext, lb: string, server: string): Promise<string> {
  const socket = String(optionalHostValue(ctx, lb, 'haproxy_stats_socket') ?? '/run/haproxy/admin.sock');
  const res = await ctx.exec(lb, `echo 'show stat' | socat -t 2 stdio ${quote(`UNIX-CONNECT:${socket}`)}`, {
    timeoutMs: 5000,
  });
  if (res.code !== 0) throw new Error(`${lb}: cannot read haproxy's stats socket ${socket}: ${res.stderr.trim()}`);
  const found = [...serverStatuses(parseShowStat(res.stdout))].filter(([name]) => name.endsWith(`/${server}`));
  if (!found.length) throw new Error(`haproxy on ${lb} has no server named ${server}`);
  return found.map(([, status]) => status).join(',');
}

registerDrill({
  name: 'backend-down',
  summary: "stop one web host's nginx while probing the VIP: no request may fail; nginx is started again",
  options: {
    host: 'the web host to stop (default: the first of group web)',
    web_group: 'group of the backends (default web)',
    lb_group: 'group of the load balancers (default lb)',
    vip: 'the VIP (default keepalived_vip / vip_address)',
  },
  async run(ctx): Promise<DrillOutcome> {
    const door = frontDoor(ctx);
    const webs = groupHosts(ctx, ctx.options.web_group ?? 'web');
    const victim = ctx.options.host ?? webs[0]!;
    if (!webs.includes(victim))
      throw inputError(
        `--set host=${victim}: not a host of group ${ctx.options.web_group ?? 'web'} (${webs.join(', ')})`,
      );
    const master = await currentMaster(ctx, door);
    const victimStatus = (): Promise<string> => backendStatus(ctx, master, victim);
    if ((await victimStatus()) !== 'UP')
      throw new Error(`${victim} is not UP in haproxy on ${master} before the drill`);
    await requireAnswer(door, ctx.signal);

    const probe = startProbe(ctx, door, 60_000);
    const probeStart = performance.now();
    let stopped = false;
    let downAfterMs: number | undefined;
    // The window (probe clock, ms) in which the backend was down: from "nginx has exited" to the restart.
    let downFrom = Infinity;
    let downTo = -Infinity;
    try {
      await sleep(1000, ctx.signal);
      ctx.log(`stop nginx on ${victim} (haproxy master: ${master})`);
      const t0 = performance.now();
      await run(ctx, victim, 'systemctl stop nginx');
      stopped = true;
      downFrom = performance.now() - probeStart;
      const down = await pollUntil(async () => ((await victimStatus()).startsWith('DOWN') ? true : undefined), {
        timeoutMs: 15_000,
        everyMs: 100,
        signal: ctx.signal,
      });
      downAfterMs = down && performance.now() - t0;
      ctx.log(
        downAfterMs === undefined
          ? `haproxy did not mark ${victim} DOWN within 15 s`
          : `haproxy marked ${victim} DOWN ${seconds(downAfterMs)} s after the stop`,
      );
      // Keep probing while it is down: the other backend must carry every request.
      await sleep(2000, ctx.signal);
      downTo = performance.now() - probeStart;
    } finally {
      if (stopped || !ctx.signal.aborted) {
        ctx.log(`start nginx on ${victim}`);
        await run(ctx, victim, 'systemctl start nginx');
      }
    }
    const up = await pollUntil(async () => ((await victimStatus()) === 'UP' ? true : undefined), {
      timeoutMs: 20_000,
      everyMs: 100,
      signal: ctx.signal,
    });
    const upAfterMs = up?.afterMs;
    await sleep(1000, ctx.signal);
    const report = await probe.stop();
    const whileDown = report.samples.filter((s) => s.atMs >= downFrom && s.atMs < downTo);
    const servedByVictim = whileDown.filter((s) => servedBy(s) === victim).length;
    const measured: Record<string, number | string> = {
      ...probeMeasures(report),
      stopped: victim,
      haproxy_master: master,
      detect_down_s: downAfterMs === undefined ? -1 : seconds(downAfterMs),
      back_up_s: upAfterMs === undefined ? -1 : seconds(upAfterMs),
      requests_while_down: whileDown.length,
      served_by_stopped_while_down: servedByVictim,
    };
    const restored = upAfterMs !== undefined;
    const passed = report.failed === 0 && restored && report.sent > 0;
    return {
      passed,
      measured,
      target: '0 failed requests while one backend is down (document 004); the backend back UP after it is restored',
      msg: passed
        ? `${report.sent} requests, none failed; ${victim} was DOWN in haproxy after ${measured.detect_down_s} s and UP again ${measured.back_up_s} s after nginx started`
        : !restored
          ? `${victim} did not come back UP in haproxy within 20 s of starting nginx`
          : `${report.failed} of ${report.sent} requests failed while ${victim} was down`,
    };
  },
});

registerDrill({
  name: 'failover',
  summary: 'stop the load balancer holding the VIP (keepalived, or power): the backup takes the VIP; outage timed',
  options: {
    variant:
      'service (stop keepalived, default), poweroff (orderly power-off: the host shuts down), powercut (the host dies at once), unplug (lab: its network cable pulled; it keeps running, isolated)',
    lb_group: 'group of the load balancers (default lb)',
    vip: 'the VIP (default keepalived_vip / vip_address)',
  },
  async run(ctx): Promise<DrillOutcome> {
    const { variant, door, master, backups } = await pairReady(ctx);

    const probe = startProbe(ctx, door, 60_000);
    let broken = false;
    let switched: { value: string; afterMs: number } | undefined;
    let answering: boolean;
    let restored = false;
    let report: ProbeReport;
    try {
      await sleep(1000, ctx.signal);
      const t0 = performance.now();
      const faultAt = probe.count;
      // Watched while the fault happens: an orderly halt takes seconds, and the VIP moves during it.
      const breaking = breakNode(ctx, master, variant);
      broken = true;
      const watchFrom = performance.now() - t0;
      const moved = await waitForVipOn(ctx, backups, door.vip, SWITCH_TARGET_S * 1000 + 5000);
      switched = moved && { value: moved.value, afterMs: watchFrom + moved.afterMs };
      await breaking;
      if (switched) ctx.log(`${switched.value} holds the VIP ${seconds(switched.afterMs)} s after the fault`);
      answering = switched !== undefined && (await untilAnswering(probe, faultAt, 10, 30_000, ctx.signal));
      // A moment more: a late failure (a stale ARP entry on the way) belongs to the fail-over too.
      await sleep(1000, ctx.signal);
    } finally {
      report = await probe.stop();
      if (broken) {
        await restoreNode(ctx, master, variant);
        restored = (await waitForSoleHolder(ctx, door, master, 60_000)) !== undefined;
        ctx.log(
          restored ? `${master} holds the VIP again (preempt)` : `${master} did not take the VIP back within 60 s`,
        );
      }
    }
    const measured: Record<string, number | string> = {
      variant,
      old_master: master,
      new_master: switched?.value ?? 'none',
      switch_s: switched ? seconds(switched.afterMs) : -1,
      ...probeMeasures(report),
      restored: restored ? 'yes' : 'no',
    };
    const outageS = seconds(report.longestOutageMs);
    const passed =
      Boolean(switched) &&
      answering &&
      outageS <= OUTAGE_TARGET_S &&
      switched!.afterMs <= SWITCH_TARGET_S * 1000 &&
      restored;
    const problems = [
      !switched && `no backup took the VIP within ${SWITCH_TARGET_S + 5} s`,
      switched && !answering && 'the VIP did not answer again within 30 s',
      outageS > OUTAGE_TARGET_S && `outage ${outageS} s > ${OUTAGE_TARGET_S} s`,
      !restored && `${master} did not take the VIP back after it was restored`,
    ].filter(Boolean);
    return {
      passed,
      measured,
      target: `outage ≤ ${OUTAGE_TARGET_S} s (document 000), VIP switched ≤ ${SWITCH_TARGET_S} s (document 003), forwarding unaffected (document 004)`,
      msg: passed
        ? `${VARIANT_WORDS[variant]} ${master}: ${switched!.value} took the VIP in ${measured.switch_s} s; outage ${outageS} s, ${report.failed} of ${report.sent} requests failed; ${master} restored and master again`
        : problems.join('; '),
    };
  },
});

registerDrill({
  name: 'failback',
  summary: 'with the master down and the VIP on the backup, restore the master: the VIP returns (preempt)',
  options: {
    variant: 'how the master is taken down first: service (default), poweroff, powercut, unplug',
    lb_group: 'group of the load balancers (default lb)',
    vip: 'the VIP (default keepalived_vip / vip_address)',
  },
  async run(ctx): Promise<DrillOutcome> {
    const { variant, door, master, backups } = await pairReady(ctx);

    // Set the scene: the master down, the VIP on the backup and answering.
    let restoredMaster = false;
    await breakNode(ctx, master, variant);
    try {
      const onBackup = await waitForVipOn(ctx, backups, door.vip, SWITCH_TARGET_S * 1000);
      if (!onBackup) throw new Error(`no backup took the VIP within ${SWITCH_TARGET_S} s after ${master} went down`);
      await requireAnswer(door, ctx.signal);
      ctx.log(`${onBackup.value} holds the VIP; now restoring ${master}`);

      const probe = startProbe(ctx, door, 90_000);
      let returned: { value: string; afterMs: number } | undefined;
      let report: ProbeReport | undefined;
      try {
        await sleep(1000, ctx.signal);
        const t0 = performance.now();
        const restoreAt = probe.count;
        await restoreNode(ctx, master, variant);
        restoredMaster = true;
        const back = await waitForSoleHolder(ctx, door, master, 60_000);
        returned = back && { value: back.value, afterMs: performance.now() - t0 };
        if (returned) ctx.log(`${master} holds the VIP again ${seconds(returned.afterMs)} s after the restore began`);
        await untilAnswering(probe, restoreAt, 10, 30_000, ctx.signal);
        // Keep probing a moment after the move: a late failure belongs to the fail-back too.
        await sleep(1000, ctx.signal);
      } finally {
        report = await probe.stop();
      }
      const measured: Record<string, number | string> = {
        variant,
        master,
        vip_returned: returned ? 'yes' : 'no',
        return_s: returned ? seconds(returned.afterMs) : -1,
        ...probeMeasures(report),
      };
      const outageS = seconds(report.longestOutageMs);
      const passed = Boolean(returned) && outageS <= FAILBACK_OUTAGE_TARGET_S;
      const failures =
        report.failed === 0
          ? 'none failed'
          : `${report.failed} failed at the switch (longest gap ${outageS} s, first: ${measured.first_failure})`;
      return {
        passed,
        measured,
        target:
          `the VIP returns to the restored master by preempt and forwarding continues (document 004): ` +
          `no gap over ${FAILBACK_OUTAGE_TARGET_S} s (document 001: VIP moves < 200 ms)`,
        msg: !returned
          ? `${master} did not take the VIP back within 60 s of being restored`
          : passed
            ? `${master} took the VIP back ${measured.return_s} s after the restore began; ${report.sent} requests, ${failures}`
            : `${master} took the VIP back, but forwarding stopped for ${outageS} s ` +
              `(over ${FAILBACK_OUTAGE_TARGET_S} s): ${report.failed} of ${report.sent} requests failed, ` +
              `first: ${measured.first_failure}`,
      };
    } finally {
      if (!restoredMaster) {
        await restoreNode(ctx, master, variant);
        await waitForSoleHolder(ctx, door, master, 60_000);
      }
    }
  },
});

/** Document 001: recovery after a drill within 15 minutes. */
const RTO_S = 15 * 60;

registerDrill({
  name: 'two-node',
  summary:
    'two nodes down at once (document 001, half-yearly): the load balancer holding the VIP and a web backend; the other pair carries the traffic, both come back within the RTO',
  options: {
    variant:
      'how both nodes go down: service (keepalived and nginx stopped, default), poweroff, powercut (both die at once), unplug (lab: both cables pulled)',
    host: 'the web host to take down (default: the first of group web)',
    web_group: 'group of the backends (default web)',
    lb_group: 'group of the load balancers (default lb)',
    vip: 'the VIP (default keepalived_vip / vip_address)',
  },
  async run(ctx): Promise<DrillOutcome> {
    const webs = groupHosts(ctx, ctx.options.web_group ?? 'web');
    const victim = ctx.options.host ?? webs[0]!;
    if (!webs.includes(victim))
      throw inputError(
        `--set host=${victim}: not a host of group ${ctx.options.web_group ?? 'web'} (${webs.join(', ')})`,
      );
    const survivors = webs.filter((h) => h !== victim);
    if (!survivors.length)
      throw new Error(`only ${victim} is in the backend group: no backend is left to carry the traffic`);
    const { variant, door, master, backups } = await pairReady(ctx);
    for (const web of webs) {
      const status = await backendStatus(ctx, master, web);
      if (status !== 'UP') throw new Error(`${web} is ${status}, not UP, in haproxy on ${master} before the drill`);
    }

    const probe = startProbe(ctx, door, 120_000);
    let broken = false;
    let switched: { value: string; afterMs: number } | undefined;
    let victimDownMs: number | undefined;
    let answering = false;
    let report: ProbeReport;
    let recovered: { afterMs: number } | undefined;
    try {
      await sleep(1000, ctx.signal);
      const t0 = performance.now();
      const faultAt = probe.count;
      // Both at the same moment: the drill is about losing two nodes at once, not one after the other.
      const breaking = Promise.all([breakNode(ctx, master, variant), breakNode(ctx, victim, variant, 'nginx')]);
      broken = true;
      const watchFrom = performance.now() - t0;
      const moved = await waitForVipOn(ctx, backups, door.vip, SWITCH_TARGET_S * 1000 + 5000);
      switched = moved && { value: moved.value, afterMs: watchFrom + moved.afterMs };
      await breaking;
      if (switched) {
        ctx.log(`${switched.value} holds the VIP ${seconds(switched.afterMs)} s after the fault`);
        // The new master's haproxy must have taken the dead backend out by its own health checks.
        const down = await pollUntil(
          async () => ((await backendStatus(ctx, switched!.value, victim)).startsWith('DOWN') ? true : undefined),
          { timeoutMs: 30_000, everyMs: 200, signal: ctx.signal },
        );
        victimDownMs = down && performance.now() - t0;
        if (victimDownMs !== undefined)
          ctx.log(`haproxy on ${switched.value} marked ${victim} DOWN ${seconds(victimDownMs)} s after the fault`);
        answering = await untilAnswering(probe, faultAt, 10, 30_000, ctx.signal);
        // The surviving pair carries the traffic for a while: failures now would not be the fault's moment.
        await sleep(2000, ctx.signal);
      }
    } finally {
      report = await probe.stop();
      if (broken) {
        const restoreStart = performance.now();
        await Promise.all([restoreNode(ctx, master, variant), restoreNode(ctx, victim, variant, 'nginx')]);
        const sole = await waitForSoleHolder(ctx, door, master, RTO_S * 1000);
        const up =
          sole &&
          (await pollUntil(async () => ((await backendStatus(ctx, master, victim)) === 'UP' ? true : undefined), {
            timeoutMs: RTO_S * 1000,
            everyMs: 200,
            signal: ctx.signal,
          }));
        recovered = up && { afterMs: performance.now() - restoreStart };
        ctx.log(
          recovered
            ? `${master} holds the VIP and ${victim} is UP again ${seconds(recovered.afterMs)} s after the restore began`
            : `${master} and ${victim} did not both recover within ${RTO_S / 60} min`,
        );
      }
    }
    const measured: Record<string, number | string> = {
      variant,
      lb_down: master,
      web_down: victim,
      new_master: switched?.value ?? 'none',
      switch_s: switched ? seconds(switched.afterMs) : -1,
      detect_web_down_s: victimDownMs === undefined ? -1 : seconds(victimDownMs),
      ...probeMeasures(report),
      recovery_s: recovered ? seconds(recovered.afterMs) : -1,
    };
    const passed =
      switched !== undefined &&
      switched.afterMs <= SWITCH_TARGET_S * 1000 &&
      victimDownMs !== undefined &&
      answering &&
      recovered !== undefined;
    const problems = [
      !switched && `no backup took the VIP within ${SWITCH_TARGET_S + 5} s`,
      switched && switched.afterMs > SWITCH_TARGET_S * 1000 && `the VIP moved after ${measured.switch_s} s`,
      switched && victimDownMs === undefined && `haproxy on ${switched.value} did not mark ${victim} DOWN within 30 s`,
      switched && !answering && 'the VIP did not answer again within 30 s',
      !recovered && `${master} and ${victim} did not both recover within ${RTO_S / 60} min`,
    ].filter(Boolean);
    return {
      passed,
      measured,
      target: `with ${master} and ${victim} down at once: the VIP on the backup ≤ ${SWITCH_TARGET_S} s (document 003) and answering on the remaining backends; both back, the VIP on ${master} and ${victim} UP, within the RTO of ${RTO_S / 60} min (document 001)`,
      msg: passed
        ? `${VARIANT_WORDS[variant]} ${master} and ${victim}: ${switched!.value} took the VIP in ${measured.switch_s} s, ${survivors.join(', ')} carried the traffic (longest outage ${measured.outage_s} s, ${report.failed} of ${report.sent} requests failed); recovered in ${measured.recovery_s} s`
        : problems.join('; '),
    };
  },
});
