import { describe, expect, it } from 'vitest';
import { Chalk } from 'chalk';
import { renderFileDiff, renderFileDiffColored, secretHiddenNote } from '../../runner/app/report/diff.js';
import { SecretMasker } from '../../runner/app/report/mask.js';

const ESC = '\u001b[';

describe('file diffs', () => {
  it('renders a unified diff with before/after headers and 3 lines of context', () => {
    const before = [
      'global',
      '  maxconn 100',
      'defaults',
      '  mode http',
      '  timeout 5s',
      'frontend',
      '  bind :80',
      '  bind :81',
      '  x',
      '',
    ].join('\n');
    const after = before.replace('maxconn 100', 'maxconn 4096');
    const text = renderFileDiff({ path: '/etc/haproxy/haproxy.cfg', before, after }, new SecretMasker());
    expect(text).toBe(
      [
        '--- before: /etc/haproxy/haproxy.cfg',
        '+++ after: /etc/haproxy/haproxy.cfg',
        '@@ -1,5 +1,5 @@',
        ' global',
        '-  maxconn 100',
        '+  maxconn 4096',
        ' defaults',
        '   mode http',
        '   timeout 5s',
      ].join('\n'),
    );
  });

  it('lists attribute changes, with no content hunk when only attributes changed', () => {
    const masker = new SecretMasker();
    const text = renderFileDiff(
      { path: '/etc/app.conf', before: 'a\n', after: 'a\n', attributes: ['mode 0644 -> 0600', 'owner root -> app'] },
      masker,
    );
    expect(text).toBe('/etc/app.conf: mode 0644 -> 0600\n/etc/app.conf: owner root -> app');
  });

  it('shows a created file as all additions and says it was absent', () => {
    const text = renderFileDiff(
      { path: '/etc/motd', before: '', after: 'hello\n', beforeMissing: true, attributes: ['mode 0644'] },
      new SecretMasker(),
    );
    expect(text).toBe(
      [
        '--- before: /etc/motd',
        '+++ after: /etc/motd',
        '@@ -0,0 +1,1 @@',
        '+hello',
        '/etc/motd: absent -> present',
        '/etc/motd: mode 0644',
      ].join('\n'),
    );
  });

  it('is empty when nothing changed', () => {
    expect(renderFileDiff({ path: '/x', before: 'same\n', after: 'same\n' }, new SecretMasker())).toBe('');
  });

  it('hides the whole content when either side holds a secret, keeping attributes', () => {
    const masker = new SecretMasker();
    masker.add('db-pass-9f2k');
    const before = 'user=app\npassword=old\nport=5432\n';
    const after = 'user=app\npassword=db-pass-9f2k\nport=5432\n';
    const forward = renderFileDiff(
      { path: '/etc/app/db.ini', before, after, attributes: ['mode 0644 -> 0600'] },
      masker,
    );
    expect(forward).toBe(`${secretHiddenNote('/etc/app/db.ini')}\n/etc/app/db.ini: mode 0644 -> 0600`);
    expect(forward).toBe(
      '/etc/app/db.ini: content changed (contains secret values; diff hidden)\n/etc/app/db.ini: mode 0644 -> 0600',
    );
    // Removing the secret hides the diff too: the old content is just as secret.
    const backward = renderFileDiff({ path: '/etc/app/db.ini', before: after, after: before }, masker);
    expect(backward).toBe('/etc/app/db.ini: content changed (contains secret values; diff hidden)');
    // Not even unchanged context lines near the secret are shown.
    expect(backward).not.toContain('user=app');
  });

  it('colours additions green and removals red, still masked', () => {
    const chalk = new Chalk({ level: 1 });
    const text = renderFileDiffColored({ path: '/f', before: 'a\nb\n', after: 'a\nc\n' }, new SecretMasker(), chalk);
    expect(text).toContain(`${ESC}31m-b${ESC}39m`);
    expect(text).toContain(`${ESC}32m+c${ESC}39m`);
    expect(text).toContain(`${ESC}36m@@ -1,2 +1,2 @@${ESC}39m`);
    const plain = renderFileDiffColored(
      { path: '/f', before: 'a\nb\n', after: 'a\nc\n' },
      new SecretMasker(),
      new Chalk({ level: 0 }),
    );
    expect(plain).toBe(renderFileDiff({ path: '/f', before: 'a\nb\n', after: 'a\nc\n' }, new SecretMasker()));
  });

  it('masks a secret in the path or the attributes', () => {
    const masker = new SecretMasker();
    masker.add('tok3n-xyz');
    const text = renderFileDiff(
      { path: '/srv/tok3n-xyz/conf', before: 'a\n', after: 'b\n', attributes: ['owner tok3n-xyz -> root'] },
      masker,
    );
    expect(text).not.toContain('tok3n-xyz');
    expect(text).toContain('--- before: /srv/********/conf');
    expect(text).toContain('/srv/********/conf: owner ******** -> root');
  });
});
