/**
 * setup (alias gather_facts): the host's facts in ONE round trip. The script prints named sections (raw
 * command output); `parseFacts` turns them into cairn's fact tree. The parser is pure and tested against
 * real outputs.
 */
import { parseKeyValues, parseSections, failureText, runScript, section } from './remote.js';
import type { Module, Planned } from './types.js';
import type { Facts, FactsExtra, InterfaceAddress, InterfaceFacts } from './facts.js';
import { ansibleFactView, filterFacts } from './ansible-facts.js';

export type { Facts, FactsExtra, InterfaceAddress, InterfaceFacts } from './facts.js';

/** The one facts script. Each section is raw output, so parsing stays on this side and is testable. */
export function factsScript(): string {
  return [
    section('os-release', 'cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null'),
    section('hostname', 'hostname 2>/dev/null || cat /proc/sys/kernel/hostname'),
    section('fqdn', 'hostname -f 2>/dev/null || hostname 2>/dev/null || cat /proc/sys/kernel/hostname'),
    section('uname', 'uname -r -m'),
    section('virt', 'systemd-detect-virt 2>/dev/null'),
    section('virt-container', 'systemd-detect-virt -c 2>/dev/null'),
    // When systemd-detect-virt is missing (minimal images): the files container managers leave behind.
    section(
      'container-hints',
      'if [ -r /run/systemd/container ]; then printf "run_systemd_container=%s\\n" "$(cat /run/systemd/container)"; fi',
      'if [ -e /.dockerenv ]; then echo dockerenv=1; fi',
      'if [ -e /run/.containerenv ]; then echo containerenv=1; fi',
    ),
    section('ip-json', 'ip -j addr 2>/dev/null'),
    section('ip-link', 'ip -o link 2>/dev/null'),
    section('ip-addr', 'ip -o addr 2>/dev/null'),
    section('route', 'ip -o -4 route show default 2>/dev/null'),
    section('meminfo', 'cat /proc/meminfo'),
    section(
      'cpu',
      'printf "nproc=%s\\n" "$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)"',
      "grep -m1 -E '^(model name|Hardware|cpu model|Model)[[:space:]]*:' /proc/cpuinfo 2>/dev/null",
    ),
    section('uname-v', 'uname -v; uname -n'),
    section('debian-version', 'cat /etc/debian_version 2>/dev/null'),
    // The login (or become) user as Ansible's user_* facts, and its environment (NUL-separated: values may
    // hold newlines).
    section(
      'user',
      'printf "id=%s\\nuid=%s\\ngid=%s\\n" "$(id -un)" "$(id -u)" "$(id -g)"',
      'printf "passwd=%s\\n" "$(getent passwd "$(id -u)" | base64 -w0)"',
    ),
    section('env', 'env -0'),
    section(
      'cpu-topology',
      'printf "vcpus=%s\\n" "$(grep -c "^processor" /proc/cpuinfo 2>/dev/null)"',
      'printf "sockets=%s\\n" "$(grep "^physical id" /proc/cpuinfo 2>/dev/null | sort -u | wc -l)"',
      'printf "cores=%s\\n" "$(grep -m1 "^cpu cores" /proc/cpuinfo 2>/dev/null | cut -d: -f2 | tr -d " ")"',
      'printf "vendor=%s\\n" "$(grep -m1 "^vendor_id" /proc/cpuinfo 2>/dev/null | cut -d: -f2 | tr -d " ")"',
      'printf "siblings=%s\\n" "$(grep -m1 "^siblings" /proc/cpuinfo 2>/dev/null | cut -d: -f2 | tr -d " ")"',
      // One model per processor, as Ansible's `processor` list; base64 so a model name cannot add lines.
      'printf "models=%s\\n" "$(grep -E "^model name[[:space:]]*:" /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed "s/^ //" | base64 -w0)"',
    ),
    section('local-time', 'date "+%Y-%m-%d %H:%M:%S %Z %A %z"'),
    section(
      'misc',
      'if [ -e /dev/kvm ]; then echo kvm=1; else echo kvm=0; fi',
      'if [ -d /run/systemd/system ]; then echo run_systemd_system=1; else echo run_systemd_system=0; fi',
      'printf "pid1_comm=%s\\n" "$(cat /proc/1/comm 2>/dev/null)"',
      'printf "epoch=%s\\n" "$(date +%s)"',
      'printf "iso8601=%s\\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"',
      'printf "uptime=%s\\n" "$(cut -d" " -f1 /proc/uptime)"',
    ),
  ].join('\n');
}

/** os-release's KEY="value" lines. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!;
    if (/^".*"$/.test(value)) value = value.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
    else if (/^'.*'$/.test(value)) value = value.slice(1, -1);
    out[m[1]!] = value;
  }
  return out;
}

const FAMILIES: Array<[RegExp, string]> = [
  [/\b(debian|ubuntu|raspbian|linuxmint|devuan|kali)\b/, 'Debian'],
  [/\b(rhel|centos|fedora|rocky|almalinux|ol|amzn)\b/, 'RedHat'],
  [/\b(alpine)\b/, 'Alpine'],
  [/\b(arch|manjaro)\b/, 'Archlinux'],
  [/\b(suse|opensuse|sles|opensuse-leap|opensuse-tumbleweed)\b/, 'Suse'],
];

/** Ansible's os_family from ID and ID_LIKE. */
export function osFamily(id: string, idLike: string): string {
  const words = `${id} ${idLike}`.toLowerCase();
  for (const [pattern, family] of FAMILIES) if (pattern.test(words)) return family;
  return id ? id.charAt(0).toUpperCase() + id.slice(1) : 'unknown';
}

interface IpJsonAddr {
  family?: string;
  local?: string;
  prefixlen?: number;
}
interface IpJsonLink {
  ifname?: string;
  flags?: string[];
  mtu?: number;
  address?: string;
  addr_info?: IpJsonAddr[];
}

/** Interfaces from `ip -j addr`. */
export function parseIpJson(text: string): InterfaceFacts[] | undefined {
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  return (parsed as IpJsonLink[]).map((link) => {
    const addrs = link.addr_info ?? [];
    const pick = (family: string): InterfaceAddress[] =>
      addrs.filter((a) => a.family === family && a.local).map((a) => ({ address: a.local!, prefix: a.prefixlen ?? 0 }));
    return {
      name: link.ifname ?? '',
      mac: link.address ?? '',
      mtu: link.mtu ?? 0,
      up: (link.flags ?? []).includes('UP'),
      ipv4: pick('inet'),
      ipv6: pick('inet6'),
    };
  });
}

/** Interfaces from `ip -o link` and `ip -o addr`, for hosts whose ip has no -j. */
export function parseIpOneline(linkText: string, addrText: string): InterfaceFacts[] {
  const byName = new Map<string, InterfaceFacts>();
  for (const line of linkText.split('\n')) {
    const m = /^\d+:\s+([^:@\s]+)(?:@[^:]+)?:\s+<([^>]*)>.*?\bmtu (\d+)/.exec(line);
    if (!m) continue;
    const mac = /link\/\S+\s+([0-9a-f:]+)/i.exec(line)?.[1] ?? '';
    byName.set(m[1]!, { name: m[1]!, mac, mtu: Number(m[3]), up: m[2]!.split(',').includes('UP'), ipv4: [], ipv6: [] });
  }
  for (const line of addrText.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+(inet6?)\s+([^/\s]+)\/(\d+)/.exec(line);
    if (!m) continue;
    const name = m[1]!.replace(/@.*$/, '');
    let iface = byName.get(name);
    if (!iface) {
      iface = { name, mac: '', mtu: 0, up: false, ipv4: [], ipv6: [] };
      byName.set(name, iface);
    }
    (m[2] === 'inet' ? iface.ipv4 : iface.ipv6).push({ address: m[3]!, prefix: Number(m[4]) });
  }
  return [...byName.values()];
}

function meminfoMb(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+)\\s*kB`, 'm').exec(text);
  return m ? Math.floor(Number(m[1]) / 1024) : 0;
}

/** The first non-empty line of a section. */
function firstLine(text: string | undefined): string {
  return (
    (text ?? '')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? ''
  );
}

/** Parse the facts script's output into Facts (pure). */
export function parseFacts(stdout: string): Facts {
  const s = parseSections(stdout);
  const os = parseOsRelease(s.get('os-release') ?? '');
  const [kernel = '', arch = ''] = firstLine(s.get('uname')).split(/\s+/);
  const hints = parseKeyValues(s.get('container-hints') ?? '');
  let containerType = firstLine(s.get('virt-container'));
  if (containerType === '' || containerType === 'none') {
    containerType =
      hints.get('run_systemd_container') ??
      (hints.get('dockerenv') ? 'docker' : hints.get('containerenv') ? 'podman' : 'none');
  }
  let virtType = firstLine(s.get('virt'));
  const container = containerType !== 'none' && containerType !== '';
  if (container) virtType = containerType;
  if (virtType === '') virtType = 'none';
  const misc = parseKeyValues(s.get('misc') ?? '');
  const kvm = misc.get('kvm') === '1';
  const role: 'guest' | 'host' | 'none' = virtType !== 'none' ? 'guest' : kvm ? 'host' : 'none';

  const interfaces =
    parseIpJson(s.get('ip-json') ?? '') ?? parseIpOneline(s.get('ip-link') ?? '', s.get('ip-addr') ?? '');
  const route = firstLine(s.get('route'));
  const routeIface = /\bdev (\S+)/.exec(route)?.[1] ?? '';
  const gateway = /\bvia (\S+)/.exec(route)?.[1] ?? '';
  const defaultAddress = interfaces.find((i) => i.name === routeIface)?.ipv4[0]?.address ?? '';

  const meminfo = s.get('meminfo') ?? '';
  const cpu = parseKeyValues(s.get('cpu') ?? '');
  const model =
    /^[^:]+:\s*(.*)$/m.exec((s.get('cpu') ?? '').split('\n').find((l) => l.includes(':')) ?? '')?.[1]?.trim() ?? '';
  const hostname = firstLine(s.get('hostname'));
  return {
    hostname,
    fqdn: firstLine(s.get('fqdn')) || hostname,
    os: {
      id: os.ID ?? '',
      version_id: os.VERSION_ID ?? '',
      codename: os.VERSION_CODENAME ?? '',
      pretty_name: os.PRETTY_NAME ?? '',
      family: osFamily(os.ID ?? '', os.ID_LIKE ?? ''),
    },
    kernel,
    arch,
    virtualization: { type: virtType, role, container },
    interfaces,
    default_ipv4: { interface: routeIface, address: defaultAddress, gateway },
    memory: {
      total_mb: meminfoMb(meminfo, 'MemTotal'),
      available_mb: meminfoMb(meminfo, 'MemAvailable'),
      swap_total_mb: meminfoMb(meminfo, 'SwapTotal'),
    },
    cpu: { count: Number(cpu.get('nproc') ?? '0') || 0, model },
    kvm,
    pid1_systemd: misc.get('run_systemd_system') === '1' || misc.get('pid1_comm') === 'systemd',
    date: { epoch: Number(misc.get('epoch') ?? '0'), iso8601: misc.get('iso8601') ?? '' },
    uptime_seconds: Math.floor(Number(misc.get('uptime') ?? '0')),
    ...(s.has('user') ? { extra: parseExtra(s, meminfo, misc.get('pid1_comm') ?? '') } : {}),
  };
}

const count = (value: string | undefined): number => (/^\d{1,9}$/.test(value ?? '') ? Number(value) : 0);

/** The sections only Ansible's fact names use (pure). Values that are not what the tools print are dropped. */
function parseExtra(s: Map<string, string>, meminfo: string, pid1Comm: string): FactsExtra {
  const user = parseKeyValues(s.get('user') ?? '');
  const passwdB64 = user.get('passwd') ?? '';
  const passwd = /^[A-Za-z0-9+/]*={0,2}$/.test(passwdB64) ? Buffer.from(passwdB64, 'base64').toString('utf8') : '';
  const pw = passwd.replace(/\n$/, '').split(':');
  const env: Record<string, string> = {};
  for (const entry of (s.get('env') ?? '').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  const topo = parseKeyValues(s.get('cpu-topology') ?? '');
  const modelsB64 = topo.get('models') ?? '';
  const models = /^[A-Za-z0-9+/]*={0,2}$/.test(modelsB64)
    ? Buffer.from(modelsB64, 'base64')
        .toString('utf8')
        .split('\n')
        .filter((m) => m !== '')
    : [];
  const cores = count(topo.get('cores'));
  const siblings = count(topo.get('siblings'));
  const [kernelVersion = '', nodename = ''] = (s.get('uname-v') ?? '').split('\n');
  return {
    debian_version: firstLine(s.get('debian-version')),
    kernel_version: kernelVersion.trim(),
    nodename: nodename.trim(),
    user: {
      id: user.get('id') ?? '',
      uid: count(user.get('uid')),
      gid: count(user.get('gid')),
      gecos: pw[4] ?? '',
      dir: pw[5] ?? '',
      shell: pw[6] ?? '',
    },
    env,
    cpu: {
      vcpus: count(topo.get('vcpus')),
      sockets: count(topo.get('sockets')),
      cores_per_socket: cores,
      vendor: topo.get('vendor') ?? '',
      threads_per_core: cores > 0 && siblings > 0 ? Math.max(1, Math.floor(siblings / cores)) : 1,
      models,
    },
    memory: { free_mb: meminfoMb(meminfo, 'MemFree'), swap_free_mb: meminfoMb(meminfo, 'SwapFree') },
    pid1_comm: pid1Comm,
    local_time: firstLine(s.get('local-time')),
  };
}

/** Ansible's gather_subset words (ansible/module_utils/facts/default_collectors.py), each also with '!'. */
const SUBSET = /^!?(all|min|hardware|network|virtual|ohai|facter|[a-z][a-z0-9_]*)$/;

export interface SetupArgs {
  filter?: string | string[];
  gather_subset?: string | string[];
  gather_timeout?: number;
  fact_path?: string;
}

const asList = (value: string | string[] | undefined): string[] =>
  value === undefined
    ? []
    : Array.isArray(value)
      ? value
      : value
          .split(',')
          .map((v) => v.trim())
          .filter(Boolean);

export const setupModule: Module<SetupArgs> = {
  name: 'setup',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      filter: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
      // cairn gathers its one fixed set in one round trip whatever the subset; the words are still checked.
      gather_subset: {
        anyOf: [
          { type: 'string', pattern: '^\\s*!?[a-z][a-z0-9_]*(\\s*,\\s*!?[a-z][a-z0-9_]*)*\\s*$' },
          { type: 'array', items: { type: 'string', pattern: SUBSET.source } },
        ],
      },
      gather_timeout: { type: 'integer', minimum: 1 },
      fact_path: { type: 'string' },
    },
  },

  async check(ctx, args): Promise<Planned> {
    const res = await runScript(ctx, factsScript());
    if (res.code !== 0 && !res.stdout.includes('os-release'))
      return { changed: false, actions: [], failed: `gathering facts failed: ${failureText(res)}` };
    const facts = parseFacts(res.stdout);
    return {
      changed: false,
      actions: [],
      data: {
        facts: facts as unknown as Record<string, unknown>,
        ansible_facts: filterFacts(ansibleFactView(facts), asList(args.filter)),
      },
    };
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
