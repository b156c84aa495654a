import { describe, expect, it } from 'vitest';
import { commandModule, guardProbeScript, quoteGlob } from '../../../runner/core/modules/command.js';
import { FakeConnection, contextFor, outsideSingleQuotes, shellWords } from '../../helpers/fake-connection.js';

describe('command check', () => {
  it('without creates/removes: "would run", no remote call', async () => {
    const conn = new FakeConnection([]);
    const plan = await commandModule.check(contextFor(conn), { cmd: 'systemctl restart haproxy' });
    expect(plan).toMatchObject({ changed: true, actions: ['run systemctl restart haproxy'] });
    expect(conn.calls).toHaveLength(0);
  });

  it.each([
    [
      'creates exists -> done',
      { creates: '/var/lib/app/.done' },
      'creates=1\n',
      false,
      'skipped, since /var/lib/app/.done exists',
    ],
    ['creates missing -> run', { creates: '/var/lib/app/.done' }, '', true, undefined],
    ['removes missing -> done', { removes: '/tmp/lock' }, '', false, 'skipped, since /tmp/lock does not exist'],
    ['removes exists -> run', { removes: '/tmp/lock' }, 'removes=1\n', true, undefined],
  ])('%s', async (_name, guard, stdout, changed, msg) => {
    const conn = new FakeConnection([{ match: 'for f in', reply: { stdout } }]);
    const plan = await commandModule.check(contextFor(conn, { become: true }), { cmd: 'init-app', ...guard });
    expect(plan.changed).toBe(changed);
    if (msg) expect(plan.data).toMatchObject({ msg, rc: 0, cmd: ['init-app'] });
    expect(conn.calls).toHaveLength(1);
    expect(conn.calls[0]!.opts.become).toBe(true);
  });

  it('a chdir that does not exist fails the check', async () => {
    const conn = new FakeConnection([
      { match: 'cd --', reply: { code: 97, stderr: 'cairn: cannot change directory\n' } },
    ]);
    const plan = await commandModule.check(contextFor(conn), { cmd: 'make', chdir: '/nope', creates: 'out' });
    expect(plan.failed).toBe('cannot change directory to /nope');
  });

  it('rejects unbalanced quotes and both cmd and argv with the task location', async () => {
    const ctx = contextFor(new FakeConnection([]));
    await expect(commandModule.check(ctx, { cmd: "echo 'open" })).rejects.toThrow(/no closing quotation/);
    await expect(commandModule.check(ctx, { cmd: 'a', argv: ['a'] })).rejects.toMatchObject({
      location: { file: 'roles/test/tasks/main.yaml' },
    });
  });
});

describe('command apply', () => {
  it('each word is quoted: shell syntax in a value is never interpreted', async () => {
    const conn = new FakeConnection([{ match: 'exec', reply: { stdout: 'x\n' } }]);
    const ctx = contextFor(conn);
    const cmd = `echo "$(touch /tmp/x)" 'it'"'"'s' ; rm -rf /`;
    const plan = await commandModule.check(ctx, { cmd });
    await commandModule.apply(ctx, { cmd }, plan);
    const script = conn.calls[0]!.script;
    expect(outsideSingleQuotes(script)).not.toContain('$(touch');
    expect(shellWords(script.replace(/^exec /, ''))).toEqual([
      'echo',
      '$(touch /tmp/x)',
      "it's",
      ';',
      'rm',
      '-rf',
      '/',
    ]);
  });

  it('registers rc/stdout/stderr with trailing newlines stripped; a non-zero rc fails', async () => {
    const conn = new FakeConnection([{ match: 'exec', reply: { code: 2, stdout: 'a\nb\n', stderr: 'oops\n' } }]);
    const ctx = contextFor(conn);
    const result = await commandModule.apply(
      ctx,
      { argv: ['false'] },
      await commandModule.check(ctx, { argv: ['false'] }),
    );
    expect(result).toMatchObject({ failed: true, changed: true, msg: 'non-zero return code 2: oops' });
    expect(result.data).toMatchObject({
      rc: 2,
      stdout: 'a\nb',
      stderr: 'oops',
      stdout_lines: ['a', 'b'],
      stderr_lines: ['oops'],
      cmd: ['false'],
    });
  });

  it('sends stdin with a newline (stdin_add_newline default) and cds first', async () => {
    const conn = new FakeConnection([{ match: 'exec', reply: {} }]);
    const ctx = contextFor(conn);
    const args = { argv: ['cat'], stdin: 'data', chdir: '/srv/my app' };
    await commandModule.apply(ctx, args, await commandModule.check(ctx, args));
    expect(conn.calls[0]!.opts.stdin).toBe('data\n');
    expect(conn.calls[0]!.script.split('\n')[0]).toBe(
      "cd -- '/srv/my app' 2>/dev/null || { echo 'cairn: cannot change directory' >&2; exit 97; }",
    );
  });
});

describe('creates/removes globs', () => {
  it('keeps * and ? active and quotes the rest', () => {
    expect(quoteGlob('/var/log/app *.log')).toBe("'/var/log/app '*.log");
    expect(quoteGlob('/x/$(touch y)?')).toBe("'/x/$(touch y)'?");
    expect(outsideSingleQuotes(guardProbeScript({ creates: '/tmp/$(reboot)/*' }))).not.toContain('$(reboot)');
  });
});
