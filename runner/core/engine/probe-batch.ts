/**
 * Probe batching (issue 17, item 3): the check probes of several consecutive tasks of one host travel in ONE
 * remote script instead of one round trip each.
 *
 * Modules are not changed for it. Each task's `check` runs against a collecting connection: its FIRST script
 * is held back instead of sent; once every check has either handed over its first script or finished without
 * one, the held scripts go to the host in one script that runs them one after the other, each in its own
 * subshell, and prints each one's stdout, stderr and exit status as framed sections (modules/remote.ts:
 * base64 payloads, so no content can start, end or replace a section). Each check then gets its own
 * ExecResult back, exactly what running its script alone would have given, and builds its plan from it. A
 * check's later scripts (rare: a second round trip that depends on the first answer) go to the host directly.
 *
 * Whether a batched plan may still be used when its task comes is the engine's decision (engine.ts
 * `batchedCheck`): only while nothing has run on the host since the batch except reads.
 */
import { quote } from '../transport/quote.js';
import type { Connection, ExecOptions, ExecResult } from '../transport/types.js';
import {
  formatSection,
  parseSectionBytes,
  ProbeError,
  section,
  SECTION_FILE_MARK,
  SECTION_FILE_PREFIX_VAR,
} from '../modules/remote.js';
import type { AnyModule, ModuleContext, Planned } from '../modules/types.js';

/**
 * Modules whose `check` only reads the host with quick probes, so running it ahead of its task costs nothing
 * but that probe. Modules that wait (wait_for, http, get_url downloads the body to hash it), gather facts or
 * talk to other services are never checked ahead.
 */
export const BATCHABLE_MODULES: ReadonlySet<string> = new Set([
  'file',
  'copy',
  'template',
  'lineinfile',
  'blockinfile',
  'replace',
  'stat',
  'command',
  'shell',
]);

/** Exit status of the batch script when it cannot make its private folder: the probes then go one by one. */
const NO_TEMP_DIR_EXIT = 90;

/**
 * One script that runs `scripts` in order, each eval'd from one single-quoted word (an assignment: no argv,
 * nothing in `ps`) in a subshell with no input, as `sh -s` would have run it alone: its `exit`, traps, `set`
 * and variables stay inside. Its stdout and stderr go to files `o<i>` and `e<i>` in a folder made by
 * `mktemp -d` (created exclusively, mode 0700), removed when the script ends; its status to a variable; each
 * section it prints (modules/remote.ts `section`) to a file `s<i>.<name>` beside them, with a line naming it
 * in its stdout.
 *
 * When all have run, ONE section `batch` carries everything, base64 (so no output can start, end or replace
 * a section): a line with `s`, the number of files and the statuses, then `wc -c` of the files (their sizes
 * and names, and the total), then the files' bytes, concatenated by one `cat`. So the host pays one fork per
 * probe (its subshell) and one per section, and four processes per batch (mktemp, wc, cat, base64; rm at the
 * end); the first version decoded each script with base64 and framed each stream and each section with base64
 * in pipelines: ~8 processes and ~12 forks per probe.
 */
export function batchScript(scripts: readonly string[]): string {
  const lines = [
    `cairn_batch_dir=$(mktemp -d) || exit ${NO_TEMP_DIR_EXIT}`,
    `trap 'rm -rf -- "$cairn_batch_dir"' EXIT`,
    `trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`,
    // Set for each probe only (a variable of that name from the login's environment would divert the batch's own section).
    `cairn_batch_rcs=; unset ${SECTION_FILE_PREFIX_VAR}`,
  ];
  scripts.forEach((script, index) => {
    lines.push(
      // The names the batch uses are unset inside the subshell, so the probe sees the environment it would alone.
      `( ${SECTION_FILE_PREFIX_VAR}="$cairn_batch_dir/s${index}."; unset cairn_batch_rcs cairn_batch_dir; ` +
        `eval ${quote(script)}; ) </dev/null >"$cairn_batch_dir/o${index}" 2>"$cairn_batch_dir/e${index}"; ` +
        `cairn_batch_rcs="$cairn_batch_rcs $?"`,
    );
  });
  // From inside the folder the files have the names the batch gave them (section names are [A-Za-z0-9_-]):
  // wc prints nothing the host chose but the sizes. A glob is expanded by the shell itself.
  lines.push(
    `cd -- "$cairn_batch_dir" || exit ${NO_TEMP_DIR_EXIT + 1}`,
    `set -- o* e*; for f in s*.*; do if [ -f "$f" ]; then set -- "$@" "$f"; fi; done`,
    section('batch', `printf 's %s%s\\n' "$#" "$cairn_batch_rcs"`, `wc -c -- "$@"`, `cat -- "$@"`),
  );
  return lines.join('\n');
}

const FILE_NAME = /^(?:[oe]\d+|s\d+\.[A-Za-z][A-Za-z0-9_-]*)$/;

/**
 * The batch script's output as one ExecResult per script, in order, each with its sections put back where it
 * printed them. Anything but exactly what the script prints (text outside its one section, a status that is
 * not a number, a file the batch does not make, sizes that do not add up, a section named where the probe did
 * not write one, or named twice) is refused.
 */
export function parseBatchOutput(stdout: string, count: number): ExecResult[] {
  const sections = parseSectionBytes(stdout);
  if (sections.has('')) throw new ProbeError(`the host printed text outside the batch's sections; refusing to read it`);
  const blob = sections.get('batch');
  if (blob === undefined || sections.size !== 1)
    throw new ProbeError(`the host's batch output is not the one section the batch prints; refusing to read it`);
  const refuse = (why: string): never => {
    throw new ProbeError(`the host's batch output ${why}; refusing to read it`);
  };
  let at = 0;
  const line = (): string => {
    const nl = blob.indexOf(10, at);
    if (nl === -1) refuse('ends inside its header');
    const text = blob.subarray(at, nl).toString('latin1');
    at = nl + 1;
    return text;
  };
  const head = line().split(' ');
  const fileCount = Number(head[1]);
  if (
    head[0] !== 's' ||
    !/^\d{1,6}$/.test(head[1] ?? '') ||
    fileCount < 2 * count ||
    head.length !== count + 2 ||
    !head.slice(2).every((c) => /^\d{1,3}$/.test(c))
  )
    refuse('has no exit status for each probe');
  const sizes = new Map<string, number>();
  const order: string[] = [];
  for (let i = 0; i < fileCount; i++) {
    const m = /^\s*(\d{1,12}) (\S+)$/.exec(line());
    if (!m || !FILE_NAME.test(m[2]!) || sizes.has(m[2]!)) refuse('names a file the batch does not make');
    sizes.set(m![2]!, Number(m![1]));
    order.push(m![2]!);
  }
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  if (fileCount > 1 && !new RegExp(`^\\s*${total} total$`).test(line())) refuse('has sizes that do not add up');
  if (blob.length - at !== total) refuse(`holds ${blob.length - at} bytes of output, not the ${total} announced`);
  const bytes = new Map<string, Buffer>();
  for (const name of order) {
    bytes.set(name, blob.subarray(at, at + sizes.get(name)!));
    at += sizes.get(name)!;
  }
  const results: ExecResult[] = [];
  for (let index = 0; index < count; index++) {
    const out = bytes.get(`o${index}`);
    const err = bytes.get(`e${index}`);
    if (out === undefined || err === undefined) return refuse(`lacks the result of probe ${index + 1}`);
    results.push({
      stdout: withSections(out, (name) => bytes.get(`s${index}.${name}`), refuse).toString('utf8'),
      stderr: err.toString('utf8'),
      code: Number(head[index + 2]),
    });
  }
  return results;
}

/**
 * A probe's stdout with each line `SECTION_FILE_MARK name` replaced by the section `name` framed as `section`
 * prints it alone, from the file the probe wrote. A name with no file, or named twice, is refused.
 */
function withSections(out: Buffer, file: (name: string) => Buffer | undefined, refuse: (why: string) => never): Buffer {
  const mark = Buffer.from(`${SECTION_FILE_MARK} `);
  if (!out.includes(mark)) return out;
  const seen = new Set<string>();
  const lines = out.toString('latin1').split('\n');
  const rebuilt = lines.map((text) => {
    if (!text.startsWith(mark.toString('latin1'))) return Buffer.from(text, 'latin1');
    const name = text.slice(mark.length);
    const bytes = file(name);
    if (bytes === undefined || seen.has(name))
      refuse(`names section ${JSON.stringify(name.slice(0, 40))} it did not write once`);
    seen.add(name);
    return Buffer.from(formatSection(name, bytes!).slice(0, -1), 'latin1');
  });
  return Buffer.concat(rebuilt.flatMap((b, i) => (i === 0 ? [b] : [Buffer.from('\n'), b])));
}

/** One task's check to run ahead: its module, its context (its `conn` is replaced) and its rendered arguments. */
export interface CheckJob {
  module: AnyModule;
  ctx: ModuleContext;
  args: Record<string, unknown>;
}

interface HeldScript {
  script: string;
  opts: ExecOptions;
  resolve(result: ExecResult): void;
  reject(err: unknown): void;
}

/**
 * A host's connection as the engine hands it to tasks: it counts the scripts sent through it. Batched probes
 * go to `inner` and are not counted, so an unchanged count means nothing but reads ran on the host since a
 * batch was taken (every apply, every unbatched task, every delegated task, every drill goes through here).
 */
export class WatchedConnection implements Connection {
  execs = 0;
  constructor(readonly inner: Connection) {}
  get host(): string {
    return this.inner.host;
  }
  get user(): string {
    return this.inner.user;
  }
  exec(script: string, opts?: ExecOptions): Promise<ExecResult> {
    this.execs++;
    return this.inner.exec(script, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * Run the checks of `jobs` (all on the host behind `conn`, all with the same become) with their first
 * scripts sent in one round trip. Returns each job's plan, in order; a check that fails rejects its own
 * promise only (each promise already has a handler, so nobody is told of an unhandled rejection).
 */
export async function runChecksBatched(conn: Connection, jobs: readonly CheckJob[]): Promise<Array<Promise<Planned>>> {
  const held: HeldScript[] = [];
  const started = jobs.map((job) => {
    let first = true;
    let handedOver!: () => void;
    const queued = new Promise<void>((resolve) => (handedOver = resolve));
    const collecting: Connection = {
      host: conn.host,
      user: conn.user,
      exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
        const holdable = first && opts.stdin === undefined && opts.timeoutMs === undefined;
        first = false;
        handedOver();
        if (!holdable) return conn.exec(script, opts);
        return new Promise<ExecResult>((resolve, reject) => held.push({ script, opts, resolve, reject }));
      },
      close: () => conn.close(),
    };
    const plan = Promise.resolve().then(() => job.module.check({ ...job.ctx, conn: collecting }, job.args));
    plan.catch(() => undefined);
    return { plan, ready: Promise.race([plan.then(noop, noop), queued]) };
  });
  await Promise.all(started.map((s) => s.ready));
  await sendHeld(conn, held);
  return started.map((s) => s.plan as Promise<Planned>);
}

function noop(): void {}

function sameBecome(a: ExecOptions, b: ExecOptions): boolean {
  return (a.become ?? false) === (b.become ?? false) && (a.becomeUser ?? 'root') === (b.becomeUser ?? 'root');
}

/** Send the held scripts: together when there are several with one become, else each as it would have gone. */
async function sendHeld(conn: Connection, held: HeldScript[]): Promise<void> {
  const one = (h: HeldScript): void => void conn.exec(h.script, h.opts).then(h.resolve, h.reject);
  const lead = held[0];
  if (lead === undefined) return;
  const together = held.filter((h) => sameBecome(h.opts, lead.opts));
  for (const h of held) if (!together.includes(h)) one(h);
  if (together.length === 1) {
    one(lead);
    return;
  }
  let res: ExecResult;
  try {
    res = await conn.exec(batchScript(together.map((h) => h.script)), {
      become: lead.opts.become,
      becomeUser: lead.opts.becomeUser,
    });
  } catch (err) {
    // The connection is gone (unreachable): every probe of the batch reports it, as each would have alone.
    for (const h of together) h.reject(err);
    return;
  }
  let results: ExecResult[] | undefined;
  if (res.code === 0 && res.cut === undefined) {
    try {
      results = parseBatchOutput(res.stdout, together.length);
    } catch {
      results = undefined;
    }
  }
  if (results === undefined) {
    // The batch itself could not run (no temp folder, sudo refused, output over the size kept) or printed
    // what it never prints: each probe goes alone, so each task gets the answer and the error it would have.
    for (const h of together) one(h);
    return;
  }
  together.forEach((h, index) => h.resolve(results[index]!));
}
