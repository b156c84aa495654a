/**
 * The rollout checklist (rollout.yaml) and its recorded state (.cairn/rollout.json), as plain data.
 *
 * A checklist is an ordered list of phases, each over a range of plan days (D1–D7 ...), each with ordered
 * steps and one gate. A step is exactly one kind of work: run roles (`play`), check postconditions
 * (`verify`), a timed fault `drill`, a data `migrate` (rsync between hosts), or a `manual` step that a person
 * signs off. The gate of a phase names what must hold before the next phase opens.
 */
import type { SourceLocation } from '../../core/util/errors.js';
import type { Vars } from '../../core/util/vars.js';

/** An inclusive range of plan days, 1-based (D1 is the start date). */
export interface DayRange {
  start: number;
  end: number;
}

export interface PlayStepSpec {
  kind: 'play';
  /** Absolute path (resolved against the checklist's folder). Existence is checked when the step runs. */
  playbook: string;
  /** As written in the checklist, for messages. */
  playbookAsWritten: string;
  limit?: string;
  roles?: string[];
  /** Check mode: predict changes, change nothing (preflight). */
  check: boolean;
  /** Validate only: playbook, roles, inventory and every role's variables on every host; no host is contacted. */
  validate: boolean;
  extraVars: Vars;
}

export interface VerifyStepSpec {
  kind: 'verify';
  playbook: string;
  playbookAsWritten: string;
  limit?: string;
  roles?: string[];
  extraVars: Vars;
}

/** A bound on one measured value of a drill: `availability_pct: ">= 99.95"`. */
export interface DrillTarget {
  key: string;
  op: '>=' | '<=' | '>' | '<' | '==';
  /** A number for the ordering operators; a number or a string for `==`. */
  value: number | string;
  /** As written, for messages ("≥ 99.95"). */
  text: string;
}

export interface DrillStepSpec {
  kind: 'drill';
  drill: string;
  /** `--set` options, as strings. */
  set: Record<string, string>;
  targets: DrillTarget[];
  extraVars: Vars;
}

export interface MigrateEndpoint {
  host: string;
  /** A folder; a trailing slash is added: the folder's content is what is copied. */
  path: string;
  /** How the other host reaches this one (default: the address cairn uses, ansible_host). */
  address?: string;
  port?: number;
}

export interface MigrateStepSpec {
  kind: 'migrate';
  source: MigrateEndpoint;
  target: MigrateEndpoint;
  /** Rehearsal: rsync --dry-run; nothing is written on the target. */
  dryRun: boolean;
  /**
   * Incremental batches: explicit sub-paths of the source folder, or a number N to split the source's
   * top-level entries into N batches. Absent: one batch, the whole folder.
   */
  batches?: string[] | number;
  /** Compare SHA-256 checksums of every file on both sides after each batch (default true). */
  checksum: boolean;
  /** Delete files on the target that the source does not have (default false). */
  delete: boolean;
  /** rsync --bwlimit in KiB/s. */
  bwlimitKiB?: number;
  /** --exclude patterns. */
  exclude: string[];
}

export interface ManualStepSpec {
  kind: 'manual';
  /** What the person signing confirms. */
  instructions: string;
}

export type StepSpec = PlayStepSpec | VerifyStepSpec | DrillStepSpec | MigrateStepSpec | ManualStepSpec;
export type StepKind = StepSpec['kind'];

export interface ChecklistStep {
  id: string;
  name: string;
  /** Days the plan gives this step (within its phase); the phase's days when not given. */
  days: DayRange;
  /** Whether `days` was written on the step (the report draws the phase's range otherwise). */
  ownDays: boolean;
  spec: StepSpec;
  phaseId: string;
  location: SourceLocation;
}

export interface Gate {
  /** verify steps (or play steps, which verify too) whose last run must be green. */
  verifications: string[];
  /** drill steps that must have passed with their targets. */
  drills: string[];
  /** manual steps that must be signed. */
  signoffs: string[];
  /** any other steps that must be done (a migration, a play). */
  steps: string[];
  location: SourceLocation;
}

export interface ChecklistPhase {
  id: string;
  name: string;
  days: DayRange;
  steps: ChecklistStep[];
  gate: Gate;
  location: SourceLocation;
}

export interface Checklist {
  /** Absolute path of the checklist file. */
  file: string;
  /** Folder paths in the checklist are relative to. */
  dir: string;
  name: string;
  /** The inventory the checklist names (absolute), if any; -i wins over it. */
  inventory?: string;
  phases: ChecklistPhase[];
  /** Every step by id. */
  steps: Map<string, ChecklistStep>;
}

// ---------------------------------------------------------------- state

export type StepStateName = 'pending' | 'running' | 'done' | 'failed' | 'interrupted';

export interface SignOff {
  by: string;
  /** ISO time. */
  at: string;
  note: string;
}

export interface VerifyFailure {
  host: string;
  role: string;
  check: string;
  msg?: string;
}

export interface PlayEvidence {
  kind: 'play';
  check: boolean;
  validate: boolean;
  exitCode: number;
  hosts: string[];
  changed: number;
  failedHosts: string[];
  unreachableHosts: string[];
  /** Plays/roles validated (validate mode). */
  roles?: string[];
  verify: { checks: number; failed: number; failures: VerifyFailure[] };
}

export interface VerifyEvidence {
  kind: 'verify';
  exitCode: number;
  hosts: string[];
  checks: number;
  failed: number;
  failures: VerifyFailure[];
  unreachableHosts: string[];
}

export interface TargetCheck {
  key: string;
  target: string;
  measured?: number | string;
  met: boolean;
}

export interface DrillEvidence {
  kind: 'drill';
  drill: string;
  /** The drill's own verdict. */
  passed: boolean;
  measured: Record<string, number | string>;
  /** The drill's own target, in words. */
  target: string;
  msg?: string;
  /** The checklist's targets against the measured values. */
  targets: TargetCheck[];
}

export interface MigrateBatchEvidence {
  name: string;
  /** Files and bytes rsync reported as transferred (or, in a dry run, to transfer). */
  filesTransferred: number;
  bytesTransferred: number;
  /** Regular files on the source within the batch. */
  files: number;
  /** Checksum comparison: files compared and those that differ or are missing on the target. */
  checksums?: {
    compared: number;
    mismatched: string[];
    missing: string[];
    /** Files the first comparison found different (missed by rsync's size+time check), copied again. */
    repaired?: string[];
  };
  durationMs: number;
}

export interface MigrateEvidence {
  kind: 'migrate';
  dryRun: boolean;
  source: string;
  target: string;
  batches: MigrateBatchEvidence[];
  /** Batches already done in an earlier, interrupted run and skipped this time. */
  resumed: string[];
}

export type StepEvidence = PlayEvidence | VerifyEvidence | DrillEvidence | MigrateEvidence;

export interface StepState {
  state: StepStateName;
  /** ISO times of the last run. */
  startedAt?: string;
  finishedAt?: string;
  /** Who ran it (or signed it). */
  by?: string;
  /** The process running it, while `running`: a dead one means the run was cut short. */
  pid?: number;
  procStartTime?: number;
  host?: string;
  runs: number;
  /** The run journal of the last run, and its id. */
  journal?: string;
  runId?: string;
  evidence?: StepEvidence;
  signoff?: SignOff;
  /** A migration's finished batches, kept across interruptions so the next run resumes after them. */
  batchesDone?: string[];
  /** A migration's one-off key folder on the source while it runs; a killed run's is removed by the next. */
  migrateKeyDir?: { host: string; path: string };
  /** Why it failed or was interrupted, in words. */
  message?: string;
}

export interface HistoryEntry {
  at: string;
  step: string;
  /** started | done | failed | interrupted | signed | reset | started-plan */
  event: string;
  by?: string;
  note?: string;
}

export interface RolloutState {
  version: 1;
  /** The checklist this state belongs to (absolute path), for messages. */
  checklist?: string;
  /** Day 1 of the plan, YYYY-MM-DD. */
  startDate?: string;
  startedBy?: string;
  steps: Record<string, StepState>;
  history: HistoryEntry[];
}
