/**
 * Stale evidence (issue 16): rerunning a step that changes hosts marks the evidence of the later steps that
 * depend on it (same hosts or roles; a drill on the whole platform) stale in `rollout status` and the HTML
 * report, until they run again; reruns that change nothing, and unrelated steps, mark nothing.
 */
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../runner/features/rollout/html.js';
import { parseChecklist } from '../../runner/features/rollout/checklist.js';
import { staleSteps } from '../../runner/features/rollout/stale.js';
import { emptyState } from '../../runner/features/rollout/state.js';
import { renderStatusText, rolloutStatus } from '../../runner/features/rollout/status.js';
import type { PlayEvidence, RolloutState, StepEvidence, VerifyEvidence } from '../../runner/features/rollout/types.js';

const checklist = parseChecklist(
  `name: plan
phases:
  - id: deploy
    name: Deploy
    days: D1-D9
    steps:
      - { id: base, name: Base, play: { playbook: base.yaml } }
      - { id: ha, name: HA, play: { playbook: ha.yaml, roles: [haproxy] } }
      - { id: verify-base, name: Verify base, verify: { playbook: base.yaml } }
      - { id: verify-ha, name: Verify HA, verify: { playbook: ha.yaml, roles: [haproxy] } }
      - { id: preflight, name: Preflight, play: { playbook: site.yaml, check: true } }
      - { id: failover, name: Failover, drill: { name: failover } }
    gate: { steps: [base] }
`,
  '/plan/rollout.yaml',
);

const play = (hosts: string[], extra: Partial<PlayEvidence> = {}): PlayEvidence => ({
  kind: 'play',
  check: false,
  validate: false,
  exitCode: 0,
  hosts,
  changed: 1,
  failedHosts: [],
  unreachableHosts: [],
  verify: { checks: 0, failed: 0, failures: [] },
  ...extra,
});
const verify = (hosts: string[]): VerifyEvidence => ({
  kind: 'verify',
  exitCode: 0,
  hosts,
  checks: 2,
  failed: 0,
  failures: [],
  unreachableHosts: [],
});

function ran(state: RolloutState, id: string, minute: number, evidence: StepEvidence): void {
  const at = `2026-03-02T10:${String(minute).padStart(2, '0')}:00.000Z`;
  const runs = (state.steps[id]?.runs ?? 0) + 1;
  state.steps[id] = { state: 'done', startedAt: at, finishedAt: at, runs, evidence };
}

function everythingDone(): RolloutState {
  const state = emptyState();
  state.startDate = '2026-03-02';
  ran(state, 'base', 1, play(['lb1', 'lb2', 'web1']));
  ran(state, 'ha', 2, play(['lb1', 'lb2']));
  ran(state, 'verify-base', 3, verify(['lb1', 'lb2', 'web1']));
  ran(state, 'verify-ha', 4, verify(['lb1', 'lb2']));
  ran(state, 'preflight', 5, play(['lb1', 'lb2', 'web1'], { check: true }));
  ran(state, 'failover', 6, {
    kind: 'drill',
    drill: 'failover',
    passed: true,
    measured: { outage_s: 1.2 },
    target: 'x',
    targets: [],
  });
  return state;
}

describe('stale evidence', () => {
  it('marks nothing when every step ran in order', () => {
    expect([...staleSteps(checklist, everythingDone()).keys()]).toEqual([]);
  });

  it('a rerun of ha on lb1 marks the later steps on lb1 or the haproxy role, and the drill, stale', () => {
    const state = everythingDone();
    ran(state, 'ha', 10, play(['lb1']));
    const stale = staleSteps(checklist, state);
    expect([...stale.keys()]).toEqual(['verify-base', 'verify-ha', 'preflight', 'failover']);
    expect(stale.get('verify-ha')!.since).toEqual(['ha']);
    expect(stale.get('verify-ha')!.reasons[0]).toBe('ha ran again at 2026-03-02 10:10 (roles haproxy)');
    expect(stale.get('verify-base')!.reasons[0]).toBe('ha ran again at 2026-03-02 10:10 (hosts lb1)');
    expect(stale.get('failover')!.reasons[0]).toContain('the platform this drill exercises');
    // Earlier steps are never stale because of a later one.
    expect(stale.has('base')).toBe(false);
  });

  it('steps on other hosts stay valid; running the stale step again clears it', () => {
    const state = everythingDone();
    ran(state, 'ha', 10, play(['lb2']));
    state.steps['verify-base']!.evidence = verify(['web1']);
    let stale = staleSteps(checklist, state);
    expect(stale.has('verify-base')).toBe(false);
    expect(stale.has('verify-ha')).toBe(true);
    ran(state, 'verify-ha', 11, verify(['lb1', 'lb2']));
    ran(state, 'preflight', 12, play(['lb1', 'lb2', 'web1'], { check: true }));
    ran(state, 'failover', 13, {
      kind: 'drill',
      drill: 'failover',
      passed: true,
      measured: {},
      target: 'x',
      targets: [],
    });
    stale = staleSteps(checklist, state);
    expect([...stale.keys()]).toEqual([]);
  });

  it('reruns that change nothing (check mode, verify, drill) mark nothing', () => {
    const state = everythingDone();
    ran(state, 'base', 10, play(['lb1', 'lb2', 'web1'], { check: true }));
    ran(state, 'verify-base', 11, verify(['lb1', 'lb2', 'web1']));
    expect([...staleSteps(checklist, state).keys()]).toEqual([]);
  });

  it('shows in rollout status and in the HTML report', () => {
    const state = everythingDone();
    ran(state, 'base', 10, play(['web1']));
    const status = rolloutStatus(checklist, state, '2026-03-03');
    const text = renderStatusText(status);
    expect(text).toMatch(
      /verify-base .*\n\s+evidence: .*\n\s+STALE: base ran again at 2026-03-02 10:10 \(hosts web1\) — run verify-base again/,
    );
    expect(text).not.toMatch(/verify-ha[^\n]*\n[^\n]*\n\s+STALE/);
    const html = renderReport({
      status,
      matrix: { hosts: [], roles: [], cells: {}, journalsRead: 0 },
      drillRuns: [],
      generatedAt: '2026-03-03T00:00:00.000Z',
    });
    expect(html).toContain('<div class="stale" data-stale="base">');
    expect((html.match(/class="stale"/g) ?? []).length).toBe(3); // verify-base, preflight (web1), failover
  });
});
