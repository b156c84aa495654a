/**
 * Drill targets in the checklist: a bound on one measured value, e.g. `availability_pct: ">= 99.95"` or
 * `latency_p99_ms: "<= 800"`. A drill passes its step only when the drill itself passed and every target
 * holds on what it measured; a value the drill did not measure fails its target (nothing is assumed).
 */
import { TARGET_PATTERN } from './schema.js';
import type { DrillTarget, TargetCheck } from './types.js';

const targetRegex = new RegExp(TARGET_PATTERN);

/** Parse one target; a string saying what is wrong when it is malformed. */
export function parseTarget(key: string, raw: string | number): DrillTarget | string {
  // A bare number means "at least" for nothing in particular, which is ambiguous: ask for an operator.
  if (typeof raw === 'number') return `target "${key}" needs a comparison, e.g. ">= ${raw}" or "<= ${raw}"`;
  const m = targetRegex.exec(raw);
  if (!m) return `target "${key}" must be a comparison such as ">= 99.95" or "<= 800", got ${JSON.stringify(raw)}`;
  const op = ({ '≥': '>=', '≤': '<=' } as Record<string, DrillTarget['op']>)[m[1]!] ?? (m[1] as DrillTarget['op']);
  const valueText = m[2]!;
  const number = Number(valueText);
  if (op !== '==' && !Number.isFinite(number))
    return `target "${key}": ${op} needs a number, got ${JSON.stringify(valueText)}`;
  return { key, op, value: Number.isFinite(number) ? number : valueText, text: `${op} ${valueText}` };
}

export function checkTarget(target: DrillTarget, measured: Record<string, number | string>): TargetCheck {
  const got = measured[target.key];
  const base = { key: target.key, target: target.text };
  if (got === undefined) return { ...base, met: false };
  if (target.op === '==') return { ...base, measured: got, met: String(got) === String(target.value) };
  const value = typeof got === 'number' ? got : Number(got);
  if (!Number.isFinite(value)) return { ...base, measured: got, met: false };
  const want = target.value as number;
  const met =
    target.op === '>='
      ? value >= want
      : target.op === '<='
        ? value <= want
        : target.op === '>'
          ? value > want
          : value < want;
  return { ...base, measured: got, met };
}

export function describeTargetCheck(check: TargetCheck): string {
  const got = check.measured === undefined ? 'not measured' : String(check.measured);
  return `${check.key} ${check.target} (measured ${got})${check.met ? '' : ' — missed'}`;
}
