/**
 * The reporters in a real process: the console on a real pseudo-terminal (util-linux `script` allocates
 * it), on a pipe, and with NO_COLOR; and the journal of a process that crashes with SIGKILL mid-run.
 * The reporter modules are compiled with the project's TypeScript into a temporary directory so a plain
 * `node` child can load them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readJournal } from '../../runner/app/report/journal.js';

const root = resolve(import.meta.dirname, '../..');
const CANARY = 'CANARY-pty-91c2';
let work: string;

/** Child: a short run whose task takes long enough for the spinner to draw a few frames. */
const consoleChild = `
import { EventBus } from './out/runner/core/engine/events.js';
import { attachConsoleReporter, SecretMasker } from './out/runner/app/report/index.js';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const T = '2026-11-21T12:00:00.000Z';
const masker = new SecretMasker();
masker.add(${JSON.stringify(CANARY)});
const bus = new EventBus();
const detach = attachConsoleReporter(bus, { verbosity: 1, diff: true, color: true, tty: Boolean(process.stdout.isTTY), masker, stream: process.stdout });
const task = { name: 'install nginx', role: 'nginx', module: 'package', location: 'roles/nginx/tasks/main.yaml:1:3' };
bus.emit({ type: 'play_start', time: T, play: 'web', hosts: ['web1', 'web2'], check: false });
bus.emit({ type: 'task_start', time: T, host: 'web1', task });
bus.emit({ type: 'task_start', time: T, host: 'web2', task });
await sleep(400);
bus.emit({ type: 'task_result', time: T, host: 'web1', task, status: 'changed', durationMs: 400, result: { stdout: 'key ${CANARY}' } });
bus.emit({ type: 'task_result', time: T, host: 'web2', task, status: 'failed', msg: 'apt said ${CANARY}', durationMs: 400 });
bus.emit({ type: 'recap', time: T, stats: {
  web1: { ok: 1, changed: 1, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 },
  web2: { ok: 0, changed: 0, unreachable: 0, failed: 1, skipped: 0, rescued: 0, ignored: 0 } } });
bus.emit({ type: 'run_end', time: T, exitCode: 2, durationMs: 400, interrupted: false });
detach();
`;

/** Child: journals three events, then dies without any cleanup. */
const crashChild = `
import { EventBus } from './out/runner/core/engine/events.js';
import { RunJournal, SecretMasker } from './out/runner/app/report/index.js';
const masker = new SecretMasker();
masker.add(${JSON.stringify(CANARY)});
const journal = new RunJournal(masker);
journal.open(process.argv[2], 'crash');
const bus = new EventBus();
journal.attach(bus);
const T = '2026-11-21T12:00:00.000Z';
const task = { name: 't', role: '', module: 'command', location: 'site.yaml:1:1' };
bus.emit({ type: 'play_start', time: T, play: 'p', hosts: ['web1', 'web2'], check: false });
bus.emit({ type: 'task_result', time: T, host: 'web1', task, status: 'ok', durationMs: 1, msg: '${CANARY}' });
bus.emit({ type: 'task_result', time: T, host: 'web2', task, status: 'failed', durationMs: 1 });
process.kill(process.pid, 'SIGKILL');
bus.emit({ type: 'warning', time: T, msg: 'never reached' });
`;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cairn-report-proc-'));
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
  writeFileSync(join(work, 'package.json'), '{"type":"module"}\n');
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      ...['--outDir', join(work, 'out'), '--rootDir', root, '--module', 'NodeNext', '--moduleResolution', 'NodeNext'],
      ...[
        '--target',
        'ES2022',
        '--strict',
        '--skipLibCheck',
        '--esModuleInterop',
        '--types',
        'node',
        '--declaration',
        'false',
      ],
      join(root, 'runner/app/report/index.ts'),
    ],
    { cwd: root, stdio: 'pipe' },
  );
  writeFileSync(join(work, 'console-child.mjs'), consoleChild);
  writeFileSync(join(work, 'crash-child.mjs'), crashChild);
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Run the console child on a pseudo-terminal; the terminal turns "\n" into "\r\n", undone here. */
function runOnPty(env: Record<string, string>): string {
  const childEnv: Record<string, string | undefined> = { ...process.env, TERM: 'xterm-256color' };
  delete childEnv.NO_COLOR;
  delete childEnv.FORCE_COLOR;
  Object.assign(childEnv, env);
  // A pseudo-terminal made by `script` has no size until one is set; a real terminal always has one.
  const command = `stty cols 100 rows 40; ${JSON.stringify(process.execPath)} console-child.mjs`;
  const out = spawnSync('script', ['-qfec', command, '/dev/null'], {
    cwd: work,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  expect(out.status, out.stderr.toString()).toBe(0);
  return out.stdout.toString('utf8').replace(/\r\n/g, '\n');
}

describe('console on a real terminal', () => {
  it('colours the lines and spins a spinner naming the running hosts, masked', () => {
    const text = runOnPty({});
    expect(text).toContain('\u001b[33mchanged: [web1]\u001b[39m');
    expect(text).toContain('\u001b[31mfatal: [web2]: FAILED! => apt said ********\u001b[39m');
    // ora's default "dots" frames and the running-task text.
    expect(text).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
    expect(text).toContain('nginx : install nginx: web1, web2');
    expect(text).toContain('PLAY RECAP');
    expect(text).not.toContain(CANARY);
  }, 60_000);

  it('prints plain lines with no escape code under NO_COLOR, even on a terminal', () => {
    const text = runOnPty({ NO_COLOR: '1' });
    expect(text).not.toContain('\u001b');
    expect(text).toContain('changed: [web1]\n    stdout: key ********\n');
    expect(text).toContain('fatal: [web2]: FAILED! => apt said ********\n');
    expect(text).not.toContain(CANARY);
  }, 60_000);

  it('prints plain lines on a pipe', () => {
    const out = spawnSync(process.execPath, ['console-child.mjs'], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
      env: { ...process.env, FORCE_COLOR: '' },
    });
    expect(out.status, out.stderr.toString()).toBe(0);
    const text = out.stdout.toString('utf8');
    expect(text).not.toContain('\u001b');
    const banner = (title: string) => `${title} ${'*'.repeat(79 - title.length)}`;
    expect(text).toBe(
      [
        '',
        banner('PLAY [web]'),
        '',
        banner('TASK [nginx : install nginx]'),
        'changed: [web1]',
        '    stdout: key ********',
        'fatal: [web2]: FAILED! => apt said ********',
        '',
        banner('PLAY RECAP'),
        'web1                       : ok=1    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0',
        'web2                       : ok=0    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0',
        '',
        'Finished in 0.40s, exit code 2',
        '',
      ].join('\n'),
    );
  }, 60_000);
});

describe('journal of a crashed process', () => {
  it('holds every event emitted before the SIGKILL, complete and masked', () => {
    const dir = join(work, 'runs');
    const out = spawnSync(process.execPath, ['crash-child.mjs', dir], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    expect(out.signal).toBe('SIGKILL');
    const events = readJournal(join(dir, 'crash.ndjson'));
    expect(events.map((e) => e.type)).toEqual(['play_start', 'task_result', 'task_result']);
    expect(JSON.stringify(events)).not.toContain(CANARY);
  }, 60_000);
});
