/**
 * A canary secret planted in every place an event can carry text (messages, stdout, loop items, diffs,
 * registered results, errors, warnings, verify and drill data) must never reach any output byte of any
 * reporter, at any verbosity, with or without colours and --diff.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { EventBus, type RunEvent, type TaskRef } from '../../runner/core/engine/events.js';
import { attachConsoleReporter, preloadSpinner } from '../../runner/app/report/console.js';
import { attachJsonReporter } from '../../runner/app/report/json.js';
import { RunJournal } from '../../runner/app/report/journal.js';
import { SecretMasker } from '../../runner/app/report/mask.js';
import { quote } from '../../runner/core/transport/quote.js';

const T = '2026-11-21T12:00:00.000Z';
/** A plain canary, and one with a quote, a double quote, a backslash and a dollar that escaping changes. */
const CANARY = 'CANARY-7f3a9e';
const TRICKY = `q'u"o\\te$-canary-2b`;

function leakedForms(secret: string): string[] {
  return [secret, JSON.stringify(secret).slice(1, -1), quote(secret), secret.replace(/'/g, `'\\''`)];
}

function events(): RunEvent[] {
  const task: TaskRef = {
    name: `set token ${CANARY}`,
    role: 'app',
    module: 'shell',
    location: 'roles/app/tasks/main.yaml:4:3',
  };
  const handler: TaskRef = {
    name: 'reload',
    role: 'app',
    module: 'service',
    location: 'roles/app/handlers/main.yaml:1:3',
  };
  return [
    {
      type: 'run_start',
      time: T,
      runId: 'r',
      command: 'apply',
      check: false,
      diff: true,
      inventory: `inv-${CANARY}.yaml`,
      playbook: 'site.yaml',
    },
    { type: 'play_start', time: T, play: `deploy ${CANARY}`, hosts: ['web1', 'web2'], check: false },
    { type: 'batch_start', time: T, play: 'deploy', hosts: ['web1'], batch: 1, batches: 2 },
    { type: 'task_start', time: T, host: 'web1', task },
    {
      type: 'task_result',
      time: T,
      host: 'web1',
      task,
      status: 'changed',
      item: { name: 'token', value: TRICKY },
      msg: `set ${CANARY}`,
      actions: [`write ${CANARY} to /etc/app/token`],
      diffs: [
        { path: '/etc/app/env', before: 'A=1\n', after: `A=1\nTOKEN=${CANARY}\n` },
        { path: '/etc/app/other', before: `x=${TRICKY}\n`, after: 'x=\n', attributes: [`owner ${CANARY} -> root`] },
        { path: `/etc/${CANARY}/plain`, before: 'a\n', after: 'b\n' },
      ],
      result: {
        stdout: `token is ${CANARY}\nnext line`,
        stdout_json: JSON.stringify({ token: TRICKY }),
        cmd: `printf %s ${quote(TRICKY)} > /etc/app/token`,
        [CANARY]: 'as a key',
        nested: { list: [CANARY, { deep: TRICKY }] },
      },
      check: true,
      durationMs: 10,
      attempts: 1,
    },
    { type: 'task_result', time: T, host: 'web1', task, status: 'changed', loopSummary: true, durationMs: 11 },
    { type: 'handler_notified', time: T, host: 'web1', handler: 'reload', by: `set token ${CANARY}` },
    { type: 'task_start', time: T, host: 'web2', task },
    {
      type: 'task_result',
      time: T,
      host: 'web2',
      task,
      status: 'failed',
      msg: `error: bad token ${TRICKY}\nstderr: ${CANARY}`,
      item: TRICKY,
      durationMs: 3,
    },
    {
      type: 'task_result',
      time: T,
      host: 'web2',
      task,
      status: 'failed',
      msg: `command failed: ${CANARY}`,
      ignored: true,
      durationMs: 3,
    },
    {
      type: 'task_result',
      time: T,
      host: 'web2',
      task,
      status: 'skipped',
      msg: `when: token == "${CANARY}"`,
      durationMs: 0,
    },
    { type: 'host_failed', time: T, host: 'web2', msg: `failed at ${CANARY}` },
    { type: 'host_unreachable', time: T, host: 'web3', msg: `ssh: auth failed for ${TRICKY}` },
    { type: 'task_result', time: T, host: 'web3', task, status: 'unreachable', msg: `lost ${CANARY}`, durationMs: 3 },
    { type: 'task_start', time: T, host: 'web1', task: handler, handler: true },
    {
      type: 'task_result',
      time: T,
      host: 'web1',
      task: handler,
      status: 'ok',
      handler: true,
      msg: CANARY,
      durationMs: 3,
    },
    { type: 'warning', time: T, host: 'web1', msg: `deprecated ${CANARY}` },
    { type: 'verify_start', time: T, play: 'deploy', hosts: ['web1'] },
    {
      type: 'task_result',
      time: T,
      host: 'web1',
      task: { ...task, name: `verify ${CANARY}` },
      status: 'failed',
      verify: true,
      msg: CANARY,
      durationMs: 1,
    },
    {
      type: 'verify_result',
      time: T,
      host: 'web1',
      role: 'app',
      check: `token ${CANARY}`,
      passed: false,
      msg: `got ${TRICKY}`,
      data: { body: CANARY },
    },
    {
      type: 'verify_result',
      time: T,
      host: 'web1',
      role: 'app',
      check: 'health',
      passed: true,
      msg: CANARY,
      data: { [TRICKY]: 1 },
    },
    {
      type: 'drill_result',
      time: T,
      drill: `drill ${CANARY}`,
      passed: false,
      measured: { [CANARY]: TRICKY },
      target: `< ${CANARY}`,
      msg: CANARY,
    },
    { type: 'play_end', time: T, play: 'deploy' },
    {
      type: 'recap',
      time: T,
      stats: { web1: { ok: 2, changed: 1, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 } },
    },
    { type: 'run_end', time: T, exitCode: 2, durationMs: 1000, interrupted: false },
  ];
}

function masker(): SecretMasker {
  const m = new SecretMasker();
  m.add(CANARY);
  m.add(TRICKY);
  return m;
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

function expectNoLeak(output: string): void {
  expect(output.length).toBeGreaterThan(0);
  for (const form of [...leakedForms(CANARY), ...leakedForms(TRICKY)]) expect(output).not.toContain(form);
  // Not even a recognisable fragment.
  expect(output).not.toContain('7f3a9e');
  expect(output).not.toContain('canary-2b');
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-canary-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('canary secret', () => {
  it('is in the events in every form the reporters must catch', () => {
    const raw = JSON.stringify(events());
    expect(raw).toContain(CANARY);
    expect(raw).toContain(JSON.stringify(TRICKY).slice(1, -1));
  });

  for (const verbosity of [0, 1, 2, 3, 4]) {
    for (const fancy of [false, true]) {
      it(`never reaches the console (verbosity ${verbosity}, ${fancy ? 'colour' : 'plain'}, --diff)`, async () => {
        // The spinner's module loads in the background; loaded first, the spinner draws as the events come.
        await preloadSpinner();
        const { stream, text } = capture();
        // A width, as a terminal has, so the spinner runs and its text is checked too.
        Object.assign(stream, { columns: 100 });
        const bus = new EventBus();
        const detach = attachConsoleReporter(bus, {
          verbosity,
          diff: true,
          color: fancy,
          tty: fancy,
          masker: masker(),
          stream,
          env: {},
          columns: 100,
        });
        for (const e of events()) bus.emit(e);
        detach();
        expectNoLeak(text());
        if (fancy) expect(text()).toContain('\u001b[');
        // The spinner drew (ora's "dots" frames), so its text went through the masker too.
        if (fancy) expect(text()).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/);
      });
    }
  }

  it('never reaches the JSON stream', () => {
    const { stream, text } = capture();
    const bus = new EventBus();
    attachJsonReporter(bus, { stream, masker: masker() });
    for (const e of events()) bus.emit(e);
    expectNoLeak(text());
    expect(text().trim().split('\n')).toHaveLength(events().length);
  });

  it('never reaches the journal file', () => {
    const journal = new RunJournal(masker());
    const path = journal.open(dir, 'canary');
    const bus = new EventBus();
    journal.attach(bus);
    for (const e of events()) bus.emit(e);
    journal.close();
    expectNoLeak(readFileSync(path, 'utf8'));
  });
});
