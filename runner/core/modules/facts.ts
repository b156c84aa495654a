/** cairn's fact tree, as setup gathers it (parsed in setup.ts, named the Ansible way in ansible-facts.ts). */

export interface InterfaceAddress {
  address: string;
  prefix: number;
}

export interface InterfaceFacts {
  name: string;
  mac: string;
  mtu: number;
  up: boolean;
  ipv4: InterfaceAddress[];
  ipv6: InterfaceAddress[];
}

export interface Facts {
  hostname: string;
  fqdn: string;
  os: { id: string; version_id: string; codename: string; pretty_name: string; family: string };
  kernel: string;
  arch: string;
  virtualization: { type: string; role: 'guest' | 'host' | 'none'; container: boolean };
  interfaces: InterfaceFacts[];
  default_ipv4: { interface: string; address: string; gateway: string };
  memory: { total_mb: number; available_mb: number; swap_total_mb: number };
  cpu: { count: number; model: string };
  kvm: boolean;
  pid1_systemd: boolean;
  date: { epoch: number; iso8601: string };
  uptime_seconds: number;
  /** What Ansible's fact names need beyond cairn's tree (see ansible-facts.ts); absent on old captures. */
  extra?: FactsExtra;
}

/** Raw values only Ansible's fact names use: the login user, the environment, CPU topology, local time. */
export interface FactsExtra {
  /** /etc/debian_version ("12.5"): Ansible's distribution_version on Debian. */
  debian_version: string;
  kernel_version: string;
  nodename: string;
  user: { id: string; uid: number; gid: number; gecos: string; dir: string; shell: string };
  env: Record<string, string>;
  cpu: {
    vcpus: number;
    sockets: number;
    cores_per_socket: number;
    threads_per_core: number;
    vendor: string;
    models: string[];
  };
  memory: { free_mb: number; swap_free_mb: number };
  pid1_comm: string;
  /** Local time as the host shows it: "2026-12-07 08:30:01 UTC Monday +0000". */
  local_time: string;
}
