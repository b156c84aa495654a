/**
 * The one polling loop: every drill waits with it, and so does the lab for its fence endpoint. Ask `check`
 * until it returns a value, every `everyMs`, for at most `timeoutMs` (counted from `since`, by default the
 * call) or until Ctrl-C. `check` is asked at least once, and the last pause is cut short so that the last look
 * happens at the deadline, never past it. Returns the value and the milliseconds from `since` to when it was
 * seen, or undefined on timeout or abort.
 */
import { sleep } from './sleep.js';

export interface PollOptions {
  timeoutMs: number;
  everyMs: number;
  signal: AbortSignal;
  /** performance.now() when the wait began, if that was before this call (e.g. when the fault was made). */
  since?: number;
}

export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  opts: PollOptions,
): Promise<{ value: T; afterMs: number } | undefined> {
  const since = opts.since ?? performance.now();
  const deadline = since + opts.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return { value, afterMs: performance.now() - since };
    const left = deadline - performance.now();
    if (opts.signal.aborted || left <= 0) return undefined;
    await sleep(Math.min(opts.everyMs, left), opts.signal);
  }
}
