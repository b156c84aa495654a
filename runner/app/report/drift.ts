/**
 * Drift: what a check-mode run of the site predicts it would change, per host and role. Built from the
 * engine's task_result events (the same ones the recap counts), so "drift" means exactly what
 * `cairn play --check` would report: a hand-edited haproxy.cfg on lb1 is one predicted change of
 * (lb1, haproxy). Handlers a change would notify are not counted again; verifications are not run.
 *
 * Output: a host x role table for people, and node-exporter textfile metrics for Prometheus
 * (cairn_drift_changes{host,role}, cairn_drift_unreachable{host}, cairn_drift_check_timestamp_seconds),
 * written atomically so the textfile collector never reads half a file.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { EventBus, RunEvent } from '../../core/engine/events.js';
import { ExitCode } from '../../core/util/errors.js';

/** A task outside any role (a play's own tasks) counts under this name. */
export const PLAY_TASKS = '(play)';

export interface DriftReport {
  /** Hosts in the order they first reported. */
  hosts: string[];
  /** Roles in the order they first ran. */
  roles: string[];
  /** host -> role -> predicted changes (0 = ran, nothing to change; absent = the role did not run there). */
  changes: Map<string, Map<string, number>>;
  /** host -> role -> names of the tasks that would change something. */
  changedTasks: Map<string, Map<string, string[]>>;
  unreachable: Set<string>;
  failed: Map<string, string>;
  /** When the check finished, seconds since the epoch. */
  checkedAt: number;
}

export class DriftCollector {
  private readonly report: DriftReport = {
    hosts: [],
    roles: [],
    changes: new Map(),
    changedTasks: new Map(),
    unreachable: new Set(),
    failed: new Map(),
    checkedAt: 0,
  };
  private readonly unsubscribe: () => void;

  constructor(bus: EventBus) {
    this.unsubscribe = bus.subscribe((event) => this.take(event));
  }

  private take(event: RunEvent): void {
    if (event.type === 'host_unreachable') {
      this.host(event.host);
      this.report.unreachable.add(event.host);
      return;
    }
    // Fact gathering reads the host and changes nothing: not a column of the table.
    if (event.type !== 'task_result' || event.verify || event.handler || event.task.module === 'setup') return;
    // A looped task reports each item and then its summary: count the summary (as the recap does).
    if (event.item !== undefined && !event.loopSummary) return;
    const role = event.task.role || PLAY_TASKS;
    const cells = this.host(event.host);
    if (!this.report.roles.includes(role)) this.report.roles.push(role);
    if (event.status === 'unreachable') {
      this.report.unreachable.add(event.host);
      return;
    }
    if (event.status === 'failed' && !event.ignored) {
      if (!this.report.failed.has(event.host))
        this.report.failed.set(event.host, `${event.task.name}: ${event.msg ?? 'failed'}`);
    }
    const count = cells.get(role) ?? 0;
    if (event.status === 'changed') {
      cells.set(role, count + 1);
      const names = this.report.changedTasks.get(event.host)!;
      names.set(role, [...(names.get(role) ?? []), event.task.name]);
    } else {
      // ok, skipped (a `when` said no) or failed: the role ran here with nothing (more) to change.
      cells.set(role, count);
    }
  }

  private host(name: string): Map<string, number> {
    let cells = this.report.changes.get(name);
    if (!cells) {
      cells = new Map();
      this.report.changes.set(name, cells);
      this.report.changedTasks.set(name, new Map());
      this.report.hosts.push(name);
    }
    return cells;
  }

  /** Stop listening; hosts are listed in `order` (the inventory's), any others after them. */
  finish(order: string[] = [], now = Date.now()): DriftReport {
    this.unsubscribe();
    const rank = (h: string) => (order.includes(h) ? order.indexOf(h) : order.length);
    this.report.hosts.sort((a, b) => rank(a) - rank(b));
    this.report.checkedAt = Math.floor(now / 1000);
    return this.report;
  }
}

export function totalChanges(report: DriftReport): number {
  let total = 0;
  for (const cells of report.changes.values()) for (const n of cells.values()) total += n;
  return total;
}

/** 4 when a host was unreachable, 2 when a task failed, 3 when something drifted, else 0. */
export function driftExitCode(report: DriftReport): number {
  if (report.unreachable.size) return ExitCode.hostUnreachable;
  if (report.failed.size) return ExitCode.hostFailed;
  return totalChanges(report) > 0 ? ExitCode.changesPending : ExitCode.ok;
}

/**
 * The host x role table: a number is the changes check mode predicts, "." none, "-" the role does not run
 * on that host; then one line per drifted cell naming its tasks.
 */
export function renderDriftTable(report: DriftReport): string {
  const header = ['host', ...report.roles];
  const rows = report.hosts.map((host) => {
    if (report.unreachable.has(host)) return [host, ...report.roles.map(() => '?')];
    const cells = report.changes.get(host)!;
    return [
      host,
      ...report.roles.map((role) => (cells.has(role) ? (cells.get(role) ? String(cells.get(role)) : '.') : '-')),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]) =>
    cols
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  const notes: string[] = [];
  for (const host of report.hosts) {
    if (report.unreachable.has(host)) notes.push(`${host}: UNREACHABLE`);
    const failed = report.failed.get(host);
    if (failed) notes.push(`${host}: FAILED ${failed}`);
    for (const [role, names] of report.changedTasks.get(host) ?? []) notes.push(`${host} ${role}: ${names.join('; ')}`);
  }
  const total = totalChanges(report);
  const drifted = report.hosts.filter((h) => [...(report.changes.get(h)?.values() ?? [])].some((n) => n > 0));
  const summary = total
    ? `drift: ${total} predicted change${total === 1 ? '' : 's'} on ${drifted.length} host${drifted.length === 1 ? '' : 's'} (${drifted.join(', ')})`
    : 'no drift: check mode predicts no change';
  return [
    ...out,
    '',
    ...notes,
    ...(notes.length ? [''] : []),
    summary + (report.unreachable.size ? `; unreachable: ${[...report.unreachable].join(', ')}` : ''),
    '',
  ].join('\n');
}

/** A Prometheus label value, escaped as the text exposition format asks (backslash, quote, newline). */
function labelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The node-exporter textfile: every (host, role) that ran, zeros included, so a repaired drift reads 0. */
export function renderDriftMetrics(report: DriftReport): string {
  const lines = [
    '# HELP cairn_drift_changes Changes a check-mode run of the site predicts, per host and role (cairn drift).',
    '# TYPE cairn_drift_changes gauge',
  ];
  for (const host of report.hosts) {
    for (const [role, n] of report.changes.get(host) ?? [])
      lines.push(`cairn_drift_changes{host="${labelValue(host)}",role="${labelValue(role)}"} ${n}`);
  }
  lines.push(
    '# HELP cairn_drift_unreachable 1 when cairn drift could not reach the host.',
    '# TYPE cairn_drift_unreachable gauge',
  );
  for (const host of report.hosts)
    lines.push(`cairn_drift_unreachable{host="${labelValue(host)}"} ${report.unreachable.has(host) ? 1 : 0}`);
  lines.push(
    '# HELP cairn_drift_check_timestamp_seconds When cairn drift last finished a check (Unix time).',
    '# TYPE cairn_drift_check_timestamp_seconds gauge',
    `cairn_drift_check_timestamp_seconds ${report.checkedAt}`,
  );
  return lines.join('\n') + '\n';
}

/**
 * Write `text` to `path` atomically: a new temp file beside it (created exclusively, mode 0644 before any
 * content), flushed, then renamed over the old one; the textfile collector sees the old file or the new.
 */
export function writeFileAtomic(path: string, text: string): void {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o644);
  try {
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}
