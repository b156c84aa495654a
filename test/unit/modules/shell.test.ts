import { describe, expect, it } from 'vitest';
import { shellModule } from '../../../runner/core/modules/shell.js';
import { FakeConnection, contextFor, shellWords } from '../../helpers/fake-connection.js';

describe('shell', () => {
  it('passes the whole line as one argument to sh -c (the shell is the point)', async () => {
    const conn = new FakeConnection([{ match: 'exec', reply: { stdout: 'HI\n' } }]);
    const ctx = contextFor(conn);
    const cmd = `echo hi | tr a-z A-Z > "$HOME/out" && echo 'done'`;
    const result = await shellModule.apply(ctx, { cmd }, await shellModule.check(ctx, { cmd }));
    expect(result.data).toMatchObject({ cmd, stdout: 'HI', rc: 0 });
    expect(shellWords(conn.calls[0]!.script.replace(/^exec /, ''))).toEqual(['/bin/sh', '-c', cmd]);
  });

  it('uses executable when given', async () => {
    const conn = new FakeConnection([{ match: 'exec', reply: {} }]);
    const ctx = contextFor(conn);
    await shellModule.apply(
      ctx,
      { cmd: 'echo ${BASH_VERSION}', executable: '/bin/bash' },
      await shellModule.check(ctx, { cmd: 'echo ${BASH_VERSION}', executable: '/bin/bash' }),
    );
    expect(shellWords(conn.calls[0]!.script.replace(/^exec /, ''))).toEqual([
      '/bin/bash',
      '-c',
      'echo ${BASH_VERSION}',
    ]);
  });

  it('check plans "run" and honours creates', async () => {
    const conn = new FakeConnection([{ match: 'for f in', reply: { stdout: 'creates=1\n' } }]);
    const plan = await shellModule.check(contextFor(conn), { cmd: 'make install', creates: '/usr/local/bin/app' });
    expect(plan).toMatchObject({
      changed: false,
      data: { cmd: 'make install', msg: 'skipped, since /usr/local/bin/app exists' },
    });
    expect((await shellModule.check(contextFor(new FakeConnection([])), { cmd: 'make' })).actions).toEqual([
      'run make',
    ]);
  });
});
