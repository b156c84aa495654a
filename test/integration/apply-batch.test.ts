/**
 * Apply batching (runner/core/engine/apply-batch.ts, Engine.applyBatchFor) against a real sshd: round trips are
 * COUNTED (every script the engine sends to the host), never timed. Each playbook of a table runs with apply
 * batching on and off (EngineOptions.applyBatching) on two copies of the same tree, and every event (task
 * starts and results with status, message, registered result; failures, notifications, handlers), in order,
 * must be the same, and so must what the tasks left on the host (each task appends a line to a log file, so
 * a task that ran when it should not have, or in another order, shows).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import '../../runner/core/modules/all.js';
import {
  applyBatchScript,
  fetchKeptOutputScript,
  parseApplyBatchOutput,
  runAppliesBatched,
  STEP_OUTPUT_LIMIT,
  type ApplyJob,
} from '../../runner/core/engine/apply-batch.js';
import { Engine } from '../../runner/core/engine/engine.js';
import { EventBus, type RunEvent } from '../../runner/core/engine/events.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import type { AnyModule, ModuleResult } from '../../runner/core/modules/types.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import { createTemplater } from '../../runner/core/template/index.js';
import { openConnection } from '../../runner/core/transport/pool.js';
import { quote } from '../../runner/core/transport/quote.js';
import { contextFor, CountedConnection } from '../helpers/fake-connection.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();

let lab: TestSshLab;
let inventoryPath: string;
let caseNo = 0;

beforeAll(async () => {
  lab = await startSshHosts(1, { names: ['a1'] });
  inventoryPath = lab.writeInventory({ app: ['a1'] });
}, 60_000);
afterAll(async () => {
  await lab?.stop();
});

interface Played {
  trips: number;
  events: RunEvent[];
}

async function play(
  tasks: unknown[],
  opts: {
    batching: boolean;
    dir: string;
    handlers?: unknown[];
    check?: boolean;
    interruptAfterFirst?: boolean;
    /** Play keywords, and another inventory. */
    keywords?: Record<string, unknown>;
    inventory?: string;
  },
): Promise<Played> {
  const playbookFile = join(opts.dir, `play.yaml`); // one name in each tree: locations compare as ROOT/play.yaml
  const playDoc = {
    hosts: 'app',
    gather_facts: false,
    vars: { root: opts.dir },
    tasks,
    handlers: opts.handlers,
    ...opts.keywords,
  };
  writeFileSync(playbookFile, stringify([playDoc]));
  const bus = new EventBus();
  const events: RunEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const interrupt = new AbortController();
  // Ctrl-C once: running tasks finish, no new one starts.
  if (opts.interruptAfterFirst) bus.subscribe((e) => e.type === 'task_result' && interrupt.abort());
  let counted: CountedConnection | undefined;
  const engine = new Engine({
    inventory: loadInventory(opts.inventory ?? inventoryPath),
    bus,
    templater: createTemplater({ partialsDirs: [] }),
    check: opts.check ?? false,
    diff: true,
    forks: 5,
    extraVars: {},
    tags: { tags: [], skipTags: [] },
    verify: false,
    acceptNewHostKeys: false,
    signal: interrupt.signal,
    applyBatching: opts.batching,
    openConnection: async (spec) => (counted = new CountedConnection(await openConnection(spec))),
  });
  await engine.runPlaybook(new PlaybookLoader({ rolesPath: [] }).loadPlaybook(playbookFile));
  await engine.close();
  return { trips: counted?.trips ?? 0, events };
}

/** Fields that differ between any two runs (clocks) and the two trees' folders (written ROOT). */
const RUN_SPECIFIC = new Set(['time', 'durationMs', 'delta_ms', 'ms']);

/** Every event of the run as the user (and the journal and recap) sees it, in order. */
function eventsOf(played: Played, dir: string): unknown[] {
  return played.events
    .filter((e) => e.type !== 'connection_open')
    .map((e) =>
      JSON.parse(
        JSON.stringify(e, (key, value: unknown) => (RUN_SPECIFIC.has(key) ? undefined : value)).replaceAll(dir, 'ROOT'),
      ),
    );
}

function freshTree(name: string): string {
  const dir = join(lab.hosts[0]!.dir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

function logOf(dir: string): string {
  const path = join(dir, 'log');
  return existsSync(path) ? readFileSync(path, 'utf8') : '(no log)';
}

/** A task that appends `word` to the tree's log (and prints it). */
const append = (word: string, extra: Record<string, unknown> = {}) => ({
  name: `append ${word}`,
  shell: `echo ${word} >> {{ root }}/log; echo ${word}`,
  ...extra,
});

interface Case {
  name: string;
  tasks: unknown[];
  handlers?: unknown[];
  /** What the log must hold after the run (both ways). */
  log: string;
  /** Round trips with batching on, when the case pins them. */
  trips?: number;
}

const CASES: Case[] = [
  {
    name: 'all succeed',
    tasks: ['a', 'b', 'c', 'd', 'e'].map((w) => append(w)),
    log: 'a\nb\nc\nd\ne\n',
    trips: 1,
  },
  {
    name: 'a failure mid-batch stops the host there',
    tasks: [append('a'), append('b'), { name: 'fails', command: 'false' }, append('c'), append('d')],
    log: 'a\nb\n',
    trips: 1,
  },
  {
    name: 'ignore_errors: the host goes on past the failure',
    tasks: [
      append('a'),
      { name: 'fails, ignored', shell: 'echo oops >&2; exit 3', ignore_errors: true },
      append('b'),
      { name: 'fails', command: 'false' },
      append('c'),
    ],
    log: 'a\nb\n',
    trips: 1,
  },
  {
    name: 'a register read by a later task splits the batch',
    tasks: [
      append('a'),
      { ...append('b'), register: 'said' },
      // Rendered before "append b" ran, this would read the default and append "none".
      { name: 'append what b said', shell: "echo {{ said.stdout | default('none') }} >> {{ root }}/log" },
      { ...append('c'), when: "said.stdout | default('') == 'b'" },
      { ...append('d'), when: "said.stdout | default('') != 'b'" },
    ],
    log: 'a\nb\nb\nc\n',
  },
  {
    name: 'changed_when and failed_when are judged per task',
    tasks: [
      { ...append('a'), changed_when: false },
      { name: 'fails but not failed', command: 'false', failed_when: false },
      append('b'),
      { name: 'succeeds but failed', shell: 'echo fine', failed_when: "'fine' in stdout" },
      append('never'),
    ],
    log: 'a\nb\n',
  },
  {
    name: 'a failed_when that fails on exit status 0 stops the host before the next task',
    tasks: [append('a'), { ...append('b'), failed_when: 'rc == 0' }, append('never')],
    log: 'a\nb\n',
  },
  {
    name: 'loops and a when that reads an earlier task of the batch',
    tasks: [
      append('a'),
      { name: 'loop', shell: 'echo {{ item }} >> {{ root }}/log', loop: ['x', 'y'] },
      { ...append('b'), register: 'seen' },
      { ...append('c'), when: 'seen is changed' },
      { ...append('d'), when: 'seen is not changed' },
      append('e'),
    ],
    log: 'a\nx\ny\nb\nc\ne\n',
  },
  {
    name: 'a handler flush between tasks',
    tasks: [
      { ...append('a'), notify: 'h' },
      { name: 'flush', meta: 'flush_handlers' },
      append('b'),
      { ...append('c'), notify: 'h' },
      append('d'),
    ],
    handlers: [{ name: 'h', shell: 'echo h >> {{ root }}/log' }],
    log: 'a\nh\nb\nc\nd\nh\n',
  },
];

describe('apply batching against real sshd', () => {
  it('50 × command /bin/true: 50 round trips alone, a handful batched, the same events', async () => {
    const tasks = Array.from({ length: 50 }, (_, i) => ({ name: `no-op ${i + 1}`, command: '/bin/true' }));
    const dir = freshTree('fifty');
    const alone = await play(tasks, { batching: false, dir });
    const batched = await play(tasks, { batching: true, dir });
    expect(alone.trips).toBe(50);
    // Windows of 8, 16 and 32 tasks (the window doubles while every task of a batch runs): 8 + 16 + 26.
    expect(batched.trips).toBe(3);
    expect(eventsOf(batched, dir)).toEqual(eventsOf(alone, dir));
    const statuses = batched.events.filter((e) => e.type === 'task_result').map((e) => e.status);
    expect(statuses).toEqual(Array(50).fill('changed'));
  }, 120_000);

  for (const c of CASES) {
    it(`same events and host with batching on and off: ${c.name}`, async () => {
      const on = freshTree(`on-${++caseNo}`);
      const off = freshTree(`off-${caseNo}`);
      const alone = await play(c.tasks, { batching: false, dir: off, handlers: c.handlers });
      const batched = await play(c.tasks, { batching: true, dir: on, handlers: c.handlers });
      expect(logOf(off)).toBe(c.log);
      expect(logOf(on)).toBe(c.log);
      expect(eventsOf(batched, on)).toEqual(eventsOf(alone, off));
      if (c.trips !== undefined) expect(batched.trips).toBe(c.trips);
      expect(batched.trips).toBeLessThanOrEqual(alone.trips);
    }, 60_000);
  }

  it('an interrupt after the first task: every task that ran on the host is reported, no other', async () => {
    const tasks = ['a', 'b', 'c', 'd', 'e'].map((w) => append(w));
    for (const batching of [false, true]) {
      const dir = freshTree(`interrupt-${batching}`);
      const played = await play(tasks, { batching, dir, interruptAfterFirst: true });
      const reported = played.events.filter((e) => e.type === 'task_result').map((e) => e.task.name);
      const ran = logOf(dir)
        .split('\n')
        .filter(Boolean)
        .map((w) => `append ${w}`);
      expect(reported).toEqual(ran);
      // Alone, the interrupt stops the host after its first task; batched, the batch had already run them all.
      expect(ran).toHaveLength(batching ? 5 : 1);
    }
  }, 60_000);

  it('any_errors_fatal: a failure on one host stops the others before their next task, so nothing batches', async () => {
    const two = await startSshHosts(2, { names: ['f1', 'f2'] });
    try {
      const inventory = two.writeInventory({ app: ['f1', 'f2'] });
      const mark = (word: string) => ({
        name: `mark ${word}`,
        shell: `echo {{ inventory_hostname }}-${word} >> {{ root }}/log`,
      });
      const tasks = [
        mark('a'),
        // f2 is slow to fail: unbatched, f1 waits for it (linear) and never starts "mark c".
        { name: 'fails on f2', shell: 'if [ {{ inventory_hostname }} = f2 ]; then sleep 1; exit 1; fi' },
        mark('c'),
        mark('d'),
      ];
      const logs: string[] = [];
      for (const batching of [false, true]) {
        const dir = freshTree(`fatal-${batching}`);
        await play(tasks, { batching, dir, inventory, keywords: { any_errors_fatal: true, strategy: 'linear' } });
        logs.push(logOf(dir).split('\n').filter(Boolean).sort().join(' '));
      }
      expect(logs[0]).toBe('f1-a f2-a');
      expect(logs[1]).toBe(logs[0]);
    } finally {
      await two.stop();
    }
  }, 120_000);

  it('--check is untouched: nothing is applied, the same predictions', async () => {
    const tasks = ['a', 'b', 'c'].map((w) => append(w));
    const on = freshTree('check-on');
    const off = freshTree('check-off');
    const alone = await play(tasks, { batching: false, dir: off, check: true });
    const batched = await play(tasks, { batching: true, dir: on, check: true });
    expect(logOf(on)).toBe('(no log)');
    expect(eventsOf(batched, on)).toEqual(eventsOf(alone, off));
  }, 60_000);
});

/** A module whose apply runs `args.script` as its one script and reports what came back. */
const scriptModule: AnyModule = {
  name: 'script-test',
  argsSchema: {},
  check: async () => ({ changed: true, actions: [] }),
  async apply(ctx, args): Promise<ModuleResult> {
    const res = await ctx.conn.exec(String(args.script));
    return { changed: true, failed: res.code !== 0, data: { stdout: res.stdout, stderr: res.stderr, rc: res.code } };
  },
};

describe('the batch script against real sshd', () => {
  it('each step gets exactly its own bytes back, a failure stops the host, a big output is fetched whole', async () => {
    const raw = await openConnection(lab.spec('a1'));
    const counted = new CountedConnection(raw);
    try {
      const ctx = contextFor(counted);
      const job = (script: string, goOn = false): ApplyJob => ({
        module: scriptModule,
        ctx,
        args: { script },
        plan: { changed: true, actions: [] },
        goOn,
      });
      const forged = [
        "printf '::cairn-section:: c0-99 \\n'", // a forged exit status for this very step
        "printf '::cairn-section:: o1 ZXZpbA==\\n'", // a forged stdout for the next step
        "printf 'no newline at the end'",
        "printf 'err\\n' >&2",
        'exit 3',
      ].join('\n');
      const names = 'echo "dir=${cairn_batch_dir-unset} rc=${cairn_batch_rc-unset}"';
      const scripts = [forged, names, 'exit 4', 'echo never'];
      const outcomes = await runAppliesBatched(counted, [
        job(scripts[0]!, true),
        job(scripts[1]!),
        job(scripts[2]!),
        job(scripts[3]!),
      ]);
      expect(counted.trips).toBe(1);
      expect(outcomes.map((o) => o.ran)).toEqual([true, true, true, false]);
      const data = await Promise.all(outcomes.slice(0, 3).map(async (o) => (o.ran ? (await o.result).data : {})));
      expect(data[0]).toEqual({
        stdout: '::cairn-section:: c0-99 \n::cairn-section:: o1 ZXZpbA==\nno newline at the end',
        stderr: 'err\n',
        rc: 3,
      });
      // The batch's own variables are not visible to a step.
      expect(data[1]).toEqual({ stdout: 'dir=unset rc=unset\n', stderr: '', rc: 0 });
      // Each result is what the script gives when sent alone.
      for (const [index, script] of scripts.slice(0, 3).entries()) {
        const alone = await raw.exec(script);
        expect({ stdout: alone.stdout, stderr: alone.stderr, rc: alone.code }).toEqual(data[index]);
      }

      // A step that prints more than a batch carries: the batch ends after it, its output is fetched alone.
      counted.trips = 0;
      const big = `head -c ${STEP_OUTPUT_LIMIT + 1000} /dev/zero | tr '\\0' x; echo tail >&2`;
      const second = await runAppliesBatched(counted, [job('echo first'), job(big), job('echo after')]);
      expect(second.map((o) => o.ran)).toEqual([true, true, false]);
      const bigData = second[1]!.ran ? (await second[1]!.result).data : {};
      expect(String(bigData.stdout)).toBe('x'.repeat(STEP_OUTPUT_LIMIT + 1000));
      expect(bigData.stderr).toBe('tail\n');
      expect(counted.trips).toBe(2);
      // The folder the batch leaves for the fetch is there until the fetch, and gone after it.
      const res = await raw.exec(
        applyBatchScript([
          { script: big, goOn: false },
          { script: 'echo after', goOn: false },
        ]),
      );
      const report = parseApplyBatchOutput(res.stdout, 2);
      expect(report.results).toEqual([{ stdout: '', stderr: '', code: 0 }]);
      const kept = report.keptDir!;
      expect((await raw.exec(`[ -d ${quote(kept)} ] && echo kept`)).stdout).toBe('kept\n');
      await raw.exec(fetchKeptOutputScript(kept));
      expect((await raw.exec(`[ -e ${quote(kept)} ] || echo gone`)).stdout).toBe('gone\n');
    } finally {
      await raw.close();
    }
  }, 60_000);

  it('refuses batch output that is not exactly what the batch script prints', () => {
    const line = (name: string, text: string) => `::cairn-section:: ${name} ${Buffer.from(text).toString('base64')}`;
    const good = [line('o0', 'x'), line('e0', ''), line('c0-0', '')];
    expect(parseApplyBatchOutput(good.join('\n') + '\n', 2)).toEqual({
      results: [{ stdout: 'x', stderr: '', code: 0 }],
      keptDir: undefined,
    });
    expect(() => parseApplyBatchOutput([...good, 'stray text'].join('\n'), 2)).toThrow(/outside the batch's sections/);
    expect(() => parseApplyBatchOutput([...good, line('c0-1', '')].join('\n'), 2)).toThrow(/two exit statuses/);
    expect(() => parseApplyBatchOutput([...good, line('o1', 'y')].join('\n'), 2)).toThrow(
      /3 sections, not 4|4 sections, not 3/,
    );
    expect(() => parseApplyBatchOutput([...good, line('k', '/tmp/$(x)'), line('c1-0', '')].join('\n'), 2)).toThrow(
      /refusing it/,
    );
    expect(applyBatchScript([{ script: 'echo \'quoted\' "$x"', goOn: false }])).toContain(
      `eval 'echo '\\''quoted'\\'' "$x"'`,
    );
  });
});
