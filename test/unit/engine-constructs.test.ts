/**
 * Ansible's playbook constructs in cairn's engine (issue 12): block/rescue/always, meta, the with_* loops and
 * loop_control, include_tasks/include_role/import_role, include_vars, --start-at-task. Hosts are
 * FakeConnections (see engine.test.ts): a `command` whose words include `fail` exits 1, and `ran` records every
 * command per host in order. Everything above the connection is real; test/integration/constructs.test.ts
 * runs the same constructs against real sshd.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import '../../runner/core/modules/all.js';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { sequenceItems } from '../../runner/core/engine/loops.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import { CairnError, ExitCode } from '../../runner/core/util/errors.js';
import { RecapCollector } from '../../runner/app/report/index.js';
import { runExitCode } from '../../runner/app/session.js';
import { commandWords, makeTestEngine } from '../helpers/fake-connection.js';

const root = mkdtempSync(join(tmpdir(), 'cairn-constructs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

interface Result {
  code: number;
  events: RunEvent[];
  ran: Map<string, string[]>;
  stats: ReturnType<RecapCollector['stats']>;
}

/** A case folder: the playbook (plays get hosts: app, gather_facts: false) and any extra files. */
function writeCase(plays: unknown[], files: Record<string, unknown> = {}): string {
  const dir = join(root, `case${++counter}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), typeof content === 'string' ? content : stringify(content));
  }
  writeFileSync(
    join(dir, 'site.yaml'),
    stringify(plays.map((p) => ({ hosts: 'app', gather_facts: false, ...(p as object) }))),
  );
  return dir;
}

async function run(
  plays: unknown[],
  files: Record<string, unknown> = {},
  opts: { hosts?: string[]; startAtTask?: string; tags?: string[]; check?: boolean } = {},
): Promise<Result> {
  const dir = writeCase(plays, files);
  const hosts = opts.hosts ?? ['app1', 'app2'];
  writeFileSync(
    join(dir, 'hosts.yaml'),
    stringify({ all: { children: { app: { hosts: Object.fromEntries(hosts.map((h) => [h, {}])) } } } }),
  );
  const inventory = loadInventory(join(dir, 'hosts.yaml'));
  const ran = new Map<string, string[]>();
  const testEngine = makeTestEngine({
    inventory,
    check: opts.check ?? false,
    tags: { tags: opts.tags ?? [], skipTags: [] },
    startAtTask: opts.startAtTask,
    reply: (script, spec) => {
      const words = commandWords(script);
      if (words === undefined) return { code: 0 };
      ran.set(spec.name, [...(ran.get(spec.name) ?? []), words]);
      return { code: words.split(' ').includes('fail') ? 1 : 0, stdout: `${words}\n` };
    },
  });
  const { bus, events } = testEngine;
  const recap = new RecapCollector(bus);
  const outcome = await testEngine.run(join(dir, 'site.yaml'));
  const code = runExitCode(recap, outcome, { check: false, detailedExitcode: false });
  return { code, events, ran, stats: recap.stats() };
}

function loadError(plays: unknown[], files: Record<string, unknown> = {}): CairnError {
  const dir = writeCase(plays, files);
  try {
    new PlaybookLoader({ rolesPath: [] }).loadPlaybook(join(dir, 'site.yaml'));
  } catch (err) {
    expect(err).toBeInstanceOf(CairnError);
    return err as CairnError;
  }
  throw new Error('the playbook loaded');
}

const cmd = (line: string, extra: Record<string, unknown> = {}) => ({ name: line, command: line, ...extra });
const debugMsg = (events: RunEvent[], host: string) =>
  events
    .filter((e) => e.type === 'task_result' && e.host === host && e.task.module === 'debug' && e.result)
    .map((e) => (e.type === 'task_result' ? (e.result as { msg?: unknown }).msg : undefined));

describe('block / rescue / always', () => {
  it('a failure in block runs rescue with ansible_failed_task/result; the host is rescued, not failed', async () => {
    const r = await run([
      {
        tasks: [
          {
            name: 'guarded',
            block: [cmd('echo one'), cmd('echo fail now', { when: "inventory_hostname == 'app1'" }), cmd('echo two')],
            rescue: [
              { debug: { msg: '{{ ansible_failed_task.name }} rc={{ ansible_failed_result.rc }}' } },
              cmd('echo rescued'),
            ],
            always: [cmd('echo always')],
          },
          cmd('echo after'),
        ],
      },
    ]);
    expect(r.ran.get('app1')).toEqual(['echo one', 'echo fail now', 'echo rescued', 'echo always', 'echo after']);
    expect(r.ran.get('app2')).toEqual(['echo one', 'echo two', 'echo always', 'echo after']);
    expect(debugMsg(r.events, 'app1')).toEqual(['echo fail now rc=1']);
    expect(r.stats.app1).toMatchObject({ failed: 0, rescued: 1 });
    expect(r.code).toBe(ExitCode.ok);
    expect(r.events.some((e) => e.type === 'host_failed')).toBe(false);
  });

  it('always runs after an unrescued failure, then the host fails; a failing rescue fails it too', async () => {
    const r = await run([
      {
        tasks: [
          { block: [cmd('echo fail a'), cmd('echo not reached')], always: [cmd('echo cleanup')] },
          cmd('echo after'),
        ],
      },
    ]);
    expect(r.ran.get('app1')).toEqual(['echo fail a', 'echo cleanup']);
    expect(r.stats.app1).toMatchObject({ failed: 1, rescued: 0 });
    expect(r.code).toBe(ExitCode.hostFailed);

    const r2 = await run([
      {
        tasks: [{ block: [cmd('echo fail a')], rescue: [cmd('echo fail b')], always: [cmd('echo c')] }, cmd('echo d')],
      },
    ]);
    expect(r2.ran.get('app2')).toEqual(['echo fail a', 'echo fail b', 'echo c']);
    expect(r2.stats.app2).toMatchObject({ failed: 1, rescued: 1 });
  });

  it('nested: an inner failure without rescue goes to the outer rescue; block keywords reach every list', async () => {
    const r = await run([
      {
        tasks: [
          {
            block: [{ block: [cmd('echo fail inner')], always: [cmd('echo inner always')] }, cmd('echo skipped')],
            rescue: [cmd('echo outer rescue {{ who }}')],
            vars: { who: 'me' },
            when: "inventory_hostname == 'app1'",
          },
        ],
      },
    ]);
    expect(r.ran.get('app1')).toEqual(['echo fail inner', 'echo inner always', 'echo outer rescue me']);
    expect(r.ran.get('app2')).toBeUndefined();
    expect(r.code).toBe(ExitCode.ok);
  });

  it('rescue cleared the failure: handlers notified in the block still run at the end', async () => {
    const r = await run([
      {
        tasks: [{ block: [cmd('echo change', { notify: 'h' }), cmd('echo fail')], rescue: [cmd('echo r')] }],
        handlers: [{ name: 'h', command: 'echo handler' }],
      },
    ]);
    expect(r.ran.get('app1')).toEqual(['echo change', 'echo fail', 'echo r', 'echo handler']);
  });

  it('unknown and unsupported block keywords are refused at file:line:col', () => {
    const err = loadError([{ tasks: [{ block: [cmd('echo a')], rescue: [], resuce: [] }] }]);
    expect(err.message).toMatch(/unknown block keyword "resuce" \(did you mean "rescue"\?\)/);
    expect(err.location?.line).toBeGreaterThan(0);
    const loop = loadError([{ tasks: [{ block: [cmd('echo a')], loop: [1, 2] }] }]);
    expect(loop.message).toMatch(/block keyword "loop" is not supported.*include_tasks/);
  });
});

describe('meta', () => {
  it('flush_handlers runs notified handlers at that point; noop does nothing', async () => {
    const r = await run([
      {
        tasks: [cmd('echo a', { notify: 'h' }), { meta: 'flush_handlers' }, { meta: 'noop' }, cmd('echo b')],
        handlers: [{ name: 'h', command: 'echo handler' }],
      },
    ]);
    expect(r.ran.get('app1')).toEqual(['echo a', 'echo handler', 'echo b']);
  });

  it('end_host ends one host without failing it; end_play ends the play for all, the next play runs', async () => {
    const r = await run([
      { tasks: [cmd('echo a'), { meta: 'end_host', when: "inventory_hostname == 'app1'" }, cmd('echo b')] },
      { tasks: [cmd('echo c'), { meta: 'end_play' }, cmd('echo d')] },
    ]);
    expect(r.ran.get('app1')).toEqual(['echo a', 'echo c']);
    expect(r.ran.get('app2')).toEqual(['echo a', 'echo b', 'echo c']);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stats.app1).toMatchObject({ failed: 0, skipped: 0 });
    expect(r.stats.app2).toMatchObject({ skipped: 1 });
  });

  it('refresh_inventory and unknown actions are refused by name', () => {
    expect(loadError([{ tasks: [{ meta: 'refresh_inventory' }] }]).message).toMatch(
      /meta: refresh_inventory is not supported by cairn: cairn reads the inventory once/,
    );
    expect(loadError([{ tasks: [{ meta: 'flush_handler' }] }]).message).toMatch(/unknown meta action "flush_handler"/);
  });
});

describe('loops', () => {
  const loopRun = async (task: Record<string, unknown>, files: Record<string, unknown> = {}) =>
    (await run([{ tasks: [{ name: 'l', debug: { msg: '{{ item }}' }, ...task }] }], files, { hosts: ['app1'] })).events
      .filter((e) => e.type === 'task_result' && e.item !== undefined && !e.loopSummary)
      .map((e) => (e.type === 'task_result' ? (e.result as { msg?: unknown }).msg : undefined));

  it('with_items flattens one level; with_list does not', async () => {
    expect(await loopRun({ with_items: [[1, 2], 3, [[4]]] })).toEqual([1, 2, 3, [4]]);
    expect(await loopRun({ with_list: [[1, 2], 3] })).toEqual([[1, 2], 3]);
  });

  it('with_dict, with_together, with_nested, with_indexed_items, with_subelements', async () => {
    expect(await loopRun({ with_dict: { a: 1, b: 2 }, debug: { msg: '{{ item.key }}={{ item.value }}' } })).toEqual([
      'a=1',
      'b=2',
    ]);
    expect(await loopRun({ with_together: [['a', 'b'], [1]] })).toEqual([
      ['a', 1],
      ['b', null],
    ]);
    expect(
      await loopRun({
        with_nested: [
          ['a', 'b'],
          [1, 2],
        ],
      }),
    ).toEqual([
      ['a', 1],
      ['a', 2],
      ['b', 1],
      ['b', 2],
    ]);
    expect(await loopRun({ with_indexed_items: ['x', 'y'] })).toEqual([
      [0, 'x'],
      [1, 'y'],
    ]);
    const users = [
      { name: 'alice', keys: ['k1', 'k2'] },
      { name: 'bob', keys: ['k3'] },
    ];
    expect(
      await loopRun({ with_subelements: [users, 'keys'], debug: { msg: '{{ item.0.name }}:{{ item.1 }}' } }),
    ).toEqual(['alice:k1', 'alice:k2', 'bob:k3']);
  });

  it('with_sequence as Ansible formats it', async () => {
    expect(await loopRun({ with_sequence: 'start=1 end=3 format=web%02d' })).toEqual(['web01', 'web02', 'web03']);
    expect(sequenceItems('count=3', { file: 'x' })).toEqual(['1', '2', '3']);
    expect(sequenceItems('start=10 end=0 stride=-5', { file: 'x' })).toEqual(['10', '5', '0']);
    expect(sequenceItems('4-8/2', { file: 'x' })).toEqual(['4', '6', '8']);
    expect(() => sequenceItems('start=1', { file: 'x' })).toThrow(/end or count is required/);
  });

  it('with_first_found and with_fileglob look in files/ beside the playbook', async () => {
    const files = { 'files/b.conf': 'b', 'files/c.conf': 'c', 'files/notes.txt': 'n', 'vars/Debian.yml': 'x: 1' };
    const found = await loopRun({ with_first_found: ['a.conf', 'b.conf', 'c.conf'] }, files);
    expect(found).toHaveLength(1);
    expect(String(found[0])).toMatch(/files\/b\.conf$/);
    const globbed = await loopRun({ with_fileglob: ['*.conf'] }, files);
    expect(globbed.map((p) => String(p).replace(/.*\//, ''))).toEqual(['b.conf', 'c.conf']);
    const skip = await loopRun({ with_first_found: [{ files: ['nope.yml'], skip: true }] });
    expect(skip).toEqual([]);
  });

  it('loop_control: loop_var, index_var, label, extended', async () => {
    const r = await run(
      [
        {
          tasks: [
            {
              name: 'l',
              debug: { msg: '{{ idx }}:{{ thing }}:{{ ansible_loop.revindex }}:{{ ansible_loop.last }}' },
              loop: ['a', 'b'],
              loop_control: { loop_var: 'thing', index_var: 'idx', label: 'L-{{ thing }}', extended: true },
            },
          ],
        },
      ],
      {},
      { hosts: ['app1'] },
    );
    const items = r.events.filter((e) => e.type === 'task_result' && e.item !== undefined && !e.loopSummary);
    expect(items.map((e) => (e.type === 'task_result' ? e.item : undefined))).toEqual(['L-a', 'L-b']);
    expect(items.map((e) => (e.type === 'task_result' ? (e.result as { msg: string }).msg : ''))).toEqual([
      '0:a:2:False',
      '1:b:1:True',
    ]);
  });

  it('a with_ lookup cairn does not run is refused by name at file:line:col', () => {
    const err = loadError([{ tasks: [{ debug: { msg: 'x' }, with_lines: 'cat /etc/hosts' }] }]);
    expect(err.message).toMatch(/"with_lines" \(Ansible's lines lookup\) is not supported by cairn; write loop:/);
    expect(err.location?.line).toBeGreaterThan(0);
  });
});

describe('includes', () => {
  it('include_tasks in a loop runs the file once per item with the loop variable', async () => {
    const r = await run(
      [{ tasks: [{ include_tasks: 'each.yml', loop: ['x', 'y'], loop_control: { loop_var: 'part' } }] }],
      { 'each.yml': [cmd('echo part {{ part }}'), cmd('echo end {{ part }}')] },
      { hosts: ['app1'] },
    );
    expect(r.ran.get('app1')).toEqual(['echo part x', 'echo end x', 'echo part y', 'echo end y']);
  });

  it('include_tasks with a templated name loads the file per host at run time', async () => {
    const r = await run(
      [{ vars: { flavour: '{{ inventory_hostname }}' }, tasks: [{ include_tasks: 'setup-{{ flavour }}.yml' }] }],
      { 'setup-app1.yml': [cmd('echo one')], 'setup-app2.yml': [cmd('echo two')] },
    );
    expect(r.ran.get('app1')).toEqual(['echo one']);
    expect(r.ran.get('app2')).toEqual(['echo two']);
  });

  it('a missing templated include fails that host at the include, clearly', async () => {
    const r = await run([{ tasks: [{ include_tasks: 'setup-{{ inventory_hostname }}.yml' }] }], {
      'setup-app1.yml': [cmd('echo one')],
    });
    const failed = r.events.find((e) => e.type === 'task_result' && e.status === 'failed');
    expect(failed?.type === 'task_result' && failed.msg).toMatch(/task file "setup-app2.yml" not found/);
  });

  it('include_vars: a file (templated name), a dir, under a name', async () => {
    const r = await run(
      [
        {
          tasks: [
            { include_vars: '{{ inventory_hostname }}.yml' },
            { include_vars: { dir: 'more', name: 'extra' } },
            { debug: { msg: '{{ colour }} {{ extra.a }} {{ extra.b }}' } },
          ],
        },
      ],
      {
        'vars/app1.yml': { colour: 'red' },
        'vars/app2.yml': { colour: 'blue' },
        'more/1.yml': { a: 1, b: 1 },
        'more/2.yaml': { b: 2 },
        'more/skip.txt': 'b: 3',
      },
    );
    expect(debugMsg(r.events, 'app1')).toEqual(['red 1 2']);
    expect(debugMsg(r.events, 'app2')).toEqual(['blue 1 2']);
  });

  it('import_role and include_role (tasks_from, vars_from, a loop) run the role with its defaults and handlers', async () => {
    const files = {
      'roles/web/tasks/main.yml': [cmd('echo web {{ port }}', { notify: 'reload web' })],
      'roles/web/tasks/extra.yml': [cmd('echo extra {{ item }} {{ port }}')],
      'roles/web/defaults/main.yml': { port: 80 },
      'roles/web/vars/alt.yml': { port: 8080 },
      'roles/web/handlers/main.yml': [{ name: 'reload web', command: 'echo reload' }],
    };
    const r = await run(
      [
        {
          tasks: [
            { import_role: { name: 'web' } },
            { include_role: { name: 'web', tasks_from: 'extra', vars_from: 'alt' }, loop: [1, 2] },
          ],
        },
      ],
      files,
      { hosts: ['app1'] },
    );
    expect(r.ran.get('app1')).toEqual(['echo web 80', 'echo extra 1 8080', 'echo extra 2 8080', 'echo reload']);
  });

  it('import_tasks cannot loop or be templated (read when the playbook loads)', () => {
    expect(loadError([{ tasks: [{ import_tasks: 'x-{{ a }}.yml' }] }]).message).toMatch(/use include_tasks/);
  });
});

describe('--start-at-task and tags', () => {
  it('starts at the named task (a glob works), into a block', async () => {
    const r = await run(
      [{ tasks: [cmd('echo a'), { block: [cmd('echo b'), cmd('echo c')], always: [cmd('echo d')] }, cmd('echo e')] }],
      {},
      { hosts: ['app1'], startAtTask: 'echo c*' },
    );
    expect(r.ran.get('app1')).toEqual(['echo c', 'echo d', 'echo e']);
  });

  it('tags select inside blocks; always and never as Ansible', async () => {
    const r = await run(
      [
        {
          tasks: [
            { block: [cmd('echo a', { tags: 'x' }), cmd('echo b')], always: [cmd('echo c', { tags: 'always' })] },
            cmd('echo n', { tags: ['never', 'debug'] }),
          ],
        },
      ],
      {},
      { hosts: ['app1'], tags: ['x'] },
    );
    expect(r.ran.get('app1')).toEqual(['echo a', 'echo c']);
  });
});

describe('older spellings and refused keywords', () => {
  it('action: "MODULE ARGS" and action: {module: ...} run that module', async () => {
    const r = await run(
      [
        {
          tasks: [
            { name: 'a', action: 'command echo one' },
            { name: 'b', action: { module: 'command', cmd: 'echo two' } },
          ],
        },
      ],
      {},
      { hosts: ['app1'] },
    );
    expect(r.ran.get('app1')).toEqual(['echo one', 'echo two']);
  });

  it('task keywords cairn does not have are refused by name with what to do instead', () => {
    // environment and delegate_facts are implemented (engine.test.ts); throttle is still refused.
    const throttle = loadError([{ tasks: [cmd('make', { throttle: 1 })] }]);
    expect(throttle.message).toMatch(/task keyword "throttle" is not supported by cairn/);
    expect(throttle.location?.line).toBeGreaterThan(0);
  });
});
