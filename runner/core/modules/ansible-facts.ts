/**
 * Ansible's fact names computed from cairn's fact tree (gathered in setup's one round trip), so playbooks
 * written for Ansible read `ansible_facts['distribution']`, `ansible_os_family`, `ansible_default_ipv4.address`
 * ... beside cairn's own `facts.os.id`. The names and shapes follow Ansible's fact collectors
 * (ansible/module_utils/facts/{system,hardware,network,virtual}/ in ansible-core 2.14); the values that
 * only Ansible uses come from `Facts.extra`.
 */
import type { Facts, InterfaceFacts } from './facts.js';

/** Ansible's `distribution` for os-release IDs (ansible/module_utils/facts/system/distribution.py). */
const DISTRIBUTION_NAMES: Record<string, string> = {
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  raspbian: 'Debian',
  linuxmint: 'Linux Mint',
  devuan: 'Devuan',
  kali: 'Kali',
  centos: 'CentOS',
  rhel: 'RedHat',
  fedora: 'Fedora',
  rocky: 'Rocky',
  almalinux: 'AlmaLinux',
  ol: 'OracleLinux',
  amzn: 'Amazon',
  alpine: 'Alpine',
  arch: 'Archlinux',
  manjaro: 'Manjaro',
  sles: 'SLES',
  'opensuse-leap': 'openSUSE Leap',
  'opensuse-tumbleweed': 'openSUSE Tumbleweed',
};

function netmaskOf(prefix: number): string {
  const bits = prefix <= 0 ? 0 : (0xffffffff << (32 - Math.min(prefix, 32))) >>> 0;
  return [24, 16, 8, 0].map((shift) => (bits >>> shift) & 255).join('.');
}

function networkOf(address: string, prefix: number): string {
  const mask = netmaskOf(prefix).split('.').map(Number);
  return address
    .split('.')
    .map((octet, i) => Number(octet) & mask[i]!)
    .join('.');
}

function broadcastOf(address: string, prefix: number): string {
  const mask = netmaskOf(prefix).split('.').map(Number);
  return address
    .split('.')
    .map((octet, i) => (Number(octet) | (~mask[i]! & 255)) & 255)
    .join('.');
}

function ipv4Of(iface: InterfaceFacts): Record<string, unknown> | undefined {
  const first = iface.ipv4[0];
  if (!first) return undefined;
  return {
    address: first.address,
    broadcast: first.prefix < 31 ? broadcastOf(first.address, first.prefix) : '',
    netmask: netmaskOf(first.prefix),
    network: networkOf(first.address, first.prefix),
    prefix: String(first.prefix),
  };
}

const ifaceType = (iface: InterfaceFacts) => (iface.name === 'lo' ? 'loopback' : 'ether');

/** Ansible's per-interface fact (`ansible_eth0`). */
function interfaceFact(iface: InterfaceFacts): Record<string, unknown> {
  const ipv4 = ipv4Of(iface);
  return {
    device: iface.name,
    active: iface.up,
    mtu: iface.mtu,
    type: ifaceType(iface),
    ...(iface.mac && iface.name !== 'lo' ? { macaddress: iface.mac } : {}),
    ...(ipv4 ? { ipv4 } : {}),
    ...(iface.ipv4.length > 1
      ? { ipv4_secondaries: iface.ipv4.slice(1).map((a) => ({ address: a.address, prefix: String(a.prefix) })) }
      : {}),
    ...(iface.ipv6.length
      ? {
          ipv6: iface.ipv6.map((a) => ({
            address: a.address,
            prefix: String(a.prefix),
            scope: a.address === '::1' ? 'host' : /^fe80:/i.test(a.address) ? 'link' : 'global',
          })),
        }
      : {}),
  };
}

/** Ansible's date_time from the host's local time line ("2026-12-07 08:30:01 UTC Monday +0000"). */
function dateTime(facts: Facts): Record<string, string> {
  const out: Record<string, string> = { epoch: String(facts.date.epoch), iso8601: facts.date.iso8601 };
  const m = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) (\S+) (\S+) ([+-]\d{4})$/.exec(facts.extra?.local_time ?? '');
  if (m) {
    const [, year, month, day, hour, minute, second, tz, weekday, offset] = m;
    Object.assign(out, {
      year: year!,
      month: month!,
      day: day!,
      hour: hour!,
      minute: minute!,
      second: second!,
      date: `${year}-${month}-${day}`,
      time: `${hour}:${minute}:${second}`,
      tz: tz!,
      tz_offset: offset!,
      weekday: weekday!,
    });
  }
  return out;
}

/** Ansible's service_mgr from PID 1 (ansible/module_utils/facts/system/service_mgr.py, Linux branch). */
function serviceManager(facts: Facts): string {
  if (facts.pid1_systemd) return 'systemd';
  const comm = facts.extra?.pid1_comm ?? '';
  if (comm === 'init' || comm === '') return 'sysvinit';
  return comm;
}

/**
 * The facts under Ansible's names, without the `ansible_` prefix (as `ansible_facts` holds them). Interfaces
 * also appear under their own names (`eth0`), as Ansible does.
 */
export function ansibleFactView(facts: Facts): Record<string, unknown> {
  const extra = facts.extra;
  const id = facts.os.id;
  const versionId = facts.os.version_id;
  const distributionVersion = facts.os.family === 'Debian' && extra?.debian_version ? extra.debian_version : versionId;
  const defaultIface = facts.interfaces.find((i) => i.name === facts.default_ipv4.interface);
  const defaultIpv4: Record<string, unknown> = {};
  if (defaultIface && facts.default_ipv4.address) {
    Object.assign(defaultIpv4, ipv4Of(defaultIface), {
      address: facts.default_ipv4.address,
      alias: defaultIface.name,
      gateway: facts.default_ipv4.gateway,
      interface: defaultIface.name,
      macaddress: defaultIface.mac,
      mtu: defaultIface.mtu,
      type: ifaceType(defaultIface),
    });
  }
  const fqdn = facts.fqdn || facts.hostname;
  const view: Record<string, unknown> = {
    distribution: DISTRIBUTION_NAMES[id] ?? (id ? id.charAt(0).toUpperCase() + id.slice(1) : 'NA'),
    distribution_version: distributionVersion,
    distribution_major_version: (distributionVersion || versionId).split('.')[0] ?? '',
    distribution_release: facts.os.codename || 'NA',
    distribution_file_variety: facts.os.family,
    os_family: facts.os.family,
    system: 'Linux',
    kernel: facts.kernel,
    kernel_version: extra?.kernel_version ?? '',
    architecture: facts.arch,
    machine: facts.arch,
    userspace_architecture: facts.arch,
    hostname: facts.hostname.split('.')[0] ?? facts.hostname,
    nodename: extra?.nodename || facts.hostname,
    fqdn,
    domain: fqdn.includes('.') ? fqdn.slice(fqdn.indexOf('.') + 1) : '',
    default_ipv4: defaultIpv4,
    all_ipv4_addresses: facts.interfaces.flatMap((i) =>
      i.ipv4.map((a) => a.address).filter((a) => !a.startsWith('127.')),
    ),
    all_ipv6_addresses: facts.interfaces.flatMap((i) => i.ipv6.map((a) => a.address).filter((a) => a !== '::1')),
    interfaces: facts.interfaces.map((i) => i.name),
    memtotal_mb: facts.memory.total_mb,
    memfree_mb: extra?.memory.free_mb ?? 0,
    swaptotal_mb: facts.memory.swap_total_mb,
    swapfree_mb: extra?.memory.swap_free_mb ?? 0,
    memory_mb: {
      real: {
        total: facts.memory.total_mb,
        free: extra?.memory.free_mb ?? 0,
        used: facts.memory.total_mb - (extra?.memory.free_mb ?? 0),
      },
      nocache: { free: facts.memory.available_mb, used: facts.memory.total_mb - facts.memory.available_mb },
      swap: {
        total: facts.memory.swap_total_mb,
        free: extra?.memory.swap_free_mb ?? 0,
        used: facts.memory.swap_total_mb - (extra?.memory.swap_free_mb ?? 0),
      },
    },
    processor_vcpus: extra?.cpu.vcpus || facts.cpu.count,
    processor_nproc: facts.cpu.count,
    processor_count: extra?.cpu.sockets || 1,
    processor_cores: extra?.cpu.cores_per_socket || extra?.cpu.vcpus || facts.cpu.count,
    processor_threads_per_core: extra?.cpu.threads_per_core ?? 1,
    // As Ansible's: index, vendor, model for each processor.
    processor: (extra?.cpu.models ?? []).flatMap((model, i) => [String(i), extra?.cpu.vendor ?? '', model]),
    virtualization_type: facts.virtualization.type === 'none' ? 'NA' : facts.virtualization.type,
    virtualization_role: facts.virtualization.role === 'none' ? 'NA' : facts.virtualization.role,
    service_mgr: serviceManager(facts),
    pkg_mgr: facts.os.family === 'Debian' ? 'apt' : 'unknown',
    lsb: {
      id: DISTRIBUTION_NAMES[id] ?? id,
      release: versionId,
      major_release: versionId.split('.')[0] ?? '',
      codename: facts.os.codename,
      description: facts.os.pretty_name,
    },
    env: extra?.env ?? {},
    user_id: extra?.user.id ?? '',
    user_uid: extra?.user.uid ?? 0,
    user_gid: extra?.user.gid ?? 0,
    user_gecos: extra?.user.gecos ?? '',
    user_dir: extra?.user.dir ?? '',
    user_shell: extra?.user.shell ?? '',
    date_time: dateTime(facts),
    uptime_seconds: facts.uptime_seconds,
  };
  for (const iface of facts.interfaces) {
    const key = iface.name.replace(/[-:.]/g, '_');
    if (!(key in view)) view[key] = interfaceFact(iface);
  }
  return view;
}

/** fnmatch as Python's (*, ?, [seq], [!seq]), for setup's `filter`. */
export function fnmatch(name: string, pattern: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(name);
}

/**
 * setup's `filter`: the first-level facts whose `ansible_`-prefixed name matches one of the patterns (an
 * empty list keeps everything), as Ansible's setup does.
 */
export function filterFacts(view: Record<string, unknown>, patterns: string[]): Record<string, unknown> {
  if (patterns.length === 0 || patterns.includes('*')) return view;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(view)) {
    if (patterns.some((p) => fnmatch(`ansible_${key}`, p) || fnmatch(key, p))) out[key] = value;
  }
  return out;
}
