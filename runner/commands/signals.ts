/**
 * The process's interrupts for a session: Ctrl-C (SIGINT), SIGTERM and SIGHUP, and process.exit for a stop.
 * Only the CLI layer touches process signals and exit; app/session.ts receives them as an InterruptSource
 * and decides what each means (README "Exit codes": every one ends the run with 99).
 */
import type { InterruptSignal, InterruptSource } from '../app/session.js';

const SIGNALS: InterruptSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** After SIGHUP the terminal is gone: writing to it fails (EIO, EPIPE), which must not end the cleanup. */
function ignoreClosedTerminal(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

export const processInterrupts: InterruptSource = {
  listen(handler) {
    const listeners = SIGNALS.map((signal) => {
      const listener = () => {
        if (signal === 'SIGHUP') ignoreClosedTerminal();
        handler(signal);
      };
      process.on(signal, listener);
      return [signal, listener] as const;
    });
    return () => {
      for (const [signal, listener] of listeners) process.off(signal, listener);
    };
  },
  exitNow(code) {
    process.exit(code);
  },
};
