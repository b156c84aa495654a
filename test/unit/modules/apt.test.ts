/**
 * apt: parsing and planning from real probe output. DPKG and POLICY below were captured on the cairn
 * development container (Debian 12 bookworm) with the exact commands aptProbeScript runs:
 *   dpkg-query -W -f='${Package}\t${Status}\t${Version}\n' coreutils hello cairn-no-such-package
 *   LC_ALL=C apt-cache policy coreutils hello cairn-no-such-package
 * (dpkg-query prints nothing for unknown or never-installed names; apt-cache policy prints nothing for
 * unknown names.) REMOVED_LINE is dpkg's status for a package removed with its config files kept, in the
 * same format ("deinstall ok config-files"; dpkg-query(1), Status field).
 */
import { describe, expect, it } from 'vitest';
import {
  aptApplyScript,
  aptModule,
  parseAptPolicy,
  parseDpkgQuery,
  planApt,
  type AptArgs,
} from '../../../runner/core/modules/apt.js';
import { FakeConnection, contextFor, frameSections, outsideSingleQuotes } from '../../helpers/fake-connection.js';

const DPKG = 'coreutils\tinstall ok installed\t9.1-1\n';
const REMOVED_LINE = 'nginx\tdeinstall ok config-files\t1.22.1-9\n';
const POLICY = `coreutils:
  Installed: 9.1-1
  Candidate: 9.1-1
  Version table:
 *** 9.1-1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
hello:
  Installed: (none)
  Candidate: 2.10-3
  Version table:
     2.10-3 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
`;
/** curl on the same container: installed 7.88.1-10+deb12u15 is the candidate; an older build shows as outdated. */
const POLICY_OUTDATED = `curl:
  Installed: 7.88.1-10+deb12u5
  Candidate: 7.88.1-10+deb12u15
  Version table:
     7.88.1-10+deb12u15 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 7.88.1-10+deb12u5 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
        100 /var/lib/dpkg/status
`;

const dpkg = parseDpkgQuery(DPKG + REMOVED_LINE + 'curl\tinstall ok installed\t7.88.1-10+deb12u5\n');
const policy = new Map([...parseAptPolicy(POLICY), ...parseAptPolicy(POLICY_OUTDATED)]);

describe('parsers', () => {
  it('dpkg-query status and version', () => {
    expect(dpkg.get('coreutils')).toEqual({ installed: true, configFiles: false, version: '9.1-1' });
    expect(dpkg.get('nginx')).toEqual({ installed: false, configFiles: true, version: '1.22.1-9' });
    expect(dpkg.has('hello')).toBe(false);
  });

  it('apt-cache policy installed and candidate', () => {
    expect(policy.get('coreutils')).toEqual({ installed: '9.1-1', candidate: '9.1-1' });
    expect(policy.get('hello')).toEqual({ candidate: '2.10-3' });
    expect(policy.get('curl')).toEqual({ installed: '7.88.1-10+deb12u5', candidate: '7.88.1-10+deb12u15' });
  });
});

describe('planApt', () => {
  const plan = (args: AptArgs, age?: number) =>
    planApt(args, typeof args.name === 'string' ? [args.name] : (args.name ?? []), dpkg, policy, age);

  it.each([
    ['present, installed', { name: 'coreutils' }, []],
    ['present, missing', { name: ['coreutils', 'hello'] }, ['install hello 2.10-3']],
    ['present with a version', { name: 'hello=2.10-3' }, ['install hello 2.10-3']],
    ['installed at another version', { name: 'coreutils=9.1-2' }, ['change coreutils 9.1-1 -> 9.1-2']],
    ['latest, current', { name: 'coreutils', state: 'latest' }, []],
    ['latest, outdated', { name: 'curl', state: 'latest' }, ['upgrade curl 7.88.1-10+deb12u5 -> 7.88.1-10+deb12u15']],
    ['present does not upgrade', { name: 'curl' }, []],
    ['absent, installed', { name: 'coreutils', state: 'absent' }, ['remove coreutils 9.1-1']],
    ['absent, config files only', { name: 'nginx', state: 'absent' }, []],
    ['absent with purge, config files only', { name: 'nginx', state: 'absent', purge: true }, ['purge nginx']],
    ['absent, never installed', { name: 'hello', state: 'absent' }, []],
  ] as Array<[string, AptArgs, string[]]>)('%s', (_n, args, actions) => {
    const p = plan(args);
    expect(p.failed).toBeUndefined();
    expect(p.actions).toEqual(actions);
    expect(p.changed).toBe(actions.length > 0);
  });

  it('an unknown package fails in check', () => {
    expect(planApt({ name: 'nope' }, ['nope'], dpkg, policy, undefined).failed).toBe(
      "No package matching 'nope' is available",
    );
  });

  it('cache_valid_time updates only an old cache; update_cache alone always updates', () => {
    expect(plan({ name: 'coreutils', cache_valid_time: 3600 }, 462).actions).toEqual([]);
    expect(plan({ name: 'coreutils', cache_valid_time: 3600 }, 7200).actions).toEqual(['update the apt cache']);
    expect(plan({ update_cache: true }, 10).actions).toEqual(['update the apt cache']);
  });
});

describe('apt apply', () => {
  it('runs apt-get once, non-interactive, keeping config files, naming exactly the planned packages', () => {
    const p = planApt({ name: ['coreutils', 'hello'], update_cache: true }, ['coreutils', 'hello'], dpkg, policy, 10);
    expect(aptApplyScript(p.state!).split('\n')).toEqual([
      'export DEBIAN_FRONTEND=noninteractive',
      'apt-get -q update || exit 10',
      'apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=120 --no-install-recommends install -- hello || exit 11',
    ]);
    const purge = planApt({ name: 'coreutils', state: 'absent', purge: true }, ['coreutils'], dpkg, policy, undefined);
    expect(aptApplyScript(purge.state!)).toContain('--purge remove -- coreutils || exit 12');
  });

  it('check is one round trip; apply one more, with become; hostile names are refused before any', async () => {
    const conn = new FakeConnection([
      {
        match: 'dpkg-query',
        reply: {
          stdout: frameSections(
            `::cairn-section:: dpkg\n${DPKG}::cairn-section:: policy\n${POLICY}::cairn-section:: end\n`,
          ),
        },
      },
      { match: 'apt-get', reply: { stdout: 'Setting up hello (2.10-3) ...\n' } },
    ]);
    const ctx = contextFor(conn, { become: true });
    const plan = await aptModule.check(ctx, { name: ['coreutils', 'hello'] });
    const result = await aptModule.apply(ctx, { name: ['coreutils', 'hello'] }, plan);
    expect(result).toMatchObject({
      changed: true,
      data: {
        packages: { installed: ['hello'], upgraded: [], removed: [] },
        stdout_lines: ['Setting up hello (2.10-3) ...'],
      },
    });
    expect(conn.calls.map((c) => c.opts.become)).toEqual([true, true]);
    expect(outsideSingleQuotes(conn.calls[0]!.script)).toContain('dpkg-query -W -f=');
    await expect(aptModule.check(ctx, { name: 'x; reboot' })).rejects.toThrow(/is not a Debian package name/);
    expect(conn.calls).toHaveLength(2);
  });

  it('reports which apt-get step failed', async () => {
    const conn = new FakeConnection([
      {
        match: 'dpkg-query',
        reply: {
          stdout: frameSections(`::cairn-section:: dpkg\n::cairn-section:: policy\n${POLICY}::cairn-section:: end\n`),
        },
      },
      { match: 'apt-get', reply: { code: 11, stderr: 'E: Unable to fetch some archives\n' } },
    ]);
    const ctx = contextFor(conn);
    const result = await aptModule.apply(ctx, { name: 'hello' }, await aptModule.check(ctx, { name: 'hello' }));
    expect(result).toMatchObject({ failed: true, msg: 'installing hello failed: E: Unable to fetch some archives' });
  });
});
