/**
 * The installable CLI: `npm pack` of this repository, installed with `npm install -g --prefix TMP` as on a
 * jump host, gives a `cairn` that runs with no build step at install time (dist/ is in the tarball), knows
 * its version, carries its roles, templates, plays and docs, and makes and checks a site from another folder;
 * it runs the bundled CLI (dist/bundle/, test/build/bundle.ts), whose chunks find the package's files too.
 * npm installs the runtime dependencies from its cache when it has them (--prefer-offline), else from the
 * registry.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledCliOf, repoRoot } from '../helpers/cli.js';

const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', ...env },
    timeout: 280_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

describe('npm pack + npm install -g: a cairn for the jump host', { timeout: 300_000 }, () => {
  let work: string;
  let prefix: string;
  let cairn: string;

  beforeAll(() => {
    // The tarball ships dist/ as built (npm test builds first; prepack builds for a real `npm pack`).
    expect(
      existsSync(join(repoRoot, 'dist', 'runner', 'cli.js')),
      'dist/ is not built: run `npx tsc -p tsconfig.json`',
    ).toBe(true);
    work = mkdtempSync(join(tmpdir(), 'cairn-install-'));
    const packed = run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], repoRoot);
    expect(packed.code, packed.stderr).toBe(0);
    const tarball = join(work, `cairn-${version}.tgz`);
    expect(existsSync(tarball)).toBe(true);
    prefix = join(work, 'prefix');
    const installed = run(
      'npm',
      ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
      work,
    );
    expect(installed.code, installed.stderr).toBe(0);
    cairn = join(prefix, 'bin', 'cairn');
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('installs the built CLI with its roles, templates, plays and docs, and no sources or tests', () => {
    const pkg = join(prefix, 'lib', 'node_modules', 'cairn');
    for (const f of [
      'dist/runner/cli.js',
      'roles/haproxy/tasks.yaml',
      'templates/cairn-header.hbs',
      'site.yaml',
      'rollout.yaml',
      'drills.yaml',
      'playbooks/ha.yaml',
      'inventories/example/hosts.yaml',
      'README.md',
      'docs/variables.md',
    ]) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    for (const f of [
      'runner',
      'test',
      'dist/test',
      'dist/bundle/meta.json',
      'tsconfig.json',
      'inventories/lab/generated',
    ])
      expect(existsSync(join(pkg, f)), f).toBe(false);
    expect(readdirSync(join(pkg, 'roles')).sort()).toEqual(readdirSync(join(repoRoot, 'roles')).sort());
  });

  it('answers --version with the package version', () => {
    const v = run(cairn, ['--version'], work);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe(version);
  });

  it('runs the esbuild bundle (dist/runner/cli.js carries its stamp), which finds package.json', () => {
    const pkg = join(prefix, 'lib', 'node_modules', 'cairn');
    const bundled = bundledCliOf(pkg);
    expect(
      bundled,
      'the installed dist/runner/cli.js names no bundle entry that exists (was `node dist/test/build/bundle.js` run after tsc?)',
    ).toBeDefined();
    const trace = join(work, 'trace.txt');
    const hook = join(repoRoot, 'test', 'helpers', 'module-trace.mjs');
    const v = run(process.execPath, ['--import', hook, join(pkg, 'bin', 'cairn.js'), '--version'], work, {
      CAIRN_MODULE_TRACE: trace,
    });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.trim()).toBe(version);
    const loaded = readFileSync(trace, 'utf8');
    expect(loaded).toContain(`file://${bundled}`);
    expect(loaded).not.toContain('/dist/runner/');
  });

  it('runs cairn init and --syntax-check from another folder, with the installed roles', () => {
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    const init = run(cairn, ['init', 'site'], elsewhere);
    expect(init.code, init.stderr).toBe(0);
    const site = join(elsewhere, 'site');
    const syntax = run(cairn, ['play', 'site.yaml', '--syntax-check'], site);
    expect(syntax.stderr).toBe('');
    expect(syntax.code).toBe(0);
    expect(syntax.stdout).toContain(`playbook: ${join(site, 'site.yaml')}: syntax OK (10 plays)`);
    const tasks = run(cairn, ['play', 'site.yaml', '--list-tasks'], site);
    expect(tasks.code, tasks.stderr).toBe(0);
    expect(tasks.stdout).toContain('haproxy : ');
  });
});
