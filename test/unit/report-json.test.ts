import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { EventBus, type RunEvent } from '../../runner/core/engine/events.js';
import { attachJsonReporter } from '../../runner/app/report/json.js';
import { SecretMasker } from '../../runner/app/report/mask.js';

const T = '2026-11-21T12:00:00.000Z';
const task = { name: 'set password', role: 'db', module: 'command', location: 'roles/db/tasks/main.yaml:3:3' };

describe('JSON reporter', () => {
  it('writes exactly one parseable, masked JSON object per line per event and nothing else', () => {
    const masker = new SecretMasker();
    masker.add('p@ss"word\\1');
    const stream = new PassThrough();
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    const bus = new EventBus();
    const detach = attachJsonReporter(bus, { stream, masker });
    const events: RunEvent[] = [
      { type: 'play_start', time: T, play: 'db', hosts: ['db1'], check: false },
      {
        type: 'task_result',
        time: T,
        host: 'db1',
        task,
        status: 'failed',
        msg: 'psql: password p@ss"word\\1 rejected',
        item: { user: 'app', password: 'p@ss"word\\1' },
        result: { stdout: 'ALTER ROLE', cmd: `psql -c "ALTER ROLE app PASSWORD 'p@ss\\"word\\\\1'"`, rc: 1 },
        durationMs: 12,
      },
      { type: 'run_end', time: T, exitCode: 2, durationMs: 40, interrupted: false },
    ];
    for (const e of events) bus.emit(e);
    detach();
    bus.emit({ type: 'warning', time: T, msg: 'after detach' });

    const text = Buffer.concat(chunks).toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as RunEvent);
    expect(parsed.map((e) => e.type)).toEqual(['play_start', 'task_result', 'run_end']);
    expect(parsed[0]).toEqual(events[0]);
    const result = parsed[1] as Extract<RunEvent, { type: 'task_result' }>;
    expect(result.msg).toBe('psql: password ******** rejected');
    expect(result.item).toEqual({ user: 'app', password: '********' });
    expect(result.result?.rc).toBe(1);
    expect(result.result?.cmd).not.toContain('word');
    expect(text).not.toContain('p@ss');
  });
});
