/**
 * The bad-input corpus (test/bad-input/): one folder per mistake an operator can make, holding the files
 * and an expected.yaml with the command line, the exit code and the expected message. Each case is copied
 * to a fresh folder (plus the files that cannot be committed usefully: 10 MB files, deep nesting, binary
 * files, dangling links, unreadable files, generated at test time), run through the built CLI, and checked:
 *
 *   - the exit code (5 for bad input) and the expected message, exact or by regex, `{dir}` standing for the
 *     case's folder (so messages can show the real file:line:col) and `{repo}` for the repository;
 *   - no stack trace (no line like "    at foo (file.js:1:2)") and no "unexpected internal error";
 *   - nothing half-written: no file appears or changes except the run journal under the state folder,
 *     whose every line is complete JSON.
 *
 * Unreadable files: tests run as root here, and root reads a chmod 000 file anyway (CAP_DAC_OVERRIDE). The
 * `unreadable-permission` case therefore runs cairn as the unprivileged user `nobody` when the test runs as
 * root; the other unreadable cases use what stops root too: a directory where a file is expected, and a
 * dangling symbolic link.
 */
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { cairnBin, repoRoot, type CliResult } from '../helpers/cli.js';

const corpusDir = join(repoRoot, 'test', 'bad-input');
/** A bound, not a speed test: a 4 MB input takes seconds; a hang or a quadratic blow-up takes far longer. */
const CLI_LIMIT_MS = 150_000;

type Generated =
  | { kind: 'directory'; path: string }
  | { kind: 'symlink'; path: string; target: string }
  | { kind: 'chmod'; path: string; mode: string }
  | { kind: 'binary'; path: string; bytes: number }
  | { kind: 'large-playbook' | 'large-inventory'; path: string; bytes: number; then?: string }
  | { kind: 'nested-flow' | 'nested-block'; path: string; depth: number };

interface Expected {
  what: string;
  args: string[];
  exit: number;
  generate?: Generated[];
  /** Run cairn as this unprivileged user when the test runs as root. */
  run_as?: 'nobody';
  stderr?: string;
  stderr_match?: string;
  stdout?: string;
  stdout_match?: string;
}

const EXPECTATION_KEYS = ['stderr', 'stderr_match', 'stdout', 'stdout_match'] as const;

function readExpected(name: string): Expected {
  const file = join(corpusDir, name, 'expected.yaml');
  const value = parse(readFileSync(file, 'utf8')) as Partial<Expected> | null;
  if (!value || typeof value.what !== 'string' || !Array.isArray(value.args) || typeof value.exit !== 'number') {
    throw new Error(`${file}: needs what (string), args (list) and exit (number)`);
  }
  return value as Expected;
}

/** A realistic binary: an ELF header, then bytes from a fixed LCG (NULs among them), the same every run. */
function binaryBytes(size: number): Buffer {
  const buf = Buffer.alloc(size);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]).copy(buf);
  let state = 12345;
  for (let i = 8; i < size; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    buf[i] = (state >>> 16) & 0xff;
  }
  return buf;
}

/** Valid YAML of (at least) `bytes` bytes: size alone is what must be refused. */
function largeYaml(kind: 'large-playbook' | 'large-inventory', bytes: number): string {
  const parts: string[] = [kind === 'large-playbook' ? '- hosts: all\n  tasks:\n' : 'all:\n  hosts:\n'];
  let size = parts[0]!.length;
  for (let i = 0; size < bytes; i++) {
    const chunk =
      kind === 'large-playbook'
        ? `    - name: step ${i}\n      command: "echo ${i}"\n`
        : `    node${i}:\n      ansible_host: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}\n`;
    parts.push(chunk);
    size += chunk.length;
  }
  return parts.join('');
}

function generate(dir: string, g: Generated): void {
  const path = join(dir, g.path);
  mkdirSync(dirname(path), { recursive: true });
  switch (g.kind) {
    case 'directory':
      mkdirSync(path, { recursive: true });
      break;
    case 'symlink':
      symlinkSync(g.target, path);
      break;
    case 'chmod':
      chmodSync(path, parseInt(g.mode, 8));
      break;
    case 'binary':
      writeFileSync(path, binaryBytes(g.bytes));
      break;
    case 'large-playbook':
    case 'large-inventory':
      writeFileSync(path, largeYaml(g.kind, g.bytes) + (g.then ?? ''));
      break;
    case 'nested-flow':
      writeFileSync(path, '['.repeat(g.depth));
      break;
    case 'nested-block':
      writeFileSync(path, `${'- '.repeat(g.depth)}x\n`);
      break;
  }
}

/** Every path under `dir` with its size and modification time, symbolic links not followed. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const full = join(d, entry);
      const st = lstatSync(full);
      out.set(relative(dir, full), st.isDirectory() ? 'dir' : `${st.size}:${st.mtimeMs}`);
      if (st.isDirectory() && (st.mode & 0o500) === 0o500) walk(full);
    }
  };
  walk(dir);
  return out;
}

function runCli(args: string[], cwd: string, asNobody: boolean): Promise<CliResult> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CAIRN_')) env[k] = v;
  Object.assign(env, { NO_COLOR: '1', CAIRN_STATE_DIR: join(cwd, '.cairn-state'), HOME: cwd });
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cairnBin, ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asNobody ? { uid: 65534, gid: 65534 } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? -1, stdout, stderr: signal ? `${stderr}\n[killed by ${signal}: timed out]` : stderr });
    });
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const scratch: string[] = [];
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

const names = readdirSync(corpusDir)
  .filter((n) => existsSync(join(corpusDir, n, 'expected.yaml')))
  .sort();

describe('bad-input corpus (test/bad-input)', () => {
  it('has the cases the issue asks for', () => {
    expect(names.length).toBeGreaterThanOrEqual(50);
  });

  for (const name of names) {
    const expected = readExpected(name);
    it.concurrent(
      `${name}: ${expected.what}`,
      async () => {
        const dir = realpathSync(mkdtempSync(join(tmpdir(), `cairn-corpus-${name}-`)));
        scratch.push(dir);
        cpSync(join(corpusDir, name), dir, {
          recursive: true,
          filter: (src) => src !== join(corpusDir, name, 'expected.yaml'),
        });
        for (const g of expected.generate ?? []) generate(dir, g);
        const asNobody = expected.run_as === 'nobody' && process.getuid?.() === 0;
        if (asNobody) chmodSync(dir, 0o777);
        const before = snapshot(dir);

        const res = await runCli(expected.args, dir, asNobody);
        const shown = `exit ${res.code}\n--- stdout\n${res.stdout}--- stderr\n${res.stderr}`;

        expect(
          EXPECTATION_KEYS.some((k) => expected[k] !== undefined),
          `${name}/expected.yaml names no expected message (${EXPECTATION_KEYS.join(', ')}); this run gave:\n${shown}`,
        ).toBe(true);
        expect(res.code, shown).toBe(expected.exit);
        const fill = (text: string) => text.replaceAll('{dir}', dir).replaceAll('{repo}', repoRoot);
        const fillRegExp = (text: string) =>
          new RegExp(text.split('{dir}').join(escapeRegExp(dir)).split('{repo}').join(escapeRegExp(repoRoot)));
        if (expected.stderr !== undefined) expect(res.stderr).toBe(fill(expected.stderr));
        if (expected.stderr_match !== undefined) expect(res.stderr).toMatch(fillRegExp(expected.stderr_match));
        if (expected.stdout !== undefined) expect(res.stdout).toBe(fill(expected.stdout));
        if (expected.stdout_match !== undefined) expect(res.stdout).toMatch(fillRegExp(expected.stdout_match));
        for (const out of [res.stdout, res.stderr]) {
          expect(out, shown).not.toMatch(/^\s+at /m);
          expect(out, shown).not.toMatch(/unexpected internal error|\[object Object\]/);
        }
        // A refused input is one paragraph starting "ERROR! " (a task that fails on bad input reports on stdout instead).
        if (expected.exit === 5 && expected.stderr) expect(res.stderr).toMatch(/^ERROR! /);

        // Nothing half-written: only the run journal may appear, and only as whole JSON lines.
        const after = snapshot(dir);
        for (const [path, state] of after) {
          if (path === '.cairn-state' || path.startsWith('.cairn-state/')) continue;
          expect(before.get(path), `${path} appeared or changed`).toBe(state);
        }
        for (const path of before.keys()) expect(after.has(path), `${path} disappeared`).toBe(true);
        const runs = join(dir, '.cairn-state', 'runs');
        if (existsSync(runs)) {
          for (const journal of readdirSync(runs)) {
            for (const line of readFileSync(join(runs, journal), 'utf8').split('\n').filter(Boolean)) {
              expect(() => JSON.parse(line), `journal line: ${line}`).not.toThrow();
            }
          }
        }
      },
      CLI_LIMIT_MS + 30_000,
    );
  }
});
