/**
 * The run journal: every event of a run, masked, one JSON object per line in `.cairn/runs/<runId>.ndjson`.
 * Each event is written with a synchronous write on an open descriptor, so a crash or Ctrl-C leaves a
 * journal that is complete up to the last event emitted (at worst with a torn last line, which readers
 * skip). `--rerun failed` reads the newest journal to pick the hosts to run again.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { EventBus, HostStats, RunEvent } from '../../core/engine/events.js';
import { CairnError } from '../../core/util/errors.js';
import type { SecretMasker } from './mask.js';

export const DEFAULT_JOURNAL_DIR = '.cairn/runs';
const JOURNAL_SUFFIX = '.ndjson';
/** A runId made by `runIdFor`: an ISO time with ':' and '.' made filename-safe. */
const TIME_RUN_ID = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z/;

/** `2026-11-21T12:00:00.123Z` -> `2026-11-21T12-00-00-123Z`: sortable, and safe in any filename. */
export function runIdFor(date: Date = new Date()): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

export class RunJournal {
  private fd: number | undefined;
  private journalPath: string | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly masker: SecretMasker) {}

  /** Create `<dir>/<runId>.ndjson` (refusing to append to another run's journal) and return its path. */
  open(dir: string = DEFAULT_JOURNAL_DIR, runId: string = runIdFor()): string {
    if (this.fd !== undefined)
      throw new CairnError(`run journal already open at ${this.journalPath}`, { kind: 'runtime' });
    if (!/^[A-Za-z0-9._-]+$/.test(runId) || runId.startsWith('.')) {
      throw new CairnError(`run id "${runId}" is not filename-safe: expected letters, digits, '.', '_' and '-'`, {
        kind: 'runtime',
      });
    }
    const path = join(dir, `${runId}${JOURNAL_SUFFIX}`);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // 'ax': append-only, and fail if it exists, so two runs never interleave in one journal.
      this.fd = openSync(path, 'ax', 0o600);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new CairnError(`cannot create run journal ${path}: ${reason}`, { kind: 'runtime' });
    }
    this.journalPath = path;
    return path;
  }

  get path(): string | undefined {
    return this.journalPath;
  }

  /** Append every event the bus emits, until `close()`. */
  attach(bus: EventBus): () => void {
    this.unsubscribe?.();
    this.unsubscribe = bus.subscribe((event) => this.append(event));
    return () => {
      this.unsubscribe?.();
      this.unsubscribe = undefined;
    };
  }

  /** Write one event, masked, as one line; synchronous so it is on disk before the run goes on. */
  append(event: RunEvent): void {
    if (this.fd === undefined) throw new CairnError('run journal is not open', { kind: 'runtime' });
    const line = `${JSON.stringify(this.masker.maskValue(event))}\n`;
    const bytes = Buffer.from(line, 'utf8');
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written, bytes.length - written);
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    if (this.fd !== undefined) {
      closeSync(this.fd);
      this.fd = undefined;
    }
  }
}

/**
 * The events of a journal. A last line that does not parse is a write torn by a crash and is dropped; a bad
 * line anywhere else means the file is not a journal, which is an error naming file:line.
 */
export function readJournal(path: string): RunEvent[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CairnError(`cannot read run journal: ${err instanceof Error ? err.message : String(err)}`, {
      kind: 'runtime',
      location: { file: path },
    });
  }
  const lines = text.split('\n');
  let lastLineIndex = lines.length - 1;
  while (lastLineIndex >= 0 && lines[lastLineIndex]!.trim() === '') lastLineIndex--;
  const events: RunEvent[] = [];
  for (let i = 0; i <= lastLineIndex; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const isLast = i === lastLineIndex;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      if (isLast) break;
      throw new CairnError('run journal line is not JSON: expected one event object per line', {
        kind: 'runtime',
        location: { file: path, line: i + 1 },
      });
    }
    if (!isEventShaped(parsed)) {
      if (isLast) break;
      throw new CairnError('run journal line is not an event: expected an object with a string "type"', {
        kind: 'runtime',
        location: { file: path, line: i + 1 },
      });
    }
    events.push(parsed);
  }
  return events;
}

/** The newest journal in `dir` (by the time in its run id, else by modification time), or undefined. */
export function latestRun(dir: string = DEFAULT_JOURNAL_DIR): string | undefined {
  if (!existsSync(dir)) return undefined;
  const journals = readdirSync(dir)
    .filter((name) => name.endsWith(JOURNAL_SUFFIX))
    .map((name) => ({ name, path: join(dir, name) }))
    .filter((entry) => statSync(entry.path).isFile())
    .map((entry) => ({ ...entry, time: journalTime(entry.name, entry.path) }));
  journals.sort((a, b) => b.time - a.time || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  return journals[0]?.path;
}

/**
 * Hosts to run again for `--rerun failed`: those whose last recap shows failed > 0 or unreachable > 0, plus
 * hosts whose task was interrupted or whose verification failed. A run cut short before its recap is judged by its task results: any
 * host with a failed (not ignored), unreachable or interrupted result, or a host-level failure event.
 * Hosts in the order they first appear in the journal.
 */
export function hostsToRerun(journalPath: string): string[] {
  const events = readJournal(journalPath);
  let lastRecap: Record<string, HostStats> | undefined;
  for (const event of events) if (event.type === 'recap') lastRecap = event.stats;

  const picked = new Set<string>();
  const order: string[] = [];
  const note = (host: string): void => {
    if (!order.includes(host)) order.push(host);
  };
  for (const event of events) {
    if ('host' in event && typeof event.host === 'string') note(event.host);
    if (event.type === 'verify_result') {
      // A host that failed its verification is worth running again even if every task succeeded.
      if (!event.passed) picked.add(event.host);
    } else if (event.type === 'task_result') {
      if (event.status === 'interrupted') picked.add(event.host);
      else if (
        lastRecap === undefined &&
        (event.status === 'unreachable' || (event.status === 'failed' && !event.ignored))
      )
        picked.add(event.host);
    } else if (lastRecap === undefined && (event.type === 'host_failed' || event.type === 'host_unreachable')) {
      picked.add(event.host);
    }
  }
  if (lastRecap !== undefined) {
    for (const [host, stats] of Object.entries(lastRecap)) {
      note(host);
      if (stats.failed > 0 || stats.unreachable > 0) picked.add(host);
    }
  }
  return order.filter((host) => picked.has(host));
}

function journalTime(name: string, path: string): number {
  const match = TIME_RUN_ID.exec(name);
  if (match) {
    const [, day, hh, mm, ss, ms] = match;
    const time = Date.parse(`${day}T${hh}:${mm}:${ss}.${ms}Z`);
    if (!Number.isNaN(time)) return time;
  }
  return statSync(path).mtimeMs;
}

function isEventShaped(value: unknown): value is RunEvent {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { type?: unknown }).type === 'string'
  );
}
