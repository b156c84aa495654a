/**
 * bin/cairn.js runs the esbuild bundle (dist/bundle/cli.js) only when it is at least as new as tsc's output
 * (dist/runner/cli.js): a developer's `tsc -p tsconfig.json` after the last bundle must run the code just
 * compiled, never a stale bundle. The real bin/cairn.js is copied into a package tree of its own whose two
 * CLIs only say which one ran, with their modification times set by the test.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/cli.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-bin-'));
  mkdirSync(join(dir, 'bin'));
  copyFileSync(join(repoRoot, 'bin', 'cairn.js'), join(dir, 'bin', 'cairn.js'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}\n');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Writes dist/<which>/cli.js printing its name, modified at `at` (seconds since the epoch). */
function cli(which: 'runner' | 'bundle', at: number): void {
  mkdirSync(join(dir, 'dist', which), { recursive: true });
  const path = join(dir, 'dist', which, 'cli.js');
  writeFileSync(path, `process.stdout.write(${JSON.stringify(which)});\n`);
  utimesSync(path, at, at);
}

function run(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(dir, 'bin', 'cairn.js')], (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('bin/cairn.js picks the CLI it runs', () => {
  it('runs the bundle when it is newer than tsc’s output', async () => {
    cli('runner', 1_000_000);
    cli('bundle', 1_000_010);
    expect((await run()).stdout).toBe('bundle');
  });

  it('runs the bundle when both have the same time (npm pack gives every file one)', async () => {
    cli('runner', 499_162_500);
    cli('bundle', 499_162_500);
    expect((await run()).stdout).toBe('bundle');
  });

  it('runs tsc’s output when tsc ran after the bundle was built', async () => {
    cli('bundle', 1_000_000);
    cli('runner', 1_000_010);
    expect((await run()).stdout).toBe('runner');
  });

  it('runs tsc’s output when there is no bundle', async () => {
    cli('runner', 1_000_000);
    expect((await run()).stdout).toBe('runner');
  });

  it('says how to build when neither is there', async () => {
    const result = await run();
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('cairn is not built yet');
  });
});
