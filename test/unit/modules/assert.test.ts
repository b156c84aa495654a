import { describe, expect, it } from 'vitest';
import { assertModule } from '../../../runner/core/modules/assert.js';
import { FakeConnection, contextFor } from '../../helpers/fake-connection.js';

describe('assert', () => {
  const ctx = (vars: Record<string, unknown>) => contextFor(new FakeConnection([]), { vars });

  it('passes when every expression is true, without a remote call', async () => {
    const plan = await assertModule.check(ctx({ replicas: 3, role: 'db' }), {
      that: ['replicas == 3', "role == 'db'"],
      success_msg: 'cluster sized',
    });
    expect(plan).toEqual({
      changed: false,
      actions: [],
      data: { msg: 'cluster sized', assertions: ['replicas == 3', "role == 'db'"] },
    });
  });

  it('fails on the first false expression with fail_msg (or msg, or the default)', async () => {
    expect(await assertModule.check(ctx({ replicas: 2 }), { that: 'replicas == 3', fail_msg: 'need 3' })).toMatchObject(
      { failed: 'need 3', data: { assertion: 'replicas == 3', evaluated_to: false } },
    );
    expect((await assertModule.check(ctx({ a: false }), { that: 'a', msg: 'old name' })).failed).toBe('old name');
    expect((await assertModule.check(ctx({ a: false }), { that: ['a'] })).failed).toBe('Assertion failed');
  });

  it('an expression that cannot be evaluated fails with why', async () => {
    const plan = await assertModule.check(ctx({}), { that: 'missing.var' });
    expect(plan.failed).toContain(
      'assertion "missing.var" could not be evaluated: undefined variable "missing.var": "missing" is not defined in expression "missing.var" (at col 1: "missing.var") (nothing is defined at this level)',
    );
  });

  it('judges truth as `when` does (Ansible): an empty list or mapping fails, a non-empty one passes', async () => {
    for (const empty of [[], {}, '', 0, null]) {
      expect((await assertModule.check(ctx({ xs: empty }), { that: 'xs' })).failed, JSON.stringify(empty)).toBe(
        'Assertion failed',
      );
    }
    for (const full of [[0], { a: 0 }, 'x', 1]) {
      expect(
        (await assertModule.check(ctx({ xs: full }), { that: 'xs' })).failed,
        JSON.stringify(full),
      ).toBeUndefined();
    }
  });

  it('quiet keeps the result short; apply returns the same data', async () => {
    const c = ctx({ a: true });
    const plan = await assertModule.check(c, { that: 'a', quiet: true });
    expect(plan.data).toEqual({ msg: 'All assertions passed' });
    expect(await assertModule.apply(c, { that: 'a', quiet: true }, plan)).toEqual({
      changed: false,
      data: { msg: 'All assertions passed' },
    });
  });
});
