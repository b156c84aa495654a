import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cidrRange, formatIpv4, parseIpv4, parseSubnet24, rangesOverlap } from '../../runner/features/lab/ipv4.js';
import { labInterfaces, subnetConflict, type IpLink, type IpRoute } from '../../runner/features/lab/network.js';
import { defaultTopology } from '../../runner/features/lab/topology.js';

const lab = defaultTopology();

describe('ipv4 arithmetic', () => {
  it('parses and formats addresses', () => {
    expect(parseIpv4('10.77.0.11')).toBe(10 * 2 ** 24 + 77 * 2 ** 16 + 11);
    expect(formatIpv4(parseIpv4('255.255.255.255')!)).toBe('255.255.255.255');
    expect(parseIpv4('10.77.0.256')).toBeUndefined();
    expect(parseIpv4('10.77.0')).toBeUndefined();
    expect(parseIpv4('10.77.0.1 ')).toBe(parseIpv4('10.77.0.1'));
  });

  it('reads a /24 only as its network address', () => {
    expect(parseSubnet24('10.77.0.0/24')).toEqual({ base: parseIpv4('10.77.0.0'), text: '10.77.0.0/24' });
    expect(parseSubnet24('10.77.0.7/24')).toBeUndefined();
    expect(parseSubnet24('10.77.0.0/16')).toBeUndefined();
  });

  it('computes CIDR ranges and overlaps', () => {
    const eth = cidrRange('192.0.2.2', 24)!;
    expect(formatIpv4(eth.first)).toBe('192.0.2.0');
    expect(formatIpv4(eth.last)).toBe('192.0.2.255');
    const wide = cidrRange('10.0.0.0', 8)!;
    const labRange = cidrRange('10.77.0.0', 24)!;
    expect(rangesOverlap(wide, labRange)).toBe(true);
    expect(rangesOverlap(cidrRange('10.77.1.0', 24)!, labRange)).toBe(false);
    expect(rangesOverlap(cidrRange('10.77.0.255', 32)!, labRange)).toBe(true);
    expect(cidrRange('1.2.3.4', 33)).toBeUndefined();
  });
});

describe('is the lab subnet free on this machine', () => {
  it('reads the real `ip -j` output of this machine without error', () => {
    if (!existsSync('/usr/sbin/ip') && !existsSync('/sbin/ip') && !existsSync('/usr/bin/ip')) return;
    const links = JSON.parse(execFileSync('ip', ['-j', '-d', 'addr', 'show'], { encoding: 'utf8' })) as IpLink[];
    const routes = JSON.parse(
      execFileSync('ip', ['-j', '-4', 'route', 'show', 'table', 'main'], { encoding: 'utf8' }),
    ) as IpRoute[];
    expect(links.some((l) => l.ifname === 'lo')).toBe(true);
    // Loopback's 127.0.0.0/8 never overlaps a private /24, and the default route does not count.
    const withoutLab = subnetConflict({ subnet: parseSubnet24('127.0.5.0/24')!, bridge: 'cairnbr0' }, links, routes);
    expect(withoutLab).toBe('lo has 127.0.0.1/8');
  });

  // Shapes as `ip -j -d addr show` and `ip -j -4 route show table main` print them (iproute2 6.1, this machine).
  const eth0: IpLink = {
    ifname: 'eth0',
    addr_info: [
      { family: 'inet', local: '192.0.2.2', prefixlen: 24 },
      { family: 'inet6', local: 'fd00::2', prefixlen: 64 },
    ],
  };
  const defaultRoute: IpRoute = { dst: 'default', dev: 'eth0' };

  it('is free when nothing overlaps', () => {
    expect(subnetConflict(lab, [eth0], [defaultRoute, { dst: '192.0.2.0/24', dev: 'eth0' }])).toBeUndefined();
  });

  it('names an interface whose address overlaps', () => {
    const vpn: IpLink = { ifname: 'wg0', addr_info: [{ family: 'inet', local: '10.64.3.9', prefixlen: 10 }] };
    expect(subnetConflict(lab, [eth0, vpn], [defaultRoute])).toBe('wg0 has 10.64.3.9/10');
  });

  it('names a route that overlaps', () => {
    expect(subnetConflict(lab, [eth0], [defaultRoute, { dst: '10.77.0.128/25', dev: 'eth0' }])).toBe(
      'a route to 10.77.0.128/25 via eth0 exists',
    );
    expect(subnetConflict(lab, [eth0], [{ dst: '10.77.0.9', dev: 'eth0' }])).toBe(
      'a route to 10.77.0.9 via eth0 exists',
    );
  });

  it("does not count the lab's own bridge, its ports or its route", () => {
    const bridge: IpLink = {
      ifname: 'cairnbr0',
      addr_info: [{ family: 'inet', local: '10.77.0.1', prefixlen: 24 }],
      linkinfo: { info_kind: 'bridge' },
    };
    const port: IpLink = { ifname: 'vb-web1', master: 'cairnbr0', linkinfo: { info_kind: 'veth' } };
    expect(
      subnetConflict(lab, [eth0, bridge, port], [defaultRoute, { dst: '10.77.0.0/24', dev: 'cairnbr0' }]),
    ).toBeUndefined();
  });
});

describe("which interfaces are the lab's", () => {
  it('is the bridge, its ports, and vb-NAME veths of known hosts, nothing else', () => {
    const links: IpLink[] = [
      { ifname: 'eth0' },
      { ifname: 'cairnbr0', linkinfo: { info_kind: 'bridge' } },
      { ifname: 'vb-lb1', master: 'cairnbr0', linkinfo: { info_kind: 'veth' } },
      { ifname: 'vb-web1', linkinfo: { info_kind: 'veth' } },
      { ifname: 'vb-other', linkinfo: { info_kind: 'veth' } },
      { ifname: 'vb-mon', linkinfo: { info_kind: 'bridge' } },
    ];
    expect(labInterfaces(links, 'cairnbr0', ['lb1', 'web1', 'mon'])).toEqual(['vb-lb1', 'vb-web1', 'cairnbr0']);
    expect(labInterfaces([{ ifname: 'eth0' }], 'cairnbr0', ['lb1'])).toEqual([]);
  });
});
