/**
 * The human console: output shaped like ansible-playbook's default callback so Ansible users read it at a
 * glance (PLAY/TASK banners, `ok: [host]`, `fatal: [host]: FAILED! => msg`, PLAY RECAP), plus cairn's
 * VERIFY and drill sections. Every result line names its host, because the free strategy interleaves hosts.
 *
 * On a colour TTY: chalk colours and an ora spinner naming which hosts run which task. Otherwise (a pipe, a
 * file, NO_COLOR, --no-color): plain lines with no escape codes at all. Every byte written has been through
 * the SecretMasker.
 */
import { trafficLine } from './traffic.js';
import type { Writable } from 'node:stream';
import { Chalk, supportsColor, type ChalkInstance } from 'chalk';
import type { Ora } from 'ora';
import { stringify as toYaml } from 'yaml';
import type { EventBus, HostStats, RunEvent } from '../../core/engine/events.js';
import { colorDiffStyle, fileDiffLines } from './diff.js';
import type { SecretMasker } from './mask.js';
import { terminalSafe } from './terminal.js';

export interface ConsoleReporterOptions {
  /** 0 = default; 1 = -v registered results; 2 = -vv task locations, notifications; 3+ = -vvv per-host detail. */
  verbosity: number;
  /** Show file diffs under results (--diff). */
  diff: boolean;
  /** Colours wanted (false with --no-color). */
  color: boolean;
  /** The stream is a terminal. */
  tty: boolean;
  masker: SecretMasker;
  /** Where to write; process.stdout by default. */
  stream?: Writable;
  /** Environment to read NO_COLOR from; process.env by default. */
  env?: Record<string, string | undefined>;
  /** Line width for banners; the terminal's width on a TTY, else 80. */
  columns?: number;
}

type TaskResultEvent = Extract<RunEvent, { type: 'task_result' }>;
type TaskStartEvent = Extract<RunEvent, { type: 'task_start' }>;
type Paint = (text: string) => string;
/** A piece of a line: plain text, or text with the colour it gets on a colour terminal. */
type Segment = string | { text: string; paint: Paint };

const PLAIN_WIDTH = 80;
/** Continuation lines of a multi-line message are indented under their result line. */
const CONTINUATION = '    ';
/** Ansible's PLAY RECAP host column width (`%-26s`). */
const RECAP_HOST_WIDTH = 26;

/** Colours and a spinner only on a TTY, when colours are wanted and NO_COLOR is unset or empty. */
export function useFancyOutput(
  opts: { tty: boolean; color: boolean },
  env: Record<string, string | undefined> = process.env,
): boolean {
  const noColor = env.NO_COLOR !== undefined && env.NO_COLOR !== '';
  return opts.tty && opts.color && !noColor;
}

/** Subscribe the console reporter; the returned function unsubscribes and stops the spinner. */
type OraFactory = typeof import('ora').default;
let oraFactory: OraFactory | undefined;
let oraLoading: Promise<void> | undefined;

/**
 * Load ora, the spinner, once, in the background: only a colour terminal shows one, and ora's imports cost a
 * run that shows none ~20 ms of start-up CPU (string-width builds an emoji RegExp and an Intl.Segmenter when it
 * loads; issue 17). ora is ESM-only, so this is a dynamic import; the spinner appears when it is in (a few ms,
 * while the first task runs). A failure to load means no spinner, never a failed run.
 */
export function preloadSpinner(): Promise<void> {
  oraLoading ??= import('ora').then(
    (m) => {
      oraFactory = m.default;
    },
    () => undefined,
  );
  return oraLoading;
}

export function attachConsoleReporter(bus: EventBus, opts: ConsoleReporterOptions): () => void {
  const reporter = new ConsoleReporter(opts);
  const unsubscribe = bus.subscribe((event) => reporter.handle(event));
  return () => {
    unsubscribe();
    reporter.close();
  };
}

export class ConsoleReporter {
  private readonly out: Writable;
  private readonly masker: SecretMasker;
  private readonly verbosity: number;
  private readonly showDiff: boolean;
  private readonly fancy: boolean;
  /**
   * ora divides by the stream's width to know how many lines to clear; a terminal that reports no width
   * (0 under `script` without a window size) makes it loop forever, so no width means no spinner.
   */
  private readonly spinnerAllowed: boolean;
  private readonly chalk: ChalkInstance;
  private readonly width: number;
  private spinner: Ora | undefined;
  /** host -> label of the task it is running, for the spinner. */
  private readonly running = new Map<string, string>();
  private checkMode = false;
  /** `cairn run` (ad hoc): results are shown as `ansible -m` shows them, one block per host. */
  private adhoc = false;
  /** Identity of the last banner printed, so a result under another task re-prints its banner. */
  private lastBanner: string | undefined;
  /**
   * Hosts whose failure / unreachability was just printed from a task result. The engine follows such a
   * result with a host-level event saying the same (for no_log tasks with an uncensored message), which is
   * then not printed again.
   */
  private readonly failurePrinted = new Set<string>();
  private readonly unreachablePrinted = new Set<string>();

  constructor(opts: ConsoleReporterOptions) {
    this.out = opts.stream ?? process.stdout;
    this.masker = opts.masker;
    this.verbosity = Math.max(0, Math.min(4, Math.trunc(opts.verbosity)));
    this.showDiff = opts.diff;
    this.fancy = useFancyOutput(opts, opts.env);
    const level = supportsColor && supportsColor.level > 0 ? supportsColor.level : 1;
    this.chalk = new Chalk({ level: this.fancy ? level : 0 });
    const streamColumns = (this.out as { columns?: unknown }).columns;
    this.width =
      opts.columns ??
      (opts.tty && typeof streamColumns === 'number' && streamColumns > 20 ? streamColumns : PLAIN_WIDTH);
    this.spinnerAllowed = this.fancy && typeof streamColumns === 'number' && streamColumns > 0;
    if (this.spinnerAllowed) void preloadSpinner();
  }

  handle(event: RunEvent): void {
    switch (event.type) {
      case 'run_start':
        this.checkMode = event.check;
        this.adhoc = event.command === 'run';
        if (this.verbosity >= 1) {
          const what = event.playbook ? `playbook ${event.playbook}` : event.command;
          this.emitLine(
            `cairn ${event.command}: ${what}, inventory ${event.inventory}${event.check ? ', check mode' : ''}${event.diff ? ', diff' : ''} (run ${event.runId})`,
          );
        }
        break;
      case 'play_start':
        this.checkMode = event.check;
        if (this.adhoc) break;
        this.failurePrinted.clear();
        this.unreachablePrinted.clear();
        // Every play gets its banner, even a second play with the same name.
        this.lastBanner = undefined;
        this.banner(`PLAY [${event.play}]${event.check ? ' [CHECK MODE]' : ''}`, `play|${event.play}`);
        break;
      case 'batch_start':
        if (event.batches > 1)
          this.banner(`BATCH [${event.batch}/${event.batches}] ${hostList(event.hosts)}`, `batch|${event.batch}`);
        break;
      case 'task_start':
        this.onTaskStart(event);
        break;
      case 'task_result':
        this.onTaskResult(event);
        break;
      case 'handler_notified':
        if (this.verbosity >= 2) this.emitLine(`NOTIFIED HANDLER ${event.handler} for ${event.host} (by ${event.by})`);
        break;
      case 'connection_open':
        // Ansible prints its connection setup at -vvv; so does cairn (once per host: one connection a run).
        if (this.verbosity >= 3) {
          const how =
            event.transport === 'local'
              ? 'LOCAL CONNECTION'
              : `SSH CONNECTION FOR USER: ${event.user} to ${event.address}:${event.port}${event.via.length ? ` via ${event.via.join(' -> ')}` : ''}, host key checked`;
          this.emitLine({
            text: `<${event.host}> ESTABLISH ${how} (${(event.ms / 1000).toFixed(2)} s)`,
            paint: this.chalk.blue,
          });
        }
        break;
      case 'host_unreachable':
        this.stopRunning(event.host);
        if (!this.unreachablePrinted.delete(event.host)) {
          this.emitLine(
            { text: `fatal: [${event.host}]: UNREACHABLE! => `, paint: this.chalk.red.bold },
            { text: event.msg, paint: this.chalk.red.bold },
          );
        }
        break;
      case 'host_failed':
        if (!this.failurePrinted.delete(event.host)) {
          this.emitLine(
            { text: `fatal: [${event.host}]: FAILED! => `, paint: this.chalk.red },
            { text: event.msg, paint: this.chalk.red },
          );
        }
        break;
      case 'warning':
        this.emitLine({
          text: event.host ? `[WARNING]: [${event.host}]: ${event.msg}` : `[WARNING]: ${event.msg}`,
          paint: this.chalk.magentaBright,
        });
        break;
      case 'verify_start':
        this.lastBanner = undefined;
        break;
      case 'verify_result':
        this.onVerifyResult(event);
        break;
      case 'drill_result':
        this.onDrillResult(event);
        break;
      case 'traffic':
        this.emitLine({
          text: trafficLine(event),
          paint: event.passed === false ? this.chalk.red : event.passed ? this.chalk.green : this.chalk.cyan,
        });
        break;
      case 'play_end':
        this.clearRunning();
        break;
      case 'recap':
        this.clearRunning();
        // Ad hoc runs end with their per-host blocks, as `ansible -m` does.
        if (!this.adhoc) this.onRecap(event.stats);
        break;
      case 'run_end': {
        this.clearRunning();
        const took = formatDuration(event.durationMs);
        const text = event.interrupted
          ? `Interrupted after ${took}, exit code ${event.exitCode}`
          : `Finished in ${took}, exit code ${event.exitCode}`;
        this.emitLine({ text, paint: event.interrupted || event.exitCode !== 0 ? this.chalk.red : this.chalk.green });
        break;
      }
    }
  }

  /** Stop the spinner (if any) so the process can exit and the cursor comes back. */
  close(): void {
    this.clearRunning();
  }

  // ------------------------------------------------------------------ tasks

  private onTaskStart(event: TaskStartEvent): void {
    this.markRunning(event.host, taskTitle(event.task));
    if (event.verify && this.verbosity < 1) return;
    // The banner is printed with the first result, not at the start: with the free strategy hosts run
    // different tasks at once, and banners printed at start would pile up with no result under them.
    if (this.verbosity < 3) return;
    this.taskBanner(event);
    if (this.verbosity >= 3)
      this.emitLine({ text: `<${event.host}> running module ${event.task.module}`, paint: this.chalk.blue });
  }

  private onTaskResult(event: TaskResultEvent): void {
    if (event.item === undefined) this.stopRunning(event.host);
    if (this.adhoc && !event.verify && !event.handler) {
      this.adhocResult(event);
      return;
    }
    // Verification tasks are reported as VERIFY results; their raw task lines only at -v.
    if (event.verify && this.verbosity < 1) return;
    // A loop's summary repeats its items; it is shown only when it adds a failure.
    if (event.loopSummary && event.status !== 'failed') return;
    this.taskBanner(event);

    const host = event.host;
    const item = event.item !== undefined && !event.loopSummary ? itemLabel(event.item) : undefined;
    const predictedSuffix = event.check && !this.checkMode ? ' [CHECK MODE]' : '';
    const msg = event.msg;
    switch (event.status) {
      case 'ok':
      case 'changed': {
        const paint = event.status === 'ok' ? this.chalk.green : this.chalk.yellow;
        const head = `${event.status}: [${host}]${item !== undefined ? ` => (item=${item})` : ''}${predictedSuffix}`;
        this.emitLine({ text: msg ? `${head} => ${msg}` : head, paint });
        break;
      }
      case 'skipped': {
        const head = `skipping: [${host}]${item !== undefined ? ` => (item=${item})` : ''}`;
        this.emitLine({ text: msg && this.verbosity >= 1 ? `${head} => ${msg}` : head, paint: this.chalk.cyan });
        break;
      }
      case 'failed': {
        const text =
          item !== undefined
            ? `failed: [${host}] (item=${item}) => ${msg ?? 'failed'}`
            : `fatal: [${host}]: FAILED! => ${msg ?? 'failed'}`;
        this.emitLine({ text, paint: this.chalk.red });
        if (item === undefined && !event.ignored && !event.verify) this.failurePrinted.add(host);
        break;
      }
      case 'unreachable': {
        const text = `fatal: [${host}]: UNREACHABLE! ${item !== undefined ? `(item=${item}) ` : ''}=> ${msg ?? 'unreachable'}`;
        this.emitLine({ text, paint: this.chalk.red.bold });
        this.unreachablePrinted.add(host);
        break;
      }
      case 'interrupted':
        this.emitLine({
          text: `interrupted: [${host}]${item !== undefined ? ` (item=${item})` : ''}${msg ? ` => ${msg}` : ''}`,
          paint: this.chalk.red,
        });
        break;
    }

    const showActions = event.status === 'changed' && (event.check === true || this.checkMode || this.verbosity >= 1);
    if (showActions) for (const action of event.actions ?? []) this.emitLine(`${CONTINUATION}- ${action}`);
    if (this.showDiff) this.printDiffs(event);
    if (this.verbosity >= 1 && event.result !== undefined && !event.loopSummary) this.emitYaml(event.result);
    // debug prints its message at every verbosity, as Ansible's does (`ok: [host] => {"msg": ...}`).
    else if (
      event.task.module === 'debug' &&
      event.status === 'ok' &&
      event.result !== undefined &&
      !event.loopSummary
    ) {
      const { changed: _changed, failed: _failed, ...shown } = event.result;
      this.emitYaml(shown);
    }
    if (event.status === 'failed' && event.ignored) this.emitLine({ text: '...ignoring', paint: this.chalk.cyan });
    if (this.verbosity >= 3) {
      const attempts =
        event.attempts !== undefined ? `, ${event.attempts} attempt${event.attempts === 1 ? '' : 's'}` : '';
      this.emitLine({
        text: `<${host}> done in ${formatDuration(event.durationMs)}${attempts}`,
        paint: this.chalk.blue,
      });
    }
  }

  /** Ansible's ad hoc shape: `web1 | CHANGED | rc=0 >>` then the output, or `web1 | SUCCESS => {...}`. */
  private adhocResult(event: TaskResultEvent): void {
    const result = event.result ?? {};
    const label =
      event.status === 'changed'
        ? 'CHANGED'
        : event.status === 'ok'
          ? 'SUCCESS'
          : event.status === 'skipped'
            ? 'SKIPPED'
            : event.status === 'unreachable'
              ? 'UNREACHABLE!'
              : 'FAILED';
    const paint =
      event.status === 'changed'
        ? this.chalk.yellow
        : event.status === 'ok'
          ? this.chalk.green
          : event.status === 'skipped'
            ? this.chalk.cyan
            : this.chalk.red;
    if ((event.task.module === 'command' || event.task.module === 'shell') && typeof result.rc === 'number') {
      const label2 = event.status === 'failed' ? 'FAILED' : label;
      this.emitLine({ text: `${event.host} | ${label2} | rc=${result.rc} >>`, paint });
      const out = [result.stdout, result.stderr]
        .filter((t): t is string => typeof t === 'string' && t.length > 0)
        .join('\n');
      for (const line of out.split('\n')) if (out) this.writeSafe(terminalSafe(this.masker.mask(line)));
      if (event.status === 'failed' && event.msg && !out) this.emitLine({ text: event.msg, paint });
    } else {
      const body = event.status === 'failed' || event.status === 'unreachable' ? { msg: event.msg, ...result } : result;
      this.emitLine(
        { text: `${event.host} | ${label} => `, paint },
        { text: JSON.stringify(this.masker.maskValue(body), null, 4), paint },
      );
    }
    if (this.showDiff) this.printDiffs(event);
  }

  private taskBanner(event: TaskStartEvent | TaskResultEvent): void {
    const key = `task|${event.handler ? 'H' : event.verify ? 'V' : 'T'}|${event.task.location}|${event.task.role}|${event.task.name}`;
    if (this.lastBanner === key) return;
    const kind = event.handler ? 'RUNNING HANDLER' : event.verify ? 'VERIFY TASK' : 'TASK';
    const checkMark = this.checkMode && !event.verify ? ' [CHECK MODE]' : '';
    this.banner(`${kind} [${taskTitle(event.task)}]${checkMark}`, key);
    if (this.verbosity >= 2 && event.task.location) this.emitLine(`task path: ${event.task.location}`);
  }

  private printDiffs(event: TaskResultEvent): void {
    for (const fileDiff of event.diffs ?? []) {
      const lines = fileDiffLines(fileDiff, this.masker, this.fancy ? colorDiffStyle(this.chalk) : undefined);
      for (const line of lines) this.writeSafe(line);
    }
  }

  private emitYaml(value: Record<string, unknown>): void {
    const masked = this.masker.maskValue(value);
    const yaml = terminalSafe(toYaml(masked, { lineWidth: 0 }).replace(/\n$/, ''));
    const text = this.masker.mask(yaml);
    for (const line of text.split('\n')) this.writeSafe(`${CONTINUATION}${line}`);
  }

  // ------------------------------------------------------------------ verify, drills, recap

  private onVerifyResult(event: Extract<RunEvent, { type: 'verify_result' }>): void {
    this.banner(`VERIFY [${event.role}]`, `verify|${event.role}`);
    if (event.passed) {
      const text = `passed: [${event.host}] ${event.check}${event.msg && this.verbosity >= 1 ? ` => ${event.msg}` : ''}`;
      this.emitLine({ text, paint: this.chalk.green });
    } else {
      this.emitLine({
        text: `FAILED: [${event.host}] ${event.check} => ${event.msg ?? 'failed'}`,
        paint: this.chalk.red,
      });
    }
    if (this.verbosity >= 1 && event.data !== undefined) this.emitYaml(event.data);
  }

  private onDrillResult(event: Extract<RunEvent, { type: 'drill_result' }>): void {
    this.banner(`DRILL [${event.drill}]`, `drill|${event.drill}`);
    const measured = Object.entries(event.measured)
      .map(([name, value]) => `${name}=${value}`)
      .join(' ');
    const head = `${event.passed ? 'PASS' : 'FAIL'}: ${measured || '(nothing measured)'} (target: ${event.target})`;
    this.emitLine({
      text: event.msg ? `${head} => ${event.msg}` : head,
      paint: event.passed ? this.chalk.green : this.chalk.red,
    });
  }

  private onRecap(stats: Record<string, HostStats>): void {
    this.banner('PLAY RECAP', 'recap');
    const hosts = Object.keys(stats).sort();
    const hostWidth = Math.max(RECAP_HOST_WIDTH, ...hosts.map((h) => this.masker.mask(h).length));
    for (const host of hosts) {
      const s = stats[host]!;
      const hostPaint =
        s.failed > 0 || s.unreachable > 0 ? this.chalk.red : s.changed > 0 ? this.chalk.yellow : this.chalk.green;
      // Ansible pads each count to 4 columns (`%s=%-4s`); the last is left unpadded (no trailing blanks).
      const count = (name: string, value: number, paint: Paint, last = false): Segment => {
        const text = `${name}=${last ? String(value) : String(value).padEnd(4)}`;
        return value !== 0 ? { text, paint } : text;
      };
      this.emitLine(
        { text: this.masker.mask(host).padEnd(hostWidth), paint: hostPaint },
        ' : ',
        count('ok', s.ok, this.chalk.green),
        ' ',
        count('changed', s.changed, this.chalk.yellow),
        ' ',
        count('unreachable', s.unreachable, this.chalk.red.bold),
        ' ',
        count('failed', s.failed, this.chalk.red),
        ' ',
        count('skipped', s.skipped, this.chalk.cyan),
        ' ',
        count('rescued', s.rescued, this.chalk.green),
        ' ',
        count('ignored', s.ignored, this.chalk.magentaBright, true),
      );
    }
    this.write('');
  }

  // ------------------------------------------------------------------ spinner

  private markRunning(host: string, label: string): void {
    if (!this.spinnerAllowed) return;
    this.running.set(host, label);
    this.refreshSpinner();
  }

  private stopRunning(host: string): void {
    if (!this.spinnerAllowed || !this.running.delete(host)) return;
    this.refreshSpinner();
  }

  private clearRunning(): void {
    this.running.clear();
    this.spinner?.stop();
    this.spinner = undefined;
  }

  private refreshSpinner(): void {
    if (this.running.size === 0) {
      this.spinner?.stop();
      this.spinner = undefined;
      return;
    }
    const text = this.spinnerText();
    if (this.spinner === undefined) {
      if (oraFactory === undefined) {
        // Still loading: draw once it is in, if a task is running then.
        void preloadSpinner().then(() => {
          if (oraFactory !== undefined && this.spinner === undefined && this.running.size > 0) this.refreshSpinner();
        });
        return;
      }
      // discardStdin would put stdin in raw mode and swallow Ctrl-C handling; cairn handles SIGINT itself.
      this.spinner = oraFactory({
        stream: this.out as NodeJS.WritableStream,
        discardStdin: false,
        isEnabled: true,
        text,
      });
      this.spinner.start();
    } else {
      this.spinner.text = text;
    }
  }

  /** "install nginx: web1, web2 | template haproxy.cfg: lb1", masked and cut to the terminal width. */
  private spinnerText(): string {
    const byTask = new Map<string, string[]>();
    for (const [host, label] of this.running) {
      const hosts = byTask.get(label) ?? [];
      hosts.push(host);
      byTask.set(label, hosts);
    }
    const text = [...byTask].map(([label, hosts]) => `${label}: ${hostList(hosts)}`).join(' | ');
    const masked = terminalSafe(this.masker.mask(text));
    const room = Math.max(10, this.width - 4);
    return masked.length > room ? `${masked.slice(0, room - 1)}…` : masked;
  }

  // ------------------------------------------------------------------ writing

  private banner(title: string, key: string): void {
    if (this.lastBanner === key) return;
    this.lastBanner = key;
    const masked = terminalSafe(this.masker.mask(title));
    const stars = '*'.repeat(Math.max(3, this.width - 1 - masked.length));
    this.write('');
    this.writeSafe(`${masked} ${stars}`);
  }

  /**
   * One logical line from segments. Each segment is masked, then coloured; if a secret straddles two
   * segments (so masking them apart misses it), the whole line is masked and printed without colour. Control
   * characters in the text (a host's stderr in a `fatal:` message) are shown as escapes, never sent raw; the
   * only escape codes written are our own colours.
   */
  private emitLine(...segments: Segment[]): void {
    const plain = terminalSafe(this.masker.mask(segments.map((s) => (typeof s === 'string' ? s : s.text)).join('')));
    let text = plain;
    if (this.fancy) {
      const maskedApart = segments.map((s) => terminalSafe(this.masker.mask(typeof s === 'string' ? s : s.text)));
      if (maskedApart.join('') === plain) {
        text = segments.map((s, i) => (typeof s === 'string' ? maskedApart[i]! : s.paint(maskedApart[i]!))).join('');
      }
    }
    this.writeSafe(text.replace(/\r?\n/g, `\n${CONTINUATION}`));
  }

  /** Write an already-built line; the last check that nothing secret gets out. */
  private writeSafe(line: string): void {
    this.write(this.masker.hasSecret(line) ? this.masker.mask(line) : line);
  }

  private write(line: string): void {
    this.out.write(`${line}\n`);
  }
}

function taskTitle(task: { name: string; role: string; module: string }): string {
  const name = task.name || task.module;
  return task.role ? `${task.role} : ${name}` : name;
}

/** Ansible shows a loop item as its text when it is a scalar, else as a compact mapping. */
export function itemLabel(item: unknown): string {
  if (typeof item === 'string') return item;
  if (typeof item === 'number' || typeof item === 'boolean' || item === null) return String(item);
  return compactJson(item);
}

/** JSON with Python's separators (", " and ": "), as Ansible prints results on one line. */
export function compactJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) return `[${value.map(compactJson).join(', ')}]`;
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${compactJson(v)}`).join(', ')}}`;
}

function hostList(hosts: string[]): string {
  const shown = hosts.slice(0, 5).join(', ');
  return hosts.length > 5 ? `${shown} (+${hosts.length - 5} more)` : shown;
}

/** 850 ms -> "0.85s", 75 s -> "1m 15.0s", 2 h -> "2h 00m 00s". */
export function formatDuration(ms: number): string {
  const safe = Number.isFinite(ms) && ms > 0 ? ms : 0;
  const seconds = safe / 1000;
  if (seconds < 10) return `${seconds.toFixed(2)}s`;
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${(seconds - minutes * 60).toFixed(1).padStart(4, '0')}s`;
  const hours = Math.floor(minutes / 60);
  const restSeconds = Math.floor(seconds - minutes * 60);
  return `${hours}h ${String(minutes - hours * 60).padStart(2, '0')}m ${String(restSeconds).padStart(2, '0')}s`;
}
