/**
 * timezone's probe parsing and plan (pure). The module runs for real in test/lab/95-compat-roles.test.ts (a
 * lab host's /etc/localtime; the loopback sshd hosts are this machine, whose zone a test must not change).
 */
import { describe, expect, it } from 'vitest';
import '../../../runner/core/modules/all.js';
import { getModule } from '../../../runner/core/modules/index.js';
import { formatSection, parseSections } from '../../../runner/core/modules/remote.js';
import {
  parseTimezoneProbe,
  planTimezone,
  probeTimezoneScript,
  zoneOfLink,
} from '../../../runner/core/modules/timezone.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('timezone', () => {
  it('is registered under its short name (community.general.timezone loads as timezone)', () => {
    expect(getModule('timezone')?.name).toBe('timezone');
  });

  it('reads the zone a /etc/localtime link names, absolute or relative', () => {
    expect(zoneOfLink('/usr/share/zoneinfo/Etc/UTC')).toBe('Etc/UTC');
    expect(zoneOfLink('../usr/share/zoneinfo/Europe/Paris')).toBe('Europe/Paris');
    expect(zoneOfLink('/etc/some-file')).toBeUndefined();
    expect(zoneOfLink(undefined)).toBeUndefined();
  });

  it('parses the framed probe and refuses a malformed one', () => {
    // readlink's own newline is not part of the target (a second run once planned "Etc/UTC\n" -> "Etc/UTC").
    const text = `available=yes\nlink=${b64('/usr/share/zoneinfo/Etc/UTC\n')}\nfile=${b64('Etc/UTC\n')}\n`;
    const framed = parseSections(formatSection('timezone', text)).get('timezone');
    expect(parseTimezoneProbe(framed)).toEqual({
      available: true,
      linkTarget: '/usr/share/zoneinfo/Etc/UTC',
      timezoneFile: 'Etc/UTC\n',
    });
    expect(() => parseTimezoneProbe('available=maybe\n')).toThrow(/malformed/);
    expect(() => parseTimezoneProbe(`available=yes\nlink=${b64('a')}\nlink=${b64('b')}\n`)).toThrow(/repeats/);
    expect(() => parseTimezoneProbe('available=yes\nlink=not base64!\n')).toThrow(/not base64/);
  });

  it('tests the zone file in the probe script', () => {
    expect(probeTimezoneScript('Europe/Paris')).toContain('[ -f /usr/share/zoneinfo/Europe/Paris ]');
  });

  it('plans nothing when the link and /etc/timezone already name the zone', () => {
    const plan = planTimezone(
      { name: 'Etc/UTC' },
      { available: true, linkTarget: '/usr/share/zoneinfo/Etc/UTC', timezoneFile: 'Etc/UTC\n' },
    );
    expect(plan.changed).toBe(false);
    expect(plan.actions).toEqual([]);
  });

  it('plans the link and the file, with a diff of the file', () => {
    const plan = planTimezone(
      { name: 'Europe/Paris' },
      { available: true, linkTarget: '/usr/share/zoneinfo/Etc/UTC', timezoneFile: 'Etc/UTC\n' },
    );
    expect(plan.changed).toBe(true);
    expect(plan.actions).toEqual([
      'link /etc/localtime -> /usr/share/zoneinfo/Europe/Paris (was Etc/UTC)',
      'write /etc/timezone: Europe/Paris',
    ]);
    expect(plan.diffs).toEqual([{ path: '/etc/timezone', before: 'Etc/UTC\n', after: 'Europe/Paris\n' }]);
    expect(plan.data).toEqual({ diff: { before: { name: 'Etc/UTC' }, after: { name: 'Europe/Paris' } } });
  });

  it('does not create /etc/timezone where the host has none; a copied /etc/localtime is relinked', () => {
    const plan = planTimezone({ name: 'Etc/UTC' }, { available: true });
    expect(plan.actions).toEqual(['link /etc/localtime -> /usr/share/zoneinfo/Etc/UTC (was not a zone link)']);
    expect(plan.state).toEqual({ relink: true, rewriteTimezoneFile: false });
  });

  it('fails as Ansible does on a zone the host does not have', () => {
    const plan = planTimezone({ name: 'Mars/Olympus' }, { available: false });
    expect(plan.failed).toBe('given timezone "Mars/Olympus" is not available');
  });
});
