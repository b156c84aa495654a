/**
 * The cluster probe's parsers and the verdict on a cluster, over real captures from the lab's cluster
 * (test/fixtures/ceph/lab-probe-*.txt, sources in each file): healthy, an OSD down with empty pools
 * (undersized, not degraded), an OSD down with data (degraded), the same with the checks muted, and no
 * monitor answering.
 */
import { readFileSync } from 'node:fs';
import { frameSections } from '../helpers/fake-connection.js';
import { describe, expect, it } from 'vitest';
import { assessCluster, type ClusterExpectations } from '../../runner/core/modules/ceph/assess.js';
import { CephOutputError } from '../../runner/core/modules/ceph/health.js';
import { parseProbeOutput, probeScript } from '../../runner/core/modules/ceph/probe.js';
import {
  activeCleanPgs,
  degradedPgs,
  isActiveClean,
  parseCrushRulesJson,
  parseOsdTreeJson,
  parseStatusJson,
} from '../../runner/core/modules/ceph/status.js';
import { expectationsFrom } from '../../runner/core/modules/ceph/health-module.js';

function fixture(name: string): string {
  const text = readFileSync(new URL(`../fixtures/ceph/${name}`, import.meta.url), 'utf8');
  // Captured in the readable layout (one marker line, then the section's text); framed as the host prints it now.
  return frameSections(text.slice(text.indexOf('\n---\n') + 5));
}

/** What the lab's inventory and the role's defaults ask for. */
const LAB_WANT: ClusterExpectations = {
  mons: ['pve1', 'pve2', 'pve3'],
  osdHosts: ['pve1', 'pve2', 'pve3'],
  osdsPerHost: 1,
  pools: [{ name: 'rbd' }],
  poolSize: 3,
  poolMinSize: 2,
  failureDomain: 'host',
  allowedMutes: 'any',
};

describe('parseProbeOutput', () => {
  it('reads a healthy cluster', () => {
    const { snapshot, healthText } = parseProbeOutput(fixture('lab-probe-ok.txt'));
    expect(snapshot.status.fsid).toBe('ce82dcad-1445-4e2a-a6e5-6ad4619944a6');
    expect(snapshot.status.quorumNames).toEqual(['pve1', 'pve2', 'pve3']);
    expect(snapshot.status.osds).toEqual({ total: 3, up: 3, in: 3 });
    expect(snapshot.status.pgs).toEqual({ total: 33, byState: [{ state: 'active+clean', count: 33 }] });
    expect(snapshot.status.mgrAvailable).toBe(true);
    expect(snapshot.status.mgrStandbys).toBe(1);
    expect(snapshot.quorum).toEqual({
      quorumNames: ['pve1', 'pve2', 'pve3'],
      monNames: ['pve1', 'pve2', 'pve3'],
      leader: 'pve1',
    });
    expect(snapshot.osds.map((o) => `${o.name}@${o.host}:${o.up ? 'up' : 'down'}/${o.in ? 'in' : 'out'}`)).toEqual([
      'osd.0@pve3:up/in',
      'osd.1@pve1:up/in',
      'osd.2@pve2:up/in',
    ]);
    expect(snapshot.pools.map((p) => [p.name, p.size, p.minSize, p.ruleId, p.applications.join()])).toEqual([
      ['rbd', 3, 2, 1, 'rbd'],
      ['device_health_metrics', 3, 2, 0, 'mgr_devicehealth'],
    ]);
    expect(snapshot.rules).toEqual([
      { id: 0, name: 'replicated_rule', failureDomain: 'host', root: 'default' },
      { id: 1, name: 'replicated_host', failureDomain: 'host', root: 'default' },
    ]);
    expect(healthText).toBe('HEALTH_OK');
  });

  it('reads an OSD down on empty pools: undersized, none degraded', () => {
    const { snapshot } = parseProbeOutput(fixture('lab-probe-warn-osd-down-empty.txt'));
    expect(snapshot.status.osds).toEqual({ total: 3, up: 2, in: 3 });
    expect(activeCleanPgs(snapshot.status)).toBe(0);
    expect(degradedPgs(snapshot.status)).toBe(0);
    expect(snapshot.osds.find((o) => o.name === 'osd.0')).toEqual({
      id: 0,
      name: 'osd.0',
      host: 'pve3',
      up: false,
      in: true,
    });
  });

  it('reads an OSD down with data: degraded PGs and objects', () => {
    const { snapshot } = parseProbeOutput(fixture('lab-probe-warn-degraded.txt'));
    expect(degradedPgs(snapshot.status)).toBe(13);
    expect(snapshot.status.degradedObjects).toBe(16);
    expect(snapshot.status.degradedTotal).toBe(48);
  });

  it('reports the command that failed when no monitor answers', () => {
    expect(() => parseProbeOutput(fixture('lab-probe-no-monitor.txt'))).toThrow(
      new CephOutputError('`ceph -s -f json` failed with exit code 1: timed out'),
    );
  });

  it('refuses output that stops early', () => {
    const cut = fixture('lab-probe-ok.txt').split('::cairn-section:: pools')[0]!;
    expect(() => parseProbeOutput(cut)).toThrow('the probe did not run to its end');
  });

  it('bounds every command, runs ceph -s first, the rest only when it answered', () => {
    const script = probeScript(7);
    const lines = script.split('\n');
    expect(lines[1]).toBe(
      '{ timeout 12 ceph --connect-timeout 7 -s -f json >"$d/status.out" 2>"$d/status.err"; echo $? >"$d/status.rc"; }',
    );
    expect(lines[2]).toBe('if [ "$(cat "$d/status.rc")" = 0 ]; then');
    expect(lines.filter((l) => l.endsWith(' &'))).toHaveLength(6);
    expect(script).toContain('timeout 12 ceph --connect-timeout 7 osd crush rule dump -f json >"$d/rules.out"');
  });
});

describe('assessCluster', () => {
  it("passes the healthy lab cluster against the lab's wishes", () => {
    const verdict = assessCluster(parseProbeOutput(fixture('lab-probe-ok.txt')).snapshot, LAB_WANT);
    expect(verdict.problems).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.notes).toEqual([]);
    expect(verdict.facts).toMatchObject({
      health: 'HEALTH_OK',
      quorum: ['pve1', 'pve2', 'pve3'],
      osds: { total: 3, up: 3, in: 3 },
      pgs: { total: 33, active_clean: 33 },
    });
  });

  it('names each wish the same cluster does not meet', () => {
    const verdict = assessCluster(parseProbeOutput(fixture('lab-probe-ok.txt')).snapshot, {
      mons: ['pve1', 'pve2', 'pve4'],
      osdHosts: ['pve1', 'pve4'],
      osdsPerHost: 2,
      pools: [{ name: 'rbd', size: 2 }, { name: 'vms' }],
      poolSize: 3,
      poolMinSize: 2,
      failureDomain: 'rack',
    });
    expect(verdict.ok).toBe(false);
    expect(verdict.problems).toEqual([
      'monitors missing from the monitor map: pve4',
      'monitors in the monitor map but not wanted: pve3',
      'host pve1 has 1 OSD in the CRUSH map, wanted 2',
      'host pve4 has 0 OSDs in the CRUSH map, wanted 2',
      'pool vms does not exist',
      'pool rbd: size 3, wanted 2',
      'pool rbd: CRUSH rule replicated_host spreads copies over host, wanted rack',
      'pool device_health_metrics: CRUSH rule replicated_rule spreads copies over host, wanted rack',
    ]);
  });

  it('fails an OSD down with degraded PGs, saying which OSD and which checks', () => {
    const verdict = assessCluster(parseProbeOutput(fixture('lab-probe-warn-degraded.txt')).snapshot, LAB_WANT);
    expect(verdict.ok).toBe(false);
    expect(verdict.problems[0]).toMatch(
      /^HEALTH_WARN: OSD_DOWN \(1 osds down\): osd\.0 \(root=default,host=pve3\) is down; OSD_HOST_DOWN/,
    );
    expect(verdict.problems[0]).toContain(
      'PG_DEGRADED (Degraded data redundancy: 16/48 objects degraded (33.333%), 13 pgs degraded): pg 1.1 is active+undersized+degraded, acting [2,1], pg 1.4',
    );
    expect(verdict.problems.slice(1)).toEqual([
      'OSDs down: osd.0',
      '33 of 33 PGs not active+clean: 20 active+undersized, 13 active+undersized+degraded',
    ]);
  });

  it('reports muted checks at HEALTH_OK, and fails those not accepted', () => {
    const snapshot = parseProbeOutput(fixture('lab-probe-ok-muted-degraded.txt')).snapshot;
    const any = assessCluster(snapshot, LAB_WANT);
    expect(any.notes).toEqual([
      'HEALTH_OK with muted health check OSD_DOWN (1 osds down)',
      'HEALTH_OK with muted health check OSD_HOST_DOWN (1 host (1 osds) down)',
      'HEALTH_OK with muted health check PG_DEGRADED (Degraded data redundancy: 16/48 objects degraded (33.333%), 13 pgs degraded)',
    ]);
    // Muting hides nothing from the other checks: the OSD is still down, the PGs still degraded.
    expect(any.problems).toEqual([
      'OSDs down: osd.0',
      '33 of 33 PGs not active+clean: 20 active+undersized, 13 active+undersized+degraded',
    ]);
    const strict = assessCluster(snapshot, { ...LAB_WANT, allowedMutes: ['OSD_DOWN'] });
    expect(strict.problems.slice(0, 2)).toEqual([
      'muted health check OSD_HOST_DOWN (1 host (1 osds) down) is not in the accepted mutes',
      'muted health check PG_DEGRADED (Degraded data redundancy: 16/48 objects degraded (33.333%), 13 pgs degraded) is not in the accepted mutes',
    ]);
    expect(strict.facts.muted).toEqual(['OSD_DOWN', 'OSD_HOST_DOWN', 'PG_DEGRADED']);
  });
});

describe('smaller parsers', () => {
  it.each([
    ['active+clean', true],
    ['active+clean+scrubbing', true],
    ['active+clean+scrubbing+deep', true],
    ['active+clean+inconsistent', false],
    ['active+undersized', false],
    ['active+undersized+degraded', false],
    ['peering', false],
  ])('isActiveClean(%s) = %s', (state, want) => {
    expect(isActiveClean(state)).toBe(want);
  });

  it("accepts Nautilus' nested osdmap in ceph -s", () => {
    const status = parseStatusJson({
      fsid: 'f',
      health: { status: 'HEALTH_OK', checks: {} },
      osdmap: { osdmap: { num_osds: 6, num_up_osds: 5, num_in_osds: 6 } },
      pgmap: { pgs_by_state: [] },
    });
    expect(status.osds).toEqual({ total: 6, up: 5, in: 6 });
  });

  it('refuses a status without fsid and a tree that is not an object', () => {
    expect(() => parseStatusJson({ health: { status: 'HEALTH_OK' } })).toThrow('`ceph -s -f json`: no fsid');
    expect(() => parseOsdTreeJson([])).toThrow('`ceph osd tree -f json`: expected a JSON object');
    expect(() => parseCrushRulesJson({})).toThrow('`ceph osd crush rule dump -f json`: expected a JSON list');
  });

  it("turns the module's arguments into expectations (osds_per_host from the ceph_osds list)", () => {
    expect(
      expectationsFrom({
        osds_per_host: [{ name: 'osd-a' }, { name: 'osd-b' }],
        pools: [{ name: 'rbd', min_size: 1 }],
        allowed_mutes: [],
      }),
    ).toEqual({
      osdsPerHost: 2,
      pools: [{ name: 'rbd', min_size: 1 }],
      allowedMutes: [],
    });
  });
});
