/**
 * Gates, order and the status model, on a small checklist and hand-set states: a gate blocks the next phase
 * while a verification fails and opens once it passes; a manual step blocks until signed; what is late
 * follows the day counter.
 */
import { describe, expect, it } from 'vitest';
import { CairnError } from '../../runner/core/util/errors.js';
import { parseChecklist } from '../../runner/features/rollout/checklist.js';
import { assertStepMayStart, gateVerdict, nextAction, phaseOpenness } from '../../runner/features/rollout/gate.js';
import { emptyState } from '../../runner/features/rollout/state.js';
import { renderStatusText, rolloutStatus } from '../../runner/features/rollout/status.js';
import type { RolloutState, StepState, VerifyEvidence } from '../../runner/features/rollout/types.js';

const checklist = parseChecklist(
  `name: gate test
phases:
  - id: prep
    name: Preparation
    days: D1-D3
    steps:
      - { id: apply, name: Apply, days: D1, play: { playbook: site.yaml } }
      - { id: check, name: Check, days: D2, verify: { playbook: site.yaml } }
      - { id: approve, name: Approve, days: D3, manual: "the checks are green" }
    gate:
      verifications: [check]
      signoffs: [approve]
  - id: live
    name: Go-live
    days: D4-D5
    steps:
      - id: load
        name: Load
        drill: { name: load-probe, targets: { availability_pct: ">= 99.95" } }
    gate:
      drills: [load]
`,
  '/plan/rollout.yaml',
);

function verifyEvidence(failed: number, checks = 4): VerifyEvidence {
  return {
    kind: 'verify',
    exitCode: failed ? 2 : 0,
    hosts: ['web1', 'web2'],
    checks,
    failed,
    failures: failed ? [{ host: 'web2', role: 'haproxy', check: 'every backend UP', msg: 'web1 DOWN' }] : [],
    unreachableHosts: [],
  };
}

function withSteps(steps: Record<string, Partial<StepState>>): RolloutState {
  const state = emptyState();
  for (const [id, st] of Object.entries(steps)) state.steps[id] = { state: 'pending', runs: 1, ...st };
  return state;
}

function refusal(fn: () => void): CairnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

const prep = checklist.phases[0]!;
const live = checklist.phases[1]!;
const load = checklist.steps.get('load')!;

describe('gates', () => {
  it('block the next phase while a verification fails, naming it, and open once it passes and is signed', () => {
    const failing = withSteps({
      apply: { state: 'done' },
      check: { state: 'failed', evidence: verifyEvidence(1), message: '1 of 4 checks failed' },
      approve: { state: 'done', signoff: { by: 'ana', at: '2026-03-03T10:00:00Z', note: 'ok' } },
    });
    expect(gateVerdict(checklist, prep, failing)).toEqual({
      passed: false,
      missing: ['verification "check" failed: 1 of 4 checks failed (cairn rollout run check)'],
    });
    expect(phaseOpenness(checklist, live, failing)).toMatchObject({
      open: false,
      blockedBy: { phase: { id: 'prep' } },
    });
    const err = refusal(() => assertStepMayStart(checklist, load, failing, 'run'));
    expect(err.message).toBe(
      'cannot run step "load": phase "live" (Go-live, D4–D5) is not open: the gate of phase "prep" (Preparation) has not passed',
    );
    expect(err.detail).toContain('verification "check" failed');

    const green = withSteps({
      apply: { state: 'done' },
      check: { state: 'done', evidence: verifyEvidence(0) },
      approve: failing.steps.approve!,
    });
    expect(gateVerdict(checklist, prep, green)).toEqual({ passed: true, missing: [] });
    expect(phaseOpenness(checklist, live, green).open).toBe(true);
    expect(() => assertStepMayStart(checklist, load, green, 'run')).not.toThrow();
  });

  it('a manual step blocks until it is signed', () => {
    const unsigned = withSteps({ apply: { state: 'done' }, check: { state: 'done', evidence: verifyEvidence(0) } });
    expect(gateVerdict(checklist, prep, unsigned).missing).toEqual([
      'sign-off "approve" is missing (cairn rollout sign approve --by NAME --note TEXT)',
    ]);
    expect(nextAction(checklist, unsigned)).toMatchObject({ kind: 'sign', step: { id: 'approve' } });
    const err = refusal(() => assertStepMayStart(checklist, load, unsigned, 'run'));
    expect(err.detail).toContain('sign-off "approve" is missing');
  });

  it('a verification that checked nothing is not green', () => {
    const empty = withSteps({
      apply: { state: 'done' },
      check: { state: 'done', evidence: verifyEvidence(0, 0) },
      approve: { state: 'done', signoff: { by: 'a', at: 'x', note: 'n' } },
    });
    expect(gateVerdict(checklist, prep, empty).missing).toEqual([
      'verification "check" ran no check: nothing was verified (cairn rollout run check)',
    ]);
  });

  it('a drill passes its gate only when it passed and met every target', () => {
    const base = {
      apply: { state: 'done' as const },
      check: { state: 'done' as const, evidence: verifyEvidence(0) },
      approve: { state: 'done' as const, signoff: { by: 'a', at: 'x', note: 'n' } },
    };
    const missed = withSteps({
      ...base,
      load: {
        state: 'failed',
        evidence: {
          kind: 'drill',
          drill: 'load-probe',
          passed: true,
          measured: { availability_pct: 99.9 },
          target: 't',
          targets: [{ key: 'availability_pct', target: '>= 99.95', measured: 99.9, met: false }],
        },
      },
    });
    expect(gateVerdict(checklist, live, missed).missing[0]).toMatch(/^drill "load" failed/);
    // Marked done but the evidence misses a target (e.g. a state edited by hand): still not passed.
    missed.steps.load!.state = 'done';
    expect(gateVerdict(checklist, live, missed).missing).toEqual([
      'drill "load" missed its targets: availability_pct >= 99.95 (measured 99.9) — missed',
    ]);
  });
});

describe('order', () => {
  it('a step waits for the steps before it in its phase; manual steps are signed, not run', () => {
    const fresh = emptyState();
    const err = refusal(() => assertStepMayStart(checklist, checklist.steps.get('check')!, fresh, 'run'));
    expect(err.message).toBe(
      'cannot run step "check": it comes after step "apply" (Apply), which has not run; do that first: cairn rollout run apply',
    );
    expect(refusal(() => assertStepMayStart(checklist, checklist.steps.get('approve')!, fresh, 'run')).message).toMatch(
      /it is a manual step; .* cairn rollout sign approve --by NAME --note TEXT/,
    );
    expect(refusal(() => assertStepMayStart(checklist, checklist.steps.get('apply')!, fresh, 'sign')).message).toMatch(
      /only manual steps are signed; "apply" is a play step/,
    );
    expect(nextAction(checklist, fresh)).toMatchObject({ kind: 'run', step: { id: 'apply' } });
  });

  it('a failed or interrupted step is the next one again; a finished plan is complete', () => {
    const failed = withSteps({ apply: { state: 'interrupted' } });
    expect(nextAction(checklist, failed)).toMatchObject({ kind: 'run', step: { id: 'apply' } });
    const all = withSteps({
      apply: { state: 'done' },
      check: { state: 'done', evidence: verifyEvidence(0) },
      approve: { state: 'done', signoff: { by: 'a', at: 'x', note: 'n' } },
      load: {
        state: 'done',
        evidence: {
          kind: 'drill',
          drill: 'load-probe',
          passed: true,
          measured: { availability_pct: 100 },
          target: 't',
          targets: [{ key: 'availability_pct', target: '>= 99.95', measured: 100, met: true }],
        },
      },
    });
    expect(nextAction(checklist, all)).toEqual({ kind: 'complete' });
  });

  it('one step at a time: a step run by a live process blocks the others', () => {
    const running = withSteps({
      apply: { state: 'running', pid: process.pid, startedAt: '2026-03-02T09:00:00Z', by: 'ana' },
    });
    const err = refusal(() => assertStepMayStart(checklist, checklist.steps.get('apply')!, running, 'run'));
    expect(err.kind).toBe('lock');
    expect(err.message).toMatch(
      /step "apply" is running \(pid \d+, started 2026-03-02T09:00:00Z by ana\); one step at a time/,
    );
  });
});

describe('status and the day counter', () => {
  it('says which plan day it is and what is late', () => {
    const state = withSteps({
      apply: { state: 'done', finishedAt: '2026-03-02T10:00:00Z', by: 'ana' },
      check: { state: 'failed', evidence: verifyEvidence(1), message: '1 of 4 checks failed' },
    });
    state.startDate = '2026-03-02';
    state.startedBy = 'ana';
    const status = rolloutStatus(checklist, state, '2026-03-05');
    expect(status.day).toBe(4);
    expect(status.phases.map((p) => [p.id, p.state, p.late])).toEqual([
      ['prep', 'open', true],
      ['live', 'locked', false],
    ]);
    expect(status.late).toEqual([
      'step check (Check) was due by D2 and is failed',
      'step approve (Approve) was due by D3 and is pending',
      'phase prep (Preparation, D1–D3): its gate has not passed',
    ]);
    expect(status.phases[0]!.steps[1]!.summary).toBe('1 of 4 checks failed (web2 haproxy: every backend UP)');
    const text = renderStatusText(status);
    expect(text).toContain('today 2026-03-05 is D4');
    expect(text).toMatch(/FAILED\s+check\s+verify D2: Check .*— LATE/);
    expect(text).toContain('Next: cairn rollout run check (again: it failed) — Check');
    // Before D1 nothing is late.
    expect(rolloutStatus(checklist, state, '2026-03-01').late).toEqual([]);
  });

  it('without a start date there is no day and nothing is late', () => {
    const status = rolloutStatus(checklist, emptyState(), '2030-01-01');
    expect(status.day).toBeUndefined();
    expect(status.late).toEqual([]);
    expect(renderStatusText(status)).toContain('not started (cairn rollout start --date YYYY-MM-DD sets D1)');
  });
});
