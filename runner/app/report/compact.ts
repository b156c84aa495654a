/**
 * The compact console: for runs on many hosts, where the Ansible-style console (a banner per task, a line per
 * host per task; 2,400+ lines for the lab's first site run) cannot be read. It prints only what someone has
 * to act on or wants to know: the plays (one line each), every change (with its actions in check mode and its
 * diff with --diff), every failure and unreachable host, warnings, verification failures, drills, and a recap
 * that lists only the hosts that changed, failed or were unreachable. On a TTY one live line at the bottom
 * shows the progress (hosts running, results so far, the tasks they run), redrawn in place.
 *
 * It is the default from COMPACT_FROM_HOSTS hosts up, announced in the first line; `--full` gives the
 * Ansible-style output back, `--compact` asks for this one on fewer hosts.
 */
import { trafficLine } from './traffic.js';
import type { Writable } from 'node:stream';
import { Chalk, supportsColor, type ChalkInstance } from 'chalk';
import type { EventBus, HostStats, RunEvent } from '../../core/engine/events.js';
import { formatDuration, itemLabel, useFancyOutput } from './console.js';
import { colorDiffStyle, fileDiffLines } from './diff.js';
import type { SecretMasker } from './mask.js';

/** From this many hosts in the run, compact is the default. */
export const COMPACT_FROM_HOSTS = 10;

export type ConsoleMode = 'compact' | 'full';

export function chooseConsoleMode(hostCount: number, flags: { compact?: boolean; full?: boolean }): ConsoleMode {
  if (flags.compact) return 'compact';
  if (flags.full) return 'full';
  return hostCount >= COMPACT_FROM_HOSTS ? 'compact' : 'full';
}

export interface CompactReporterOptions {
  diff: boolean;
  color: boolean;
  tty: boolean;
  masker: SecretMasker;
  stream?: Writable;
  /** Hosts in the run (for the announcement). */
  hostCount: number;
  /** Why compact: chosen by host count, or asked for with --compact. */
  reason: 'default' | 'flag';
  env?: Record<string, string | undefined>;
}

type TaskResultEvent = Extract<RunEvent, { type: 'task_result' }>;

/** Output held before it is written at once (see CompactReporter.write). */
const OUTPUT_BUFFER_CHARS = 64 * 1024;

/** Hosts named in the recap's summary lines before "(+N more)". */
const RECAP_NAMES = 12;

export function attachCompactReporter(bus: EventBus, opts: CompactReporterOptions): () => void {
  const reporter = new CompactReporter(opts);
  const unsubscribe = bus.subscribe((event) => reporter.handle(event));
  // A run left at once (process.exit on a second signal) still prints what was held back.
  const flushAtExit = (): void => reporter.flush();
  process.once('exit', flushAtExit);
  return () => {
    unsubscribe();
    process.removeListener('exit', flushAtExit);
    reporter.close();
  };
}

export class CompactReporter {
  private readonly out: Writable;
  private readonly masker: SecretMasker;
  private readonly fancy: boolean;
  private readonly live: boolean;
  private readonly chalk: ChalkInstance;
  private readonly width: number;
  private checkMode = false;
  /** The status line is on screen (and must be cleared before any other output). */
  private statusShown = false;
  /** host -> task it runs now. */
  private readonly running = new Map<string, string>();
  private play = '';
  private playHosts = 0;
  private results = { ok: 0, changed: 0, failed: 0, unreachable: 0 };
  private readonly failurePrinted = new Set<string>();
  private readonly unreachablePrinted = new Set<string>();
  private lastDraw = 0;
  /** Output not yet written (see write()). */
  private pending: string[] = [];
  private pendingChars = 0;
  private flushSoon: NodeJS.Immediate | undefined;

  constructor(private readonly opts: CompactReporterOptions) {
    this.out = opts.stream ?? process.stdout;
    this.masker = opts.masker;
    this.fancy = useFancyOutput(opts, opts.env);
    const level = supportsColor && supportsColor.level > 0 ? supportsColor.level : 1;
    this.chalk = new Chalk({ level: this.fancy ? level : 0 });
    const columns = (this.out as { columns?: unknown }).columns;
    // The live line needs a terminal that reports its width (it is cut to fit, so it never wraps).
    this.live = opts.tty && typeof columns === 'number' && columns > 20;
    this.width = this.live ? (columns as number) : 80;
  }

  handle(event: RunEvent): void {
    switch (event.type) {
      case 'run_start': {
        this.checkMode = event.check;
        const why = this.opts.reason === 'flag' ? '--compact' : `${this.opts.hostCount} hosts`;
        this.line(
          `cairn ${event.command}: compact output (${why}): changes, failures and the recap only; --full for every task${event.check ? ' [CHECK MODE]' : ''}`,
        );
        break;
      }
      case 'play_start':
        this.checkMode = event.check;
        this.play = event.play;
        this.playHosts = event.hosts.length;
        this.failurePrinted.clear();
        this.unreachablePrinted.clear();
        this.line(
          this.chalk.bold(`PLAY [${event.play}] ${event.hosts.length} host${event.hosts.length === 1 ? '' : 's'}`),
        );
        break;
      case 'task_start':
        this.running.set(event.host, title(event.task));
        this.drawStatus();
        break;
      case 'task_result':
        this.onResult(event);
        break;
      case 'host_unreachable':
        this.running.delete(event.host);
        if (!this.unreachablePrinted.delete(event.host))
          this.line(this.chalk.red.bold(`fatal: [${event.host}]: UNREACHABLE! => ${event.msg}`));
        break;
      case 'host_failed':
        if (!this.failurePrinted.delete(event.host))
          this.line(this.chalk.red(`fatal: [${event.host}]: FAILED! => ${event.msg}`));
        break;
      case 'warning':
        this.line(
          this.chalk.magentaBright(event.host ? `[WARNING]: [${event.host}]: ${event.msg}` : `[WARNING]: ${event.msg}`),
        );
        break;
      case 'verify_result':
        if (!event.passed)
          this.line(
            this.chalk.red(`VERIFY FAILED: [${event.host}] ${event.role}: ${event.check} => ${event.msg ?? 'failed'}`),
          );
        break;
      case 'traffic': {
        const text = trafficLine(event);
        this.line(event.passed === false ? this.chalk.red(text) : text);
        break;
      }
      case 'drill_result': {
        const measured = Object.entries(event.measured)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        const text = `DRILL [${event.drill}] ${event.passed ? 'PASS' : 'FAIL'}: ${measured} (target: ${event.target})${event.msg ? ` => ${event.msg}` : ''}`;
        this.line(event.passed ? this.chalk.green(text) : this.chalk.red(text));
        break;
      }
      case 'play_end':
        this.running.clear();
        this.clearStatus();
        break;
      case 'recap':
        this.running.clear();
        this.onRecap(event.stats);
        break;
      case 'run_end': {
        this.clearStatus();
        const took = formatDuration(event.durationMs);
        const text = event.interrupted
          ? `Interrupted after ${took}, exit code ${event.exitCode}`
          : `Finished in ${took}, exit code ${event.exitCode}`;
        this.line(event.interrupted || event.exitCode !== 0 ? this.chalk.red(text) : this.chalk.green(text));
        this.flush();
        break;
      }
      default:
        break;
    }
  }

  close(): void {
    this.clearStatus();
    this.flush();
  }

  /**
   * Output waits for the end of the event loop's turn and goes out in one write: at 1000 hosts × 50 tasks the
   * compact console prints 50,000 lines, and a write to a pipe is synchronous in Node (on Linux), so one
   * write per line was one system call per line, each blocking the whole run while the reader was slow
   * (12 % of the wall-clock samples of a 100-host profile). At most OUTPUT_BUFFER_CHARS wait; close() writes
   * the rest.
   */
  private write(text: string): void {
    this.pending.push(text);
    this.pendingChars += text.length;
    if (this.pendingChars >= OUTPUT_BUFFER_CHARS) this.flush();
    else this.flushSoon ??= setImmediate(() => this.flush());
  }

  /** Writes what is held back now. */
  flush(): void {
    if (this.flushSoon) clearImmediate(this.flushSoon);
    this.flushSoon = undefined;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    this.out.write(text);
  }

  private onResult(event: TaskResultEvent): void {
    if (event.item === undefined) this.running.delete(event.host);
    const counted = event.item === undefined || event.loopSummary === true;
    if (counted && !event.verify) {
      if (event.status === 'ok' || event.status === 'skipped') this.results.ok++;
      else if (event.status === 'changed') this.results.changed++;
      else if (event.status === 'failed' && !event.ignored) this.results.failed++;
      else if (event.status === 'unreachable') this.results.unreachable++;
    }
    // Verification failures arrive as verify_result events; their task lines are not repeated.
    if (event.verify) return this.drawStatus();
    const where = `[${event.host}] ${title(event.task)}${event.handler ? ' (handler)' : ''}`;
    const item = event.item !== undefined && !event.loopSummary ? ` (item=${itemLabel(event.item)})` : '';
    // A loop reports its items and then a summary: the items say what changed or failed; the summary adds nothing.
    if (event.status === 'changed' && !event.loopSummary) {
      this.line(this.chalk.yellow(`changed: ${where}${item}${event.msg ? ` => ${event.msg}` : ''}`));
      if (this.checkMode || event.check) for (const action of event.actions ?? []) this.line(`    - ${action}`);
      if (this.opts.diff) {
        for (const fileDiff of event.diffs ?? []) {
          for (const l of fileDiffLines(fileDiff, this.masker, this.fancy ? colorDiffStyle(this.chalk) : undefined))
            this.line(l);
        }
      }
    } else if (event.status === 'failed' && !event.ignored) {
      if (!event.loopSummary) this.line(this.chalk.red(`fatal: ${where}${item} => ${event.msg ?? 'failed'}`));
      if (item === '') this.failurePrinted.add(event.host);
    } else if (event.status === 'unreachable') {
      this.line(this.chalk.red.bold(`fatal: ${where}: UNREACHABLE! => ${event.msg ?? 'unreachable'}`));
      this.unreachablePrinted.add(event.host);
    }
    this.drawStatus();
  }

  /** Totals in one line, then only the hosts that changed, failed or were unreachable. */
  private onRecap(stats: Record<string, HostStats>): void {
    this.clearStatus();
    const hosts = Object.keys(stats).sort();
    const sum = (k: keyof HostStats) => hosts.reduce((n, h) => n + stats[h]![k], 0);
    const failed = hosts.filter((h) => stats[h]!.failed > 0);
    const unreachable = hosts.filter((h) => stats[h]!.unreachable > 0);
    const changed = hosts.filter((h) => stats[h]!.changed > 0 && !failed.includes(h) && !unreachable.includes(h));
    const clean = hosts.length - failed.length - unreachable.length - changed.length;
    this.line('');
    this.line(
      this.chalk.bold(`PLAY RECAP ${hosts.length} host${hosts.length === 1 ? '' : 's'}: `) +
        `${clean} unchanged, ${changed.length} changed, ${failed.length} failed, ${unreachable.length} unreachable ` +
        `(tasks: ok=${sum('ok')} changed=${sum('changed')} failed=${sum('failed')} skipped=${sum('skipped')} ignored=${sum('ignored')})`,
    );
    const names = (list: string[]) =>
      list.length > RECAP_NAMES
        ? `${list.slice(0, RECAP_NAMES).join(', ')} (+${list.length - RECAP_NAMES} more)`
        : list.join(', ');
    if (changed.length) this.line(this.chalk.yellow(`  changed: ${names(changed)}`));
    // Every failed and unreachable host gets its own line: those are the ones to act on.
    for (const h of unreachable) this.line(this.chalk.red.bold(`  unreachable: ${h} (${stats[h]!.unreachable})`));
    for (const h of failed)
      this.line(this.chalk.red(`  failed: ${h} (failed=${stats[h]!.failed} changed=${stats[h]!.changed})`));
  }

  // ------------------------------------------------------------------ the live line (TTY only)

  private drawStatus(): void {
    if (!this.live) return;
    const now = Date.now();
    // At most ~10 redraws a second: 100 hosts finishing tasks at once must not flood the terminal.
    if (this.statusShown && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    const byTask = new Map<string, number>();
    for (const task of this.running.values()) byTask.set(task, (byTask.get(task) ?? 0) + 1);
    const top = [...byTask]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 2)
      .map(([t, n]) => `${t} (${n})`)
      .join(', ');
    const r = this.results;
    const text = `[${this.play}] ${this.running.size}/${this.playHosts} hosts running · ok ${r.ok} · changed ${r.changed} · failed ${r.failed}${r.unreachable ? ` · unreachable ${r.unreachable}` : ''}${top ? ` · ${top}` : ''}`;
    const masked = this.masker.mask(text);
    const cut = masked.length > this.width - 1 ? `${masked.slice(0, this.width - 2)}…` : masked;
    this.write(`\r\x1b[2K${cut}`);
    this.statusShown = true;
  }

  private clearStatus(): void {
    if (!this.statusShown) return;
    this.write('\r\x1b[2K');
    this.statusShown = false;
  }

  /** One line of output (masked); the live line is cleared first and redrawn by the next event. */
  private line(text: string): void {
    this.clearStatus();
    const safe = this.masker.hasSecret(text) ? this.masker.mask(text) : text;
    this.write(`${safe.replace(/\r?\n/g, '\n    ')}\n`);
  }
}

function title(task: { name: string; role: string; module: string }): string {
  const name = task.name || task.module;
  return task.role ? `${task.role} : ${name}` : name;
}
