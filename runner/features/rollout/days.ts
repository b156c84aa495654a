/**
 * Plan days: "D1–D7" ranges in the checklist, and the day counter (which plan day a calendar date is, given
 * the start date). Dates are calendar dates (YYYY-MM-DD) in the operator's local time zone: D1 is the whole
 * start day, whatever the hour.
 */
import { DAYS_PATTERN } from './schema.js';
import type { DayRange } from './types.js';

const daysRegex = new RegExp(DAYS_PATTERN);

/** "D8-D21" -> {8, 21}; "D22" -> {22, 22}; undefined when it is not a day range. */
export function parseDayRange(text: string): DayRange | undefined {
  const m = daysRegex.exec(text);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  return { start, end };
}

export function formatDayRange(range: DayRange): string {
  return range.start === range.end ? `D${range.start}` : `D${range.start}–D${range.end}`;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Days since 1970-01-01 of a YYYY-MM-DD date; undefined when it is not a real date. */
export function dayNumberOfDate(text: string): number | undefined {
  const m = DATE.exec(text.trim());
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  // Date.UTC rolls 2026-02-31 over to March: a date that does not come back as written is not a date.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  return Math.round(ms / 86_400_000);
}

/** Today's local calendar date as YYYY-MM-DD. */
export function localDate(now: Date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/** The calendar date of plan day `day`. */
export function dateOfPlanDay(startDate: string, day: number): string {
  const start = dayNumberOfDate(startDate);
  if (start === undefined) throw new Error(`not a date: ${startDate}`);
  return new Date((start + day - 1) * 86_400_000).toISOString().slice(0, 10);
}

/**
 * The plan day of `today` (D1 = the start date). Before the start it is 0 or negative: the plan has not
 * begun.
 */
export function planDay(startDate: string, today: string): number {
  const start = dayNumberOfDate(startDate);
  const now = dayNumberOfDate(today);
  if (start === undefined || now === undefined)
    throw new Error(`not a date: ${start === undefined ? startDate : today}`);
  return now - start + 1;
}
