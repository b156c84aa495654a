/**
 * Where the rollout stands: every phase and step with its state, when and by whom, a one-line summary of
 * its evidence, which plan day it is (from the start date) and what is late. One model, used by
 * `cairn rollout status` (text or --json) and the HTML report.
 */
import { formatDayRange, localDate, planDay } from './days.js';
import { checklistProblems, describeKind, type ChecklistProblem } from './checklist.js';
import { gateVerdict, nextAction, phaseOpenness, type GateVerdict } from './gate.js';
import { stepState } from './state.js';
import { describeTargetCheck } from './targets.js';
import { staleSteps, type StaleMark } from './stale.js';
import type { Checklist, DayRange, RolloutState, SignOff, StepEvidence, StepKind, StepStateName } from './types.js';

export interface StepStatus {
  id: string;
  name: string;
  kind: StepKind;
  kindLabel: string;
  days: DayRange;
  ownDays: boolean;
  state: StepStateName;
  /** When it last ran (finished, else started) or was signed. */
  when?: string;
  by?: string;
  evidence?: StepEvidence;
  /** The evidence in one line. */
  summary?: string;
  message?: string;
  signoff?: SignOff;
  journal?: string;
  runs: number;
  /** Not done and the plan's last day for it has passed. */
  late: boolean;
  /** For a drill step: the drill and the checklist's targets, as written ("availability_pct >= 99.95"). */
  drill?: { name: string; targets: string[] };
  /** Its evidence predates a rerun of an earlier step it depends on (rollout/stale.ts): run it again. */
  stale?: StaleMark;
}

export type PhaseState = 'complete' | 'open' | 'locked';

export interface PhaseStatus {
  id: string;
  name: string;
  days: DayRange;
  state: PhaseState;
  gate: GateVerdict;
  /** Why it is locked: the earlier phase whose gate has not passed. */
  lockedBy?: string;
  late: boolean;
  steps: StepStatus[];
}

export interface RolloutStatus {
  checklist: string;
  name: string;
  startDate?: string;
  startedBy?: string;
  today: string;
  /** Plan day of today (D1 = start date); absent before `rollout start`. */
  day?: number;
  phases: PhaseStatus[];
  next: string;
  late: string[];
  problems: ChecklistProblem[];
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function plural(n: number, word: string): string {
  if (n === 1) return `${n} ${word}`;
  const many = /(s|ch|sh|x)$/.test(word)
    ? `${word}es`
    : /[^aeiou]y$/.test(word)
      ? `${word.slice(0, -1)}ies`
      : `${word}s`;
  return `${n} ${many}`;
}

export function summariseEvidence(evidence: StepEvidence | undefined, signoff?: SignOff): string | undefined {
  if (signoff) return `signed by ${signoff.by}${signoff.note ? `: ${signoff.note}` : ''}`;
  if (!evidence) return undefined;
  switch (evidence.kind) {
    case 'play': {
      const troubles = [
        evidence.failedHosts.length ? `failed: ${evidence.failedHosts.join(', ')}` : '',
        evidence.unreachableHosts.length ? `unreachable: ${evidence.unreachableHosts.join(', ')}` : '',
      ].filter(Boolean);
      if (evidence.validate)
        return `validated ${plural(evidence.roles?.length ?? 0, 'role')} on ${plural(evidence.hosts.length, 'host')}`;
      if (evidence.check)
        return [
          `check mode: ${plural(evidence.hosts.length, 'host')}, ${plural(evidence.changed, 'change')} predicted`,
          ...troubles,
        ].join('; ');
      const verify = evidence.verify.checks
        ? `, verify ${evidence.verify.checks - evidence.verify.failed}/${evidence.verify.checks} green`
        : '';
      return [`${plural(evidence.hosts.length, 'host')}, ${evidence.changed} changed${verify}`, ...troubles].join('; ');
    }
    case 'verify': {
      const failures = evidence.failures
        .slice(0, 2)
        .map((f) => `${f.host} ${f.role}: ${f.check}`)
        .join('; ');
      return evidence.failed
        ? `${evidence.failed} of ${plural(evidence.checks, 'check')} failed (${failures}${evidence.failed > 2 ? '; …' : ''})`
        : `${plural(evidence.checks, 'check')} green on ${plural(evidence.hosts.length, 'host')}`;
    }
    case 'drill': {
      const measured = Object.entries(evidence.measured)
        .slice(0, 4)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      const targets = evidence.targets.map(describeTargetCheck).join('; ');
      return `${evidence.passed ? 'passed' : 'did not pass'}${measured ? `: ${measured}` : ''}${targets ? ` | targets: ${targets}` : ''}`;
    }
    case 'migrate': {
      const files = evidence.batches.reduce((n, b) => n + b.filesTransferred, 0);
      const size = evidence.batches.reduce((n, b) => n + b.bytesTransferred, 0);
      const compared = evidence.batches.reduce((n, b) => n + (b.checksums?.compared ?? 0), 0);
      const resumed = evidence.resumed.length ? `, resumed after ${plural(evidence.resumed.length, 'entry')}` : '';
      const repaired = evidence.batches.reduce((n, b) => n + (b.checksums?.repaired?.length ?? 0), 0);
      const again = repaired ? ` (${plural(repaired, 'file')} copied again after a checksum mismatch)` : '';
      if (evidence.dryRun)
        return `dry run: ${plural(evidence.batches.length, 'batch')}, ${plural(files, 'file')} (${bytes(size)}) would be sent`;
      return `${plural(evidence.batches.length, 'batch')}, ${plural(files, 'file')} (${bytes(size)}) sent${compared ? `, checksums of ${plural(compared, 'file')} match` : ''}${again}${resumed}`;
    }
  }
}

export function rolloutStatus(checklist: Checklist, state: RolloutState, today: string = localDate()): RolloutStatus {
  const day = state.startDate ? planDay(state.startDate, today) : undefined;
  const late: string[] = [];
  const stale = staleSteps(checklist, state);
  const phases: PhaseStatus[] = checklist.phases.map((phase) => {
    const gate = gateVerdict(checklist, phase, state);
    const openness = phaseOpenness(checklist, phase, state);
    const steps: StepStatus[] = phase.steps.map((step) => {
      const st = stepState(state, step.id);
      const stepLate = day !== undefined && st.state !== 'done' && day > step.days.end;
      if (stepLate)
        late.push(
          `step ${step.id} (${step.name}) was due by ${formatDayRange({ start: step.days.end, end: step.days.end })} and is ${st.state}`,
        );
      return {
        id: step.id,
        name: step.name,
        kind: step.spec.kind,
        kindLabel: describeKind(step.spec),
        days: step.days,
        ownDays: step.ownDays,
        state: st.state,
        when: st.signoff?.at ?? st.finishedAt ?? st.startedAt,
        by: st.signoff?.by ?? st.by,
        evidence: st.evidence,
        summary: summariseEvidence(st.evidence, st.signoff),
        message: st.message,
        signoff: st.signoff,
        journal: st.journal,
        runs: st.runs,
        late: stepLate,
        drill:
          step.spec.kind === 'drill'
            ? { name: step.spec.drill, targets: step.spec.targets.map((t) => `${t.key} ${t.text}`) }
            : undefined,
        stale: stale.get(step.id),
      };
    });
    const complete = gate.passed && steps.every((s) => s.state === 'done');
    const phaseLate = day !== undefined && !gate.passed && day > phase.days.end;
    if (phaseLate)
      late.push(`phase ${phase.id} (${phase.name}, ${formatDayRange(phase.days)}): its gate has not passed`);
    return {
      id: phase.id,
      name: phase.name,
      days: phase.days,
      state: complete ? 'complete' : openness.open ? 'open' : 'locked',
      gate,
      lockedBy: openness.blockedBy?.phase.id,
      late: phaseLate,
      steps,
    };
  });
  return {
    checklist: checklist.file,
    name: checklist.name,
    startDate: state.startDate,
    startedBy: state.startedBy,
    today,
    day,
    phases,
    next: describeNext(checklist, state),
    late,
    problems: checklistProblems(checklist),
  };
}

export function describeNext(checklist: Checklist, state: RolloutState): string {
  const next = nextAction(checklist, state);
  switch (next.kind) {
    case 'complete':
      return 'every phase is complete and every gate has passed';
    case 'running':
      return `step ${next.step.id} is running (pid ${next.st.pid}, started ${next.st.startedAt}${next.st.by ? ` by ${next.st.by}` : ''})`;
    case 'run': {
      const st = stepState(state, next.step.id);
      const again =
        st.state === 'failed' || st.state === 'interrupted'
          ? ` (again: it ${st.state === 'failed' ? 'failed' : 'was interrupted'})`
          : '';
      return `cairn rollout run ${next.step.id}${again} — ${next.step.name}`;
    }
    case 'sign':
      return `cairn rollout sign ${next.step.id} --by NAME --note TEXT — ${next.step.name}`;
    case 'gate':
      return `the gate of phase ${next.phase.id} is not met: ${next.missing.join('; ')}`;
  }
}

const STATE_LABEL: Record<StepStateName, string> = {
  pending: 'pending',
  running: 'RUNNING',
  done: 'done',
  failed: 'FAILED',
  interrupted: 'INTERRUPTED',
};
const PHASE_MARK: Record<PhaseState, string> = { complete: '✓', open: '▶', locked: '✗' };

function shortTime(iso: string | undefined): string {
  return iso ? iso.replace('T', ' ').slice(0, 16) : '';
}

/** The status as text for a terminal. */
export function renderStatusText(status: RolloutStatus): string {
  const out: string[] = [];
  const started = status.startDate
    ? `started ${status.startDate}${status.startedBy ? ` by ${status.startedBy}` : ''}; today ${status.today} is ${status.day !== undefined && status.day >= 1 ? `D${status.day}` : `before D1 (D${status.day})`}`
    : 'not started (cairn rollout start --date YYYY-MM-DD sets D1)';
  out.push(`Rollout: ${status.name} (${status.checklist})`);
  out.push(`  ${started}`);
  for (const phase of status.phases) {
    const gate = phase.gate.passed ? 'gate passed' : `gate: ${phase.gate.missing.length} missing`;
    const lock = phase.state === 'locked' ? ` — locked until the gate of ${phase.lockedBy} passes` : '';
    out.push('');
    out.push(
      `${PHASE_MARK[phase.state]} ${phase.name} [${phase.id}] ${formatDayRange(phase.days)} — ${phase.state}, ${gate}${lock}${phase.late ? ' — LATE' : ''}`,
    );
    for (const step of phase.steps) {
      const when = step.when ? ` ${shortTime(step.when)}${step.by ? ` by ${step.by}` : ''}` : '';
      const days = step.ownDays ? ` ${formatDayRange(step.days)}` : '';
      out.push(
        `    ${STATE_LABEL[step.state].padEnd(11)} ${step.id.padEnd(24)} ${step.kindLabel}${days}: ${step.name}${when}${step.late ? ' — LATE' : ''}`,
      );
      if (step.summary) out.push(`    ${''.padEnd(11)} ${''.padEnd(24)} evidence: ${step.summary}`);
      if (step.stale)
        out.push(
          `    ${''.padEnd(11)} ${''.padEnd(24)} STALE: ${step.stale.reasons.join('; ')} — run ${step.id} again`,
        );
      if (step.message && step.state !== 'done')
        out.push(`    ${''.padEnd(11)} ${''.padEnd(24)} ${step.message.split('\n')[0]}`);
    }
    if (!phase.gate.passed && phase.state !== 'locked')
      for (const m of phase.gate.missing) out.push(`    gate needs: ${m}`);
  }
  out.push('');
  out.push(`Next: ${status.next}`);
  if (status.late.length) {
    out.push('Late:');
    for (const l of status.late) out.push(`  - ${l}`);
  }
  if (status.problems.length) {
    out.push('Problems (these steps will fail when run):');
    for (const p of status.problems)
      out.push(
        `  - ${p.location.file}:${p.location.line ?? '?'}:${p.location.col ?? '?'}: step ${p.step}: ${p.message}`,
      );
  }
  return out.join('\n') + '\n';
}
