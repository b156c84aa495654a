/**
 * The rollout checklist: the default rollout.yaml encodes the documents' plan, and every malformed checklist
 * is refused with file:line:col and what was expected.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../runner/features/drills/rollout.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { packageRoot } from '../../runner/core/util/paths.js';
import { checklistProblems, loadChecklist, parseChecklist } from '../../runner/features/rollout/checklist.js';
import { formatDayRange } from '../../runner/features/rollout/days.js';
import type { DrillStepSpec, MigrateStepSpec, PlayStepSpec } from '../../runner/features/rollout/types.js';

const bad = (name: string) => join(packageRoot(), 'test', 'fixtures', 'rollout', 'bad', name);

function loadError(file: string): CairnError {
  try {
    loadChecklist(file);
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw err;
  }
  throw new Error(`${file} loaded without an error`);
}

describe('the default rollout.yaml', () => {
  const checklist = loadChecklist(join(packageRoot(), 'rollout.yaml'));

  it('has the four phases of document 000 with their day ranges', () => {
    expect(checklist.phases.map((p) => [p.id, formatDayRange(p.days)])).toEqual([
      ['preparation', 'D1–D7'],
      ['deployment', 'D8–D21'],
      ['migration', 'D22–D28'],
      ['go-live', 'D29–D35'],
    ]);
  });

  it('prepares with inventory validation and a check-mode preflight, signed off', () => {
    const prep = checklist.phases[0]!;
    const validation = prep.steps.find((s) => s.id === 'inventory-validation')!.spec as PlayStepSpec;
    const preflight = prep.steps.find((s) => s.id === 'preflight')!.spec as PlayStepSpec;
    expect([validation.kind, validation.validate, validation.check]).toEqual(['play', true, false]);
    expect([preflight.kind, preflight.check, preflight.validate]).toEqual(['play', true, false]);
    expect(prep.gate.steps).toEqual(['inventory-validation', 'preflight']);
    expect(prep.gate.signoffs.length).toBeGreaterThan(0);
  });

  it("deploys the roles in the documents' order, each followed by its verification, and gates on all of them", () => {
    const deploy = checklist.phases[1]!;
    const plays = deploy.steps.filter((s) => s.spec.kind === 'play').map((s) => s.id);
    expect(plays).toEqual(['base', 'zfs', 'kvm', 'ceph', 'haproxy', 'keepalived', 'prometheus', 'backup']);
    for (const id of plays) {
      const index = deploy.steps.findIndex((s) => s.id === id);
      expect(deploy.steps[index + 1]!.spec.kind, `the step after ${id}`).toBe('verify');
      expect(deploy.gate.verifications).toContain(deploy.steps[index + 1]!.id);
    }
    for (const step of deploy.steps.filter((s) => s.spec.kind === 'play' || s.spec.kind === 'verify')) {
      expect((step.spec as PlayStepSpec).playbook.startsWith(join(packageRoot(), 'playbooks') + '/'), step.id).toBe(
        true,
      );
    }
    expect(deploy.gate.drills).toEqual(['load-test']);
  });

  it('migrates with a rehearsal, resumable batches with checksums, and a restore test before the rollback sign-off', () => {
    const migration = checklist.phases[2]!;
    const rehearsal = migration.steps.find((s) => s.id === 'migration-rehearsal')!;
    const batches = migration.steps.find((s) => s.id === 'migration-batches')!;
    expect(formatDayRange(rehearsal.days)).toBe('D22–D23');
    expect(formatDayRange(batches.days)).toBe('D24–D26');
    expect((rehearsal.spec as MigrateStepSpec).dryRun).toBe(true);
    expect(batches.spec).toMatchObject({ kind: 'migrate', dryRun: false, checksum: true, batches: 3 });
    expect(migration.gate.drills).toEqual(['restore-test']);
    expect(migration.gate.signoffs).toContain('rollback-ready');
  });

  it('accepts with the drills of document 004 and the numbers of document 000', () => {
    const live = checklist.phases[3]!;
    const drills = live.steps.filter((s) => s.spec.kind === 'drill').map((s) => (s.spec as DrillStepSpec).drill);
    for (const name of [
      'backend-down',
      'failover',
      'failback',
      'alert-host-down',
      'alert-service-down',
      'restore',
      'vm-migrate',
      'node-poweroff',
      'load-probe',
      'backup-age',
    ])
      expect(drills).toContain(name);
    const load = live.steps.find((s) => s.id === 'acceptance-load')!.spec as DrillStepSpec;
    expect(load.targets.map((t) => `${t.key} ${t.text}`)).toEqual([
      'availability_pct >= 99.95',
      'latency_p99_ms <= 800',
    ]);
    expect(load.set).toMatchObject({ concurrency: '200', interval_ms: '1000' });
    const ha = ['vm-migrate', 'node-poweroff'].map((id) => live.steps.find((s) => s.id === id)!.spec as DrillStepSpec);
    expect(ha.map((spec) => spec.targets.map((t) => `${t.key} ${t.text}`))).toEqual([
      ['migration_s <= 60'],
      ['restart_s <= 120'],
    ]);
    const rpo = live.steps.find((s) => s.id === 'rpo')!.spec as DrillStepSpec;
    expect(rpo.targets.map((t) => t.key)).toEqual(['rpo_s']);
    // Every drill step of the phase is in its gate.
    expect([...live.gate.drills].sort()).toEqual(
      live.steps
        .filter((s) => s.spec.kind === 'drill')
        .map((s) => s.id)
        .sort(),
    );
  });

  it('lists, without failing to load, the steps whose playbook or drill is not there', () => {
    const problems = checklistProblems(checklist);
    // The load-probe and backup-age drills are this area's own and always known.
    expect(problems.some((p) => /^drill "(load-probe|backup-age)"/.test(p.message))).toBe(false);
    for (const p of problems) expect(p.message).toMatch(/does not exist|is not known to this cairn/);
  });
});

describe('a malformed checklist is refused with file:line:col', () => {
  const cases: Array<[file: string, line: number, col: number, message: RegExp]> = [
    ['unknown-key.yaml', 9, 9, /unknown key "plya".*play/],
    [
      'two-kinds.yaml',
      9,
      9,
      /step "apply" must have exactly one of play, verify, drill, migrate, manual; it has play and verify/,
    ],
    ['no-kind.yaml', 6, 13, /step "apply" must have exactly one of .*; it has none/],
    ['duplicate-id.yaml', 9, 13, /id "check" is used twice \(first at .*duplicate-id\.yaml:6:13\)/],
    ['bad-days.yaml', 4, 11, /days must be a plan day or range such as "D8-D21" or "D22", got "D8 to D21"/],
    ['step-outside-phase.yaml', 8, 15, /step "check" is planned for D6–D9, outside its phase "prep" \(D1–D7\)/],
    ['phases-overlap.yaml', 13, 11, /phase "deploy" \(D7–D21\) must start after phase "prep" ends \(D1–D7\)/],
    [
      'gate-unknown-step.yaml',
      10,
      30,
      /gate of phase "prep" names step "verify-later", which is not a step of this phase or an earlier one/,
    ],
    ['gate-wrong-kind.yaml', 10, 18, /signoffs must name manual steps; "check" is a verify step/],
    ['bad-target.yaml', 11, 31, /target "availability_pct" must be a comparison such as ">= 99.95"/],
    ['bad-yaml.yaml', 7, 15, /invalid YAML/],
    ['missing-gate.yaml', 2, 5, /missing the required key "gate"/],
    ['days-number.yaml', 4, 11, /"days" must be a string, got number 7/],
  ];
  it.each(cases)('%s -> line %i col %i', (name, line, col, message) => {
    const err = loadError(bad(name));
    expect(err.location).toEqual({ file: bad(name), line, col });
    expect(err.message).toMatch(message);
    // The detail shows the offending line with a caret under the column.
    expect(err.detail).toMatch(new RegExp(`^${line} \\| `));
    expect(err.render().startsWith(`${bad(name)}:${line}:${col}: `)).toBe(true);
  });

  it("refuses an empty file and a gate that names a later phase's step", () => {
    expect(() => parseChecklist('', '/x/rollout.yaml')).toThrow(/empty: expected a mapping with "phases"/);
    const text = [
      'phases:',
      '  - { id: a, name: A, days: D1, steps: [{ id: s1, name: S1, manual: ok }], gate: { signoffs: [s2] } }',
      '  - { id: b, name: B, days: D2, steps: [{ id: s2, name: S2, manual: ok }], gate: { signoffs: [s2] } }',
    ].join('\n');
    expect(() => parseChecklist(text, '/x/rollout.yaml')).toThrow(
      /gate of phase "a" names step "s2", which is not a step of this phase or an earlier one/,
    );
  });

  it('a play step is check or validate, not both; a migration never targets its own source', () => {
    const both =
      'phases:\n  - { id: a, name: A, days: D1, steps: [{ id: s, name: S, play: { playbook: x.yaml, check: true, validate: true } }], gate: { steps: [s] } }\n';
    expect(() => parseChecklist(both, '/x/r.yaml')).toThrow(/either check .* or validate .*, not both/);
    const self =
      'phases:\n  - { id: a, name: A, days: D1, steps: [{ id: s, name: S, migrate: { source: { host: h, path: /d }, target: { host: h, path: /d/ } } }], gate: { steps: [s] } }\n';
    expect(() => parseChecklist(self, '/x/r.yaml')).toThrow(/the target is the source \(h:\/d\/\)/);
    const escape =
      'phases:\n  - { id: a, name: A, days: D1, steps: [{ id: s, name: S, migrate: { source: { host: h, path: /d }, target: { host: g, path: /d }, batches: [ok, ../etc] } }], gate: { steps: [s] } }\n';
    expect(() => parseChecklist(escape, '/x/r.yaml')).toThrow(
      /batch "..\/etc" must be a path inside the source folder/,
    );
  });

  it("resolves playbook and inventory paths against the checklist's folder", () => {
    const text =
      'inventory: inv/hosts.yaml\nphases:\n  - { id: a, name: A, days: D1-D2, steps: [{ id: s, name: S, play: { playbook: pb/site.yaml } }, { id: t, name: T, days: D2, verify: { playbook: /abs/v.yaml } }], gate: { verifications: [s, t] } }\n';
    const c = parseChecklist(text, '/srv/plan/rollout.yaml');
    expect(c.inventory).toBe('/srv/plan/inv/hosts.yaml');
    expect((c.steps.get('s')!.spec as PlayStepSpec).playbook).toBe('/srv/plan/pb/site.yaml');
    expect((c.steps.get('t')!.spec as PlayStepSpec).playbook).toBe('/abs/v.yaml');
    expect(formatDayRange(c.steps.get('s')!.days)).toBe('D1–D2');
    expect(c.steps.get('s')!.ownDays).toBe(false);
    expect(formatDayRange(c.steps.get('t')!.days)).toBe('D2');
  });
});
