import { describe, expect, it } from 'vitest';
import { EventBus, type RunEvent, type TaskRef, type TaskStatus } from '../../runner/core/engine/events.js';
import { ExitCode } from '../../runner/core/util/errors.js';
import { RecapCollector } from '../../runner/app/report/recap.js';

const T = '2026-11-21T12:00:00.000Z';

function task(name: string, line = 1, role = 'web'): TaskRef {
  return { name, role, module: 'command', location: `roles/${role}/tasks/main.yaml:${line}:3` };
}

function result(
  host: string,
  t: TaskRef,
  status: TaskStatus,
  extra: Partial<Extract<RunEvent, { type: 'task_result' }>> = {},
): RunEvent {
  return { type: 'task_result', time: T, host, task: t, status, durationMs: 5, ...extra };
}

function collect(events: RunEvent[]): RecapCollector {
  const bus = new EventBus();
  const collector = new RecapCollector(bus);
  for (const event of events) bus.emit(event);
  return collector;
}

const noOpts = { check: false, detailedExitcode: false, interrupted: false };

describe('RecapCollector', () => {
  it('counts as Ansible does: changed is also ok, ignored failures are ok+ignored, failures only failed', () => {
    const c = collect([
      result('web1', task('a', 1), 'ok'),
      result('web1', task('b', 2), 'changed'),
      result('web1', task('c', 3), 'skipped'),
      result('web1', task('d', 4), 'failed', { ignored: true }),
      result('web1', task('e', 5), 'failed'),
      result('lb1', task('a', 1), 'unreachable'),
    ]);
    expect(c.stats()).toEqual({
      web1: { ok: 3, changed: 1, unreachable: 0, failed: 1, skipped: 1, rescued: 0, ignored: 1 },
      lb1: { ok: 0, changed: 0, unreachable: 1, failed: 0, skipped: 0, rescued: 0, ignored: 0 },
    });
  });

  it('counts a looped task once, from its summary when there is one', () => {
    const t = task('users', 7);
    const c = collect([
      result('web1', t, 'ok', { item: 'alice' }),
      result('web1', t, 'changed', { item: 'bob' }),
      result('web1', t, 'skipped', { item: 'carol' }),
      result('web1', t, 'changed', { loopSummary: true }),
      // The same task again right after (e.g. a second play): a new count.
      result('web1', t, 'ok', { item: 'alice' }),
      result('web1', t, 'ok', { loopSummary: true }),
    ]);
    expect(c.stats().web1).toEqual({
      ok: 2,
      changed: 1,
      unreachable: 0,
      failed: 0,
      skipped: 0,
      rescued: 0,
      ignored: 0,
    });
  });

  it('folds loop items when no summary follows (a loop cut short by an unreachable host)', () => {
    const t = task('pkgs', 9);
    const c = collect([
      result('web1', t, 'changed', { item: 'nginx' }),
      result('web1', t, 'unreachable', { item: 'haproxy' }),
      { type: 'host_unreachable', time: T, host: 'web1', msg: 'connection reset' },
      result('web2', t, 'skipped', { item: 'nginx' }),
      result('web2', t, 'skipped', { item: 'haproxy' }),
    ]);
    expect(c.stats().web1).toMatchObject({ ok: 0, changed: 0, unreachable: 1 });
    expect(c.stats().web2).toMatchObject({ ok: 0, skipped: 1 });
  });

  it('does not count verification tasks, but a failed verify_result fails the host', () => {
    const c = collect([
      result('web1', task('deploy', 1), 'changed'),
      result('web1', task('port open', 1, 'nginx'), 'failed', { verify: true }),
      {
        type: 'verify_result',
        time: T,
        host: 'web1',
        role: 'nginx',
        check: 'port open',
        passed: false,
        msg: 'refused',
      },
    ]);
    expect(c.stats().web1).toEqual({
      ok: 1,
      changed: 1,
      unreachable: 0,
      failed: 0,
      skipped: 0,
      rescued: 0,
      ignored: 0,
    });
    expect(c.exitCode(noOpts)).toBe(ExitCode.hostFailed);
  });

  it('counts a host lost outside any task as unreachable once', () => {
    const c = collect([{ type: 'host_unreachable', time: T, host: 'db1', msg: 'no route to host' }]);
    expect(c.stats().db1).toMatchObject({ unreachable: 1 });
    expect(c.exitCode(noOpts)).toBe(ExitCode.hostUnreachable);
  });

  it('handlers count like tasks; an unreachable result with ignore counts ok+ignored', () => {
    const c = collect([
      result('web1', task('restart', 1), 'changed', { handler: true }),
      result('web1', task('probe', 2), 'unreachable', { ignored: true }),
    ]);
    expect(c.stats().web1).toEqual({
      ok: 2,
      changed: 1,
      unreachable: 0,
      failed: 0,
      skipped: 0,
      rescued: 0,
      ignored: 1,
    });
  });

  describe('exit codes', () => {
    it('0 when all went well, changes or not', () => {
      expect(collect([result('a', task('x'), 'changed')]).exitCode(noOpts)).toBe(0);
      expect(collect([]).exitCode(noOpts)).toBe(0);
    });

    it('2 when a host failed; ignored failures do not count', () => {
      expect(collect([result('a', task('x'), 'failed')]).exitCode(noOpts)).toBe(2);
      expect(collect([result('a', task('x'), 'failed', { ignored: true })]).exitCode(noOpts)).toBe(0);
      expect(collect([{ type: 'host_failed', time: T, host: 'a', msg: 'any_errors_fatal' }]).exitCode(noOpts)).toBe(2);
    });

    it('4 when a host was unreachable, even if another failed (Ansible checks unreachable first)', () => {
      const c = collect([result('a', task('x'), 'failed'), result('b', task('x'), 'unreachable')]);
      expect(c.exitCode(noOpts)).toBe(4);
    });

    it('3 only with --check --detailed-exitcode, changes pending and nothing failed', () => {
      const changed = collect([result('a', task('x'), 'changed', { check: true })]);
      expect(changed.exitCode({ check: true, detailedExitcode: true, interrupted: false })).toBe(3);
      expect(changed.exitCode({ check: true, detailedExitcode: false, interrupted: false })).toBe(0);
      expect(changed.exitCode({ check: false, detailedExitcode: true, interrupted: false })).toBe(0);
      const unchanged = collect([result('a', task('x'), 'ok')]);
      expect(unchanged.exitCode({ check: true, detailedExitcode: true, interrupted: false })).toBe(0);
      const failedToo = collect([result('a', task('x'), 'changed'), result('b', task('x'), 'failed')]);
      expect(failedToo.exitCode({ check: true, detailedExitcode: true, interrupted: false })).toBe(2);
    });

    it('99 when interrupted, whatever else happened', () => {
      const c = collect([result('a', task('x'), 'unreachable'), result('b', task('y'), 'interrupted')]);
      expect(c.exitCode({ check: false, detailedExitcode: false, interrupted: true })).toBe(99);
      expect(c.interruptedHosts()).toEqual(['b']);
    });
  });

  it('holds at most one task slot per host, however many tasks ran (1000 hosts × 50 tasks)', () => {
    const bus = new EventBus();
    const c = new RecapCollector(bus);
    const hosts = Array.from({ length: 1000 }, (_, i) => `h${i}`);
    for (let t = 0; t < 50; t++) {
      for (const host of hosts) {
        // Task 10 is a loop with no summary (cut short), task 20 a loop with one; the rest plain.
        if (t === 10 || t === 20) {
          bus.emit(result(host, task(`t${t}`, t), 'ok', { item: 'a' }));
          bus.emit(result(host, task(`t${t}`, t), 'changed', { item: 'b' }));
          if (t === 20) bus.emit(result(host, task(`t${t}`, t), 'changed', { loopSummary: true }));
        } else {
          bus.emit(result(host, task(`t${t}`, t), t % 2 === 0 ? 'changed' : 'ok'));
        }
      }
      expect(c.slotsHeld()).toBeLessThanOrEqual(hosts.length);
    }
    // Only an open loop is held, and only while it is the host's last task.
    expect(c.slotsHeld()).toBe(0);
    bus.emit(result('h1', task('last', 99), 'ok', { item: 'x' }));
    expect(c.slotsHeld()).toBe(1);
    const stats = c.stats();
    expect(Object.keys(stats)).toHaveLength(1000);
    // 25 even tasks changed (10 and 20 among them), the other 25 ok; h1 has one more, still open, loop.
    expect(stats.h0).toEqual({ ok: 50, changed: 25, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 });
    expect(stats.h1).toEqual({ ok: 51, changed: 25, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 });
  });

  it('remembers an interrupted task after the host went on, and an open loop interrupted', () => {
    const c = collect([
      result('a', task('x', 1), 'interrupted'),
      result('a', task('y', 2), 'ok'),
      result('b', task('x', 1), 'ok', { item: 1 }),
      result('b', task('x', 1), 'interrupted', { item: 2 }),
      result('c', task('x', 1), 'ok'),
    ]);
    expect(c.interruptedHosts()).toEqual(['a', 'b']);
    expect(c.stats().a).toMatchObject({ ok: 1 });
  });

  it('stops counting after detach', () => {
    const bus = new EventBus();
    const c = new RecapCollector(bus);
    bus.emit(result('a', task('x'), 'ok'));
    c.detach();
    bus.emit(result('a', task('y'), 'failed'));
    expect(c.stats().a).toMatchObject({ ok: 1, failed: 0 });
  });
});
