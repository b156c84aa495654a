/**
 * Parsers for the JSON of the ceph commands verification reads: `ceph -s -f json` (status), `ceph
 * quorum_status -f json` (which monitors exist and which are in quorum), `ceph osd tree -f json` (OSDs per
 * CRUSH host, up and in), `ceph osd pool ls detail -f json` and `ceph osd crush rule dump -f json` (pool
 * replication and failure domain). Field names are Ceph 16's; Nautilus' nested `osdmap.osdmap` is accepted.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { CephOutputError, parseHealthJson, type HealthReport } from './health.js';

export interface PgStateCount {
  state: string;
  count: number;
}

export interface CephStatus {
  fsid: string;
  health: HealthReport;
  quorumNames: string[];
  monCount: number;
  osds: { total: number; up: number; in: number };
  pgs: { total: number; byState: PgStateCount[] };
  pools: number;
  /** A manager is active (mgrmap.available). */
  mgrAvailable: boolean;
  mgrStandbys: number;
  /** "objects degraded" counters, when Ceph reports them (only while something is degraded). */
  degradedObjects?: number;
  degradedTotal?: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function num(value: unknown, fallback = 0): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function record(value: unknown, command: string): Record<string, unknown> {
  if (!isRecord(value)) throw new CephOutputError(`\`${command}\`: expected a JSON object`);
  return value;
}

function list(value: unknown, command: string): unknown[] {
  if (!Array.isArray(value)) throw new CephOutputError(`\`${command}\`: expected a JSON list`);
  return value;
}

export function parseStatusJson(value: unknown): CephStatus {
  const command = 'ceph -s -f json';
  const root = record(value, command);
  if (typeof root.fsid !== 'string') throw new CephOutputError(`\`${command}\`: no fsid`);
  const osdmapOuter = isRecord(root.osdmap) ? root.osdmap : {};
  const osdmap = isRecord(osdmapOuter.osdmap) ? osdmapOuter.osdmap : osdmapOuter;
  const pgmap = isRecord(root.pgmap) ? root.pgmap : {};
  const monmap = isRecord(root.monmap) ? root.monmap : {};
  const mgrmap = isRecord(root.mgrmap) ? root.mgrmap : {};
  const byState = Array.isArray(pgmap.pgs_by_state)
    ? pgmap.pgs_by_state.filter(isRecord).map((s) => ({ state: String(s.state_name ?? ''), count: num(s.count) }))
    : [];
  const status: CephStatus = {
    fsid: root.fsid,
    health: parseHealthJson(root.health, command),
    quorumNames: strings(root.quorum_names),
    monCount: num(monmap.num_mons, Array.isArray(monmap.mons) ? monmap.mons.length : 0),
    osds: { total: num(osdmap.num_osds), up: num(osdmap.num_up_osds), in: num(osdmap.num_in_osds) },
    pgs: {
      total: num(
        pgmap.num_pgs,
        byState.reduce((n, s) => n + s.count, 0),
      ),
      byState,
    },
    pools: num(pgmap.num_pools),
    mgrAvailable: mgrmap.available === true,
    mgrStandbys: num(mgrmap.num_standbys, Array.isArray(mgrmap.standbys) ? mgrmap.standbys.length : 0),
  };
  if (typeof pgmap.degraded_objects === 'number') status.degradedObjects = pgmap.degraded_objects;
  if (typeof pgmap.degraded_total === 'number') status.degradedTotal = pgmap.degraded_total;
  return status;
}

/** PGs whose state is exactly active+clean (the states Ceph lists are "+"-joined, in its own order). */
export function activeCleanPgs(status: CephStatus): number {
  return status.pgs.byState.filter((s) => isActiveClean(s.state)).reduce((n, s) => n + s.count, 0);
}

export function isActiveClean(state: string): boolean {
  const parts = new Set(state.split('+'));
  // scrubbing / deep are routine background work on a clean PG.
  for (const routine of ['scrubbing', 'deep']) parts.delete(routine);
  return parts.size === 2 && parts.has('active') && parts.has('clean');
}

export interface QuorumStatus {
  quorumNames: string[];
  monNames: string[];
  leader?: string;
}

export function parseQuorumStatusJson(value: unknown): QuorumStatus {
  const command = 'ceph quorum_status -f json';
  const root = record(value, command);
  const monmap = isRecord(root.monmap) ? root.monmap : {};
  const mons = Array.isArray(monmap.mons) ? monmap.mons.filter(isRecord).map((m) => String(m.name ?? '')) : [];
  const out: QuorumStatus = { quorumNames: strings(root.quorum_names), monNames: mons };
  if (typeof root.quorum_leader_name === 'string') out.leader = root.quorum_leader_name;
  return out;
}

export interface OsdNode {
  id: number;
  name: string;
  /** The CRUSH host bucket it sits under ('' when none: a stray or an OSD placed directly under a root). */
  host: string;
  up: boolean;
  in: boolean;
}

/** `ceph osd tree -f json`: every OSD with its CRUSH host, up (status) and in (reweight > 0). */
export function parseOsdTreeJson(value: unknown): OsdNode[] {
  const command = 'ceph osd tree -f json';
  const root = record(value, command);
  const nodes = list(root.nodes ?? [], command).filter(isRecord);
  const hostOf = new Map<number, string>();
  for (const node of nodes) {
    if (node.type !== 'host') continue;
    for (const child of Array.isArray(node.children) ? node.children : [])
      if (typeof child === 'number') hostOf.set(child, String(node.name ?? ''));
  }
  const osds = [...nodes, ...(Array.isArray(root.stray) ? root.stray.filter(isRecord) : [])]
    .filter(
      (n) =>
        n.type === 'osd' ||
        (typeof n.id === 'number' && n.id >= 0 && typeof n.name === 'string' && n.name.startsWith('osd.')),
    )
    .map((n) => {
      const id = num(n.id, -1);
      return {
        id,
        name: String(n.name ?? `osd.${id}`),
        host: hostOf.get(id) ?? '',
        up: n.status === 'up',
        in: num(n.reweight) > 0,
      };
    });
  return osds.sort((a, b) => a.id - b.id);
}

export interface PoolInfo {
  name: string;
  id: number;
  size: number;
  minSize: number;
  ruleId: number;
  /** PGs the pool has (or is heading to, while the autoscaler changes it). */
  pgNum: number;
  applications: string[];
}

/** `ceph osd pool ls detail -f json`. */
export function parsePoolsJson(value: unknown): PoolInfo[] {
  const command = 'ceph osd pool ls detail -f json';
  return list(value, command)
    .filter(isRecord)
    .map((p) => ({
      name: String(p.pool_name ?? ''),
      id: num(p.pool_id ?? p.pool, -1),
      size: num(p.size),
      minSize: num(p.min_size),
      ruleId: num(p.crush_rule, -1),
      pgNum: num(p.pg_num),
      applications: isRecord(p.application_metadata) ? Object.keys(p.application_metadata) : [],
    }));
}

export interface CrushRule {
  id: number;
  name: string;
  /** The bucket type the rule spreads copies over (its chooseleaf/choose step's type), e.g. "host". */
  failureDomain?: string;
  root?: string;
}

/** `ceph osd crush rule dump -f json`. */
export function parseCrushRulesJson(value: unknown): CrushRule[] {
  const command = 'ceph osd crush rule dump -f json';
  return list(value, command)
    .filter(isRecord)
    .map((r) => {
      const steps = Array.isArray(r.steps) ? r.steps.filter(isRecord) : [];
      const choose = steps.find((s) => typeof s.op === 'string' && s.op.startsWith('choose'));
      const take = steps.find((s) => s.op === 'take');
      const rule: CrushRule = { id: num(r.rule_id, -1), name: String(r.rule_name ?? '') };
      if (choose && typeof choose.type === 'string') rule.failureDomain = choose.type;
      if (take && typeof take.item_name === 'string') rule.root = take.item_name;
      return rule;
    });
}

/** PGs whose state includes "degraded" (fewer copies than the pool's size while an OSD is away). */
export function degradedPgs(status: CephStatus): number {
  return status.pgs.byState.filter((s) => s.state.split('+').includes('degraded')).reduce((n, s) => n + s.count, 0);
}

// ---------------------------------------------------------------------------------------- osd dump: addresses

/** One OSD's addresses from `ceph osd dump -f json` (the distinct IPs, without port and nonce). */
export interface OsdAddresses {
  id: number;
  up: boolean;
  /** Where clients and monitors reach it (public_addrs). */
  publicIps: string[];
  /** Where it replicates and recovers with other OSDs (cluster_addrs). */
  clusterIps: string[];
}

/** "10.77.0.41:6800" or "[fd00::1]:6800" (entity_addr_t as Ceph prints it) to the IP. */
function addrIp(addr: string, what: string): string {
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(addr);
  if (v4 && isIPv4(v4[1]!)) return v4[1]!;
  const v6 = /^\[([0-9A-Fa-f:.]+)\]:\d{1,5}$/.exec(addr);
  if (v6 && isIPv6(v6[1]!)) return v6[1]!;
  throw new CephOutputError(
    `\`ceph osd dump -f json\`: ${what}: ${JSON.stringify(addr.slice(0, 80))} is not an address`,
  );
}

/** An entity_addrvec_t ({"addrvec": [{"type", "addr", "nonce"}...]}), strictly: anything else is an error. */
function addrvecIps(value: unknown, what: string): string[] {
  const command = 'ceph osd dump -f json';
  if (!isRecord(value) || !Array.isArray(value.addrvec))
    throw new CephOutputError(`\`${command}\`: ${what}: no addrvec`);
  const ips = value.addrvec.map((entry, i) => {
    if (!isRecord(entry) || typeof entry.type !== 'string' || typeof entry.addr !== 'string')
      throw new CephOutputError(`\`${command}\`: ${what}[${i}]: expected {type, addr, nonce}`);
    return addrIp(entry.addr, `${what}[${i}]`);
  });
  // The v2 and v1 entries of one daemon share an IP: each IP once.
  return [...new Set(ips)];
}

/**
 * `ceph osd dump -f json`: each OSD's public and cluster addresses (OSDMap::dump in Ceph's src/osd/OSDMap.cc:
 * "osds": [{"osd", "up", "in", ..., "public_addrs", "cluster_addrs", ...}]). Strict: an entry that is not
 * that shape fails the parse, so a verdict is never built on output cairn did not understand. An OSD that
 * never came up has empty address vectors.
 */
export function parseOsdDumpJson(value: unknown): OsdAddresses[] {
  const command = 'ceph osd dump -f json';
  const root = record(value, command);
  return list(root.osds, `${command} .osds`).map((entry, i) => {
    if (!isRecord(entry)) throw new CephOutputError(`\`${command}\`: osds[${i}] is not an object`);
    const id = entry.osd;
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0)
      throw new CephOutputError(`\`${command}\`: osds[${i}] has no OSD id`);
    if (entry.up !== 0 && entry.up !== 1) throw new CephOutputError(`\`${command}\`: osd.${id}: "up" is not 0 or 1`);
    return {
      id,
      up: entry.up === 1,
      publicIps: addrvecIps(entry.public_addrs, `osd.${id} public_addrs`),
      clusterIps: addrvecIps(entry.cluster_addrs, `osd.${id} cluster_addrs`),
    };
  });
}

/** Whether `ip` is inside `cidr` ("10.77.0.0/24", "fd00::/64"); net.BlockList does the arithmetic. */
export function inNetwork(ip: string, cidr: string): boolean {
  const match = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(cidr);
  const family = match ? (isIPv4(match[1]!) ? 'ipv4' : isIPv6(match[1]!) ? 'ipv6' : undefined) : undefined;
  if (!match || !family || Number(match[2]) > (family === 'ipv4' ? 32 : 128))
    throw new CephOutputError(`${JSON.stringify(cidr)} is not a network (CIDR)`);
  const blocks = new BlockList();
  blocks.addSubnet(match[1]!, Number(match[2]), family);
  return blocks.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6');
}
