/**
 * Whether a pool is healthy, in words an operator can act on: which vdev is in which state (with its place
 * in the tree and zpool's own note), which device has read/write/checksum errors even though it is ONLINE,
 * whether a resilver is running, whether data errors are known, and whether the pool is fuller than the
 * documents allow (75 %, document 003).
 */
import { leafVdevs, walkVdevs, type PoolStatus, type VdevNode } from './zpool-status.js';

/** States that are fine for a node: ONLINE, and AVAIL for an unused hot spare. */
const GOOD_STATES = new Set(['ONLINE', 'AVAIL']);

export interface VdevProblem {
  pool: string;
  /** The vdev as zpool names it (a path, mirror-0, a GUID...). */
  vdev: string;
  /** Where it sits: "tank > raidz1-0 > /var/lib/zfs/tank-2.img". */
  path: string;
  state?: string;
  read: number;
  write: number;
  cksum: number;
  note?: string;
  /** One line: "/var/lib/zfs/tank-2.img (in raidz1-0) is OFFLINE". */
  message: string;
}

export interface PoolHealth {
  pool: string;
  state: string;
  healthy: boolean;
  /** Everything wrong, most specific first (leaves, then the vdevs above them, then the pool). */
  problems: string[];
  /** Non-ONLINE vdevs and vdevs with error counters, leaves first. */
  vdevProblems: VdevProblem[];
  /** Worth knowing but not wrong (a scrub running, the last scan's summary). */
  notes: string[];
  resilvering: boolean;
  capacityPct?: number;
}

export interface HealthOptions {
  /** Capacity (percent used) from `zpool list`, if known. */
  capacityPct?: number;
  /** Largest healthy capacity, in percent; over it is a problem. */
  capacityMaxPct?: number;
}

function placeOf(node: VdevNode): string {
  return [...node.parents, node.name].join(' > ');
}

function withinOf(node: VdevNode): string {
  // The nearest named vdev above the leaf (not the pool itself) says where it belongs: "in raidz1-0".
  const above = node.parents.slice(1);
  return above.length ? ` (in ${above[above.length - 1]})` : '';
}

function counterText(node: VdevNode): string {
  const parts: string[] = [];
  const [r, w, c] = node.countersText ?? [String(node.read), String(node.write), String(node.cksum)];
  if (node.read > 0) parts.push(`${r} read`);
  if (node.write > 0) parts.push(`${w} write`);
  if (node.cksum > 0) parts.push(`${c} checksum`);
  return parts.join(', ');
}

function problemOf(pool: string, node: VdevNode): VdevProblem | undefined {
  const badState = node.state !== undefined && !GOOD_STATES.has(node.state);
  const counters = node.read + node.write + node.cksum > 0;
  if (!badState && !counters) return undefined;
  const label =
    node.kind === 'pool'
      ? `pool ${node.name}`
      : `${node.kind === 'class' ? `${node.name} (class)` : node.name}${withinOf(node)}`;
  const pieces: string[] = [];
  if (badState) pieces.push(`is ${node.state}`);
  if (counters)
    pieces.push(
      `${badState ? 'and has' : `is ${node.state ?? 'listed'} but has`} ${counterText(node)} error${node.read + node.write + node.cksum === 1 ? '' : 's'}`,
    );
  const note = node.note ? ` (${node.note})` : '';
  return {
    pool,
    vdev: node.name,
    path: placeOf(node),
    state: node.state,
    read: node.read,
    write: node.write,
    cksum: node.cksum,
    note: node.note,
    message: `${label} ${pieces.join(' ')}${note}`,
  };
}

/** Judge one parsed pool. */
export function assessPool(pool: PoolStatus, opts: HealthOptions = {}): PoolHealth {
  const problems: string[] = [];
  const notes: string[] = [];
  const vdevProblems: VdevProblem[] = [];
  const nodes = walkVdevs(pool.root);
  const leaves = new Set(leafVdevs(pool.root));
  // Leaves first: "exactly which device" is what an operator needs; the vdevs above only echo it.
  const ordered = [
    ...nodes.filter((n) => leaves.has(n)),
    ...nodes.filter((n) => !leaves.has(n) && n.kind !== 'pool').reverse(),
    ...nodes.filter((n) => n.kind === 'pool'),
  ];
  for (const node of ordered) {
    const problem = problemOf(pool.name, node);
    if (problem) vdevProblems.push(problem);
  }
  problems.push(...vdevProblems.map((p) => p.message));
  if (!GOOD_STATES.has(pool.state) && !vdevProblems.some((p) => p.path === pool.name)) {
    problems.push(`pool ${pool.name} is ${pool.state}`);
  }
  const resilvering = pool.scan?.kind === 'resilver' && pool.scan.inProgress;
  if (resilvering) {
    const pct = pool.scan?.percentDone !== undefined ? ` (${pool.scan.percentDone}% done)` : '';
    problems.push(`pool ${pool.name} is resilvering${pct}: redundancy is not restored yet`);
  } else if (pool.scan?.inProgress) {
    notes.push(`pool ${pool.name}: ${pool.scan.text}`);
  } else if (pool.scan && pool.scan.kind !== 'none') {
    notes.push(`pool ${pool.name} last scan: ${pool.scan.text}`);
  }
  if (pool.errors !== undefined && !/^No known data errors/i.test(pool.errors)) {
    problems.push(`pool ${pool.name} reports data errors: ${pool.errors}`);
  }
  if (opts.capacityPct !== undefined && opts.capacityMaxPct !== undefined && opts.capacityPct > opts.capacityMaxPct) {
    problems.push(`pool ${pool.name} is ${opts.capacityPct}% full, over the ${opts.capacityMaxPct}% limit`);
  }
  return {
    pool: pool.name,
    state: pool.state,
    healthy: problems.length === 0,
    problems,
    vdevProblems,
    notes,
    resilvering,
    capacityPct: opts.capacityPct,
  };
}

export interface ZpoolListRow {
  name: string;
  size: string;
  allocated: string;
  free: string;
  capacityPct: number;
  health: string;
}

/** `zpool list -H -o name,size,allocated,free,capacity,health` (tab-separated, capacity like "14%"). */
export function parseZpoolList(text: string): ZpoolListRow[] {
  const rows: ZpoolListRow[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [name, size, allocated, free, capacity, health] = line.split('\t');
    if (!name || health === undefined) continue;
    rows.push({
      name,
      size: size ?? '',
      allocated: allocated ?? '',
      free: free ?? '',
      capacityPct: Number.parseInt(capacity ?? '', 10),
      health: health.trim(),
    });
  }
  return rows;
}
