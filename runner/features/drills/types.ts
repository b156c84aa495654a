/**
 * Drills: timed fault exercises (stop a backend, fail over a load balancer, raise an alert, restore a
 * backup...). A drill breaks something on purpose, measures what users would see, restores what it broke,
 * and returns a result against a target. `cairn drill NAME` runs one and records it like any run.
 */
import type { Inventory } from '../../core/inventory/types.js';
import type { ExecOptions, ExecResult } from '../../core/transport/types.js';
import type { Vars } from '../../core/util/vars.js';
import type { DriftReport } from '../../app/report/drift.js';

export interface DrillPower {
  /** Orderly halt (the host's systemd shuts down). */
  stop(host: string): Promise<void>;
  /** Power cut: the host dies at once. */
  kill(host: string): Promise<void>;
  /** Boot the host again and wait until sshd answers. */
  start(host: string): Promise<void>;
  /** Pull the host's network cable: it keeps running, cut off from every peer. */
  unplug(host: string): Promise<void>;
  /** Put the cable back. */
  plug(host: string): Promise<void>;
}

/** A lab host as the VM drills see it (runner/features/lab: labHostInfo). */
export interface DrillLabHost {
  kind: 'container' | 'vm';
  running: boolean;
  /** A VM's data disks by index 1..n, sizes in GiB; empty for a container. */
  disksGiB: number[];
}

/** The lab's hands on its VMs' hardware, present only for the built-in lab (`lab: true` in the inventory). */
export interface DrillVm {
  /** What the running lab knows of a host; undefined when it has no such host. */
  host(name: string): DrillLabHost | undefined;
  /** Pull data disk `index` (1-based) out of a running VM through QMP: a device loss, not a command. */
  pullDisk(host: string, index: number): Promise<void>;
  /** Plug a blank disk of the same size into that slot (same serial: the same /dev/disk/by-id path). */
  plugBlankDisk(host: string, index: number): Promise<void>;
  /** Forget the host's pooled connection (after it rebooted): the next exec connects afresh. */
  reconnect(host: string): Promise<void>;
}

/** One verification result of {@link DrillContext.verify}. */
export interface DrillVerifyResult {
  host: string;
  role: string;
  check: string;
  passed: boolean;
  msg?: string;
}

export interface DrillContext {
  inventory: Inventory;
  /** The host's variables (inventory layers and -e), templates not rendered. */
  hostVars(host: string): Vars;
  /** Run a POSIX sh script on a host over its (pooled) SSH connection; quote every value with quote(). */
  exec(host: string, script: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Power control, present only for the built-in lab (`lab: true` in the inventory). */
  power?: DrillPower;
  /** Progress lines for the operator (shown by the console, kept in the journal). */
  log(line: string): void;
  /** Set when the operator pressed Ctrl-C: stop breaking things, restore, return. */
  signal: AbortSignal;
  /** `--set key=value` options (e.g. variant=poweroff), as given. */
  options: Record<string, string>;
  /**
   * Run a playbook with the same inventory, e.g. to put back what the drill changed. Resolves to the exit
   * code an equivalent `cairn play` would have.
   */
  play(playbookPath: string, opts?: { limit?: string; roles?: string[]; extraVars?: Vars }): Promise<number>;
  /** A check-mode run of a playbook, as `cairn drift` makes it: the predicted changes per host and role. */
  drift(playbookPath: string, opts?: { limit?: string; roles?: string[] }): Promise<DriftReport>;
  /**
   * The verify of a playbook's roles, as `cairn verify` runs it (no task runs). Its results are the drill's
   * to judge: they are not reported as the run's own (a drill expects failures while it breaks something).
   */
  verify(
    playbookPath: string,
    opts?: { limit?: string },
  ): Promise<{ results: DrillVerifyResult[]; unreachable: string[] }>;
  /** The lab's VM hardware (disks), present only for the built-in lab. */
  vm?: DrillVm;
}

/** What reading hosts' settings needs (drills and the traffic commands alike): no exec, no plays. */
export type SettingsContext = Pick<DrillContext, 'inventory' | 'hostVars' | 'options'>;

export interface DrillOutcome {
  passed: boolean;
  /** Measured values: seconds, counts, states ("outage_s": 1.2, "failed_requests": 0, "new_master": "lb2"). */
  measured: Record<string, number | string>;
  /** The target in words, e.g. "outage ≤ 3 s (document 000)". */
  target: string;
  msg?: string;
}

export interface Drill {
  name: string;
  /** One line: what it breaks and what it proves. */
  summary: string;
  /** Options it accepts with --set, and what they mean. */
  options?: Record<string, string>;
  run(ctx: DrillContext): Promise<DrillOutcome>;
}
