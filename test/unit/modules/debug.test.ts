import { describe, expect, it } from 'vitest';
import { debugModule, NOT_DEFINED } from '../../../runner/core/modules/debug.js';
import { FakeConnection, contextFor } from '../../helpers/fake-connection.js';

describe('debug', () => {
  const conn = new FakeConnection([]);
  const ctx = contextFor(conn, { vars: { cluster: { name: 'prod', size: 3 } } });

  it("shows msg, or Ansible's default", async () => {
    expect((await debugModule.check(ctx, { msg: 'hello' })).data).toEqual({ msg: 'hello' });
    expect((await debugModule.check(ctx, {})).data).toEqual({ msg: 'Hello world!' });
  });

  it('shows a variable by its expression, and says when it is not defined', async () => {
    expect((await debugModule.check(ctx, { var: 'cluster.size' })).data).toEqual({ 'cluster.size': 3 });
    expect((await debugModule.check(ctx, { var: 'nope' })).data).toEqual({ nope: NOT_DEFINED });
    expect(conn.calls).toHaveLength(0);
  });
});
