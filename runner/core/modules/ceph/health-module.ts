/**
 * ceph_health: read-only verdict on a Ceph cluster from a node with the admin keyring, from `ceph -s`,
 * `ceph health detail`, `ceph quorum_status`, `ceph osd tree`, `ceph osd pool ls detail` and `ceph osd crush
 * rule dump` (the parsers beside this file). Passes on HEALTH_OK (muted checks accepted per `allowed_mutes`, and always
 * reported), every monitor in quorum, every OSD up and in, every PG active+clean, pools with the wanted
 * size/min_size and failure domain. With `wait_s` it polls until that holds or the time is up (a play waiting
 * for a new cluster to settle); verification leaves it at 0 and judges the cluster as it is.
 * With `public_network` / `cluster_network` it also reads `ceph osd dump` and fails when an up OSD's public or
 * cluster address is outside that network (document 004: the two networks separate).
 * Registers: health, health_summary, checks, muted, mons, quorum, osds, pgs, pools, problems, notes,
 * health_detail (the text an operator would read), waited_s, and osd_networks when the networks are judged.
 */
import { assessCluster, type Assessment, type ClusterExpectations, type PoolExpectation } from './assess.js';
import { CephOutputError } from './health.js';
import { probeCluster, type ProbeOutput } from './probe.js';
import { registerModule } from '../index.js';
import { runScript } from '../remote.js';
import type { Module, ModuleContext, Planned } from '../types.js';
import { sleep } from '../../util/sleep.js';

export interface CephHealthArgs {
  wait_s?: number;
  interval_s?: number;
  mons?: string[];
  osd_hosts?: string[];
  /** A number, or a list (the role's `ceph_osds`) whose length is the number. */
  osds_per_host?: number | unknown[];
  pools?: PoolExpectation[];
  pool_size?: number;
  pool_min_size?: number;
  failure_domain?: string;
  allowed_mutes?: 'any' | string[];
  /** Seconds each ceph command may take (it waits that long for a quorum). */
  command_timeout_s?: number;
  /** CIDR: every up OSD's public (cluster) addresses must be inside it (`ceph osd dump`); '' or absent: not judged. */
  public_network?: string;
  cluster_network?: string;
}

/** A CIDR network ("10.77.0.0/24", "fd00::/64"), or '' for none. */
const CIDR_PATTERN = '^(|[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}|[0-9A-Fa-f:]+/[0-9]{1,3})$';

export function expectationsFrom(args: CephHealthArgs): ClusterExpectations {
  const want: ClusterExpectations = {};
  if (args.mons) want.mons = args.mons;
  if (args.osd_hosts) want.osdHosts = args.osd_hosts;
  if (args.osds_per_host !== undefined)
    want.osdsPerHost = Array.isArray(args.osds_per_host) ? args.osds_per_host.length : args.osds_per_host;
  if (args.pools)
    want.pools = args.pools.map((p) => ({
      name: p.name,
      ...(p.size === undefined ? {} : { size: p.size }),
      ...(p.min_size === undefined ? {} : { min_size: p.min_size }),
    }));
  if (args.pool_size !== undefined) want.poolSize = args.pool_size;
  if (args.pool_min_size !== undefined) want.poolMinSize = args.pool_min_size;
  if (args.failure_domain !== undefined) want.failureDomain = args.failure_domain;
  if (args.allowed_mutes !== undefined) want.allowedMutes = args.allowed_mutes;
  if (args.public_network) want.publicNetwork = args.public_network;
  if (args.cluster_network) want.clusterNetwork = args.cluster_network;
  return want;
}

interface Verdict {
  assessment?: Assessment;
  probe?: ProbeOutput;
  /** The cluster could not be read at all (no quorum, no keyring...). */
  unreadable?: string;
}

async function judgeOnce(ctx: ModuleContext, want: ClusterExpectations, timeoutS: number): Promise<Verdict> {
  try {
    const osdDump = want.publicNetwork !== undefined || want.clusterNetwork !== undefined;
    const probe = await probeCluster(
      (script) => runScript(ctx, script, { timeoutMs: (timeoutS + 10) * 8 * 1000 }),
      timeoutS,
      { osdDump },
    );
    return { probe, assessment: assessCluster(probe.snapshot, want) };
  } catch (err) {
    if (err instanceof CephOutputError) return { unreadable: err.message };
    throw err;
  }
}

export const cephHealthModule: Module<CephHealthArgs> = {
  name: 'ceph_health',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      wait_s: { type: 'number', minimum: 0, maximum: 3600 },
      interval_s: { type: 'number', minimum: 1, maximum: 600 },
      mons: { type: 'array', items: { type: 'string', minLength: 1 } },
      osd_hosts: { type: 'array', items: { type: 'string', minLength: 1 } },
      osds_per_host: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'array' }] },
      pools: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1 },
            size: { type: 'integer', minimum: 1 },
            min_size: { type: 'integer', minimum: 1 },
          },
        },
      },
      pool_size: { type: 'integer', minimum: 1 },
      pool_min_size: { type: 'integer', minimum: 1 },
      failure_domain: { type: 'string', minLength: 1 },
      allowed_mutes: {
        anyOf: [{ const: 'any' }, { type: 'array', items: { type: 'string', pattern: '^[A-Z0-9_]+$' } }],
      },
      command_timeout_s: { type: 'integer', minimum: 1, maximum: 300 },
      public_network: { type: 'string', pattern: CIDR_PATTERN },
      cluster_network: { type: 'string', pattern: CIDR_PATTERN },
    },
  },

  async check(ctx, args): Promise<Planned> {
    const want = expectationsFrom(args);
    const waitMs = (args.wait_s ?? 0) * 1000;
    const intervalMs = (args.interval_s ?? 5) * 1000;
    const timeoutS = args.command_timeout_s ?? 20;
    const started = Date.now();
    let verdict = await judgeOnce(ctx, want, timeoutS);
    let attempts = 1;
    while (!verdict.assessment?.ok && Date.now() - started + intervalMs <= waitMs && !ctx.signal?.aborted) {
      await sleep(intervalMs, ctx.signal);
      verdict = await judgeOnce(ctx, want, timeoutS);
      attempts++;
    }
    const waitedS = Math.round((Date.now() - started) / 100) / 10;
    if (verdict.unreadable !== undefined) {
      const msg = `cannot read the cluster's state from ${ctx.host}: ${verdict.unreadable}`;
      return {
        changed: false,
        actions: [],
        failed: msg,
        data: { problems: [verdict.unreadable], attempts, waited_s: waitedS },
      };
    }
    const assessment = verdict.assessment!;
    const data: Record<string, unknown> = {
      ...assessment.facts,
      problems: assessment.problems,
      notes: assessment.notes,
      health_detail: verdict.probe!.healthText.split('\n'),
      attempts,
      waited_s: waitedS,
    };
    if (!assessment.ok) {
      const after = waitMs > 0 ? ` (still so after ${waitedS} s)` : '';
      return { changed: false, actions: [], failed: `${assessment.problems.join('; ')}${after}`, data };
    }
    return {
      changed: false,
      actions: [],
      data: { ...data, msg: assessment.notes.length ? assessment.notes.join('; ') : 'HEALTH_OK' },
    };
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};

registerModule(cephHealthModule);
