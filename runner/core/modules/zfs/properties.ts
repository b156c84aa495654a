/**
 * Dataset properties: what this ZFS supports (read from the property table `zfs get` prints as its usage,
 * on OpenZFS and zfs-fuse alike), how a wanted value compares with the current one (sizes in bytes, on/off
 * for booleans), and the nearest supported value when this ZFS lacks a wanted one (zfs-fuse, pool version 23,
 * has no lz4): the substitution is always reported, never silent.
 */

export type WantedValue = string | number | boolean;

/** Properties whose values are sizes: compared in bytes (`zfs get -p`). */
export const SIZE_PROPERTIES: ReadonlySet<string> = new Set([
  'quota',
  'refquota',
  'reservation',
  'refreservation',
  'recordsize',
  'volsize',
  'volblocksize',
  'special_small_blocks',
]);

/**
 * A size as zfs takes it ("90G", "512M", "1.5T", "4096", "none") in bytes; zfs's suffixes are binary
 * (K = 1024). "none" and "0" are 0. Undefined for text that is not a size.
 */
export function sizeToBytes(text: string): number | undefined {
  const t = text.trim();
  if (t === 'none') return 0;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGTPEZ]?)(i?B?)?$/i.exec(t);
  if (!m) return undefined;
  const power = m[2] ? 'KMGTPEZ'.indexOf(m[2].toUpperCase()) + 1 : 0;
  return Math.round(Number(m[1]) * 1024 ** power);
}

/** The wanted value as zfs would print it back: booleans as on/off, numbers as text. */
export function wantedText(value: WantedValue): string {
  if (value === true) return 'on';
  if (value === false) return 'off';
  return String(value);
}

/** Does the current value (from `zfs get -H -p`) already equal the wanted one? */
export function valueMatches(property: string, wanted: string, currentParsable: string): boolean {
  if (SIZE_PROPERTIES.has(property)) {
    const w = sizeToBytes(wanted);
    const c = currentParsable === '-' || currentParsable === 'none' ? 0 : Number(currentParsable);
    if (w !== undefined && !Number.isNaN(c)) return w === c;
  }
  return wanted === currentParsable;
}

/**
 * The values each editable property accepts, from the table `zfs get` (no arguments) prints on stderr:
 * "	compression     YES      YES   on | off | lzjb | gzip | gzip-[1-9] | zle". Free-form values
 * ("<size> | none", "<path> | legacy | none") are kept as written; `accepts` treats <...> as anything.
 */
export function parsePropertyTable(usage: string): Map<string, string[]> {
  const table = new Map<string, string[]>();
  let inTable = false;
  for (const line of usage.split('\n')) {
    if (/^\s*PROPERTY\s+EDIT\s+INHERIT\s+VALUES/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    const m = /^\s+([a-z0-9_:@.]+)\s+(YES|NO)\s+(YES|NO)\s+(.*)$/.exec(line);
    if (!m) {
      // The table ends where the prose after it starts.
      if (/^(Sizes are|User-defined|The \{)/.test(line.trim())) inTable = false;
      continue;
    }
    table.set(
      m[1]!,
      m[4]!
        .split('|')
        .map((v) => v.trim())
        .filter((v) => v !== ''),
    );
  }
  return table;
}

/** A value pattern from the table ("gzip-[1-9]", "zstd-fast-[1-10,20,30,...]") as a test. */
function patternAccepts(pattern: string, value: string): boolean {
  // Free-form descriptions ("<size>", "512 to 128k, power of 2", "share(1M) options") accept anything.
  if (/[<\s(]/.test(pattern)) return true;
  if (pattern === value) return true;
  const optional = /^([^[]*)\[(,[^\]]*)\]$/.exec(pattern);
  if (optional) return value === optional[1] || value === `${optional[1]}${optional[2]}`;
  const range = /^(.*)\[(\d+)-(\d+)(?:,[^\]]*)?\]$/.exec(pattern);
  if (range) {
    const [, prefix, lo, hi] = range;
    if (!value.startsWith(prefix!)) return false;
    const n = Number(value.slice(prefix!.length));
    return Number.isInteger(n) && n >= Number(lo) && n <= Number(hi);
  }
  return false;
}

/** True when the table lists the property and one of its value patterns accepts `value`; undefined when the table does not list it. */
export function accepts(table: Map<string, string[]>, property: string, value: string): boolean | undefined {
  const patterns = table.get(property);
  if (!patterns) return undefined;
  return patterns.some((p) => patternAccepts(p, value));
}

/** Nearest supported replacements: { property: { wanted value: [candidates, best first] } }. */
export type Fallbacks = Record<string, Record<string, string | string[]>>;

export interface Substitution {
  property: string;
  wanted: string;
  used: string;
  note: string;
}

export interface EffectiveProperties {
  values: Record<string, string>;
  substitutions: Substitution[];
  /** Wanted values this ZFS does not accept and that have no usable fallback. */
  unsupported: string[];
}

/**
 * What will actually be set: each wanted value, or its first fallback this ZFS accepts (with a note), or an
 * "unsupported" entry when neither works. With no property table (it could not be read) values pass as
 * wanted and zfs itself is the judge.
 */
export function effectiveProperties(
  wanted: Record<string, WantedValue>,
  table: Map<string, string[]> | undefined,
  fallbacks: Fallbacks = {},
  implementation = 'this ZFS',
): EffectiveProperties {
  const out: EffectiveProperties = { values: {}, substitutions: [], unsupported: [] };
  for (const [property, raw] of Object.entries(wanted)) {
    const value = wantedText(raw);
    const ok = table ? accepts(table, property, value) : undefined;
    if (ok !== false) {
      out.values[property] = value;
      continue;
    }
    const candidatesRaw = fallbacks[property]?.[value];
    const candidates =
      candidatesRaw === undefined ? [] : Array.isArray(candidatesRaw) ? candidatesRaw : [candidatesRaw];
    const usable = candidates.find((c) => accepts(table!, property, c) !== false);
    const supported = table!.get(property)?.join(' | ') ?? '';
    if (usable === undefined) {
      out.unsupported.push(
        `${property}=${value} is not supported by ${implementation} (it accepts: ${supported})${candidates.length ? `; no fallback among ${candidates.join(', ')} is either` : '; give a fallback in zfs_property_fallbacks'}`,
      );
      continue;
    }
    out.values[property] = usable;
    out.substitutions.push({
      property,
      wanted: value,
      used: usable,
      note: `${property}=${value} is not supported by ${implementation} (it accepts: ${supported}); using ${property}=${usable}, the nearest supported value`,
    });
  }
  return out;
}

export interface CurrentProperty {
  value: string;
  source: string;
}

/** `zfs get -H -p -o property,value,source a,b,c DATASET` into a map. */
export function parsePropertyValues(text: string): Map<string, CurrentProperty> {
  const out = new Map<string, CurrentProperty>();
  for (const line of text.split('\n')) {
    const [property, value, source] = line.split('\t');
    if (!property || value === undefined) continue;
    out.set(property, { value, source: (source ?? '').trim() });
  }
  return out;
}

export interface PropertyChange {
  property: string;
  from?: string;
  to: string;
}

/** The `zfs set` calls needed to get from current to wanted (pure; table-tested). */
export function propertyChanges(
  wanted: Record<string, string>,
  current: Map<string, CurrentProperty>,
): PropertyChange[] {
  const changes: PropertyChange[] = [];
  for (const [property, to] of Object.entries(wanted)) {
    const now = current.get(property);
    if (now && valueMatches(property, to, now.value)) continue;
    changes.push(now ? { property, from: now.value, to } : { property, to });
  }
  return changes;
}
