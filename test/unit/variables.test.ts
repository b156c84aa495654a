/**
 * The variable manager (runner/core/engine/variables.ts) and `cairn vars`: one layering for every consumer,
 * with the file:line of each value and the settings it beat. Inventories are written to a temp folder and
 * read by the real loader; `cairn vars` needs no connection.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { explainVariable, hostLayers, hostVariables, LAYER_ORDER } from '../../runner/core/engine/variables.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { formatLocation } from '../../runner/core/util/errors.js';
import { runCairn } from '../helpers/cli.js';

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

describe('cairn vars', () => {
  it('prints where one variable came from and what it beat', async () => {
    const r = await runCairn(['vars', 'lb1', 'keepalived_vip', '-i', inventoryFile]);
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
    const all = await runCairn(['vars', 'lb2', '-i', inventoryFile, '-e', 'http_port=8080']);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('http_port = 8080\n    from -e (command line) (extra vars)\n');
    expect(all.stdout).toContain(
      `keepalived_vip = "10.0.0.4"\n    from ${dir}/host_vars/lb2.yaml:2:1 (inventory host vars)\n`,
    );
    const bad = await runCairn(['vars', 'lb3', '-i', inventoryFile]);
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/no host "lb3".*did you mean lb1, lb2/);
  });
});
