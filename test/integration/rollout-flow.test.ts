/**
 * The rollout checklist end to end through the CLI, against real OpenSSH sshd hosts on loopback: steps run
 * in order, a gate blocks the next phase while a verification fails and opens once it passes, a manual step
 * blocks until signed, a drill passes only with its targets, and every step's evidence comes from its run
 * journal.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutStatus } from '../../runner/features/rollout/status.js';
import type { RolloutState } from '../../runner/features/rollout/types.js';
import { jsonEvents, repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();
const playbook = join(repoRoot, 'test', 'fixtures', 'rollout', 'site.yaml');

describe('cairn rollout against real sshd hosts', { timeout: 180_000 }, () => {
  let lab: TestSshLab;
  let stateDir: string;
  let checklist: string;
  let http: Server;

  beforeAll(async () => {
    lab = await startSshHosts(2, { names: ['app1', 'app2'] });
    const inventory = lab.writeInventory(
      { app: ['app1', 'app2'] },
      Object.fromEntries(lab.hosts.map((h) => [h.name, { marker_dir: join(h.dir, 'marker') }])),
    );
    stateDir = join(lab.dir, 'state');
    // The "VIP" for the load probe: a small HTTP server on loopback.
    http = createServer((_req, res) => res.end('ok\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    checklist = join(lab.dir, 'rollout.yaml');
    writeFileSync(
      checklist,
      `name: flow test
inventory: ${inventory}
phases:
  - id: prep
    name: Preparation
    days: D1-D3
    steps:
      - id: validate
        name: Validate the inventory
        play: { playbook: ${playbook}, validate: true }
      - id: apply
        name: Apply the roles
        play: { playbook: ${playbook} }
      - id: check
        name: Verify the roles
        verify: { playbook: ${playbook} }
      - id: approve
        name: Approve
        manual: The verifications are green.
    gate:
      steps: [validate]
      verifications: [check]
      signoffs: [approve]
  - id: live
    name: Go-live
    days: D4-D5
    steps:
      - id: load
        name: Load probe
        drill:
          name: load-probe
          set: { url: "${url}", concurrency: 4, requests: 200, interval_ms: 0 }
          # Loose on time: this tests the gate's mechanics on a busy test machine, not its speed.
          targets: { availability_pct: ">= 99.95", latency_p99_ms: "<= 10000" }
      - id: impossible
        name: A target nobody meets
        drill:
          name: load-probe
          set: { url: "${url}", concurrency: 2, requests: 20, interval_ms: 0 }
          targets: { latency_p99_ms: "< 0" }
    gate:
      drills: [load]
`,
    );
  });
  afterAll(async () => {
    await lab?.stop();
    await new Promise((r) => http?.close(r));
  });

  const rollout = (args: string[]) =>
    runCairn(['rollout', ...args, '--checklist', checklist], {
      env: { CAIRN_STATE_DIR: stateDir, CAIRN_OPERATOR: 'ana' },
    });
  const state = (): RolloutState => JSON.parse(readFileSync(join(stateDir, 'rollout.json'), 'utf8')) as RolloutState;
  const status = async (): Promise<RolloutStatus> => {
    const r = await rollout(['status', '--json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as RolloutStatus;
  };

  it('starts with the first phase open, the next locked, and refuses steps out of order', async () => {
    const s = await status();
    expect(s.phases.map((p) => p.state)).toEqual(['open', 'locked']);
    expect(s.next).toBe('cairn rollout run validate — Validate the inventory');
    const early = await rollout(['run', 'apply']);
    expect(early.code).toBe(5);
    expect(early.stderr).toContain(
      'ERROR! cannot run step "apply": it comes after step "validate" (Validate the inventory), which has not run; do that first: cairn rollout run validate',
    );
  });

  it('runs steps in order with their evidence from the run journal', async () => {
    const next = await rollout(['next']);
    expect(next.code, next.stderr + next.stdout).toBe(0);
    expect(next.stdout).toContain(
      'validated 1 play(s), 2 role(s) (rollout-marker, rollout-extra) and the variables of 2 host(s)',
    );
    const apply = await rollout(['run', 'apply', '--json']);
    expect(apply.code, apply.stderr).toBe(0);
    const events = jsonEvents(apply.stdout);
    const result = events.find((e) => (e as { type: string }).type === 'rollout_step') as unknown as {
      state: string;
      journal: string;
    };
    expect(result.state).toBe('done');
    const st = state().steps.apply!;
    expect(st).toMatchObject({ state: 'done', by: 'ana', runs: 1, journal: result.journal });
    expect(st.pid).toBeUndefined();
    expect(st.evidence).toMatchObject({
      kind: 'play',
      hosts: ['app1', 'app2'],
      failedHosts: [],
      unreachableHosts: [],
      verify: { checks: 6, failed: 0 },
    });
    // The evidence is what the journal says: its recap and verify results.
    const journal = readFileSync(st.journal!, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; passed?: boolean });
    expect(journal.filter((e) => e.type === 'verify_result')).toHaveLength(6);
    expect(readFileSync(join(lab.hosts[1]!.dir, 'marker', 'marker'), 'utf8')).toBe('rolled out by cairn\n');
  });

  it('the gate keeps the next phase closed while a verification fails, and opens once it passes and is signed', async () => {
    const locked = await rollout(['run', 'load']);
    expect(locked.code).toBe(5);
    expect(locked.stderr).toContain(
      'ERROR! cannot run step "load": phase "live" (Go-live, D4–D5) is not open: the gate of phase "prep" (Preparation) has not passed',
    );
    expect(locked.stderr).toContain('verification "check" has not run (cairn rollout run check)');
    expect(locked.stderr).toContain('sign-off "approve" is missing (cairn rollout sign approve --by NAME --note TEXT)');

    // Drift by hand on app2: the verification fails and says where.
    writeFileSync(join(lab.hosts[1]!.dir, 'marker', 'marker'), 'edited by hand\n');
    const failing = await rollout(['run', 'check']);
    expect(failing.code).toBe(2);
    const checkState = state().steps.check!;
    expect(checkState.state).toBe('failed');
    expect(checkState.evidence).toMatchObject({
      kind: 'verify',
      checks: 6,
      failed: 1,
      failures: [{ host: 'app2', role: 'rollout-marker', check: 'marker file holds the text' }],
    });
    expect(checkState.message).toMatch(/^1 of 6 checks failed: app2 rollout-marker: marker file holds the text/);
    // Signing is refused while an earlier step of the phase is not done.
    const tooSoon = await rollout(['sign', 'approve', '--by', 'ana', '--note', 'looks fine']);
    expect(tooSoon.code).toBe(5);
    expect(tooSoon.stderr).toContain(
      'cannot sign step "approve": it comes after step "check" (Verify the roles), which failed: 1 of 6 checks failed',
    );

    // Repair (run the roles again), verify again: green. The gate still wants the sign-off.
    expect((await rollout(['run', 'apply'])).code).toBe(0);
    expect(readFileSync(join(lab.hosts[1]!.dir, 'marker', 'marker'), 'utf8')).toBe('rolled out by cairn\n');
    const green = await rollout(['run', 'check']);
    expect(green.code, green.stderr).toBe(0);
    expect(state().steps.check).toMatchObject({ state: 'done', runs: 2, evidence: { checks: 6, failed: 0 } });
    const stillLocked = await rollout(['next']);
    expect(stillLocked.code).toBe(5);
    expect(stillLocked.stderr).toContain(
      'the next step, "approve" (Approve), is manual: a person does it and signs it off: cairn rollout sign approve --by NAME --note TEXT',
    );
    expect((await status()).phases[1]!.state).toBe('locked');

    // A sign-off needs who and a note; only manual steps are signed.
    expect((await rollout(['sign', 'approve', '--by', 'ana'])).code).toBe(5);
    const notManual = await rollout(['sign', 'check', '--by', 'ana', '--note', 'x']);
    expect(notManual.stderr).toContain('only manual steps are signed; "check" is a verify step');
    const signed = await rollout(['sign', 'approve', '--by', 'Ana Lima', '--note', 'checked the verify output']);
    expect(signed.code, signed.stderr).toBe(0);
    expect(state().steps.approve).toMatchObject({
      state: 'done',
      signoff: { by: 'Ana Lima', note: 'checked the verify output' },
    });
    const s = await status();
    expect(s.phases.map((p) => p.state)).toEqual(['complete', 'open']);
    expect(s.next).toBe('cairn rollout run load — Load probe');
  });

  it('a drill step passes only with its targets met, with the measured values as evidence', async () => {
    const load = await rollout(['next']);
    expect(load.code, load.stderr + load.stdout.slice(-1500)).toBe(0);
    const ev = state().steps.load!.evidence;
    expect(ev).toMatchObject({
      kind: 'drill',
      drill: 'load-probe',
      passed: true,
      measured: { requests: 200, failed: 0, availability_pct: 100, concurrency: 4 },
    });
    expect(ev?.kind === 'drill' && ev.targets.map((t) => [t.key, t.met])).toEqual([
      ['availability_pct', true],
      ['latency_p99_ms', true],
    ]);

    const impossible = await rollout(['run', 'impossible']);
    expect(impossible.code).toBe(2);
    const st = state().steps.impossible!;
    expect(st.state).toBe('failed');
    expect(st.message).toMatch(/^targets missed: latency_p99_ms < 0 \(measured [\d.]+\) — missed$/);
    expect(st.evidence).toMatchObject({ kind: 'drill', passed: true });
  });

  it('status shows state, when, by whom and evidence; reset reopens the question', async () => {
    const text = await rollout(['status']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/✓ Preparation \[prep\] D1–D3 — complete, gate passed/);
    expect(text.stdout).toMatch(/done\s+apply\s+play: Apply the roles \d{4}-\d\d-\d\d \d\d:\d\d by ana/);
    expect(text.stdout).toContain('evidence: 2 hosts, 1 changed, verify 6/6 green'); // the repair of app2's marker
    expect(text.stdout).toContain('evidence: signed by Ana Lima: checked the verify output');
    expect(text.stdout).toMatch(/FAILED\s+impossible/);

    const reset = await rollout(['reset', 'check']);
    expect(reset.code).toBe(0);
    expect(reset.stdout).toBe('reset check (was done); it is pending\n');
    expect(state().steps.check).toBeUndefined();
    expect(state().history.some((h) => h.step === 'check' && h.event === 'reset' && h.note === 'was done')).toBe(true);
    const relocked = await rollout(['run', 'load']);
    expect(relocked.code).toBe(5);
    expect(relocked.stderr).toContain('verification "check" has not run');

    // `run PHASE` runs what is not done, in order: here the verification again.
    const phase = await rollout(['run', 'prep']);
    expect(phase.code, phase.stderr).toBe(0);
    expect(phase.stdout).toContain('== rollout step check (verify): Verify the roles');
    expect(phase.stdout).not.toContain('== rollout step apply');
    expect(phase.stdout).toContain('phase prep: every step is done');
    expect(state().steps.check).toMatchObject({ state: 'done', runs: 1 });
    // ... and stops at a manual step that is not signed.
    await rollout(['reset', 'approve']);
    const stops = await rollout(['run', 'prep']);
    expect(stops.code).toBe(5);
    expect(stops.stderr).toContain(
      'phase "prep" stops at step "approve" (Approve): it needs a sign-off: cairn rollout sign approve --by NAME --note TEXT',
    );
  });

  it("a playbook that is not written yet fails its step when it runs, naming the step's line", async () => {
    const plan = join(lab.dir, 'missing.yaml');
    writeFileSync(
      plan,
      'phases:\n  - id: p\n    name: P\n    days: D1\n    steps:\n      - id: later\n        name: Later\n        play: { playbook: playbooks/not-yet.yaml }\n    gate: { steps: [later] }\n',
    );
    const env = { CAIRN_STATE_DIR: join(lab.dir, 'state-missing') };
    const check = await runCairn(['rollout', 'check', '--checklist', plan], { env });
    expect(check.code).toBe(5);
    expect(check.stdout).toContain(
      `${plan}:6:9: step later: playbook playbooks/not-yet.yaml: does not exist (${join(lab.dir, 'playbooks', 'not-yet.yaml')})`,
    );
    const run = await runCairn(['rollout', 'run', 'later', '--checklist', plan], { env });
    expect(run.code).toBe(2);
    expect(run.stdout).toContain(
      `== rollout step later: failed — ${plan}:6:9: step "later": playbook playbooks/not-yet.yaml does not exist`,
    );
    const st = JSON.parse(readFileSync(join(lab.dir, 'state-missing', 'rollout.json'), 'utf8')) as RolloutState;
    expect(st.steps.later).toMatchObject({ state: 'failed', runs: 1 });
    expect(st.steps.later!.message).toContain('it may not be written yet: write it or change the step');
  });

  it('a malformed checklist is refused with file:line:col', async () => {
    const bad = join(repoRoot, 'test', 'fixtures', 'rollout', 'bad', 'two-kinds.yaml');
    const r = await runCairn(['rollout', 'status', '--checklist', bad], { env: { CAIRN_STATE_DIR: stateDir } });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(
      `ERROR! ${bad}:9:9: rollout checklist: step "apply" must have exactly one of play, verify, drill, migrate, manual; it has play and verify`,
    );
    expect(r.stdout).toBe('');
  });
});
