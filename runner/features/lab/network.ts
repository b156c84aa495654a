/**
 * The lab's two private bridges: the service bridge (cairnbr0: the VIP, the front door, VRRP, Ceph, corosync) and
 * the management bridge (cairnbr1: cairn's SSH, monitoring scrapes, backups). This machine gets .1 on each so cairn
 * can reach the hosts; nothing is forwarded or NATed, and the containers get no default route, so lab traffic
 * never leaves the bridges.
 */
import { writeFileSync } from 'node:fs';
import { CairnError } from '../../core/util/errors.js';
import { run, runChecked } from './exec.js';
import { cidrRange, rangesOverlap } from './ipv4.js';
import type { LabTopology } from './topology.js';

export interface IpAddressInfo {
  family: string;
  local: string;
  prefixlen: number;
}

/** One interface as `ip -j -d addr show` prints it (only the fields the lab reads). */
export interface IpLink {
  ifname: string;
  master?: string;
  addr_info?: IpAddressInfo[];
  linkinfo?: { info_kind?: string };
}

export interface IpRoute {
  dst: string;
  dev?: string;
  table?: string;
}

export async function listLinks(): Promise<IpLink[]> {
  const out = await runChecked('ip', ['-j', '-d', 'addr', 'show'], 'listing network interfaces');
  return JSON.parse(out.stdout || '[]') as IpLink[];
}

export async function listRoutes(): Promise<IpRoute[]> {
  const out = await runChecked('ip', ['-j', '-4', 'route', 'show', 'table', 'main'], 'listing routes');
  return JSON.parse(out.stdout || '[]') as IpRoute[];
}

/**
 * Why the lab's subnet cannot be used here (an address or route of another interface overlaps it), or
 * undefined when it is free. The lab's own bridge does not count: `up` on a running lab is harmless.
 */
export function subnetConflict(
  topology: Pick<LabTopology, 'subnet' | 'bridge'>,
  links: IpLink[],
  routes: IpRoute[],
): string | undefined {
  const labRange = cidrRange(topology.subnet.text.split('/')[0]!, 24)!;
  for (const link of links) {
    if (link.ifname === topology.bridge || link.master === topology.bridge) continue;
    for (const addr of link.addr_info ?? []) {
      if (addr.family !== 'inet') continue;
      const range = cidrRange(addr.local, addr.prefixlen);
      if (range && rangesOverlap(range, labRange)) return `${link.ifname} has ${addr.local}/${addr.prefixlen}`;
    }
  }
  for (const route of routes) {
    if (route.dst === 'default' || route.dev === topology.bridge) continue;
    const [address, prefix] = route.dst.split('/');
    const range = cidrRange(address!, prefix === undefined ? 32 : Number(prefix));
    if (range && rangesOverlap(range, labRange))
      return `a route to ${route.dst}${route.dev ? ` via ${route.dev}` : ''} exists`;
  }
  return undefined;
}

export async function assertSubnetFree(topology: Pick<LabTopology, 'subnet' | 'bridge' | 'management'>): Promise<void> {
  const links = await listLinks();
  const routes = await listRoutes();
  const conflict = subnetConflict(topology, links, routes);
  if (conflict) {
    throw new CairnError(
      `the lab's address range ${topology.subnet.text} is already in use on this machine (${conflict}); pick a free /24 with "network: {subnet: ...}" in a topology file`,
      { kind: 'options' },
    );
  }
  const management = topology.management;
  const managementConflict = management && subnetConflict(management, links, routes);
  if (managementConflict) {
    throw new CairnError(
      `the lab's management range ${management.subnet.text} is already in use on this machine (${managementConflict}); pick a free /24 with "network: {management_subnet: ...}" in a topology file`,
      { kind: 'options' },
    );
  }
}

/** Create the bridge (or complete a half-made one) with this machine's address on it. Idempotent. */
export async function ensureBridge(
  topology: Pick<LabTopology, 'bridge' | 'bridgeAddress'>,
): Promise<{ created: boolean }> {
  const links = await listLinks();
  const existing = links.find((l) => l.ifname === topology.bridge);
  let created = false;
  if (existing && existing.linkinfo?.info_kind !== 'bridge') {
    throw new CairnError(
      `an interface named ${topology.bridge} exists and is not a bridge; the lab will not touch it`,
      { kind: 'options' },
    );
  }
  if (!existing) {
    await runChecked(
      'ip',
      ['link', 'add', 'name', topology.bridge, 'type', 'bridge'],
      `creating bridge ${topology.bridge}`,
    );
    created = true;
  }
  // Packets arriving on the bridge are never routed elsewhere, whatever the global forwarding setting says;
  // no IPv6 on this machine's side of the bridge either.
  writeSysctl(`/proc/sys/net/ipv4/conf/${topology.bridge}/forwarding`, '0');
  writeSysctl(`/proc/sys/net/ipv6/conf/${topology.bridge}/disable_ipv6`, '1');
  const hasAddress = (existing?.addr_info ?? []).some((a) => a.family === 'inet' && a.local === topology.bridgeAddress);
  if (!hasAddress)
    await runChecked(
      'ip',
      ['addr', 'add', `${topology.bridgeAddress}/24`, 'dev', topology.bridge],
      `addressing bridge ${topology.bridge}`,
    );
  await runChecked('ip', ['link', 'set', topology.bridge, 'up'], `bringing bridge ${topology.bridge} up`);
  return { created };
}

function writeSysctl(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    // Best effort: the key may not exist (IPv6 disabled on this machine); forwarding is off globally anyway.
  }
}

export function vethName(host: string): string {
  return `vb-${host}`;
}

/** This machine's end of a container's management link (its end is mgmt0); 3 + 12 characters fit Linux's 15. */
export function managementVethName(host: string): string {
  return `mg-${host}`;
}

/**
 * Interfaces the lab made: the bridge, every port attached to it, and vb-NAME for the given hosts. Found from
 * what exists, so a crash between creating and recording them still gets cleaned.
 */
export function labInterfaces(
  links: IpLink[],
  bridge: string,
  hostNames: readonly string[],
  tapNames: readonly string[] = [],
  vethOf: (host: string) => string = vethName,
): string[] {
  const veths = new Set(hostNames.map(vethOf));
  const taps = new Set(tapNames);
  const found = links
    .filter(
      (l) =>
        l.master === bridge ||
        (veths.has(l.ifname) && l.linkinfo?.info_kind === 'veth') ||
        (taps.has(l.ifname) && l.linkinfo?.info_kind === 'tun'),
    )
    .map((l) => l.ifname);
  if (links.some((l) => l.ifname === bridge && l.linkinfo?.info_kind === 'bridge')) found.push(bridge);
  return found;
}

/** Delete the lab's interfaces (ports first, the bridge last). Returns what was deleted. */
export async function removeLabInterfaces(
  bridge: string,
  hostNames: readonly string[],
  tapNames: readonly string[] = [],
  vethOf: (host: string) => string = vethName,
): Promise<string[]> {
  const names = labInterfaces(await listLinks(), bridge, hostNames, tapNames, vethOf);
  const removed: string[] = [];
  for (const name of names) {
    const res = await run('ip', ['link', 'del', 'dev', name]);
    // A veth disappears by itself when its container's namespace goes; "Cannot find device" is success.
    if (res.code === 0 || /Cannot find device|does not exist/.test(res.stderr)) removed.push(name);
    else throw new CairnError(`removing interface ${name}: ${res.stderr.trim()}`, { kind: 'runtime' });
  }
  return removed;
}
