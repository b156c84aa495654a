import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CairnError } from '../../runner/core/util/errors.js';
import {
  checkCompatible,
  defaultTopology,
  findHost,
  loadTopologyFile,
  mergeTopologies,
  MAX_HOST_NAME,
  topologyOfSize,
} from '../../runner/features/lab/topology.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-lab-topology-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function topologyFile(text: string): string {
  const file = join(dir, `t${counter++}.yaml`);
  writeFileSync(file, text);
  return file;
}

function errorOf(fn: () => unknown): CairnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw err;
  }
  throw new Error('expected a CairnError');
}

describe('default topology', () => {
  it('has the five platform hosts, and the pve nodes only on request', () => {
    const plain = defaultTopology();
    expect(plain.hosts.map((h) => h.name)).toEqual(['lb1', 'lb2', 'web1', 'web2', 'mon1']);
    const full = defaultTopology(true);
    expect(full.hosts.map((h) => h.name)).toEqual(['lb1', 'lb2', 'web1', 'web2', 'mon1', 'pve1', 'pve2', 'pve3']);
    expect(full.hosts.find((h) => h.name === 'pve2')).toMatchObject({
      address: '10.77.0.42',
      groups: ['pve'],
      devices: ['kvm', 'fuse', 'loop'],
    });
    expect(full.bridge).toBe('cairnbr0');
    expect(full.bridgeAddress).toBe('10.77.0.1');
    expect(full.vip).toBe('10.77.0.10');
  });

  it('keeps every name short enough for the vb-NAME interface (15 characters)', () => {
    for (const h of topologyOfSize(30).hosts) {
      expect(h.name.length).toBeLessThanOrEqual(MAX_HOST_NAME);
      expect(`vb-${h.name}`.length).toBeLessThanOrEqual(15);
    }
  });

  it('gives distinct addresses inside the subnet, never the bridge or the VIP', () => {
    const t = topologyOfSize(40);
    const addresses = t.hosts.map((h) => h.address);
    expect(new Set(addresses).size).toBe(40);
    expect(addresses).not.toContain(t.bridgeAddress);
    expect(addresses).not.toContain(t.vip);
    for (const a of addresses) expect(a.startsWith('10.77.0.')).toBe(true);
    expect(t.hosts.slice(0, 3).map((h) => h.name)).toEqual(['lb1', 'lb2', 'web1']);
    expect(t.hosts[8]).toMatchObject({ name: 'node9', groups: ['nodes'] });
  });

  it('refuses a host count out of range', () => {
    expect(errorOf(() => topologyOfSize(0)).message).toMatch(/--hosts must be a whole number from 1 to 200, got 0/);
    expect(errorOf(() => topologyOfSize(2.5)).kind).toBe('options');
  });
});

describe('topology files', () => {
  it('reads hosts, groups, devices, and fills missing addresses from .11 upward', () => {
    const file = topologyFile(
      [
        'network:',
        '  subnet: 10.88.5.0/24',
        '  vip: 10.88.5.200',
        'hosts:',
        '  - name: alpha',
        '    groups: [lb, edge]',
        '  - name: beta',
        '    address: 10.88.5.11',
        '  - name: gamma',
        '    devices: [kvm]',
        '',
      ].join('\n'),
    );
    const t = loadTopologyFile(file);
    expect(t.source).toBe(file);
    expect(t.subnet.text).toBe('10.88.5.0/24');
    expect(t.bridgeAddress).toBe('10.88.5.1');
    expect(t.vip).toBe('10.88.5.200');
    expect(t.hosts).toEqual([
      { name: 'alpha', address: '10.88.5.12', groups: ['lb', 'edge'], devices: [] },
      { name: 'beta', address: '10.88.5.11', groups: [], devices: [] },
      { name: 'gamma', address: '10.88.5.13', groups: [], devices: ['kvm'] },
    ]);
  });

  it('names file:line:col for a host name that is too long', () => {
    const file = topologyFile('hosts:\n  - name: lb1\n  - name: averyveryverylongname\n');
    const err = errorOf(() => loadTopologyFile(file));
    expect(err.location).toMatchObject({ file, line: 3, col: 11 });
    expect(err.render()).toContain(`${file}:3:11: lab topology: "name" must match`);
  });

  it('names file:line:col for an unknown key', () => {
    const file = topologyFile('hosts:\n  - name: lb1\n    adress: 10.77.0.30\n');
    const err = errorOf(() => loadTopologyFile(file));
    expect(err.location).toMatchObject({ file, line: 3, col: 5 });
    expect(err.message).toContain('unknown key "adress"');
  });

  it('refuses a duplicate host, pointing at the second one', () => {
    const file = topologyFile('hosts:\n  - name: web1\n  - name: web2\n  - name: web1\n');
    const err = errorOf(() => loadTopologyFile(file));
    expect(err.location).toMatchObject({ line: 4, col: 11 });
    expect(err.message).toContain('host "web1" is listed twice (first as hosts[0])');
  });

  it('refuses an address outside the subnet, the bridge address, the VIP and a taken one', () => {
    const outside = topologyFile('hosts:\n  - name: a\n    address: 10.77.1.5\n');
    expect(errorOf(() => loadTopologyFile(outside)).message).toContain(
      '10.77.1.5 is outside the lab subnet 10.77.0.0/24',
    );
    const bridge = topologyFile('hosts:\n  - name: a\n    address: 10.77.0.1\n');
    expect(errorOf(() => loadTopologyFile(bridge)).message).toContain(
      '10.77.0.1 is already the bridge address of this machine',
    );
    const vip = topologyFile('hosts:\n  - name: a\n    address: 10.77.0.10\n');
    expect(errorOf(() => loadTopologyFile(vip)).message).toContain('10.77.0.10 is already the VIP');
    const taken = topologyFile('hosts:\n  - name: a\n    address: 10.77.0.50\n  - name: b\n    address: 10.77.0.50\n');
    const err = errorOf(() => loadTopologyFile(taken));
    expect(err.message).toContain('10.77.0.50 is already host a');
    expect(err.location).toMatchObject({ line: 5, col: 14 });
  });

  it('refuses a public or malformed subnet and the implicit groups', () => {
    const publicNet = topologyFile('network:\n  subnet: 8.8.8.0/24\nhosts:\n  - name: a\n');
    expect(errorOf(() => loadTopologyFile(publicNet)).message).toContain('must be a private range');
    const hostBits = topologyFile('network:\n  subnet: 10.77.0.5/24\nhosts:\n  - name: a\n');
    expect(errorOf(() => loadTopologyFile(hostBits)).location).toMatchObject({ line: 2, col: 11 });
    const wide = topologyFile('network:\n  subnet: 10.77.0.0/16\nhosts:\n  - name: a\n');
    expect(errorOf(() => loadTopologyFile(wide)).message).toContain('"subnet" must match');
    const all = topologyFile('hosts:\n  - name: a\n    groups: [all]\n');
    expect(errorOf(() => loadTopologyFile(all)).message).toContain('"all" is implicit');
  });

  it('refuses a host named like a group (inventories cannot tell them apart)', () => {
    const file = topologyFile('hosts:\n  - name: db1\n    groups: [db]\n  - name: mon\n');
    const err = errorOf(() => loadTopologyFile(file));
    expect(err.location).toMatchObject({ line: 4, col: 11 });
    expect(err.message).toContain('host "mon" has the name of a group');
    const custom = topologyFile('hosts:\n  - name: db\n    groups: [db]\n');
    expect(errorOf(() => loadTopologyFile(custom)).message).toContain('host "db" has the name of a group');
  });

  it('refuses a missing file and invalid YAML with the file named', () => {
    const missing = join(dir, 'nope.yaml');
    expect(errorOf(() => loadTopologyFile(missing)).render()).toContain(
      `${missing}: cannot read lab topology file: no such file`,
    );
    const broken = topologyFile('hosts:\n  - name: [unclosed\n');
    expect(errorOf(() => loadTopologyFile(broken)).render()).toMatch(/invalid YAML/);
  });
});

describe('adding to a running lab', () => {
  it('merges new hosts after the running ones', () => {
    const running = topologyOfSize(2);
    const merged = mergeTopologies(running, defaultTopology());
    expect(merged.hosts.map((h) => h.name)).toEqual(['lb1', 'lb2', 'web1', 'web2', 'mon1']);
    expect(() => checkCompatible(running, defaultTopology(true))).not.toThrow();
  });

  it('refuses a host that would change address or groups, or a different subnet', () => {
    const running = defaultTopology();
    const moved = {
      ...defaultTopology(),
      source: 'x.yaml',
      hosts: [{ name: 'web1', address: '10.77.0.99', groups: ['web'], devices: [] }],
    };
    expect(errorOf(() => checkCompatible(running, moved)).message).toContain(
      'host web1 is up as 10.77.0.21 [web], but x.yaml describes it as 10.77.0.99 [web]',
    );
    const clash = {
      ...defaultTopology(),
      source: 'y.yaml',
      hosts: [{ name: 'extra', address: '10.77.0.21', groups: [], devices: [] }],
    };
    expect(errorOf(() => checkCompatible(running, clash)).message).toContain('which lab host web1 already has');
    const other = { ...defaultTopology(), source: 'z.yaml', subnet: { base: 0, text: '10.9.9.0/24' } };
    expect(errorOf(() => checkCompatible(running, other)).message).toContain('run `cairn lab down` first');
  });

  it('finds hosts by name and lists the known ones otherwise', () => {
    expect(findHost(defaultTopology(), 'mon1').address).toBe('10.77.0.31');
    expect(errorOf(() => findHost(defaultTopology(), 'web9')).message).toBe(
      'no lab host named "web9" (the lab has: lb1, lb2, web1, web2, mon1)',
    );
  });
});
