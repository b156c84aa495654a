import { describe, expect, it } from 'vitest';
import { pollUntil } from '../../runner/core/util/poll.js';

describe("pollUntil (the drills' one polling loop)", () => {
  it('asks until check returns a value, and returns it', async () => {
    let calls = 0;
    const seen = await pollUntil(async () => (++calls === 3 ? 'found' : undefined), {
      timeoutMs: 10_000,
      everyMs: 1,
      signal: new AbortController().signal,
    });
    expect(seen?.value).toBe('found');
    expect(calls).toBe(3);
    expect(seen!.afterMs).toBeGreaterThanOrEqual(0);
  });

  it('asks at least once even with no time left, then gives up', async () => {
    let calls = 0;
    const seen = await pollUntil(async () => void calls++, {
      timeoutMs: 0,
      everyMs: 1,
      signal: new AbortController().signal,
    });
    expect(seen).toBeUndefined();
    expect(calls).toBe(1);
  });

  it('a value seen on the first look is returned even with no time left', async () => {
    const seen = await pollUntil(async () => 0, { timeoutMs: 0, everyMs: 1, signal: new AbortController().signal });
    expect(seen?.value).toBe(0);
  });

  it('stops at Ctrl-C without waiting out the timeout', async () => {
    const controller = new AbortController();
    let calls = 0;
    const seen = await pollUntil(
      async () => {
        if (++calls === 2) controller.abort();
        return undefined;
      },
      { timeoutMs: 3_600_000, everyMs: 1, signal: controller.signal },
    );
    expect(seen).toBeUndefined();
    expect(calls).toBe(2);
  });

  it('counts from `since` when the wait began before the call', async () => {
    const since = performance.now() - 5_000;
    const seen = await pollUntil(async () => true, {
      since,
      timeoutMs: 60_000,
      everyMs: 1,
      signal: new AbortController().signal,
    });
    expect(seen!.afterMs).toBeGreaterThanOrEqual(5_000);
    // Already past the deadline: one look, then undefined.
    let calls = 0;
    expect(
      await pollUntil(async () => void calls++, {
        since,
        timeoutMs: 1_000,
        everyMs: 1,
        signal: new AbortController().signal,
      }),
    ).toBeUndefined();
    expect(calls).toBe(1);
  });
});
