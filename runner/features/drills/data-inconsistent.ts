/**
 * Drill of the emergency alert tier (document 000: "emergency (data inconsistent)"): `alert-data-inconsistent`.
 *
 * It makes Ceph's replicas of one object disagree for real and proves the whole chain sees it: write an
 * object, stop one OSD holding a replica (not the primary), overwrite that replica's bytes with
 * ceph-objectstore-tool, start the OSD, ask for a deep scrub of the object's PG -> Ceph reports
 * OSD_SCRUB_ERRORS / PG_DAMAGED (HEALTH_ERR) -> the manager's exporter shows it, Prometheus fires
 * CephDataInconsistent and Alertmanager (and the lab's webhook sink) has it. Then `ceph pg repair` copies the
 * primary's good data back -> HEALTH_OK -> the alert resolves. Times are measured for the scrub, the alert
 * and the repair; the object is removed at the end. The OSD is started again in a finally block (also on
 * Ctrl-C), and a PG left inconsistent by an interrupted drill is repaired there too.
 */
import { inputError } from '../../core/util/errors.js';
import { activeChecks, parseJsonOutput } from '../../core/modules/ceph/health.js';
import { argv, quote } from '../../core/transport/quote.js';
import { cephNodes, cephStatus, isCleanOk, positiveNumber, runOn, seconds } from './ceph.js';
import { hostValue } from './settings.js';
import { monitoringOf, runAlertDrill } from './monitoring.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import type { DrillContext } from './types.js';
import { isPlainObject } from '../../core/util/vars.js';

const OBJECT = 'cairn-drill-inconsistent';
const CRUSH_ITEM_NONE = 2147483647;
/** The health checks Ceph raises for replicas that disagree (the rule CephDataInconsistent's names). */
const INCONSISTENT_CHECKS = ['OSD_SCRUB_ERRORS', 'PG_DAMAGED'];

/** `ceph osd map POOL OBJECT -f json`: the object's PG and the OSDs holding it, primary first. */
export interface ObjectPlacement {
  pgid: string;
  acting: number[];
  primary: number;
}

export function parseOsdMap(text: string): ObjectPlacement {
  const data = parseJsonOutput(text, 'ceph osd map');
  if (
    !isPlainObject(data) ||
    typeof data.pgid !== 'string' ||
    !Array.isArray(data.acting) ||
    typeof data.acting_primary !== 'number'
  ) {
    throw new Error('ceph osd map answered without pgid, acting and acting_primary');
  }
  // A hole in the acting set (an OSD missing) is CRUSH_ITEM_NONE, 2147483647.
  const acting = data.acting.filter((id): id is number => typeof id === 'number' && id >= 0 && id !== CRUSH_ITEM_NONE);
  return { pgid: data.pgid, acting, primary: data.acting_primary };
}

/** `ceph osd find ID -f json`: the CRUSH host of an OSD. */
export function parseOsdFindHost(text: string): string {
  const data = parseJsonOutput(text, 'ceph osd find');
  if (!isPlainObject(data)) throw new Error('ceph osd find did not answer an object');
  if (typeof data.host === 'string' && data.host) return data.host;
  if (isPlainObject(data.crush_location) && typeof data.crush_location.host === 'string')
    return data.crush_location.host;
  throw new Error("ceph osd find answered without the OSD's host");
}

/** The manager exporter's refresh interval on the cluster (mgr/prometheus/scrape_interval, Ceph's default 15 s). */
function exporterRefreshS(ctx: DrillContext, node: string): number {
  const options = hostValue(ctx, node, 'ceph_mgr_module_options');
  const value = isPlainObject(options) ? Number(options['prometheus/scrape_interval']) : NaN;
  return Number.isFinite(value) && value > 0 ? value : 15;
}

/** Milliseconds until `probe` holds, asked every second; undefined after `boundS` (or on Ctrl-C). */
async function waitFor(ctx: DrillContext, boundS: number, probe: () => Promise<boolean>): Promise<number | undefined> {
  const seen = await pollUntil(async () => ((await probe()) ? true : undefined), {
    timeoutMs: boundS * 1000,
    everyMs: 1000,
    signal: ctx.signal,
  });
  return seen?.afterMs;
}

registerDrill({
  name: 'alert-data-inconsistent',
  summary:
    'corrupt one Ceph replica and deep-scrub it -> CephDataInconsistent (emergency tier) fires; ceph pg repair -> it resolves',
  options: {
    pool: 'the pool the drill writes its object to (default: the first of ceph_pools)',
    scrub_bound_s: 'how soon after the deep scrub is asked Ceph must report the inconsistency (default 120)',
    repair_bound_s: 'how soon after `ceph pg repair` Ceph must be HEALTH_OK again (default 180)',
    timeout: 'seconds to wait for the alert (default: exporter refresh + scrape + evaluation + 70)',
    poll: 'seconds between questions to Alertmanager (default 1)',
  },
  async run(ctx) {
    const mon = monitoringOf(ctx);
    const { nodes } = cephNodes(ctx);
    const admin = nodes[0]!;
    const scrubBoundS = positiveNumber(ctx, 'scrub_bound_s', 120);
    const repairBoundS = positiveNumber(ctx, 'repair_bound_s', 180);
    const pools = hostValue(ctx, admin, 'ceph_pools');
    const firstPool = Array.isArray(pools) && isPlainObject(pools[0]) ? pools[0].name : undefined;
    const pool = ctx.options.pool ?? (typeof firstPool === 'string' ? firstPool : 'rbd');
    const ceph = (...args: string[]): string => `timeout 60 ${argv('ceph', '--connect-timeout', '30', ...args)}`;

    const before = await cephStatus(ctx, admin);
    if (!isCleanOk(before))
      throw new Error(
        `the cluster is not HEALTH_OK with every PG active+clean before the drill (${before.health.status}): not breaking it further`,
      );

    await runOn(ctx, admin, `timeout 30 ${argv('rados', '-p', pool, 'put', OBJECT, '/etc/os-release')}`);
    const placement = parseOsdMap(await runOn(ctx, admin, ceph('osd', 'map', pool, OBJECT, '-f', 'json')));
    const replica = placement.acting.find((id) => id !== placement.primary);
    if (replica === undefined)
      throw new Error(
        `object ${OBJECT} of pool ${pool} has no copy besides the primary (acting ${JSON.stringify(placement.acting)}): a pool of size 1 cannot be inconsistent`,
      );
    const victim = parseOsdFindHost(await runOn(ctx, admin, ceph('osd', 'find', String(replica), '-f', 'json')));
    if (!ctx.inventory.hosts.has(victim))
      throw inputError(`osd.${replica} lives on ${victim}, which is not in the inventory`);
    const unit = `ceph-osd@${replica}`;
    const measured: Record<string, number | string> = {
      pool,
      object: OBJECT,
      pg: placement.pgid,
      primary: `osd.${placement.primary}`,
      corrupted: `osd.${replica} on ${victim}`,
    };
    let inconsistent = false;

    let outcome;
    try {
      outcome = await runAlertDrill(
        ctx,
        mon,
        {
          what: `replica of ${OBJECT} on osd.${replica} (${victim}) overwritten, PG ${placement.pgid} deep-scrubbed`,
          alertname: 'CephDataInconsistent',
          labels: { name: 'OSD_SCRUB_ERRORS' },
          forS: 0,
          exporterLagS: exporterRefreshS(ctx, admin),
          source: 'document 000: emergency = data inconsistent, alerted at once',
          async breakIt() {
            ctx.log(
              `stopping osd.${replica} on ${victim} to overwrite its copy of ${OBJECT} (PG ${placement.pgid}, primary osd.${placement.primary})`,
            );
            await runOn(ctx, victim, argv('systemctl', 'stop', unit), 120_000);
            try {
              // The tool finds the object by name in the PG; the new bytes differ from every other copy.
              await runOn(
                ctx,
                victim,
                `printf 'cairn drill: this replica disagrees\\n' | ${argv('ceph-objectstore-tool', '--data-path', `/var/lib/ceph/osd/ceph-${replica}`, '--pgid', placement.pgid, OBJECT, 'set-bytes')}`,
                120_000,
              );
            } finally {
              // Ceph's units allow 3 starts in 30 min: earlier drills must not make this start refused.
              await runOn(
                ctx,
                victim,
                `systemctl reset-failed ${quote(unit)} 2>/dev/null; systemctl start ${quote(unit)}`,
                120_000,
              );
            }
            const backS = await waitFor(ctx, repairBoundS, async () => isCleanOk(await cephStatus(ctx, admin)));
            if (backS === undefined)
              throw new Error(
                `osd.${replica} did not come back (HEALTH_OK, PGs active+clean) within ${repairBoundS} s`,
              );
            const t0 = performance.now();
            await runOn(ctx, admin, ceph('pg', 'deep-scrub', placement.pgid));
            const seenS = await waitFor(ctx, scrubBoundS, async () => {
              const codes = activeChecks((await cephStatus(ctx, admin)).health).map((c) => c.code);
              return INCONSISTENT_CHECKS.every((code) => codes.includes(code));
            });
            if (seenS === undefined)
              throw new Error(
                `Ceph did not report ${INCONSISTENT_CHECKS.join(' and ')} within ${scrubBoundS} s of the deep scrub of PG ${placement.pgid}`,
              );
            inconsistent = true;
            measured.scrub_detect_s = seconds(performance.now() - t0);
            const status = await cephStatus(ctx, admin);
            measured.health_while_inconsistent = status.health.status;
            ctx.log(
              `Ceph reports the inconsistency after ${measured.scrub_detect_s} s: ${status.health.checks.map((c) => `${c.code}: ${c.summary}`).join('; ')}`,
            );
          },
          async restore() {
            if (!inconsistent) return;
            const t0 = performance.now();
            await runOn(ctx, admin, ceph('pg', 'repair', placement.pgid));
            const okS = await waitFor(ctx, repairBoundS, async () => isCleanOk(await cephStatus(ctx, admin)));
            if (okS === undefined)
              throw new Error(
                `Ceph was not HEALTH_OK within ${repairBoundS} s of \`ceph pg repair ${placement.pgid}\``,
              );
            inconsistent = false;
            measured.repair_s = seconds(performance.now() - t0);
            ctx.log(`PG ${placement.pgid} repaired: HEALTH_OK after ${measured.repair_s} s`);
          },
        },
        measured,
      );
    } finally {
      // Interrupted (or failed) between the scrub and the repair: repair anyway, never leave damage behind.
      if (inconsistent) {
        ctx.log(`repairing PG ${placement.pgid}, left inconsistent by the interrupted drill`);
        await ctx.exec(admin, ceph('pg', 'repair', placement.pgid), { timeoutMs: 90_000 });
      }
      // Removing the object also removes a corrupted copy that no scrub has looked at yet.
      const cleanup = await ctx.exec(admin, `timeout 30 ${argv('rados', '-p', pool, 'rm', OBJECT)}`, {
        timeoutMs: 60_000,
      });
      if (cleanup.code !== 0) ctx.log(`could not remove ${OBJECT} from pool ${pool}: ${cleanup.stderr.trim()}`);
    }
    return { ...outcome, measured: { ...measured, ...outcome.measured } };
  },
});
