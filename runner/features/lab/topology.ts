/**
 * Which hosts the lab runs, in which groups, at which addresses. The default is the platform's shape
 * (two load balancers, two web backends, a monitoring host, three virtualisation/storage nodes started on
 * demand); a YAML topology file can describe any other set.
 */
import { CairnError, optionsError } from '../../core/util/errors.js';
import { validateAt } from '../../core/util/schema.js';
import { errorAt, loadYamlFile, type LoadedYaml } from '../../core/util/yaml-source.js';
import { formatIpv4, parseIpv4, parseSubnet24, type Subnet24 } from './ipv4.js';

export const DEFAULT_BRIDGE = 'cairnbr0';
export const DEFAULT_SUBNET = '10.77.0.0/24';
/**
 * The management network (document 001: management and service networks separate): a second bridge, and in every
 * container a second interface on it. Its /24 defaults to the one after the service subnet (10.77.1.0/24).
 */
export const DEFAULT_MANAGEMENT_BRIDGE = 'cairnbr1';
/** The management interface inside a container (the service one is nspawn's host0). */
export const MANAGEMENT_INTERFACE = 'mgmt0';
/** The machine running cairn sits on the bridge at .1; the VIP for keepalived is reserved at .10. */
export const BRIDGE_HOST_OCTET = 1;
export const DEFAULT_VIP_OCTET = 10;
/** Host-side interfaces are named vb-<machine> and Linux allows 15 characters. */
export const MAX_HOST_NAME = 12;

/** Extra device nodes a host gets: /dev/kvm for qemu, /dev/fuse for zfs-fuse, loop devices for file-backed disks. */
export type LabDevice = 'kvm' | 'fuse' | 'loop';
export const LAB_DEVICES: readonly LabDevice[] = ['kvm', 'fuse', 'loop'];

/** A container shares this machine's kernel; a VM boots its own under qemu (runner/features/lab/vm.ts). */
export type LabHostKind = 'container' | 'vm';
export const LAB_HOST_KINDS: readonly LabHostKind[] = ['container', 'vm'];

/** What a VM gets: memory and vCPUs, and its data disks (sparse files) by size. */
export interface LabVmSpec {
  memoryMiB: number;
  cpus: number;
  /** One entry per data disk, in GiB; the disks appear in the VM as /dev/disk/by-id/virtio-NAME-dN. */
  disksGiB: number[];
  /**
   * Boot the VM image with OpenZFS (zfs-dkms's module built for its kernel). Its own image, built only when a
   * VM asks for it: the zfs-dkms build is most of ten minutes, the base VM image about one (vm.ts).
   */
  zfs: boolean;
}

/**
 * A pve node run as a VM (`lab up --vm`): enough memory for ceph or zfs under TCG, six data disks, OpenZFS
 * (the zfs role runs on the pve nodes).
 */
export const DEFAULT_VM: Readonly<LabVmSpec> = {
  memoryMiB: 2048,
  cpus: 1,
  disksGiB: [16, 16, 16, 16, 16, 16],
  zfs: true,
};

export interface LabHostSpec {
  name: string;
  address: string;
  groups: string[];
  devices: LabDevice[];
  /** Absent means a container (state files written before VMs existed have no kind). */
  kind?: LabHostKind;
  /** Only for kind 'vm'. */
  vm?: LabVmSpec;
}

export function hostKind(host: Pick<LabHostSpec, 'kind'>): LabHostKind {
  return host.kind ?? 'container';
}

/** The management bridge: SSH from cairn, monitoring scrapes, backups; service traffic stays on `bridge`. */
export interface LabManagementNetwork {
  bridge: string;
  subnet: Subnet24;
  /** This machine's address on it (.1): where cairn connects from. */
  bridgeAddress: string;
}

export interface LabTopology {
  /** Where it came from: a file path, "default" or "--hosts N". */
  source: string;
  bridge: string;
  subnet: Subnet24;
  /** This machine's address on the bridge. */
  bridgeAddress: string;
  vip: string;
  /** Absent in the state of a lab brought up before the management bridge existed. */
  management?: LabManagementNetwork;
  hosts: LabHostSpec[];
}

/**
 * A host's address on the management bridge: the same last octet in the management /24. VMs have no
 * management interface (yet): undefined, and everything reaches them on the service bridge.
 */
export function managementAddress(
  topology: Pick<LabTopology, 'management' | 'subnet'>,
  host: Pick<LabHostSpec, 'address' | 'kind'>,
): string | undefined {
  if (!topology.management || hostKind(host) !== 'container') return undefined;
  const address = parseIpv4(host.address);
  if (address === undefined) return undefined;
  return formatIpv4(topology.management.subnet.base + (address - topology.subnet.base));
}

/** The address cairn (SSH, known_hosts, `lab ssh`) reaches a host on: management when it has one. */
export function sshAddress(
  topology: Pick<LabTopology, 'management' | 'subnet'>,
  host: Pick<LabHostSpec, 'address' | 'kind'>,
): string {
  return managementAddress(topology, host) ?? host.address;
}

function managementNetwork(subnet: Subnet24, text?: string): LabManagementNetwork | undefined {
  const parsed = text === undefined ? nextSubnet(subnet) : parseSubnet24(text);
  if (!parsed) return undefined;
  return {
    bridge: DEFAULT_MANAGEMENT_BRIDGE,
    subnet: parsed,
    bridgeAddress: formatIpv4(parsed.base + BRIDGE_HOST_OCTET),
  };
}

function nextSubnet(subnet: Subnet24): Subnet24 | undefined {
  return parseSubnet24(`${formatIpv4(subnet.base + 256)}/24`);
}

interface DefaultHost {
  name: string;
  octet: number;
  groups: string[];
  devices: LabDevice[];
  /** pve nodes only come up with --with-pve (they cost memory and time nothing else needs). */
  onDemand: boolean;
}

export const DEFAULT_HOSTS: readonly DefaultHost[] = [
  { name: 'lb1', octet: 11, groups: ['lb'], devices: [], onDemand: false },
  { name: 'lb2', octet: 12, groups: ['lb'], devices: [], onDemand: false },
  { name: 'web1', octet: 21, groups: ['web'], devices: [], onDemand: false },
  { name: 'web2', octet: 22, groups: ['web'], devices: [], onDemand: false },
  { name: 'mon1', octet: 31, groups: ['mon'], devices: [], onDemand: false },
  { name: 'pve1', octet: 41, groups: ['pve'], devices: ['kvm', 'fuse', 'loop'], onDemand: true },
  { name: 'pve2', octet: 42, groups: ['pve'], devices: ['kvm', 'fuse', 'loop'], onDemand: true },
  { name: 'pve3', octet: 43, groups: ['pve'], devices: ['kvm', 'fuse', 'loop'], onDemand: true },
];

/** Groups every lab inventory has, even when empty, so playbooks can name them. */
export const STANDARD_GROUPS: readonly string[] = ['lb', 'web', 'mon', 'pve'];
/** The group the generated inventory puts every VM in (runner/features/lab/inventory.ts): not for topologies. */
export const LAB_VM_GROUP = 'lab_vm';

function baseTopology(source: string, subnet = parseSubnet24(DEFAULT_SUBNET)!): Omit<LabTopology, 'hosts'> {
  return {
    source,
    bridge: DEFAULT_BRIDGE,
    subnet,
    bridgeAddress: formatIpv4(subnet.base + BRIDGE_HOST_OCTET),
    vip: formatIpv4(subnet.base + DEFAULT_VIP_OCTET),
    management: managementNetwork(subnet),
  };
}

/**
 * The default topology: lb1, lb2, web1, web2, mon1, and pve1-3 with `withPve`. (Not `mon`: a host may not
 * share a name with a group, and `mon` is the monitoring group.)
 */
export function defaultTopology(withPve = false, pveAsVms = false): LabTopology {
  const base = baseTopology(pveAsVms ? 'default (--vm)' : 'default');
  const hosts = DEFAULT_HOSTS.filter((h) => withPve || pveAsVms || !h.onDemand).map((h): LabHostSpec => {
    const spec: LabHostSpec = {
      name: h.name,
      address: formatIpv4(base.subnet.base + h.octet),
      groups: [...h.groups],
      devices: [...h.devices],
    };
    // A VM has its own kernel and real block devices: /dev/kvm, fuse and loop are what containers lacked.
    return pveAsVms && h.groups.includes('pve')
      ? { ...spec, devices: [], kind: 'vm', vm: { ...DEFAULT_VM, disksGiB: [...DEFAULT_VM.disksGiB] } }
      : spec;
  });
  return { ...base, hosts };
}

/** The first N hosts of the full default list (pve nodes included when N > 5); past eight, node9, node10, ... */
export function topologyOfSize(count: number): LabTopology {
  if (!Number.isInteger(count) || count < 1 || count > 200)
    throw optionsError(`--hosts must be a whole number from 1 to 200, got ${count}`);
  const base = baseTopology(`--hosts ${count}`);
  const hosts: LabHostSpec[] = [];
  for (let i = 0; i < count; i++) {
    const known = DEFAULT_HOSTS[i];
    if (known) {
      hosts.push({
        name: known.name,
        address: formatIpv4(base.subnet.base + known.octet),
        groups: [...known.groups],
        devices: [...known.devices],
      });
    } else {
      // After the eight named hosts, addresses continue from .101 upward.
      hosts.push({
        name: `node${i + 1}`,
        address: formatIpv4(base.subnet.base + 101 + (i - DEFAULT_HOSTS.length)),
        groups: ['nodes'],
        devices: [],
      });
    }
  }
  return { ...base, hosts };
}

const HOST_NAME_PATTERN = '^[a-z][a-z0-9-]{0,11}$';
const GROUP_NAME_PATTERN = '^[a-z_][a-z0-9_]*$';
const IPV4_PATTERN = '^[0-9]{1,3}(\\.[0-9]{1,3}){3}$';

export const TOPOLOGY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['hosts'],
  properties: {
    network: {
      type: 'object',
      additionalProperties: false,
      properties: {
        subnet: { type: 'string', pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}/24$' },
        management_subnet: { type: 'string', pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}/24$' },
        vip: { type: 'string', pattern: IPV4_PATTERN },
      },
    },
    hosts: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: HOST_NAME_PATTERN },
          groups: { type: 'array', items: { type: 'string', pattern: GROUP_NAME_PATTERN } },
          address: { type: 'string', pattern: IPV4_PATTERN },
          devices: { type: 'array', items: { type: 'string', enum: [...LAB_DEVICES] } },
          kind: { type: 'string', enum: [...LAB_HOST_KINDS] },
          memory: { type: 'integer', minimum: 512, maximum: 16384, description: 'MiB, VMs only' },
          cpus: { type: 'integer', minimum: 1, maximum: 8 },
          disks: { type: 'array', maxItems: 12, items: { type: 'integer', minimum: 1, maximum: 2048 } },
          zfs: { type: 'boolean', description: 'VMs only: boot the VM image with OpenZFS (built once when asked for)' },
        },
      },
    },
  },
} as const;

interface TopologyFileHost {
  name: string;
  groups?: string[];
  address?: string;
  devices?: LabDevice[];
  kind?: LabHostKind;
  memory?: number;
  cpus?: number;
  disks?: number[];
  zfs?: boolean;
}
interface TopologyFile {
  network?: { subnet?: string; management_subnet?: string; vip?: string };
  hosts: TopologyFileHost[];
}

export function loadTopologyFile(file: string): LabTopology {
  return topologyFromYaml(loadYamlFile(file, 'lab topology file'));
}

/** Validate a loaded topology document; every error names file:line:col. */
export function topologyFromYaml(loaded: LoadedYaml): LabTopology {
  validateAt(loaded, TOPOLOGY_SCHEMA, 'lab topology');
  const doc = loaded.value as TopologyFile;
  let subnet = parseSubnet24(DEFAULT_SUBNET)!;
  if (doc.network?.subnet !== undefined) {
    const parsed = parseSubnet24(doc.network.subnet);
    if (!parsed)
      throw errorAt(
        loaded,
        ['network', 'subnet'],
        `lab topology: "subnet" must be a /24 network address such as ${DEFAULT_SUBNET}, got ${doc.network.subnet}`,
      );
    if (!isPrivate(parsed.base)) {
      throw errorAt(
        loaded,
        ['network', 'subnet'],
        `lab topology: "subnet" must be a private range (10/8, 172.16/12 or 192.168/16) so lab traffic stays on this machine, got ${doc.network.subnet}`,
      );
    }
    subnet = parsed;
  }
  const base = baseTopology(loaded.file, subnet);
  const managementText = doc.network?.management_subnet;
  const management = managementNetwork(subnet, managementText);
  const managementPath = managementText === undefined ? ['network', 'subnet'] : ['network', 'management_subnet'];
  if (!management)
    throw errorAt(
      loaded,
      managementPath,
      `lab topology: "management_subnet" must be a /24 network address such as 10.77.1.0/24, got ${managementText}`,
    );
  if (!isPrivate(management.subnet.base))
    throw errorAt(
      loaded,
      managementPath,
      `lab topology: the management network ${management.subnet.text} must be a private range (10/8, 172.16/12 or 192.168/16) so lab traffic stays on this machine${managementText === undefined ? '; set "management_subnet"' : ''}`,
    );
  if (management.subnet.base === subnet.base)
    throw errorAt(
      loaded,
      managementPath,
      `lab topology: the management network must differ from "subnet" (${subnet.text})`,
    );
  base.management = management;
  const reserved = new Map<number, string>([[subnet.base + BRIDGE_HOST_OCTET, 'the bridge address of this machine']]);
  if (doc.network?.vip !== undefined) {
    const vip = hostAddressIn(loaded, ['network', 'vip'], doc.network.vip, subnet, reserved);
    base.vip = formatIpv4(vip);
  }
  reserved.set(parseIpv4(base.vip)!, 'the VIP');

  const seen = new Map<string, number>();
  const hosts: LabHostSpec[] = [];
  const pendingAuto: number[] = [];
  doc.hosts.forEach((host, index) => {
    if (seen.has(host.name)) {
      throw errorAt(
        loaded,
        ['hosts', index, 'name'],
        `lab topology: host "${host.name}" is listed twice (first as hosts[${seen.get(host.name)}])`,
      );
    }
    seen.set(host.name, index);
    const groups = [...new Set(host.groups ?? [])];
    const badGroup = groups.find((g) => g === 'all' || g === 'ungrouped');
    if (badGroup)
      throw errorAt(
        loaded,
        ['hosts', index, 'groups'],
        `lab topology: "${badGroup}" is implicit in every inventory; list only real groups`,
      );
    if (groups.includes(LAB_VM_GROUP))
      throw errorAt(
        loaded,
        ['hosts', index, 'groups'],
        `lab topology: "${LAB_VM_GROUP}" is given to every VM by the lab; mark the host \`kind: vm\` instead`,
      );
    let address = '';
    if (host.address !== undefined) {
      const value = hostAddressIn(loaded, ['hosts', index, 'address'], host.address, subnet, reserved);
      reserved.set(value, `host ${host.name}`);
      address = formatIpv4(value);
    } else {
      pendingAuto.push(index);
    }
    const spec: LabHostSpec = { name: host.name, address, groups, devices: [...new Set(host.devices ?? [])] };
    if (host.kind === 'vm') {
      if (spec.devices.length > 0)
        throw errorAt(
          loaded,
          ['hosts', index, 'devices'],
          `lab topology: host "${host.name}" is a VM; "devices" (bound into containers) does not apply to it`,
        );
      spec.kind = 'vm';
      spec.vm = {
        memoryMiB: host.memory ?? DEFAULT_VM.memoryMiB,
        cpus: host.cpus ?? DEFAULT_VM.cpus,
        disksGiB: [...(host.disks ?? DEFAULT_VM.disksGiB)],
        // A topology file's VM gets OpenZFS only when it asks: the base VM image is minutes cheaper.
        zfs: host.zfs ?? false,
      };
    } else {
      for (const key of ['memory', 'cpus', 'disks', 'zfs'] as const) {
        if (host[key] !== undefined)
          throw errorAt(
            loaded,
            ['hosts', index, key],
            `lab topology: "${key}" is for VMs; add \`kind: vm\` to host "${host.name}" or remove it`,
          );
      }
      if (host.kind === 'container') spec.kind = 'container';
    }
    hosts.push(spec);
  });
  // Inventories (and host patterns) cannot tell a host from a group of the same name.
  const groupNames = new Set([...STANDARD_GROUPS, ...hosts.flatMap((h) => h.groups)]);
  const clash = hosts.findIndex((h) => groupNames.has(h.name));
  if (clash >= 0) {
    throw errorAt(
      loaded,
      ['hosts', clash, 'name'],
      `lab topology: host "${hosts[clash]!.name}" has the name of a group; name it differently (for example ${hosts[clash]!.name}1)`,
    );
  }

  // Hosts without an address get the lowest free ones from .11 upward, in file order.
  let next = subnet.base + 11;
  for (const index of pendingAuto) {
    while (reserved.has(next)) next++;
    if (next > subnet.base + 254)
      throw errorAt(
        loaded,
        ['hosts', index],
        `lab topology: no free address left in ${subnet.text} for host "${hosts[index]!.name}"`,
      );
    reserved.set(next, `host ${hosts[index]!.name}`);
    hosts[index]!.address = formatIpv4(next);
  }
  return { ...base, hosts };
}

function hostAddressIn(
  loaded: LoadedYaml,
  path: Array<string | number>,
  text: string,
  subnet: Subnet24,
  reserved: Map<number, string>,
): number {
  const value = parseIpv4(text);
  if (value === undefined) throw errorAt(loaded, path, `lab topology: ${text} is not an IPv4 address`);
  if (value < subnet.base || value > subnet.base + 255)
    throw errorAt(loaded, path, `lab topology: ${text} is outside the lab subnet ${subnet.text}`);
  const octet = value - subnet.base;
  if (octet === 0 || octet === 255)
    throw errorAt(loaded, path, `lab topology: ${text} is the network or broadcast address of ${subnet.text}`);
  const taken = reserved.get(value);
  if (taken) throw errorAt(loaded, path, `lab topology: ${text} is already ${taken}`);
  return value;
}

function isPrivate(address: number): boolean {
  const a = Math.floor(address / 2 ** 24);
  const b = Math.floor(address / 2 ** 16) % 256;
  return a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168);
}

/**
 * Hosts of `wanted` must not contradict hosts already running under the same name (another address or other
 * groups): a running container cannot change address in place.
 */
export function checkCompatible(running: LabTopology, wanted: LabTopology): void {
  if (running.subnet.text !== wanted.subnet.text || running.bridge !== wanted.bridge) {
    throw optionsError(
      `the lab is up on ${running.bridge} ${running.subnet.text}, but ${wanted.source} asks for ${wanted.bridge} ${wanted.subnet.text}; run \`cairn lab down\` first`,
    );
  }
  if (running.management?.subnet.text !== wanted.management?.subnet.text) {
    const describe = (t: LabTopology) =>
      t.management ? `management network ${t.management.bridge} ${t.management.subnet.text}` : 'no management network';
    throw optionsError(
      `the lab is up with ${describe(running)}, but ${wanted.source} asks for ${describe(wanted)}; run \`cairn lab down\` first`,
    );
  }
  if (running.vip !== wanted.vip) {
    throw optionsError(
      `the lab is up with VIP ${running.vip}, but ${wanted.source} asks for ${wanted.vip}; run \`cairn lab down\` first`,
    );
  }
  const byName = new Map(running.hosts.map((h) => [h.name, h]));
  const byAddress = new Map(running.hosts.map((h) => [h.address, h.name]));
  for (const host of wanted.hosts) {
    const existing = byName.get(host.name);
    if (existing) {
      const same =
        existing.address === host.address &&
        existing.groups.join(',') === host.groups.join(',') &&
        [...existing.devices].sort().join(',') === [...host.devices].sort().join(',') &&
        hostKind(existing) === hostKind(host) &&
        JSON.stringify(existing.vm ?? null) === JSON.stringify(host.vm ?? null);
      if (!same) {
        const describe = (h: LabHostSpec) =>
          `${hostKind(h) === 'vm' ? 'a VM ' : ''}${h.address} [${h.groups.join(', ')}]`;
        throw optionsError(
          `host ${host.name} is up as ${describe(existing)}, but ${wanted.source} describes it as ${describe(host)}; run \`cairn lab down\` first`,
        );
      }
    } else {
      const holder = byAddress.get(host.address);
      if (holder)
        throw optionsError(
          `${wanted.source} gives ${host.name} the address ${host.address}, which lab host ${holder} already has; run \`cairn lab down\` first`,
        );
    }
  }
}

/** The union of what runs and what is wanted, running hosts first (their order is kept). */
export function mergeTopologies(running: LabTopology, wanted: LabTopology): LabTopology {
  const names = new Set(running.hosts.map((h) => h.name));
  return {
    ...running,
    source: wanted.source,
    hosts: [...running.hosts, ...wanted.hosts.filter((h) => !names.has(h.name))],
  };
}

/** Look a host up by name, or say which hosts there are. */
export function findHost(topology: Pick<LabTopology, 'hosts'>, name: string): LabHostSpec {
  const host = topology.hosts.find((h) => h.name === name);
  if (!host) {
    const known = topology.hosts.map((h) => h.name).join(', ');
    throw new CairnError(
      known
        ? `no lab host named "${name}" (the lab has: ${known})`
        : `no lab host named "${name}": the lab is not up (run \`cairn lab up\`)`,
      { kind: 'options' },
    );
  }
  return host;
}
