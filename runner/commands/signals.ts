/**
 * The process's interrupts for a session: Ctrl-C (SIGINT) and SIGTERM, and process.exit for the second one.
 * Only the CLI layer touches process signals and exit; app/session.ts receives them as an InterruptSource.
 */
import type { InterruptSource } from '../app/session.js';

export const processInterrupts: InterruptSource = {
  listen(handler) {
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
    return () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    };
  },
  exitNow(code) {
    process.exit(code);
  },
};
