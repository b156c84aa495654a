/**
 * The engine's typed events. The engine only emits; the console, JSON and journal reporters (runner/app/report/)
 * subscribe, and the rollout's HTML report is built later from the journal.
 * Every field is plain data (JSON-serialisable) so the journal can store events as they are.
 */
import type { FileDiff } from '../modules/types.js';

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable' | 'interrupted';

export interface HostStats {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
  skipped: number;
  rescued: number;
  ignored: number;
}

export interface TaskRef {
  name: string;
  role: string;
  module: string;
  /** "file:line:col" of the task. */
  location: string;
}

export type RunEvent =
  | {
      type: 'run_start';
      time: string;
      runId: string;
      command: string;
      check: boolean;
      diff: boolean;
      inventory: string;
      playbook?: string;
    }
  | { type: 'play_start'; time: string; play: string; hosts: string[]; check: boolean }
  | { type: 'batch_start'; time: string; play: string; hosts: string[]; batch: number; batches: number }
  | { type: 'task_start'; time: string; host: string; task: TaskRef; handler?: boolean; verify?: boolean }
  | {
      type: 'task_result';
      time: string;
      host: string;
      task: TaskRef;
      status: TaskStatus;
      /** Set when the task ran a loop: the item this result is for. */
      item?: unknown;
      /**
       * The aggregate result of a looped task, after its per-item results. Recaps count this one (and plain
       * results), never the per-item ones; consoles show it only when it adds something (a failure).
       */
      loopSummary?: boolean;
      msg?: string;
      /** What would be / was done, in words. */
      actions?: string[];
      diffs?: FileDiff[];
      /** Registered data (rc, stdout...), already masked; absent with no_log. */
      result?: Record<string, unknown>;
      durationMs: number;
      handler?: boolean;
      verify?: boolean;
      ignored?: boolean;
      /** A failure inside a block whose rescue runs next (Ansible's recap counts it "rescued", not failed). */
      rescued?: boolean;
      /** The module would have changed the host; set in check mode. */
      check?: boolean;
      attempts?: number;
    }
  | { type: 'handler_notified'; time: string; host: string; handler: string; by: string }
  | {
      /** A host's one connection of the run, opened (host key checked); shown by the console at -vvv. */
      type: 'connection_open';
      time: string;
      host: string;
      transport: 'ssh' | 'local';
      user: string;
      address: string;
      port: number;
      /** Jump hosts, outermost first, as user@address:port. */
      via: string[];
      ms: number;
    }
  | { type: 'host_unreachable'; time: string; host: string; msg: string }
  | { type: 'host_failed'; time: string; host: string; msg: string }
  | { type: 'verify_start'; time: string; play: string; hosts: string[] }
  | {
      type: 'verify_result';
      time: string;
      host: string;
      role: string;
      check: string;
      passed: boolean;
      msg?: string;
      data?: Record<string, unknown>;
    }
  | {
      type: 'drill_result';
      time: string;
      drill: string;
      passed: boolean;
      measured: Record<string, number | string>;
      target: string;
      msg?: string;
      /** The drill's --set options: the drill schedule (drills.yaml) tells its entries' runs apart by them. */
      options?: Record<string, string>;
    }
  | { type: 'warning'; time: string; host?: string; msg: string }
  | {
      /**
       * Traffic control at the front door (`cairn drain`, `cairn canary`): one event per action and load
       * balancer (`host`), e.g. phase "drain", "step", "gate", "rollback"; `data` holds the weights and numbers.
       */
      type: 'traffic';
      time: string;
      command: 'drain' | 'canary';
      host?: string;
      phase: string;
      passed?: boolean;
      msg: string;
      data?: Record<string, number | string>;
    }
  | { type: 'play_end'; time: string; play: string }
  | { type: 'recap'; time: string; stats: Record<string, HostStats> }
  | { type: 'run_end'; time: string; exitCode: number; durationMs: number; interrupted: boolean };

/** Distributes events to subscribers; one subscriber failing never stops the run or the others. */
export class EventBus {
  private readonly listeners: Array<(event: RunEvent) => void> = [];

  subscribe(listener: (event: RunEvent) => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  emit(event: RunEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        process.stderr.write(
          `cairn: a reporter failed on ${event.type}: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
    }
  }
}

export function now(): string {
  return new Date().toISOString();
}

export function emptyStats(): HostStats {
  return { ok: 0, changed: 0, unreachable: 0, failed: 0, skipped: 0, rescued: 0, ignored: 0 };
}
