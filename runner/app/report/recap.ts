/**
 * Per-host counts for PLAY RECAP and the run's exit code, counted the way Ansible counts them.
 *
 * Ansible's rules (ansible/ansible lib/ansible/plugins/strategy/__init__.py, StrategyBase
 * `_process_pending_results`, and `StrategyBase.run` for the return code), which cairn follows:
 * - a successful task counts ok+1; if it changed the host, changed+1 as well (changed is a subset of ok);
 * - a failed task counts failed+1 and nothing else; a failure inside a block with a rescue counts rescued+1
 *   instead;
 * - a failed task with ignore_errors counts ok+1 and ignored+1, not failed;
 * - an unreachable host counts unreachable+1 ("dark"); with ignore_unreachable, ok+1 and ignored+1;
 * - a skipped task counts skipped+1;
 * - a looped task counts once, not once per item: its `loopSummary` result when the engine sends one, else its
 *   items folded (failed if any item failed, changed if any changed, skipped only when all were skipped);
 * - verification tasks (`verify: true`) are not counted; a failed `verify_result` makes the host failed for
 *   the exit code.
 * An interrupted task is not counted (Ansible stops without a recap on Ctrl-C); the host is remembered as
 * interrupted.
 *
 * Exit codes, as `StrategyBase.run`: 4 when any host was unreachable (even if others failed), else 2 when any
 * host failed, else 0; 99 on interruption (Ansible's code for a user interrupt). Ansible returns the code of
 * the last play; cairn uses the whole run, so a failure in an early play is not forgotten. cairn adds 3 for
 * `--check --detailed-exitcode` when a change would be made and nothing failed or was unreachable.
 */
import { emptyStats, type EventBus, type HostStats, type RunEvent, type TaskStatus } from '../../core/engine/events.js';
import { ExitCode, type ExitCodeValue } from '../../core/util/errors.js';

type TaskResultEvent = Extract<RunEvent, { type: 'task_result' }>;

/** One task on one host, as counted: a plain result, or a loop's items folded together. */
interface TaskSlot {
  key: string;
  status: TaskStatus;
  ignored: boolean;
  rescued?: boolean;
}

export interface ExitCodeOptions {
  check: boolean;
  detailedExitcode: boolean;
  interrupted: boolean;
}

/** Worst first: the status a loop takes when its items differ. 'skipped' is handled apart (only if all). */
const STATUS_RANK: Record<TaskStatus, number> = {
  interrupted: 5,
  unreachable: 4,
  failed: 3,
  changed: 2,
  ok: 1,
  skipped: 0,
};

/**
 * One host's tally: the counts of its finished task slots, and the slot still open to more loop items (the
 * only one a later event can change). Finished slots are counted and dropped, so the collector holds O(hosts),
 * not a slot per task and host: at 1000 hosts × 50 tasks it used to keep 50,000 slots and their keys to the end
 * of the run (docs/performance.md, "Branch sshperf").
 */
interface HostTally {
  counted: HostStats;
  /** A task slot is counted interrupted on this host (for `--rerun failed` after Ctrl-C). */
  interrupted: boolean;
  /** The last slot, while it is a loop's items that a further item or the loop's summary may still change. */
  open?: TaskSlot;
}

export class RecapCollector {
  private readonly tallies = new Map<string, HostTally>();
  /** Hosts reported unreachable or failed by host-level events (connection lost, any_errors_fatal...). */
  private readonly hostUnreachable = new Set<string>();
  private readonly hostFailed = new Set<string>();
  private readonly unsubscribe: (() => void) | undefined;

  constructor(bus?: EventBus) {
    this.unsubscribe = bus?.subscribe((event) => this.observe(event));
  }

  /** Stop listening to the bus (counts so far are kept). */
  detach(): void {
    this.unsubscribe?.();
  }

  observe(event: RunEvent): void {
    switch (event.type) {
      case 'task_result':
        this.record(event);
        break;
      case 'host_unreachable':
        this.tally(event.host);
        this.hostUnreachable.add(event.host);
        break;
      case 'host_failed':
        this.tally(event.host);
        this.hostFailed.add(event.host);
        break;
      case 'verify_result':
        // A failed verification fails the run for that host even when no task result said so.
        if (!event.passed) {
          this.tally(event.host);
          this.hostFailed.add(event.host);
        }
        break;
      default:
        break;
    }
  }

  /** Per-host counts, hosts in the order they were first seen. */
  stats(): Record<string, HostStats> {
    const result: Record<string, HostStats> = {};
    for (const [host, tally] of this.tallies) {
      const stats = { ...tally.counted };
      if (tally.open) countSlot(stats, tally.open);
      // A host that was lost outside any task (e.g. while connecting) still shows as unreachable once.
      if (stats.unreachable === 0 && this.hostUnreachable.has(host)) stats.unreachable = 1;
      result[host] = stats;
    }
    return result;
  }

  /** Hosts that had an interrupted task (for `--rerun failed` after Ctrl-C). */
  interruptedHosts(): string[] {
    return [...this.tallies]
      .filter(([, tally]) => tally.interrupted || tally.open?.status === 'interrupted')
      .map(([host]) => host);
  }

  /** Task slots held in memory (at most one per host): what the collector keeps is bounded by the hosts. */
  slotsHeld(): number {
    let held = 0;
    for (const tally of this.tallies.values()) if (tally.open) held++;
    return held;
  }

  exitCode(opts: ExitCodeOptions): ExitCodeValue {
    if (opts.interrupted) return ExitCode.interrupted;
    const stats = Object.entries(this.stats());
    if (stats.some(([, s]) => s.unreachable > 0)) return ExitCode.hostUnreachable;
    if (stats.some(([host, s]) => s.failed > 0 || this.hostFailed.has(host))) return ExitCode.hostFailed;
    if (opts.check && opts.detailedExitcode && stats.some(([, s]) => s.changed > 0)) return ExitCode.changesPending;
    return ExitCode.ok;
  }

  private tally(host: string): HostTally {
    let tally = this.tallies.get(host);
    if (tally === undefined) {
      tally = { counted: emptyStats(), interrupted: false };
      this.tallies.set(host, tally);
    }
    return tally;
  }

  private record(event: TaskResultEvent): void {
    const tally = this.tally(event.host);
    // Verification tasks are reported in the VERIFY section, not counted as play tasks (as the engine does);
    // a failed verification still fails the host through its verify_result.
    if (event.verify) return;
    const key = taskKey(event);
    const open = tally.open;
    const isItem = event.item !== undefined;
    const ignored = event.ignored === true;
    if (open !== undefined && open.key === key) {
      if (isItem) {
        open.status = foldLoopStatus(open.status, event.status);
        open.ignored = open.ignored || ignored;
      } else {
        // The loop's own summary result, when the engine sends one, is authoritative: the slot is complete.
        open.status = event.status;
        open.ignored = ignored;
        open.rescued = event.rescued;
        this.close(tally);
      }
      return;
    }
    // Another task: the open loop (if any) can no longer change.
    this.close(tally);
    const slot: TaskSlot = { key, status: event.status, ignored, rescued: event.rescued };
    if (isItem) tally.open = slot;
    else this.count(tally, slot);
  }

  private close(tally: HostTally): void {
    if (tally.open === undefined) return;
    this.count(tally, tally.open);
    tally.open = undefined;
  }

  private count(tally: HostTally, slot: TaskSlot): void {
    countSlot(tally.counted, slot);
    if (slot.status === 'interrupted') tally.interrupted = true;
  }
}

/** Identifies a task across its loop items: where it is defined, and whether it ran as a handler/verify. */
export function taskKey(event: TaskResultEvent): string {
  return `${event.handler ? 'H' : event.verify ? 'V' : 'T'}|${event.task.location}|${event.task.role}|${event.task.name}`;
}

function foldLoopStatus(sofar: TaskStatus, item: TaskStatus): TaskStatus {
  if (sofar === 'skipped') return item;
  if (item === 'skipped') return sofar;
  return STATUS_RANK[item] > STATUS_RANK[sofar] ? item : sofar;
}

function countSlot(stats: HostStats, slot: TaskSlot): void {
  switch (slot.status) {
    case 'ok':
      stats.ok += 1;
      break;
    case 'changed':
      stats.ok += 1;
      stats.changed += 1;
      break;
    case 'skipped':
      stats.skipped += 1;
      break;
    case 'failed':
      if (slot.ignored) {
        stats.ok += 1;
        stats.ignored += 1;
      } else if (slot.rescued) {
        stats.rescued += 1;
      } else {
        stats.failed += 1;
      }
      break;
    case 'unreachable':
      if (slot.ignored) {
        stats.ok += 1;
        stats.ignored += 1;
      } else {
        stats.unreachable += 1;
      }
      break;
    case 'interrupted':
      break;
  }
}
