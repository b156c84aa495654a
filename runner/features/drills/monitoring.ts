/**
 * Drills of the monitoring area: document 004's monitoring acceptance ("a simulated host failure and a
 * simulated service failure each raise an alert"), timed against document 000's critical tier (service or
 * host down > 30 s).
 *
 * - alert-host-down: stop one host's node exporter (or, in the lab, power the host off) -> HostDown is
 *   firing in Alertmanager; start it again -> the alert resolves.
 * - alert-service-down: stop one expected systemd unit (nginx on a backend, haproxy on the load balancer
 *   that does NOT hold the VIP) -> ServiceDown is firing; start it again -> it resolves.
 *
 * Both ask Alertmanager's API (/api/v2/alerts) on the monitoring host over its pooled SSH connection every
 * `poll` seconds, bounded by a deadline computed from the alert's `for:` plus a scrape and an evaluation
 * interval, and, when the lab's webhook sink runs, also wait for the firing and the resolved notification
 * to arrive there (end to end, bearer token and all). What they break is restored in a finally block, also
 * on Ctrl-C.
 */
import { CairnError, inputError } from '../../core/util/errors.js';
import { argv, quote } from '../../core/transport/quote.js';
import { isPlainObject, type Vars } from '../../core/util/vars.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import type { DrillContext, DrillOutcome } from './types.js';
import { hostSettings as roleSettings } from './settings.js';

// ---------------------------------------------------------------------------------------------------------
// Parsers (pure; table-tested in test/unit/monitoring-drill.test.ts)
// ---------------------------------------------------------------------------------------------------------

const DURATION_UNITS: ReadonlyArray<[string, number]> = [
  ['y', 365 * 24 * 3600],
  ['w', 7 * 24 * 3600],
  ['d', 24 * 3600],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
  ['ms', 0.001],
];

/**
 * A Prometheus duration ("30s", "1h30m", "500ms", "0s") in seconds. Units must come largest first, each at
 * most once, as Prometheus' model.ParseDuration requires. Throws an Error naming the text otherwise.
 */
export function parsePromDuration(text: string): number {
  const re = /(\d+)(ms|y|w|d|h|m|s)/y;
  let pos = 0;
  let seconds = 0;
  let lastUnit = -1;
  const trimmed = text.trim();
  if (trimmed === '') throw new Error('an empty duration');
  if (trimmed === '0') return 0;
  while (pos < trimmed.length) {
    re.lastIndex = pos;
    const m = re.exec(trimmed);
    if (!m) throw new Error(`"${text}" is not a Prometheus duration (e.g. 30s, 5m, 1h30m)`);
    const unitIndex = DURATION_UNITS.findIndex(([u]) => u === m[2]);
    if (unitIndex <= lastUnit)
      throw new Error(`"${text}" is not a Prometheus duration: units must go from largest to smallest, each once`);
    lastUnit = unitIndex;
    seconds += Number(m[1]) * DURATION_UNITS[unitIndex]![1];
    pos = re.lastIndex;
  }
  return seconds;
}

/** One alert as Alertmanager's API v2 (GET /api/v2/alerts) lists it. */
export interface AlertmanagerAlert {
  alertname: string;
  labels: Record<string, string>;
  /** "active", "suppressed" (silenced or inhibited) or "unprocessed". */
  state: string;
  startsAt: string;
  endsAt: string;
  fingerprint: string;
}

/** The body of GET /api/v2/alerts. Throws an Error saying what was wrong with it. */
export function parseAlertmanagerAlerts(body: string): AlertmanagerAlert[] {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    throw new Error(`Alertmanager's /api/v2/alerts did not answer JSON: ${JSON.stringify(body.slice(0, 200))}`);
  }
  if (!Array.isArray(data)) throw new Error("Alertmanager's /api/v2/alerts did not answer a list of alerts");
  return data.map((raw, i): AlertmanagerAlert => {
    if (!isPlainObject(raw) || !isPlainObject(raw.labels))
      throw new Error(`alert ${i + 1} of /api/v2/alerts has no labels`);
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw.labels)) labels[k] = String(v);
    const status = isPlainObject(raw.status) ? raw.status : {};
    return {
      alertname: labels.alertname ?? '',
      labels,
      state: typeof status.state === 'string' ? status.state : '',
      startsAt: typeof raw.startsAt === 'string' ? raw.startsAt : '',
      endsAt: typeof raw.endsAt === 'string' ? raw.endsAt : '',
      fingerprint: typeof raw.fingerprint === 'string' ? raw.fingerprint : '',
    };
  });
}

/** The alerts named `alertname` whose labels include every pair of `labels`. */
export function matchingAlerts(
  alerts: AlertmanagerAlert[],
  alertname: string,
  labels: Record<string, string>,
): AlertmanagerAlert[] {
  return alerts.filter((a) => a.alertname === alertname && Object.entries(labels).every(([k, v]) => a.labels[k] === v));
}

/** One notification the lab's webhook sink recorded (a line of alerts.jsonl). */
export interface SinkNotification {
  /** Unix time (seconds) the sink received it. */
  received: number;
  /** The group's status: "firing" or "resolved". */
  status: string;
  alerts: Array<{ labels: Record<string, string>; status: string }>;
}

/** The sink's JSON lines; a torn last line (being written) is skipped, any other bad line is an Error. */
export function parseSinkLog(text: string): SinkNotification[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const out: SinkNotification[] = [];
  lines.forEach((line, i) => {
    let data: unknown;
    try {
      data = JSON.parse(line);
    } catch {
      if (i === lines.length - 1) return;
      throw new Error(`alert sink log line ${i + 1} is not JSON`);
    }
    if (!isPlainObject(data)) throw new Error(`alert sink log line ${i + 1} is not an object`);
    const alerts = Array.isArray(data.alerts) ? data.alerts : [];
    out.push({
      received: Number(data.received),
      status: String(data.status ?? ''),
      alerts: alerts.filter(isPlainObject).map((a) => ({
        labels: isPlainObject(a.labels)
          ? Object.fromEntries(Object.entries(a.labels).map(([k, v]) => [k, String(v)]))
          : {},
        status: String(a.status ?? ''),
      })),
    });
  });
  return out;
}

/** The first notification that carries the alert (name and labels) with `status`. */
export function findNotification(
  records: SinkNotification[],
  alertname: string,
  labels: Record<string, string>,
  status: 'firing' | 'resolved',
): SinkNotification | undefined {
  return records.find((r) =>
    r.alerts.some(
      (a) =>
        a.status === status &&
        a.labels.alertname === alertname &&
        Object.entries(labels).every(([k, v]) => a.labels[k] === v),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Settings: the prometheus role's defaults under the inventory's values, rendered as a task sees them
// ---------------------------------------------------------------------------------------------------------

function hostSettings(ctx: DrillContext, host: string): Vars {
  return roleSettings(ctx, host, 'prometheus');
}

function durationSetting(settings: Vars, name: string, host: string): number {
  const value = settings[name];
  try {
    return parsePromDuration(String(value));
  } catch (err) {
    throw inputError(`host ${host}: ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function numberOption(ctx: DrillContext, name: string, fallback: number): number {
  const text = ctx.options[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw inputError(`--set ${name}=${text}: expected a number of seconds above 0`);
  return value;
}

export interface Monitoring {
  /** The Prometheus/Alertmanager host the drill asks. */
  server: string;
  servers: string[];
  alertmanagerPort: number;
  scrapeS: number;
  evaluationS: number;
  downForS: number;
  groupWaitS: number;
  groupIntervalS: number;
  sink?: { address: string; port: number };
}

export function monitoringOf(ctx: DrillContext): Monitoring {
  const anyHost = [...ctx.inventory.hosts.keys()][0];
  if (anyHost === undefined) throw inputError('the inventory has no hosts');
  const group = String(hostSettings(ctx, anyHost).prometheus_server_group ?? 'mon');
  const servers = ctx.inventory.hosts.size ? ctx.inventory.select(group) : [];
  const server = ctx.options.server ?? servers[0];
  if (server === undefined)
    throw inputError(
      `the inventory has no monitoring host (group "${group}"; set prometheus_server_group or --set server=HOST)`,
    );
  if (!ctx.inventory.hosts.has(server)) throw inputError(`--set server=${server}: no such host in the inventory`);
  const s = hostSettings(ctx, server);
  const port = Number(s.alertmanager_port);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw inputError(
      `host ${server}: alertmanager_port must be a port number, got ${JSON.stringify(s.alertmanager_port)}`,
    );
  const sinkOn = s.alert_webhook_sink === true;
  return {
    server,
    servers,
    alertmanagerPort: port,
    scrapeS: durationSetting(s, 'prometheus_scrape_interval', server),
    evaluationS: durationSetting(s, 'prometheus_evaluation_interval', server),
    downForS: durationSetting(s, 'alert_down_for', server),
    groupWaitS: durationSetting(s, 'alertmanager_group_wait', server),
    groupIntervalS: durationSetting(s, 'alertmanager_group_interval', server),
    ...(sinkOn
      ? { sink: { address: String(s.alert_webhook_sink_address), port: Number(s.alert_webhook_sink_port) } }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Asking Alertmanager and the sink on the monitoring host
// ---------------------------------------------------------------------------------------------------------

const SINK_LOG = '/var/lib/cairn-alert-sink/alerts.jsonl';

async function currentAlerts(ctx: DrillContext, mon: Monitoring): Promise<AlertmanagerAlert[]> {
  const url = `http://127.0.0.1:${mon.alertmanagerPort}/api/v2/alerts`;
  const res = await ctx.exec(mon.server, `${argv('curl', '-sS', '--fail', '--max-time', '5', url)}`, {
    timeoutMs: 15_000,
  });
  if (res.code !== 0)
    throw new CairnError(
      `host ${mon.server}: cannot ask Alertmanager (${url}): ${(res.stderr || res.stdout).trim() || `exit ${res.code}`}`,
      { kind: 'runtime' },
    );
  return parseAlertmanagerAlerts(res.stdout);
}

async function sinkRecords(ctx: DrillContext, mon: Monitoring): Promise<SinkNotification[]> {
  const res = await ctx.exec(mon.server, `if [ -f ${quote(SINK_LOG)} ]; then cat -- ${quote(SINK_LOG)}; fi`, {
    timeoutMs: 15_000,
  });
  if (res.code !== 0)
    throw new CairnError(`host ${mon.server}: cannot read ${SINK_LOG}: ${res.stderr.trim()}`, { kind: 'runtime' });
  return parseSinkLog(res.stdout);
}

/** Poll `probe` every `pollMs` until it returns a value or `deadlineMs` (from performance.now()) passes. */
async function pollAlerts<T>(
  ctx: DrillContext,
  pollMs: number,
  deadlineMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const since = performance.now();
  return (await pollUntil(probe, { since, timeoutMs: deadlineMs - since, everyMs: pollMs, signal: ctx.signal }))?.value;
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

// ---------------------------------------------------------------------------------------------------------
// The alert drill
// ---------------------------------------------------------------------------------------------------------

export interface Fault {
  /** What is broken, in words ("node exporter on web1"). */
  what: string;
  alertname: string;
  labels: Record<string, string>;
  /** The alert rule's `for:` in seconds (default: alert_down_for, the critical tier's). */
  forS?: number;
  /** How stale the exporter's own view may be (e.g. Ceph's manager refreshes its metrics every 15 s). */
  exporterLagS?: number;
  /** Where the target comes from, in words (default: document 000's critical tier). */
  source?: string;
  breakIt(): Promise<void>;
  restore(): Promise<void>;
}

export async function runAlertDrill(
  ctx: DrillContext,
  mon: Monitoring,
  fault: Fault,
  extra: Record<string, number | string>,
): Promise<DrillOutcome> {
  const pollMs = numberOption(ctx, 'poll', 1) * 1000;
  // Down for `for:`, then seen by the next scrape and the next evaluation; 10 s for sending and asking.
  const forS = fault.forS ?? mon.downForS;
  const lagS = fault.exporterLagS ?? 0;
  const detectTargetS = forS + lagS + mon.scrapeS + mon.evaluationS + 10;
  const resolveTargetS = lagS + mon.scrapeS + mon.evaluationS + 10;
  const notifyTargetS = mon.groupWaitS + 10;
  const resolvedNotifyTargetS = mon.groupIntervalS + mon.evaluationS + 10;
  const timeoutS = numberOption(ctx, 'timeout', detectTargetS + 60);
  const target = `${fault.alertname} firing in Alertmanager ≤ ${detectTargetS} s after the fault (for: ${forS} s${lagS ? ` + exporter refresh ${lagS} s` : ''} + scrape ${mon.scrapeS} s + evaluation ${mon.evaluationS} s + 10 s; ${fault.source ?? 'document 000: critical = down > 30 s'}) and resolved ≤ ${resolveTargetS} s after the repair${mon.sink ? `; the webhook sink notified ≤ ${notifyTargetS} s after firing and ≤ ${resolvedNotifyTargetS} s after resolving` : ''}`;
  const measured: Record<string, number | string> = { ...extra, alert: fault.alertname, monitoring_host: mon.server };
  const fail = (msg: string): DrillOutcome => ({ passed: false, measured, target, msg });

  const before = matchingAlerts(await currentAlerts(ctx, mon), fault.alertname, fault.labels);
  if (before.length)
    return fail(
      `${fault.alertname} ${JSON.stringify(fault.labels)} is already in Alertmanager before the drill broke anything: fix that first`,
    );
  const sinkBefore = mon.sink ? await sinkRecords(ctx, mon) : [];

  ctx.log(
    `breaking: ${fault.what}; waiting up to ${timeoutS} s for ${fault.alertname} in Alertmanager on ${mon.server}`,
  );
  let broken = false;
  let restored = false;
  try {
    const wallBroken = Date.now() / 1000;
    broken = true;
    await fault.breakIt();
    const t0 = performance.now();
    const firing = await pollAlerts(
      ctx,
      pollMs,
      t0 + timeoutS * 1000,
      async () => matchingAlerts(await currentAlerts(ctx, mon), fault.alertname, fault.labels)[0],
    );
    if (!firing)
      return fail(
        ctx.signal.aborted ? 'interrupted' : `${fault.alertname} did not appear in Alertmanager within ${timeoutS} s`,
      );
    const detectS = seconds(performance.now() - t0);
    measured.detect_s = detectS;
    measured.alert_state = firing.state;
    // startsAt is when Prometheus turned the alert to firing (its FiredAt), on the monitoring host's clock.
    const startsAt = Date.parse(firing.startsAt) / 1000;
    if (Number.isFinite(startsAt)) measured.prometheus_fired_s = Math.round((startsAt - wallBroken) * 10) / 10;
    ctx.log(`${fault.alertname} firing after ${detectS} s (${firing.state})`);

    // Sink records are matched by position (those written after a point), never by comparing clocks; the
    // delays are measured on this machine's clock, to the poll interval.
    let notifiedS: number | undefined;
    if (mon.sink) {
      const note = await pollAlerts(ctx, pollMs, performance.now() + (notifyTargetS + 20) * 1000, async () =>
        findNotification(
          (await sinkRecords(ctx, mon)).slice(sinkBefore.length),
          fault.alertname,
          fault.labels,
          'firing',
        ),
      );
      if (note) notifiedS = seconds(performance.now() - t0) - detectS;
      measured.notified_after_firing_s = notifiedS !== undefined ? Math.round(notifiedS * 10) / 10 : 'never';
    }
    const sinkAtRepair = mon.sink ? (await sinkRecords(ctx, mon)).length : 0;

    ctx.log(`restoring: ${fault.what}`);
    await fault.restore();
    restored = true;
    const t1 = performance.now();
    const gone = await pollAlerts(ctx, pollMs, t1 + Math.max(timeoutS, resolveTargetS + 30) * 1000, async () =>
      matchingAlerts(await currentAlerts(ctx, mon), fault.alertname, fault.labels).length === 0 ? true : undefined,
    );
    if (!gone)
      return fail(
        ctx.signal.aborted
          ? 'interrupted after the repair'
          : `${fault.alertname} was still in Alertmanager ${Math.round((performance.now() - t1) / 1000)} s after the repair`,
      );
    const resolveS = seconds(performance.now() - t1);
    measured.resolve_s = resolveS;
    ctx.log(`${fault.alertname} resolved ${resolveS} s after the repair`);

    let resolvedNotifiedS: number | undefined;
    if (mon.sink) {
      const note = await pollAlerts(ctx, pollMs, performance.now() + (resolvedNotifyTargetS + 20) * 1000, async () =>
        findNotification((await sinkRecords(ctx, mon)).slice(sinkAtRepair), fault.alertname, fault.labels, 'resolved'),
      );
      if (note) resolvedNotifiedS = seconds(performance.now() - t1);
      measured.resolved_notified_s = resolvedNotifiedS ?? 'never';
    }

    const problems: string[] = [];
    if (detectS > detectTargetS) problems.push(`firing after ${detectS} s, target ${detectTargetS} s`);
    if (resolveS > resolveTargetS) problems.push(`resolved after ${resolveS} s, target ${resolveTargetS} s`);
    if (mon.sink && (notifiedS === undefined || notifiedS > notifyTargetS))
      problems.push(
        `the webhook sink ${notifiedS === undefined ? 'never got the firing notification' : `got the firing notification ${notifiedS} s after firing`}`,
      );
    if (mon.sink && (resolvedNotifiedS === undefined || resolvedNotifiedS > resolvedNotifyTargetS))
      problems.push(
        `the webhook sink ${resolvedNotifiedS === undefined ? 'never got the resolved notification' : `got the resolved notification after ${resolvedNotifiedS} s`}`,
      );
    return problems.length
      ? fail(problems.join('; '))
      : {
          passed: true,
          measured,
          target,
          msg: `${fault.what}: ${fault.alertname} fired after ${detectS} s and resolved ${resolveS} s after the repair`,
        };
  } finally {
    if (broken && !restored) {
      ctx.log(`restoring: ${fault.what}`);
      await fault.restore();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Choosing what to break
// ---------------------------------------------------------------------------------------------------------

async function systemctl(ctx: DrillContext, host: string, verb: 'start' | 'stop', unit: string): Promise<void> {
  const res = await ctx.exec(host, argv('systemctl', verb, '--', unit), { timeoutMs: 120_000 });
  if (res.code !== 0)
    throw new CairnError(
      `host ${host}: systemctl ${verb} ${unit} failed: ${(res.stderr || res.stdout).trim() || `exit ${res.code}`}`,
      { kind: 'runtime' },
    );
}

async function unitActive(ctx: DrillContext, host: string, unit: string): Promise<boolean> {
  const res = await ctx.exec(host, argv('systemctl', 'is-active', '--quiet', '--', unit), { timeoutMs: 30_000 });
  return res.code === 0;
}

/** The VIP (`vip_address` or the role's alert_vip_address), or undefined when the inventory has none. */
function vipOf(ctx: DrillContext, host: string): string | undefined {
  const s = hostSettings(ctx, host);
  for (const name of ['vip_address', 'alert_vip_address']) {
    const v = s[name];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

async function holdsAddress(ctx: DrillContext, host: string, address: string): Promise<boolean> {
  const res = await ctx.exec(host, 'ip -o addr show', { timeoutMs: 30_000 });
  if (res.code !== 0)
    throw new CairnError(`host ${host}: cannot list its addresses: ${res.stderr.trim()}`, { kind: 'runtime' });
  return res.stdout.split('\n').some((line) => line.split(/\s+/).some((word) => word.split('/')[0] === address));
}

function knownHost(ctx: DrillContext, host: string, option: string): string {
  if (!ctx.inventory.hosts.has(host)) throw inputError(`--set ${option}=${host}: no such host in the inventory`);
  return host;
}

function groupsOf(ctx: DrillContext, host: string): string[] {
  return ctx.inventory.hosts.get(host)?.groups ?? [];
}

registerDrill({
  name: 'alert-host-down',
  summary:
    "stop one host's node exporter (or power the lab host off) -> HostDown fires in Alertmanager; start it -> it resolves",
  options: {
    host: 'the host to take down (default: the first scraped host that is neither a monitoring host nor a load balancer)',
    variant: '"exporter" (default: stop prometheus-node-exporter) or "poweroff" (lab only: halt the whole host)',
    timeout: 'seconds to wait for the alert (default: for + scrape + evaluation + 70)',
    poll: 'seconds between questions to Alertmanager (default 1)',
  },
  async run(ctx) {
    const mon = monitoringOf(ctx);
    const settings = hostSettings(ctx, mon.server);
    const targets = ctx.inventory.select(String(settings.prometheus_node_targets_group ?? 'all'));
    const haproxyGroup = String(settings.prometheus_haproxy_group ?? '');
    const variant = ctx.options.variant ?? 'exporter';
    if (variant !== 'exporter' && variant !== 'poweroff')
      throw inputError(`--set variant=${variant}: expected exporter or poweroff`);
    if (variant === 'poweroff' && !ctx.power)
      throw inputError('--set variant=poweroff needs the built-in lab (power control); use variant=exporter');
    const host =
      ctx.options.host !== undefined
        ? knownHost(ctx, ctx.options.host, 'host')
        : (targets.find((h) => !mon.servers.includes(h) && !groupsOf(ctx, h).includes(haproxyGroup)) ??
          targets.find((h) => !mon.servers.includes(h)));
    if (host === undefined)
      throw inputError('no scraped host besides the monitoring host(s) to take down; pass --set host=NAME');
    if (host === mon.server)
      throw inputError(`--set host=${host}: that is the monitoring host the drill asks; take down another host`);
    if (!targets.includes(host))
      throw inputError(
        `--set host=${host}: Prometheus does not scrape its node exporter (not in group ${String(settings.prometheus_node_targets_group)})`,
      );
    const unit = 'prometheus-node-exporter';
    if (variant === 'exporter' && !(await unitActive(ctx, host, unit)))
      throw inputError(`host ${host}: ${unit} is not active; apply playbooks/monitoring.yaml first`);
    const power = ctx.power;
    const fault: Fault =
      variant === 'poweroff' && power
        ? {
            what: `power off ${host}`,
            alertname: 'HostDown',
            labels: { instance: host, job: 'node' },
            breakIt: () => power.stop(host),
            restore: () => power.start(host),
          }
        : {
            what: `${unit} on ${host}`,
            alertname: 'HostDown',
            labels: { instance: host, job: 'node' },
            breakIt: () => systemctl(ctx, host, 'stop', unit),
            restore: () => systemctl(ctx, host, 'start', unit),
          };
    return runAlertDrill(ctx, mon, fault, { host, variant });
  },
});

registerDrill({
  name: 'alert-service-down',
  summary:
    'stop one expected service (nginx on a backend, haproxy on the LB without the VIP) -> ServiceDown fires; start it -> it resolves',
  options: {
    host: 'the host (default: the first host with an active unit of node_exporter_systemd_units, backends first, never a VIP holder)',
    unit: "the systemd unit to stop (default: the first active one of the host's node_exporter_systemd_units, never keepalived)",
    timeout: 'seconds to wait for the alert (default: for + scrape + evaluation + 70)',
    poll: 'seconds between questions to Alertmanager (default 1)',
  },
  async run(ctx) {
    const mon = monitoringOf(ctx);
    const settings = hostSettings(ctx, mon.server);
    const haproxyGroup = String(settings.prometheus_haproxy_group ?? '');
    const unitsOf = (h: string): string[] => {
      const units = hostSettings(ctx, h).node_exporter_systemd_units;
      return Array.isArray(units) ? units.map(String) : [];
    };
    // Never the VIP: a unit is not stopped on a host that holds it (a keepalived check would move it).
    const safe = async (h: string, unit: string): Promise<string | undefined> => {
      if (mon.servers.includes(h)) return `${h} is a monitoring host (the drill would blind the monitor it asks)`;
      if (/^keepalived\b/.test(unit)) return `${unit} moves the VIP`;
      const vip = vipOf(ctx, h);
      if (vip && (await holdsAddress(ctx, h, vip))) return `${h} holds the VIP ${vip}`;
      return undefined;
    };
    let host: string | undefined;
    let unit: string | undefined;
    if (ctx.options.host !== undefined || ctx.options.unit !== undefined) {
      host = knownHost(ctx, ctx.options.host ?? '', 'host');
      unit = ctx.options.unit ?? unitsOf(host).find((u) => !/^keepalived\b/.test(u));
      if (unit === undefined)
        throw inputError(`host ${host}: no unit to stop (node_exporter_systemd_units is empty); pass --set unit=NAME`);
      if (!unitsOf(host).includes(unit))
        throw inputError(
          `host ${host}: ${unit} is not in its node_exporter_systemd_units, so no ServiceDown alert watches it`,
        );
      const refusal = await safe(host, unit);
      if (refusal) throw inputError(`refusing to stop ${unit} on ${host}: ${refusal}`);
      if (!(await unitActive(ctx, host, unit)))
        throw inputError(`host ${host}: ${unit} is not active now; nothing to stop`);
    } else {
      const hosts = [...ctx.inventory.hosts.keys()];
      const ordered = [
        ...hosts.filter((h) => !groupsOf(ctx, h).includes(haproxyGroup)),
        ...hosts.filter((h) => groupsOf(ctx, h).includes(haproxyGroup)),
      ];
      const skipped: string[] = [];
      search: for (const h of ordered) {
        for (const u of unitsOf(h)) {
          const refusal = await safe(h, u);
          if (refusal) {
            skipped.push(`${u}@${h}: ${refusal}`);
            continue;
          }
          if (!(await unitActive(ctx, h, u))) {
            skipped.push(`${u}@${h}: not active`);
            continue;
          }
          host = h;
          unit = u;
          break search;
        }
      }
      if (host === undefined || unit === undefined)
        throw inputError(
          `no expected service is active on a host the drill may touch (${skipped.join('; ') || 'no host has node_exporter_systemd_units'})`,
        );
    }
    const h = host;
    const u = unit;
    const fault: Fault = {
      what: `${u} on ${h}`,
      alertname: 'ServiceDown',
      labels: { instance: h, name: u },
      breakIt: () => systemctl(ctx, h, 'stop', u),
      restore: () => systemctl(ctx, h, 'start', u),
    };
    return runAlertDrill(ctx, mon, fault, { host: h, unit: u });
  },
});
