/**
 * systemd: planning from `systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload`.
 * The development container does not run systemd (PID 1 is not systemd; `systemctl show` there answers
 * "System has not been booted with systemd as init system (PID 1). Can't operate." / "Failed to connect to
 * bus: Host is down", captured and used below). The unit outputs are in systemctl's documented KEY=value
 * form with the documented state values (org.freedesktop.systemd1(5): LoadState loaded/not-found/masked,
 * ActiveState active/inactive/failed/activating..., UnitFileState enabled/disabled/static/masked...).
 */
import { describe, expect, it } from 'vitest';
import {
  parseSystemctlShow,
  planSystemd,
  systemdApplyScript,
  systemdModule,
  type SystemdArgs,
} from '../../../runner/core/modules/systemd.js';
import { FakeConnection, contextFor } from '../../helpers/fake-connection.js';

const show = (
  load: string,
  active: string,
  file: string,
  needReload = 'no',
  sub = active === 'active' ? 'running' : 'dead',
) =>
  `Id=haproxy.service\nNeedDaemonReload=${needReload}\nLoadState=${load}\nActiveState=${active}\nSubState=${sub}\nUnitFileState=${file}\n`;

const running = parseSystemctlShow(show('loaded', 'active', 'enabled'));
const stopped = parseSystemctlShow(show('loaded', 'inactive', 'disabled'));
const failed = parseSystemctlShow(show('loaded', 'failed', 'enabled', 'no', 'failed'));
const masked = parseSystemctlShow(show('masked', 'inactive', 'masked'));
const missing = parseSystemctlShow(show('not-found', 'inactive', ''));
const changedOnDisk = parseSystemctlShow(show('loaded', 'active', 'enabled', 'yes'));
const staticUnit = parseSystemctlShow(show('loaded', 'inactive', 'static'));

const n = 'haproxy.service';

describe('planSystemd', () => {
  it.each([
    ['started and running', { name: n, state: 'started' }, running, []],
    ['started when stopped', { name: n, state: 'started' }, stopped, ['start']],
    ['started when failed', { name: n, state: 'started' }, failed, ['start']],
    ['stopped when running', { name: n, state: 'stopped' }, running, ['stop']],
    ['stopped when failed', { name: n, state: 'stopped' }, failed, []],
    ['restarted is always a change', { name: n, state: 'restarted' }, running, ['restart']],
    ['reloaded is always a change', { name: n, state: 'reloaded' }, running, ['reload']],
    ['reloaded starts a stopped unit', { name: n, state: 'reloaded' }, stopped, ['start']],
    ['enabled when disabled', { name: n, enabled: true }, stopped, ['enable']],
    ['enabled when enabled', { name: n, enabled: true }, running, []],
    ['a static unit counts as enabled', { name: n, enabled: true }, staticUnit, []],
    ['disabled when enabled', { name: n, enabled: false }, running, ['disable']],
    ['masked', { name: n, masked: true, state: 'stopped' }, running, ['stop', 'mask']],
    ['unmasked then started', { name: n, masked: false, state: 'started' }, masked, ['unmask', 'start']],
    [
      'daemon_reload when the unit changed on disk',
      { name: n, daemon_reload: true, state: 'started' },
      changedOnDisk,
      ['daemon-reload'],
    ],
    ['daemon_reload when nothing changed', { name: n, daemon_reload: true }, running, []],
  ] as Array<[string, SystemdArgs, ReturnType<typeof parseSystemctlShow>, string[]]>)('%s', (_t, args, unit, steps) => {
    const plan = planSystemd(args, unit);
    expect(plan.failed).toBeUndefined();
    expect(plan.state?.steps).toEqual(steps);
    expect(plan.changed).toBe(steps.length > 0);
    expect(plan.actions).toHaveLength(steps.length);
  });

  it('a unit that is not installed yet is planned like an inactive, disabled one, and the actions say so', () => {
    // In check mode the package install before it has not run: the plan must not fail, and must say that
    // apply will fail if the unit is still missing then.
    const started = planSystemd({ name: n, state: 'started', enabled: true }, missing);
    expect(started.failed).toBeUndefined();
    expect(started.state?.steps).toEqual(['enable', 'start']);
    expect(started.actions).toEqual([
      'enable haproxy.service: haproxy.service is not installed yet (LoadState=not-found); an earlier task must install it, or this fails',
      'start haproxy.service (was inactive): haproxy.service is not installed yet (LoadState=not-found); an earlier task must install it, or this fails',
    ]);
    // Nothing to do for a unit that should be stopped or disabled and does not exist.
    expect(planSystemd({ name: n, state: 'stopped', enabled: false }, missing)).toMatchObject({
      changed: false,
      actions: [],
    });
  });

  it('daemon_reload without a name is always planned', () => {
    expect(planSystemd({ daemon_reload: true }, undefined).actions).toEqual(['reload systemd manager configuration']);
  });

  it('the apply script runs the steps in order, each with its own exit code', () => {
    const plan = planSystemd(
      { name: n, daemon_reload: true, enabled: true, state: 'started' },
      parseSystemctlShow(show('loaded', 'inactive', 'disabled', 'yes')),
    );
    expect(systemdApplyScript(plan.state!).split('\n')).toEqual([
      'systemctl daemon-reload || exit 20',
      'systemctl enable -- haproxy.service || exit 21',
      'systemctl start -- haproxy.service || exit 22',
    ]);
  });
});

describe('systemd module', () => {
  it('one systemctl show for check, one script for apply, with become', async () => {
    const conn = new FakeConnection([
      { match: 'systemctl show', reply: { stdout: show('loaded', 'inactive', 'disabled') } },
      { match: 'systemctl enable', reply: {} },
    ]);
    const ctx = contextFor(conn, { become: true });
    const plan = await systemdModule.check(ctx, { name: n, state: 'started', enabled: true });
    expect(plan.actions).toEqual(['enable haproxy.service (was disabled)', 'start haproxy.service (was inactive)']);
    expect(conn.calls[0]!.script).toBe(
      'LC_ALL=C systemctl show -p Id,LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload -- haproxy.service',
    );
    const result = await systemdModule.apply(ctx, { name: n, state: 'started', enabled: true }, plan);
    expect(result.changed).toBe(true);
    expect(conn.calls.map((c) => c.opts.become)).toEqual([true, true]);
  });

  it('a host without systemd fails in plain words (real output of this container)', async () => {
    const conn = new FakeConnection([
      {
        match: 'systemctl show',
        reply: {
          code: 1,
          stderr:
            "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
        },
      },
    ]);
    expect((await systemdModule.check(contextFor(conn), { name: 'ssh', state: 'started' })).failed).toBe(
      'cannot query ssh: systemd is not running on this host (PID 1 is not systemd)',
    );
  });

  it('a failed step is reported by name', async () => {
    const conn = new FakeConnection([
      { match: 'systemctl show', reply: { stdout: show('loaded', 'inactive', 'enabled') } },
      {
        match: 'systemctl start',
        reply: {
          code: 20,
          stderr: 'Job for haproxy.service failed because the control process exited with error code.\n',
        },
      },
    ]);
    const ctx = contextFor(conn);
    const result = await systemdModule.apply(
      ctx,
      { name: n, state: 'started' },
      await systemdModule.check(ctx, { name: n, state: 'started' }),
    );
    expect(result.msg).toBe(
      'systemctl start haproxy.service failed: Job for haproxy.service failed because the control process exited with error code.',
    );
  });

  it('refuses odd unit names before any remote call', async () => {
    const conn = new FakeConnection([]);
    await expect(systemdModule.check(contextFor(conn), { name: 'x; reboot', state: 'started' })).rejects.toThrow(
      /is not a unit name/,
    );
    expect(conn.calls).toHaveLength(0);
  });
});
