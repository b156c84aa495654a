import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EventBus,
  type HostStats,
  type RunEvent,
  type TaskRef,
  type TaskStatus,
} from '../../runner/core/engine/events.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { hostsToRerun, latestRun, readJournal, RunJournal, runIdFor } from '../../runner/app/report/journal.js';
import { SecretMasker } from '../../runner/app/report/mask.js';

const T = '2026-11-21T12:00:00.000Z';
const task: TaskRef = { name: 'deploy', role: 'app', module: 'copy', location: 'roles/app/tasks/main.yaml:1:3' };

function result(
  host: string,
  status: TaskStatus,
  extra: Partial<Extract<RunEvent, { type: 'task_result' }>> = {},
): RunEvent {
  return { type: 'task_result', time: T, host, task, status, durationMs: 3, ...extra };
}
function stats(failed: number, unreachable: number): HostStats {
  return { ok: 1, changed: 0, unreachable, failed, skipped: 0, rescued: 0, ignored: 0 };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-journal-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Write a journal with the real RunJournal and return its path. */
function writeJournal(events: RunEvent[], runId: string, masker = new SecretMasker()): string {
  const journal = new RunJournal(masker);
  const path = journal.open(join(dir, 'runs'), runId);
  const bus = new EventBus();
  journal.attach(bus);
  for (const e of events) bus.emit(e);
  journal.close();
  return path;
}

describe('run ids', () => {
  it('are the ISO time made filename-safe, and sort by time', () => {
    expect(runIdFor(new Date('2026-11-21T12:00:00.123Z'))).toBe('2026-11-21T12-00-00-123Z');
    expect(runIdFor(new Date('2026-11-21T09:59:59.999Z')) < runIdFor(new Date('2026-11-21T10:00:00.000Z'))).toBe(true);
  });
});

describe('RunJournal', () => {
  it('appends every event as one masked JSON line, readable before close (no buffering)', () => {
    const masker = new SecretMasker();
    masker.add('vault-Secret-77');
    const journal = new RunJournal(masker);
    const path = journal.open(join(dir, 'nested', 'runs'), '2026-11-21T12-00-00-123Z');
    expect(path).toBe(join(dir, 'nested', 'runs', '2026-11-21T12-00-00-123Z.ndjson'));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const bus = new EventBus();
    journal.attach(bus);
    bus.emit({
      type: 'run_start',
      time: T,
      runId: '2026-11-21T12-00-00-123Z',
      command: 'apply',
      check: false,
      diff: false,
      inventory: 'inv.yaml',
    });
    bus.emit(result('web1', 'changed', { result: { stdout: 'token vault-Secret-77 set' }, item: 'vault-Secret-77' }));
    // Not closed: what a crash would leave behind is already complete on disk.
    const onDisk = readFileSync(path, 'utf8');
    expect(onDisk.split('\n')).toHaveLength(3);
    expect(onDisk).not.toContain('vault-Secret-77');
    const events = readJournal(path);
    expect(events.map((e) => e.type)).toEqual(['run_start', 'task_result']);
    expect(events[1]).toMatchObject({ item: '********', result: { stdout: 'token ******** set' } });
    journal.close();
    bus.emit({ type: 'warning', time: T, msg: 'after close' });
    expect(readJournal(path)).toHaveLength(2);
  });

  it('refuses to reuse another run journal and unsafe run ids', () => {
    writeJournal([], 'r1');
    expect(() => new RunJournal(new SecretMasker()).open(join(dir, 'runs'), 'r1')).toThrow(CairnError);
    expect(() => new RunJournal(new SecretMasker()).open(join(dir, 'runs'), '../escape')).toThrow(/not filename-safe/);
    expect(() => new RunJournal(new SecretMasker()).append({ type: 'warning', time: T, msg: 'x' })).toThrow(/not open/);
  });
});

describe('readJournal', () => {
  it('drops a torn last line (a crash mid-write) and keeps everything before it', () => {
    const path = writeJournal([result('web1', 'ok'), result('web2', 'failed')], 'torn');
    appendFileSync(path, '{"type":"task_result","host":"web3","sta');
    const events = readJournal(path);
    expect(events).toHaveLength(2);
    expect(events.map((e) => ('host' in e ? e.host : ''))).toEqual(['web1', 'web2']);
  });

  it('rejects a corrupt line in the middle, naming file and line', () => {
    const path = join(dir, 'bad.ndjson');
    writeFileSync(path, '{"type":"warning","time":"t","msg":"a"}\nnot json\n{"type":"warning","time":"t","msg":"b"}\n');
    expect(() => readJournal(path)).toThrow(CairnError);
    try {
      readJournal(path);
    } catch (err) {
      expect((err as CairnError).render()).toBe(
        `${path}:2: run journal line is not JSON: expected one event object per line`,
      );
    }
  });
});

describe('latestRun', () => {
  it('finds the newest journal by the time in its run id, ignoring other files', () => {
    expect(latestRun(join(dir, 'runs'))).toBeUndefined();
    const older = writeJournal([], '2026-11-21T12-00-00-000Z');
    const newer = writeJournal([], '2026-11-21T12-00-01-000Z');
    // Make the older one the most recently modified: the run id's time still wins.
    const future = new Date(Date.now() + 60_000);
    utimesSync(older, future, future);
    writeFileSync(join(dir, 'runs', 'notes.txt'), 'x');
    mkdirSync(join(dir, 'runs', 'sub.ndjson'));
    expect(latestRun(join(dir, 'runs'))).toBe(newer);
  });
});

describe('hostsToRerun', () => {
  it('takes hosts whose last recap shows failed or unreachable', () => {
    const path = writeJournal(
      [
        result('web1', 'failed'),
        { type: 'recap', time: T, stats: { web1: stats(1, 0), web2: stats(0, 0), db1: stats(0, 1) } },
        // A later recap (e.g. after a rerun in the same journal) wins.
        { type: 'recap', time: T, stats: { web1: stats(0, 0), web2: stats(2, 0), db1: stats(0, 1) } },
        { type: 'run_end', time: T, exitCode: 4, durationMs: 1, interrupted: false },
      ],
      'recap',
    );
    expect(hostsToRerun(path)).toEqual(['web2', 'db1']);
  });

  it('without a recap (interrupted run), takes hosts with failed, unreachable or interrupted results', () => {
    const path = writeJournal(
      [
        result('web1', 'ok'),
        result('web2', 'failed'),
        result('web3', 'failed', { ignored: true }),
        result('db1', 'unreachable'),
        result('db2', 'interrupted'),
        { type: 'host_failed', time: T, host: 'lb1', msg: 'any_errors_fatal' },
        result('web4', 'changed'),
      ],
      'interrupted',
    );
    expect(hostsToRerun(path)).toEqual(['web2', 'db1', 'db2', 'lb1']);
  });

  it('also takes interrupted hosts and failed verifications when there is a recap', () => {
    const path = writeJournal(
      [
        result('web1', 'interrupted'),
        { type: 'verify_result', time: T, host: 'web2', role: 'app', check: 'health', passed: false, msg: '503' },
        { type: 'recap', time: T, stats: { web1: stats(0, 0), web2: stats(0, 0), web3: stats(1, 0) } },
      ],
      'mixed',
    );
    expect(hostsToRerun(path)).toEqual(['web1', 'web2', 'web3']);
  });

  it('is empty for a clean run', () => {
    const path = writeJournal(
      [result('web1', 'changed'), { type: 'recap', time: T, stats: { web1: stats(0, 0) } }],
      'clean',
    );
    expect(hostsToRerun(path)).toEqual([]);
  });
});
