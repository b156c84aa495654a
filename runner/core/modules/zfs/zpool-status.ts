/**
 * `zpool status` parsed into pools and their vdev trees. One parser reads OpenZFS (`scan:`), older
 * Solaris/OpenZFS (`scrub:`) and zfs-fuse 0.7 output alike: header fields (`pool:`, `state:`, `status:`,
 * `action:`, `see:`, `scan:`/`scrub:`, `errors:`) with tab- or space-indented continuation lines, then the
 * `config:` table whose indentation gives the tree. Counters may carry a suffix (`1.2K`), a leaf may carry a
 * note after its counters (`cannot open`, `was /dev/sdb`, `12K resilvered`, `(resilvering)`), and the
 * `logs`/`cache`/`spares`/`special`/`dedup` lines group the vdevs under them.
 */

/** Device states zpool prints (zpoolconcepts(7)); spares print AVAIL / INUSE. Unknown words are kept as is. */
export type VdevState =
  'ONLINE' | 'DEGRADED' | 'FAULTED' | 'OFFLINE' | 'UNAVAIL' | 'REMOVED' | 'AVAIL' | 'INUSE' | 'SPLIT' | (string & {});

/** The groupings `zpool status` prints as their own lines under the pool. */
export const VDEV_CLASSES = ['logs', 'cache', 'spares', 'special', 'dedup'] as const;
export type VdevClass = (typeof VDEV_CLASSES)[number];

export interface VdevNode {
  /** As printed: a device path, a vdev name (mirror-0, raidz1-0, replacing-1) or a GUID for a missing device. */
  name: string;
  /** 0 = the pool's own line, 1 = top-level vdevs and class lines, 2 = their members, ... */
  depth: number;
  kind: 'pool' | 'class' | 'vdev' | 'leaf';
  /** The class this node sits under (logs, cache, ...), if any. */
  vdevClass?: VdevClass;
  /** Absent on a class line that prints no state (OpenZFS prints none for `logs`; K4's example prints one). */
  state?: VdevState;
  read: number;
  write: number;
  cksum: number;
  /** The counters as printed (`0`, `2`, `1.2K`). */
  countersText?: [string, string, string];
  /** Free text after the counters: `cannot open`, `was /dev/...`, `58.5K resilvered`, `(resilvering)`... */
  note?: string;
  /** The names of the vdevs above this one, pool first. */
  parents: string[];
  children: VdevNode[];
}

export interface ScanInfo {
  /** The whole `scan:`/`scrub:` field, continuation lines joined with a space. */
  text: string;
  kind: 'none' | 'scrub' | 'resilver' | 'other';
  inProgress: boolean;
  /** "0.14% done" -> 0.14, when printed. */
  percentDone?: number;
}

export interface PoolStatus {
  name: string;
  state: VdevState;
  status?: string;
  action?: string;
  see?: string;
  scan?: ScanInfo;
  /** The `errors:` field; "No known data errors" on a clean pool. Absent when the output has no errors line. */
  errors?: string;
  /** The pool's own line of the config table; its children are the top-level vdevs and class lines. */
  root?: VdevNode;
}

export interface ZpoolStatusReport {
  pools: PoolStatus[];
  /** `zpool status -x` with nothing to report prints "all pools are healthy". */
  allHealthy: boolean;
  /** "no pools available". */
  noPools: boolean;
}

const HEADER_FIELD = /^\s*(pool|state|status|action|see|scan|scrub|config|errors|id):\s?(.*)$/;

/** A counter as zpool prints it: an integer, or a number with a K/M/G/T suffix (binary multiples, rounded). */
export function parseCounter(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMGTPE]?)$/.exec(text);
  if (!m) return Number.NaN;
  const suffix = m[2] ?? '';
  const power = suffix === '' ? 0 : 'KMGTPE'.indexOf(suffix) + 1;
  return Math.round(Number(m[1]) * 1024 ** power);
}

export function parseScan(text: string): ScanInfo {
  const lower = text.toLowerCase();
  const kind: ScanInfo['kind'] = /^none requested/.test(lower)
    ? 'none'
    : lower.includes('resilver')
      ? 'resilver'
      : lower.includes('scrub')
        ? 'scrub'
        : 'other';
  const inProgress = /in progress/.test(lower);
  const pct = /(\d+(?:[.,]\d+)?)% done/.exec(text);
  const info: ScanInfo = { text, kind, inProgress };
  if (pct) info.percentDone = Number(pct[1]!.replace(',', '.'));
  return info;
}

/** Leading whitespace as columns, a tab advancing to the next multiple of 8 (as a terminal shows it). */
function indentWidth(line: string): number {
  let width = 0;
  for (const ch of line) {
    if (ch === ' ') width++;
    else if (ch === '\t') width = (Math.floor(width / 8) + 1) * 8;
    else break;
  }
  return width;
}

function isCounter(word: string | undefined): boolean {
  return word !== undefined && !Number.isNaN(parseCounter(word));
}

/** One row of the config table, or undefined for a line that is not one (a blank, the heading). */
function parseRow(line: string, baseIndent: number): Omit<VdevNode, 'kind' | 'parents' | 'children'> | undefined {
  if (line.trim() === '') return undefined;
  const depth = Math.max(0, Math.round((indentWidth(line) - baseIndent) / 2));
  const body = line.trim();
  // Split into at most 5 words plus the rest; the note keeps its own spacing.
  const words: string[] = [];
  let rest = body;
  while (words.length < 5) {
    const m = /^(\S+)\s*/.exec(rest);
    if (!m) break;
    words.push(m[1]!);
    rest = rest.slice(m[0].length);
  }
  const [name, state, read, write, cksum] = words;
  if (name === undefined) return undefined;
  const row: Omit<VdevNode, 'kind' | 'parents' | 'children'> = { name, depth, read: 0, write: 0, cksum: 0 };
  if (state === undefined) return row;
  if (isCounter(read) && isCounter(write) && isCounter(cksum)) {
    row.state = state;
    row.read = parseCounter(read!);
    row.write = parseCounter(write!);
    row.cksum = parseCounter(cksum!);
    row.countersText = [read!, write!, cksum!];
    const note = rest.trim();
    if (note) row.note = note;
    return row;
  }
  // A spare (`sdc  AVAIL`) or an import-style row: a state and perhaps a note, no counters.
  row.state = state;
  const note = body.slice(body.indexOf(state) + state.length).trim();
  if (note) row.note = note;
  return row;
}

function buildTree(rows: Array<Omit<VdevNode, 'kind' | 'parents' | 'children'>>): VdevNode | undefined {
  const first = rows[0];
  if (!first) return undefined;
  const minDepth = first.depth;
  const root: VdevNode = { ...first, depth: 0, kind: 'pool', parents: [], children: [] };
  const stack: VdevNode[] = [root];
  // Class lines (logs, cache, spares...) are printed at the pool's own indentation; the vdevs under one sit
  // one level deeper in the tree than their indentation says.
  let underClass = false;
  for (const row of rows.slice(1)) {
    const relative = row.depth - minDepth;
    const isClass = relative <= 1 && (VDEV_CLASSES as readonly string[]).includes(row.name);
    if (isClass) underClass = relative === 0;
    const depth = isClass ? 1 : Math.max(1, relative + (underClass ? 1 : 0));
    while (stack.length > depth) stack.pop();
    const parent = stack[stack.length - 1]!;
    const node: VdevNode = {
      ...row,
      depth,
      kind: isClass ? 'class' : 'leaf',
      parents: [...parent.parents, parent.name],
      children: [],
    };
    if (isClass) node.vdevClass = row.name as VdevClass;
    else if (parent.kind === 'class') node.vdevClass = parent.vdevClass;
    else if (parent.vdevClass) node.vdevClass = parent.vdevClass;
    parent.children.push(node);
    if (parent.kind === 'leaf') parent.kind = 'vdev';
    stack.push(node);
  }
  return root;
}

/** Parse the whole output of `zpool status [-x] [pool...]`. */
export function parseZpoolStatus(text: string): ZpoolStatusReport {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const report: ZpoolStatusReport = {
    pools: [],
    allHealthy: lines.some((l) => l.trim() === 'all pools are healthy'),
    noPools: lines.some((l) => l.trim() === 'no pools available'),
  };
  let pool: PoolStatus | undefined;
  let field: string | undefined;
  let fieldText: string[] = [];
  let inConfig = false;
  let baseIndent = 0;
  let rows: Array<Omit<VdevNode, 'kind' | 'parents' | 'children'>> = [];

  const flushField = (): void => {
    if (!pool || !field) return;
    const value = fieldText.join(' ').replace(/\s+/g, ' ').trim();
    if (field === 'state') pool.state = value;
    else if (field === 'status') pool.status = value;
    else if (field === 'action') pool.action = value;
    else if (field === 'see') pool.see = value;
    else if (field === 'scan' || field === 'scrub') pool.scan = parseScan(value);
    else if (field === 'errors') pool.errors = value;
    field = undefined;
    fieldText = [];
  };
  const flushConfig = (): void => {
    if (pool && rows.length) pool.root = buildTree(rows);
    rows = [];
    inConfig = false;
  };
  const flushPool = (): void => {
    flushField();
    flushConfig();
    if (pool) report.pools.push(pool);
    pool = undefined;
  };

  for (const line of lines) {
    const header = HEADER_FIELD.exec(line);
    // A header field starts at the left margin (at most a few blanks); table rows are indented by a tab or more.
    const isHeader = header !== null && indentWidth(line) < 8 && !(inConfig && /^\s*NAME\s/.test(line));
    if (isHeader) {
      const [, name, value] = header;
      if (name === 'pool') {
        flushPool();
        pool = { name: value!.trim(), state: 'UNKNOWN' };
        continue;
      }
      if (!pool) continue;
      flushField();
      if (name === 'config') {
        inConfig = true;
        baseIndent = -1;
        continue;
      }
      if (inConfig) flushConfig();
      if (name === 'id') continue;
      field = name;
      fieldText = [value ?? ''];
      continue;
    }
    if (!pool) continue;
    if (inConfig) {
      if (/^\s*NAME\s+STATE\b/.test(line)) {
        baseIndent = indentWidth(line);
        continue;
      }
      if (baseIndent < 0) continue;
      const row = parseRow(line, baseIndent);
      if (row) rows.push(row);
      continue;
    }
    if (field && line.trim() !== '') {
      // Continuation of a multi-line field (status, action, scan progress lines, error file lists).
      fieldText.push(line.trim());
    } else if (line.trim() === '') {
      if (field !== 'errors') flushField();
    }
  }
  flushPool();
  return report;
}

/** Every node of a pool's tree, depth first, the pool's own line included. */
export function walkVdevs(root: VdevNode | undefined): VdevNode[] {
  if (!root) return [];
  const out: VdevNode[] = [];
  const visit = (node: VdevNode): void => {
    out.push(node);
    node.children.forEach(visit);
  };
  visit(root);
  return out;
}

/** The leaves (disks, files, missing-device GUIDs) of a pool. */
export function leafVdevs(root: VdevNode | undefined): VdevNode[] {
  return walkVdevs(root).filter((node) => node.kind === 'leaf');
}
