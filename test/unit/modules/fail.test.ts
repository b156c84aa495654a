import { describe, expect, it } from 'vitest';
import { DEFAULT_FAIL_MSG, failModule } from '../../../runner/core/modules/fail.js';
import { FakeConnection, contextFor } from '../../helpers/fake-connection.js';

describe('fail', () => {
  it('always fails, in check and apply, with its message', async () => {
    const ctx = contextFor(new FakeConnection([]));
    const plan = await failModule.check(ctx, { msg: 'unsupported OS' });
    expect(plan).toMatchObject({ changed: false, failed: 'unsupported OS' });
    expect(await failModule.apply(ctx, { msg: 'unsupported OS' }, plan)).toMatchObject({
      failed: true,
      msg: 'unsupported OS',
    });
    expect((await failModule.check(ctx, {})).failed).toBe(DEFAULT_FAIL_MSG);
  });
});
