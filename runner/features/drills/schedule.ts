/**
 * The drill schedule (drills.yaml, document 001: drills every month — cut the network, kill nodes, move
 * traffic 100 % → 0 % — single-node drills quarterly, two-node half-yearly, the whole system yearly) and
 * where each scheduled drill stands: its last run and verdict from the run journals, when it is due again
 * (its last PASSED run plus its period in calendar months), and whether it is overdue.
 *
 * Read by `cairn drill --due` and `cairn report`; loading it needs no drill, engine or SSH code.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunEvent } from '../../core/engine/events.js';
import { formatLocation } from '../../core/util/errors.js';
import { packageRoot } from '../../core/util/paths.js';
import { terminalSafe } from '../../app/report/terminal.js';
import { validateAt } from '../../core/util/schema.js';
import type { Vars } from '../../core/util/vars.js';
import { errorAt, loadYamlFile, parseYaml, type LoadedYaml } from '../../core/util/yaml-source.js';
import { readJournal } from '../../app/report/journal.js';

const WHAT = 'drill schedule';

/** The periods of document 001, in calendar months. */
export const PERIOD_MONTHS = { monthly: 1, quarterly: 3, 'half-yearly': 6, yearly: 12 } as const;
export type Period = keyof typeof PERIOD_MONTHS;

export interface ScheduledDrill {
  /** The entry's own name (unique in the file): a drill may be scheduled twice with different options. */
  id: string;
  /** The drill to run (`cairn drill --list`). */
  drill: string;
  every: Period;
  /** `--set` options the schedule runs it with; a recorded run counts for this entry only if it had them. */
  set: Record<string, string>;
  extraVars: Vars;
  /** What it exercises, in words (shown in listings). */
  what?: string;
  location: string;
}

export interface DrillSchedule {
  file: string;
  drills: ScheduledDrill[];
}

const ID = /^[a-z0-9][a-z0-9_-]*$/;

export const scheduleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['drills'],
  properties: {
    drills: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'drill', 'every'],
        properties: {
          id: { type: 'string', minLength: 1 },
          drill: { type: 'string', minLength: 1 },
          every: { enum: Object.keys(PERIOD_MONTHS) },
          set: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
          extra_vars: { type: 'object' },
          what: { type: 'string', minLength: 1 },
        },
      },
    },
  },
} as const;

interface RawEntry {
  id: string;
  drill: string;
  every: Period;
  set?: Record<string, string | number | boolean>;
  extra_vars?: Vars;
  what?: string;
}

export function loadSchedule(file: string, knownDrills?: readonly string[]): DrillSchedule {
  return buildSchedule(loadYamlFile(resolve(file), WHAT), knownDrills);
}

export function parseSchedule(source: string, file: string, knownDrills?: readonly string[]): DrillSchedule {
  return buildSchedule(parseYaml(source, resolve(file)), knownDrills);
}

/**
 * Structure by the JSON Schema, then what it cannot say: ids well-formed and unique, and (when the caller
 * knows the registered drills) every drill name known. Every error names file:line:col.
 */
function buildSchedule(loaded: LoadedYaml, knownDrills?: readonly string[]): DrillSchedule {
  if (loaded.value === null || loaded.value === undefined)
    throw errorAt(loaded, [], `${WHAT} is empty: expected a mapping with "drills"`);
  validateAt(loaded, scheduleSchema, WHAT);
  const raw = loaded.value as { drills: RawEntry[] };
  const seen = new Map<string, number>();
  const drills = raw.drills.map((entry, i): ScheduledDrill => {
    if (!ID.test(entry.id))
      throw errorAt(
        loaded,
        ['drills', i, 'id'],
        `${WHAT}: id "${entry.id}" must be lower-case letters, digits, "-" and "_", starting with a letter or digit`,
      );
    const earlier = seen.get(entry.id);
    if (earlier !== undefined)
      throw errorAt(
        loaded,
        ['drills', i, 'id'],
        `${WHAT}: id "${entry.id}" is used twice (first at ${formatLocation(loaded.locate(['drills', earlier, 'id']))})`,
      );
    seen.set(entry.id, i);
    if (knownDrills && !knownDrills.includes(entry.drill))
      throw errorAt(
        loaded,
        ['drills', i, 'drill'],
        `${WHAT}: unknown drill "${entry.drill}": expected one of ${knownDrills.join(', ')}`,
      );
    return {
      id: entry.id,
      drill: entry.drill,
      every: entry.every,
      set: Object.fromEntries(Object.entries(entry.set ?? {}).map(([k, v]) => [k, String(v)])),
      extraVars: entry.extra_vars ?? {},
      what: entry.what,
      location: formatLocation(loaded.locate(['drills', i])),
    };
  });
  return { file: loaded.file, drills };
}

/**
 * The schedule file: --schedule, else CAIRN_DRILLS, else drills.yaml in `besideDir` (the rollout
 * checklist's folder, for `cairn report`), else ./drills.yaml, else the one cairn ships.
 */
export function schedulePath(explicit?: string, besideDir?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return resolve(explicit);
  if (env.CAIRN_DRILLS) return resolve(env.CAIRN_DRILLS);
  for (const dir of besideDir ? [besideDir, '.'] : ['.']) {
    const candidate = resolve(dir, 'drills.yaml');
    if (existsSync(candidate)) return candidate;
  }
  return join(packageRoot(), 'drills.yaml');
}

// ------------------------------------------------------------------------------------ calendar arithmetic

/**
 * `at` plus `months` calendar months, in UTC (the journals' times are UTC): the same day of the month and
 * time of day, or the month's last day when it is shorter (Jan 31 + 1 month = Feb 28, or 29 in a leap
 * year). Written out rather than taken from a date library: date-fns' addMonths works in the local time
 * zone, where a drill near midnight would move by a day with the machine's TZ.
 */
export function addCalendarMonths(at: Date, months: number): Date {
  const year = at.getUTCFullYear();
  const month = at.getUTCMonth() + months;
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return new Date(
    Date.UTC(
      year,
      month,
      Math.min(at.getUTCDate(), lastDay),
      at.getUTCHours(),
      at.getUTCMinutes(),
      at.getUTCSeconds(),
      at.getUTCMilliseconds(),
    ),
  );
}

// ------------------------------------------------------------------------------------ recorded runs

/** One `drill_result` of a run journal. */
export interface RecordedDrillRun {
  drill: string;
  passed: boolean;
  /** The --set options it ran with (absent in journals older than this field). */
  options: Record<string, string>;
  at: string;
  msg?: string;
  journal: string;
}

/**
 * Every drill result in the run journals of `runsDir` (`<state dir>/runs`), oldest first. Only journals
 * that mention a drill result are parsed; one that is not a journal is skipped, as the report does.
 */
export function readDrillRuns(runsDir: string): RecordedDrillRun[] {
  let names: string[];
  try {
    names = readdirSync(runsDir).filter((n) => n.endsWith('.ndjson'));
  } catch {
    return []; // no runs yet
  }
  const runs: RecordedDrillRun[] = [];
  for (const name of names.sort()) {
    const path = join(runsDir, name);
    let events: RunEvent[];
    try {
      if (!statSync(path).isFile() || !readFileSync(path, 'utf8').includes('"drill_result"')) continue;
      events = readJournal(path);
    } catch {
      continue;
    }
    for (const e of events)
      if (e.type === 'drill_result')
        runs.push({
          drill: e.drill,
          passed: e.passed,
          options: e.options ?? {},
          at: e.time,
          msg: e.msg,
          journal: path,
        });
  }
  return runs.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

// ------------------------------------------------------------------------------------ where each stands

export interface DrillDue {
  entry: ScheduledDrill;
  /** The newest run that counts for this entry, whatever its verdict. */
  lastRun?: RecordedDrillRun;
  /** The newest passed one: the schedule counts from it. */
  lastPassed?: RecordedDrillRun;
  /** lastPassed + the period; undefined when it never passed (due now). */
  nextDue?: Date;
  overdue: boolean;
}

/** A run counts for an entry when it is that drill and had every option the entry sets. */
function counts(entry: ScheduledDrill, run: RecordedDrillRun): boolean {
  return run.drill === entry.drill && Object.entries(entry.set).every(([k, v]) => run.options[k] === v);
}

/**
 * Where each scheduled drill stands at `now`: a drill that never passed is overdue; otherwise it is due
 * `every` calendar months after its last pass and overdue from that moment on. A failed run does not
 * reset the clock.
 */
export function drillsDue(schedule: DrillSchedule, runs: RecordedDrillRun[], now: Date): DrillDue[] {
  return schedule.drills.map((entry) => {
    let lastRun: RecordedDrillRun | undefined;
    let lastPassed: RecordedDrillRun | undefined;
    for (const run of runs) {
      if (!counts(entry, run)) continue;
      lastRun = run;
      if (run.passed) lastPassed = run;
    }
    const nextDue = lastPassed ? addCalendarMonths(new Date(lastPassed.at), PERIOD_MONTHS[entry.every]) : undefined;
    return { entry, lastRun, lastPassed, nextDue, overdue: !nextDue || now.getTime() >= nextDue.getTime() };
  });
}

// ------------------------------------------------------------------------------------ metrics

function labelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * Node-exporter textfile metrics for the prometheus role's DrillOverdue rule: per scheduled drill, when it
 * last passed and when it is due again (Unix seconds; 0 = never passed, due since forever). The due time is
 * computed here in calendar months, so the rule only compares it with time() and keeps firing correctly
 * even if this file is not refreshed.
 */
export function renderDrillMetrics(due: DrillDue[], now: Date): string {
  const seconds = (d: Date | undefined) => (d ? Math.floor(d.getTime() / 1000) : 0);
  const labels = (d: DrillDue) =>
    `{id="${labelValue(d.entry.id)}",drill="${labelValue(d.entry.drill)}",every="${d.entry.every}"}`;
  const lines = [
    '# HELP cairn_drill_last_success_timestamp_seconds When the scheduled drill last passed (Unix time; 0: never).',
    '# TYPE cairn_drill_last_success_timestamp_seconds gauge',
    ...due.map(
      (d) =>
        `cairn_drill_last_success_timestamp_seconds${labels(d)} ${seconds(d.lastPassed && new Date(d.lastPassed.at))}`,
    ),
    '# HELP cairn_drill_next_due_timestamp_seconds When the scheduled drill is due again (last pass + its period).',
    '# TYPE cairn_drill_next_due_timestamp_seconds gauge',
    ...due.map((d) => `cairn_drill_next_due_timestamp_seconds${labels(d)} ${seconds(d.nextDue)}`),
    '# HELP cairn_drill_schedule_timestamp_seconds When cairn drill --due last wrote these metrics.',
    '# TYPE cairn_drill_schedule_timestamp_seconds gauge',
    `cairn_drill_schedule_timestamp_seconds ${seconds(now)}`,
  ];
  return lines.join('\n') + '\n';
}

// ------------------------------------------------------------------------------------ text

/** "2026-12-07 11:00" (UTC), or a dash. */
export function shortUtc(at: Date | string | undefined): string {
  if (at === undefined) return '-';
  return (typeof at === 'string' ? at : at.toISOString()).replace('T', ' ').slice(0, 16);
}

/**
 * The schedule as a table (`cairn drill --due`, `cairn report`): one line per entry with its last run,
 * verdict, next due time (UTC) and OVERDUE in red when `colour`. Text from the journals is made
 * terminal-safe: a drill's message cannot move the cursor.
 */
export function renderDueTable(due: DrillDue[], opts: { colour: boolean }): string {
  const red = (text: string) => (opts.colour ? `\x1b[31;1m${text}\x1b[0m` : text);
  const rows = due.map((d) =>
    [
      d.entry.id,
      d.entry.drill +
        (Object.keys(d.entry.set).length
          ? ` ${Object.entries(d.entry.set)
              .map(([k, v]) => `${k}=${v}`)
              .join(',')}`
          : ''),
      d.entry.every,
      shortUtc(d.lastRun?.at),
      d.lastRun ? (d.lastRun.passed ? 'passed' : 'FAILED') : 'never run',
      d.nextDue ? shortUtc(d.nextDue) : 'now',
      d.overdue ? 'OVERDUE' : 'ok',
    ].map(terminalSafe),
  );
  const head = ['id', 'drill', 'every', 'last run (UTC)', 'verdict', 'next due (UTC)', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[], overdue = false) =>
    cells
      .map((c, i) => {
        const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]!);
        return overdue && i === cells.length - 1 ? red(padded) : padded;
      })
      .join('  ')
      .trimEnd();
  const overdue = due.filter((d) => d.overdue);
  const summary = overdue.length
    ? `${overdue.length} of ${due.length} scheduled drills overdue: ${overdue.map((d) => d.entry.id).join(', ')}`
    : `all ${due.length} scheduled drills within their period`;
  return [line(head), ...rows.map((r, i) => line(r, due[i]!.overdue)), '', summary].join('\n') + '\n';
}
