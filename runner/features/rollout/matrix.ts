/**
 * The host × role matrix of the report: for each host and role, the outcome of the newest run that touched
 * that pair, read from the run journals (oldest first, each newer journal overriding what it covers):
 *
 * - unreachable: the host could not be reached in that run;
 * - failed:      a task of the role failed on the host (not ignored);
 * - drift:       the role's verification failed on the host, or a --check run predicted a change (the host
 *                is not as the role says it should be);
 * - changed:     the run changed something and the verification held;
 * - ok:          nothing to change and the verification held.
 * The worst of these in a run wins, in that order. A host unreachable in a run reads unreachable for all
 * its roles from then on, until a newer run reaches it.
 *
 * Also the newest result of every drill found in the journals.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { RunEvent } from '../../core/engine/events.js';
import { readJournal } from '../../app/report/journal.js';

export type CellState = 'ok' | 'changed' | 'drift' | 'failed' | 'unreachable';
const RANK: Record<CellState, number> = { ok: 0, changed: 1, drift: 2, failed: 3, unreachable: 4 };

export interface MatrixCell {
  state: CellState;
  /** When that run started, and its id and command. */
  at: string;
  runId: string;
  command: string;
  /** Short reason for a non-ok cell (the failing task or check). */
  detail?: string;
}

export interface HostRoleMatrix {
  hosts: string[];
  roles: string[];
  /** cells[host][role] */
  cells: Record<string, Record<string, MatrixCell>>;
  journalsRead: number;
}

export interface DrillRun {
  drill: string;
  passed: boolean;
  measured: Record<string, number | string>;
  target: string;
  msg?: string;
  at: string;
  runId: string;
}

/** How many of the newest journals the report reads (older ones are superseded in practice). */
export const MAX_JOURNALS = 300;

/** Journal files in `dir`, oldest first (by the time in their name, which sorts). */
export function journalFiles(dir: string, max = MAX_JOURNALS): string[] {
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.ndjson'))
    .sort();
  return names
    .slice(-max)
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

function worse(a: CellState | undefined, b: CellState): CellState {
  return a === undefined || RANK[b] > RANK[a] ? b : a;
}

interface Pending {
  state?: CellState;
  detail?: string;
}

/** The cells one journal determines, and the hosts it could not reach. */
function cellsOfJournal(events: RunEvent[]): { cells: Map<string, Map<string, Pending>>; unreachable: Set<string> } {
  const start = events.find((e) => e.type === 'run_start');
  const checkRun = start?.type === 'run_start' && start.check;
  const out = new Map<string, Map<string, Pending>>();
  const note = (host: string, role: string, state: CellState, detail?: string) => {
    if (!role) return;
    let row = out.get(host);
    if (!row) out.set(host, (row = new Map()));
    const cell = row.get(role) ?? {};
    const next = worse(cell.state, state);
    if (next !== cell.state) cell.detail = detail;
    cell.state = next;
    row.set(role, cell);
  };
  const unreachableHosts = new Set<string>();
  for (const e of events) {
    if (e.type === 'host_unreachable') unreachableHosts.add(e.host);
    if (e.type === 'task_result') {
      if (e.item !== undefined && !e.loopSummary) continue; // per-item results; the loop's summary counts
      const role = e.task.role;
      if (e.status === 'unreachable') {
        unreachableHosts.add(e.host);
        note(e.host, role, 'unreachable', e.msg);
      } else if (e.verify) {
        // Verification tasks are judged by their verify_result below.
        continue;
      } else if (e.status === 'failed' && !e.ignored) {
        note(e.host, role, 'failed', `${e.task.name}${e.msg ? `: ${e.msg.split('\n')[0]}` : ''}`);
      } else if (e.status === 'changed') {
        note(
          e.host,
          role,
          checkRun || e.check ? 'drift' : 'changed',
          checkRun || e.check ? `would change: ${e.task.name}` : undefined,
        );
      } else if (e.status === 'ok' || e.status === 'skipped') {
        note(e.host, role, 'ok');
      }
    } else if (e.type === 'verify_result') {
      note(
        e.host,
        e.role,
        e.passed ? 'ok' : 'drift',
        e.passed ? undefined : `${e.check}${e.msg ? `: ${e.msg.split('\n')[0]}` : ''}`,
      );
    }
  }
  // A host lost during the run: every role it had in this run reads unreachable.
  for (const host of unreachableHosts) {
    const row = out.get(host);
    if (row) for (const cell of row.values()) cell.state = 'unreachable';
  }
  return { cells: out, unreachable: unreachableHosts };
}

export function buildMatrix(journals: string[]): { matrix: HostRoleMatrix; drills: DrillRun[] } {
  const cells: Record<string, Record<string, MatrixCell>> = {};
  const hostOrder: string[] = [];
  const roleOrder: string[] = [];
  const drills = new Map<string, DrillRun>();
  let read = 0;
  for (const path of journals) {
    let events: RunEvent[];
    try {
      events = readJournal(path);
    } catch {
      continue; // not a journal; the report shows what it can
    }
    read++;
    const start = events.find((e) => e.type === 'run_start');
    const at = start?.time ?? events[0]?.time ?? '';
    const runId = start?.type === 'run_start' ? start.runId : path;
    const command = start?.type === 'run_start' ? start.command : '';
    const journal = cellsOfJournal(events);
    for (const [host, row] of journal.cells) {
      if (!hostOrder.includes(host)) hostOrder.push(host);
      cells[host] ??= {};
      for (const [role, cell] of row) {
        if (!cell.state) continue;
        if (!roleOrder.includes(role)) roleOrder.push(role);
        cells[host]![role] = { state: cell.state, at, runId, command, detail: cell.detail };
      }
    }
    // The newest word on a host that could not be reached is that: its other roles read unreachable too
    // (their older results say nothing about a host that is down now).
    for (const host of journal.unreachable) {
      for (const [role, cell] of Object.entries(cells[host] ?? {})) {
        if (cell.runId !== runId)
          cells[host]![role] = { state: 'unreachable', at, runId, command, detail: 'host unreachable in a newer run' };
      }
    }
    for (const e of events) {
      if (e.type === 'drill_result')
        drills.set(e.drill, {
          drill: e.drill,
          passed: e.passed,
          measured: e.measured,
          target: e.target,
          msg: e.msg,
          at: e.time,
          runId,
        });
    }
  }
  return {
    matrix: {
      hosts: hostOrder
        .filter((h) => Object.keys(cells[h] ?? {}).length > 0)
        .sort((a, b) => a.localeCompare(b, 'en', { numeric: true })),
      roles: roleOrder,
      cells,
      journalsRead: read,
    },
    drills: [...drills.values()].sort((a, b) => a.drill.localeCompare(b.drill)),
  };
}
