/**
 * One lab host: an overlay on the base image (upper/work per host, kept while the host is stopped) booted
 * by systemd-nspawn under a small supervisor loop that boots it again when the container reboots (nspawn
 * exits 133). The supervisor is started detached; its pid and start time go to the state file, so stop,
 * kill and down end exactly these processes.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CairnError } from '../../core/util/errors.js';
import { argv } from '../../core/transport/quote.js';
import { runChecked } from './exec.js';
import { currentMounts, isMountPoint } from './mounts.js';
import { hostPaths, REPO_MOUNT_POINT, type HostPaths } from './paths.js';
import { findExecutable } from './preflight.js';
import {
  allProcesses,
  descendantsOf,
  isAlive,
  namespacePids,
  processInfo,
  signal,
  waitForExit,
  type ProcessInfo,
  type ProcessRef,
} from './proc.js';
import { writeFileAtomic } from './ssh.js';
import { managementVethName } from './network.js';
import { MANAGEMENT_INTERFACE, managementAddress, sshAddress } from './topology.js';
import type { LabDevice, LabHostSpec, LabTopology } from './topology.js';

/** nspawn's exit status when the container asked to reboot. */
export const NSPAWN_REBOOT_EXIT = 133;

export interface HostContext {
  imageRoot: string;
  repoDir: string;
  topology: Pick<LabTopology, 'bridge' | 'bridgeAddress' | 'hosts' | 'subnet' | 'management'>;
  publicKey: string;
}

// ---------------------------------------------------------------------------------------------------------
// The host's disk

export async function mountOverlay(name: string, imageRoot: string): Promise<HostPaths> {
  const paths = hostPaths(name);
  for (const dir of [paths.upper, paths.work, paths.root]) mkdirSync(dir, { recursive: true });
  if (!isMountPoint(paths.root, currentMounts())) {
    // lowerdir is a path list separated by ':'; the lab's paths never contain ':' or ','.
    const options = `lowerdir=${imageRoot},upperdir=${paths.upper},workdir=${paths.work}`;
    await runChecked(
      'mount',
      ['-t', 'overlay', `cairn-lab-${name}`, '-o', options, paths.root],
      `mounting the disk of lab host ${name}`,
    );
  }
  return paths;
}

/**
 * The systemd-networkd unit for a lab host's link on the service bridge (`host0`) or, for a container, on the
 * management bridge (`mgmt0`); a container's also matches on the virtualization, a VM's link is its only `host0`.
 */
export function networkUnit(
  address: string,
  kind: 'container' | 'vm' = 'container',
  link: 'host0' | typeof MANAGEMENT_INTERFACE = 'host0',
): string {
  const bridge = link === 'host0' ? 'lab bridge' : 'lab management bridge';
  return [
    `# Written by cairn lab: this ${kind === 'vm' ? 'VM' : 'host'}'s address on the ${bridge}. No gateway: the lab has no route out.`,
    '[Match]',
    ...(kind === 'container' ? ['Virtualization=container'] : []),
    `Name=${link}`,
    '',
    '[Network]',
    `Address=${address}/24`,
    'LinkLocalAddressing=no',
    'IPv6AcceptRA=no',
    'LLMNR=no',
    'MulticastDNS=no',
    '',
  ].join('\n');
}

const HOSTS_BEGIN = '# BEGIN cairn lab hosts';
const HOSTS_END = '# END cairn lab hosts';

/**
 * /etc/hosts with every lab name; the lab's block is replaced, any other line a role added is kept. Names are
 * management addresses where hosts have them: what goes by name (SSH between hosts: backups to the backup server,
 * live migration) is management traffic; service traffic (the VIP, backends, VRRP, Ceph, corosync) goes to each
 * host's `service_address`.
 */
export function hostsFile(
  existing: string | undefined,
  topology: Pick<LabTopology, 'bridgeAddress' | 'hosts' | 'management' | 'subnet'>,
): string {
  const block = [
    HOSTS_BEGIN,
    `${topology.management?.bridgeAddress ?? topology.bridgeAddress}\tcairn-controller`,
    ...topology.hosts.map((h) => `${sshAddress(topology, h)}\t${h.name}`),
    HOSTS_END,
  ];
  const base = existing ?? '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n';
  const lines = base.split('\n');
  const begin = lines.indexOf(HOSTS_BEGIN);
  const end = lines.indexOf(HOSTS_END);
  let kept: string[];
  if (begin >= 0 && end > begin) kept = [...lines.slice(0, begin), ...block, ...lines.slice(end + 1)];
  else kept = [...lines.filter((l, i) => !(l === '' && i === lines.length - 1)), ...block, ''];
  return kept.join('\n').replace(/\n*$/, '\n');
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function writeInto(root: string, relative: string, text: string, mode = 0o644): void {
  const path = join(root, relative);
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, text, mode);
}

/**
 * Per-host files, written through the mounted overlay (so they land in the host's upper dir): address,
 * names, hostname, machine-id (once), the lab's key in root's authorized_keys (added, never replacing keys
 * roles put there).
 */
export function writeHostFiles(spec: LabHostSpec, ctx: HostContext, paths: HostPaths): void {
  const root = paths.root;
  writeInto(root, 'etc/systemd/network/80-container-host0.network', networkUnit(spec.address));
  const management = managementAddress(ctx.topology, spec);
  if (management)
    writeInto(
      root,
      `etc/systemd/network/80-container-${MANAGEMENT_INTERFACE}.network`,
      networkUnit(management, 'container', MANAGEMENT_INTERFACE),
    );
  writeInto(root, 'etc/hosts', hostsFile(readIfExists(join(root, 'etc/hosts')), ctx.topology));
  writeInto(root, 'etc/hostname', `${spec.name}\n`);
  const machineId = readIfExists(join(root, 'etc/machine-id'))?.trim() ?? '';
  if (!/^[0-9a-f]{32}$/.test(machineId))
    writeInto(root, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  // Linger keeps root's systemd user manager alive between SSH sessions: without it, every last logout
  // stops user@0.service and, on a loaded machine, the next login waits for that stop (up to ~15 s).
  writeInto(root, 'var/lib/systemd/linger/root', '');
  const authorized = join(root, 'root/.ssh/authorized_keys');
  const current = readIfExists(authorized) ?? '';
  if (!current.split('\n').some((line) => line.trim() === ctx.publicKey)) {
    mkdirSync(dirname(authorized), { recursive: true, mode: 0o700 });
    writeFileAtomic(authorized, `${current}${current && !current.endsWith('\n') ? '\n' : ''}${ctx.publicKey}\n`, 0o600);
  }
}

/** Refresh only /etc/hosts (after hosts were added to a running lab). */
export function refreshHostsFile(
  name: string,
  topology: Pick<LabTopology, 'bridgeAddress' | 'hosts' | 'management' | 'subnet'>,
): void {
  const root = hostPaths(name).root;
  if (!existsSync(join(root, 'etc'))) return;
  writeInto(root, 'etc/hosts', hostsFile(readIfExists(join(root, 'etc/hosts')), topology));
}

// ---------------------------------------------------------------------------------------------------------
// Processes

const DEVICE_NODES: Record<LabDevice, string> = { kvm: '/dev/kvm', fuse: '/dev/fuse', loop: '/dev/loop-control' };

export function nspawnArgs(
  spec: LabHostSpec,
  ctx: Pick<HostContext, 'repoDir' | 'topology'>,
  paths: HostPaths,
): string[] {
  const args = [
    '-q',
    `--directory=${paths.root}`,
    '--boot',
    `--machine=${spec.name}`,
    `--hostname=${spec.name}`,
    '--register=no',
    '--keep-unit',
    `--network-bridge=${ctx.topology.bridge}`,
    // The management link: nspawn makes the veth pair (mgmt0 inside), the supervisor puts this end on the bridge.
    ...(managementAddress(ctx.topology, spec)
      ? [`--network-veth-extra=${managementVethName(spec.name)}:${MANAGEMENT_INTERFACE}`]
      : []),
    '--resolv-conf=off',
    '--timezone=off',
    '--link-journal=no',
    '--console=read-only',
    `--bind-ro=${ctx.repoDir}:${REPO_MOUNT_POINT}`,
  ];
  for (const device of spec.devices) {
    const node = DEVICE_NODES[device];
    if (existsSync(node)) args.push(`--bind=${node}`);
  }
  // nspawn's default capability set lacks CAP_SYS_RESOURCE, without which systemd inside cannot raise a
  // unit's LimitNOFILE/LimitMEMLOCK above this machine's limits (ceph, zfs-fuse and haproxy tuning need it)
  // nor lower oom_score_adj; qemu also locks guest memory (CAP_IPC_LOCK). CAP_SYS_TIME stays out: the clock
  // is this machine's.
  const capabilities = ['CAP_SYS_RESOURCE', ...(spec.devices.includes('kvm') ? ['CAP_IPC_LOCK'] : [])];
  args.push(`--capability=${capabilities.join(',')}`);
  return args;
}

/**
 * The supervisor: boot, and boot again while the container asks to reboot; anything else ends it. With a
 * management bridge, each boot's management veth (made by nspawn, gone with the container's namespace) is put on
 * that bridge as soon as it exists: a short background wait, at most 60 s, beside the boot.
 */
export function supervisorScript(
  spec: LabHostSpec,
  nspawn: readonly string[],
  nspawnPath = 'systemd-nspawn',
  management?: { bridge: string; ipPath?: string },
): string {
  const boot = argv(nspawnPath, ...nspawn);
  const name = quoteForEcho(spec.name);
  const attach = management
    ? [
        `  ( i=0; while [ "$i" -lt 600 ]; do ${argv(management.ipPath ?? 'ip', 'link', 'set', 'dev', managementVethName(spec.name), 'master', management.bridge, 'up')} 2>/dev/null && exit 0; i=$((i + 1)); sleep 0.1; done; echo "cairn-lab: ${name}: management link never appeared" ) &`,
      ]
    : [];
  return [
    'while :; do',
    `  echo "cairn-lab: booting ${name} at $(date -u +%FT%TZ)"`,
    ...attach,
    `  ${boot}`,
    '  rc=$?',
    `  [ "$rc" -eq ${NSPAWN_REBOOT_EXIT} ] || { echo "cairn-lab: ${name} ended with status $rc"; exit "$rc"; }`,
    'done',
  ].join('\n');
}

/** Host names match ^[a-z][a-z0-9-]*$ (the topology schema), so they are safe inside double quotes. */
function quoteForEcho(name: string): string {
  if (!/^[a-z][a-z0-9-]*$/.test(name))
    throw new CairnError(`invalid lab host name ${JSON.stringify(name)}`, { kind: 'input' });
  return name;
}

export function startSupervisor(
  spec: LabHostSpec,
  ctx: HostContext,
  paths: HostPaths,
  opts: { truncateLog?: boolean } = {},
): ProcessRef {
  const logFd = openSync(paths.log, opts.truncateLog ? 'w' : 'a');
  const management = ctx.topology.management;
  const script = supervisorScript(
    spec,
    nspawnArgs(spec, ctx, paths),
    findExecutable('systemd-nspawn') ?? 'systemd-nspawn',
    managementAddress(ctx.topology, spec) && management
      ? { bridge: management.bridge, ipPath: findExecutable('ip') ?? 'ip' }
      : undefined,
  );
  let child;
  try {
    // detached: its own session, so it outlives this process and no terminal signal reaches it.
    child = spawn('/bin/sh', ['-c', script, `cairn-lab-${spec.name}`], {
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
  } finally {
    closeSync(logFd);
  }
  child.unref();
  const pid = child.pid;
  const info = pid === undefined ? undefined : processInfo(pid);
  if (pid === undefined || !info)
    throw new CairnError(`could not start lab host ${spec.name} (see ${paths.log})`, { kind: 'runtime' });
  return { pid, startTime: info.startTime };
}

export interface HostProcesses {
  supervisor?: ProcessInfo;
  nspawn?: ProcessInfo;
  /** The container's PID 1 (systemd), as seen from this machine. */
  init?: ProcessInfo;
}

/** Find the running processes of a host from its supervisor. */
export function hostProcesses(supervisor: ProcessRef | undefined, processes = allProcesses()): HostProcesses {
  if (!supervisor || !isAlive(supervisor)) return {};
  const sup = processes.find((p) => p.pid === supervisor.pid);
  const below = descendantsOf(supervisor.pid, processes);
  const nspawn = below.find((p) => p.comm === 'systemd-nspawn' && p.ppid === supervisor.pid);
  const init = nspawn ? descendantsOf(nspawn.pid, processes).find((p) => isNamespaceInit(p.pid)) : undefined;
  return { supervisor: sup, nspawn, init };
}

function isNamespaceInit(pid: number): boolean {
  const chain = namespacePids(pid);
  return chain.length >= 2 && chain[chain.length - 1] === 1;
}

export function isRunning(supervisor: ProcessRef | undefined): boolean {
  return supervisor !== undefined && isAlive(supervisor);
}

/**
 * Orderly halt: SIGTERM to nspawn makes it shut the container down (systemd stops its units), then it
 * exits 0 and so does the supervisor. Falls back to kill after `timeoutMs`.
 */
export async function stopHost(
  supervisor: ProcessRef | undefined,
  timeoutMs = 30_000,
): Promise<'stopped' | 'killed' | 'not running'> {
  if (!isRunning(supervisor)) return 'not running';
  const procs = hostProcesses(supervisor);
  if (procs.nspawn) signal(procs.nspawn, 'SIGTERM');
  else signal(supervisor!, 'SIGTERM');
  if (await waitForExit([supervisor!], timeoutMs)) return 'stopped';
  await killHost(supervisor);
  return 'killed';
}

/**
 * Power cut: the supervisor first (so nothing boots the host again), then the container's init (the kernel
 * then kills everything in its pid namespace at once), then nspawn.
 */
export async function killHost(supervisor: ProcessRef | undefined): Promise<'killed' | 'not running'> {
  if (!isRunning(supervisor)) return 'not running';
  const procs = hostProcesses(supervisor);
  signal(supervisor!, 'SIGKILL');
  if (procs.init) signal(procs.init, 'SIGKILL');
  if (procs.nspawn) signal(procs.nspawn, 'SIGKILL');
  const refs = [procs.supervisor, procs.nspawn, procs.init].filter((p): p is ProcessInfo => p !== undefined);
  if (!(await waitForExit(refs, 10_000))) {
    throw new CairnError(`lab host processes ${refs.map((r) => r.pid).join(', ')} did not end after SIGKILL`, {
      kind: 'runtime',
    });
  }
  return 'killed';
}

/**
 * Processes the lab started, whatever the state file says (down uses this after a crash): a supervisor
 * (`sh -c ... cairn-lab-NAME`) or systemd-nspawn whose command line boots a directory under the lab's hosts
 * dir. Supervisors come first, so nothing boots again while the rest are ended.
 */
export function strayLabProcesses(
  hostsDir: string,
  cmdlineOf: (pid: number) => string[],
  processes = allProcesses(),
): ProcessInfo[] {
  const marker = `--directory=${hostsDir}/`;
  const found = processes.filter((p) => {
    if (p.pid === process.pid) return false;
    const args = cmdlineOf(p.pid);
    const isSupervisor =
      p.comm === 'sh' &&
      args[1] === '-c' &&
      (args[3] ?? '').startsWith('cairn-lab-') &&
      (args[2] ?? '').includes(marker);
    const isNspawn = p.comm === 'systemd-nspawn' && args.some((a) => a.startsWith(marker));
    return isSupervisor || isNspawn;
  });
  return found.sort((a, b) => rank(a) - rank(b));
}

function rank(p: ProcessInfo): number {
  return p.comm === 'systemd-nspawn' ? 1 : 0;
}
