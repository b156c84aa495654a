/** IPv4 arithmetic for the lab's /24: addresses as unsigned 32-bit numbers. */

export function parseIpv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text.trim());
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return ((octets[0]! * 256 + octets[1]!) * 256 + octets[2]!) * 256 + octets[3]!;
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export interface Subnet24 {
  /** The network address as a number (last octet 0). */
  base: number;
  /** "10.77.0.0/24" */
  text: string;
}

/** A /24 written as its network address; "10.77.0.5/24" (host bits set) is refused. */
export function parseSubnet24(text: string): Subnet24 | undefined {
  const m = /^([\d.]+)\/24$/.exec(text.trim());
  if (!m) return undefined;
  const base = parseIpv4(m[1]!);
  if (base === undefined || base % 256 !== 0) return undefined;
  return { base, text: `${formatIpv4(base)}/24` };
}

export interface Ipv4Range {
  first: number;
  last: number;
}

/** The range a CIDR covers ("192.0.2.7/24" -> 192.0.2.0 .. 192.0.2.255). */
export function cidrRange(address: string, prefix: number): Ipv4Range | undefined {
  const value = parseIpv4(address);
  if (value === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const first = value - (value % size);
  return { first, last: first + size - 1 };
}

export function rangesOverlap(a: Ipv4Range, b: Ipv4Range): boolean {
  return a.first <= b.last && b.first <= a.last;
}
