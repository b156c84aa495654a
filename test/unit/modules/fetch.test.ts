/**
 * fetch's pure parts: Ansible's controller layout (and the refusals that keep it under dest) and the host's
 * answer about src, validated. The transfer itself is in test/integration/modules-exact.test.ts (real sshd).
 */
import { describe, expect, it } from 'vitest';
import { localPath, parseRemoteFile } from '../../../runner/core/modules/fetch.js';
import { ProbeError } from '../../../runner/core/modules/remote.js';

describe('localPath', () => {
  it.each([
    ['host layout', { src: '/etc/hosts', dest: '/backup' }, 'web1', '/backup', ['web1', 'etc', 'hosts']],
    [
      "relative dest is the playbook folder's",
      { src: '/etc/hosts', dest: 'out' },
      'web1',
      '/play/out',
      ['web1', 'etc', 'hosts'],
    ],
    ['relative src', { src: 'logs/a.log', dest: '/b/' }, 'db', '/b', ['db', 'logs', 'a.log']],
    ['flat to a file', { src: '/etc/hosts', dest: '/b/hosts-web1', flat: true }, 'web1', '/b', ['hosts-web1']],
    ['flat into a folder', { src: '/etc/hosts', dest: '/b/', flat: true }, 'web1', '/b', ['hosts']],
    ['dot components dropped', { src: '/etc/./hosts', dest: '/b' }, 'h', '/b', ['h', 'etc', 'hosts']],
  ])('%s', (_name, args, host, base, rest) => {
    expect(localPath(args, host, '/play')).toEqual({ base, rest });
  });

  it.each([
    ['src with ..', { src: '/etc/../root/.ssh/id_rsa', dest: '/b' }, 'h', /src .* has a '\.\.' component/],
    ['flat src ..', { src: '/etc/..', dest: '/b/', flat: true }, 'h', /'\.\.' component/],
    ['host name with a slash', { src: '/etc/hosts', dest: '/b' }, 'a/b', /cannot be a folder name/],
    ['host name ..', { src: '/etc/hosts', dest: '/b' }, '..', /'\.\.' component/],
    ['src that names no file', { src: '/', dest: '/b' }, 'h', /names no file/],
  ])('refuses %s', (_name, args, host, message) => {
    expect(() => localPath(args, host, '/play')).toThrow(message);
  });
});

describe('parseRemoteFile', () => {
  const sha1 = 'a'.repeat(40);
  it.each([
    ['type=absent\n', { type: 'absent' }],
    ['type=directory\n', { type: 'directory' }],
    ['type=unreadable\n', { type: 'unreadable' }],
    [`type=file\nsize=12\nsha1=${sha1}\n`, { type: 'file', size: 12, sha1 }],
  ])('%j', (text, expected) => {
    expect(parseRemoteFile(text)).toEqual(expected);
  });

  it.each([
    ['an unknown type', 'type=fifo\n'],
    ['a size that is not a number', `type=file\nsize=-1\nsha1=${sha1}\n`],
    ['a sha1 that is not hex', 'type=file\nsize=1\nsha1=zz\n'],
    ['a repeated key', `type=file\ntype=absent\nsize=1\nsha1=${sha1}\n`],
    ['nothing', undefined],
  ])('refuses %s', (_name, text) => {
    expect(() => parseRemoteFile(text)).toThrow(ProbeError);
  });
});
