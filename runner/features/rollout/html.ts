/**
 * The rollout report as ONE self-contained HTML file: inline CSS and SVG, no script, no external asset, so it
 * can be mailed, archived with the sign-off, or opened offline. It shows:
 * - the rollout timeline: phases as a Gantt-style bar over the plan days (D1–D35), today marked, each step as
 *   its own bar coloured by state;
 * - the phases and steps with when, by whom and the evidence;
 * - the host × role matrix from the newest runs and verifications (ok / changed / drift / failed / unreachable);
 * - the drill results against their targets;
 * - the drill schedule (drills.yaml): each entry's last run, verdict, next due, overdue in red.
 * Every value from the outside is HTML-escaped. Elements carry data-* attributes (data-phase, data-step,
 * data-state, data-host, data-role) so the report can be checked by machine as well as by eye.
 */
import { formatDayRange } from './days.js';
import type { DrillRun, HostRoleMatrix } from './matrix.js';
import type { PhaseStatus, RolloutStatus, StepStatus } from './status.js';
import type { DrillEvidence } from './types.js';
import type { DrillDue } from '../drills/schedule.js';

export interface ReportData {
  status: RolloutStatus;
  matrix: HostRoleMatrix;
  /** Newest result of every drill found in the journals. */
  drillRuns: DrillRun[];
  /** The drill schedule (drills.yaml) against the journals' drill results, when one was read. */
  drillSchedule?: { file: string; now: string; due: DrillDue[] };
  generatedAt: string;
}

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

const e = escapeHtml;

/** One palette for the timeline, tables and legend. */
export const STATE_COLOURS: Record<string, string> = {
  done: '#2e9d57',
  complete: '#2e9d57',
  ok: '#2e9d57',
  changed: '#3d7fd6',
  open: '#3d7fd6',
  running: '#7b5cd6',
  pending: '#c9ced6',
  locked: '#9aa3ad',
  drift: '#e0a100',
  interrupted: '#e07b00',
  failed: '#d23c3c',
  unreachable: '#6b1f7a',
};

const CSS = `
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde2e8;padding-bottom:4px}
.meta{color:#566070;margin:0 0 2px}
.next{background:#f2f6fc;border-left:4px solid #3d7fd6;padding:8px 12px;margin:12px 0}
.late{background:#fdf1f1;border-left:4px solid #d23c3c;padding:8px 12px;margin:12px 0}
.late ul,.gate ul{margin:4px 0 0 18px;padding:0}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #dde2e8;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f7fa;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;font-weight:600;white-space:nowrap}
.cell{text-align:center;font-weight:600;color:#fff;min-width:84px}
.cell.none{background:#f5f7fa;color:#9aa3ad;font-weight:400}
.small{font-size:12px;color:#566070}
.legend span{margin-right:12px;white-space:nowrap}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;vertical-align:-1px}
svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
.gate{margin:4px 0 10px 0}
`;

/** Light fills take dark text. */
const DARK_TEXT = new Set(['pending']);

function badge(state: string, label = state): string {
  const text = DARK_TEXT.has(state) ? ';color:#1d2430' : '';
  return `<span class="badge" data-state="${e(state)}" style="background:${STATE_COLOURS[state] ?? '#888'}${text}">${e(label)}</span>`;
}

function shortTime(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').slice(0, 16) : '';
}

// ---------------------------------------------------------------- timeline

const LABEL_W = 330;
const DAY_W = 22;
const PHASE_H = 26;
const STEP_H = 18;
const AXIS_H = 42;

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function renderTimeline(status: RolloutStatus): string {
  const lastDay = Math.max(35, ...status.phases.map((p) => p.days.end));
  const width = LABEL_W + lastDay * DAY_W + 16;
  const x = (day: number) => LABEL_W + (day - 1) * DAY_W;
  const rows: string[] = [];
  let y = AXIS_H;
  const bar = (
    start: number,
    end: number,
    top: number,
    h: number,
    colour: string,
    late: boolean,
    attrs: string,
    title: string,
  ) =>
    `<rect ${attrs} x="${x(start) + 1}" y="${top}" width="${(end - start + 1) * DAY_W - 2}" height="${h}" rx="3" fill="${colour}"${late ? ' stroke="#d23c3c" stroke-width="2.5" stroke-dasharray="5 3"' : ''}><title>${e(title)}</title></rect>`;
  for (const phase of status.phases) {
    rows.push(`<rect x="0" y="${y}" width="${width}" height="${PHASE_H}" fill="#f5f7fa"/>`);
    rows.push(
      `<text x="6" y="${y + 17}" font-size="13" font-weight="600">${e(truncate(`${phase.name} (${formatDayRange(phase.days)})`, 44))}</text>`,
    );
    rows.push(
      bar(
        phase.days.start,
        phase.days.end,
        y + 4,
        PHASE_H - 8,
        STATE_COLOURS[phase.state]!,
        phase.late,
        `data-phase="${e(phase.id)}" data-state="${phase.state}"`,
        `${phase.name} ${formatDayRange(phase.days)}: ${phase.state}${phase.gate.passed ? ', gate passed' : `, gate missing: ${phase.gate.missing.join('; ')}`}`,
      ),
    );
    y += PHASE_H;
    for (const step of phase.steps) {
      rows.push(
        `<text x="18" y="${y + 13}" font-size="11.5" fill="#333">${e(truncate(`${step.id} — ${step.name}`, 52))}</text>`,
      );
      rows.push(
        bar(
          step.days.start,
          step.days.end,
          y + 3,
          STEP_H - 6,
          STATE_COLOURS[step.state]!,
          step.late,
          `data-step="${e(step.id)}" data-state="${step.state}"`,
          `${step.name} (${step.kindLabel}) ${formatDayRange(step.days)}: ${step.state}${step.summary ? ` — ${step.summary}` : ''}`,
        ),
      );
      y += STEP_H;
    }
    y += 4;
  }
  const height = y + 8;
  const axis: string[] = [];
  for (let d = 1; d <= lastDay; d++) {
    const strong = d === 1 || (d - 1) % 7 === 0;
    axis.push(
      `<line x1="${x(d)}" y1="${AXIS_H - 4}" x2="${x(d)}" y2="${height}" stroke="${strong ? '#c5ccd5' : '#eef1f4'}" stroke-width="1"/>`,
    );
    if (d === 1 || d % 5 === 0 || d === lastDay)
      axis.push(
        `<text x="${x(d) + DAY_W / 2}" y="${AXIS_H - 8}" font-size="11" text-anchor="middle" fill="#566070">D${d}</text>`,
      );
  }
  let today = '';
  if (status.day !== undefined) {
    const inRange = status.day >= 1 && status.day <= lastDay;
    const day = Math.min(Math.max(status.day, 1), lastDay);
    const tx = x(day) + DAY_W / 2;
    const label = inRange
      ? `today D${status.day}`
      : status.day < 1
        ? `today: D${status.day} (before D1)`
        : `today: D${status.day} (after D${lastDay})`;
    today =
      `<g data-today="${status.day}"><line x1="${tx}" y1="16" x2="${tx}" y2="${height}" stroke="#d23c3c" stroke-width="2.5"/>` +
      `<rect x="${Math.min(tx - 4, width - 190)}" y="0" width="${label.length * 6.6 + 10}" height="16" rx="3" fill="#d23c3c"/>` +
      `<text x="${Math.min(tx - 4, width - 190) + 5}" y="12" font-size="11" font-weight="600" fill="#fff">${e(label)}</text></g>`;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="rollout timeline" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${axis.join('')}${rows.join('')}${today}</svg>`;
}

// ---------------------------------------------------------------- sections

function legend(states: string[]): string {
  return `<p class="legend small">${states.map((s) => `<span><i style="background:${STATE_COLOURS[s]}"></i>${e(s)}</span>`).join('')}</p>`;
}

function stepRow(step: StepStatus): string {
  const evidence = step.summary ? e(step.summary) : '';
  const message =
    step.message && step.state !== 'done' ? `<div class="small">${e(step.message.split('\n')[0])}</div>` : '';
  const journal = step.journal ? `<div class="small">journal: ${e(step.journal)}</div>` : '';
  const stale = step.stale
    ? `<div class="stale" data-stale="${e(step.stale.since.join(' '))}"><span class="badge" style="background:#b8860b">stale</span> ${e(step.stale.reasons.join('; '))}: run it again</div>`
    : '';
  return (
    `<tr data-step-row="${e(step.id)}"><td><b>${e(step.id)}</b><div class="small">${e(step.name)}</div></td>` +
    `<td>${e(step.kindLabel)}</td><td>${e(formatDayRange(step.days))}${step.late ? ' <span class="badge" style="background:#d23c3c">late</span>' : ''}</td>` +
    `<td>${badge(step.state)}</td><td>${e(shortTime(step.when))}</td><td>${e(step.by ?? '')}</td><td>${evidence}${stale}${message}${journal}</td></tr>`
  );
}

function phaseSection(phase: PhaseStatus): string {
  const gate = phase.gate.passed
    ? `<div class="gate small">Gate: passed.</div>`
    : `<div class="gate small">Gate: not passed — missing:<ul>${phase.gate.missing.map((m) => `<li>${e(m)}</li>`).join('')}</ul></div>`;
  return (
    `<h3 data-phase-heading="${e(phase.id)}">${e(phase.name)} <span class="small">${e(formatDayRange(phase.days))}</span> ${badge(phase.state)}${phase.late ? ' <span class="badge" style="background:#d23c3c">late</span>' : ''}</h3>` +
    gate +
    `<table><tr><th>Step</th><th>Kind</th><th>Days</th><th>State</th><th>When</th><th>By</th><th>Evidence</th></tr>${phase.steps.map(stepRow).join('')}</table>`
  );
}

export function renderMatrix(matrix: HostRoleMatrix): string {
  if (!matrix.hosts.length)
    return `<p class="small">No run journal with role results yet (${matrix.journalsRead} journal(s) read).</p>`;
  const head = `<tr><th>host \\ role</th>${matrix.roles.map((r) => `<th>${e(r)}</th>`).join('')}</tr>`;
  const body = matrix.hosts
    .map((host) => {
      const cells = matrix.roles
        .map((role) => {
          const cell = matrix.cells[host]?.[role];
          if (!cell)
            return `<td class="cell none" data-host="${e(host)}" data-role="${e(role)}" data-state="none">—</td>`;
          const title = `${host} / ${role}: ${cell.state} — ${cell.command} at ${shortTime(cell.at)}${cell.detail ? ` — ${cell.detail}` : ''}`;
          return `<td class="cell" data-host="${e(host)}" data-role="${e(role)}" data-state="${cell.state}" style="background:${STATE_COLOURS[cell.state]}" title="${e(title)}">${e(cell.state)}</td>`;
        })
        .join('');
      return `<tr><th>${e(host)}</th>${cells}</tr>`;
    })
    .join('');
  return `<table class="matrix">${head}${body}</table>${legend(['ok', 'changed', 'drift', 'failed', 'unreachable'])}<p class="small">From the newest of ${matrix.journalsRead} run journal(s); hover a cell for the run and the reason.</p>`;
}

function measuredText(measured: Record<string, number | string>): string {
  return Object.entries(measured)
    .map(([k, v]) => `${e(k)}=${e(v)}`)
    .join(', ');
}

export function renderDrills(status: RolloutStatus, drillRuns: DrillRun[]): string {
  const steps = status.phases.flatMap((p) => p.steps).filter((s) => s.kind === 'drill');
  const stepRows = steps
    .map((s) => {
      const ev = s.evidence?.kind === 'drill' ? (s.evidence as DrillEvidence) : undefined;
      const targets = ev
        ? ev.targets
            .map(
              (t) =>
                `<div data-target="${e(t.key)}" data-met="${t.met}">${t.met ? '✔' : '✘'} ${e(t.key)} ${e(t.target)} — measured ${e(t.measured ?? 'nothing')}</div>`,
            )
            .join('')
        : (s.drill?.targets ?? []).map((t) => `<div class="small">${e(t)}</div>`).join('');
      return (
        `<tr data-drill-step="${e(s.id)}"><td><b>${e(s.id)}</b><div class="small">${e(s.name)}</div></td><td>${e(ev?.drill ?? s.drill?.name ?? '')}</td><td>${badge(s.state)}</td>` +
        `<td>${ev ? measuredText(ev.measured) : ''}</td><td>${ev ? e(ev.target) : ''}${targets}</td><td>${e(shortTime(s.when))}</td></tr>`
      );
    })
    .join('');
  const runRows = drillRuns
    .map(
      (d) =>
        `<tr data-drill-run="${e(d.drill)}"><td>${e(d.drill)}</td><td>${badge(d.passed ? 'done' : 'failed', d.passed ? 'passed' : 'failed')}</td><td>${measuredText(d.measured)}</td><td>${e(d.target)}${d.msg ? `<div class="small">${e(d.msg)}</div>` : ''}</td><td>${e(shortTime(d.at))}</td></tr>`,
    )
    .join('');
  return (
    (steps.length
      ? `<h3>Drill steps of the checklist, against their targets</h3><table><tr><th>Step</th><th>Drill</th><th>State</th><th>Measured</th><th>Targets</th><th>When</th></tr>${stepRows}</table>`
      : '') +
    (drillRuns.length
      ? `<h3>Newest result of every drill in the run journals</h3><table><tr><th>Drill</th><th>Result</th><th>Measured</th><th>Target</th><th>When</th></tr>${runRows}</table>`
      : '<p class="small">No drill has run yet.</p>')
  );
}

const OVERDUE_RED = '#d23c3c';

/** The drill schedule: one row per entry; an overdue one has its next-due cell and badge in red. */
export function renderDrillSchedule(schedule: NonNullable<ReportData['drillSchedule']>): string {
  const rows = schedule.due
    .map((d) => {
      const options = Object.entries(d.entry.set)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      const verdict = d.lastRun
        ? badge(d.lastRun.passed ? 'done' : 'failed', d.lastRun.passed ? 'passed' : 'failed')
        : '<span class="small">never run</span>';
      const nextDue = d.nextDue ? shortTime(d.nextDue.toISOString()) : 'now (never passed)';
      const status = d.overdue
        ? `<span class="badge" data-overdue="true" style="background:${OVERDUE_RED}">overdue</span>`
        : `<span class="badge" data-overdue="false" style="background:${STATE_COLOURS.ok}">on schedule</span>`;
      return (
        `<tr data-drill-due="${e(d.entry.id)}" data-overdue="${d.overdue}"><td><b>${e(d.entry.id)}</b>${d.entry.what ? `<div class="small">${e(d.entry.what)}</div>` : ''}</td>` +
        `<td>${e(d.entry.drill)}${options ? `<div class="small">${e(options)}</div>` : ''}</td><td>${e(d.entry.every)}</td>` +
        `<td>${e(shortTime(d.lastRun?.at))}</td><td>${verdict}</td>` +
        `<td${d.overdue ? ` style="color:${OVERDUE_RED};font-weight:600"` : ''}>${e(nextDue)}</td><td>${status}</td></tr>`
      );
    })
    .join('');
  const overdue = schedule.due.filter((d) => d.overdue).length;
  return (
    `<p class="small">Schedule ${e(schedule.file)} (document 001), judged at ${e(shortTime(schedule.now))} UTC: ` +
    `${overdue ? `<b style="color:${OVERDUE_RED}">${overdue} of ${schedule.due.length} overdue</b>` : `all ${schedule.due.length} on schedule`}. ` +
    'A drill is due its period in calendar months after its last passed run.</p>' +
    `<table class="drill-schedule"><tr><th>Entry</th><th>Drill</th><th>Every</th><th>Last run (UTC)</th><th>Verdict</th><th>Next due (UTC)</th><th>Status</th></tr>${rows}</table>`
  );
}

export function renderReport(data: ReportData): string {
  const { status } = data;
  const day =
    status.day === undefined ? 'not started' : status.day >= 1 ? `D${status.day}` : `before D1 (D${status.day})`;
  const late = status.late.length
    ? `<div class="late"><b>Late</b><ul>${status.late.map((l) => `<li>${e(l)}</li>`).join('')}</ul></div>`
    : '';
  const problems = status.problems.length
    ? `<div class="late"><b>Steps that will fail when run</b><ul>${status.problems.map((p) => `<li>${e(p.step)}: ${e(p.message)}</li>`).join('')}</ul></div>`
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${e(status.name)} — rollout report</title><style>${CSS}</style></head>
<body>
<h1>${e(status.name)} — rollout report</h1>
<p class="meta">Checklist ${e(status.checklist)} · generated ${e(shortTime(data.generatedAt))}</p>
<p class="meta" data-day="${status.day ?? ''}">${status.startDate ? `Started ${e(status.startDate)}${status.startedBy ? ` by ${e(status.startedBy)}` : ''} · today ${e(status.today)} is <b>${e(day)}</b>` : 'Not started yet (cairn rollout start --date YYYY-MM-DD)'}</p>
<div class="next"><b>Next:</b> ${e(status.next)}</div>
${late}${problems}
<h2>Timeline</h2>
${renderTimeline(status)}
${legend(['done', 'running', 'pending', 'failed', 'interrupted', 'open', 'locked'])}
<h2>Phases and steps</h2>
${status.phases.map(phaseSection).join('\n')}
<h2>Hosts × roles</h2>
${renderMatrix(data.matrix)}
<h2>Drills</h2>
${renderDrills(status, data.drillRuns)}
${data.drillSchedule ? `<h2>Drill schedule</h2>\n${renderDrillSchedule(data.drillSchedule)}\n` : ''}</body></html>
`;
}
