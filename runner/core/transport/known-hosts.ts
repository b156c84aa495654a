/**
 * OpenSSH known_hosts files: reading them to verify a host key, and appending to them (trust on first use).
 *
 * Format (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"): `[marker] hostpatterns keytype base64-key [comment]`.
 * Host patterns are comma-separated names or addresses, `[host]:port` for a port other than 22, `*` / `?`
 * wildcards and `!` negation, or one hashed entry `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`.
 * Markers: `@revoked` (this key must never be accepted for the hosts) and `@cert-authority` (a CA key, which
 * cairn does not use: ignored).
 */
import { createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileSignature } from '../util/file-signature.js';

export type HostKeyCheck =
  | { status: 'match' }
  | { status: 'mismatch'; line: number }
  | { status: 'unknown' }
  | { status: 'revoked'; line: number };

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  /** The host field as written (patterns or a hashed entry). */
  hosts: string;
  keyType: string;
  keyBlob: Buffer;
}

/** The host string known_hosts uses for an address and port: `addr` for 22, `[addr]:port` otherwise. */
export function knownHostsName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** The key type named inside an SSH wire-format public key blob (`ssh-ed25519`, `ssh-rsa`...). */
export function keyTypeOfBlob(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const length = keyBlob.readUInt32BE(0);
  if (length === 0 || length > 64 || 4 + length > keyBlob.length) return undefined;
  return keyBlob.subarray(4, 4 + length).toString('latin1');
}

const BASE64 = /^[A-Za-z0-9+/]+=*$/;

/** Parses every well-formed line; malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const trimmed = (lines[index] as string).replace(/\r$/, '').trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift() as string;
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else continue; // An unknown marker: OpenSSH skips the line.
    }
    const [hosts, keyType, keyBase64] = fields;
    if (hosts === undefined || keyType === undefined || keyBase64 === undefined) continue;
    if (!BASE64.test(keyBase64)) continue;
    const keyBlob = Buffer.from(keyBase64, 'base64');
    // The blob names its own type; a line whose type field disagrees is corrupt.
    if (keyTypeOfBlob(keyBlob) !== keyType) continue;
    entries.push({ line: index + 1, marker, hosts, keyType, keyBlob });
  }
  return entries;
}

/**
 * Glob match with OpenSSH's `*` and `?` only, case-insensitive as host names are. Walks the strings (no RegExp
 * built per pattern): a profile at 1000 hosts found RegExp compilation here among cairn's top costs.
 */
function globMatches(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const t = text.toLowerCase();
  let pi = 0;
  let ti = 0;
  // Where the last `*` was, and the text position it is currently standing for: backtrack there on mismatch.
  let starAt = -1;
  let starText = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      starAt = pi++;
      starText = ti;
    } else if (starAt !== -1) {
      pi = starAt + 1;
      ti = ++starText;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

function hashedMatches(entry: string, hostName: string): boolean {
  const parts = entry.split('|');
  // '', '1', salt, hmac
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2] as string, 'base64');
  const expected = Buffer.from(parts[3] as string, 'base64');
  const actual = createHmac('sha1', salt).update(hostName).digest();
  return actual.length === expected.length && actual.equals(expected);
}

/** Whether a line's host field names this host (hashed or patterns with negation). */
export function hostFieldMatches(hosts: string, hostName: string): boolean {
  if (hosts.startsWith('|')) return hashedMatches(hosts, hostName);
  let matched = false;
  for (const pattern of hosts.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), hostName)) return false;
    } else if (globMatches(pattern, hostName)) {
      matched = true;
    }
  }
  return matched;
}

/** One known_hosts file, parsed and indexed for lookups by host name. */
interface KnownHostsIndex {
  /** Lines whose host field is only plain names (no hashing, wildcard or negation), by lower-cased name. */
  byName: Map<string, KnownHostEntry[]>;
  /** Hashed lines and lines with patterns: these must be tried against every host name asked for. */
  scanned: KnownHostEntry[];
}

/**
 * Parsed files, by path, with the stat signature they were parsed at. A run that opens a connection to each of
 * 1000 hosts parses the file once (each check costs one stat); a file changed since (another run, a user, a
 * trust-on-first-use append) is parsed again, so nothing stale is ever trusted.
 */
const indexCache = new Map<string, { signature: string; index: KnownHostsIndex }>();

function indexEntries(entries: KnownHostEntry[]): KnownHostsIndex {
  const byName = new Map<string, KnownHostEntry[]>();
  const scanned: KnownHostEntry[] = [];
  for (const entry of entries) {
    if (entry.hosts.startsWith('|') || /[*?!]/.test(entry.hosts)) {
      scanned.push(entry);
      continue;
    }
    // A name listed twice on one line must not yield the line twice.
    for (const name of new Set(entry.hosts.toLowerCase().split(','))) {
      const list = byName.get(name);
      if (list) list.push(entry);
      else byName.set(name, [entry]);
    }
  }
  return { byName, scanned };
}

function loadIndex(file: string): KnownHostsIndex | undefined {
  const signature = fileSignature(file);
  if (signature === undefined) {
    indexCache.delete(file);
    return undefined;
  }
  const cached = indexCache.get(file);
  if (cached && cached.signature === signature) return cached.index;
  const index = indexEntries(parseKnownHosts(readFileSync(file, 'utf8')));
  indexCache.set(file, { signature, index });
  return index;
}

/** Every line (any marker) that names this host, in file order. */
function entriesNaming(file: string, hostName: string): KnownHostEntry[] {
  const index = loadIndex(file);
  if (!index) return [];
  const named = index.byName.get(hostName.toLowerCase()) ?? [];
  const matched = index.scanned.filter((entry) => hostFieldMatches(entry.hosts, hostName));
  if (matched.length === 0) return named;
  return [...named, ...matched].sort((a, b) => a.line - b.line);
}

/** The lines (revoked and CA lines left out) that name this host. */
export function knownKeysFor(file: string, address: string, port: number): KnownHostEntry[] {
  return entriesNaming(file, knownHostsName(address, port)).filter((entry) => entry.marker === undefined);
}

/**
 * Checks a server's host key. A revoked key is refused even when another line would accept it; a host that
 * has any key on record and presents a different one (of any type) is a mismatch, reported with the first
 * line that names it; a host with no line is unknown. A missing file knows no host.
 */
export function checkHostKey(file: string, address: string, port: number, keyBlob: Buffer): HostKeyCheck {
  const hostName = knownHostsName(address, port);
  const entries = entriesNaming(file, hostName).filter((entry) => entry.marker !== 'cert-authority');
  const revoked = entries.find((entry) => entry.marker === 'revoked' && entry.keyBlob.equals(keyBlob));
  if (revoked) return { status: 'revoked', line: revoked.line };
  const plain = entries.filter((entry) => entry.marker === undefined);
  if (plain.some((entry) => entry.keyBlob.equals(keyBlob))) return { status: 'match' };
  const first = plain[0];
  if (first) return { status: 'mismatch', line: first.line };
  return { status: 'unknown' };
}

/** Records a host key (trust on first use). Creates the file 0600 (and its folder 0700) when absent. */
export function appendHostKey(file: string, address: string, port: number, keyType: string, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  if (existsSync(file)) {
    const existing = readFileSync(file);
    // Never glue our entry onto a last line that lacks its newline.
    if (existing.length > 0 && existing[existing.length - 1] !== 0x0a) prefix = '\n';
  }
  const line = `${prefix}${knownHostsName(address, port)} ${keyType} ${keyBlob.toString('base64')}\n`;
  appendFileSync(file, line, { mode: 0o600 });
  // The stat signature would notice the append too; dropping the entry says so without relying on it.
  indexCache.delete(file);
}
