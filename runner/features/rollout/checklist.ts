/**
 * Loading the rollout checklist: YAML with positions, the JSON Schema (structure), then the rules a schema
 * cannot say (one kind per step, unique ids, day ranges inside their phase and phases in order, gates that
 * name steps of the right kind, well-formed targets). Every error names file:line:col.
 *
 * Playbooks and drills are NOT required to exist at load time: roles and drills land at different times,
 * and a checklist is written before the work it plans. A missing playbook or an unknown drill is a clear
 * error when that step runs, and `checklistProblems` lists them up front (`cairn rollout status` shows them).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { formatLocation, type SourceLocation } from '../../core/util/errors.js';
import { getDrill, drillNames } from '../drills/registry.js';
import { validateAt } from '../../core/util/schema.js';
import type { Vars } from '../../core/util/vars.js';
import { errorAt, loadYamlFile, parseYaml, type LoadedYaml } from '../../core/util/yaml-source.js';
import { formatDayRange, parseDayRange } from './days.js';
import { checklistSchema, STEP_KINDS } from './schema.js';
import { parseTarget } from './targets.js';
import type {
  Checklist,
  ChecklistPhase,
  ChecklistStep,
  DayRange,
  DrillTarget,
  Gate,
  MigrateEndpoint,
  StepSpec,
} from './types.js';

const ID = /^[a-z0-9][a-z0-9_-]*$/;
const WHAT = 'rollout checklist';

interface RawEndpoint {
  host: string;
  path: string;
  address?: string;
  port?: number;
}
interface RawStep {
  id: string;
  name: string;
  days?: string;
  play?: { playbook: string; limit?: string; roles?: string[]; check?: boolean; validate?: boolean; extra_vars?: Vars };
  verify?: { playbook: string; limit?: string; roles?: string[]; extra_vars?: Vars };
  drill?: {
    name: string;
    set?: Record<string, string | number | boolean>;
    targets?: Record<string, string | number>;
    extra_vars?: Vars;
  };
  migrate?: {
    source: RawEndpoint;
    target: RawEndpoint;
    dry_run?: boolean;
    batches?: number | string[];
    checksum?: boolean;
    delete?: boolean;
    bwlimit_kib?: number;
    exclude?: string[];
  };
  manual?: string | { instructions: string };
}
interface RawGate {
  verifications?: string[];
  drills?: string[];
  signoffs?: string[];
  steps?: string[];
}
interface RawPhase {
  id: string;
  name: string;
  days: string;
  steps: RawStep[];
  gate: RawGate;
}
interface RawChecklist {
  name?: string;
  inventory?: string;
  phases: RawPhase[];
}

export function loadChecklist(file: string): Checklist {
  const path = resolve(file);
  return buildChecklist(loadYamlFile(path, WHAT));
}

/** The same from text (tests, and `-` for stdin one day). */
export function parseChecklist(source: string, file: string): Checklist {
  return buildChecklist(parseYaml(source, resolve(file)));
}

function buildChecklist(loaded: LoadedYaml): Checklist {
  if (loaded.value === null || loaded.value === undefined)
    throw errorAt(loaded, [], `${WHAT} is empty: expected a mapping with "phases"`);
  validateAt(loaded, checklistSchema, WHAT);
  const raw = loaded.value as RawChecklist;
  const dir = dirname(loaded.file);
  const rel = (p: string) => (isAbsolute(p) ? p : resolve(dir, p));
  const seen = new Map<string, (string | number)[]>();
  const claimId = (id: string, path: (string | number)[]) => {
    if (!ID.test(id))
      throw errorAt(
        loaded,
        [...path, 'id'],
        `${WHAT}: id "${id}" must be lower-case letters, digits, "-" and "_", starting with a letter or digit`,
      );
    const earlier = seen.get(id);
    if (earlier)
      throw errorAt(
        loaded,
        [...path, 'id'],
        `${WHAT}: id "${id}" is used twice (first at ${formatLocation(loaded.locate([...earlier, 'id']))}); phase and step ids share one namespace so \`cairn rollout run ID\` is unambiguous`,
      );
    seen.set(id, path);
  };
  const days = (text: string, path: (string | number)[]): DayRange => {
    const range = parseDayRange(text);
    if (!range)
      throw errorAt(
        loaded,
        path,
        `${WHAT}: days must be a plan day or range such as "D8-D21" or "D22", got ${JSON.stringify(text)}`,
      );
    if (range.start < 1) throw errorAt(loaded, path, `${WHAT}: plan days start at D1, got ${JSON.stringify(text)}`);
    if (range.end < range.start)
      throw errorAt(loaded, path, `${WHAT}: day range ${JSON.stringify(text)} ends before it starts`);
    return range;
  };

  const phases: ChecklistPhase[] = [];
  const steps = new Map<string, ChecklistStep>();
  raw.phases.forEach((rawPhase, p) => {
    const phasePath = ['phases', p];
    claimId(rawPhase.id, phasePath);
    const phaseDays = days(rawPhase.days, [...phasePath, 'days']);
    const previous = phases[phases.length - 1];
    if (previous && phaseDays.start <= previous.days.end) {
      throw errorAt(
        loaded,
        [...phasePath, 'days'],
        `${WHAT}: phase "${rawPhase.id}" (${formatDayRange(phaseDays)}) must start after phase "${previous.id}" ends (${formatDayRange(previous.days)}): phases run one after another`,
      );
    }
    const phaseSteps: ChecklistStep[] = rawPhase.steps.map((rawStep, s) => {
      const stepPath = [...phasePath, 'steps', s];
      claimId(rawStep.id, stepPath);
      let stepDays = phaseDays;
      if (rawStep.days !== undefined) {
        stepDays = days(rawStep.days, [...stepPath, 'days']);
        if (stepDays.start < phaseDays.start || stepDays.end > phaseDays.end) {
          throw errorAt(
            loaded,
            [...stepPath, 'days'],
            `${WHAT}: step "${rawStep.id}" is planned for ${formatDayRange(stepDays)}, outside its phase "${rawPhase.id}" (${formatDayRange(phaseDays)})`,
          );
        }
      }
      const step: ChecklistStep = {
        id: rawStep.id,
        name: rawStep.name,
        days: stepDays,
        ownDays: rawStep.days !== undefined,
        spec: stepSpec(loaded, rawStep, stepPath, rel),
        phaseId: rawPhase.id,
        location: loaded.locate(stepPath),
      };
      steps.set(step.id, step);
      return step;
    });
    const phase: ChecklistPhase = {
      id: rawPhase.id,
      name: rawPhase.name,
      days: phaseDays,
      steps: phaseSteps,
      gate: { verifications: [], drills: [], signoffs: [], steps: [], location: loaded.locate([...phasePath, 'gate']) },
      location: loaded.locate(phasePath),
    };
    phases.push(phase);
    phase.gate = buildGate(loaded, rawPhase.gate, [...phasePath, 'gate'], phase, steps, phases);
  });
  return {
    file: loaded.file,
    dir,
    name: raw.name ?? 'Rollout',
    inventory: raw.inventory ? rel(raw.inventory) : undefined,
    phases,
    steps,
  };
}

function stepSpec(loaded: LoadedYaml, raw: RawStep, path: (string | number)[], rel: (p: string) => string): StepSpec {
  const kinds = STEP_KINDS.filter((k) => raw[k] !== undefined);
  if (kinds.length !== 1) {
    const found = kinds.length ? `it has ${kinds.join(' and ')}` : 'it has none';
    throw errorAt(
      loaded,
      kinds.length > 1 ? [...path, kinds[1]!] : [...path, 'id'],
      `${WHAT}: step "${raw.id}" must have exactly one of ${STEP_KINDS.join(', ')}; ${found}`,
      kinds.length > 1 ? 'key' : 'value',
    );
  }
  if (raw.play) {
    const play = raw.play;
    if (play.check && play.validate)
      throw errorAt(
        loaded,
        [...path, 'play', 'validate'],
        `${WHAT}: step "${raw.id}": a play step is either check (contact hosts, change nothing) or validate (contact no host), not both`,
      );
    return {
      kind: 'play',
      playbook: rel(play.playbook),
      playbookAsWritten: play.playbook,
      limit: play.limit,
      roles: play.roles,
      check: play.check ?? false,
      validate: play.validate ?? false,
      extraVars: play.extra_vars ?? {},
    };
  }
  if (raw.verify) {
    const v = raw.verify;
    return {
      kind: 'verify',
      playbook: rel(v.playbook),
      playbookAsWritten: v.playbook,
      limit: v.limit,
      roles: v.roles,
      extraVars: v.extra_vars ?? {},
    };
  }
  if (raw.drill) {
    const d = raw.drill;
    const targets: DrillTarget[] = [];
    for (const [key, value] of Object.entries(d.targets ?? {})) {
      const parsed = parseTarget(key, value);
      if (typeof parsed === 'string')
        throw errorAt(loaded, [...path, 'drill', 'targets', key], `${WHAT}: step "${raw.id}": ${parsed}`);
      targets.push(parsed);
    }
    const set = Object.fromEntries(Object.entries(d.set ?? {}).map(([k, v]) => [k, String(v)]));
    return { kind: 'drill', drill: d.name, set, targets, extraVars: d.extra_vars ?? {} };
  }
  if (raw.migrate) {
    const m = raw.migrate;
    if (Array.isArray(m.batches)) {
      m.batches.forEach((b, i) => {
        if (b.startsWith('/') || b.split('/').includes('..')) {
          throw errorAt(
            loaded,
            [...path, 'migrate', 'batches', i],
            `${WHAT}: step "${raw.id}": batch ${JSON.stringify(b)} must be a path inside the source folder (relative, without "..")`,
          );
        }
      });
    }
    const endpoint = (e: RawEndpoint): MigrateEndpoint => ({
      host: e.host,
      path: e.path.endsWith('/') ? e.path : `${e.path}/`,
      address: e.address,
      port: e.port,
    });
    const source = endpoint(m.source);
    const target = endpoint(m.target);
    if (source.host === target.host && source.path === target.path) {
      throw errorAt(
        loaded,
        [...path, 'migrate', 'target'],
        `${WHAT}: step "${raw.id}": the target is the source (${source.host}:${source.path})`,
      );
    }
    return {
      kind: 'migrate',
      source,
      target,
      dryRun: m.dry_run ?? false,
      batches: m.batches,
      checksum: m.checksum ?? true,
      delete: m.delete ?? false,
      bwlimitKiB: m.bwlimit_kib,
      exclude: m.exclude ?? [],
    };
  }
  const manual = raw.manual!;
  return { kind: 'manual', instructions: typeof manual === 'string' ? manual : manual.instructions };
}

function buildGate(
  loaded: LoadedYaml,
  raw: RawGate,
  path: (string | number)[],
  phase: ChecklistPhase,
  steps: Map<string, ChecklistStep>,
  phasesSoFar: ChecklistPhase[],
): Gate {
  const reachable = new Set(phasesSoFar.flatMap((p) => p.steps.map((s) => s.id)));
  const check = (field: keyof RawGate, accepts: (step: ChecklistStep) => boolean, expected: string): string[] => {
    const ids = raw[field] ?? [];
    ids.forEach((id, i) => {
      const step = steps.get(id);
      if (!step || !reachable.has(id)) {
        const known = phase.steps.map((s) => s.id).join(', ');
        throw errorAt(
          loaded,
          [...path, field, i],
          `${WHAT}: gate of phase "${phase.id}" names step "${id}", which is not a step of this phase or an earlier one (this phase's steps: ${known})`,
        );
      }
      if (!accepts(step))
        throw errorAt(
          loaded,
          [...path, field, i],
          `${WHAT}: gate of phase "${phase.id}": ${field} must name ${expected}; "${id}" is a ${describeKind(step.spec)} step`,
        );
    });
    return ids;
  };
  return {
    verifications: check(
      'verifications',
      (s) => s.spec.kind === 'verify' || (s.spec.kind === 'play' && !s.spec.check && !s.spec.validate),
      'verify steps (or play steps, which verify after applying)',
    ),
    drills: check('drills', (s) => s.spec.kind === 'drill', 'drill steps'),
    signoffs: check('signoffs', (s) => s.spec.kind === 'manual', 'manual steps'),
    steps: check('steps', () => true, 'steps'),
    location: loaded.locate(path),
  };
}

export function describeKind(spec: StepSpec): string {
  if (spec.kind === 'play') return spec.validate ? 'play (validate)' : spec.check ? 'play (check mode)' : 'play';
  if (spec.kind === 'migrate') return spec.dryRun ? 'migrate (dry run)' : 'migrate';
  return spec.kind;
}

export interface ChecklistProblem {
  step: string;
  location: SourceLocation;
  message: string;
}

/**
 * What would make a step fail at once when it runs: a playbook that does not exist (yet), a drill that is
 * not registered. Not errors at load time (see the file comment); shown by `cairn rollout status`.
 */
export function checklistProblems(checklist: Checklist): ChecklistProblem[] {
  const problems: ChecklistProblem[] = [];
  for (const step of checklist.steps.values()) {
    const spec = step.spec;
    if (spec.kind === 'play' || spec.kind === 'verify') {
      const problem = playbookProblem(spec.playbook);
      if (problem)
        problems.push({
          step: step.id,
          location: step.location,
          message: `playbook ${spec.playbookAsWritten}: ${problem}`,
        });
    } else if (spec.kind === 'drill' && !getDrill(spec.drill)) {
      problems.push({
        step: step.id,
        location: step.location,
        message: `drill "${spec.drill}" is not known to this cairn (drills: ${drillNames().join(', ') || 'none'})`,
      });
    }
  }
  return problems;
}

/** Why a playbook path cannot be run, or undefined. */
export function playbookProblem(path: string): string | undefined {
  if (!existsSync(path)) return `does not exist (${path})`;
  if (!statSync(path).isFile()) return `is not a file (${path})`;
  return undefined;
}
