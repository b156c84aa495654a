/**
 * Drill of the Ceph layer: `osd-down`. A few small objects are written into a pool first (an empty PG can
 * only be "undersized", never "degraded": degraded counts object copies). Stop one OSD -> the monitors mark
 * it down and the cluster goes to HEALTH_WARN with degraded PGs (one copy of three is missing; with
 * min_size 2 the PGs stay active, and a write made while it is down proves it) -> start it again -> back to
 * HEALTH_OK with every PG active+clean within a bound. Times are measured from the stop and from the start,
 * polling `ceph -s -f json` from another node about twice a second; the WARN state's `ceph health detail` is
 * captured and reported. The OSD is started again in a finally block (also on Ctrl-C), and the drill's
 * objects are removed at the end.
 */
import { inputError } from '../../core/util/errors.js';
import { argv, quote } from '../../core/transport/quote.js';
import {
  CephOutputError,
  activeChecks,
  parseHealthDetailText,
  parseJsonOutput,
} from '../../core/modules/ceph/health.js';
import { activeCleanPgs, degradedPgs, parseStatusJson, type CephStatus } from '../../core/modules/ceph/status.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import type { DrillContext, DrillOutcome } from './types.js';
import { hostValue } from './settings.js';

export function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? [...(value as string[])] : undefined;
}

export function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

export function positiveNumber(ctx: DrillContext, key: string, fallback: number): number {
  const raw = ctx.options[key];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw inputError(`--set ${key}=${raw}: expected a number of seconds above 0`);
  return value;
}

/** The cluster's nodes: the inventory hosts with a ceph_fsid, OSD hosts as the inventory's ceph_osd_hosts says. */
export function cephNodes(ctx: DrillContext): { nodes: string[]; osdHosts: string[] } {
  const nodes = [...ctx.inventory.hosts.keys()].filter(
    (h) => typeof hostValue(ctx, h, 'ceph_fsid') === 'string' && hostValue(ctx, h, 'ceph_fsid') !== '',
  );
  if (!nodes.length) throw inputError('no host in the inventory sets ceph_fsid: there is no Ceph cluster to drill');
  const osdHosts = stringList(hostValue(ctx, nodes[0]!, 'ceph_osd_hosts'))?.filter((h) => nodes.includes(h)) ?? nodes;
  if (!osdHosts.length) throw inputError('ceph_osd_hosts names no host of the cluster');
  return { nodes, osdHosts };
}

export async function runOn(ctx: DrillContext, host: string, script: string, timeoutMs = 60_000): Promise<string> {
  const res = await ctx.exec(host, script, { timeoutMs });
  if (res.code !== 0)
    throw new Error(
      `${host}: \`${script}\` failed (exit ${res.code}): ${(res.stderr.trim() || res.stdout.trim()).split('\n').slice(-3).join(' ')}`,
    );
  return res.stdout;
}

export async function cephStatus(ctx: DrillContext, admin: string): Promise<CephStatus> {
  const out = await runOn(
    ctx,
    admin,
    `timeout 15 ${argv('ceph', '--connect-timeout', '10', '-s', '-f', 'json')}`,
    20_000,
  );
  return parseStatusJson(parseJsonOutput(out, 'ceph -s -f json'));
}

export function isCleanOk(status: CephStatus): boolean {
  return (
    status.health.status === 'HEALTH_OK' &&
    activeCleanPgs(status) === status.pgs.total &&
    status.osds.up === status.osds.total &&
    status.osds.in === status.osds.total
  );
}

registerDrill({
  name: 'osd-down',
  summary:
    'stop one Ceph OSD: HEALTH_WARN with degraded PGs, then start it: HEALTH_OK again within a bound; times recorded',
  options: {
    host: 'the OSD host (default: the last of ceph_osd_hosts)',
    osd: 'the OSD id on that host (default: the first the role recorded there)',
    warn_bound_s: 'how soon the cluster must report the OSD down and PGs degraded (default 60)',
    hold_s: 'how long the OSD stays down once that is seen (default 5)',
    recover_bound_s: 'how soon after the start the cluster must be HEALTH_OK, every PG active+clean (default 180)',
    pool: 'the pool the drill writes its objects to (default: the first of ceph_pools)',
    objects: 'how many small objects it writes before the stop (default 8)',
  },
  async run(ctx): Promise<DrillOutcome> {
    const { nodes, osdHosts } = cephNodes(ctx);
    const victim = ctx.options.host ?? osdHosts[osdHosts.length - 1]!;
    if (!osdHosts.includes(victim))
      throw inputError(`--set host=${victim}: not an OSD host of the cluster (${osdHosts.join(', ')})`);
    // Read the cluster from another node, so what is measured does not depend on the stopped OSD's host.
    const admin = nodes.find((n) => n !== victim) ?? victim;
    const warnBoundS = positiveNumber(ctx, 'warn_bound_s', 60);
    const holdS = positiveNumber(ctx, 'hold_s', 5);
    const recoverBoundS = positiveNumber(ctx, 'recover_bound_s', 180);
    const objectCount = Math.round(positiveNumber(ctx, 'objects', 8));
    const pools = hostValue(ctx, admin, 'ceph_pools');
    const firstPool =
      Array.isArray(pools) && pools[0] && typeof pools[0] === 'object'
        ? (pools[0] as { name?: unknown }).name
        : undefined;
    const pool = ctx.options.pool ?? (typeof firstPool === 'string' ? firstPool : 'rbd');
    const rados = (...args: string[]): string => `timeout 30 ${argv('rados', '-p', pool, ...args)}`;

    let osdId = ctx.options.osd;
    if (osdId === undefined) {
      // Both backends leave /var/lib/ceph/osd/ceph-ID: the file backend's data directory, the tmpfs ceph-volume
      // mounts for an lvm OSD.
      const ids = (await runOn(ctx, victim, 'ls /var/lib/ceph/osd 2>/dev/null || true'))
        .split('\n')
        .map((l) => /^ceph-(\d+)$/.exec(l.trim())?.[1])
        .filter((id): id is string => id !== undefined);
      if (!ids.length) throw new Error(`${victim} has no OSD (no /var/lib/ceph/osd/ceph-ID)`);
      osdId = ids[0]!;
    }
    if (!/^\d+$/.test(osdId)) throw inputError(`--set osd=${osdId}: expected an OSD id (a number)`);
    const unit = `ceph-osd@${osdId}`;

    const before = await cephStatus(ctx, admin);
    if (!isCleanOk(before)) {
      throw new Error(
        `the cluster is not HEALTH_OK with every PG active+clean before the drill (${before.health.status}, ${activeCleanPgs(before)}/${before.pgs.total} PGs active+clean): not breaking it further`,
      );
    }
    ctx.log(
      `cluster HEALTH_OK, ${before.osds.up}/${before.osds.total} OSDs up, ${before.pgs.total} PGs active+clean; stopping osd.${osdId} on ${victim} (reading from ${admin})`,
    );

    // Objects to be degraded: a copy of each lives on every OSD (size 3 over 3 hosts).
    const objectNames = Array.from({ length: objectCount }, (_, i) => `cairn-drill-${i}`);
    await runOn(ctx, admin, objectNames.map((o) => rados('put', o, '/etc/os-release')).join(' && '));
    const measured: Record<string, number | string> = {
      osd: `osd.${osdId}`,
      host: victim,
      read_from: admin,
      pool,
      objects: objectCount,
    };
    let stopped = false;
    let warnAfterMs: number | undefined;
    let degradedMax = 0;
    let warnChecks = '';
    let warnDetail = '';
    let startedAt = 0;
    try {
      const t0 = performance.now();
      await runOn(ctx, victim, `systemctl stop ${quote(unit)}`);
      stopped = true;
      measured.stop_s = seconds(performance.now() - t0);
      // Until the monitors report the OSD down and its PGs degraded (or the bound passes).
      const warned = await pollUntil(
        async () => {
          const status = await cephStatus(ctx, admin);
          const degraded = degradedPgs(status);
          degradedMax = Math.max(degradedMax, degraded);
          const codes = activeChecks(status.health).map((c) => c.code);
          return status.health.status !== 'HEALTH_OK' && codes.includes('OSD_DOWN') && degraded > 0
            ? status
            : undefined;
        },
        { since: t0, timeoutMs: warnBoundS * 1000, everyMs: 500, signal: ctx.signal },
      );
      if (warned) {
        const status = warned.value;
        warnAfterMs = warned.afterMs;
        warnChecks = status.health.checks.map((c) => `${c.code}: ${c.summary}`).join('; ');
        measured.health_while_down = status.health.status;
        if (status.degradedObjects !== undefined) measured.degraded_objects = status.degradedObjects;
      }
      if (warnAfterMs !== undefined) {
        ctx.log(`after ${seconds(warnAfterMs)} s: ${warnChecks}`);
        // What an operator would read, and the PG count once peering has settled on the degraded state.
        const text = await runOn(
          ctx,
          admin,
          `timeout 15 ${argv('ceph', '--connect-timeout', '10', 'health', 'detail')}`,
          20_000,
        );
        const report = parseHealthDetailText(text);
        warnDetail = report.checks
          .map((c) => `${c.code}: ${c.summary}${c.detail.length ? ` (${c.detail.slice(0, 2).join('; ')})` : ''}`)
          .join(' | ');
        // min_size 2: with two copies of three the PGs stay active, so a write must still succeed.
        const write = await ctx.exec(admin, rados('put', 'cairn-drill-while-down', '/etc/hostname'), {
          timeoutMs: 40_000,
        });
        measured.write_while_down = write.code === 0 ? 'ok' : `failed (exit ${write.code})`;
        // Hold the fault for holdS, sampling the degraded PG count every second (never "done" early).
        await pollUntil(
          async () => {
            degradedMax = Math.max(degradedMax, degradedPgs(await cephStatus(ctx, admin)));
            return undefined;
          },
          { timeoutMs: holdS * 1000, everyMs: 1000, signal: ctx.signal },
        );
      }
    } finally {
      if (stopped) {
        ctx.log(`starting osd.${osdId} on ${victim}`);
        startedAt = performance.now();
        // Ceph's units allow 3 starts in 30 min: earlier drills must not make this start refused.
        await runOn(ctx, victim, `systemctl reset-failed ${quote(unit)} 2>/dev/null; systemctl start ${quote(unit)}`);
      }
    }

    // Back to HEALTH_OK, every OSD up and in, every PG active+clean.
    let last: CephStatus | undefined;
    const recovered = await pollUntil(
      async () => {
        try {
          last = await cephStatus(ctx, admin);
        } catch (err) {
          if (!(err instanceof CephOutputError)) throw err;
        }
        return last && isCleanOk(last) ? last : undefined;
      },
      { since: startedAt, timeoutMs: recoverBoundS * 1000, everyMs: 500, signal: ctx.signal },
    );
    const recoverAfterMs = recovered?.afterMs;

    // Leave the pool as it was.
    const cleanup = await ctx.exec(
      admin,
      [...objectNames, 'cairn-drill-while-down'].map((o) => `${rados('rm', o)} 2>/dev/null`).join('; ') + '; true',
      { timeoutMs: 120_000 },
    );
    if (cleanup.code !== 0) ctx.log(`could not remove the drill's objects from pool ${pool}: ${cleanup.stderr.trim()}`);

    measured.warn_after_s = warnAfterMs === undefined ? -1 : seconds(warnAfterMs);
    measured.degraded_pgs = degradedMax;
    measured.pgs = before.pgs.total;
    measured.recover_s = recoverAfterMs === undefined ? -1 : seconds(recoverAfterMs);
    if (warnChecks) measured.warn_checks = warnChecks;
    if (warnDetail) measured.health_detail = warnDetail;
    const target = `HEALTH_WARN with OSD_DOWN and degraded PGs within ${warnBoundS} s of the stop, writes still served; HEALTH_OK, all PGs active+clean within ${recoverBoundS} s of the start`;
    if (warnAfterMs === undefined) {
      return {
        passed: false,
        measured,
        target,
        msg: `the cluster did not report osd.${osdId} down with degraded PGs within ${warnBoundS} s (largest degraded PG count seen: ${degradedMax})`,
      };
    }
    if (measured.write_while_down !== 'ok') {
      return {
        passed: false,
        measured,
        target,
        msg: `a write to pool ${pool} with osd.${osdId} down did not succeed (${measured.write_while_down}): min_size should keep the PGs active`,
      };
    }
    if (recoverAfterMs === undefined) {
      const state = last
        ? `${last.health.status}, ${activeCleanPgs(last)}/${last.pgs.total} PGs active+clean, ${last.osds.up}/${last.osds.total} OSDs up`
        : 'unreadable';
      return {
        passed: false,
        measured,
        target,
        msg: `not back to HEALTH_OK within ${recoverBoundS} s of starting osd.${osdId} (last: ${state})`,
      };
    }
    return {
      passed: true,
      measured,
      target,
      msg: `osd.${osdId} on ${victim} stopped: ${measured.health_while_down} after ${measured.warn_after_s} s (${degradedMax} of ${before.pgs.total} PGs degraded, a write still served); started: HEALTH_OK after ${measured.recover_s} s`,
    };
  },
});
