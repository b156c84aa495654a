/**
 * zpool_health (read-only, for verify.yaml): every wanted pool is imported, ONLINE, with no vdev in another
 * state, no read/write/checksum errors on any device (even an ONLINE one), no resilver still running, no
 * known data errors, and capacity at most `capacity_max_pct` (75 %, document 003). The failure message names
 * exactly which vdev is in which state and where it sits; the registered `pools` carry the parsed trees.
 */
import { failureText, parseSections, runScript, section } from '../remote.js';
import type { Module, Planned } from '../types.js';
import { argv } from '../../transport/quote.js';
import { assessPool, parseZpoolList, type PoolHealth } from './health.js';
import { walkVdevs, parseZpoolStatus } from './zpool-status.js';

export interface ZpoolHealthArgs {
  /** Pools that must be present and healthy; default: every imported pool (and at least one). */
  pools?: string[];
  capacity_max_pct?: number;
}

export function healthProbeScript(pools: string[]): string {
  return [
    section('status', `${argv('zpool', 'status', ...pools)} 2>&1`),
    section('list', `${argv('zpool', 'list', '-H', '-o', 'name,size,allocated,free,capacity,health')} 2>&1`),
    section('end'),
  ].join('\n');
}

/** The verdict from the probe (pure; table-tested). */
export function judgeHealth(args: ZpoolHealthArgs, probe: Map<string, string>): Planned {
  const statusText = probe.get('status') ?? '';
  const report = parseZpoolStatus(statusText);
  const list = parseZpoolList(probe.get('list') ?? '');
  const max = args.capacity_max_pct ?? 75;
  const problems: string[] = [];
  const notes: string[] = [];
  const wanted = args.pools ?? report.pools.map((p) => p.name);
  if (!args.pools && report.pools.length === 0) {
    const why = report.noPools
      ? 'no pools available'
      : statusText.trim().split('\n').slice(-2).join(' ') || 'zpool status printed nothing';
    problems.push(`no ZFS pool is imported (${why})`);
  }
  const healths: PoolHealth[] = [];
  const pools: Array<Record<string, unknown>> = [];
  for (const name of wanted) {
    const pool = report.pools.find((p) => p.name === name);
    if (!pool) {
      const hint = /cannot open|no such pool/i.test(statusText)
        ? ': no such pool'
        : statusText.includes('connect')
          ? `: ${statusText.trim().split('\n')[0]}`
          : '';
      problems.push(`pool ${name} is not imported${hint}`);
      continue;
    }
    const row = list.find((r) => r.name === name);
    const health = assessPool(pool, { capacityPct: row?.capacityPct, capacityMaxPct: max });
    healths.push(health);
    problems.push(...health.problems);
    notes.push(...health.notes);
    pools.push({
      name,
      state: pool.state,
      healthy: health.healthy,
      capacity_pct: row?.capacityPct ?? null,
      size: row?.size ?? null,
      problems: health.problems,
      scan: pool.scan?.text ?? null,
      vdevs: walkVdevs(pool.root).map((v) => ({
        name: v.name,
        path: [...v.parents, v.name].join(' > '),
        kind: v.kind,
        state: v.state ?? null,
        read: v.read,
        write: v.write,
        cksum: v.cksum,
        note: v.note ?? null,
      })),
    });
  }
  const bad = healths.flatMap((h) =>
    h.vdevProblems
      .filter((p) => p.path !== h.pool)
      .map((p) => ({
        pool: p.pool,
        vdev: p.vdev,
        path: p.path,
        state: p.state ?? null,
        read: p.read,
        write: p.write,
        cksum: p.cksum,
      })),
  );
  const data = { pools, problem_vdevs: bad, notes, capacity_max_pct: max, healthy: problems.length === 0 };
  if (problems.length)
    return { changed: false, actions: [], failed: problems.join('; '), data: { ...data, msg: problems.join('; ') } };
  const summary = pools
    .map((p) => `${String(p.name)} ONLINE${p.capacity_pct !== null ? ` ${String(p.capacity_pct)}% used` : ''}`)
    .join(', ');
  return {
    changed: false,
    actions: [],
    data: { ...data, msg: `${summary}${notes.length ? `; ${notes.join('; ')}` : ''}` },
  };
}

export const zpoolHealthModule: Module<ZpoolHealthArgs> = {
  name: 'zpool_health',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      pools: { type: 'array', items: { type: 'string', minLength: 1, pattern: '^[A-Za-z][A-Za-z0-9_.:-]*$' } },
      capacity_max_pct: { type: 'number', minimum: 0, maximum: 100 },
    },
  },

  async check(ctx, args) {
    const res = await runScript(ctx, healthProbeScript(args.pools ?? []));
    if (res.code !== 0) return { changed: false, actions: [], failed: `zpool probe failed: ${failureText(res)}` };
    return judgeHealth(args, parseSections(res.stdout));
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
