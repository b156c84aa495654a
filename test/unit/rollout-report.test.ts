/**
 * The report's host × role matrix from run journals (the engine's event format, as RunJournal writes it),
 * and the HTML: escaped, self-contained, with the data attributes the Chromium test reads.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunEvent, TaskStatus } from '../../runner/core/engine/events.js';
import { renderReport } from '../../runner/features/rollout/html.js';
import { parseChecklist } from '../../runner/features/rollout/checklist.js';
import { buildMatrix, journalFiles } from '../../runner/features/rollout/matrix.js';
import { emptyState } from '../../runner/features/rollout/state.js';
import { rolloutStatus } from '../../runner/features/rollout/status.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-matrix-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
/** A journal named like runIdFor() names them, so they sort by time. */
function journal(events: RunEvent[], opts: { check?: boolean } = {}): string {
  seq++;
  const runId = `2026-03-0${Math.min(seq, 9)}T10-00-${String(seq).padStart(2, '0')}-000Z`;
  const start: RunEvent = {
    type: 'run_start',
    time: `2026-03-0${Math.min(seq, 9)}T10:00:00.000Z`,
    runId,
    command: 'play',
    check: Boolean(opts.check),
    diff: false,
    inventory: '/inv',
  };
  const path = join(dir, `${runId}.ndjson`);
  writeFileSync(path, [start, ...events].map((e) => JSON.stringify(e)).join('\n') + '\n');
  return path;
}

const t = '2026-03-01T10:00:00.000Z';
function task(
  host: string,
  role: string,
  status: TaskStatus,
  extra: Partial<Extract<RunEvent, { type: 'task_result' }>> = {},
): RunEvent {
  return {
    type: 'task_result',
    time: t,
    host,
    task: { name: `${role} task`, role, module: 'copy', location: 'x:1:1' },
    status,
    durationMs: 1,
    ...extra,
  };
}
function verify(host: string, role: string, passed: boolean): RunEvent {
  return {
    type: 'verify_result',
    time: t,
    host,
    role,
    check: `${role} check`,
    passed,
    msg: passed ? undefined : 'not as wanted',
  };
}

describe('host × role matrix', () => {
  it('takes the newest run per host and role, the worst result within a run', () => {
    const files = [
      journal([
        task('web1', 'haproxy', 'changed'),
        task('web1', 'nginx', 'ok'),
        verify('web1', 'haproxy', true),
        task('web2', 'haproxy', 'changed'),
        task('web2', 'nginx', 'changed'),
        verify('web2', 'nginx', true),
      ]),
      // A --check run predicts a change on web2's haproxy: drift.
      journal([task('web2', 'haproxy', 'changed', { check: true }), task('web2', 'nginx', 'ok')], { check: true }),
      // A verification fails on web1 nginx: drift; an ignored failure and per-item results change nothing.
      journal([
        verify('web1', 'nginx', false),
        task('web1', 'haproxy', 'failed', { ignored: true }),
        task('web1', 'haproxy', 'failed', { item: 'a' }),
        task('web1', 'haproxy', 'ok', { item: 'a', loopSummary: true }),
      ]),
    ];
    const { matrix } = buildMatrix(files);
    expect(matrix.hosts).toEqual(['web1', 'web2']);
    expect(matrix.roles).toEqual(['haproxy', 'nginx']);
    const state = (h: string, r: string) => matrix.cells[h]?.[r]?.state;
    expect([
      state('web1', 'haproxy'),
      state('web1', 'nginx'),
      state('web2', 'haproxy'),
      state('web2', 'nginx'),
    ]).toEqual(['ok', 'drift', 'drift', 'ok']);
    expect(matrix.cells.web1!.nginx!.detail).toBe('nginx check: not as wanted');
    expect(matrix.cells.web2!.haproxy!.detail).toBe('would change: haproxy task');
  });

  it('a failed task beats a change; an unreachable host reads unreachable for every role, older ones too', () => {
    const files = [
      journal([task('db1', 'base', 'changed'), task('db1', 'ceph', 'changed'), verify('db1', 'ceph', true)]),
      journal([task('db1', 'base', 'changed'), task('db1', 'base', 'failed', { msg: 'apt failed\nmore' })]),
      journal([
        task('db2', 'base', 'ok'),
        { type: 'host_unreachable', time: t, host: 'db1', msg: 'connection refused' },
        task('db1', '', 'unreachable'),
      ]),
    ];
    const { matrix } = buildMatrix(files);
    expect(matrix.cells.db1).toMatchObject({
      base: { state: 'unreachable' },
      ceph: { state: 'unreachable', detail: 'host unreachable in a newer run' },
    });
    expect(matrix.cells.db2!.base!.state).toBe('ok');
    const before = buildMatrix(files.slice(0, 2)).matrix;
    expect(before.cells.db1!.base).toMatchObject({ state: 'failed', detail: 'base task: apt failed' });
    expect(before.cells.db1!.ceph!.state).toBe('changed');
  });

  it('keeps the newest result of each drill; a file that is not a journal is skipped', () => {
    const sub = join(dir, 'drills');
    const one = journal([
      {
        type: 'drill_result',
        time: '2026-03-01T10:00:00Z',
        drill: 'failover',
        passed: false,
        measured: { outage_s: 9 },
        target: '≤ 3 s',
      },
    ]);
    const two = journal([
      {
        type: 'drill_result',
        time: '2026-03-02T10:00:00Z',
        drill: 'failover',
        passed: true,
        measured: { outage_s: 1.1 },
        target: '≤ 3 s',
      },
    ]);
    const junk = join(dir, 'junk.ndjson');
    writeFileSync(junk, 'not json\nstill not\n');
    const { drills, matrix } = buildMatrix([one, junk, two]);
    expect(drills).toEqual([
      {
        drill: 'failover',
        passed: true,
        measured: { outage_s: 1.1 },
        target: '≤ 3 s',
        msg: undefined,
        at: '2026-03-02T10:00:00Z',
        runId: expect.any(String),
      },
    ]);
    expect(matrix.journalsRead).toBe(2);
    expect(journalFiles(sub)).toEqual([]);
  });
});

describe('the HTML report', () => {
  const checklist = parseChecklist(
    `name: "<b>Plan</b> & co"
phases:
  - id: prep
    name: "Prep <i>now</i>"
    days: D1-D7
    steps:
      - { id: s1, name: "Step \\"one\\" <script>alert(1)</script>", manual: ok }
    gate: { signoffs: [s1] }
`,
    '/plan/rollout.yaml',
  );

  it('escapes everything from outside and needs nothing from outside', () => {
    const state = emptyState();
    state.startDate = '2026-03-02';
    const html = renderReport({
      status: rolloutStatus(checklist, state, '2026-03-10'),
      matrix: {
        hosts: ['h<1>'],
        roles: ['r&1'],
        cells: { 'h<1>': { 'r&1': { state: 'ok', at: t, runId: 'x', command: 'play "a"' } } },
        journalsRead: 1,
      },
      drillRuns: [],
      generatedAt: t,
    });
    expect(html).not.toContain('<script>alert(1)');
    expect(html).toContain('Step &quot;one&quot; &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;b&gt;Plan&lt;/b&gt; &amp; co — rollout report');
    expect(html).toContain('data-host="h&lt;1&gt;" data-role="r&amp;1" data-state="ok"');
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(/i);
    // Late: D9 is past the phase's D7, and its step is pending.
    expect(html).toMatch(/<rect data-phase="prep" data-state="open"[^>]*stroke="#d23c3c"/);
    expect(html).toContain('data-today="9"');
  });

  it('marks today at the edge when it is outside the plan, and not at all before the start', () => {
    const state = emptyState();
    state.startDate = '2026-03-02';
    const after = renderReport({
      status: rolloutStatus(checklist, state, '2026-05-01'),
      matrix: { hosts: [], roles: [], cells: {}, journalsRead: 0 },
      drillRuns: [],
      generatedAt: t,
    });
    expect(after).toContain('today: D61 (after D35)');
    const unstarted = renderReport({
      status: rolloutStatus(checklist, emptyState(), '2026-05-01'),
      matrix: { hosts: [], roles: [], cells: {}, journalsRead: 0 },
      drillRuns: [],
      generatedAt: t,
    });
    expect(unstarted).not.toContain('data-today');
    expect(unstarted).toContain('No run journal with role results yet');
  });
});
