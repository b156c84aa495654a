import type { DrillOutcome } from './types.js';

/**
 * A drill's outcome from the problems it found: it passed when there are none. `msg` is then the problems
 * joined, or what went well; `success` is a function because its text may read values that exist only when
 * nothing went wrong.
 */
export function verdict(
  problems: readonly string[],
  measured: DrillOutcome['measured'],
  target: string,
  success?: () => string,
): DrillOutcome {
  if (problems.length) return { passed: false, measured, target, msg: problems.join('; ') };
  return success ? { passed: true, measured, target, msg: success() } : { passed: true, measured, target };
}
