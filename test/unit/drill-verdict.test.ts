/** The one verdict rule of the drills (features/drills/verdict.ts): passed exactly when no problem was found. */
import { describe, expect, it } from 'vitest';
import { verdict } from '../../runner/features/drills/verdict.js';

describe('verdict', () => {
  it('fails with every problem in msg, and never builds the success text (it may read missing values)', () => {
    const success = () => {
      throw new Error('built the success text of a failed drill');
    };
    expect(
      verdict(['lb1 still serves its old certificate', '3 requests failed'], { failed: 3 }, 'none', success),
    ).toEqual({
      passed: false,
      measured: { failed: 3 },
      target: 'none',
      msg: 'lb1 still serves its old certificate; 3 requests failed',
    });
  });

  it('passes with the success text, or with no msg when none is given', () => {
    expect(verdict([], { s: 1 }, 't', () => 'healed')).toEqual({
      passed: true,
      measured: { s: 1 },
      target: 't',
      msg: 'healed',
    });
    expect(verdict([], {}, 't')).toEqual({ passed: true, measured: {}, target: 't' });
  });
});
