/**
 * Stale evidence: a step's evidence speaks for the platform as it was when the step ran. When an earlier
 * step that changes hosts (a play, a migration) runs again afterwards, the evidence of every later step that
 * depends on it — same hosts, or same roles — no longer proves anything about the platform as it is now, and
 * is marked stale (in `rollout status` and the HTML report) until that step runs again.
 *
 * Dependence: the two steps' hosts intersect (play/verify evidence lists its hosts; a migration its source
 * and target), or both name roles and those intersect. A drill records no hosts: it exercises the whole
 * platform, so it depends on every earlier changing step. Reruns that change nothing (verify, drill, a play in
 * check or validate mode, a dry-run migration) make nothing stale; manual sign-offs are people's judgement
 * and are left alone.
 */
import { stepState } from './state.js';
import type { Checklist, ChecklistStep, RolloutState, StepEvidence } from './types.js';

export interface StaleMark {
  /** The earlier steps that ran again after this one, in checklist order. */
  since: string[];
  /** Why each one matters, e.g. "base reran 2026-12-07 05:00 (hosts lb1, lb2)". */
  reasons: string[];
}

interface Scope {
  /** undefined: the whole platform (a drill). */
  hosts?: string[];
  roles?: string[];
}

function scopeOf(step: ChecklistStep, evidence: StepEvidence | undefined): Scope | undefined {
  if (!evidence) return undefined;
  const specRoles = step.spec.kind === 'play' || step.spec.kind === 'verify' ? step.spec.roles : undefined;
  switch (evidence.kind) {
    case 'play':
      return { hosts: evidence.hosts, roles: specRoles ?? evidence.roles };
    case 'verify':
      return { hosts: evidence.hosts, roles: specRoles };
    case 'migrate':
      return { hosts: [evidence.source, evidence.target] };
    case 'drill':
      return {};
  }
}

/** The step's run changed hosts (so later evidence may no longer hold). */
function changesHosts(evidence: StepEvidence | undefined): boolean {
  if (!evidence) return false;
  if (evidence.kind === 'play') return !evidence.check && !evidence.validate;
  if (evidence.kind === 'migrate') return !evidence.dryRun;
  return false;
}

function overlap(a: string[] | undefined, b: string[] | undefined): string[] {
  if (!a || !b) return [];
  const set = new Set(a);
  return b.filter((x) => set.has(x));
}

export function staleSteps(checklist: Checklist, state: RolloutState): Map<string, StaleMark> {
  const ordered = checklist.phases.flatMap((p) => p.steps);
  const marks = new Map<string, StaleMark>();
  ordered.forEach((later, index) => {
    const st = stepState(state, later.id);
    const laterScope = scopeOf(later, st.evidence);
    if (!laterScope || !st.finishedAt || st.state === 'running') return;
    for (const earlier of ordered.slice(0, index)) {
      const est = stepState(state, earlier.id);
      if (!changesHosts(est.evidence) || !est.finishedAt || est.finishedAt <= st.finishedAt) continue;
      const earlierScope = scopeOf(earlier, est.evidence)!;
      const hosts =
        laterScope.hosts === undefined ? (earlierScope.hosts ?? []) : overlap(earlierScope.hosts, laterScope.hosts);
      const roles = overlap(earlierScope.roles, laterScope.roles);
      const whole = laterScope.hosts === undefined;
      if (!whole && hosts.length === 0 && roles.length === 0) continue;
      const what = roles.length
        ? `roles ${roles.join(', ')}`
        : whole
          ? 'the platform this drill exercises'
          : `hosts ${hosts.slice(0, 4).join(', ')}${hosts.length > 4 ? ` (+${hosts.length - 4})` : ''}`;
      const mark = marks.get(later.id) ?? { since: [], reasons: [] };
      mark.since.push(earlier.id);
      mark.reasons.push(`${earlier.id} ran again at ${est.finishedAt.replace('T', ' ').slice(0, 16)} (${what})`);
      marks.set(later.id, mark);
    }
  });
  return marks;
}
