/**
 * Gates and order: which phases are open, what a gate still misses, which step comes next, and whether a
 * step may run now. A phase is open when the gates of every phase before it pass; within a phase, steps run
 * in their order (a step may run once every step before it in its phase is done). Every refusal names what
 * is missing and how to get it.
 */
import { CairnError } from '../../core/util/errors.js';
import { formatDayRange } from './days.js';
import { runnerAlive, stepState } from './state.js';
import { describeTargetCheck } from './targets.js';
import type { Checklist, ChecklistPhase, ChecklistStep, RolloutState, StepState } from './types.js';

export interface GateVerdict {
  passed: boolean;
  /** One line per unmet requirement, saying what is missing and what to do. */
  missing: string[];
}

function quoteId(id: string): string {
  return `"${id}"`;
}

/** Why a step that is not done is not done, in words. */
export function notDoneReason(step: ChecklistStep, st: StepState): string {
  switch (st.state) {
    case 'pending':
      return step.spec.kind === 'manual' ? 'is not signed' : 'has not run';
    case 'running':
      return `is running (pid ${st.pid ?? '?'}, since ${st.startedAt ?? '?'})`;
    case 'interrupted':
      return `was interrupted${st.message ? ` (${st.message})` : ''}: run it again`;
    case 'failed':
      return `failed${st.message ? `: ${st.message}` : ''}`;
    case 'done':
      return 'is done';
  }
}

function verificationMissing(step: ChecklistStep, st: StepState): string | undefined {
  const label = `verification ${quoteId(step.id)}`;
  if (st.state !== 'done') return `${label} ${notDoneReason(step, st)} (cairn rollout run ${step.id})`;
  const ev = st.evidence;
  const verify = ev?.kind === 'verify' ? ev : ev?.kind === 'play' ? ev.verify : undefined;
  if (!verify) return `${label} has no verification results recorded (cairn rollout run ${step.id})`;
  if (verify.failed > 0)
    return `${label} is not green: ${verify.failed} of ${verify.checks} checks failed (cairn rollout run ${step.id})`;
  if (verify.checks === 0) return `${label} ran no check: nothing was verified (cairn rollout run ${step.id})`;
  return undefined;
}

function drillMissing(step: ChecklistStep, st: StepState): string | undefined {
  const label = `drill ${quoteId(step.id)}`;
  if (st.state !== 'done') return `${label} ${notDoneReason(step, st)} (cairn rollout run ${step.id})`;
  const ev = st.evidence;
  if (ev?.kind !== 'drill') return `${label} has no drill result recorded (cairn rollout run ${step.id})`;
  if (!ev.passed) return `${label} did not pass: ${ev.msg ?? ev.target}`;
  const missed = ev.targets.filter((t) => !t.met);
  if (missed.length) return `${label} missed its targets: ${missed.map(describeTargetCheck).join('; ')}`;
  return undefined;
}

function signoffMissing(step: ChecklistStep, st: StepState): string | undefined {
  if (st.signoff && st.state === 'done') return undefined;
  return `sign-off ${quoteId(step.id)} is missing (cairn rollout sign ${step.id} --by NAME --note TEXT)`;
}

function stepMissing(step: ChecklistStep, st: StepState): string | undefined {
  if (st.state === 'done') return undefined;
  return `step ${quoteId(step.id)} ${notDoneReason(step, st)}${step.spec.kind === 'manual' ? ` (cairn rollout sign ${step.id} --by NAME --note TEXT)` : ` (cairn rollout run ${step.id})`}`;
}

export function gateVerdict(checklist: Checklist, phase: ChecklistPhase, state: RolloutState): GateVerdict {
  const missing: string[] = [];
  const each = (ids: string[], judge: (step: ChecklistStep, st: StepState) => string | undefined) => {
    for (const id of ids) {
      const step = checklist.steps.get(id)!;
      const why = judge(step, stepState(state, id));
      if (why) missing.push(why);
    }
  };
  each(phase.gate.verifications, verificationMissing);
  each(phase.gate.drills, drillMissing);
  each(phase.gate.signoffs, signoffMissing);
  each(phase.gate.steps, stepMissing);
  return { passed: missing.length === 0, missing };
}

export interface PhaseOpenness {
  open: boolean;
  /** The first earlier phase whose gate has not passed, and what it misses. */
  blockedBy?: { phase: ChecklistPhase; missing: string[] };
}

export function phaseOpenness(checklist: Checklist, phase: ChecklistPhase, state: RolloutState): PhaseOpenness {
  for (const earlier of checklist.phases) {
    if (earlier === phase) return { open: true };
    const verdict = gateVerdict(checklist, earlier, state);
    if (!verdict.passed) return { open: false, blockedBy: { phase: earlier, missing: verdict.missing } };
  }
  return { open: true };
}

export function phaseOf(checklist: Checklist, step: ChecklistStep): ChecklistPhase {
  return checklist.phases.find((p) => p.id === step.phaseId)!;
}

function closedPhaseError(
  phase: ChecklistPhase,
  blockedBy: { phase: ChecklistPhase; missing: string[] },
  what: string,
): CairnError {
  return new CairnError(
    `${what}: phase "${phase.id}" (${phase.name}, ${formatDayRange(phase.days)}) is not open: the gate of phase "${blockedBy.phase.id}" (${blockedBy.phase.name}) has not passed`,
    { kind: 'options', detail: blockedBy.missing.map((m) => `  - ${m}`).join('\n') },
  );
}

/** The step (if any) being run right now by a live process. */
export function runningStep(
  checklist: Checklist,
  state: RolloutState,
): { step: ChecklistStep; st: StepState } | undefined {
  for (const step of checklist.steps.values()) {
    const st = stepState(state, step.id);
    if (st.state === 'running' && runnerAlive(st)) return { step, st };
  }
  return undefined;
}

/**
 * Throw a CairnError saying why `step` may not start (or be signed) now: its phase is closed, an earlier
 * step of its phase is not done, or a step is running.
 */
export function assertStepMayStart(
  checklist: Checklist,
  step: ChecklistStep,
  state: RolloutState,
  action: 'run' | 'sign',
): void {
  const what = `${action === 'sign' ? 'cannot sign' : 'cannot run'} step "${step.id}"`;
  const running = runningStep(checklist, state);
  if (running) {
    throw new CairnError(
      `${what}: step "${running.step.id}" is running (pid ${running.st.pid}, started ${running.st.startedAt}${running.st.by ? ` by ${running.st.by}` : ''}); one step at a time`,
      { kind: 'lock' },
    );
  }
  if (action === 'run' && step.spec.kind === 'manual') {
    throw new CairnError(
      `${what}: it is a manual step; a person does it and signs it off: cairn rollout sign ${step.id} --by NAME --note TEXT`,
      { kind: 'options', detail: `  what to confirm: ${step.spec.instructions}` },
    );
  }
  if (action === 'sign' && step.spec.kind !== 'manual') {
    throw new CairnError(
      `${what}: only manual steps are signed; "${step.id}" is a ${step.spec.kind} step, run it with: cairn rollout run ${step.id}`,
      { kind: 'options' },
    );
  }
  const phase = phaseOf(checklist, step);
  const openness = phaseOpenness(checklist, phase, state);
  if (!openness.open) throw closedPhaseError(phase, openness.blockedBy!, what);
  for (const earlier of phase.steps) {
    if (earlier === step) break;
    const st = stepState(state, earlier.id);
    if (st.state !== 'done') {
      const how =
        earlier.spec.kind === 'manual'
          ? `cairn rollout sign ${earlier.id} --by NAME --note TEXT`
          : `cairn rollout run ${earlier.id}`;
      throw new CairnError(
        `${what}: it comes after step "${earlier.id}" (${earlier.name}), which ${notDoneReason(earlier, st)}; do that first: ${how}`,
        { kind: 'options' },
      );
    }
  }
}

export type NextAction =
  | { kind: 'run'; step: ChecklistStep; phase: ChecklistPhase }
  | { kind: 'sign'; step: ChecklistStep; phase: ChecklistPhase }
  /** Every step of `phase` is done but its gate is not met (e.g. a step of an earlier phase failed since). */
  | { kind: 'gate'; phase: ChecklistPhase; missing: string[] }
  | { kind: 'running'; step: ChecklistStep; st: StepState }
  | { kind: 'complete' };

/** What the plan says to do next: the first step not done in the first phase whose gate is not met. */
export function nextAction(checklist: Checklist, state: RolloutState): NextAction {
  const running = runningStep(checklist, state);
  if (running) return { kind: 'running', ...running };
  for (const phase of checklist.phases) {
    const pending = phase.steps.find((s) => stepState(state, s.id).state !== 'done');
    if (pending) return { kind: pending.spec.kind === 'manual' ? 'sign' : 'run', step: pending, phase };
    const verdict = gateVerdict(checklist, phase, state);
    if (!verdict.passed) return { kind: 'gate', phase, missing: verdict.missing };
  }
  return { kind: 'complete' };
}

/** Resolve `rollout run ID`: a phase or a step. */
export function findTarget(checklist: Checklist, id: string): { phase: ChecklistPhase } | { step: ChecklistStep } {
  const phase = checklist.phases.find((p) => p.id === id);
  if (phase) return { phase };
  const step = checklist.steps.get(id);
  if (step) return { step };
  const all = [...checklist.phases.map((p) => `${p.id} (phase)`), ...[...checklist.steps.keys()]];
  throw new CairnError(`no phase or step "${id}" in ${checklist.file} (known: ${all.join(', ')})`, { kind: 'options' });
}
