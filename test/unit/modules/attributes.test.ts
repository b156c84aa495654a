import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applySymbolicMode,
  parseModeArg,
  planAttributes,
  targetMode,
} from '../../../runner/core/modules/attributes.js';
import type { FileProbe } from '../../../runner/core/modules/remote.js';

const scratch = mkdtempSync(join(tmpdir(), 'cairn-attr-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('parseModeArg', () => {
  it.each([
    ['0644', 0o644],
    ['644', 0o644],
    ['0o750', 0o750],
    ['1777', 0o1777],
    [644, 0o644],
    [755, 0o755],
  ] as Array<[string | number, number]>)('%s is octal %o', (input, bits) => {
    expect(parseModeArg(input)).toEqual({ kind: 'octal', bits });
  });

  it('keeps symbolic modes and refuses nonsense', () => {
    expect(parseModeArg('u=rw,g=r,o=')).toEqual({ kind: 'symbolic', text: 'u=rw,g=r,o=' });
    expect(() => parseModeArg(999)).toThrow(/not an octal mode/);
    expect(() => parseModeArg('rw-r--r--')).toThrow(/neither an octal mode/);
    expect(() => parseModeArg('08')).toThrow();
  });
});

describe("applySymbolicMode agrees with this machine's chmod(1)", () => {
  const clause = fc
    .tuple(
      fc.constantFrom('', 'u', 'g', 'o', 'a', 'ug', 'go'),
      fc.constantFrom('+', '-', '='),
      fc.constantFrom('', 'r', 'w', 'x', 'X', 'rw', 'rx', 'rwx', 'rwX', 's', 't', 'u', 'g'),
    )
    .map(([who, op, perms]) => `${who}${op}${perms}`);
  const modeText = fc.array(clause, { minLength: 1, maxLength: 3 }).map((clauses) => clauses.join(','));

  it('for files and directories, from random starting modes', () => {
    let n = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0o7777 }), modeText, fc.boolean(), (start, text, isDir) => {
        const path = join(scratch, `p${n++}`);
        if (isDir) mkdirSync(path);
        else writeFileSync(path, '');
        chmodSync(path, start);
        const actualStart = statSync(path).mode & 0o7777;
        // GNU chmod exits 1 (with a warning) when the umask kept a bit it was asked to change; the mode is set all the same.
        spawnSync('chmod', [text, path]);
        const real = statSync(path).mode & 0o7777;
        rmSync(path, { recursive: true, force: true });
        // chmod without `who` honours the umask of the process that runs it (this one's, 022 here).
        const umask = process.umask();
        expect(applySymbolicMode(actualStart, text, isDir, umask).toString(8)).toBe(real.toString(8));
      }),
      { numRuns: 300 },
    );
  });
});

const probe = (mode: string, owner = 'root', group = 'root'): FileProbe => ({
  path: '/f',
  type: 'file',
  mode,
  owner,
  group,
  uid: 0,
  gid: 0,
  umask: 0o022,
});

describe('planAttributes', () => {
  it('plans only what differs, by name or numeric id', () => {
    expect(planAttributes(probe('0644'), { owner: 'root', group: '0', mode: '0644' }, false, 0o022)).toEqual({
      words: [],
    });
    expect(planAttributes(probe('0644'), { owner: 'www-data', mode: 'go-r' }, false, 0o022)).toEqual({
      owner: 'www-data',
      mode: '0600',
      words: ['owner root -> www-data', 'mode 0644 -> 0600'],
    });
  });

  it('plans every given attribute for a file that does not exist yet', () => {
    expect(planAttributes(undefined, { owner: 'app', mode: 'u=rw' }, false, 0o022)).toEqual({
      owner: 'app',
      mode: '0644',
      words: ['owner app', 'mode 0644'],
    });
  });

  it('targetMode starts a new directory from 0777 minus the umask', () => {
    expect(targetMode({ kind: 'symbolic', text: 'o-rx' }, undefined, true, 0o022)).toBe('0750');
  });
});
