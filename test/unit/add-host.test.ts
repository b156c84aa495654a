/**
 * add_host and group_by without SSH (the real-sshd run is test/integration/add-host.test.ts): their argument
 * parsing as Ansible's action plugins read it (lib/ansible/plugins/action/add_host.py, group_by.py,
 * lib/ansible/parsing/utils/addresses.py), the inventory update (lib/ansible/inventory/manager.py
 * add_dynamic_host/add_dynamic_group), and the engine's scheduling of them over FakeConnections that record
 * which host each command ran on and over which address.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import '../../runner/core/modules/all.js';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { addHostRequest, groupList, parseHostPort } from '../../runner/core/modules/add-host.js';
import { groupByRequest } from '../../runner/core/modules/group-by.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { makeTestEngine } from '../helpers/fake-connection.js';

const root = mkdtempSync(join(tmpdir(), 'cairn-add-host-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

describe("add_host's arguments, as add_host.py reads them", () => {
  it.each([
    ['web1', { host: 'web1' }],
    ['web1.example.com:2222', { host: 'web1.example.com', port: 2222 }],
    ['192.0.2.7:2200', { host: '192.0.2.7', port: 2200 }],
    ['[2001:db8::1]:2201', { host: '2001:db8::1', port: 2201 }],
    ['2001:db8::1', { host: '2001:db8::1' }],
    // Not an address parse_address reads: the whole text is the name, with no port (add_host.py's except).
    ['not a host:22', { host: 'not a host:22' }],
  ])('parseHostPort(%j)', (written, expected) => {
    expect(parseHostPort(written)).toEqual(expected);
  });

  it('groups: a list, or a comma-separated string; names trimmed, repeats dropped', () => {
    expect(groupList('web, db,web')).toEqual(['web', 'db']);
    expect(groupList(['web', 'db'])).toEqual(['web', 'db']);
    expect(groupList('')).toEqual([]);
    expect(groupList(undefined)).toEqual([]);
  });

  it('every other key is a host variable; a port in the name is ansible_ssh_port', () => {
    expect(addHostRequest({ name: 'db9:2022', groups: 'db', ansible_user: 'ops', role: 'replica' })).toEqual({
      kind: 'add_host',
      host: 'db9',
      groups: ['db'],
      vars: { ansible_user: 'ops', role: 'replica', ansible_ssh_port: 2022 },
    });
  });

  it('a name no host pattern could select, or a bad group name, is refused at the task', () => {
    const where = { file: 'site.yml', line: 3, col: 7 };
    expect(() => addHostRequest({ name: 'two words' }, where)).toThrow(/cannot be named in a host pattern/);
    try {
      addHostRequest({ name: 'web1', groups: ['ok', 'not ok!'] }, where);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CairnError);
      expect((err as CairnError).render()).toContain('site.yml:3:7');
      expect((err as CairnError).message).toContain('group name "not ok!"');
    }
  });

  it("group_by: spaces become '-', parents default to all", () => {
    expect(groupByRequest({ key: 'os Debian 12' })).toEqual({
      kind: 'group_by',
      group: 'os-Debian-12',
      parents: ['all'],
    });
    expect(groupByRequest({ key: 'x', parents: 'by os' })).toMatchObject({ parents: ['by-os'] });
    expect(() => groupByRequest({ key: 'a,b' })).toThrow(/group name "a,b"/);
  });
});

/** An inventory folder: web1 in group web; group_vars for a group (`dyn`) and host_vars for a host not in it. */
function inventoryDir(): string {
  const dir = join(root, `inv${++counter}`);
  mkdirSync(join(dir, 'group_vars'), { recursive: true });
  mkdirSync(join(dir, 'host_vars'), { recursive: true });
  writeFileSync(join(dir, 'hosts.yaml'), stringify({ all: { children: { web: { hosts: { web1: { port_: 1 } } } } } }));
  writeFileSync(join(dir, 'group_vars', 'dyn.yml'), stringify({ from_dyn: 'group_vars/dyn.yml' }));
  writeFileSync(join(dir, 'host_vars', 'newhost.yml'), stringify({ from_file: 'host_vars', shared: 'file wins' }));
  return dir;
}

describe('the inventory update (add_dynamic_host, add_dynamic_group)', () => {
  const at = { file: 'site.yml', line: 4, col: 7 };

  it('a new host joins all (ungrouped without groups), its host_vars file read now and winning over its vars', () => {
    const inv = loadInventory(inventoryDir());
    const revision = inv.revision;
    const update = inv.addHost('newhost', [], { shared: 'add_host', ansible_host: '192.0.2.9' }, at);
    expect(update.changed).toBe(true);
    expect(inv.revision).toBe(revision + 1);
    expect(inv.select('all')).toEqual(['web1', 'newhost']);
    expect(inv.select('ungrouped')).toEqual(['newhost']);
    const vars = inv.hostVars('newhost');
    expect(vars).toMatchObject({ from_file: 'host_vars', shared: 'file wins', ansible_host: '192.0.2.9' });
    expect(inv.varOrigin('newhost', 'ansible_host')).toEqual(at);
    // Nothing new: unchanged, as add_dynamic_host reports it.
    expect(inv.addHost('newhost', [], { ansible_host: '192.0.2.9' }, at).changed).toBe(false);
    expect(inv.revision).toBe(revision + 1);
  });

  it('a new group is created under all with its group_vars; an existing host leaves ungrouped; `groups` follows', () => {
    const inv = loadInventory(inventoryDir());
    expect(() => inv.select('dyn')).toThrow(/no host or group matches "dyn"/);
    expect(inv.select('dyn', { allowUnknown: true })).toEqual([]);
    inv.addHost('newhost', ['dyn', 'web'], {}, at);
    expect(inv.select('dyn')).toEqual(['newhost']);
    expect(inv.select('web')).toEqual(['web1', 'newhost']);
    expect(inv.select('ungrouped')).toEqual([]);
    expect(inv.hostVars('newhost')).toMatchObject({ from_dyn: 'group_vars/dyn.yml', group_names: ['dyn', 'web'] });
    expect(inv.hostVars('web1').groups).toMatchObject({ dyn: ['newhost'], web: ['web1', 'newhost'] });
    expect(inv.groups.get('all')!.children).toContain('dyn');
  });

  it('group_by puts a host into a group under its parents; again is no change', () => {
    const inv = loadInventory(inventoryDir());
    expect(inv.addHostToGroup('web1', 'dyn', ['debian'], at).changed).toBe(true);
    expect(inv.select('debian')).toEqual(['web1']);
    expect(inv.groups.get('debian')!.children).toEqual(['dyn']);
    expect(inv.hostVars('web1')).toMatchObject({
      from_dyn: 'group_vars/dyn.yml',
      group_names: ['debian', 'dyn', 'web'],
    });
    expect(inv.addHostToGroup('web1', 'dyn', ['debian'], at).changed).toBe(false);
  });

  it('a name that is already a group (or a host) is refused at the task', () => {
    const inv = loadInventory(inventoryDir());
    expect(() => inv.addHost('web', [], {}, at)).toThrow(/"web" is a group/);
    expect(() => inv.addHost('x1', ['web1'], {}, at)).toThrow(/"web1" is a host/);
    expect(() => inv.addHostToGroup('web1', 'web1', ['all'], at)).toThrow(/"web1" is a host/);
  });
});

interface Ran {
  events: RunEvent[];
  /** Every command as "host address:port: words". */
  via: string[];
}

async function run(plays: unknown[], opts: { check?: boolean } = {}): Promise<Ran> {
  const dir = join(root, `run${++counter}`);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'hosts.yaml'),
    stringify({ all: { children: { app: { hosts: { app1: { ansible_host: '127.0.0.1' }, app2: {} } } } } }),
  );
  const playbookFile = join(dir, 'site.yaml');
  writeFileSync(playbookFile, stringify(plays.map((p) => ({ gather_facts: false, ...(p as object) }))));
  const inventory = loadInventory(join(dir, 'hosts.yaml'));
  const via: string[] = [];
  const testEngine = makeTestEngine({
    inventory,
    check: opts.check ?? false,
    reply: (script, spec) => {
      const line = script.split('\n').find((l) => l.startsWith('exec '));
      if (line) via.push(`${spec.name} ${spec.address}:${spec.port}: ${line.slice(5).replaceAll("'", '')}`);
      return { code: 0, stdout: '' };
    },
  });
  const { events } = testEngine;
  await testEngine.run(playbookFile);
  return { events, via };
}

const results = (events: RunEvent[], task: string) =>
  events.flatMap((e) => (e.type === 'task_result' && e.task.name === task && !e.loopSummary ? [e] : []));

describe('the engine runs add_host and group_by', () => {
  const plays = [
    {
      hosts: 'app',
      tasks: [
        {
          name: 'Add',
          add_host: { name: 'new{{ item }}:2200', groups: ['fresh'], ansible_host: '192.0.2.{{ item }}' },
          loop: [1, 2],
        },
        { name: 'Group', group_by: { key: 'by_{{ inventory_hostname }}', parents: 'grouped' } },
      ],
    },
    { hosts: 'fresh', tasks: [{ name: 'On fresh', command: 'echo fresh' }] },
    { hosts: 'grouped', tasks: [{ name: 'On grouped', command: 'echo grouped' }] },
  ];

  it('add_host once per batch (on its first host), per item; later plays reach the new hosts at their address', async () => {
    const { events, via } = await run(plays);
    expect(results(events, 'Add').map((e) => `${e.host} ${e.status} ${String(e.item)}`)).toEqual([
      'app1 changed 1',
      'app1 changed 2',
    ]);
    expect(
      results(events, 'Group')
        .map((e) => `${e.host} ${e.status}`)
        .sort(),
    ).toEqual(['app1 ok', 'app2 ok']);
    expect(via.filter((v) => v.endsWith('echo fresh')).sort()).toEqual([
      'new1 192.0.2.1:2200: echo fresh',
      'new2 192.0.2.2:2200: echo fresh',
    ]);
    expect(
      via
        .filter((v) => v.endsWith('echo grouped'))
        .map((v) => v.split(' ')[0])
        .sort(),
    ).toEqual(['app1', 'app2']);
    // No connection was opened for add_host or group_by themselves: only the later plays' commands ran.
    expect(via.filter((v) => !v.endsWith('echo fresh') && !v.endsWith('echo grouped'))).toEqual([]);
  });

  it('--check: the same hosts are added and targeted (Ansible runs add_host in check mode); no command runs', async () => {
    const { events, via } = await run(plays, { check: true });
    expect(results(events, 'Add').map((e) => e.status)).toEqual(['changed', 'changed']);
    const targets = events.flatMap((e) => (e.type === 'play_start' ? [e.hosts] : []));
    expect(targets).toEqual([
      ['app1', 'app2'],
      ['new1', 'new2'],
      ['app1', 'app2'],
    ]);
    expect(results(events, 'On fresh').map((e) => `${e.host} ${e.status} ${String(e.check)}`)).toEqual([
      'new1 changed true',
      'new2 changed true',
    ]);
    expect(via).toEqual([]);
  });

  it("add_host on a host of the running play moves its connection from that host's next task", async () => {
    const { via } = await run([
      {
        hosts: 'app',
        strategy: 'linear',
        tasks: [
          { name: 'Before', command: 'echo before' },
          { name: 'Move', add_host: { name: 'app2', ansible_host: '192.0.2.50' } },
          { name: 'After', command: 'echo after' },
        ],
      },
    ]);
    expect(via.filter((v) => v.startsWith('app2')).map((v) => v.replace(/:\d+:/, ':'))).toEqual([
      'app2 app2: echo before',
      'app2 192.0.2.50: echo after',
    ]);
  });

  it("group_by: the host's next task in the same play reads the new group's group_vars", async () => {
    // The host's inventory layers were read when the play started, before group_by changed the inventory: the
    // next task's variables must read them again (Engine.refreshLayers, from varsFor).
    const dir = inventoryDir();
    writeFileSync(
      join(dir, 'site.yaml'),
      stringify([
        {
          hosts: 'web',
          gather_facts: false,
          tasks: [
            { name: 'Group', group_by: { key: 'dyn' } },
            { name: 'After', debug: { msg: '{{ from_dyn | default("unset") }}' } },
          ],
        },
      ]),
    );
    // No reply: group_by and debug send nothing to the host.
    const { events, run: runPlaybook } = makeTestEngine({ inventory: loadInventory(dir) });
    await runPlaybook(join(dir, 'site.yaml'));
    const after = results(events, 'After').map((e) => [e.host, e.status, (e.result as { msg?: unknown }).msg]);
    expect(after).toEqual([['web1', 'ok', 'group_vars/dyn.yml']]);
  });

  it('a host for a connection cairn does not have loads, and fails where a task connects to it', async () => {
    const { events, via } = await run([
      {
        hosts: 'app1',
        tasks: [{ name: 'Add', add_host: { name: 'c1', groups: 'box', ansible_connection: 'docker' } }],
      },
      { hosts: 'box', tasks: [{ name: 'In the box', command: 'echo box' }] },
    ]);
    const [inBox] = results(events, 'In the box');
    expect(inBox?.host).toBe('c1');
    expect(inBox?.msg).toContain('ansible_connection must be "ssh" or "local", got "docker"');
    expect(via).toEqual([]);
  });

  it('a templated argument that renders badly fails the task at its location', async () => {
    const { events } = await run([
      { hosts: 'app1', tasks: [{ name: 'Bad', add_host: { name: '{{ "two words" }}' } }] },
    ]);
    const [bad] = results(events, 'Bad');
    expect(bad?.status).toBe('failed');
    expect(bad?.msg).toMatch(/site\.yaml:\d+:\d+.*cannot be named in a host pattern/s);
  });
});
