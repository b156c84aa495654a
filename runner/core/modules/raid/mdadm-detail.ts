/**
 * `mdadm --detail /dev/mdN` output (mdadm's Detail.c): a "/dev/mdN:" line, "Key : value" fields (aligned
 * with leading spaces), then the device table under "Number Major Minor RaidDevice State", where a row is
 * either a member (`0 8 17 0 active sync /dev/sdb1`), an empty slot (`- 0 0 0 removed`) or a device outside
 * the slots (`0 8 3 - faulty /dev/sda3`, spares). Several outputs may be concatenated (one per array).
 * Pure functions; table-tested with real outputs (test/fixtures/raid/).
 */
import { CairnError } from '../../util/errors.js';

export interface MdadmDevice {
  /** mdadm's device number; null for "-". */
  number: number | null;
  major: number;
  minor: number;
  /** The slot (RaidDevice); null for "-" (faulty or spare devices outside the slots). */
  slot: number | null;
  /** State words: ["active", "sync"], ["removed"], ["faulty"], ["spare", "rebuilding"]... */
  state: string[];
  /** "/dev/sdb1"; absent for removed slots. */
  path?: string;
}

export interface MdadmDetail {
  /** "/dev/md1" as the first line names it. */
  device: string;
  /** Every "Key : value" field, keys as printed ("Raid Level", "State", "Rebuild Status"...). */
  fields: Record<string, string>;
  level?: string;
  /** The State field split at commas: ["clean", "degraded", "recovering"]. */
  state: string[];
  raidDevices?: number;
  totalDevices?: number;
  activeDevices?: number;
  workingDevices?: number;
  failedDevices?: number;
  spareDevices?: number;
  /** "Rebuild Status : 10% complete" (also Resync, Reshape, Check Status): the action and percent. */
  progress?: { action: string; percent: number };
  devices: MdadmDevice[];
}

const FIELD = /^\s*([A-Za-z][A-Za-z ]*?)\s+:\s?(.*)$/;
const TABLE_HEADER = /^\s*Number\s+Major\s+Minor\s+RaidDevice\s+State\s*$/;
const ROW = /^\s*(-|\d+)\s+(\d+)\s+(\d+)\s+(-|\d+)\s+(.*?)\s*$/;

function numberField(fields: Record<string, string>, key: string): number | undefined {
  const value = fields[key];
  return value !== undefined && /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
}

function parseOne(lines: Array<{ text: string; no: number }>, source: string): MdadmDetail {
  const device = lines[0]!.text.trim().replace(/:$/, '');
  const detail: MdadmDetail = { device, fields: {}, state: [], devices: [] };
  let inTable = false;
  for (const { text, no } of lines.slice(1)) {
    if (text.trim() === '') continue;
    if (TABLE_HEADER.test(text)) {
      inTable = true;
      continue;
    }
    if (inTable) {
      const row = ROW.exec(text);
      if (!row)
        throw new CairnError(
          `cannot read this device row of ${device} (expected "Number Major Minor RaidDevice State [device]")`,
          { kind: 'runtime', location: { file: source, line: no }, detail: `${no} | ${text}` },
        );
      const words = row[5]!.split(/\s+/).filter((w) => w !== '');
      const path = words.length > 0 && words[words.length - 1]!.startsWith('/') ? words.pop() : undefined;
      detail.devices.push({
        number: row[1] === '-' ? null : Number(row[1]),
        major: Number(row[2]),
        minor: Number(row[3]),
        slot: row[4] === '-' ? null : Number(row[4]),
        state: words,
        ...(path ? { path } : {}),
      });
      continue;
    }
    const field = FIELD.exec(text);
    if (field) detail.fields[field[1]!.trim()] = field[2]!.trim();
    // Lines that are neither (future mdadm output) are ignored outside the table.
  }
  const f = detail.fields;
  if (f['Raid Level'] !== undefined) detail.level = f['Raid Level'];
  detail.state = (f['State'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const counts = {
    raidDevices: numberField(f, 'Raid Devices'),
    totalDevices: numberField(f, 'Total Devices'),
    activeDevices: numberField(f, 'Active Devices'),
    workingDevices: numberField(f, 'Working Devices'),
    failedDevices: numberField(f, 'Failed Devices'),
    spareDevices: numberField(f, 'Spare Devices'),
  };
  for (const [prop, value] of Object.entries(counts) as Array<[keyof typeof counts, number | undefined]>) {
    if (value !== undefined) detail[prop] = value;
  }
  for (const [key, value] of Object.entries(f)) {
    const m = /^(Rebuild|Resync|Reshape|Check) Status$/.exec(key);
    const pct = /^(\d+(?:\.\d+)?)%/.exec(value);
    if (m && pct) detail.progress = { action: m[1]!.toLowerCase(), percent: Number(pct[1]) };
  }
  return detail;
}

/**
 * Parse one or more concatenated `mdadm --detail` outputs. Text before the first "/dev/...:" line (an
 * error mdadm printed, say) is ignored; an output without any recognisable field is an error.
 */
export function parseMdadmDetails(text: string, source = 'mdadm --detail'): MdadmDetail[] {
  const groups: Array<Array<{ text: string; no: number }>> = [];
  text.split(/\r?\n/).forEach((line, index) => {
    if (/^\/dev\/\S+:\s*$/.test(line)) groups.push([]);
    groups[groups.length - 1]?.push({ text: line, no: index + 1 });
  });
  return groups.map((lines) => {
    const detail = parseOne(lines, source);
    if (Object.keys(detail.fields).length === 0) {
      throw new CairnError(`${detail.device} has no "Key : value" fields (is this mdadm --detail output?)`, {
        kind: 'runtime',
        location: { file: source, line: lines[0]!.no },
      });
    }
    return detail;
  });
}

/** "md1" for "/dev/md1", "/dev/md/1" and "/dev/md/md1"; named arrays ("/dev/md/data") keep their name. */
export function mdName(device: string): string {
  const base = device.replace(/^\/dev\//, '').replace(/^md\//, '');
  return /^\d+$/.test(base) ? `md${base}` : base;
}
