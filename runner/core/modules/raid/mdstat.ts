/**
 * /proc/mdstat as the md driver prints it (drivers/md/md.c, md_seq_show), from Linux 2.4's raidtools era to
 * today: a "Personalities" line, an optional "read_ahead" line (2.4), one block per array, and "unused
 * devices". An array block is its header line (`md1 : active raid1 sdb1[1](F) sda1[0]`), then continuation
 * lines: the size/status line (`3068288 blocks [2/1] [U_]`), an optional sync progress line (`recovery =
 * 8.1% (251596/3068288) finish=6.7min speed=6963K/sec`, or `resync=DELAYED`), an optional `bitmap:` line.
 * Continuation lines are recognised by content, not indentation (copies on web pages often lose it).
 * Pure functions; table-tested with real outputs (test/fixtures/raid/).
 */
import { CairnError } from '../../util/errors.js';

export interface MdMember {
  /** Kernel name of the component device: "sdb1", "nvme0n1p3". */
  device: string;
  /** The descriptor number in brackets (not necessarily the slot: a rebuilt member gets a new number). */
  number: number;
  /** (F): kicked out after an error. */
  faulty: boolean;
  /** (S): a spare (every member of an inactive array is listed as one). */
  spare: boolean;
  /** (W): write-mostly. */
  writeMostly: boolean;
  /** (J): the array's journal device. */
  journal: boolean;
  /** (R): a replacement being built for another member. */
  replacement: boolean;
}

export type SyncAction = 'resync' | 'recovery' | 'reshape' | 'check' | 'repair';

export interface MdSync {
  action: SyncAction;
  /** Percent done, when running. */
  percent?: number;
  /** Blocks done and to do, as printed in parentheses. */
  done?: number;
  total?: number;
  /** Estimated minutes left ("finish=6.7min"). */
  finishMinutes?: number;
  /** KiB per second ("speed=6963K/sec"). */
  speedKiBps?: number;
  /** "resync=DELAYED" (waits for another array on the same disks) or "=PENDING" (read-only, not started). */
  waiting?: 'delayed' | 'pending';
}

export interface MdArray {
  /** "md0", "md127", "md_d0". */
  name: string;
  active: boolean;
  /** "(read-only)" or "(auto-read-only)" after active. */
  readOnly?: 'read-only' | 'auto-read-only';
  /** "raid1", "raid5", "linear"...; absent for inactive arrays, which print none. */
  level?: string;
  members: MdMember[];
  blocks?: number;
  /** "super 1.2"; absent for 0.90 metadata, which prints none. */
  metadata?: string;
  /** [raidDisks/workingDisks] of redundant levels. */
  raidDisks?: number;
  workingDisks?: number;
  /** The [UU_] map, one character per slot: U = in sync, _ = missing or not yet in sync. */
  slotMap?: string;
  sync?: MdSync;
  /** "0/1 pages [0KB], 65536KB chunk". */
  bitmap?: string;
  /** Line of the array's header in the text, 1-based. */
  line: number;
}

export interface Mdstat {
  personalities: string[];
  arrays: MdArray[];
  /** Devices md knows but no array uses (the "unused devices" line; "<none>" gives []). */
  unusedDevices: string[];
}

const HEADER = /^(md[\w.-]*)\s*:\s*(active|inactive)\b(.*)$/;
const MEMBER = /^([^\s[\]]+)\[(\d+)\]((?:\([A-Za-z]\))*)$/;
const STATUS = /^(\d+)\s+blocks\b(.*)$/;
const SYNC = /\b(resync|recovery|reshape|check|repair)\s*=\s*(?:(DELAYED|PENDING)\b|([\d.]+)%)/;

function fault(source: string, line: number, message: string, text: string): CairnError {
  return new CairnError(message, { kind: 'runtime', location: { file: source, line }, detail: `${line} | ${text}` });
}

function parseMember(word: string): MdMember | undefined {
  const m = MEMBER.exec(word);
  if (!m) return undefined;
  const flags = m[3] ?? '';
  return {
    device: m[1]!,
    number: Number(m[2]),
    faulty: flags.includes('(F)'),
    spare: flags.includes('(S)'),
    writeMostly: flags.includes('(W)'),
    journal: flags.includes('(J)'),
    replacement: flags.includes('(R)'),
  };
}

/** The header after "active"/"inactive": read-only marks, the level, then members. */
function parseHeaderRest(rest: string, array: MdArray, source: string, lineNo: number, text: string): void {
  const words = rest
    .trim()
    .split(/\s+/)
    .filter((w) => w !== '');
  for (const word of words) {
    if (word === '(read-only)' || word === '(auto-read-only)') {
      array.readOnly = word.slice(1, -1) as MdArray['readOnly'];
      continue;
    }
    const member = parseMember(word);
    if (member) {
      array.members.push(member);
      continue;
    }
    if (array.level === undefined && array.members.length === 0 && /^[a-z][a-z0-9_-]*$/i.test(word)) {
      array.level = word;
      continue;
    }
    throw fault(
      source,
      lineNo,
      `cannot read "${word}" in the header of ${array.name} (expected a level like raid1, then members like sda1[0](F))`,
      text,
    );
  }
}

function parseStatus(rest: string, array: MdArray): void {
  const superMatch = /\bsuper\s+(\S+)/.exec(rest);
  if (superMatch) array.metadata = superMatch[1];
  const counts = /\[(\d+)\/(\d+)\]/.exec(rest);
  if (counts) {
    array.raidDisks = Number(counts[1]);
    array.workingDisks = Number(counts[2]);
  }
  const map = /\[([U_]+)\]/.exec(rest);
  if (map) array.slotMap = map[1];
}

function parseSync(text: string): MdSync | undefined {
  const m = SYNC.exec(text);
  if (!m) return undefined;
  const sync: MdSync = { action: m[1] as SyncAction };
  if (m[2]) {
    sync.waiting = m[2].toLowerCase() as 'delayed' | 'pending';
    return sync;
  }
  sync.percent = Number(m[3]);
  const blocks = /\((\d+)\/(\d+)\)/.exec(text);
  if (blocks) {
    sync.done = Number(blocks[1]);
    sync.total = Number(blocks[2]);
  }
  const finish = /\bfinish\s*=\s*([\d.]+)min/.exec(text);
  if (finish) sync.finishMinutes = Number(finish[1]);
  const speed = /\bspeed\s*=\s*(\d+)K\/sec/.exec(text);
  if (speed) sync.speedKiBps = Number(speed[1]);
  return sync;
}

/**
 * Parse the text of /proc/mdstat. `source` names it in errors ("web1:/proc/mdstat"). Lines the driver may
 * add in future kernels are tolerated inside an array block; a header that cannot be read is an error,
 * because guessing there would hide a failed member.
 */
export function parseMdstat(text: string, source = '/proc/mdstat'): Mdstat {
  const result: Mdstat = { personalities: [], arrays: [], unusedDevices: [] };
  let current: MdArray | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = raw.trim();
    if (line === '') return;
    if (/^Personalities\s*:/.test(line)) {
      result.personalities = (line.match(/\[([^\]]+)\]/g) ?? []).map((p) => p.slice(1, -1));
      // 2.4 kernels could print "read_ahead ..." on the same line.
      current = undefined;
      return;
    }
    if (/^read_ahead\b/.test(line)) return;
    if (/^unused devices\s*:/.test(line)) {
      const rest = line.replace(/^unused devices\s*:/, '').trim();
      result.unusedDevices =
        rest === '' || rest === '<none>' ? [] : rest.split(/\s+/).map((w) => w.replace(/\[\d+\].*$/, ''));
      current = undefined;
      return;
    }
    const header = HEADER.exec(line);
    if (header) {
      current = { name: header[1]!, active: header[2] === 'active', members: [], line: lineNo };
      parseHeaderRest(header[3] ?? '', current, source, lineNo, raw);
      result.arrays.push(current);
      return;
    }
    if (/^md[\w.-]*\s*:/.test(line))
      throw fault(
        source,
        lineNo,
        'cannot read this array header (expected "mdN : active|inactive [level] members...")',
        raw,
      );
    if (!current)
      throw fault(
        source,
        lineNo,
        'a line outside any array block (expected "Personalities", "mdN : ..." or "unused devices")',
        raw,
      );
    const status = STATUS.exec(line);
    if (status && current.blocks === undefined) {
      current.blocks = Number(status[1]);
      parseStatus(status[2] ?? '', current);
      // 2.4 kernels printed the progress on the status line itself ("[2/2] [UU] resync=1% finish=12.3min").
      const inline = parseSync(line);
      if (inline) current.sync = inline;
      return;
    }
    if (/^bitmap\s*:/.test(line)) {
      current.bitmap = line.replace(/^bitmap\s*:\s*/, '');
      return;
    }
    const sync = parseSync(line);
    if (sync) current.sync = sync;
    // Anything else (a future kernel's extra line) belongs to the array and is ignored.
  });
  return result;
}
