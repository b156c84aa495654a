/**
 * `cairn drill --due` through the CLI, against a state folder filled by real drill runs: `cairn drill
 * load-probe` against a small HTTP server on loopback records a passed run, against a closed port a failed
 * one, through the same journal every drill writes. The schedule then shows each entry's last run, verdict,
 * next due (calendar months after the last pass) and overdue; --metrics writes what promtool accepts;
 * --run runs what is due; a bad schedule is refused at file:line:col.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCairn } from '../helpers/cli.js';

interface DueLine {
  type: 'drill_due';
  id: string;
  drill: string;
  lastRun: { at: string; passed: boolean; journal: string } | null;
  lastPassed: string | null;
  nextDue: string | null;
  overdue: boolean;
}

const dueLines = (stdout: string): Map<string, DueLine> =>
  new Map(
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as DueLine)
      .map((d) => [d.id, d]),
  );

describe('cairn drill --due against runs recorded by real drills', { timeout: 240_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), 'cairn-drill-due-'));
  const state = join(work, 'state');
  const inventory = join(work, 'hosts.yaml');
  const schedule = join(work, 'drills.yaml');
  const env = { CAIRN_STATE_DIR: state };
  let http: Server;
  let url = '';
  let closedUrl = '';

  const probe = (target: string, extra: string[] = []) =>
    runCairn(
      ['drill', 'load-probe', '-i', inventory, '--set', `url=${target}`, '--set', 'requests=20']
        // A loose P99: this tests the schedule's bookkeeping on a busy machine, not the probe's speed.
        .concat([
          '--set',
          'concurrency=2',
          '--set',
          'interval_ms=0',
          '--set',
          'timeout_ms=5000',
          '--set',
          'max_p99_ms=60000',
        ])
        .concat(extra),
      { env },
    );

  beforeAll(async () => {
    writeFileSync(inventory, 'all:\n  hosts: {}\n');
    http = createServer((_req, res) => res.end('ok\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    // A port that was just free and is closed again: every request is refused.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    closedUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/`;
    await new Promise<void>((r) => closed.close(() => r()));
    writeFileSync(
      schedule,
      [
        'drills:',
        '  - id: probe',
        '    drill: load-probe',
        '    every: monthly',
        '  - id: probe-down',
        '    drill: load-probe',
        '    every: quarterly',
        `    set: { url: "${closedUrl}" }`,
        '  - id: whole-system',
        '    drill: restore',
        '    every: yearly',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await new Promise<void>((r) => http.close(() => r()));
    rmSync(work, { recursive: true, force: true });
  });

  it('before any run, every scheduled drill is overdue (exit 3)', async () => {
    const due = await runCairn(['drill', '--due', '--schedule', schedule], { env });
    expect(due.stderr).toBe('');
    expect(due.code).toBe(3);
    expect(due.stdout).toMatch(/^probe\s+load-probe\s+monthly\s+-\s+never run\s+now\s+OVERDUE$/m);
    expect(due.stdout).toContain('3 of 3 scheduled drills overdue: probe, probe-down, whole-system');
    // Not a terminal: no colour codes.
    expect(due.stdout).not.toContain('\x1b');
  });

  it('a passed and a failed drill run, recorded by the drills themselves, set last run, verdict and next due', async () => {
    const passed = await probe(url);
    expect(passed.code, passed.stdout + passed.stderr).toBe(0);
    const failed = await probe(closedUrl);
    expect(failed.code, failed.stdout + failed.stderr).toBe(2);

    const json = await runCairn(['drill', '--due', '--schedule', schedule, '--json'], { env });
    expect(json.code, json.stderr).toBe(3);
    const lines = dueLines(json.stdout);
    const ok = lines.get('probe')!;
    // The failed run had another url: the entry without `set` counts every run of the drill, its newest
    // being the failed one; its clock runs from the newest pass.
    expect(ok.lastRun?.passed).toBe(false);
    expect(ok.lastPassed).not.toBeNull();
    const passedAt = new Date(ok.lastPassed!);
    const expectedDue = new Date(passedAt);
    expectedDue.setUTCMonth(passedAt.getUTCMonth() + 1);
    if (expectedDue.getUTCDate() !== passedAt.getUTCDate()) expectedDue.setUTCDate(0); // month end
    expect(ok.nextDue).toBe(expectedDue.toISOString());
    expect(ok.overdue).toBe(false);
    // The run's record is a real journal of this state folder.
    expect(readFileSync(ok.lastRun!.journal, 'utf8')).toContain('"type":"drill_result"');
    // probe-down counts only runs against its url: the failed one; never passed, so overdue.
    const down = lines.get('probe-down')!;
    expect(down.lastRun?.passed).toBe(false);
    expect(down.lastPassed).toBeNull();
    expect(down.nextDue).toBeNull();
    expect(down.overdue).toBe(true);
    expect(lines.get('whole-system')).toMatchObject({ lastRun: null, overdue: true });

    const text = await runCairn(['drill', '--due', '--schedule', schedule], { env });
    expect(text.stdout).toMatch(/^probe\s+load-probe\s+monthly\s+\S+ \S+\s+FAILED\s+\S+ \S+\s+ok$/m);
    expect(text.stdout).toMatch(/^probe-down\s+load-probe url=\S+\s+quarterly\s+\S+ \S+\s+FAILED\s+now\s+OVERDUE$/m);
    expect(text.stdout).toContain('2 of 3 scheduled drills overdue: probe-down, whole-system');

    // A month and a day later the monthly probe is overdue too.
    const later = new Date(expectedDue.getTime() + 86_400_000).toISOString();
    const after = await runCairn(['drill', '--due', '--schedule', schedule, '--json', '--now', later], { env });
    expect(dueLines(after.stdout).get('probe')?.overdue).toBe(true);
  });

  it('cairn report shows the schedule: last run, verdict, next due, overdue in red (HTML and text)', async () => {
    const output = join(work, 'report.html');
    const res = await runCairn(
      ['report', '--checklist', join(repoRoot, 'rollout.yaml'), '--schedule', schedule, '-o', output],
      { env },
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`report: ${output}\n`);
    expect(res.stdout).toContain(`DRILL SCHEDULE ${schedule}`);
    expect(res.stdout).toMatch(/^probe-down\s+load-probe url=\S+\s+quarterly\s+\S+ \S+\s+FAILED\s+now\s+OVERDUE$/m);
    const html = readFileSync(output, 'utf8');
    expect(html).toContain('<h2>Drill schedule</h2>');
    const row = (id: string) => html.match(new RegExp(`<tr data-drill-due="${id}"[^]*?</tr>`))?.[0] ?? '';
    expect(row('probe')).toContain('data-overdue="false"');
    expect(row('probe')).toContain('>failed</span>'); // its newest run, the refused one
    expect(row('probe-down')).toContain('data-overdue="true"');
    expect(row('probe-down')).toMatch(/<td style="color:#d23c3c;font-weight:600">now \(never passed\)<\/td>/);
    expect(row('whole-system')).toContain('never run');
    expect(html).toContain('2 of 3 overdue');
  });

  it('--metrics writes textfile metrics promtool accepts, with the due time of each entry', async () => {
    const file = join(work, 'cairn-drills.prom');
    const res = await runCairn(['drill', '--due', '--schedule', schedule, '--metrics', file, '--json'], { env });
    expect(res.code).toBe(3);
    const text = readFileSync(file, 'utf8');
    const ok = dueLines(res.stdout).get('probe')!;
    expect(text).toContain(
      `cairn_drill_next_due_timestamp_seconds{id="probe",drill="load-probe",every="monthly"} ${Math.floor(Date.parse(ok.nextDue!) / 1000)}`,
    );
    expect(text).toContain(
      'cairn_drill_next_due_timestamp_seconds{id="whole-system",drill="restore",every="yearly"} 0',
    );
    const checked = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(checked.status, checked.stdout + checked.stderr).toBe(0);
  });

  it('--due --run runs the overdue drills with their options, and then nothing is due', async () => {
    const runState = join(work, 'run-state');
    const runSchedule = join(work, 'run-drills.yaml');
    writeFileSync(
      runSchedule,
      `drills:\n  - id: probe\n    drill: load-probe\n    every: monthly\n` +
        `    set: { url: "${url}", requests: 20, concurrency: 2, interval_ms: 0, max_p99_ms: 60000 }\n`,
    );
    const runEnv = { CAIRN_STATE_DIR: runState };
    const ran = await runCairn(['drill', '--due', '--run', '--schedule', runSchedule, '-i', inventory], {
      env: runEnv,
    });
    expect(ran.code, ran.stdout + ran.stderr).toBe(0);
    expect(ran.stdout).toContain('== probe: cairn drill load-probe');
    const again = await runCairn(['drill', '--due', '--schedule', runSchedule], { env: runEnv });
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).toContain('all 1 scheduled drills within their period');
  });

  it('a bad schedule is refused at file:line:col, and an unknown drill lists the real ones', async () => {
    const bad = join(work, 'bad.yaml');
    writeFileSync(bad, 'drills:\n  - id: x\n    drill: load-prob\n    every: monthly\n');
    const res = await runCairn(['drill', '--due', '--schedule', bad], { env });
    expect(res.code).toBe(5);
    expect(res.stderr).toMatch(
      new RegExp(`^ERROR! ${bad}:3:12: drill schedule: unknown drill "load-prob": expected one of`),
    );
    expect(res.stderr).not.toMatch(/\n\s+at /);
    // A metrics file that cannot be written is a clear error too, not a crash.
    const noDir = join(work, 'no-such-dir', 'drills.prom');
    const metrics = await runCairn(['drill', '--due', '--schedule', schedule, '--metrics', noDir], { env });
    expect(metrics.code).toBe(5);
    expect(metrics.stderr).toMatch(new RegExp(`^ERROR! --metrics: cannot write ${noDir}: ENOENT`));
  });
});
