/**
 * Document 004: Ceph's public and cluster networks separate. ceph_health with public_network/cluster_network
 * reads `ceph osd dump -f json` (test/fixtures/ceph/osd-dump-lab-shape.json: Ceph's OSDMap::dump layout with
 * the lab's addresses; see the fixtures' README) and fails when an up OSD's address is outside its network.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assessCluster } from '../../runner/core/modules/ceph/assess.js';
import { CephOutputError } from '../../runner/core/modules/ceph/health.js';
import { expectationsFrom } from '../../runner/core/modules/ceph/health-module.js';
import { parseProbeOutput, probeScript } from '../../runner/core/modules/ceph/probe.js';
import { inNetwork, parseOsdDumpJson } from '../../runner/core/modules/ceph/status.js';
import { formatSection, SECTION_MARK } from '../../runner/core/modules/remote.js';
import { frameSections } from '../helpers/fake-connection.js';

const fixtures = new URL('../fixtures/ceph/', import.meta.url);
const osdDumpText = readFileSync(new URL('osd-dump-lab-shape.json', fixtures), 'utf8');
const osdDump = () => JSON.parse(osdDumpText) as { osds: Array<Record<string, unknown>> };

/** The lab's healthy probe (captured, lab-probe-ok.txt) with an osd_dump section before its end. */
function probeWithOsdDump(dump: string): string {
  const text = readFileSync(new URL('lab-probe-ok.txt', fixtures), 'utf8');
  const framed = frameSections(text.slice(text.indexOf('\n---\n') + 5));
  const end = `${SECTION_MARK} end `;
  return framed.replace(end, `${formatSection('osd_dump', `${dump.trim()}\n::rc=0`)}${end}`);
}

/** The verdict's problems for the lab's healthy probe with `dump` as its osd dump, judged on these networks. */
function problems(dump: unknown, publicNetwork: string, clusterNetwork: string): string[] {
  const { snapshot } = parseProbeOutput(probeWithOsdDump(JSON.stringify(dump)), { osdDump: true });
  const want = expectationsFrom({ public_network: publicNetwork, cluster_network: clusterNetwork });
  return assessCluster(snapshot, { ...want, allowedMutes: 'any' }).problems;
}

describe('ceph osd dump captured on the lab (osd-dump-lab.json, 2026-12-07, ceph 16.2, three pve containers)', () => {
  const captured = () => JSON.parse(readFileSync(new URL('osd-dump-lab.json', fixtures), 'utf8')) as unknown;

  it('reads the three OSDs of the real dump with the addresses Ceph gave them', () => {
    expect(parseOsdDumpJson(captured())).toEqual([
      { id: 0, up: true, publicIps: ['10.77.0.42'], clusterIps: ['10.77.0.42'] },
      { id: 1, up: true, publicIps: ['10.77.0.43'], clusterIps: ['10.77.0.43'] },
      { id: 2, up: true, publicIps: ['10.77.0.41'], clusterIps: ['10.77.0.41'] },
    ]);
  });

  it("passes on the lab's networks and fails every OSD on a cluster network it is not on", () => {
    expect(problems(captured(), '10.77.0.0/24', '10.77.0.0/24')).toEqual([]);
    const off = problems(captured(), '10.77.0.0/24', '10.77.1.0/24');
    expect(off.filter((p) => /osd\.[012]\b.*10\.77\.1\.0\/24/.test(p))).toHaveLength(3);
  });
});

describe('ceph osd dump: OSD addresses', () => {
  it('reads every OSD with its public and cluster IPs', () => {
    expect(parseOsdDumpJson(osdDump())).toEqual([
      { id: 0, up: true, publicIps: ['10.77.0.43'], clusterIps: ['10.77.0.43'] },
      { id: 1, up: true, publicIps: ['10.77.0.41'], clusterIps: ['10.77.0.41'] },
      { id: 2, up: true, publicIps: ['10.77.0.42'], clusterIps: ['10.77.0.42'] },
    ]);
  });

  it('refuses what is not that shape, naming the OSD', () => {
    const bad = (change: (osd: Record<string, unknown>) => void) => {
      const dump = osdDump();
      change(dump.osds[1]!);
      return () => parseOsdDumpJson(dump);
    };
    expect(
      bad((o) => (o.cluster_addrs = { addrvec: [{ type: 'v2', addr: '10.77.0.41;rm -rf /', nonce: 1 }] })),
    ).toThrow(
      new CephOutputError('`ceph osd dump -f json`: osd.1 cluster_addrs[0]: "10.77.0.41;rm -rf /" is not an address'),
    );
    expect(bad((o) => (o.cluster_addrs = { addrvec: [{ type: 'v2', addr: '10.77.0.999:6802', nonce: 1 }] }))).toThrow(
      'is not an address',
    );
    expect(bad((o) => delete o.public_addrs)).toThrow('osd.1 public_addrs: no addrvec');
    expect(bad((o) => (o.up = true))).toThrow('osd.1: "up" is not 0 or 1');
    expect(() => parseOsdDumpJson({ osds: 'none' })).toThrow(CephOutputError);
    expect(() => parseOsdDumpJson([])).toThrow('expected a JSON object');
  });

  it('reads IPv6 addresses and judges membership with either family', () => {
    const dump = osdDump();
    dump.osds[0]!.cluster_addrs = { addrvec: [{ type: 'v2', addr: '[fd00:77:1::43]:6802', nonce: 4409 }] };
    expect(parseOsdDumpJson(dump)[0]!.clusterIps).toEqual(['fd00:77:1::43']);
    expect(inNetwork('fd00:77:1::43', 'fd00:77:1::/64')).toBe(true);
    expect(inNetwork('fd00:77:2::43', 'fd00:77:1::/64')).toBe(false);
    expect(inNetwork('10.77.1.255', '10.77.1.0/24')).toBe(true);
    expect(inNetwork('10.77.0.41', '10.77.1.0/24')).toBe(false);
    expect(inNetwork('10.77.0.41', 'fd00:77:1::/64')).toBe(false);
    expect(() => inNetwork('10.77.0.41', '10.77.0.0/33')).toThrow('"10.77.0.0/33" is not a network (CIDR)');
  });
});

describe('ceph_health with public_network and cluster_network', () => {
  it('reads ceph osd dump only when asked', () => {
    expect(probeScript(7)).not.toContain('osd dump');
    expect(probeScript(7, { osdDump: true })).toContain(
      '{ timeout 12 ceph --connect-timeout 7 osd dump -f json >"$d/osd_dump.out" 2>"$d/osd_dump.err"; echo $? >"$d/osd_dump.rc"; } &',
    );
  });

  it("passes the lab's cluster: both networks the service subnet", () => {
    const { snapshot } = parseProbeOutput(probeWithOsdDump(osdDumpText), { osdDump: true });
    const want = expectationsFrom({ public_network: '10.77.0.0/24', cluster_network: '10.77.0.0/24' });
    const verdict = assessCluster(snapshot, { ...want, allowedMutes: 'any' });
    expect(verdict.problems).toEqual([]);
    expect(verdict.facts.osd_networks).toEqual([
      { osd: 0, up: true, public: ['10.77.0.43'], cluster: ['10.77.0.43'] },
      { osd: 1, up: true, public: ['10.77.0.41'], cluster: ['10.77.0.41'] },
      { osd: 2, up: true, public: ['10.77.0.42'], cluster: ['10.77.0.42'] },
    ]);
  });

  it('fails every up OSD whose cluster address is off the cluster network; a down OSD is left to the OSD check', () => {
    const dump = osdDump();
    dump.osds[2]!.up = 0;
    expect(problems(dump, '10.77.0.0/24', '10.77.1.0/24')).toEqual([
      'osd.0: cluster address 10.77.0.43 is outside the cluster network 10.77.1.0/24',
      'osd.1: cluster address 10.77.0.41 is outside the cluster network 10.77.1.0/24',
    ]);
  });

  it('fails an up OSD without a public address, and one whose public address is off the public network', () => {
    const dump = osdDump();
    dump.osds[0]!.public_addrs = { addrvec: [] };
    dump.osds[1]!.public_addrs = { addrvec: [{ type: 'v2', addr: '10.77.1.41:6800', nonce: 4171 }] };
    expect(problems(dump, '10.77.0.0/24', '10.77.0.0/24')).toEqual([
      'osd.0 is up with no public address',
      'osd.1: public address 10.77.1.41 is outside the public network 10.77.0.0/24',
    ]);
  });

  it("empty networks (the role's defaults without a site) judge nothing and read no osd dump", () => {
    expect(expectationsFrom({ public_network: '', cluster_network: '' })).toEqual({});
  });
});
