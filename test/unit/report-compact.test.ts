/**
 * The compact console's live line on a terminal: drawn in place (carriage return + erase line), cleared before
 * every printed line so it never mixes with output, cut to the terminal width, and gone at the end; off a
 * terminal nothing but plain lines.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { CompactReporter, chooseConsoleMode } from '../../runner/app/report/compact.js';
import { SecretMasker } from '../../runner/app/report/mask.js';

class Terminal extends Writable {
  text = '';
  columns = 60;
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const t = '2026-03-01T10:00:00.000Z';
const task = { name: 'proxy configuration', role: 'proxy', module: 'template', location: 'x:1:1' };
const events: RunEvent[] = [
  { type: 'run_start', time: t, runId: 'r', command: 'play', check: false, diff: false, inventory: '/inv' },
  { type: 'play_start', time: t, play: 'Front', hosts: ['h1', 'h2'], check: false },
  { type: 'task_start', time: t, host: 'h1', task },
  { type: 'task_start', time: t, host: 'h2', task },
  { type: 'task_result', time: t, host: 'h1', task, status: 'changed', durationMs: 1 },
  { type: 'task_result', time: t, host: 'h2', task, status: 'ok', durationMs: 1 },
  { type: 'play_end', time: t, play: 'Front' },
  {
    type: 'recap',
    time: t,
    stats: {
      h1: { ok: 1, changed: 1, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 },
      h2: { ok: 1, changed: 0, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 },
    },
  },
  { type: 'run_end', time: t, exitCode: 0, durationMs: 1000, interrupted: false },
];

function run(tty: boolean): string {
  const out = new Terminal();
  const reporter = new CompactReporter({
    diff: false,
    color: false,
    tty,
    masker: new SecretMasker(),
    stream: out,
    hostCount: 2,
    reason: 'flag',
    env: {},
  });
  for (const e of events) reporter.handle(e);
  reporter.close();
  return out.text;
}

describe('the compact console', () => {
  it('on a terminal, draws one live progress line in place and clears it before each printed line', () => {
    const text = run(true);
    // Cut to the terminal's 60 columns (redraws are throttled, so the first task's start is what shows).
    expect(text).toContain('\r\x1b[2K[Front] 1/2 hosts running · ok 0 · changed 0 · failed 0 · …');
    // Every printed line starts on a cleared line: the status line never runs into output.
    expect(text).toContain('\r\x1b[2Kchanged: [h1] proxy : proxy configuration\n');
    const statusLines = text.split('\r\x1b[2K').filter((p) => p.startsWith('[Front]'));
    for (const s of statusLines) expect(s.replace(/\n[\s\S]*$/, '').length).toBeLessThanOrEqual(59);
    // The last thing on screen is the end line, not a status line.
    expect(text.endsWith('Finished in 1.00s, exit code 0\n')).toBe(true);
  });

  it('off a terminal, writes plain lines only', () => {
    const text = run(false);
    expect(text).not.toContain('\r');
    expect(text).not.toContain('\x1b');
    expect(text.split('\n')[0]).toBe(
      'cairn play: compact output (--compact): changes, failures and the recap only; --full for every task',
    );
  });

  it('is the default from 10 hosts, unless a flag says otherwise', () => {
    expect(chooseConsoleMode(9, {})).toBe('full');
    expect(chooseConsoleMode(10, {})).toBe('compact');
    expect(chooseConsoleMode(100, { full: true })).toBe('full');
    expect(chooseConsoleMode(2, { compact: true })).toBe('compact');
  });

  it('writes what one turn of the event loop printed in one write, and the end of a run at once', async () => {
    const writes: string[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        writes.push(chunk.toString());
        done();
      },
    });
    const reporter = new CompactReporter({
      diff: false,
      color: false,
      tty: false,
      masker: new SecretMasker(),
      stream: out,
      hostCount: 100,
      reason: 'default',
      env: {},
    });
    const hosts = Array.from({ length: 100 }, (_, i) => `b${i + 1}`);
    reporter.handle({ type: 'play_start', time: t, play: 'Front', hosts, check: false });
    for (const host of hosts)
      reporter.handle({ type: 'task_result', time: t, host, task, status: 'changed', durationMs: 1 });
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    // The play's line and 100 changes: one write, in order.
    expect(writes).toHaveLength(1);
    const changes = writes[0]!.split('\n').filter((line) => line.startsWith('changed: '));
    expect(changes).toEqual(hosts.map((host) => `changed: [${host}] proxy : proxy configuration`));
    reporter.handle({ type: 'run_end', time: t, exitCode: 0, durationMs: 1000, interrupted: false });
    expect(writes).toHaveLength(2);
    expect(writes[1]).toBe('Finished in 1.00s, exit code 0\n');
  });
});
