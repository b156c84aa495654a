/**
 * service_facts and package_facts parsing, table-driven. The sysv, unit-files and dpkg rows were captured on
 * the cairn development container (Debian 12) on 2026-12-07 with the exact commands the modules run
 * (`service --status-all`, `systemctl list-unit-files --no-pager --type service --plain --no-legend`,
 * `dpkg-query -W -f ...`). PID 1 there is not systemd, so `systemctl list-units` cannot run: its rows follow
 * the column layout systemctl(1) documents for `list-units --plain --no-legend` (UNIT LOAD ACTIVE SUB
 * DESCRIPTION), the same layout Ansible's parser reads. The real round trip is in
 * test/integration/modules-exact.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseServiceFacts } from '../../../runner/core/modules/service-facts.js';
import { parsePackageFacts } from '../../../runner/core/modules/package-facts.js';

const SYSV = ' [ - ]  cron\n [ + ]  dbus\n [ - ]  haproxy\n';
const UNIT_FILES = [
  'apt-daily-upgrade.service              static   -',
  'console-getty.service                  disabled disabled',
  'cron.service                           enabled  enabled',
  'ssh.service                            enabled  enabled',
  'bad.service                            masked   enabled',
].join('\n');
const UNITS = [
  'cron.service    loaded    active   running Regular background program processing daemon',
  'ssh.service     loaded    inactive dead    OpenBSD Secure Shell server',
  'ghost.service   not-found inactive dead    ghost.service',
  'bad.service     masked    inactive dead    bad.service',
].join('\n');

describe('parseServiceFacts', () => {
  it.each([
    ['a sysv host', SYSV, '', '', { cron: 'stopped', dbus: 'running', haproxy: 'stopped' }],
    [
      'a systemd host',
      '',
      UNITS,
      UNIT_FILES,
      {
        'cron.service': 'running',
        'ssh.service': 'stopped',
        'ghost.service': 'stopped',
        'bad.service': 'stopped',
        'apt-daily-upgrade.service': 'inactive',
        'console-getty.service': 'inactive',
      },
    ],
  ])('%s: names and states', (_what, sysv, units, files, states) => {
    const services = parseServiceFacts(sysv, units, files);
    expect(Object.fromEntries(Object.entries(services).map(([k, v]) => [k, v.state]))).toEqual(states);
  });

  it("status as Ansible's: the unit file's state, a bad load state kept", () => {
    const services = parseServiceFacts('', UNITS, UNIT_FILES);
    expect(services['cron.service']).toEqual({
      name: 'cron.service',
      state: 'running',
      status: 'enabled',
      source: 'systemd',
    });
    expect(services['ghost.service']!.status).toBe('not-found');
    expect(services['bad.service']!.status).toBe('masked');
    expect(services['apt-daily-upgrade.service']!.status).toBe('static');
  });

  it('a name with structure in it is dropped, never trusted', () => {
    expect(parseServiceFacts(' [ + ]  x y\n [ + ]  $(boom)\n', '', '')).toEqual({});
  });
});

describe('parsePackageFacts', () => {
  const DPKG = 'coreutils\t9.1-1\tamd64\tii \nlibc6:amd64\t2.36-9+deb12u14\tamd64\tii \nold-pkg\t1.0\tall\trc \n';
  it('installed packages by name, multi-arch qualifier dropped, removed ones left out', () => {
    expect(parsePackageFacts(DPKG)).toEqual({
      coreutils: [{ name: 'coreutils', version: '9.1-1', arch: 'amd64', source: 'apt' }],
      libc6: [{ name: 'libc6', version: '2.36-9+deb12u14', arch: 'amd64', source: 'apt' }],
    });
  });
  it('malformed lines are refused', () => {
    expect(parsePackageFacts('bad name\t1\tamd64\tii \nx\t1\tamd64\tii \textra\n')).toEqual({});
  });
});
