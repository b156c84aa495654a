/**
 * A command loads only what it uses (issue 17): `cairn --version`, `cairn inventory` and `cairn vars` read at
 * most the inventory, so they must not import ssh2, Handlebars, the engine, the lab, the drills or the
 * rollout report. Each case runs the built CLI under a loader hook (test/helpers/module-trace.mjs) that
 * records every file the process loads, ES modules and CommonJS alike; `cairn play --help`, which does need
 * the engine and ssh2, shows that the trace sees them when they are loaded.
 *
 * Every case runs twice: on tsc's output (dist/runner/cli.js) and on the esbuild bundle of it
 * (dist/bundle/cli-HASH.js, test/build/bundle.ts), which is what bin/cairn.js runs once built. A bundle chunk holds
 * many modules: the chunks a run loaded are expanded into the modules esbuild put in them (its metafile,
 * dist/bundle/meta.json), so the same paths are checked either way, and a module that lands in a chunk the
 * command loads counts as loaded.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bundledCliOf, repoRoot } from '../helpers/cli.js';

const traceDir = mkdtempSync(join(tmpdir(), 'cairn-module-trace-'));
afterAll(() => rmSync(traceDir, { recursive: true, force: true }));

interface Traced {
  code: number;
  stdout: string;
  stderr: string;
  /**
   * Every file the process loaded (absolute paths; node: builtins left out), with each bundle chunk replaced
   * by the modules in it (as absolute paths of the files esbuild read: dist/runner/..., node_modules/...).
   */
  files: string[];
  /** The files as loaded, chunks not expanded. */
  loaded: string[];
}

const compiledCli = join(repoRoot, 'dist', 'runner', 'cli.js');
const bundleDir = join(repoRoot, 'dist', 'bundle');
const bundledCli = bundledCliOf() ?? join(bundleDir, 'not-built: run `node dist/test/build/bundle.js` after tsc');

interface Metafile {
  outputs: Record<string, { inputs: Record<string, unknown> }>;
}

let chunkModules: Map<string, string[]> | undefined;
/** Chunk file -> the files of the modules in it, from esbuild's metafile (paths in it are from repoRoot). */
function modulesOfChunks(): Map<string, string[]> {
  if (chunkModules) return chunkModules;
  const meta = JSON.parse(readFileSync(join(bundleDir, 'meta.json'), 'utf8')) as Metafile;
  chunkModules = new Map(
    Object.entries(meta.outputs).map(([out, { inputs }]) => [
      join(repoRoot, out),
      Object.keys(inputs).map((input) => join(repoRoot, input)),
    ]),
  );
  return chunkModules;
}

function expandChunks(files: string[]): string[] {
  return files.flatMap((f) => {
    if (!f.startsWith(`${bundleDir}/`)) return [f];
    const modules = modulesOfChunks().get(f);
    if (!modules) throw new Error(`${f} is not in dist/bundle/meta.json: the bundle is not from one build`);
    return [f, ...modules];
  });
}

let runs = 0;
function tracedCairn(cli: string, args: string[]): Promise<Traced> {
  const out = join(traceDir, `trace-${runs++}.txt`);
  const hook = join(repoRoot, 'test', 'helpers', 'module-trace.mjs');
  return new Promise((resolveRun) => {
    execFile(
      process.execPath,
      ['--import', hook, cli, ...args],
      { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1', CAIRN_MODULE_TRACE: out }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
        const files = lines
          .map((l) => l.replace(/^(esm|cjs) /, '').replace(/^file:\/\//, ''))
          .filter((f) => !f.startsWith('node:'));
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolveRun({ code, stdout, stderr, files: [...new Set(expandChunks(files))], loaded: files });
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

describe('the bundle is what bin/cairn.js runs', () => {
  // npm test, npm run build and npm pack bundle after tsc; a bare `tsc -p tsconfig.json` rewrites
  // dist/runner/cli.js without the bundle's stamp, and bin/cairn.js then runs tsc's output
  // (test/unit/bin-cairn.test.ts).
  it("tsc's output is stamped with a bundle that exists (else: `node dist/test/build/bundle.js`)", () => {
    expect(bundledCliOf()).toMatch(/\/dist\/bundle\/cli-\w+\.js$/);
  });

  it("bin/cairn.js loads the bundle, and no module of tsc's output", async () => {
    const run = await tracedCairn(join(repoRoot, 'bin', 'cairn.js'), [
      'inventory',
      '--list',
      '-i',
      'inventories/example',
    ]);
    expect(run.code).toBe(0);
    expect(run.files).toContain(bundledCli);
    // The modules esbuild read are dist/runner's, so they are in the expanded list; the files loaded are not.
    expect(run.loaded.filter((f) => f.includes('/dist/runner/'))).toEqual([]);
  });
});

describe.each([
  { layout: "tsc's output", cli: compiledCli },
  { layout: 'the esbuild bundle', cli: bundledCli },
])('the CLI loads only what a command uses ($layout)', ({ cli }) => {
  it('`cairn play --help` loads the engine and ssh2 (the trace sees nested CommonJS)', async () => {
    const run = await tracedCairn(cli, ['play', '--help']);
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
      const run = await tracedCairn(cli, ['inventory', '--list', '-i', dir]);
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/vault|key/i);
      expect(run.files.some((f) => f.includes('/node_modules/age-encryption/'))).toBe(true);
      expect(run.files.some((f) => f.endsWith('/dist/runner/core/vault/index.js'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`cairn inventory --list` loads no ssh2, Handlebars, engine, lab, drills, report or vault', async () => {
    const run = await tracedCairn(cli, ['inventory', '--list', '-i', 'inventories/example']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(Object.keys(JSON.parse(run.stdout) as object)).toContain('_meta');
    expect(run.files.some((f) => f.endsWith('/dist/runner/commands/inventory.js'))).toBe(true);
    expect(heavyLoaded(run.files)).toEqual([]);
    // No other command's module either.
    expect(run.files.filter((f) => /\/dist\/runner\/commands\/(?!inventory\.js)/.test(f))).toEqual([]);
  });

  it('`cairn vars HOST --no-playbook` loads none of them either', async () => {
    const run = await tracedCairn(cli, ['vars', 'lb1', '-i', 'inventories/example', '--no-playbook']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('from ');
    expect(heavyLoaded(run.files)).toEqual([]);
  });

  it('`cairn vars HOST` with the site playbook loads the module registry, never ssh2', async () => {
    // The repository's site.yaml is read by default: its tasks are checked against the modules when it loads.
    const run = await tracedCairn(cli, ['vars', 'lb1', 'keepalived_vip', '-i', 'inventories/example']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('roles/keepalived/defaults.yaml');
    expect(run.files.filter((f) => f.includes('/node_modules/ssh2/'))).toEqual([]);
  });

  it("a play runs cairn's schemas as build-time code: ajv's compiler loads only for a site role's own schema", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-lazy-ajv-'));
    try {
      writeFileSync(join(dir, 'hosts.yaml'), 'all:\n  hosts:\n    h1: {}\n');
      writeFileSync(join(dir, 'one.yaml'), '- hosts: all\n  gather_facts: false\n  tasks:\n    - command: /bin/true\n');
      writeFileSync(join(dir, 'site.yaml'), '- hosts: all\n  gather_facts: false\n  roles: [own]\n');
      mkdirSync(join(dir, 'roles', 'own'), { recursive: true });
      writeFileSync(join(dir, 'roles', 'own', 'tasks.yaml'), '- command: /bin/true\n');
      // Not one of cairn's schemas, so not compiled at build time; and not a valid schema, which only ajv says.
      writeFileSync(join(dir, 'roles', 'own', 'schema.json'), '{"type": "nope"}\n');
      const compiler = '/node_modules/ajv/dist/core.js';
      const plain = await tracedCairn(cli, [
        'play',
        join(dir, 'one.yaml'),
        '-i',
        join(dir, 'hosts.yaml'),
        '--syntax-check',
      ]);
      expect(plain.stderr).toBe('');
      expect(plain.code).toBe(0);
      expect(plain.files.filter((f) => f.includes(compiler))).toEqual([]);
      const own = await tracedCairn(cli, [
        'play',
        join(dir, 'site.yaml'),
        '-i',
        join(dir, 'hosts.yaml'),
        '--syntax-check',
      ]);
      expect(own.code).toBe(5);
      expect(own.stderr).toContain('schema.json:1:10: role schema is not a valid JSON Schema: "type" must be one of');
      expect(own.files.some((f) => f.includes(compiler))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('re2js loads only when a pattern is compiled (a regex filter), and then works; ora only on a terminal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-lazy-re2-'));
    try {
      writeFileSync(join(dir, 'hosts.yaml'), 'all:\n  hosts:\n    localhost: {ansible_connection: local}\n');
      const play = (msg: string): string =>
        `- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: "${msg}"\n`;
      writeFileSync(join(dir, 'plain.yaml'), play("{{ 'abc' | upper }}"));
      writeFileSync(join(dir, 'regex.yaml'), play("{{ 'abc' | regex_replace('b', 'X') }}"));
      const env = ['-i', join(dir, 'hosts.yaml'), '--no-journal'];
      const plain = await tracedCairn(cli, ['play', join(dir, 'plain.yaml'), ...env]);
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).toContain('msg: ABC');
      expect(plain.files.filter((f) => f.includes('/node_modules/re2js/'))).toEqual([]);
      // Off a terminal (a pipe here) there is no spinner: ora and string-width's start-up work stay unloaded.
      expect(plain.files.filter((f) => /\/node_modules\/(ora|string-width)\//.test(f))).toEqual([]);
      const regex = await tracedCairn(cli, ['play', join(dir, 'regex.yaml'), ...env]);
      expect(regex.code, regex.stderr).toBe(0);
      expect(regex.stdout).toContain('msg: aXc');
      expect(regex.files.some((f) => f.includes('/node_modules/re2js/'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`cairn --version` loads no command at all', async () => {
    const run = await tracedCairn(cli, ['--version']);
    expect(run.code).toBe(0);
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(run.stdout.trim()).toBe(version);
    expect(run.files.filter((f) => f.includes('/dist/runner/commands/'))).toEqual([]);
    expect(run.files.filter((f) => f.includes('/node_modules/'))).toEqual(
      run.files.filter((f) => f.includes('/node_modules/commander/')),
    );
  });

  it('top-level --help still lists every command, and a mistyped one still gets a suggestion', async () => {
    const help = await tracedCairn(cli, ['--help']);
    expect(help.code).toBe(0);
    for (const name of ['play', 'verify', 'run', 'inventory', 'lab', 'vault', 'vars', 'template', 'drill'])
      expect(help.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    for (const name of ['rollout', 'report', 'init', 'drift'])
      expect(help.stdout).toMatch(new RegExp(`^  ${name}`, 'm'));
    const typo = await tracedCairn(cli, ['inventroy']);
    expect(typo.code).toBe(5);
    expect(typo.stderr).toContain('Did you mean inventory?');
  });
});
