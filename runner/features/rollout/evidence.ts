/**
 * A step's evidence, read back from its run journal (.cairn/runs/<run>.ndjson): what the hosts reported,
 * not what the step runner believed. Play and verify steps keep the verification results; drill steps the
 * drill's measured values against the checklist's targets.
 */
import type { RunEvent } from '../../core/engine/events.js';
import { checkTarget } from './targets.js';
import type { DrillEvidence, DrillStepSpec, PlayEvidence, VerifyEvidence, VerifyFailure } from './types.js';

/** Failures listed in the state (the journal keeps them all). */
const MAX_FAILURES_KEPT = 25;

type VerifyResult = Extract<RunEvent, { type: 'verify_result' }>;

function verifySummary(events: RunEvent[]): { checks: number; failed: number; failures: VerifyFailure[] } {
  const results = events.filter((e): e is VerifyResult => e.type === 'verify_result');
  const failed = results.filter((r) => !r.passed);
  return {
    checks: results.length,
    failed: failed.length,
    failures: failed
      .slice(0, MAX_FAILURES_KEPT)
      .map((r) => ({ host: r.host, role: r.role, check: r.check, msg: r.msg })),
  };
}

function hostsOf(events: RunEvent[]): string[] {
  const hosts = new Set<string>();
  for (const e of events) if (e.type === 'play_start') for (const h of e.hosts) hosts.add(h);
  return [...hosts];
}

function lastRecap(events: RunEvent[]): Extract<RunEvent, { type: 'recap' }> | undefined {
  let recap: Extract<RunEvent, { type: 'recap' }> | undefined;
  for (const e of events) if (e.type === 'recap') recap = e;
  return recap;
}

function unreachable(events: RunEvent[]): string[] {
  const hosts = new Set<string>();
  for (const e of events) {
    if (e.type === 'host_unreachable') hosts.add(e.host);
    if (e.type === 'task_result' && e.status === 'unreachable') hosts.add(e.host);
  }
  return [...hosts];
}

function failedHosts(events: RunEvent[]): string[] {
  const recap = lastRecap(events);
  if (recap)
    return Object.entries(recap.stats)
      .filter(([, s]) => s.failed > 0)
      .map(([h]) => h);
  const hosts = new Set<string>();
  for (const e of events) if (e.type === 'host_failed') hosts.add(e.host);
  return [...hosts];
}

export function exitCodeOf(events: RunEvent[]): number | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.type === 'run_end') return e.exitCode;
  }
  return undefined;
}

export function playEvidence(
  events: RunEvent[],
  opts: { check: boolean; validate: boolean; exitCode: number; roles?: string[] },
): PlayEvidence {
  const recap = lastRecap(events);
  const changed = recap ? Object.values(recap.stats).reduce((n, s) => n + s.changed, 0) : 0;
  return {
    kind: 'play',
    check: opts.check,
    validate: opts.validate,
    exitCode: opts.exitCode,
    hosts: hostsOf(events),
    changed,
    failedHosts: failedHosts(events),
    unreachableHosts: unreachable(events),
    roles: opts.roles,
    verify: verifySummary(events),
  };
}

export function verifyEvidence(events: RunEvent[], exitCode: number): VerifyEvidence {
  return {
    kind: 'verify',
    exitCode,
    hosts: hostsOf(events),
    ...verifySummary(events),
    unreachableHosts: unreachable(events),
  };
}

/** The drill's result from the journal (the last drill_result of that drill), checked against the targets. */
export function drillEvidence(events: RunEvent[], spec: DrillStepSpec): DrillEvidence | undefined {
  let result: Extract<RunEvent, { type: 'drill_result' }> | undefined;
  for (const e of events) if (e.type === 'drill_result' && e.drill === spec.drill) result = e;
  if (!result) return undefined;
  return {
    kind: 'drill',
    drill: spec.drill,
    passed: result.passed,
    measured: result.measured,
    target: result.target,
    msg: result.msg,
    targets: spec.targets.map((t) => checkTarget(t, result!.measured)),
  };
}
