/**
 * A pause that ends early when the run is interrupted: drills, retries and waits all sleep through this,
 * so Ctrl-C never waits out a delay. The abort listener is removed when the time passes (no leak over long
 * polling loops).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolveSleep) => {
    if (signal?.aborted) return resolveSleep();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolveSleep();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
