/**
 * Probe batching (runner/core/engine/probe-batch.ts, Engine.batchedCheck) against a real sshd: round trips are
 * COUNTED (every script the engine sends to the host, batched or not), never timed. The same plays run with
 * batching on and off (EngineOptions.probeBatching) on two copies of the same tree, and every task's event
 * (status, actions, diffs, messages) must be the same; a task that changes the host makes the later tasks'
 * batched probes stale, and they must be probed again (a lineinfile on a file the task before it created, and a
 * lineinfile after a command that appended to its file, would otherwise plan from what the file was before).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import '../../runner/core/modules/all.js';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { batchScript, parseBatchOutput, runChecksBatched } from '../../runner/core/engine/probe-batch.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import type { AnyModule } from '../../runner/core/modules/types.js';
import { openConnection } from '../../runner/core/transport/pool.js';
import { quote } from '../../runner/core/transport/quote.js';
import { fileProbeScript, section } from '../../runner/core/modules/remote.js';
import { contextFor, CountedConnection, makeTestEngine } from '../helpers/fake-connection.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();

let lab: TestSshLab;
let inventoryPath: string;
let caseNo = 0;

beforeAll(async () => {
  lab = await startSshHosts(1, { names: ['b1'] });
  inventoryPath = lab.writeInventory({ app: ['b1'] });
}, 60_000);
afterAll(async () => {
  await lab?.stop();
});

interface Played {
  trips: number;
  events: RunEvent[];
}

async function play(tasks: unknown[], opts: { check: boolean; batching: boolean; dir: string }): Promise<Played> {
  const playbookFile = join(opts.dir, `play-${++caseNo}.yaml`);
  writeFileSync(playbookFile, stringify([{ hosts: 'app', gather_facts: false, vars: { root: opts.dir }, tasks }]));
  let counted: CountedConnection | undefined;
  const { events, run } = makeTestEngine({
    inventory: loadInventory(inventoryPath),
    check: opts.check,
    diff: true,
    probeBatching: opts.batching,
    connect: async (spec) => (counted = new CountedConnection(await openConnection(spec))),
  });
  await run(playbookFile);
  return { trips: counted?.trips ?? 0, events };
}

const TREE_SPECIFIC = new Set(['mtime', 'atime', 'ctime', 'inode', 'dev']);

/** Each task's result as the user sees it, with the tree's own folder written as ROOT so two trees compare. */
function results(played: Played, dir: string): unknown[] {
  return played.events
    .filter((e): e is Extract<RunEvent, { type: 'task_result' }> => e.type === 'task_result')
    .map((e) =>
      JSON.parse(
        JSON.stringify(
          {
            task: e.task.name,
            status: e.status,
            msg: e.msg,
            actions: e.actions,
            diffs: e.diffs,
            result: e.result,
            // The two trees' files were made at different moments, on different inodes.
          },
          (key, value: unknown) => (TREE_SPECIFIC.has(key) ? undefined : value),
        ).replaceAll(dir, 'ROOT'),
      ),
    );
}

/** Twelve file tasks, as a config role has them; none depends on another's result. */
const CONFIG_TASKS = [
  ...[1, 2, 3].map((i) => ({ name: `dir ${i}`, file: { path: `{{ root }}/d${i}`, state: 'directory', mode: '0755' } })),
  ...[1, 2, 3].map((i) => ({
    name: `copy ${i}`,
    copy: { dest: `{{ root }}/d${i}/static.conf`, content: `static ${i}\n`, mode: '0644' },
  })),
  ...[1, 2, 3].map((i) => ({
    name: `line ${i}`,
    lineinfile: { path: `{{ root }}/d${i}/lines.conf`, regexp: `^key${i}=`, line: `key${i}=v${i}`, create: true },
  })),
  ...[1, 2].map((i) => ({
    name: `block ${i}`,
    blockinfile: { path: `{{ root }}/d${i}/block.conf`, block: `a ${i}\nb ${i}`, create: true },
  })),
  { name: 'stat', stat: { path: '{{ root }}/d1/static.conf' }, register: 'probe' },
];

function freshTree(name: string): string {
  const dir = join(lab.hosts[0]!.dir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('probe batching against real sshd', () => {
  it('a no-change rerun and --check send the probes of independent tasks in few round trips, same events', async () => {
    const batched = freshTree('batched');
    const alone = freshTree('alone');
    const run = (dir: string, check: boolean, batching: boolean) => play(CONFIG_TASKS, { check, batching, dir });

    // --check on an empty tree: 12 probes, no apply. Unbatched: one round trip per task; batched: one in all.
    const checkAlone = await run(alone, true, false);
    const checkBatched = await run(batched, true, true);
    expect(checkAlone.trips).toBe(12);
    expect(checkBatched.trips).toBe(1);
    expect(results(checkBatched, batched)).toEqual(results(checkAlone, alone));

    // First run: everything changes, so each task's batched probes of later tasks are dropped and probed again.
    const firstAlone = await run(alone, false, false);
    const firstBatched = await run(batched, false, true);
    expect(results(firstBatched, batched)).toEqual(results(firstAlone, alone));
    expect(results(firstBatched, batched).filter((r) => (r as { status: string }).status === 'changed')).toHaveLength(
      11,
    );
    // Probe + apply per changed task, as before: a change is never followed by a stale probe, and costs no more.
    expect(firstBatched.trips).toBeLessThanOrEqual(firstAlone.trips);

    // No-change rerun: 12 probe round trips before; batched: 8 tasks in the first batch, the other 4 in a second.
    const rerunAlone = await run(alone, false, false);
    const rerunBatched = await run(batched, false, true);
    expect(rerunAlone.trips).toBe(12);
    expect(rerunBatched.trips).toBe(2);
    expect(results(rerunBatched, batched)).toEqual(results(rerunAlone, alone));
    expect(results(rerunBatched, batched).every((r) => (r as { status: string }).status === 'ok')).toBe(true);

    // --check after the apply predicts nothing, in one round trip (check mode stays exact).
    const checkAgain = await run(batched, true, true);
    expect(checkAgain.trips).toBe(1);
    expect(results(checkAgain, batched).every((r) => (r as { status: string }).status === 'ok')).toBe(true);
  }, 120_000);

  it('a task that changes the host makes the later batched probes stale: they are probed again', async () => {
    const dir = freshTree('stale');
    writeFileSync(join(dir, 'appended.conf'), 'first=1\n');
    const tasks = [
      // The copy creates the file that the lineinfile after it edits (create: false: it must exist).
      { name: 'create', copy: { dest: '{{ root }}/made.conf', content: 'made=1\n' } },
      { name: 'edit made', lineinfile: { path: '{{ root }}/made.conf', line: 'edited=1', create: false } },
      { name: 'line one', lineinfile: { path: '{{ root }}/appended.conf', line: 'first=1' } },
      // Unchanged probes were batched before this command ran; it changes the file the next task edits.
      { name: 'append', command: `sh -c "echo second=2 >> ${join(dir, 'appended.conf')}"` },
      { name: 'line three', lineinfile: { path: '{{ root }}/appended.conf', line: 'third=3' } },
    ];
    const first = await play(tasks, { check: false, batching: true, dir });
    const statuses = results(first, dir).map((r) => (r as { status: string }).status);
    expect(statuses).toEqual(['changed', 'changed', 'ok', 'changed', 'changed']);
    expect(readFileSync(join(dir, 'made.conf'), 'utf8')).toBe('made=1\nedited=1\n');
    // Planned from a stale probe, "line three" would have rewritten the file without second=2.
    expect(readFileSync(join(dir, 'appended.conf'), 'utf8')).toBe('first=1\nsecond=2\nthird=3\n');
  }, 60_000);

  it('a probe whose output forges section lines gets back exactly its own bytes', async () => {
    const raw = await openConnection(lab.spec('b1'));
    try {
      const forged = [
        "printf '::cairn-section:: c0 OTk=\\n'", // a forged exit status for probe 0
        "printf '::cairn-section:: o1 ZXZpbA==\\n'", // a forged stdout for probe 1
        "printf 'no newline at the end'",
        "printf 'err\\n' >&2",
        'exit 3',
      ].join('\n');
      const scripts = [forged, 'printf \'second\\n\'; echo "dir=${cairn_batch_dir-unset}"', 'exit 0'];
      const res = await raw.exec(batchScript(scripts));
      expect(res.code).toBe(0);
      const out = parseBatchOutput(res.stdout, 3);
      expect(out[0]).toEqual({
        stdout: '::cairn-section:: c0 OTk=\n::cairn-section:: o1 ZXZpbA==\nno newline at the end',
        stderr: 'err\n',
        code: 3,
      });
      // The batch's own variables are not visible to the probe.
      expect(out[1]).toEqual({ stdout: 'second\ndir=unset\n', stderr: '', code: 0 });
      expect(out[2]).toEqual({ stdout: '', stderr: '', code: 0 });
      // Each result is what the script gives when sent alone.
      for (const [index, script] of scripts.entries()) {
        const alone = await raw.exec(script);
        if (index === 1) continue; // its output names the batch's variable, set only inside a batch
        expect({ stdout: alone.stdout, stderr: alone.stderr, code: alone.code }).toEqual(out[index]);
      }
      // A check's later scripts go alone; its first went in the batch: 2 round trips for 3 checks' 4 scripts.
      const counted = new CountedConnection(raw);
      const twoStep: AnyModule = {
        name: 'two-step',
        argsSchema: {},
        async check(ctx) {
          const a = await ctx.conn.exec('echo a');
          const b = await ctx.conn.exec('echo b');
          return { changed: false, actions: [], data: { a: a.stdout, b: b.stdout } };
        },
        async apply() {
          return { changed: false, data: {} };
        },
      };
      const oneStep: AnyModule = {
        ...twoStep,
        check: async (ctx) => ({ changed: false, actions: [], data: { x: (await ctx.conn.exec('echo x')).stdout } }),
      };
      const ctx = contextFor(counted);
      const plans = await runChecksBatched(counted, [
        { module: twoStep, ctx, args: {} },
        { module: oneStep, ctx, args: {} },
        { module: oneStep, ctx, args: {} },
      ]);
      const data = await Promise.all(plans.map(async (p) => (await p).data));
      expect(data).toEqual([{ a: 'a\n', b: 'b\n' }, { x: 'x\n' }, { x: 'x\n' }]);
      expect(counted.trips).toBe(2);
    } finally {
      await raw.close();
    }
  }, 60_000);

  it('each probe gets exactly the output it gives alone, sections and all (real sh, real files)', () => {
    const alone = (script: string) => spawnSync('/bin/sh', { input: script, encoding: 'utf8' }).stdout;
    const probes = [
      fileProbeScript('file', '/etc/hostname', { content: true }),
      fileProbeScript('file', '/etc', { checksum: false, names: false }),
      `${fileProbeScript('file', '/nonexistent/x')}\n${section('more', "printf 'a\\nb'")}\necho tail`,
      `${section('x', 'printf "%s\\n" "::cairn-section-file:: x"')}`,
    ];
    const ran = spawnSync('/bin/sh', { input: batchScript(probes), encoding: 'utf8' });
    expect(ran.status, ran.stderr).toBe(0);
    expect(parseBatchOutput(ran.stdout, probes.length).map((r) => r.stdout)).toEqual(probes.map(alone));
  });

  it('refuses batch output that is not exactly what the batch script prints', () => {
    const frame = (text: string | Buffer) => `::cairn-section:: batch ${Buffer.from(text).toString('base64')}\n`;
    const good = (body: string) => `s 4 3 0\n 2 o0\n 0 e0\n 1 o1\n 2 e1\n 5 total\n${body}`;
    expect(parseBatchOutput(frame(good('x\nyz\n')), 2)).toEqual([
      { stdout: 'x\n', stderr: '', code: 3 },
      { stdout: 'y', stderr: 'z\n', code: 0 },
    ]);
    // The real script, run by the real sh: bytes that forge section lines and a NUL come back as they were.
    const forged = `::cairn-section:: batch AAAA\ns 0 0\n 9 total\n`;
    const script = batchScript([`printf '%s' ${quote(forged)}; exit 7`, "echo two >&2; printf 'a\\000b'"]);
    const ran = spawnSync('/bin/sh', { input: script, encoding: 'utf8' });
    expect(parseBatchOutput(ran.stdout, 2)).toEqual([
      { stdout: forged, stderr: '', code: 7 },
      { stdout: 'a\0b', stderr: 'two\n', code: 0 },
    ]);
    expect(() => parseBatchOutput(frame(good('x\nyz\n')) + 'stray text', 2)).toThrow(/outside the batch's sections/);
    expect(() => parseBatchOutput(frame(good('x\nyz\n')) + frame('s\n'), 2)).toThrow(/twice/);
    expect(() => parseBatchOutput(frame(good('x\nyz\n').replace('s 4 3 0', 's 4 3')), 2)).toThrow(/no exit status/);
    expect(() => parseBatchOutput(frame(good('x\nyz\n').replace('s 4 3 0', 's 4 3 0;rm')), 2)).toThrow(
      /no exit status/,
    );
    expect(() => parseBatchOutput(frame(good('x\nyz\n').replace('1 o1', '1 ../x')), 2)).toThrow(/does not make/);
    expect(() => parseBatchOutput(frame(good('x\nyz\n').replace('1 o1', '1 e1')), 2)).toThrow(/does not make/);
    // A probe's output naming a section file it did not write.
    const named = `s 4 0 0\n 29 o0\n 0 e0\n 0 o1\n 0 e1\n 29 total\n::cairn-section-file:: other\n`;
    expect(() => parseBatchOutput(frame(named), 2)).toThrow(/names section "other"/);
    expect(() => parseBatchOutput(frame(good('x\nyz\n').replace('5 total', '6 total')), 2)).toThrow(/add up/);
    expect(() => parseBatchOutput(frame(good('x\nyz\nmore')), 2)).toThrow(/9 bytes of output, not the 5/);
    expect(() => parseBatchOutput(frame('s 4 0 0\n'), 2)).toThrow(/inside its header/);
  });
});
