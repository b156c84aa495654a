/**
 * user: planning from real getent/id output. The root entries were captured on the cairn development
 * container (Debian 12): `getent passwd root` -> "root:x:0:0:root:/root:/bin/bash", `id -Gn root` -> "root",
 * `getent group 0` -> "root:x:0:", `getent group adm` -> "adm:x:4:", `getent shadow root | cut -d: -f2`
 * -> "*", and an unknown group prints nothing (exit 2). The "app" user rows follow the same formats.
 */
import { describe, expect, it } from 'vitest';
import {
  parseUserProbe,
  planUser,
  userApplyScript,
  userModule,
  userProbeScript,
  type UserArgs,
} from '../../../runner/core/modules/user.js';
import { FakeConnection, contextFor, frameSections, outsideSingleQuotes } from '../../helpers/fake-connection.js';

const ROOT_PROBE = frameSections(`::cairn-section:: passwd
root:x:0:0:root:/root:/bin/bash
::cairn-section:: id
root
::cairn-section:: primary
root:x:0:
::cairn-section:: group-0
adm:x:4:
::cairn-section:: group-1
::cairn-section:: shadow
*
::cairn-section:: end
`);

const appProbe = (groups: string, extraGroups: string[] = []): string =>
  frameSections(
    [
      '::cairn-section:: passwd',
      'app:x:1001:1001:App user:/home/app:/bin/sh',
      '::cairn-section:: id',
      groups,
      '::cairn-section:: primary',
      'app:x:1001:',
      ...extraGroups.flatMap((g, i) => [`::cairn-section:: group-${i}`, g]),
      '::cairn-section:: end',
      '',
    ].join('\n'),
  );

const MISSING_PROBE = frameSections(
  '::cairn-section:: passwd\n::cairn-section:: id\n::cairn-section:: primary\n::cairn-section:: group-0\nadm:x:4:\n::cairn-section:: end\n',
);

describe('parseUserProbe', () => {
  it('reads passwd, groups, the primary group, asked groups and the hash', () => {
    const probe = parseUserProbe({ name: 'root', groups: ['adm', 'nosuchgroup'], password: '$6$x' }, ROOT_PROBE);
    expect(probe.passwd).toEqual({ name: 'root', uid: 0, gid: 0, comment: 'root', home: '/root', shell: '/bin/bash' });
    expect(probe.groupNames).toEqual(['root']);
    expect(probe.primaryGroup).toEqual({ name: 'root', gid: 0 });
    expect([...probe.knownGroups.keys()]).toEqual(['adm']);
    expect(probe.passwordHash).toBe('*');
  });
});

describe('planUser', () => {
  const plan = (args: UserArgs, out: string) => planUser(args, parseUserProbe(args, out));

  it('a group that does not exist fails', () => {
    expect(plan({ name: 'root', groups: ['adm', 'nosuchgroup'] }, ROOT_PROBE).failed).toBe(
      'Group nosuchgroup does not exist',
    );
  });

  it('creates a missing user with the given options', () => {
    const p = plan(
      { name: 'app', groups: ['adm'], shell: '/bin/bash', system: true, create_home: false, comment: 'App' },
      MISSING_PROBE,
    );
    expect(p.actions).toEqual(['create user app (groups adm, shell /bin/bash, comment "App", system)']);
    expect(userApplyScript(p.state!)).toBe('useradd -G adm -s /bin/bash -c App -r -M -- app || exit 30');
  });

  it.each([
    [
      'nothing differs',
      { name: 'app', shell: '/bin/sh', home: '/home/app', comment: 'App user', uid: 1001 },
      appProbe('app'),
      [],
      undefined,
    ],
    [
      'shell and comment',
      { name: 'app', shell: '/bin/bash', comment: 'Web' },
      appProbe('app'),
      ['change shell of app /bin/sh -> /bin/bash', 'change comment of app "App user" -> "Web"'],
      ['-s', '/bin/bash', '-c', 'Web', 'app'],
    ],
    [
      'append adds only missing groups',
      { name: 'app', groups: ['adm', 'sudo'], append: true },
      appProbe('app adm', ['adm:x:4:app', 'sudo:x:27:']),
      ['add app to sudo'],
      ['-a', '-G', 'sudo', 'app'],
    ],
    [
      'append with all present',
      { name: 'app', groups: ['adm'], append: true },
      appProbe('app adm sudo', ['adm:x:4:app']),
      [],
      undefined,
    ],
    [
      'replace drops extra groups',
      { name: 'app', groups: ['adm'] },
      appProbe('app adm sudo', ['adm:x:4:app']),
      ['set groups of app to adm (was adm,sudo)'],
      ['-G', 'adm', 'app'],
    ],
    [
      'empty groups removes all',
      { name: 'app', groups: [] },
      appProbe('app adm'),
      ['set groups of app to (none) (was adm)'],
      ['-G', '', 'app'],
    ],
    ['uid', { name: 'app', uid: 2000 }, appProbe('app'), ['change uid of app 1001 -> 2000'], ['-u', '2000', 'app']],
  ] as Array<[string, UserArgs, string, string[], string[] | undefined]>)('%s', (_t, args, out, actions, usermod) => {
    const p = plan(args, out);
    expect(p.failed).toBeUndefined();
    expect(p.actions).toEqual(actions);
    expect(p.state?.usermod).toEqual(usermod);
  });

  it('sets a password only when the hash differs, and never puts it in the script or actions', () => {
    const hash = '$6$salt$abc';
    const p = plan({ name: 'root', password: hash }, ROOT_PROBE);
    expect(p.actions).toEqual(['set the password of root']);
    expect(userApplyScript(p.state!)).toBe('chpasswd -e || exit 32');
    expect(JSON.stringify(p.actions) + JSON.stringify(p.data)).not.toContain(hash);
    expect(plan({ name: 'root', password: '*' }, ROOT_PROBE).changed).toBe(false);
  });

  it('absent removes an existing user, optionally its home', () => {
    const p = plan({ name: 'app', state: 'absent', remove: true }, appProbe('app'));
    expect(userApplyScript(p.state!)).toBe('userdel -r -- app || exit 33');
    expect(plan({ name: 'app', state: 'absent' }, MISSING_PROBE).changed).toBe(false);
  });
});

describe('user module', () => {
  it('one probe, one apply; the hash travels on stdin', async () => {
    const conn = new FakeConnection([
      { match: 'getent passwd', reply: { stdout: MISSING_PROBE } },
      { match: 'useradd', reply: {} },
    ]);
    const ctx = contextFor(conn, { become: true });
    const args = { name: 'app', password: '$6$s$h' };
    const result = await userModule.apply(ctx, args, await userModule.check(ctx, args));
    expect(result.changed).toBe(true);
    expect(conn.calls[1]!.script).toBe('useradd -m -- app || exit 30\nchpasswd -e || exit 32');
    expect(conn.calls[1]!.opts).toMatchObject({ become: true, stdin: 'app:$6$s$h\n' });
  });

  it('quotes what it probes and refuses bad names and fields', async () => {
    expect(outsideSingleQuotes(userProbeScript({ name: 'app', groups: ['$(reboot)'] }))).not.toContain('$(reboot)');
    const ctx = contextFor(new FakeConnection([]));
    await expect(userModule.check(ctx, { name: '-rf' })).rejects.toThrow(/not a valid user name/);
    await expect(userModule.check(ctx, { name: 'app', comment: 'a:b' })).rejects.toThrow(/comment cannot contain/);
  });
});
