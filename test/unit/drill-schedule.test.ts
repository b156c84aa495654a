/**
 * The drill schedule (drills.yaml, document 001): the shipped file names only registered drills at the
 * document's periods; a malformed schedule is refused at file:line:col; and the schedule arithmetic —
 * calendar months in UTC, a drill that never passed is overdue, a failed run does not reset the clock,
 * options tell a drill's schedule entries apart.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../runner/features/drills/all.js';
import { drillNames } from '../../runner/features/drills/registry.js';
import {
  addCalendarMonths,
  drillsDue,
  loadSchedule,
  parseSchedule,
  renderDrillMetrics,
  type RecordedDrillRun,
} from '../../runner/features/drills/schedule.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { packageRoot } from '../../runner/core/util/paths.js';

function errorOf(text: string, known?: string[]): string {
  try {
    parseSchedule(text, '/site/drills.yaml', known);
  } catch (err) {
    if (err instanceof CairnError) return err.render();
    throw err;
  }
  throw new Error('the schedule loaded without an error');
}

describe('the shipped drills.yaml', () => {
  const schedule = loadSchedule(join(packageRoot(), 'drills.yaml'), drillNames());

  it("holds document 001's periods, each with registered drills", () => {
    const by = (every: string) => schedule.drills.filter((d) => d.every === every).map((d) => d.id);
    expect(by('monthly')).toEqual(['network-cut', 'node-kill', 'traffic-move', 'backend-down']);
    expect(by('quarterly')).toEqual(['single-node', 'single-osd']);
    expect(by('half-yearly')).toEqual(['two-node']);
    expect(by('yearly')).toEqual(['whole-system']);
    expect(schedule.drills.find((d) => d.id === 'network-cut')).toMatchObject({
      drill: 'failover',
      set: { variant: 'unplug' },
    });
  });
});

describe('a malformed schedule is refused at file:line:col', () => {
  it.each([
    ['an unknown period', 'drills:\n  - id: a\n    drill: failover\n    every: weekly\n', '4:12', /"every"/],
    ['a missing drill', 'drills:\n  - id: a\n    every: monthly\n', '2:5', /"drill"/],
    ['an unknown key', 'drills:\n  - id: a\n    drill: failover\n    every: monthly\n    when: x\n', '5:5', /when/],
    ['a bad id', 'drills:\n  - id: A B\n    drill: failover\n    every: monthly\n', '2:9', /lower-case/],
    ['no drills', 'drills: []\n', '1:9', /drills/],
  ])('%s', (_what, text, at, message) => {
    const rendered = errorOf(text);
    expect(rendered.startsWith(`/site/drills.yaml:${at}: drill schedule`), rendered).toBe(true);
    expect(rendered).toMatch(message);
  });

  it('an id used twice names both places', () => {
    const text = 'drills:\n  - {id: a, drill: failover, every: monthly}\n  - {id: a, drill: restore, every: yearly}\n';
    expect(errorOf(text)).toMatch(
      /^\/site\/drills\.yaml:3:10: .*"a" is used twice \(first at \/site\/drills\.yaml:2:10\)/,
    );
  });

  it('an unknown drill, when the drills are known, lists the real ones', () => {
    const text = 'drills:\n  - id: a\n    drill: failovr\n    every: monthly\n';
    expect(errorOf(text, ['failover', 'restore'])).toMatch(
      /^\/site\/drills\.yaml:3:12: drill schedule: unknown drill "failovr": expected one of failover, restore/,
    );
  });

  it('an empty file says what is expected', () => {
    expect(errorOf('')).toMatch(/empty: expected a mapping with "drills"/);
  });
});

describe('calendar months (UTC)', () => {
  it.each([
    ['2026-01-15T10:00:00.000Z', 1, '2026-02-15T10:00:00.000Z'],
    ['2026-01-31T23:30:00.000Z', 1, '2026-02-28T23:30:00.000Z'],
    ['2028-01-31T08:00:00.000Z', 1, '2028-02-29T08:00:00.000Z'], // leap year
    ['2026-03-31T00:00:00.000Z', 1, '2026-04-30T00:00:00.000Z'],
    ['2026-11-30T12:00:00.000Z', 3, '2027-02-28T12:00:00.000Z'], // across the year
    ['2026-08-31T12:00:00.000Z', 6, '2027-02-28T12:00:00.000Z'],
    ['2026-12-07T11:00:00.000Z', 12, '2027-12-07T11:00:00.000Z'],
    ['2028-02-29T06:00:00.000Z', 12, '2029-02-28T06:00:00.000Z'],
    ['2026-05-10T00:00:00.000Z', 0, '2026-05-10T00:00:00.000Z'],
  ])('%s + %i months = %s', (from, months, expected) => {
    expect(addCalendarMonths(new Date(from), months).toISOString()).toBe(expected);
  });
});

describe('where each scheduled drill stands', () => {
  const schedule = parseSchedule(
    [
      'drills:',
      '  - {id: cut, drill: failover, every: monthly, set: {variant: unplug}}',
      '  - {id: kill, drill: failover, every: monthly, set: {variant: powercut}}',
      '  - {id: osd, drill: osd-down, every: quarterly}',
      '  - {id: pair, drill: failback, every: half-yearly}',
      '  - {id: all, drill: restore, every: yearly}',
    ].join('\n'),
    '/site/drills.yaml',
  );
  const run = (drill: string, at: string, passed: boolean, options: Record<string, string> = {}): RecordedDrillRun => ({
    drill,
    at,
    passed,
    options,
    journal: `/runs/${at}.ndjson`,
  });
  const runs = [
    run('failover', '2026-10-31T09:00:00.000Z', true, { variant: 'unplug' }),
    run('failover', '2026-11-20T09:00:00.000Z', false, { variant: 'unplug' }), // failed: the clock stays
    run('failover', '2026-11-10T09:00:00.000Z', true, { variant: 'powercut' }),
    run('osd-down', '2026-09-07T11:00:00.000Z', true),
    run('failback', '2026-06-07T11:00:00.000Z', true),
    run('failback', '2026-06-08T11:00:00.000Z', false),
  ].sort((a, b) => a.at.localeCompare(b.at));

  it.each([
    // now, id -> [next due, overdue]
    ['2026-11-29T23:59:59.000Z', 'cut', '2026-11-30T09:00:00.000Z', false],
    ['2026-11-30T09:00:00.000Z', 'cut', '2026-11-30T09:00:00.000Z', true], // due at that moment
    ['2026-12-07T11:00:00.000Z', 'cut', '2026-11-30T09:00:00.000Z', true],
    ['2026-12-07T11:00:00.000Z', 'kill', '2026-12-10T09:00:00.000Z', false],
    ['2026-12-07T10:59:59.000Z', 'osd', '2026-12-07T11:00:00.000Z', false],
    ['2026-12-07T11:00:00.000Z', 'osd', '2026-12-07T11:00:00.000Z', true],
    ['2026-12-07T11:00:00.000Z', 'pair', '2026-12-07T11:00:00.000Z', true],
    ['2026-12-07T10:00:00.000Z', 'pair', '2026-12-07T11:00:00.000Z', false],
    ['2026-12-07T11:00:00.000Z', 'all', undefined, true], // never run: overdue
  ])('at %s, %s is due %s (overdue: %s)', (now, id, nextDue, overdue) => {
    const d = drillsDue(schedule, runs, new Date(now)).find((x) => x.entry.id === id)!;
    expect(d.nextDue?.toISOString()).toBe(nextDue);
    expect(d.overdue).toBe(overdue);
  });

  it('shows the newest run and its verdict, and counts from the newest pass', () => {
    const [cut, kill] = drillsDue(schedule, runs, new Date('2026-12-07T11:00:00.000Z'));
    expect(cut!.lastRun).toMatchObject({ at: '2026-11-20T09:00:00.000Z', passed: false });
    expect(cut!.lastPassed?.at).toBe('2026-10-31T09:00:00.000Z');
    // A run of the same drill with other options does not count for the entry.
    expect(kill!.lastRun?.at).toBe('2026-11-10T09:00:00.000Z');
  });

  it('exports the last pass and the due time per entry (0 when it never passed)', () => {
    const text = renderDrillMetrics(
      drillsDue(schedule, runs, new Date('2026-12-07T11:00:00.000Z')),
      new Date('2026-12-07T11:00:00.000Z'),
    );
    const cutDue = Date.parse('2026-11-30T09:00:00.000Z') / 1000;
    expect(text).toContain(
      `cairn_drill_next_due_timestamp_seconds{id="cut",drill="failover",every="monthly"} ${cutDue}`,
    );
    expect(text).toContain('cairn_drill_last_success_timestamp_seconds{id="all",drill="restore",every="yearly"} 0');
    expect(text).toContain('cairn_drill_next_due_timestamp_seconds{id="all",drill="restore",every="yearly"} 0');
    expect(text).toContain(`cairn_drill_schedule_timestamp_seconds ${Date.parse('2026-12-07T11:00:00.000Z') / 1000}`);
  });
});

describe('the schedule in the HTML report', () => {
  it('escapes what comes from the schedule and the journals, and marks only overdue rows red', async () => {
    const { renderDrillSchedule } = await import('../../runner/features/rollout/html.js');
    const schedule = parseSchedule(
      'drills:\n  - {id: a, drill: "x<b>", every: monthly, what: "<script>alert(1)</script>"}\n' +
        '  - {id: b, drill: restore, every: yearly}\n',
      '/site/drills.yaml',
    );
    const runs: RecordedDrillRun[] = [
      { drill: 'restore', at: '2026-06-01T00:00:00.000Z', passed: true, options: {}, journal: '/r/1.ndjson' },
    ];
    const now = new Date('2026-12-07T11:00:00.000Z');
    const html = renderDrillSchedule({
      file: '/site/drills.yaml',
      now: now.toISOString(),
      due: drillsDue(schedule, runs, now),
    });
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('x&lt;b&gt;');
    expect(html).toMatch(/<tr data-drill-due="a" data-overdue="true">.*color:#d23c3c.*now \(never passed\)/);
    expect(html).toMatch(/<tr data-drill-due="b" data-overdue="false">.*2027-06-01 00:00.*on schedule/);
    expect(html.match(/data-drill-due="b"[^]*?<\/tr>/)?.[0]).not.toContain('color:#d23c3c');
  });
});
