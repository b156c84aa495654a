/** Plan days and drill targets: the small parsers the checklist and the gates rest on. */
import { describe, expect, it } from 'vitest';
import {
  dateOfPlanDay,
  dayNumberOfDate,
  formatDayRange,
  parseDayRange,
  planDay,
} from '../../runner/features/rollout/days.js';
import { checkTarget, parseTarget } from '../../runner/features/rollout/targets.js';
import type { DrillTarget } from '../../runner/features/rollout/types.js';

describe('plan days', () => {
  it.each([
    ['D1-D7', { start: 1, end: 7 }],
    ['D8–D21', { start: 8, end: 21 }],
    ['D22', { start: 22, end: 22 }],
    ['29-35', { start: 29, end: 35 }],
    [' D3 .. D4 ', { start: 3, end: 4 }],
  ])('%s', (text, range) => {
    expect(parseDayRange(text)).toEqual(range);
  });

  it.each(['D8 to D21', 'day 3', '', 'D-3', 'D1-D2-D3'])('refuses %j', (text) => {
    expect(parseDayRange(text)).toBeUndefined();
  });

  it('formats single days and ranges', () => {
    expect(formatDayRange({ start: 8, end: 21 })).toBe('D8–D21');
    expect(formatDayRange({ start: 22, end: 22 })).toBe('D22');
  });

  it('counts D1 as the start date, across months and leap days', () => {
    expect(planDay('2026-03-02', '2026-03-02')).toBe(1);
    expect(planDay('2026-03-02', '2026-03-08')).toBe(7);
    expect(planDay('2028-02-27', '2028-03-01')).toBe(4); // 2028 is a leap year
    expect(planDay('2026-03-02', '2026-03-01')).toBe(0); // the day before the plan
    expect(dateOfPlanDay('2026-12-30', 35)).toBe('2027-02-02');
  });

  it('refuses dates that do not exist', () => {
    expect(dayNumberOfDate('2026-02-31')).toBeUndefined();
    expect(dayNumberOfDate('2026-13-01')).toBeUndefined();
    expect(dayNumberOfDate('26-1-1')).toBeUndefined();
    expect(() => planDay('2026-02-30', '2026-03-01')).toThrow(/not a date/);
  });
});

describe('drill targets', () => {
  const target = (key: string, raw: string): DrillTarget => {
    const t = parseTarget(key, raw);
    if (typeof t === 'string') throw new Error(t);
    return t;
  };

  it('parses comparisons, with ≥ and ≤ as >= and <=', () => {
    expect(target('availability_pct', '>= 99.95')).toEqual({
      key: 'availability_pct',
      op: '>=',
      value: 99.95,
      text: '>= 99.95',
    });
    expect(target('latency_p99_ms', '≤800')).toMatchObject({ op: '<=', value: 800 });
    expect(target('new_master', '== lb2')).toMatchObject({ op: '==', value: 'lb2' });
  });

  it('says what is wrong with a malformed target', () => {
    expect(parseTarget('a', 'about 99')).toMatch(/must be a comparison such as ">= 99.95"/);
    expect(parseTarget('a', '>= fast')).toMatch(/>= needs a number, got "fast"/);
    expect(parseTarget('a', 99)).toMatch(/needs a comparison, e.g. ">= 99" or "<= 99"/);
  });

  it('checks measured values; a value not measured misses its target', () => {
    const measured = { availability_pct: 99.96, latency_p99_ms: 812.5, new_master: 'lb2', outage_s: '1.2' };
    expect(checkTarget(target('availability_pct', '>= 99.95'), measured)).toEqual({
      key: 'availability_pct',
      target: '>= 99.95',
      measured: 99.96,
      met: true,
    });
    expect(checkTarget(target('latency_p99_ms', '<= 800'), measured).met).toBe(false);
    expect(checkTarget(target('outage_s', '<= 3'), measured).met).toBe(true); // numbers given as text count
    expect(checkTarget(target('new_master', '== lb2'), measured).met).toBe(true);
    expect(checkTarget(target('new_master', '== lb1'), measured).met).toBe(false);
    expect(checkTarget(target('rpo_s', '<= 3600'), measured)).toEqual({ key: 'rpo_s', target: '<= 3600', met: false });
    expect(checkTarget(target('new_master', '> 3'), measured).met).toBe(false); // not a number
  });
});
