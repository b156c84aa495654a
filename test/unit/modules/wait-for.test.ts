import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitForModule, waitForScript, waitTarget } from '../../../runner/core/modules/wait-for.js';
import { FakeConnection, contextFor, outsideSingleQuotes } from '../../helpers/fake-connection.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-waitfor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run the generated script with this machine's /bin/sh. */
function run(script: string): { code: number; stdout: string } {
  const res = spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
  return { code: res.status ?? 255, stdout: res.stdout };
}

describe('waitForScript (real sh)', () => {
  it('a present file, a matching pattern, an absent file: done on the first poll', () => {
    const path = join(dir, 'ready');
    writeFileSync(path, 'status: ready\n');
    expect(run(waitForScript({ path, timeout: 5 })).stdout).toMatch(/^result=ok\nelapsed=\d+\n$/);
    expect(run(waitForScript({ path, search_regex: 'status: \\w+', timeout: 5 })).code).toBe(0);
    expect(run(waitForScript({ path: join(dir, 'none'), state: 'absent', timeout: 5 })).code).toBe(0);
  });

  it('times out with result=timeout when the deadline has passed', () => {
    const res = run(waitForScript({ path: join(dir, 'never'), timeout: 0 }));
    expect(res.code).toBe(3);
    expect(res.stdout).toMatch(/^result=timeout\n/);
    expect(run(waitForScript({ path: join(dir, 'ready'), search_regex: 'nomatch', timeout: 0 })).code).toBe(3);
  });

  it('quotes host, path and pattern', () => {
    const script = waitForScript({ host: '127.0.0.1', port: 8080, search_regex: "$(touch /tmp/x)'" });
    expect(outsideSingleQuotes(script)).not.toContain('$(touch');
    expect(outsideSingleQuotes(waitForScript({ path: '/tmp/$(reboot)' }))).not.toContain('$(reboot)');
  });
});

describe('waitTarget', () => {
  it('words what was waited for as Ansible does', () => {
    expect(waitTarget({ port: 80 })).toBe('127.0.0.1:80');
    expect(waitTarget({ port: 80, host: 'db', state: 'stopped' })).toBe('db:80 to stop');
    expect(waitTarget({ path: '/x', search_regex: 'ok' })).toBe('search string "ok" in /x');
  });
});

describe('wait_for module', () => {
  it('one round trip; the exec timeout covers the whole wait', async () => {
    const conn = new FakeConnection([{ match: 'deadline', reply: { stdout: 'result=ok\nelapsed=3\n' } }]);
    const plan = await waitForModule.check(contextFor(conn, { become: true }), { port: 5432, timeout: 60 });
    expect(plan).toEqual({ changed: false, actions: [], data: { elapsed: 3, state: 'started', port: 5432 } });
    expect(conn.calls).toHaveLength(1);
    expect(conn.calls[0]!.opts).toMatchObject({ become: true, timeoutMs: 77_000 });
  });

  it('a timeout fails with a clear message (or the task msg)', async () => {
    const conn = new FakeConnection([
      { match: 'deadline', reply: { code: 3, stdout: 'result=timeout\nelapsed=10\n' } },
    ]);
    expect((await waitForModule.check(contextFor(conn), { port: 5432, timeout: 10 })).failed).toBe(
      'Timeout when waiting for 127.0.0.1:5432 (waited 10 s)',
    );
    expect(
      (await waitForModule.check(contextFor(conn), { port: 5432, timeout: 10, msg: 'postgres did not start' })).failed,
    ).toBe('postgres did not start');
  });

  it('no bash on the host is said plainly', async () => {
    const conn = new FakeConnection([
      { match: 'deadline', reply: { code: 4, stderr: 'wait_for needs bash on the host (for /dev/tcp)\n' } },
    ]);
    expect((await waitForModule.check(contextFor(conn), { port: 1 })).failed).toBe(
      'wait_for needs bash on the host (for /dev/tcp)',
    );
  });
});
