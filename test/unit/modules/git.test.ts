/**
 * git's pure parts: ls-remote output (validated) and what a version names on the remote, as Ansible's
 * get_remote_head decides it. Cloning and updating are in test/integration/modules-exact.test.ts (real sshd,
 * a bare repository on the host).
 */
import { describe, expect, it } from 'vitest';
import { parseLsRemote, resolveVersion } from '../../../runner/core/modules/git.js';
import { ProbeError } from '../../../runner/core/modules/remote.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const D = 'd'.repeat(40);
const refs = parseLsRemote(
  `${A}\tHEAD\n${A}\trefs/heads/main\n${B}\trefs/heads/dev\n${C}\trefs/tags/v1\n${D}\trefs/tags/v1^{}\n${B}\trefs/tags/light\n`,
);

describe('parseLsRemote', () => {
  it('reads sha and ref', () => {
    expect(refs.get('refs/tags/v1^{}')).toBe(D);
    expect(refs.size).toBe(6);
  });
  it.each([
    ['a short sha', `abc\tHEAD\n`],
    ['a space instead of a tab', `${A} HEAD\n`],
    ['a ref with a space', `${A}\trefs/heads/a b\n`],
    ['an error message', 'fatal: not a repository\n'],
  ])('refuses %s', (_name, text) => {
    expect(() => parseLsRemote(text)).toThrow(ProbeError);
  });
});

describe('resolveVersion', () => {
  it.each([
    ['HEAD', { kind: 'head', sha: A, branch: 'main' }],
    ['dev', { kind: 'branch', sha: B, branch: 'dev' }],
    ['v1', { kind: 'tag', sha: D }], // an annotated tag: the commit it points to
    ['light', { kind: 'tag', sha: B }],
    [C, { kind: 'commit', sha: C }],
  ])('%s', (version, expected) => {
    expect(resolveVersion(version, refs, 'main')).toEqual(expected);
  });

  it('a name that is no branch, tag or full commit id fails as Ansible does', () => {
    expect(() => resolveVersion('nope', refs, 'main')).toThrow(/Could not determine remote revision for nope/);
    expect(() => resolveVersion('abc123', refs, 'main')).toThrow(ProbeError);
  });

  it('an empty repository has no HEAD', () => {
    expect(() => resolveVersion('HEAD', new Map(), undefined)).toThrow(/Could not determine remote revision for HEAD/);
  });
});
