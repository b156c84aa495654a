/**
 * The variable manager (runner/core/engine/variables.ts) and `cairn vars`: one layering for every consumer,
 * with the file:line of each value and the settings it beat. Inventories are written to a temp folder and
 * read by the real loader; `cairn vars` needs no connection.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ANSIBLE_GATHERED,
  explainVariable,
  factVars,
  hostLayers,
  hostVariables,
  LAYER_ORDER,
  variablesView,
} from '../../runner/core/engine/variables.js';
import { loadPlaybookFile } from '../../runner/app/playbook.js';
import { renderValue } from '../../runner/core/template/index.js';
import '../../runner/core/modules/all.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { formatLocation } from '../../runner/core/util/errors.js';
import { repoRoot, runCairn } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-vars-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'group_vars'));
mkdirSync(join(dir, 'host_vars'));
writeFileSync(
  join(dir, 'hosts.yaml'),
  [
    'all:',
    '  vars:',
    '    keepalived_vip: 10.0.0.1',
    '  children:',
    '    lb:',
    '      vars:',
    '        keepalived_vip: 10.0.0.2',
    '      hosts:',
    '        lb1:',
    '          ansible_host: 127.0.0.1',
    '        lb2:',
    '          ansible_host: 127.0.0.1',
    '',
  ].join('\n'),
);
writeFileSync(join(dir, 'group_vars', 'lb.yaml'), 'keepalived_vip: 10.0.0.3\nhttp_port: 80\n');
writeFileSync(join(dir, 'host_vars', 'lb2.yaml'), '# lb2 holds its own VIP\nkeepalived_vip: 10.0.0.4\n');
const inventoryFile = join(dir, 'hosts.yaml');

describe('variable manager', () => {
  const inventory = loadInventory(inventoryFile);

  it('layers group vars parents before children (inline before files), then host vars, then -e', () => {
    const lb1 = explainVariable(hostLayers({ inventory, host: 'lb1' }), 'keepalived_vip')!;
    expect(lb1.value).toBe('10.0.0.3');
    expect(formatLocation(lb1.from.location!)).toBe(`${dir}/group_vars/lb.yaml:1:1`);
    expect(lb1.beat.map((b) => [b.value, formatLocation(b.location!)])).toEqual([
      ['10.0.0.2', `${inventoryFile}:7:9`],
      ['10.0.0.1', `${inventoryFile}:3:5`],
    ]);
    const lb2 = explainVariable(
      hostLayers({ inventory, host: 'lb2', extraVars: { keepalived_vip: '10.0.0.9' } }),
      'keepalived_vip',
    )!;
    expect(lb2.value).toBe('10.0.0.9');
    expect(lb2.from.layer).toBe('extra vars');
    expect(lb2.beat.map((b) => b.layer)).toEqual([
      'inventory host vars',
      'inventory group vars',
      'inventory group vars',
      'inventory group vars',
    ]);
    expect(formatLocation(lb2.beat[0]!.location!)).toBe(`${dir}/host_vars/lb2.yaml:2:1`);
  });

  it("agrees with the inventory's own hostVars and varOrigin", () => {
    for (const host of ['lb1', 'lb2']) {
      const merged = hostVariables({ inventory, host });
      expect(merged).toEqual(inventory.hostVars(host));
      const origin = explainVariable(hostLayers({ inventory, host }), 'keepalived_vip')!.from.location!;
      expect(formatLocation(origin)).toBe(formatLocation(inventory.varOrigin(host, 'keepalived_vip')!));
    }
  });

  it('stacks the run-time layers in the documented order', () => {
    const layers = hostLayers({
      inventory,
      host: 'lb1',
      facts: { os: 'debian' },
      registered: { r: 1 },
      taskVars: { t: 1 },
      loopVars: { item: 1 },
      extraVars: { e: 1 },
      builtins: { role_name: '' },
    });
    const order = layers.map((l) => LAYER_ORDER.indexOf(l.layer as (typeof LAYER_ORDER)[number]));
    expect(order.every((n) => n >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });
});

// Run where no site.yaml is (the repository's own would add its plays): the inventory and -e alone.
describe('cairn vars', () => {
  it('prints where one variable came from and what it beat', async () => {
    const r = await runCairn(['vars', 'lb1', 'keepalived_vip', '-i', inventoryFile], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'keepalived_vip = "10.0.0.3"',
        `    from ${dir}/group_vars/lb.yaml:1:1 (inventory group vars)`,
        `    beat ${inventoryFile}:7:9 (inventory group vars): "10.0.0.2"`,
        `    beat ${inventoryFile}:3:5 (inventory group vars): "10.0.0.1"`,
        '',
      ].join('\n'),
    );
  });

  it('prints every variable of a host, and an unknown host is bad input (exit 5)', async () => {
    const all = await runCairn(['vars', 'lb2', '-i', inventoryFile, '-e', 'http_port=8080'], { cwd: dir });
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('http_port = 8080\n    from -e (command line) (extra vars)\n');
    expect(all.stdout).toContain(
      `keepalived_vip = "10.0.0.4"\n    from ${dir}/host_vars/lb2.yaml:2:1 (inventory host vars)\n`,
    );
    const bad = await runCairn(['vars', 'lb3', '-i', inventoryFile], { cwd: dir });
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/no host "lb3".*did you mean lb1, lb2/);
  });
});

/**
 * A site with a playbook: role defaults (Ansible layout), role vars/main.yml, role parameters, play vars and
 * vars_files enter `cairn vars` through the same hostLayers call the engine makes, each value at its own line.
 */
describe('cairn vars with a playbook', () => {
  const site = mkdtempSync(join(tmpdir(), 'cairn-vars-site-'));
  afterAll(() => rmSync(site, { recursive: true, force: true }));
  const write = (rel: string, text: string) => {
    mkdirSync(join(site, rel, '..'), { recursive: true });
    writeFileSync(join(site, rel), text);
  };
  write(
    'hosts.yaml',
    ['all:', '  vars:', '    vip_address: 10.0.0.3', '  children:', '    lb:', '      hosts:', '        lb1:', ''].join(
      '\n',
    ),
  );
  write('roles/vrrp/tasks/main.yml', '- debug: { msg: "{{ keepalived_vip }}" }\n');
  write(
    'roles/vrrp/defaults/main.yml',
    ['# the VIP', 'keepalived_prefix: 24', 'keepalived_vip: "{{ vip_address }}"', 'keepalived_state: BACKUP', ''].join(
      '\n',
    ),
  );
  write('roles/vrrp/vars/main.yml', 'keepalived_unit: keepalived.service\n');
  write('roles/proxy/tasks/main.yml', '- debug: { msg: "{{ haproxy_port }}" }\n');
  write('roles/proxy/defaults/main.yml', 'haproxy_port: 80\n');
  write('lb-vars.yaml', '# from a vars file\n\nkeepalived_prefix: 16\n');
  write(
    'site.yaml',
    [
      '- name: load balancers',
      '  hosts: lb',
      '  vars_files: [lb-vars.yaml]',
      '  vars:',
      '    unrelated: 1',
      '    keepalived_state: MASTER',
      '  roles:',
      '    - proxy',
      '    - role: vrrp',
      '      keepalived_unit: kad.service',
      '- name: web',
      '  hosts: web',
      '  roles: [proxy]',
      '',
    ].join('\n'),
  );
  // No host "web1": the second play's pattern names a group this inventory lacks.
  const playbook = join(site, 'site.yaml');

  it('shows a role default as a run reads it, with its own line and what it renders to', async () => {
    const r = await runCairn(['vars', 'lb1', 'keepalived_vip', '-i', 'hosts.yaml'], { cwd: site });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(
      [
        'keepalived_vip = "{{ vip_address }}"',
        `    from ${site}/roles/vrrp/defaults/main.yml:3:1 (role defaults)`,
        '    renders to "10.0.0.3"',
        '',
      ].join('\n'),
    );
    // --no-playbook: the inventory alone does not set it.
    const alone = await runCairn(['vars', 'lb1', 'keepalived_vip', '-i', 'hosts.yaml', '--no-playbook'], { cwd: site });
    expect(alone.code).toBe(5);
    expect(alone.stderr).toContain('host lb1 has no variable "keepalived_vip" in the inventory or -e');
  });

  it('locates play vars and vars_files per key, and role vars and parameters per role', async () => {
    const r = await runCairn(
      ['vars', 'lb1', 'keepalived_unit', '-i', join(site, 'hosts.yaml'), '--playbook', playbook],
      { cwd: dir },
    );
    expect(r.stderr).toBe('');
    // haproxy's tasks do not see keepalived's role vars or parameters; keepalived's do, the parameter winning.
    expect(r.stdout).toBe(
      [
        `# in play "load balancers" (${playbook}:1:3), role vrrp`,
        'keepalived_unit = "kad.service"',
        `    from ${playbook}:10:7 (role vars)`,
        `    beat ${site}/roles/vrrp/vars/main.yml:1:1 (role vars (vars/main.yml)): "keepalived.service"`,
        '',
      ].join('\n'),
    );
    const state = await runCairn(['vars', 'lb1', 'keepalived_state', '-i', 'hosts.yaml'], { cwd: site });
    expect(state.stdout).toBe(
      [
        'keepalived_state = "MASTER"',
        `    from ${playbook}:6:5 (play vars)`,
        `    beat ${site}/roles/vrrp/defaults/main.yml:4:1 (role defaults): "BACKUP"`,
        '',
      ].join('\n'),
    );
    const prefix = await runCairn(
      ['vars', 'lb1', 'keepalived_prefix', '-i', 'hosts.yaml', '-e', 'keepalived_prefix=8'],
      {
        cwd: site,
      },
    );
    expect(prefix.stdout).toBe(
      [
        'keepalived_prefix = 8',
        '    from -e (command line) (extra vars)',
        `    beat ${site}/lb-vars.yaml:3:1 (play vars): 16`,
        `    beat ${site}/roles/vrrp/defaults/main.yml:2:1 (role defaults): 24`,
        '',
      ].join('\n'),
    );
  });

  it('agrees with what a task of the run reads (the engine layers through the same call)', () => {
    const inventory = loadInventory(join(site, 'hosts.yaml'));
    const play = loadPlaybookFile(playbook).plays[0]!;
    const keepalived = play.roles.find((r) => r.name === 'vrrp')!;
    const layers = hostLayers({ inventory, host: 'lb1', play, role: keepalived });
    const view = variablesView(layers, (t, v, o) => renderValue(t, v, o), { file: 'x' });
    expect(view.keepalived_vip).toBe('10.0.0.3');
    expect(view.keepalived_unit).toBe('kad.service');
    expect(view.keepalived_prefix).toBe(16);
  });
});

describe('cairn vars on the built-in site', () => {
  it("names the keepalived role's default for the VIP, and what it renders to for the host", async () => {
    // The repository's own site.yaml and roles, with the inventory `cairn init` writes (the lab's is generated).
    const r = await runCairn(['vars', 'lb1', 'keepalived_vip', '-i', 'inventories/example']);
    expect(r.stderr).toBe('');
    // lb1 is also in the base and monitoring plays, whose tasks do not see keepalived's defaults.
    expect(r.stdout).toBe(
      [
        '# in play "Load balancers, one at a time" (playbooks/ha.yaml:9:3), role haproxy',
        '# in play "Load balancers, one at a time" (playbooks/ha.yaml:9:3), role keepalived',
        'keepalived_vip = "{{ vip_address }}"',
        `    from ${repoRoot}/roles/keepalived/defaults.yaml:21:1 (role defaults)`,
        '    renders to "192.0.2.10"',
        '',
      ].join('\n'),
    );
  });
});

describe('facts returned by modules other than setup', () => {
  it("are variables under the module's own key and under ansible_facts (Ansible's inject and namespace)", () => {
    const services = { 'cron.service': { name: 'cron.service', state: 'running' } };
    const vars = factVars({ [ANSIBLE_GATHERED]: { services, ansible_local: { x: 1 } } });
    expect(vars.services).toEqual(services);
    expect((vars.ansible_facts as Record<string, unknown>).services).toEqual(services);
    expect(vars.ansible_local).toEqual({ x: 1 });
    expect((vars.ansible_facts as Record<string, unknown>).local).toEqual({ x: 1 });
    expect(vars.ansible_services).toBeUndefined();
  });
});
