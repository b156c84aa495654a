/**
 * A Connection for table-driven module unit tests ONLY: it records every script with its options and answers
 * from a table (probe output captured from real hosts, cited where each fixture is defined). Anything that
 * can run for real (files, commands) is tested against a real sshd in test/integration instead.
 *
 * A script that matches no row is an error, so a test cannot pass by accident on an unexpected round trip.
 */
import { spawnSync } from 'node:child_process';
import {
  UnreachableError,
  type Connection,
  type ConnectionSpec,
  type ExecOptions,
  type ExecResult,
} from '../../runner/core/transport/types.js';
import type { ModuleContext } from '../../runner/core/modules/types.js';
import type { Vars } from '../../runner/core/util/vars.js';
import { formatSection, SECTION_MARK } from '../../runner/core/modules/remote.js';
import { evaluate } from '../../runner/core/template/expr.js';
import { Engine, type EngineOptions, type RunOutcome } from '../../runner/core/engine/engine.js';
import { EventBus, type RunEvent } from '../../runner/core/engine/events.js';
import type { Inventory } from '../../runner/core/inventory/index.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import { createTemplater } from '../../runner/core/template/index.js';

export interface FakeReply {
  /** Which scripts this row answers: a substring, a pattern, or a predicate. */
  match: string | RegExp | ((script: string) => boolean);
  reply: Partial<ExecResult> | ((script: string, opts: ExecOptions) => Partial<ExecResult>);
  /** Answer only this many times (default: any number). */
  times?: number;
}

export interface RecordedExec {
  script: string;
  opts: ExecOptions;
}

export class FakeConnection implements Connection {
  readonly calls: RecordedExec[] = [];
  private readonly rows: Array<FakeReply & { used: number }>;

  constructor(
    rows: FakeReply[],
    readonly host = 'fake1',
    readonly user = 'root',
  ) {
    this.rows = rows.map((row) => ({ ...row, used: 0 }));
  }

  exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ script, opts });
    const row = this.rows.find((r) => (r.times === undefined || r.used < r.times) && matches(r.match, script));
    if (!row) return Promise.reject(new Error(`FakeConnection: no table row answers this script:\n${script}`));
    row.used++;
    const reply = typeof row.reply === 'function' ? row.reply(script, opts) : row.reply;
    return Promise.resolve({ stdout: '', stderr: '', code: 0, ...reply });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The scripts in order. */
  get scripts(): string[] {
    return this.calls.map((c) => c.script);
  }
}

function matches(match: FakeReply['match'], script: string): boolean {
  if (typeof match === 'string') return script.includes(match);
  if (match instanceof RegExp) return match.test(script);
  return match(script);
}

/** A ModuleContext around a connection, with simple local helpers; override what a test needs. */
export function contextFor(conn: Connection, overrides: Partial<ModuleContext> = {}): ModuleContext {
  return {
    host: conn.host,
    conn,
    become: false,
    becomeUser: 'root',
    vars: {},
    findLocalFile: (_kind, relativePath) => relativePath,
    renderTemplateFile: () => {
      throw new Error('renderTemplateFile not set up for this test');
    },
    evaluate: (expression: string, vars: Vars) => evaluate(expression, vars),
    taskLocation: { file: 'roles/test/tasks/main.yaml', line: 3, col: 3 },
    ...overrides,
  };
}

/**
 * Run a generated script with this machine's real /bin/sh and report what a word would be after the shell
 * parsed it: used by quoting tests to prove a value reaches the program as one literal argument.
 */
export function shellWords(fragment: string): string[] {
  const res = spawnSync('/bin/sh', ['-c', `for w in ${fragment}; do printf '%s\\0' "$w"; done`], { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`sh failed: ${res.stderr}`);
  return res.stdout.split('\0').slice(0, -1);
}

/**
 * Probe outputs in the exact shape `fileProbeScript` prints. The layout below was captured by running that
 * script with /bin/sh on the cairn development container (Debian 12, coreutils 9.1) against a 12-byte file
 * of mode 0640 owned by root. The host prints one line,
 *
 *   ::cairn-section:: file dW1hc2s9MDAyMgp0eXBlPWZpbGUKbW9kZT02NDAK...
 *
 * whose base64 payload decodes to:
 *
 *   umask=0022
 *   type=file
 *   mode=640
 *   uid=0
 *   gid=0
 *   size=12
 *   mtime=1796619651
 *   content_b64=aGVsbG8Kd29ybGQK
 *   names=root\0root\0                 (owner and group, each NUL-terminated, always last)
 *
 * (A file whose content is fetched has no sha256 line: the controller hashes the bytes it got.)
 *
 * fileProbeOutput fills the same fields for other contents, so table tests can describe any starting state.
 */
export interface ProbeFixture {
  absent?: boolean;
  parentMissing?: boolean;
  type?: 'file' | 'directory' | 'link';
  content?: string;
  mode?: string;
  owner?: string;
  group?: string;
  uid?: number;
  gid?: number;
  linkTarget?: string;
  section?: string;
}

/**
 * Fixtures are written readably, one `::cairn-section:: NAME` line before each section's text; the host
 * prints each section as ONE line, `::cairn-section:: NAME BASE64` (see `section` in runner/core/modules/remote.ts).
 * This turns the readable form into what the host prints. Text before the first marker stays unframed.
 */
export function frameSections(readable: string): string {
  const out: string[] = [];
  let name: string | undefined;
  let body: string[] = [];
  const flush = (): void => {
    if (name !== undefined) out.push(formatSection(name, body.join('\n')));
    else if (body.some((line) => line !== '')) out.push(`${body.join('\n')}\n`);
  };
  for (const line of readable.split('\n')) {
    if (line.startsWith(`${SECTION_MARK} `)) {
      flush();
      name = line.slice(SECTION_MARK.length + 1);
      body = [];
    } else {
      body.push(line);
    }
  }
  flush();
  return out.join('');
}

export function fileProbeOutput(f: ProbeFixture = {}): string {
  return frameSections(readableFileProbe(f));
}

function readableFileProbe(f: ProbeFixture): string {
  const lines = [`::cairn-section:: ${f.section ?? 'file'}`, 'umask=0022'];
  if (f.absent) {
    lines.push('type=absent', `parent=${f.parentMissing ? 0 : 1}`);
    return `${lines.join('\n')}\n`;
  }
  const type = f.type ?? 'file';
  lines.push(`type=${type}`);
  if (type === 'link') {
    lines.push(
      'islink=1',
      `target_b64=${Buffer.from(f.linkTarget ?? '').toString('base64')}`,
      `resolved_b64=${Buffer.from(f.linkTarget ?? '').toString('base64')}`,
    );
  }
  const content = f.content ?? '';
  lines.push(
    `mode=${f.mode ?? (type === 'directory' ? '755' : '644')}`,
    `uid=${f.uid ?? 0}`,
    `gid=${f.gid ?? 0}`,
    `size=${Buffer.byteLength(content)}`,
    'mtime=1795266184',
  );
  if (type === 'file') lines.push(`content_b64=${Buffer.from(content).toString('base64')}`);
  // The names end the section: no newline after them.
  return `${lines.join('\n')}\nnames=${f.owner ?? 'root'}\0${f.group ?? 'root'}\0`;
}

/** The text of a script outside single quotes: where the shell would still interpret characters. */
export function outsideSingleQuotes(script: string): string {
  let out = '';
  for (let i = 0; i < script.length; i++) {
    const ch = script[i]!;
    if (ch === "'") {
      const end = script.indexOf("'", i + 1);
      if (end === -1) throw new Error(`unbalanced single quote in script:\n${script}`);
      i = end;
    } else if (ch === '\\') {
      // A backslash outside quotes makes the next character literal.
      i++;
    } else {
      out += ch;
    }
  }
  return out;
}

/** A connection that counts the scripts sent to the host: one exec is one round trip. */
export class CountedConnection implements Connection {
  trips = 0;
  constructor(private readonly inner: Connection) {}
  get host(): string {
    return this.inner.host;
  }
  get user(): string {
    return this.inner.user;
  }
  exec(script: string, opts?: ExecOptions): Promise<ExecResult> {
    this.trips++;
    return this.inner.exec(script, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The words of an `exec 'a' 'b'` line of a `command` script, unquoted and joined by spaces. */
export function commandWords(script: string): string | undefined {
  const line = script.split('\n').find((l) => l.startsWith('exec '));
  if (!line) return undefined;
  return [...line.slice(5).matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) => m[1] ?? m[2]).join(' ');
}

/**
 * What a fake host answers to each script the engine sends it. `spec` is the connection the engine opened
 * for the host (its name, user, address and port: what the inventory and the play made of its variables).
 */
export type TestReply = (script: string, spec: ConnectionSpec) => Partial<ExecResult>;

export interface TestEngineOptions extends Partial<Omit<EngineOptions, 'inventory' | 'bus' | 'openConnection'>> {
  inventory: Inventory;
  /** Answers every script. Without it a host answers nothing: any script sent to it fails its task. */
  reply?: TestReply;
  /** Hosts whose connection is refused (UnreachableError), as an sshd that is down. */
  unreachable?: string[];
  /**
   * Opens each host's connection instead of a FakeConnection: a real one (the transport's openConnection over a
   * test sshd), usually wrapped to count or record. `reply` is not used then.
   */
  connect?: (spec: ConnectionSpec) => Promise<Connection>;
}

export interface TestEngine {
  engine: Engine;
  bus: EventBus;
  /** Every event of the run, in order (subscribed before anything the test adds to the bus). */
  events: RunEvent[];
  /** Every host whose connection the engine opened (or tried to), in order. */
  opened: string[];
  /** Loads the playbook file (no roles path) and runs it, then closes every connection. */
  run(playbookFile: string): Promise<RunOutcome>;
}

/**
 * The engine's unit-test harness: a real Engine (inventory, loader, templater, executors) whose hosts are
 * FakeConnections answered by `reply`. Defaults are a plain run (no check, no diff, 5 forks, no tags, no
 * verify); any other Engine option can be given.
 */
export function makeTestEngine(opts: TestEngineOptions): TestEngine {
  const { reply, unreachable, connect, ...engineOptions } = opts;
  const bus = new EventBus();
  const events: RunEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const opened: string[] = [];
  const engine = new Engine({
    bus,
    templater: createTemplater({ partialsDirs: [] }),
    check: false,
    diff: false,
    forks: 5,
    extraVars: {},
    tags: { tags: [], skipTags: [] },
    verify: false,
    acceptNewHostKeys: false,
    signal: new AbortController().signal,
    ...engineOptions,
    openConnection: (spec) => {
      opened.push(spec.name);
      if (unreachable?.includes(spec.name))
        return Promise.reject(new UnreachableError(spec.name, `${spec.name}: connection refused`));
      if (connect) return connect(spec);
      const rows: FakeReply[] = reply ? [{ match: () => true, reply: (script) => reply(script, spec) }] : [];
      return Promise.resolve(new FakeConnection(rows, spec.name));
    },
  });
  const run = async (playbookFile: string): Promise<RunOutcome> => {
    const playbook = new PlaybookLoader({ rolesPath: [] }).loadPlaybook(playbookFile);
    const outcome = await engine.runPlaybook(playbook);
    await engine.close();
    return outcome;
  };
  return { engine, bus, events, opened, run };
}
