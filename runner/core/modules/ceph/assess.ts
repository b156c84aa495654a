/**
 * The verdict on a cluster: what the documents and the inventory want (HEALTH_OK, every monitor in quorum,
 * every OSD up and in, every PG active+clean, pools with the wanted replication over the wanted failure
 * domain) against one snapshot of what Ceph reports. Pure, so it is table-tested with real outputs.
 */
import { activeChecks, describeHealth, type HealthReport } from './health.js';
import {
  activeCleanPgs,
  inNetwork,
  type CephStatus,
  type CrushRule,
  type OsdAddresses,
  type OsdNode,
  type PoolInfo,
  type QuorumStatus,
} from './status.js';

export interface ClusterSnapshot {
  status: CephStatus;
  /** From `ceph health detail -f json` (with detail lines); the status's own health has none. */
  health: HealthReport;
  quorum: QuorumStatus;
  osds: OsdNode[];
  pools: PoolInfo[];
  rules: CrushRule[];
  /** From `ceph osd dump -f json`, when the networks are judged. */
  osdAddresses?: OsdAddresses[];
}

export interface PoolExpectation {
  name: string;
  size?: number;
  min_size?: number;
}

export interface ClusterExpectations {
  /** These monitors, and no others, exist and are all in the quorum. */
  mons?: string[];
  /** Each of these hosts carries at least `osdsPerHost` OSDs in the CRUSH map. */
  osdHosts?: string[];
  osdsPerHost?: number;
  /** These pools exist (size/min_size default to poolSize/poolMinSize). */
  pools?: PoolExpectation[];
  /** Every pool's replication, unless listed in `pools` with its own. */
  poolSize?: number;
  poolMinSize?: number;
  /** Every pool's CRUSH rule spreads copies over this bucket type. */
  failureDomain?: string;
  /** Muted checks accepted without failing ("any", or these codes); they are always reported. */
  allowedMutes?: 'any' | string[];
  /** Every up OSD's public addresses inside this network, its cluster addresses inside clusterNetwork (CIDR). */
  publicNetwork?: string;
  clusterNetwork?: string;
}

export interface Assessment {
  ok: boolean;
  /** Why it is not ok, one line each. */
  problems: string[];
  /** Worth saying although ok (muted health checks). */
  notes: string[];
  /** Registered for the task: plain data. */
  facts: Record<string, unknown>;
}

export function assessCluster(snapshot: ClusterSnapshot, want: ClusterExpectations): Assessment {
  const problems: string[] = [];
  const notes: string[] = [];
  const { status, health, quorum, osds, pools, rules } = snapshot;

  // Health. Ceph leaves muted checks out of the overall status; they are reported either way.
  const muted = health.checks.filter((c) => c.muted);
  if (health.status !== 'HEALTH_OK') {
    const failing = activeChecks(health).map(
      (c) =>
        `${c.code ?? 'check'} (${c.summary})${c.detail.length ? `: ${c.detail.slice(0, 3).join(', ')}${c.detail.length > 3 ? `, and ${c.detail.length - 3} more` : ''}` : ''}`,
    );
    problems.push(`${health.status}: ${failing.join('; ') || 'no check named'}`);
  }
  for (const check of muted) {
    const allowed =
      want.allowedMutes === undefined ||
      want.allowedMutes === 'any' ||
      (check.code !== null && want.allowedMutes.includes(check.code));
    const line = `muted health check ${check.code ?? ''} (${check.summary})`;
    if (allowed) notes.push(`${health.status} with ${line}`);
    else problems.push(`${line} is not in the accepted mutes`);
  }

  // Monitors.
  const quorumNames = quorum.quorumNames.length ? quorum.quorumNames : status.quorumNames;
  const outOfQuorum = quorum.monNames.filter((m) => !quorumNames.includes(m));
  if (outOfQuorum.length)
    problems.push(`monitors out of quorum: ${outOfQuorum.join(', ')} (quorum: ${quorumNames.join(', ') || 'none'})`);
  if (want.mons) {
    const missing = want.mons.filter((m) => !quorum.monNames.includes(m));
    const extra = quorum.monNames.filter((m) => !want.mons!.includes(m));
    if (missing.length) problems.push(`monitors missing from the monitor map: ${missing.join(', ')}`);
    if (extra.length) problems.push(`monitors in the monitor map but not wanted: ${extra.join(', ')}`);
  }

  // OSDs.
  const down = osds.filter((o) => !o.up).map((o) => o.name);
  const out = osds.filter((o) => !o.in).map((o) => o.name);
  if (down.length) problems.push(`OSDs down: ${down.join(', ')}`);
  if (out.length) problems.push(`OSDs out: ${out.join(', ')}`);
  if (want.osdHosts) {
    const perHost = want.osdsPerHost ?? 1;
    for (const host of want.osdHosts) {
      const count = osds.filter((o) => o.host === host).length;
      if (count < perHost)
        problems.push(`host ${host} has ${count} OSD${count === 1 ? '' : 's'} in the CRUSH map, wanted ${perHost}`);
    }
  }

  // Placement groups. The managers report them: until one is active and has reported every pool's PGs, a
  // new cluster can look clean with nothing counted yet.
  if (!status.mgrAvailable) problems.push('no active manager (PG states are not being reported)');
  const poolPgs = pools.reduce((n, p) => n + p.pgNum, 0);
  if (status.pgs.total < poolPgs) problems.push(`${status.pgs.total} PGs reported of the pools' ${poolPgs}`);
  const clean = activeCleanPgs(status);
  if (clean < status.pgs.total) {
    const others = status.pgs.byState.filter((s) => s.state !== 'active+clean').map((s) => `${s.count} ${s.state}`);
    problems.push(`${status.pgs.total - clean} of ${status.pgs.total} PGs not active+clean: ${others.join(', ')}`);
  }

  // Pools.
  const ruleById = new Map(rules.map((r) => [r.id, r]));
  for (const pool of want.pools ?? []) {
    if (!pools.some((p) => p.name === pool.name)) problems.push(`pool ${pool.name} does not exist`);
  }
  for (const pool of pools) {
    const spec = want.pools?.find((p) => p.name === pool.name);
    const size = spec?.size ?? want.poolSize;
    const minSize = spec?.min_size ?? want.poolMinSize;
    if (size !== undefined && pool.size !== size) problems.push(`pool ${pool.name}: size ${pool.size}, wanted ${size}`);
    if (minSize !== undefined && pool.minSize !== minSize)
      problems.push(`pool ${pool.name}: min_size ${pool.minSize}, wanted ${minSize}`);
    const rule = ruleById.get(pool.ruleId);
    if (want.failureDomain !== undefined && rule?.failureDomain !== want.failureDomain) {
      problems.push(
        `pool ${pool.name}: CRUSH rule ${rule?.name ?? `#${pool.ruleId}`} spreads copies over ${rule?.failureDomain ?? 'nothing known'}, wanted ${want.failureDomain}`,
      );
    }
  }

  // Networks (document 004: Ceph's public and cluster networks separate). A down OSD is reported above; its
  // addresses are the ones it last had, so only up OSDs are judged.
  if (want.publicNetwork !== undefined || want.clusterNetwork !== undefined) {
    if (!snapshot.osdAddresses) problems.push("the OSDs' addresses were not read (ceph osd dump)");
    for (const osd of (snapshot.osdAddresses ?? []).filter((o) => o.up)) {
      for (const [kind, ips, network] of [
        ['public', osd.publicIps, want.publicNetwork],
        ['cluster', osd.clusterIps, want.clusterNetwork],
      ] as const) {
        if (network === undefined) continue;
        if (!ips.length) problems.push(`osd.${osd.id} is up with no ${kind} address`);
        const outside = ips.filter((ip) => !inNetwork(ip, network));
        if (outside.length)
          problems.push(
            `osd.${osd.id}: ${kind} address ${outside.join(', ')} is outside the ${kind} network ${network}`,
          );
      }
    }
  }

  const facts: Record<string, unknown> = {
    health: health.status,
    health_summary: describeHealth(health),
    checks: health.checks.map((c) => ({
      code: c.code,
      severity: c.severity,
      summary: c.summary,
      muted: c.muted,
      detail: c.detail,
    })),
    muted: muted.map((c) => c.code),
    mons: quorum.monNames,
    quorum: quorumNames,
    osds: { total: osds.length, up: osds.length - down.length, in: osds.length - out.length, down, out },
    pgs: {
      total: status.pgs.total,
      active_clean: clean,
      by_state: Object.fromEntries(status.pgs.byState.map((s) => [s.state, s.count])),
    },
    pools: pools.map((p) => {
      const rule = ruleById.get(p.ruleId);
      return {
        name: p.name,
        size: p.size,
        min_size: p.minSize,
        crush_rule: rule?.name ?? p.ruleId,
        failure_domain: rule?.failureDomain ?? null,
        applications: p.applications,
      };
    }),
    mgr_available: status.mgrAvailable,
    mgr_standbys: status.mgrStandbys,
    ...(snapshot.osdAddresses
      ? {
          osd_networks: snapshot.osdAddresses.map((o) => ({
            osd: o.id,
            up: o.up,
            public: o.publicIps,
            cluster: o.clusterIps,
          })),
        }
      : {}),
  };
  return { ok: problems.length === 0, problems, notes, facts };
}
