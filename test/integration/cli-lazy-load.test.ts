/**
 * A command loads only what it uses (issue 17): `cairn --version`, `cairn inventory` and `cairn vars` read at
 * most the inventory, so they must not import ssh2, Handlebars, the engine, the lab, the drills or the
 * rollout report. Each case runs the built CLI under a loader hook (test/helpers/module-trace.mjs) that
 * records every file the process loads, ES modules and CommonJS alike; `cairn play --help`, which does need
 * the engine and ssh2, shows that the trace sees them when they are loaded.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cairnBin, repoRoot } from '../helpers/cli.js';

const traceDir = mkdtempSync(join(tmpdir(), 'cairn-module-trace-'));
afterAll(() => rmSync(traceDir, { recursive: true, force: true }));

interface Traced {
  code: number;
  stdout: string;
  stderr: string;
  /** Every file the process loaded (absolute paths; node: builtins left out). */
  files: string[];
}

let runs = 0;
function tracedCairn(args: string[]): Promise<Traced> {
  const out = join(traceDir, `trace-${runs++}.txt`);
  const hook = join(repoRoot, 'test', 'helpers', 'module-trace.mjs');
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      ['--import', hook, cairnBin, ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1', CAIRN_MODULE_TRACE: out }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
        const files = lines
          .map((l) => l.replace(/^(esm|cjs) /, '').replace(/^file:\/\//, ''))
          .filter((f) => !f.startsWith('node:'));
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolveRun({ code, stdout, stderr, files: [...new Set(files)] });
      },
    );
  });
}

/** What an inventory-only command must never load, as path fragments. */
const HEAVY = [
  '/node_modules/ssh2/',
  '/node_modules/node-ssh/',
  '/node_modules/handlebars/',
  '/dist/runner/core/engine/engine.js',
  // The transport's connection code (quote.js, shell quoting for templates' filters, is allowed).
  '/dist/runner/core/transport/ssh.js',
  '/dist/runner/core/transport/pool.js',
  '/dist/runner/core/transport/known-hosts.js',
  '/dist/runner/features/lab/',
  '/dist/runner/features/drills/',
  '/dist/runner/features/rollout/',
  '/dist/runner/app/report/console.js',
  // The vault (age) code: loaded only when the inventory has an encrypted file or a key is given (issue 17).
  '/node_modules/age-encryption/',
  '/dist/runner/core/vault/index.js',
  '/dist/runner/core/vault/age.js',
  '/dist/runner/core/vault/keys.js',
];

function heavyLoaded(files: string[]): string[] {
  return HEAVY.filter((fragment) => files.some((f) => f.includes(fragment)));
}

describe('the CLI loads only what a command uses', () => {
  it('`cairn play --help` loads the engine and ssh2 (the trace sees nested CommonJS)', async () => {
    const run = await tracedCairn(['play', '--help']);
    expect(run.code).toBe(0);
    expect(heavyLoaded(run.files)).toEqual(
      expect.arrayContaining(['/node_modules/ssh2/', '/dist/runner/core/engine/engine.js']),
    );
    // ssh2's own requires of its lib/ files pass no ESM hook: the require cache is what lists them.
    expect(run.files.some((f) => /\/node_modules\/ssh2\/lib\/protocol\//.test(f))).toBe(true);
  });

  it('an inventory with an encrypted file does load the vault code (the control for the test below)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-lazy-vault-'));
    try {
      writeFileSync(join(dir, 'hosts.yaml'), 'all:\n  hosts:\n    h1: {}\n');
      mkdirSync(join(dir, 'group_vars'));
      // Only its header is age's: with no key given, cairn loads the vault code and says no key opens it.
      writeFileSync(join(dir, 'group_vars', 'all.yaml'), '-----BEGIN AGE ENCRYPTED FILE-----\nnot really\n');
      const run = await tracedCairn(['inventory', '--list', '-i', dir]);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/vault|key/i);
      expect(run.files.some((f) => f.includes('/node_modules/age-encryption/'))).toBe(true);
      expect(run.files.some((f) => f.endsWith('/dist/runner/core/vault/index.js'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`cairn inventory --list` loads no ssh2, Handlebars, engine, lab, drills, report or vault', async () => {
    const run = await tracedCairn(['inventory', '--list', '-i', 'inventories/example']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(Object.keys(JSON.parse(run.stdout) as object)).toContain('_meta');
    expect(run.files.some((f) => f.endsWith('/dist/runner/commands/inventory.js'))).toBe(true);
    expect(heavyLoaded(run.files)).toEqual([]);
    // No other command's module either.
    expect(run.files.filter((f) => /\/dist\/runner\/commands\/(?!inventory\.js)/.test(f))).toEqual([]);
  });

  it('`cairn vars HOST --no-playbook` loads none of them either', async () => {
    const run = await tracedCairn(['vars', 'lb1', '-i', 'inventories/example', '--no-playbook']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('from ');
    expect(heavyLoaded(run.files)).toEqual([]);
  });

  it('`cairn vars HOST` with the site playbook loads the module registry, never ssh2', async () => {
    // The repository's site.yaml is read by default: its tasks are checked against the modules when it loads.
    const run = await tracedCairn(['vars', 'lb1', 'keepalived_vip', '-i', 'inventories/example']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('roles/keepalived/defaults.yaml');
    expect(run.files.filter((f) => f.includes('/node_modules/ssh2/'))).toEqual([]);
  });

  it('`cairn --version` loads no command at all', async () => {
    const run = await tracedCairn(['--version']);
    expect(run.code).toBe(0);
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(run.stdout.trim()).toBe(version);
    expect(run.files.filter((f) => f.includes('/dist/runner/commands/'))).toEqual([]);
    expect(run.files.filter((f) => f.includes('/node_modules/'))).toEqual(
      run.files.filter((f) => f.includes('/node_modules/commander/')),
    );
  });

  it('top-level --help still lists every command, and a mistyped one still gets a suggestion', async () => {
    const help = await tracedCairn(['--help']);
    expect(help.code).toBe(0);
    for (const name of ['play', 'verify', 'run', 'inventory', 'lab', 'vault', 'vars', 'template', 'drill'])
      expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    for (const name of ['rollout', 'report', 'init', 'drift'])
      expect(help.stdout).toMatch(new RegExp(`^  ${name}`, 'm'));
    const typo = await tracedCairn(['inventroy']);
    expect(typo.code).toBe(5);
    expect(typo.stderr).toContain('Did you mean inventory?');
  });
});
