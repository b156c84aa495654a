/**
 * Apply batching (issue 17, item 3): the applies of consecutive independent tasks of one host travel in ONE
 * remote script instead of one round trip each, and run there in order, stopping at the first failure.
 *
 * Modules are not changed for it. Each task's `apply` runs against a collecting connection that holds back
 * its script instead of sending it; the held scripts go to the host in one script that runs them one after
 * the other, each in its own subshell, and prints each one's stdout, stderr and exit status as framed sections
 * (modules/remote.ts: base64 payloads, so no output can start, end or replace a section). The host stops after
 * the first script that exits non-zero (unless its task has ignore_errors): the tasks after it do not run, as
 * they would not have run unbatched. Each apply then gets back exactly the ExecResult its script would have
 * given alone, and builds its result from it.
 *
 * Which tasks may go together is the engine's decision (engine.ts `applyFollowers`): only tasks that do not
 * depend on each other's results. What this file guarantees is the order and the stop.
 */
import { quote } from '../transport/quote.js';
import type { Connection, ExecOptions, ExecResult } from '../transport/types.js';
import { fileSection, parseSectionBytes, ProbeError, section, SECTION_MARK } from '../modules/remote.js';
import type { AnyModule, ModuleContext, ModuleResult, Planned } from '../modules/types.js';

/**
 * Modules whose `apply` sends exactly ONE script (without stdin or a timeout) and fails exactly when that
 * script exits non-zero, and whose `check` needs no round trip when they have no creates/removes: what the
 * host decides (stop or go on) is then what the engine decides for the task. Others always run alone.
 */
export const APPLY_BATCHABLE_MODULES: ReadonlySet<string> = new Set(['command', 'shell']);

/** Exit status of the batch script when it cannot make its private folder: nothing ran. */
const NO_TEMP_DIR_EXIT = 90;
/**
 * Output one task may print and still travel in the batch's own output (each stream, bytes). A task that
 * prints more stops the batch after it; its output stays on the host and is fetched alone, so the transport
 * keeps of it exactly what it keeps of any command's output (transport/output.ts).
 */
export const STEP_OUTPUT_LIMIT = 2 * 1024 * 1024;
/** Output of the whole batch after which no further task starts (they run later, in a batch of their own). */
export const BATCH_OUTPUT_BUDGET = 4 * 1024 * 1024;

export interface ApplyStep {
  script: string;
  /** The host goes on to the next step when this one exits non-zero (the task has ignore_errors). */
  goOn: boolean;
}

/**
 * One script that runs `steps` in order and frames each one's stdout (`o<i>`), stderr (`e<i>`) and exit status
 * (`c<i>-<status>`, empty payload), printed as soon as the step ends. Each step's script is eval'd from one
 * single-quoted word in a subshell with no input, as `sh -s` would have run it alone (its `exit`, traps, `set`
 * and variables stay inside). After a step that exits non-zero (and may not go on) the script ends: the later
 * steps never start. Output goes to files in a folder made by `mktemp -d` (created exclusively, mode 0700),
 * removed when the script ends — except after a step whose output is over STEP_OUTPUT_LIMIT: the batch ends
 * there, prints the folder (`k`) instead of that step's output, and leaves it for `fetchKeptOutputScript`.
 *
 * Each step costs the host one fork (the subshell, which `exec`s the command) when it prints nothing: the
 * framing of empty output and of the status is printf (a builtin); base64 and wc run only for output.
 */
export function applyBatchScript(steps: readonly ApplyStep[]): string {
  const out = '"$cairn_batch_dir/o"';
  const err = '"$cairn_batch_dir/e"';
  const mark = quote(SECTION_MARK);
  const lines = [
    `cairn_batch_dir=$(mktemp -d) || exit ${NO_TEMP_DIR_EXIT}`,
    `cairn_batch_keep=`,
    `trap '[ -n "$cairn_batch_keep" ] || rm -rf -- "$cairn_batch_dir"' EXIT`,
    `trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`,
    `cairn_batch_total=0`,
  ];
  steps.forEach((step, index) => {
    lines.push(
      // The names the batch uses are unset inside the subshell, so the step sees the environment it would alone.
      `( unset cairn_batch_rc cairn_batch_dir cairn_batch_keep cairn_batch_total cairn_batch_size; ` +
        `eval ${quote(step.script)}; ) </dev/null >${out} 2>${err}; cairn_batch_rc=$?`,
      `cairn_batch_size=0`,
      `if [ -s ${out} ] || [ -s ${err} ]; then cairn_batch_size=$(( $(wc -c <${out}) + $(wc -c <${err}) )); fi`,
      `if [ "$cairn_batch_size" -gt ${STEP_OUTPUT_LIMIT} ]; then cairn_batch_keep=1`,
      section('k', `printf '%s' "$cairn_batch_dir"`),
      `printf '%s c${index}-%s \\n' ${mark} "$cairn_batch_rc"`,
      'exit 0',
      'fi',
      fileSection(`o${index}`, out),
      fileSection(`e${index}`, err),
      `printf '%s c${index}-%s \\n' ${mark} "$cairn_batch_rc"`,
    );
    if (index === steps.length - 1) return;
    if (!step.goOn) lines.push(`[ "$cairn_batch_rc" -eq 0 ] || exit 0`);
    lines.push(
      `cairn_batch_total=$(( cairn_batch_total + cairn_batch_size ))`,
      `[ "$cairn_batch_total" -le ${BATCH_OUTPUT_BUDGET} ] || exit 0`,
    );
  });
  return lines.join('\n');
}

/** What the host reported of a batch: each step that ran, in order, and where a step's big output was left. */
export interface BatchReport {
  /** One result per step that ran, from the first; the steps after the last did not start. */
  results: ExecResult[];
  /** The last step's output is too big for the batch: it was left in this folder on the host. */
  keptDir?: string;
}

const KEPT_DIR = /^\/[A-Za-z0-9._/-]+$/;
const STATUS = /^c(\d+)-(\d{1,3})$/;

/**
 * The batch script's output. Anything but the sections it prints (o, e, c for each step from the first; k
 * and c for a last step whose output was left on the host) is refused: text outside them, a gap, a step
 * twice, a status that is not a number, a kept folder that is not a plain absolute path.
 */
export function parseApplyBatchOutput(stdout: string, count: number): BatchReport {
  const sections = parseSectionBytes(stdout);
  if (sections.has('')) throw new ProbeError(`the host printed text outside the batch's sections; refusing to read it`);
  const statuses = new Map<number, number>();
  for (const name of sections.keys()) {
    const m = STATUS.exec(name);
    if (!m) continue;
    const index = Number(m[1]);
    if (statuses.has(index)) throw new ProbeError(`the host reported two exit statuses for task ${index + 1}`);
    statuses.set(index, Number(m[2]));
  }
  const results: ExecResult[] = [];
  for (let index = 0; index < count; index++) {
    const out = sections.get(`o${index}`);
    const err = sections.get(`e${index}`);
    const code = statuses.get(index);
    if (out === undefined || err === undefined || code === undefined) break;
    results.push({ stdout: out.toString('utf8'), stderr: err.toString('utf8'), code });
  }
  let expected = results.length * 3;
  const kept = sections.get('k')?.toString('utf8');
  let keptDir: string | undefined;
  if (kept !== undefined) {
    const code = statuses.get(results.length);
    if (!KEPT_DIR.test(kept) || kept.includes('..') || code === undefined || sections.has(`o${results.length}`))
      throw new ProbeError(`the host named ${JSON.stringify(kept.slice(0, 80))} as the batch's folder; refusing it`);
    keptDir = kept;
    results.push({ stdout: '', stderr: '', code });
    expected += 2;
  }
  if (sections.size !== expected)
    throw new ProbeError(`the host's batch output has ${sections.size} sections, not ${expected}; refusing to read it`);
  return { results, keptDir };
}

/** The big output of a batch's last step, left on the host: fetched as the step's own streams, then removed. */
export function fetchKeptOutputScript(dir: string): string {
  const d = quote(dir);
  return `cat -- ${d}/o; cat -- ${d}/e >&2; rm -rf -- ${d}`;
}

/** One task's apply to run in a batch: its module, context, rendered arguments and plan. */
export interface ApplyJob {
  module: AnyModule;
  ctx: ModuleContext;
  args: Record<string, unknown>;
  plan: Planned;
  /** The host goes on past this task's failure (ignore_errors). */
  goOn: boolean;
}

/** A job's outcome: its apply ran (its result), or it did not start on the host (the task runs on its own). */
export type BatchedApply = { ran: true; result: Promise<ModuleResult> } | { ran: false };

/** Thrown into an apply whose script was not sent: its result is never used. */
class NotSent extends Error {
  constructor() {
    super('not sent: the batch ended before this task');
  }
}

interface Held {
  job: number;
  script: string;
  opts: ExecOptions;
  resolve(result: ExecResult): void;
  reject(err: unknown): void;
}

function sameBecome(a: ExecOptions, b: ExecOptions): boolean {
  return (a.become ?? false) === (b.become ?? false) && (a.becomeUser ?? 'root') === (b.becomeUser ?? 'root');
}

/**
 * Run the applies of `jobs` (in order, all on the host behind `conn`) with their scripts sent in one round
 * trip. Each apply is started in turn and held at its script; one that ends without a script (it failed
 * before reaching the host) ends the batch after it if it may not go on. A script that cannot travel in a
 * batch (stdin, a timeout, another become) ends the batch before its job. Returns each job's outcome, in order.
 */
export async function runAppliesBatched(conn: Connection, jobs: readonly ApplyJob[]): Promise<BatchedApply[]> {
  const held: Held[] = [];
  const outcomes: BatchedApply[] = jobs.map(() => ({ ran: false }));
  let lastRan = -1; // the last job that ran (on the host, or without reaching it)
  let closed = false; // no further job joins
  for (let index = 0; index < jobs.length && !closed; index++) {
    const job = jobs[index]!;
    let calls = 0;
    /** Set at the apply's first script: whether that script joined the batch. */
    let holds: boolean | undefined;
    let handedOver!: () => void;
    const queued = new Promise<void>((resolve) => (handedOver = resolve));
    const collecting: Connection = {
      host: conn.host,
      user: conn.user,
      exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
        calls++;
        if (calls > 1) {
          // A second script after the batch came back: it may go now only if nothing after it ran.
          if (index === lastRan) return conn.exec(script, opts);
          return Promise.reject(new Error(`internal error: ${job.module.name} sent a second script from a batch`));
        }
        const lead = held[0];
        holds =
          opts.stdin === undefined &&
          opts.timeoutMs === undefined &&
          (lead === undefined || sameBecome(opts, lead.opts));
        handedOver();
        if (!holds) return Promise.reject(new NotSent());
        return new Promise<ExecResult>((resolve, reject) => held.push({ job: index, script, opts, resolve, reject }));
      },
      close: () => conn.close(),
    };
    const result = Promise.resolve().then(() => job.module.apply({ ...job.ctx, conn: collecting }, job.args, job.plan));
    result.catch(() => undefined);
    const failed = result.then(
      (r) => r.failed === true,
      () => true,
    );
    await Promise.race([failed, queued]);
    // Its script cannot travel in a batch: it and the jobs after it run on their own, later.
    if (holds === false) break;
    outcomes[index] = { ran: true, result };
    lastRan = index;
    // Ended without a script (nothing of it reaches the host): a failure that stops the host stops the batch.
    if (holds === undefined && (await failed) && !job.goOn) closed = true;
  }
  if (held.length === 0) return outcomes;
  const lead = held[0]!;
  const become: ExecOptions = { become: lead.opts.become, becomeUser: lead.opts.becomeUser };
  /** Only `h` and the jobs before it ran: every later job's apply is told it was not sent. */
  const lastToRun = (h: Held): void => {
    lastRan = h.job;
    for (const other of held) if (other.job > h.job) other.reject(new NotSent());
    for (let index = h.job + 1; index < outcomes.length; index++) outcomes[index] = { ran: false };
  };
  const alone = (h: Held): void => {
    lastToRun(h);
    conn.exec(h.script, h.opts).then(h.resolve, h.reject);
  };
  // One script goes as it would alone.
  if (held.length === 1) {
    alone(lead);
    return outcomes;
  }
  let res: ExecResult;
  try {
    res = await conn.exec(applyBatchScript(held.map((h) => ({ script: h.script, goOn: jobs[h.job]!.goOn }))), become);
  } catch (err) {
    // The connection is gone (unreachable): the first task reports it, as it would have alone; the host is
    // then lost and the others never come.
    for (const h of held) h.reject(err);
    return outcomes;
  }
  let report: BatchReport;
  try {
    report = parseApplyBatchOutput(res.stdout, held.length);
    if (report.results.length === 0 && res.code === 0)
      throw new ProbeError('the host ended the batch without reporting any task; refusing to guess what ran');
  } catch (err) {
    if (res.code !== 0 && !hasSection(res.stdout)) {
      // Nothing ran (sudo refused, a login banner on stdout): the first task goes alone, as it would have.
      alone(lead);
      return outcomes;
    }
    // The host answered what the batch never prints: no task's result can be trusted.
    for (const h of held) h.reject(err);
    return outcomes;
  }
  if (report.results.length === 0) {
    // Nothing ran (no temp folder): the first task goes alone, the others later on their own.
    alone(lead);
    return outcomes;
  }
  const last = held[report.results.length - 1]!;
  lastToRun(last);
  for (const [index, result] of report.results.entries()) {
    const h = held[index]!;
    if (h === last && report.keptDir !== undefined) {
      // Its output stays on the host: fetched alone, so the transport keeps of it what it keeps of any output.
      const code = result.code;
      conn.exec(fetchKeptOutputScript(report.keptDir), become).then((all) => h.resolve({ ...all, code }), h.reject);
      continue;
    }
    h.resolve(result);
  }
  return outcomes;
}

function hasSection(stdout: string): boolean {
  try {
    const sections = parseSectionBytes(stdout);
    sections.delete('');
    return sections.size > 0;
  } catch {
    return true;
  }
}
