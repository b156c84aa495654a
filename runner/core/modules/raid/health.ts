/**
 * The verdict on each md array, from /proc/mdstat and (when available) `mdadm --detail`: healthy, resyncing
 * (complete, being checked or synced), recovering (a missing member being rebuilt), degraded (members
 * missing, nothing rebuilding), failed (a member kicked out with (F)/"faulty", or the array FAILED) or
 * inactive (not running). mdstat is what the kernel says now; mdadm adds names for failed devices and the
 * slots that are empty. Pure; table-tested with real outputs.
 */
import { mdName, type MdadmDetail } from './mdadm-detail.js';
import type { MdArray, Mdstat } from './mdstat.js';

export type RaidVerdict = 'healthy' | 'resyncing' | 'recovering' | 'degraded' | 'failed' | 'inactive';

export interface RaidProgress {
  action: string;
  percent?: number;
  finishMinutes?: number;
  speedKiBps?: number;
  waiting?: 'delayed' | 'pending';
}

export interface ArrayHealth {
  name: string;
  level: string | null;
  /** The kernel's word ("active", "inactive", "active (auto-read-only)"), or mdadm's State when only it knows. */
  state: string;
  verdict: RaidVerdict;
  /** The verdict passes (healthy, resyncing, and recovering when allowed). */
  ok: boolean;
  /** Every known member, with its role: "sda1", "sdb1 (faulty)", "sdc (spare)". */
  members: string[];
  /** Devices kicked out: "sdb1", "/dev/sda3". */
  failed: string[];
  /** Empty slots: "slot 1". */
  missing: string[];
  /** "[2/1] [U_]" from mdstat, or "[2/1]" from mdadm's counts. */
  slots?: string;
  progress?: RaidProgress;
  /** Where the facts came from. */
  sources: Array<'mdstat' | 'mdadm'>;
  /** One line: "md3 (raid1): failed: member sdb1 is faulty (F); [2/2] [U_]". */
  message: string;
}

export interface RaidOptions {
  /** A degraded array that is rebuilding passes (with its progress in the message). Default true. */
  allowRecovering?: boolean;
}

/** "5-23" for 5,6,...,23; "17, 19" for two apart. */
export function compressNumbers(numbers: number[]): string {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j - i >= 2 ? `${sorted[i]}-${sorted[j]}` : sorted.slice(i, j + 1).join(', '));
    i = j + 1;
  }
  return parts.join(', ');
}

function memberLabel(device: string, roles: string[]): string {
  return roles.length > 0 ? `${device} (${roles.join(', ')})` : device;
}

function describeProgress(p: RaidProgress): string {
  if (p.waiting) return `${p.action} ${p.waiting}`;
  const parts = [`${p.action} ${p.percent ?? '?'}% done`];
  if (p.speedKiBps !== undefined) parts.push(`${p.speedKiBps}K/sec`);
  if (p.finishMinutes !== undefined) parts.push(`about ${p.finishMinutes} min left`);
  return parts.join(', ');
}

interface Facts {
  name: string;
  level: string | null;
  state: string;
  active: boolean;
  members: string[];
  failed: string[];
  missingSlots: number[];
  missingCount: number;
  slots?: string;
  progress?: RaidProgress;
  detailState: string[];
  sources: Array<'mdstat' | 'mdadm'>;
}

function fromMdstat(array: MdArray): Facts {
  const missingSlots: number[] = [];
  [...(array.slotMap ?? '')].forEach((c, i) => {
    if (c === '_') missingSlots.push(i);
  });
  const counted =
    array.raidDisks !== undefined && array.workingDisks !== undefined
      ? Math.max(0, array.raidDisks - array.workingDisks)
      : 0;
  return {
    name: array.name,
    level: array.level ?? null,
    state: array.active ? `active${array.readOnly ? ` (${array.readOnly})` : ''}` : 'inactive',
    active: array.active,
    members: array.members.map((m) =>
      memberLabel(
        m.device,
        [
          m.faulty ? 'faulty' : '',
          m.spare ? 'spare' : '',
          m.writeMostly ? 'write-mostly' : '',
          m.journal ? 'journal' : '',
          m.replacement ? 'replacement' : '',
        ].filter((r) => r !== ''),
      ),
    ),
    failed: array.members.filter((m) => m.faulty).map((m) => m.device),
    missingSlots,
    // 2.4 kernels could print [2/2] next to [U_]: the map is the truth when there is one.
    missingCount: array.slotMap !== undefined ? missingSlots.length : counted,
    ...(array.slotMap !== undefined || array.raidDisks !== undefined
      ? {
          slots: [
            array.raidDisks !== undefined ? `[${array.raidDisks}/${array.workingDisks}]` : '',
            array.slotMap ? `[${array.slotMap}]` : '',
          ]
            .filter((s) => s)
            .join(' '),
        }
      : {}),
    ...(array.sync ? { progress: { ...array.sync } } : {}),
    detailState: [],
    sources: ['mdstat'],
  };
}

function fromDetail(detail: MdadmDetail): Facts {
  // Empty slots, and slots whose new member is still being rebuilt (not in sync yet).
  const removed = detail.devices
    .filter((d) => (d.state.includes('removed') || d.state.includes('rebuilding')) && d.slot !== null)
    .map((d) => d.slot!);
  const raid = detail.raidDevices;
  const active = detail.activeDevices;
  return {
    name: mdName(detail.device),
    level: detail.level ?? null,
    state: detail.state.join(', ') || 'unknown',
    active: !detail.state.includes('inactive'),
    members: detail.devices
      .filter((d) => d.path)
      .map((d) =>
        memberLabel(
          d.path!,
          d.state.filter((w) => w !== 'active' && w !== 'sync'),
        ),
      ),
    failed: detail.devices.filter((d) => d.state.includes('faulty') && d.path).map((d) => d.path!),
    missingSlots: removed,
    missingCount: Math.max(removed.length, raid !== undefined && active !== undefined ? raid - active : 0),
    ...(raid !== undefined && active !== undefined ? { slots: `[${raid}/${active}]` } : {}),
    ...(detail.progress ? { progress: { action: detail.progress.action, percent: detail.progress.percent } } : {}),
    detailState: detail.state,
    sources: ['mdadm'],
  };
}

/** mdstat's facts, with what mdadm adds: failed device names, removed slots, its State words. */
function merge(kernel: Facts, detail: Facts): Facts {
  return {
    ...kernel,
    failed: [...new Set([...kernel.failed, ...detail.failed.map((p) => p.replace(/^\/dev\//, ''))])],
    missingSlots: [...new Set([...kernel.missingSlots, ...detail.missingSlots])],
    missingCount: Math.max(kernel.missingCount, detail.missingCount),
    progress: kernel.progress ?? detail.progress,
    detailState: detail.detailState,
    level: kernel.level ?? detail.level,
    sources: ['mdstat', 'mdadm'],
  };
}

function judge(f: Facts, opts: RaidOptions): ArrayHealth {
  const rebuilding =
    (f.progress !== undefined &&
      (f.progress.action === 'recovery' || f.progress.action === 'reshape' || f.progress.action === 'rebuild')) ||
    f.detailState.includes('recovering') ||
    f.detailState.includes('reshaping');
  const degraded = f.missingCount > 0 || f.detailState.includes('degraded');
  let verdict: RaidVerdict;
  if (!f.active) verdict = 'inactive';
  else if (f.failed.length > 0 || f.detailState.includes('FAILED')) verdict = 'failed';
  else if (degraded) verdict = rebuilding ? 'recovering' : 'degraded';
  else if (f.progress !== undefined || f.detailState.includes('resyncing')) verdict = 'resyncing';
  else verdict = 'healthy';
  const ok =
    verdict === 'healthy' || verdict === 'resyncing' || (verdict === 'recovering' && (opts.allowRecovering ?? true));

  const reasons: string[] = [];
  if (verdict === 'inactive')
    reasons.push(`not running${f.members.length ? ` (members: ${f.members.join(', ')})` : ''}`);
  for (const device of f.failed) reasons.push(`member ${device} is faulty`);
  if (f.missingCount > 0) {
    const which =
      f.missingSlots.length > 0
        ? ` (${f.missingSlots.length === 1 ? 'slot' : 'slots'} ${compressNumbers(f.missingSlots)})`
        : '';
    reasons.push(`${f.missingCount} ${f.missingCount === 1 ? 'member' : 'members'} missing${which}`);
  }
  if (f.failed.length === 0 && f.missingCount === 0 && degraded) reasons.push(`mdadm says ${f.detailState.join(', ')}`);
  if (f.progress) reasons.push(describeProgress(f.progress));
  const present =
    verdict !== 'inactive' && verdict !== 'healthy' && f.members.length > 0 ? `members: ${f.members.join(', ')}` : '';
  const tail = [f.slots, present].filter((s) => s).join('; ');
  const head = `${f.name}${f.level ? ` (${f.level})` : ''}: ${verdict}`;
  const message = `${head}${reasons.length ? `: ${reasons.join('; ')}` : ''}${tail ? `; ${tail}` : ''}`;
  return {
    name: f.name,
    level: f.level,
    state: f.state,
    verdict,
    ok,
    members: f.members,
    failed: f.failed,
    missing: f.missingSlots.map((s) => `slot ${s}`),
    ...(f.slots ? { slots: f.slots } : {}),
    ...(f.progress ? { progress: f.progress } : {}),
    sources: f.sources,
    message,
  };
}

/** One verdict per array: every array of mdstat (with its mdadm detail if given), then arrays only mdadm knows. */
export function assessRaid(
  mdstat: Mdstat | undefined,
  details: MdadmDetail[] = [],
  opts: RaidOptions = {},
): ArrayHealth[] {
  const byName = new Map(details.map((d) => [mdName(d.device), d]));
  const out: ArrayHealth[] = [];
  for (const array of mdstat?.arrays ?? []) {
    const detail = byName.get(array.name);
    byName.delete(array.name);
    const kernel = fromMdstat(array);
    out.push(judge(detail ? merge(kernel, fromDetail(detail)) : kernel, opts));
  }
  for (const detail of byName.values()) out.push(judge(fromDetail(detail), opts));
  return out;
}

export interface RaidSummary {
  ok: boolean;
  /** Failing arrays' messages joined, or what passed ("3 md arrays healthy"; "no md arrays"). */
  message: string;
  /** Notes on arrays that pass but are not plainly healthy (resync, rebuild progress). */
  notes: string[];
}

export function summariseRaid(arrays: ArrayHealth[]): RaidSummary {
  const failing = arrays.filter((a) => !a.ok);
  const notes = arrays.filter((a) => a.ok && a.verdict !== 'healthy').map((a) => a.message);
  if (arrays.length === 0) return { ok: true, message: 'no md arrays', notes };
  if (failing.length > 0) return { ok: false, message: failing.map((a) => a.message).join(' | '), notes };
  const count = `${arrays.length} md ${arrays.length === 1 ? 'array' : 'arrays'}`;
  if (notes.length === 0) return { ok: true, message: `${count} healthy`, notes };
  const healthy = arrays.length - notes.length;
  return {
    ok: true,
    message: `${count} ${arrays.length === 1 ? 'passes' : 'pass'} (${healthy} healthy): ${notes.join(' | ')}`,
    notes,
  };
}
