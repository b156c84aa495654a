/**
 * bin/cairn.js runs the esbuild bundle only when tsc's output (dist/runner/cli.js) carries the stamp the
 * bundle step left (`// cairn-bundle: ../bundle/cli-HASH.js`) and that file exists: a developer's
 * `tsc -p tsconfig.json` after the last bundle rewrites cli.js without it, and must run the code just
 * compiled, never a stale bundle. The real bin/cairn.js is copied into a package tree of its own whose CLIs
 * only say which one ran.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

/** Writes dist/<path> printing `says`, followed by `tail`. */
function cli(path: string, says: string, tail = ''): void {
  const file = join(dir, 'dist', path);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, `process.stdout.write(${JSON.stringify(says)});\n//# sourceMappingURL=cli.js.map\n${tail}`);
}

function run(): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(dir, 'bin', 'cairn.js')], (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('bin/cairn.js picks the CLI it runs', () => {
  it('runs the bundle entry that tsc’s output is stamped with', async () => {
    cli('bundle/cli-OLD.js', 'old bundle');
    cli('bundle/cli-NEW.js', 'bundle');
    cli('runner/cli.js', 'tsc', '// cairn-bundle: ../bundle/cli-NEW.js\n');
    expect((await run()).stdout).toBe('bundle');
  });

  it('runs tsc’s output when tsc rewrote it after the bundle was built (no stamp)', async () => {
    cli('bundle/cli-NEW.js', 'bundle');
    cli('runner/cli.js', 'tsc');
    expect((await run()).stdout).toBe('tsc');
  });

  it('runs tsc’s output when the stamped bundle is gone', async () => {
    cli('runner/cli.js', 'tsc', '// cairn-bundle: ../bundle/cli-GONE.js\n');
    expect((await run()).stdout).toBe('tsc');
  });

  it('says how to build when nothing is built', async () => {
    const result = await run();
    expect(result.code).toBe(5);
    expect(result.stderr).toContain('cairn is not built yet');
  });
});
