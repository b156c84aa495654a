/**
 * The engine's scheduling and task semantics without SSH: `Engine` gets a connection opener that hands out
 * FakeConnections, so these run in well under a second each with no sshd. A fake host answers the `command`
 * module's `exec 'word' ...` script; a command whose words include `fail` exits 1, and every script a host
 * runs is recorded in `ran` (host -> command words), in order, so a test reads exactly what ran where.
 * Everything above the connection (inventory, playbook loader, templater, executors, recap, journal) is real.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import '../../runner/core/modules/all.js';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { ExitCode } from '../../runner/core/util/errors.js';
import { RecapCollector, RunJournal, SecretMasker, hostsToRerun, latestRun } from '../../runner/app/report/index.js';
import { runExitCode } from '../../runner/app/session.js';
import { commandWords, makeTestEngine } from '../helpers/fake-connection.js';

const root = mkdtempSync(join(tmpdir(), 'cairn-engine-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

interface RunOptions {
  hosts?: string[];
  forks?: number;
  onlyHosts?: string[];
  unreachable?: string[];
  journalDir?: string;
  extraVars?: Record<string, unknown>;
  /** Sees the loaded inventory before the run (to count what the engine asks of it). */
  onInventory?: (inventory: ReturnType<typeof loadInventory>) => void;
}

interface RunResult {
  code: number;
  events: RunEvent[];
  /** host -> the command words of every `command` it ran, in order. */
  ran: Map<string, string[]>;
  /** Every command in the order the hosts ran them, as "host: words". */
  order: string[];
  opened: string[];
  /** host -> every script it was sent, in order. */
  scripts: Map<string, string[]>;
  /** Every command as "host user@address:port: words": the connection settings it ran over. */
  via: string[];
}

async function run(plays: unknown[], opts: RunOptions = {}): Promise<RunResult> {
  const dir = join(root, `case${++counter}`);
  mkdirSync(dir);
  const hosts = opts.hosts ?? ['app1', 'app2', 'app3'];
  const inventoryFile = join(dir, 'hosts.yaml');
  writeFileSync(
    inventoryFile,
    stringify({
      all: { children: { app: { hosts: Object.fromEntries(hosts.map((h) => [h, { ansible_host: '127.0.0.1' }])) } } },
    }),
  );
  const playbookFile = join(dir, 'site.yaml');
  writeFileSync(playbookFile, stringify(plays.map((p) => ({ hosts: 'app', gather_facts: false, ...(p as object) }))));
  const inventory = loadInventory(inventoryFile);
  opts.onInventory?.(inventory);
  const ran = new Map<string, string[]>();
  const order: string[] = [];
  const scripts = new Map<string, string[]>();
  const via: string[] = [];
  const testEngine = makeTestEngine({
    inventory,
    forks: opts.forks ?? 5,
    extraVars: opts.extraVars ?? {},
    onlyHosts: opts.onlyHosts,
    unreachable: opts.unreachable,
    reply: (script, spec) => {
      scripts.set(spec.name, [...(scripts.get(spec.name) ?? []), script]);
      const words = commandWords(script);
      if (words === undefined) return { code: 0 };
      ran.set(spec.name, [...(ran.get(spec.name) ?? []), words]);
      order.push(`${spec.name}: ${words}`);
      via.push(`${spec.name} ${spec.user}@${spec.address}:${spec.port}: ${words}`);
      return { code: words.split(' ').includes('fail') ? 1 : 0, stdout: `${words}\n` };
    },
  });
  const { bus, events, opened } = testEngine;
  const recap = new RecapCollector(bus);
  let journal: RunJournal | undefined;
  if (opts.journalDir) {
    journal = new RunJournal(new SecretMasker());
    journal.open(opts.journalDir);
    journal.attach(bus);
  }
  const outcome = await testEngine.run(playbookFile);
  bus.emit({ type: 'recap', time: new Date().toISOString(), stats: recap.stats() });
  journal?.close();
  const code = runExitCode(recap, outcome, { check: false, detailedExitcode: false });
  return { code, events, ran, order, opened, scripts, via };
}

const cmd = (line: string, extra: Record<string, unknown> = {}) => ({ name: line, command: line, ...extra });
const resultsOf = (events: RunEvent[], task: string) =>
  events.filter(
    (e): e is Extract<RunEvent, { type: 'task_result' }> => e.type === 'task_result' && e.task.name === task,
  );

describe('serial', () => {
  it('a number makes batches of that size, each run to the end before the next starts', async () => {
    const r = await run([{ serial: 2, strategy: 'linear', tasks: [cmd('echo one'), cmd('echo two')] }]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.order).toEqual([
      'app1: echo one',
      'app2: echo one',
      'app1: echo two',
      'app2: echo two',
      'app3: echo one',
      'app3: echo two',
    ]);
    expect(r.events.filter((e) => e.type === 'batch_start').map((e) => (e as { hosts: string[] }).hosts)).toEqual([
      ['app1', 'app2'],
      ['app3'],
    ]);
  });

  it("a percentage is of the play's hosts, rounded down, at least one", async () => {
    const r = await run([{ serial: '40%', tasks: [cmd('echo one')] }], { hosts: ['h1', 'h2', 'h3', 'h4', 'h5'] });
    expect(r.events.filter((e) => e.type === 'batch_start').map((e) => (e as { hosts: string[] }).hosts)).toEqual([
      ['h1', 'h2'],
      ['h3', 'h4'],
      ['h5'],
    ]);
  });

  it('a list gives successive batch sizes, the last repeated', async () => {
    const r = await run([{ serial: [1, '50%', 2], tasks: [cmd('echo one')] }], {
      hosts: ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7'],
    });
    expect(
      r.events.filter((e) => e.type === 'batch_start').map((e) => (e as { hosts: string[] }).hosts.length),
    ).toEqual([1, 3, 2, 1]);
  });
});

describe('failure handling', () => {
  it('max_fail_percentage: a batch over the limit stops the play before the next batch', async () => {
    const plays = [
      {
        serial: 2,
        max_fail_percentage: 49,
        tasks: [cmd('probe {{ inventory_hostname }}', { failed_when: "inventory_hostname == 'app2'" })],
      },
    ];
    const r = await run(plays, { hosts: ['app1', 'app2', 'app3', 'app4'] });
    expect(r.code).toBe(ExitCode.hostFailed);
    expect([...r.ran.keys()].sort()).toEqual(['app1', 'app2']);
    expect(r.events.some((e) => e.type === 'warning' && e.msg.includes('max_fail_percentage 49'))).toBe(true);
  });

  it('max_fail_percentage: a batch at or under the limit goes on', async () => {
    const plays = [
      {
        serial: 2,
        max_fail_percentage: 50,
        tasks: [cmd('probe {{ inventory_hostname }}', { failed_when: "inventory_hostname == 'app2'" })],
      },
    ];
    const r = await run(plays, { hosts: ['app1', 'app2', 'app3', 'app4'] });
    expect([...r.ran.keys()].sort()).toEqual(['app1', 'app2', 'app3', 'app4']);
  });

  it('without any_errors_fatal the other hosts carry on; a failed host runs nothing more', async () => {
    const r = await run([
      {
        strategy: 'linear',
        tasks: [cmd('step1 {{ inventory_hostname }}', { failed_when: "inventory_hostname == 'app1'" }), cmd('step2')],
      },
    ]);
    expect(r.code).toBe(ExitCode.hostFailed);
    expect(r.ran.get('app1')).toEqual(['step1 app1']);
    expect(r.ran.get('app2')).toEqual(['step1 app2', 'step2']);
  });

  it('any_errors_fatal: one host failing stops every host before the next task', async () => {
    const r = await run([
      {
        strategy: 'linear',
        any_errors_fatal: true,
        tasks: [cmd('step1 {{ inventory_hostname }}', { failed_when: "inventory_hostname == 'app1'" }), cmd('step2')],
      },
    ]);
    expect(r.code).toBe(ExitCode.hostFailed);
    expect(r.order.filter((l) => l.endsWith('step2'))).toEqual([]);
  });

  it('ignore_errors keeps the host going', async () => {
    const r = await run([{ tasks: [cmd('fail now', { ignore_errors: true }), cmd('after')] }], { hosts: ['app1'] });
    expect(r.code).toBe(ExitCode.ok);
    expect(r.ran.get('app1')).toEqual(['fail now', 'after']);
  });

  it('a templated ignore_errors is rendered per host when the task runs', async () => {
    const play = {
      vars: { lenient: '{{ inventory_hostname == "app1" }}' },
      tasks: [cmd('fail now', { ignore_errors: '{{ lenient }}' }), cmd('after')],
    };
    const r = await run([play], { hosts: ['app1', 'app2'] });
    expect(r.code).toBe(ExitCode.hostFailed);
    expect(r.ran.get('app1')).toEqual(['fail now', 'after']);
    expect(r.ran.get('app2')).toEqual(['fail now']);
  });

  it('an Ansible module cairn does not run loads, is skipped by its when, and fails the host that reaches it', async () => {
    const play = {
      tasks: [
        { name: 'redhat only', yum: { name: 'httpd', enablerepo: 'epel' }, when: 'inventory_hostname == "app2"' },
        { name: 'cloud', 'community.digitalocean.digital_ocean_droplet': { name: 'x' }, when: 'false' },
        cmd('after'),
      ],
    };
    const r = await run([play], { hosts: ['app1', 'app2'] });
    expect(r.code).toBe(ExitCode.hostFailed);
    expect(r.ran.get('app1')).toEqual(['after']);
    expect(r.ran.get('app2')).toBeUndefined();
    const failed = resultsOf(r.events, 'redhat only').find((e) => e.host === 'app2');
    expect(failed?.status).toBe('failed');
    expect(String(failed?.msg)).toMatch(
      /^Ansible's yum module is not run by cairn: cairn manages Debian hosts: use apt/,
    );
  });

  it('environment: play, block and task layers merge (inner wins) into exports at the top of the script', async () => {
    const play = {
      environment: { http_proxy: 'http://proxy:3128', LEVEL: 'play' },
      vars: { app_env: { APP_MODE: "it's {{ inventory_hostname }}", LEVEL: 'task' } },
      tasks: [
        { block: [cmd('echo inner', { environment: '{{ app_env }}' })], environment: { BLOCK_ONLY: 1 } },
        cmd('echo bad', { environment: { 'NOT-A-NAME': 'x' } }),
      ],
    };
    const r = await run([play], { hosts: ['app1'] });
    const inner = r.scripts.get('app1')!.find((s) => s.includes("'echo' 'inner'") || s.includes('echo inner'))!;
    expect(inner.split('\n').slice(0, 4)).toEqual([
      'export http_proxy=http://proxy:3128',
      'export LEVEL=task',
      'export BLOCK_ONLY=1',
      "export APP_MODE='it'\\''s app1'",
    ]);
    const bad = resultsOf(r.events, 'echo bad')[0];
    expect(bad?.status).toBe('failed');
    expect(String(bad?.msg)).toMatch(/"NOT-A-NAME" is not a valid environment variable name/);
    expect(r.ran.get('app1')).toEqual(['echo inner']);
  });

  it('an unreachable host exits 4 and the others are still served', async () => {
    const r = await run([{ tasks: [cmd('echo hi')] }], { unreachable: ['app2'] });
    expect(r.code).toBe(ExitCode.hostUnreachable);
    expect([...r.ran.keys()].sort()).toEqual(['app1', 'app3']);
  });

  it('a failed command exits 2', async () => {
    const r = await run([{ tasks: [cmd('fail now')] }], { hosts: ['app1'] });
    expect(r.code).toBe(ExitCode.hostFailed);
  });
});

describe('one rule for bad input: an undefined variable exits 5 wherever it is', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['when', cmd('echo x', { when: 'nosuchvar == 1' })],
    ['changed_when', cmd('echo x', { changed_when: 'nosuchvar == 1' })],
    ['failed_when', cmd('echo x', { failed_when: 'nosuchvar == 1' })],
    ['until', cmd('echo x', { register: 'r', until: 'nosuchvar == 1', retries: 2, delay: 0 })],
    ['set_fact', { set_fact: { y: '{{ nosuchvar }}' } }],
    ['task arguments', cmd('echo {{ nosuchvar }}')],
    ['loop', cmd('echo {{ item }}', { loop: '{{ nosuchvar }}' })],
  ];
  for (const [where, task] of cases) {
    it(where, async () => {
      const r = await run([{ tasks: [task] }], { hosts: ['app1'] });
      expect(r.code).toBe(ExitCode.badInput);
      const failed = r.events.find((e) => e.type === 'task_result' && e.status === 'failed') as
        { msg?: string } | undefined;
      expect(failed?.msg).toMatch(/nosuchvar/);
    });
  }

  it('bad input in until is not retried', async () => {
    const r = await run(
      [{ tasks: [cmd('echo x', { register: 'r', until: 'nosuchvar == 1', retries: 3, delay: 0 })] }],
      { hosts: ['app1'] },
    );
    expect(r.ran.get('app1')).toEqual(['echo x']);
  });
});

describe('tasks', () => {
  it('run_once runs on the first host only and every host registers its result', async () => {
    const r = await run([
      {
        tasks: [cmd('once {{ inventory_hostname }}', { run_once: true, register: 'o' }), cmd('saw {{ o.stdout }}')],
      },
    ]);
    expect(r.order.filter((l) => l.includes(': once'))).toEqual(['app1: once app1']);
    for (const h of ['app1', 'app2', 'app3']) expect(r.ran.get(h)).toContain('saw once app1');
  });

  it("delegate_to runs on the delegate, with the delegating host's variables", async () => {
    const r = await run([{ hosts: 'app1', tasks: [cmd('for {{ inventory_hostname }}', { delegate_to: 'app3' })] }]);
    expect(r.order).toEqual(['app3: for app1']);
    expect(r.opened).toEqual(['app3']);
  });

  it('retries/until: retried until the condition holds, with the attempt count registered', async () => {
    const r = await run(
      [
        {
          tasks: [
            cmd('try', { register: 'r', until: 'r.attempts >= 3', retries: 5, delay: 0 }),
            cmd('attempts {{ r.attempts }}'),
          ],
        },
      ],
      { hosts: ['app1'] },
    );
    expect(r.code).toBe(ExitCode.ok);
    expect(r.ran.get('app1')).toEqual(['try', 'try', 'try', 'attempts 3']);
  });

  it('retries/until: gives up after retries + 1 attempts and fails', async () => {
    const r = await run([{ tasks: [cmd('try', { register: 'r', until: 'r.attempts > 10', retries: 2, delay: 0 })] }], {
      hosts: ['app1'],
    });
    expect(r.code).toBe(ExitCode.hostFailed);
    expect(r.ran.get('app1')).toEqual(['try', 'try', 'try']);
    expect(resultsOf(r.events, 'try')[0]?.msg).toMatch(/until condition not met after 3 attempts/);
  });

  it('retries/until: until is asked of failed attempts too; once it holds, the attempt stands, failed or not', async () => {
    // Ansible's task_executor evaluates `until` after every attempt whatever its status: a permanent failure
    // (here any failing command) can end the loop at once instead of waiting out every retry.
    const stops = await run(
      [{ tasks: [cmd('fail now', { register: 'r', until: 'r.rc != 0', retries: 5, delay: 0 })] }],
      { hosts: ['app1'] },
    );
    expect(stops.code).toBe(ExitCode.hostFailed);
    expect(stops.ran.get('app1')).toEqual(['fail now']);
    expect(resultsOf(stops.events, 'fail now')[0]?.msg).not.toMatch(/until condition not met/);
    // A failed attempt whose until does not hold is retried, as before.
    const retried = await run(
      [{ tasks: [cmd('fail again', { register: 'r', until: 'r.rc == 0', retries: 2, delay: 0 })] }],
      { hosts: ['app1'] },
    );
    expect(retried.code).toBe(ExitCode.hostFailed);
    expect(retried.ran.get('app1')).toEqual(['fail again', 'fail again', 'fail again']);
  });

  it('a templated retries and delay are rendered per host when the task runs; a bad value fails at the keyword', async () => {
    const play = {
      vars: { tries: '{{ 1 if inventory_hostname == "app1" else 3 }}' },
      tasks: [cmd('try', { register: 'r', until: 'r.attempts > 10', retries: '{{ tries }}', delay: '{{ 0 }}' })],
    };
    const r = await run([play], { hosts: ['app1', 'app2'] });
    expect(r.ran.get('app1')).toEqual(['try', 'try']);
    expect(r.ran.get('app2')).toEqual(['try', 'try', 'try', 'try']);
    const bad = await run([{ tasks: [cmd('try', { until: 'false', retries: '{{ "many" }}', delay: 0 })] }], {
      hosts: ['app1'],
    });
    expect(bad.ran.get('app1')).toBeUndefined();
    expect(resultsOf(bad.events, 'try')[0]?.msg).toMatch(/retries must be a whole number ≥ 0, got "many"/);
  });

  it('delegate_facts: a set_fact delegated to each host lands on that host, not on the one running it', async () => {
    const play = {
      tasks: [
        {
          name: 'share the join command',
          set_fact: { joined: 'from-{{ inventory_hostname }}' },
          when: 'inventory_hostname == "app1"',
          delegate_to: '{{ item }}',
          delegate_facts: true,
          loop: "{{ groups['all'] }}",
        },
        { name: 'not delegated facts', set_fact: { own: '{{ inventory_hostname }}' }, delegate_to: 'app1' },
        cmd('echo {{ joined }} {{ own }}'),
      ],
    };
    const r = await run([play], { hosts: ['app1', 'app2'] });
    expect(r.ran.get('app1')).toEqual(['echo from-app1 app1']);
    expect(r.ran.get('app2')).toEqual(['echo from-app1 app2']);
  });

  it('a templated no_log is rendered per host; until it renders false the result is hidden', async () => {
    const play = {
      vars: { hide: '{{ inventory_hostname == "app1" }}' },
      tasks: [
        cmd('echo visible-or-not', { register: 'out', no_log: '{{ hide }}' }),
        cmd('fail with words', { no_log: '{{ undefined_switch }}' }),
      ],
    };
    const r = await run([play], { hosts: ['app1', 'app2'] });
    const shown = resultsOf(r.events, 'echo visible-or-not');
    expect(shown.find((e) => e.host === 'app1')?.result).toBeUndefined();
    expect(shown.find((e) => e.host === 'app2')?.result).toBeDefined();
    // A no_log template that cannot render hides the failure too (it might have been true).
    const failed = resultsOf(r.events, 'fail with words');
    expect(failed.map((e) => e.status)).toEqual(['failed', 'failed']);
    for (const e of failed) expect(String(e.msg)).toMatch(/hidden due to the fact that 'no_log: true'/);
  });

  it("a loop registers every item's result under results, with the item", async () => {
    const r = await run(
      [
        {
          tasks: [
            cmd('echo {{ item }}', { loop: ['a', 'b'], register: 'out' }),
            cmd('got {% for r in out.results %}{{ r.stdout }}={{ r.item }};{% endfor %} {{ out.changed }}'),
          ],
        },
      ],
      { hosts: ['app1'] },
    );
    expect(r.ran.get('app1')).toEqual(['echo a', 'echo b', 'got echo a=a;echo b=b; True']);
  });

  it('set_fact values are seen by later tasks', async () => {
    const r = await run(
      [{ tasks: [{ set_fact: { greeting: 'hi {{ inventory_hostname }}' } }, cmd('say {{ greeting }}')] }],
      { hosts: ['app1'] },
    );
    expect(r.ran.get('app1')).toEqual(['say hi app1']);
  });
});

describe('handlers', () => {
  const handlers = [cmd('restart a'), cmd('restart b'), cmd('restart c', { listen: 'web changed' })];

  it('run once, in the order they are defined, only when notified, after the tasks', async () => {
    const r = await run(
      [
        {
          tasks: [
            cmd('t1', { notify: 'restart b' }),
            cmd('t2', { notify: ['restart b', 'web changed'] }),
            cmd('t3', { changed_when: false, notify: 'restart a' }),
          ],
          handlers,
        },
      ],
      { hosts: ['app1'] },
    );
    expect(r.ran.get('app1')).toEqual(['t1', 't2', 't3', 'restart b', 'restart c']);
  });

  it('a host that failed runs no handlers; the others do', async () => {
    const r = await run(
      [
        {
          strategy: 'linear',
          tasks: [
            cmd('t1', { notify: 'restart a' }),
            cmd('t2 {{ inventory_hostname }}', { failed_when: "inventory_hostname == 'app1'" }),
          ],
          handlers,
        },
      ],
      { hosts: ['app1', 'app2'] },
    );
    expect(r.ran.get('app1')).toEqual(['t1', 't2 app1']);
    expect(r.ran.get('app2')).toEqual(['t1', 't2 app2', 'restart a']);
  });

  it('run after each serial batch, before the next batch starts', async () => {
    const r = await run([{ serial: 1, tasks: [cmd('t1', { notify: 'restart a' })], handlers }], {
      hosts: ['app1', 'app2'],
    });
    expect(r.order).toEqual(['app1: t1', 'app1: restart a', 'app2: t1', 'app2: restart a']);
  });
});

describe('strategies', () => {
  it('linear: every host finishes a task before any host starts the next', async () => {
    const r = await run([{ strategy: 'linear', tasks: [cmd('one'), cmd('two')] }], {
      hosts: ['app1', 'app2'],
      forks: 1,
    });
    expect(r.order).toEqual(['app1: one', 'app2: one', 'app1: two', 'app2: two']);
  });

  it('free: each host runs its tasks through without waiting for the others', async () => {
    const r = await run([{ strategy: 'free', tasks: [cmd('one'), cmd('two')] }], { hosts: ['app1', 'app2'], forks: 1 });
    expect(r.order).toEqual(['app1: one', 'app1: two', 'app2: one', 'app2: two']);
  });
});

describe('--rerun failed', () => {
  it('the next run targets exactly the hosts the journal says failed or were unreachable', async () => {
    const journalDir = join(root, 'journal');
    const plays = [
      {
        tasks: [
          cmd('deploy {{ inventory_hostname }}', {
            failed_when: "inventory_hostname == 'app2' and not (fixed | default(false))",
          }),
        ],
      },
    ];
    const first = await run(plays, { journalDir, unreachable: ['app3'] });
    expect(first.code).toBe(ExitCode.hostUnreachable);
    const rerun = hostsToRerun(latestRun(journalDir)!);
    expect(rerun.sort()).toEqual(['app2', 'app3']);
    const second = await run(plays, { onlyHosts: rerun, extraVars: { fixed: true } });
    expect(second.code).toBe(ExitCode.ok);
    expect(second.order.sort()).toEqual(['app2: deploy app2', 'app3: deploy app3']);
  });
});

describe('connection settings', () => {
  it('are resolved once per host per play, not once per task', async () => {
    let layerCalls = 0;
    const countLayers = (inventory: ReturnType<typeof loadInventory>) => {
      const varLayers = inventory.varLayers.bind(inventory);
      inventory.varLayers = (host: string) => {
        layerCalls++;
        return varLayers(host);
      };
    };
    const tasks = Array.from({ length: 20 }, (_, i) => cmd(`echo ${i}`));
    const baseline = await run([{ tasks: [cmd('echo 0')] }], { onInventory: countLayers });
    expect(baseline.code).toBe(ExitCode.ok);
    const perOneTask = layerCalls;
    layerCalls = 0;
    const r = await run([{ tasks }, { become: true, become_user: 'deploy', tasks }], { onInventory: countLayers });
    expect(r.code).toBe(ExitCode.ok);
    expect(r.ran.get('app1')).toHaveLength(40);
    // 40 tasks on 3 hosts: the variables the tasks need are layered once per host (HostState), and the
    // connection settings once per host and play; before, each task re-layered them twice.
    expect(layerCalls).toBeLessThanOrEqual(perOneTask + 3);
    expect(layerCalls).toBeLessThan(3 * 40);
  });

  it("a set_fact of ansible_host/ansible_port/ansible_user moves the host's next task, as Ansible reads them per task", async () => {
    const moveApp1 = {
      name: 'move app1',
      set_fact: { ansible_host: '127.0.0.2', ansible_port: 2222, ansible_user: 'deploy' },
      when: "inventory_hostname == 'app1'",
    };
    const unrelated = { name: 'note', set_fact: { release: 'v2' } };
    const r = await run([{ tasks: [cmd('echo before'), unrelated, moveApp1, cmd('echo after')] }], {
      hosts: ['app1', 'app2'],
    });
    expect(r.code).toBe(ExitCode.ok);
    const user = r.via[0]!.split(' ')[1]!.split('@')[0];
    expect(r.via.filter((line) => line.startsWith('app1 '))).toEqual([
      `app1 ${user}@127.0.0.1:22: echo before`,
      'app1 deploy@127.0.0.2:2222: echo after',
    ]);
    // app2 kept its settings and its one connection; app1's old connection was let go for a new one.
    expect(r.via.filter((line) => line.startsWith('app2 '))).toEqual([
      `app2 ${user}@127.0.0.1:22: echo before`,
      `app2 ${user}@127.0.0.1:22: echo after`,
    ]);
    expect(r.opened.sort()).toEqual(['app1', 'app1', 'app2']);
  });

  it('a write of the same connection value, or of other variables, keeps the connection', async () => {
    const same = { name: 'same address', set_fact: { ansible_host: '127.0.0.1' } };
    const r = await run([{ tasks: [cmd('echo before'), same, { name: 'r', command: 'echo x', register: 'out' }] }], {
      hosts: ['app1'],
    });
    expect(r.code).toBe(ExitCode.ok);
    expect(r.opened).toEqual(['app1']);
  });
});
