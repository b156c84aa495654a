/**
 * setup: parseFacts against real outputs. CAPTURED is the verbatim output of factsScript() run with /bin/sh on
 * the cairn development container (Debian 12 in Docker, kernel 6.18, 2 vCPUs, 24 GiB, /dev/kvm present,
 * PID 1 not systemd) on 2026-11-21. The other virtualization rows replace only the systemd-detect-virt
 * sections with the words that tool prints, per its documented identifiers (systemd-detect-virt(1)):
 * "systemd-nspawn" inside an nspawn container (nspawn sets container=systemd-nspawn, src/nspawn/nspawn.c),
 * "lxc" (seen in systemd/systemd#1814: `container# systemd-detect-virt` -> `lxc`), "kvm" in a KVM guest with
 * `-c` printing "none", and "none" on bare metal (exit status 1).
 */
import { describe, expect, it } from 'vitest';
import {
  factsScript,
  osFamily,
  parseFacts,
  parseIpOneline,
  parseOsRelease,
  setupModule,
} from '../../../runner/core/modules/setup.js';
import { FakeConnection, contextFor, frameSections } from '../../helpers/fake-connection.js';
import { ansibleFactView, filterFacts, fnmatch } from '../../../runner/core/modules/ansible-facts.js';
import { formatSection } from '../../../runner/core/modules/remote.js';
import { factVars } from '../../../runner/core/engine/variables.js';

const CAPTURED = [
  '::cairn-section:: os-release',
  'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"',
  'NAME="Debian GNU/Linux"',
  'VERSION_ID="12"',
  'VERSION="12 (bookworm)"',
  'VERSION_CODENAME=bookworm',
  'ID=debian',
  'HOME_URL="https://www.debian.org/"',
  'SUPPORT_URL="https://www.debian.org/support"',
  'BUG_REPORT_URL="https://bugs.debian.org/"',
  '::cairn-section:: hostname',
  'vm',
  '::cairn-section:: fqdn',
  'vm',
  '::cairn-section:: uname',
  '6.18.44-fc-v669 x86_64',
  '::cairn-section:: virt',
  'docker',
  '::cairn-section:: virt-container',
  'docker',
  '::cairn-section:: container-hints',
  'dockerenv=1',
  '::cairn-section:: ip-json',
  '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":2,"ifname":"ifb0","flags":["BROADCAST","NOARP"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":32,"link_type":"ether","address":"b2:f9:f1:50:df:5a","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},{"ifindex":3,"ifname":"ifb1","flags":["BROADCAST","NOARP"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":32,"link_type":"ether","address":"8e:5c:11:c4:30:6d","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},{"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1400,"qdisc":"pfifo_fast","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"02:fc:00:00:00:01","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fd00::2","prefixlen":64,"scope":"global","nodad":true,"valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::fc:ff:fe00:1","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]',
  '::cairn-section:: ip-link',
  '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
  '2: ifb0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 32\\    link/ether b2:f9:f1:50:df:5a brd ff:ff:ff:ff:ff:ff',
  '3: ifb1: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 32\\    link/ether 8e:5c:11:c4:30:6d brd ff:ff:ff:ff:ff:ff',
  '4: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1400 qdisc pfifo_fast state UP mode DEFAULT group default qlen 1000\\    link/ether 02:fc:00:00:00:01 brd ff:ff:ff:ff:ff:ff',
  '::cairn-section:: ip-addr',
  '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
  '1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever',
  '4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\\       valid_lft forever preferred_lft forever',
  '4: eth0    inet6 fd00::2/64 scope global nodad \\       valid_lft forever preferred_lft forever',
  '4: eth0    inet6 fe80::fc:ff:fe00:1/64 scope link \\       valid_lft forever preferred_lft forever',
  '::cairn-section:: route',
  'default via 192.0.2.1 dev eth0 ',
  '::cairn-section:: meminfo',
  'MemTotal:       24684084 kB',
  'MemFree:        20541280 kB',
  'MemAvailable:   24034552 kB',
  'Buffers:          130776 kB',
  'Cached:          3144432 kB',
  'SwapCached:            0 kB',
  'Active:           660384 kB',
  'Inactive:        2641012 kB',
  'Active(anon):       1568 kB',
  'Inactive(anon):    33504 kB',
  'Active(file):     658816 kB',
  'Inactive(file):  2607508 kB',
  'Unevictable:       16700 kB',
  'Mlocked:           15620 kB',
  'SwapTotal:             0 kB',
  'SwapFree:              0 kB',
  'Zswap:                 0 kB',
  'Zswapped:              0 kB',
  'Dirty:             32216 kB',
  'Writeback:             0 kB',
  'AnonPages:         42752 kB',
  'Mapped:            50752 kB',
  'Shmem:              8872 kB',
  'KReclaimable:     590268 kB',
  'Slab:             637832 kB',
  'SReclaimable:     590268 kB',
  'SUnreclaim:        47564 kB',
  'KernelStack:        1848 kB',
  'PageTables:         2836 kB',
  'SecPageTables:         0 kB',
  'NFS_Unstable:          0 kB',
  'Bounce:                0 kB',
  'WritebackTmp:          0 kB',
  'CommitLimit:    12342040 kB',
  'Committed_AS:     151436 kB',
  'VmallocTotal:   34359738367 kB',
  'VmallocUsed:       14676 kB',
  'VmallocChunk:          0 kB',
  'Percpu:              880 kB',
  'AnonHugePages:         0 kB',
  'ShmemHugePages:        0 kB',
  'ShmemPmdMapped:        0 kB',
  'FileHugePages:    395264 kB',
  'FilePmdMapped:         0 kB',
  'Balloon:               0 kB',
  'HugePages_Total:       0',
  'HugePages_Free:        0',
  'HugePages_Rsvd:        0',
  'HugePages_Surp:        0',
  'Hugepagesize:       2048 kB',
  'Hugetlb:               0 kB',
  'DirectMap4k:       28672 kB',
  'DirectMap2M:     2068480 kB',
  'DirectMap1G:    25165824 kB',
  '::cairn-section:: cpu',
  'nproc=2',
  'model name\t: AMD EPYC',
  '::cairn-section:: misc',
  'kvm=1',
  'run_systemd_system=0',
  'pid1_comm=process_api',
  'epoch=1795266184',
  'iso8601=2026-11-21T13:03:04Z',
  'uptime=1213.59',
  '',
].join('\n');

/** CAPTURED with one section's body replaced. */
function withSection(name: string, body: string, source = CAPTURED): string {
  const marker = `::cairn-section:: ${name}\n`;
  const start = source.indexOf(marker) + marker.length;
  const end = source.indexOf('::cairn-section:: ', start);
  return source.slice(0, start) + body + source.slice(end);
}

describe("parseFacts on this machine's real output", () => {
  const facts = parseFacts(frameSections(CAPTURED));

  it('os, kernel, names', () => {
    expect(facts.os).toEqual({
      id: 'debian',
      version_id: '12',
      codename: 'bookworm',
      pretty_name: 'Debian GNU/Linux 12 (bookworm)',
      family: 'Debian',
    });
    expect([facts.hostname, facts.fqdn, facts.kernel, facts.arch]).toEqual(['vm', 'vm', '6.18.44-fc-v669', 'x86_64']);
  });

  it('interfaces from ip -j, and the default route', () => {
    expect(facts.interfaces.map((i) => i.name)).toEqual(['lo', 'ifb0', 'ifb1', 'eth0']);
    expect(facts.interfaces[3]).toEqual({
      name: 'eth0',
      mac: '02:fc:00:00:00:01',
      mtu: 1400,
      up: true,
      ipv4: [{ address: '192.0.2.2', prefix: 24 }],
      ipv6: [
        { address: 'fd00::2', prefix: 64 },
        { address: 'fe80::fc:ff:fe00:1', prefix: 64 },
      ],
    });
    expect(facts.interfaces[1]!.up).toBe(false);
    expect(facts.default_ipv4).toEqual({ interface: 'eth0', address: '192.0.2.2', gateway: '192.0.2.1' });
  });

  it('memory, cpu, kvm, init, virtualization', () => {
    expect(facts.memory).toEqual({ total_mb: 24105, available_mb: 23471, swap_total_mb: 0 });
    expect(facts.cpu).toEqual({ count: 2, model: 'AMD EPYC' });
    expect(facts.kvm).toBe(true);
    expect(facts.pid1_systemd).toBe(false);
    expect(facts.virtualization).toEqual({ type: 'docker', role: 'guest', container: true });
    expect(facts.date.iso8601).toBe('2026-11-21T13:03:04Z');
    expect(facts.uptime_seconds).toBe(1213);
  });

  it('the ip -o fallback gives the same interfaces as ip -j', () => {
    const fallback = parseFacts(frameSections(withSection('ip-json', '')));
    expect(fallback.interfaces).toEqual(facts.interfaces);
  });
});

describe('virtualization', () => {
  const virt = (vm: string, container: string, hints = '', kvm = true) => {
    let out = withSection('virt', vm ? `${vm}\n` : '');
    out = withSection('virt-container', container ? `${container}\n` : '', out);
    out = withSection('container-hints', hints, out);
    if (!kvm) out = out.replace('kvm=1', 'kvm=0');
    return parseFacts(frameSections(out)).virtualization;
  };

  it.each([
    [
      'systemd-nspawn container',
      ['systemd-nspawn', 'systemd-nspawn', ''],
      { type: 'systemd-nspawn', role: 'guest', container: true },
    ],
    ['lxc container', ['lxc', 'lxc', ''], { type: 'lxc', role: 'guest', container: true }],
    ['KVM virtual machine', ['kvm', 'none', ''], { type: 'kvm', role: 'guest', container: false }],
    ['bare metal with /dev/kvm: a host', ['none', 'none', ''], { type: 'none', role: 'host', container: false }],
    [
      'no systemd-detect-virt, /run/systemd/container says nspawn',
      ['', '', 'run_systemd_container=systemd-nspawn\n'],
      { type: 'systemd-nspawn', role: 'guest', container: true },
    ],
    [
      'no systemd-detect-virt, /.dockerenv',
      ['', '', 'dockerenv=1\n'],
      { type: 'docker', role: 'guest', container: true },
    ],
  ] as Array<[string, [string, string, string], object]>)('%s', (_n, [vm, container, hints], expected) => {
    expect(virt(vm, container, hints)).toEqual(expected);
  });

  it('bare metal without /dev/kvm is none/none', () => {
    expect(virt('none', 'none', '', false)).toEqual({ type: 'none', role: 'none', container: false });
  });
});

describe('helpers', () => {
  it('os-release quoting and families', () => {
    expect(parseOsRelease('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nX=\'single\'\n# c\n')).toEqual({
      NAME: 'Ubuntu',
      ID: 'ubuntu',
      ID_LIKE: 'debian',
      X: 'single',
    });
    expect(osFamily('ubuntu', 'debian')).toBe('Debian');
    expect(osFamily('rocky', 'rhel centos fedora')).toBe('RedHat');
    expect(osFamily('alpine', '')).toBe('Alpine');
  });

  it('ip -o link handles veth peers written name@ifN', () => {
    const link =
      '7: veth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether 5a:1c:3e:00:00:01 brd ff:ff:ff:ff:ff:ff link-netnsid 0';
    expect(
      parseIpOneline(
        link,
        '7: veth0    inet 10.0.0.1/24 scope global veth0\\       valid_lft forever preferred_lft forever',
      ),
    ).toEqual([
      {
        name: 'veth0',
        mac: '5a:1c:3e:00:00:01',
        mtu: 1500,
        up: true,
        ipv4: [{ address: '10.0.0.1', prefix: 24 }],
        ipv6: [],
      },
    ]);
  });
});

describe('setup module', () => {
  it('one round trip, read-only, facts in data', async () => {
    const conn = new FakeConnection([{ match: 'systemd-detect-virt', reply: { stdout: frameSections(CAPTURED) } }]);
    const plan = await setupModule.check(contextFor(conn), {});
    expect(conn.calls).toHaveLength(1);
    expect(conn.calls[0]!.script).toBe(factsScript());
    expect(plan).toMatchObject({ changed: false, actions: [], data: { facts: { hostname: 'vm' } } });
    expect(setupModule.readOnly).toBe(true);
  });
});

/**
 * The sections only Ansible's fact names read, in the shape factsScript prints them on the same container
 * (uname -v/-n, /etc/debian_version, id and getent passwd, env -0, /proc/cpuinfo topology, date).
 */
const EXTRA_SECTIONS = [
  '::cairn-section:: uname-v',
  '#1 SMP PREEMPT_DYNAMIC Debian 6.1.99-1 (2024-07-15)',
  'vm',
  '::cairn-section:: debian-version',
  '12.7',
  '::cairn-section:: user',
  'id=root',
  'uid=0',
  'gid=0',
  `passwd=${Buffer.from('root:x:0:0:root:/root:/bin/bash\n').toString('base64')}`,
  '::cairn-section:: cpu-topology',
  'vcpus=2',
  'sockets=1',
  'cores=2',
  'vendor=AuthenticAMD',
  'siblings=2',
  `models=${Buffer.from('AMD EPYC\nAMD EPYC\n').toString('base64')}`,
  '::cairn-section:: local-time',
  '2026-11-21 13:03:04 UTC Saturday +0000',
  '',
].join('\n');

describe("Ansible's fact names from cairn's tree", () => {
  const env = formatSection('env', 'HOME=/root\0PATH=/usr/bin:/bin\0MULTI=a\nb\0');
  const facts = parseFacts(frameSections(CAPTURED) + frameSections(EXTRA_SECTIONS) + env);
  const view = ansibleFactView(facts);

  it('distribution, versions and names as Ansible reports them on Debian 12', () => {
    expect(view).toMatchObject({
      distribution: 'Debian',
      distribution_version: '12.7',
      distribution_major_version: '12',
      distribution_release: 'bookworm',
      os_family: 'Debian',
      hostname: 'vm',
      fqdn: 'vm',
      domain: '',
      kernel: '6.18.44-fc-v669',
      kernel_version: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.99-1 (2024-07-15)',
      architecture: 'x86_64',
      processor_vcpus: 2,
      processor_count: 1,
      processor_cores: 2,
      processor: ['0', 'AuthenticAMD', 'AMD EPYC', '1', 'AuthenticAMD', 'AMD EPYC'],
      memtotal_mb: 24105,
      memfree_mb: 20059,
      user_id: 'root',
      user_shell: '/bin/bash',
      env: { HOME: '/root', PATH: '/usr/bin:/bin', MULTI: 'a\nb' },
      service_mgr: 'process_api',
      virtualization_type: 'docker',
      virtualization_role: 'guest',
      date_time: { date: '2026-11-21', time: '13:03:04', weekday: 'Saturday', epoch: '1795266184' },
    });
  });

  it('default_ipv4 and per-interface facts with netmask, network and broadcast', () => {
    expect(view.default_ipv4).toEqual({
      address: '192.0.2.2',
      alias: 'eth0',
      broadcast: '192.0.2.255',
      gateway: '192.0.2.1',
      interface: 'eth0',
      macaddress: '02:fc:00:00:00:01',
      mtu: 1400,
      netmask: '255.255.255.0',
      network: '192.0.2.0',
      prefix: '24',
      type: 'ether',
    });
    expect(view.all_ipv4_addresses).toEqual(['192.0.2.2']);
    expect(view.interfaces).toEqual(['lo', 'ifb0', 'ifb1', 'eth0']);
    expect(view.eth0).toMatchObject({ device: 'eth0', active: true, ipv4: { address: '192.0.2.2', prefix: '24' } });
  });

  it('the variable manager puts them under ansible_facts.x and ansible_x, and facts keeps cairn tree', () => {
    const vars = factVars(facts as unknown as Record<string, unknown>);
    expect(vars.facts).toEqual(facts);
    expect((vars.ansible_facts as Record<string, unknown>).os_family).toBe('Debian');
    expect(vars.ansible_os_family).toBe('Debian');
    expect((vars.ansible_default_ipv4 as Record<string, unknown>).address).toBe('192.0.2.2');
    expect(factVars(facts as unknown as Record<string, unknown>)).toBe(vars);
  });

  it('an older capture without the extra sections still names what it can', () => {
    const old = ansibleFactView(parseFacts(frameSections(CAPTURED)));
    expect(old).toMatchObject({ distribution: 'Debian', distribution_version: '12', processor_vcpus: 2, env: {} });
  });

  it("setup's filter is fnmatch on the ansible_ name, as Ansible's", () => {
    expect(fnmatch('ansible_eth1', 'ansible_eth[0-2]')).toBe(true);
    expect(fnmatch('ansible_eth3', 'ansible_eth[0-2]')).toBe(false);
    expect(fnmatch('ansible_memtotal_mb', 'ansible_*_mb')).toBe(true);
    expect(Object.keys(filterFacts(view, ['ansible_*_mb'])).sort()).toEqual([
      'memfree_mb',
      'memory_mb',
      'memtotal_mb',
      'swapfree_mb',
      'swaptotal_mb',
    ]);
    expect(filterFacts(view, [])).toBe(view);
  });
});
