import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { CairnError } from '../../runner/core/util/errors.js';
import { findExecutable, requireRoot, requireTools } from '../../runner/features/lab/preflight.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-lab-preflight-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lab preflight', () => {
  it('finds executables on PATH, and only executable files', () => {
    const tool = join(dir, 'cairn-fake-tool');
    writeFileSync(tool, '#!/bin/sh\n');
    expect(findExecutable('cairn-fake-tool', dir)).toBeUndefined();
    chmodSync(tool, 0o755);
    expect(findExecutable('cairn-fake-tool', dir)).toBe(tool);
    expect(findExecutable('sh')).toMatch(/\/sh$/);
  });

  it('names the package to install when a tool is missing, in one sentence', () => {
    let err: unknown;
    try {
      requireTools([{ command: 'cairn-no-such-nspawn', pkg: 'systemd-container' }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CairnError);
    expect((err as CairnError).kind).toBe('options');
    expect((err as CairnError).message).toBe(
      'cairn-no-such-nspawn is missing: install the systemd-container package (apt-get install systemd-container, or run scripts/lab-prereqs.sh).',
    );
    expect(() => requireTools([{ command: 'sh', pkg: 'dash' }])).not.toThrow();
  });

  it('refuses when not root', () => {
    // Running the test suite as another user is not possible here; only the uid the check reads is replaced.
    const spy = vi.spyOn(process, 'getuid').mockReturnValue(1000);
    try {
      expect(() => requireRoot('up')).toThrow(
        'cairn lab up must run as root: the lab creates a bridge, mounts overlays and boots containers.',
      );
    } finally {
      spy.mockRestore();
    }
  });
});
