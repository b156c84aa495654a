/**
 * The lab's operations as plain async functions (the CLI in runner/commands/lab.ts, drills and tests call
 * these): up, status, down, start, stop, kill, restart, ssh. Every operation that changes the lab holds the
 * lab lock; every refusal is a CairnError of kind 'options' (exit code 5) in one sentence.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError, optionsError } from '../../core/util/errors.js';
import {
  hostProcesses,
  isRunning,
  killHost,
  mountOverlay,
  refreshHostsFile,
  startSupervisor,
  stopHost,
  strayLabProcesses,
  writeHostFiles,
  type HostContext,
} from './container.js';
import { runChecked } from './exec.js';
import { ensureImage, imageIsComplete, IMAGE_SUITE, removeStaleImages } from './image.js';
import { ensureFenceServer, FENCE_GROUP, serveFence, stopFenceServer, writeFenceToken } from './fence.js';
import { inventoryText } from './inventory.js';
import { ensureLabCa } from './ca.js';
import { withLabLock } from './lock.js';
import { readMirror } from './mirror.js';
import { currentMounts, mountsUnder, unmountAllUnder } from './mounts.js';
import { assertSubnetFree, ensureBridge, managementVethName, removeLabInterfaces, vethName } from './network.js';
import { generatedPaths, hostPaths, HOSTS_DIR, LAB_DIR, type GeneratedPaths } from './paths.js';
import { findExecutable, requireOverlayfs, requireRoot, requireTools, TOOLS } from './preflight.js';
import {
  allProcesses,
  descendantsOf,
  namespacePids,
  readCmdline,
  signal,
  waitForExit,
  type ProcessInfo,
} from './proc.js';
import { ensureRepo, removeStaleRepos } from './repo.js';
import {
  ensureKeyPair,
  knownHostsText,
  readBanner,
  readHostKeys,
  sshArgs,
  waitForBanner,
  writeFileAtomic,
} from './ssh.js';
import {
  readState,
  readStateLenient,
  removeState,
  topologyOfState,
  writeState,
  type HostState,
  type LabState,
  type VmImageState,
} from './state.js';
import {
  checkCompatible,
  DEFAULT_BRIDGE,
  DEFAULT_MANAGEMENT_BRIDGE,
  defaultTopology,
  findHost,
  loadTopologyFile,
  managementAddress,
  mergeTopologies,
  sshAddress,
  topologyOfSize,
  hostKind,
  type LabHostSpec,
  type LabTopology,
} from './topology.js';
import {
  bootVm,
  ensureVmImage,
  killStrayVms,
  killVm,
  plugBlankDisk,
  prepareVm,
  removeStaleVmImages,
  stopVm,
  tapName,
  unplugDisk,
  vmImageDir,
  vmImageIsComplete,
  vmImageKey,
  vmMachineId,
  vmPaths,
  type Accelerator,
  type VmContext,
} from './vm.js';

export type { LabTopology, LabHostSpec } from './topology.js';
export { defaultTopology, loadTopologyFile, topologyOfSize } from './topology.js';
export { holdLab, withLabLock } from './lock.js';
export { FENCE_LOG, setFenceBlocked } from './fence.js';

export type LabLog = (line: string) => void;

const defaultLog: LabLog = (line) => process.stderr.write(`lab: ${line}\n`);

/** How long a booting host may take to answer SSH before `up` gives up on it. */
const BOOT_TIMEOUT_MS = 90_000;
/** A VM under TCG on a loaded machine boots systemd far slower than a container. */
const VM_BOOT_TIMEOUT_MS = 420_000;

function bootTimeout(host: LabHostSpec): number {
  return hostKind(host) === 'vm' ? VM_BOOT_TIMEOUT_MS : BOOT_TIMEOUT_MS;
}

/** One SSH banner attempt: a VM under TCG may need many seconds to fork sshd for a connection. */
function bannerAttemptMs(host: LabHostSpec): number {
  return hostKind(host) === 'vm' ? 60_000 : 1000;
}

/** Where a host's boot messages go: nspawn's console log, or the VM's serial console. */
function consoleLog(host: LabHostSpec): string {
  return hostKind(host) === 'vm' ? vmPaths(host.name).console : hostPaths(host.name).log;
}

export interface LabHostReport {
  name: string;
  address: string;
  groups: string[];
  kind: 'container' | 'vm';
  state: 'running' | 'stopped';
  /** systemd-nspawn's pid (qemu's for a VM) while running. */
  pid?: number;
  /** VMs: the accelerator of the current boot, memory, data disks (GiB). */
  accelerator?: Accelerator;
  memoryMiB?: number;
  disksGiB?: number[];
  supervisorPid?: number;
  /** sshd answered with its banner (checked by up, start and status). */
  sshAnswers?: boolean;
  /** Set when this call booted the host: ms from start to sshd's banner. */
  bootMs?: number;
  note?: string;
}

export interface LabUpOptions {
  /** The first N hosts of the default list. */
  hosts?: number;
  /** A YAML topology file. */
  topologyFile?: string;
  /** Also the pve nodes of the default topology. */
  withPve?: boolean;
  /** The pve nodes of the default topology as VMs (runner/features/lab/vm.ts) instead of containers. */
  vm?: boolean;
  /** A topology already built in code (tests). */
  topology?: LabTopology;
  /** Where the inventory, known_hosts and key pair go (default inventories/lab/generated of this checkout). */
  generatedDir?: string;
  log?: LabLog;
}

export interface LabTimings {
  imageMs: number;
  imageBuilt: boolean;
  /** The VM image (0 and false when no VM is wanted or it was cached). */
  vmImageMs: number;
  vmImageBuilt: boolean;
  repoMs: number;
  repoBuilt: boolean;
  repoPackages: number;
  /** From starting the first container to the last sshd answering. */
  bootMs: number;
  totalMs: number;
}

export interface LabUpResult {
  hosts: LabHostReport[];
  timings: LabTimings;
  vip: string;
  bridge: string;
  subnet: string;
  inventoryPath: string;
  knownHostsPath: string;
  privateKeyPath: string;
}

function resolveWanted(opts: LabUpOptions): LabTopology {
  const given = [opts.topology !== undefined, opts.topologyFile !== undefined, opts.hosts !== undefined].filter(
    Boolean,
  ).length;
  if (given > 1) throw optionsError('give at most one of --hosts and --topology');
  if (opts.withPve && given > 0)
    throw optionsError(
      '--with-pve adds the pve nodes to the default topology; with --hosts or --topology list them there instead',
    );
  if (opts.vm && given > 0)
    throw optionsError(
      "--vm runs the default topology's pve nodes as VMs; in a topology file mark hosts `kind: vm` instead",
    );
  if (opts.topology) return opts.topology;
  if (opts.topologyFile !== undefined) return loadTopologyFile(opts.topologyFile);
  if (opts.hosts !== undefined) return topologyOfSize(opts.hosts);
  return defaultTopology(opts.withPve ?? false, opts.vm ?? false);
}

/** Where cairn reaches a host: its management address when it has one (containers of a lab with that bridge). */
function reachAt(state: LabState, host: LabHostSpec): string {
  return sshAddress(topologyOfState(state), host);
}

/** The service bridge, and the management bridge when the lab has one. */
async function ensureBridges(topology: Pick<LabTopology, 'bridge' | 'bridgeAddress' | 'management'>): Promise<void> {
  await ensureBridge(topology);
  if (topology.management) await ensureBridge(topology.management);
}

function hostContext(state: LabState, publicKey: string): HostContext {
  return { imageRoot: state.imageRoot, repoDir: state.repoDir, topology: topologyOfState(state), publicKey };
}

/** Bring the lab up (or add hosts to it). Twice is harmless: running hosts are left as they are. */
export async function labUp(opts: LabUpOptions = {}): Promise<LabUpResult> {
  const log = opts.log ?? defaultLog;
  requireRoot('up');
  requireTools([
    TOOLS.nspawn,
    TOOLS.debootstrap,
    TOOLS.scanpackages,
    TOOLS.aptGet,
    TOOLS.ssh,
    TOOLS.sshKeygen,
    TOOLS.ip,
    TOOLS.mount,
  ]);
  requireOverlayfs();
  const wanted = resolveWanted(opts);
  if (wanted.hosts.some((h) => hostKind(h) === 'vm')) requireTools([TOOLS.qemu, TOOLS.qemuImg, TOOLS.mke2fs]);
  return withLabLock(
    async () => {
      const started = Date.now();
      const previous = readState();
      let topology = wanted;
      if (previous) {
        const running = topologyOfState(previous);
        checkCompatible(running, wanted);
        topology = mergeTopologies(running, wanted);
      }
      await assertSubnetFree(topology);

      const mirror = readMirror(IMAGE_SUITE);
      // A running lab keeps the image and repository it was made from, even if the recipe changed since.
      const reuse = previous !== undefined && imageIsComplete(previous.imageHash) && existsSync(previous.repoDir);
      if (previous && !reuse) log("the lab's image or repository is gone; building them again");
      const image = reuse
        ? {
            hash: previous.imageHash,
            dir: join(previous.imageRoot, '..'),
            root: previous.imageRoot,
            built: false,
            buildMs: 0,
          }
        : await ensureImage({ mirror, log });
      if (image.built) log(`base image built in ${seconds(image.buildMs)}`);
      const repo = reuse
        ? { key: '', dir: previous.repoDir, packageCount: countDebs(previous.repoDir), built: false, buildMs: 0 }
        : await ensureRepo({ image, mirror, log });
      if (repo.built) log(`package repository built in ${seconds(repo.buildMs)} (${repo.packageCount} packages)`);

      // Each VM image variant only when a VM of the topology boots it (the one with OpenZFS costs most of ten
      // minutes to build); a running lab keeps the images its VMs booted.
      const vms = topology.hosts.filter((h) => hostKind(h) === 'vm');
      const variant = async (zfs: boolean, recorded: VmImageState | undefined) => {
        if (!vms.some((h) => Boolean(h.vm?.zfs) === zfs)) return undefined;
        if (reuse && recorded !== undefined && vmImageIsComplete(recorded.key))
          return { ...recorded, zfs, built: false, buildMs: 0 };
        const built = await ensureVmImage({ image, repo, zfs, log });
        if (built.built)
          log(
            `VM image${zfs ? ' with OpenZFS' : ''} built in ${seconds(built.buildMs)} (kernel ${built.kernelVersion})`,
          );
        return built;
      };
      const vmImage = await variant(false, previous?.vmImage);
      const vmZfsImage = await variant(true, previous?.vmZfsImage);
      const vmImagesBuilt = [vmImage, vmZfsImage].filter((v) => v?.built);

      const gen = generatedPaths(opts.generatedDir ?? previous?.generatedDir);
      const { publicKey } = await ensureKeyPair(gen);
      await ensureBridges(topology);

      const now = new Date().toISOString();
      const byName = new Map((previous?.hosts ?? []).map((h) => [h.name, h]));
      const state: LabState = {
        version: 1,
        bridge: topology.bridge,
        subnet: topology.subnet.text,
        bridgeAddress: topology.bridgeAddress,
        vip: topology.vip,
        ...(topology.management
          ? {
              management: {
                bridge: topology.management.bridge,
                subnet: topology.management.subnet.text,
                bridgeAddress: topology.management.bridgeAddress,
              },
            }
          : {}),
        imageHash: image.hash,
        imageRoot: image.root,
        repoDir: repo.dir,
        ...(vmImage ? { vmImage: vmImageState(vmImage) } : {}),
        ...(vmZfsImage ? { vmZfsImage: vmImageState(vmZfsImage) } : {}),
        generatedDir: gen.dir,
        hosts: topology.hosts.map((h) => byName.get(h.name) ?? { ...h, createdAt: now }),
      };
      // Recorded before anything boots, so a crash from here on leaves a trace for `down`.
      writeState(state);

      const ctx = hostContext(state, publicKey);
      const wantedNames = new Set(wanted.hosts.map((h) => h.name));
      const booted = new Map<string, number>();
      const vmStarts: Array<Promise<void>> = [];
      const bootStarted = Date.now();
      for (const host of state.hosts) {
        if (isRunning(host.supervisor)) {
          // A running VM reads /etc/hosts from its seed disk at its next boot.
          if (hostKind(host) === 'container') refreshHostsFile(host.name, ctx.topology);
          if (hostKind(host) === 'container' && host.groups.includes(FENCE_GROUP))
            writeFenceToken(hostPaths(host.name).root, host.name);
          continue;
        }
        // Only hosts the caller asked for are booted; a stopped host outside the request stays stopped.
        if (!wantedNames.has(host.name)) continue;
        booted.set(host.name, Date.now());
        // Containers start in well under a second each; a VM's start waits for its kernel (the accelerator
        // check), so VMs start side by side.
        if (hostKind(host) === 'vm') vmStarts.push(bootVmHost(host, ctx, state, log));
        else await bootHost(host, ctx, state);
      }
      await Promise.all(vmStarts);

      const reports = await Promise.all(
        state.hosts.map(async (host): Promise<LabHostReport> => {
          if (!isRunning(host.supervisor)) return hostReport(host);
          const since = booted.get(host.name);
          await waitForBanner(
            host.name,
            reachAt(state, host),
            bootTimeout(host),
            () => isRunning(host.supervisor),
            consoleLog(host),
            bannerAttemptMs(host),
          );
          // Read the processes only now: right after the start, the supervisor may not have run nspawn yet.
          const report = hostReport(host);
          report.sshAnswers = true;
          if (since !== undefined) report.bootMs = Date.now() - since;
          else report.note = 'already running';
          return report;
        }),
      );
      const bootMs = booted.size ? Date.now() - bootStarted : 0;

      writeKnownHosts(state, gen);
      // Fresh hosts have no package lists yet: read the local repository once, which also proves that key
      // login and host-key checking work end to end.
      await Promise.all(
        state.hosts
          .filter((h) => booted.has(h.name) && (hostKind(h) === 'vm' || !hasRepoLists(h.name)))
          .map((h) => refreshPackageLists(state, h, gen)),
      );
      // The lab CA the front door's certificate is issued from (kept across ups, gone with `lab down`).
      const ca = ensureLabCa();
      if (ca.created) log(`lab CA made: ${ca.certPath}`);
      writeFileAtomic(gen.inventory, inventoryText({ topology: topologyOfState(state), paths: gen, ca }));
      // The fence device of the cluster hosts (see fence.ts), for as long as the lab is up.
      if (state.hosts.some((h) => h.groups.includes(FENCE_GROUP) && hostKind(h) === 'container'))
        await ensureFenceServer();

      await removeStaleImages(new Set([join(state.imageRoot, '..')]));
      // Both variants for this image and repository stay cached (a lab without ZFS must not throw away the
      // ten-minute OpenZFS image the next ZFS lab boots), as do the ones this lab's VMs run.
      removeStaleVmImages(
        new Set([
          vmImageDir(vmImageKey(image, repo, false)),
          vmImageDir(vmImageKey(image, repo, true)),
          ...[state.vmImage, state.vmZfsImage].flatMap((v) => (v ? [join(v.rootImage, '..')] : [])),
        ]),
      );
      removeStaleRepos(new Set([state.repoDir]));
      return {
        hosts: reports,
        timings: {
          imageMs: image.buildMs,
          imageBuilt: image.built,
          vmImageMs: vmImagesBuilt.reduce((sum, v) => sum + (v?.buildMs ?? 0), 0),
          vmImageBuilt: vmImagesBuilt.length > 0,
          repoMs: repo.buildMs,
          repoBuilt: repo.built,
          repoPackages: repo.packageCount,
          bootMs,
          totalMs: Date.now() - started,
        },
        vip: state.vip,
        bridge: state.bridge,
        subnet: state.subnet,
        inventoryPath: gen.inventory,
        knownHostsPath: gen.knownHosts,
        privateKeyPath: gen.privateKey,
      };
    },
    { log },
  );
}

/** Mount the host's disk, write its per-host files and start its supervisor; the state is saved at once. */
async function bootHost(host: HostState, ctx: HostContext, state: LabState): Promise<void> {
  const paths = await mountOverlay(host.name, ctx.imageRoot);
  const fresh = !existsSync(join(paths.upper, 'etc', 'machine-id'));
  writeHostFiles(host, ctx, paths);
  if (host.groups.includes(FENCE_GROUP)) writeFenceToken(paths.root, host.name);
  host.supervisor = startSupervisor(host, ctx, paths, { truncateLog: fresh });
  host.startedAt = new Date().toISOString();
  writeState(state);
}

/** Create the VM's disks and seed, start qemu (KVM first when it works here) and record its pid at once. */
async function bootVmHost(host: HostState, ctx: HostContext, state: LabState, log: LabLog): Promise<void> {
  const paths = await prepareVm(host, vmContext(state, ctx, host));
  const boot = await bootVm(host, vmContext(state, ctx, host), paths, vmMachineId(paths), (process) => {
    // Recorded as soon as qemu runs, so a crash of cairn from here on leaves a trace for `down`.
    host.supervisor = process;
    writeState(state);
  });
  for (const note of boot.notes) log(`${host.name}: ${note}`);
  host.supervisor = boot.process;
  host.accelerator = boot.accelerator;
  host.startedAt = new Date().toISOString();
  writeState(state);
  log(`${host.name}: VM kernel reached init under ${boot.accelerator} after ${seconds(boot.kernelMs)}`);
}

function vmContext(state: LabState, ctx: HostContext, host: LabHostSpec): VmContext {
  // A lab state written before the images were split has only vmImage, which had OpenZFS: it serves both.
  const image = host.vm?.zfs ? (state.vmZfsImage ?? state.vmImage) : state.vmImage;
  if (!image)
    throw new CairnError(
      `the lab state records no VM image${host.vm?.zfs ? ' with OpenZFS' : ''} for ${host.name}; run \`cairn lab down\` and \`cairn lab up\` again`,
      { kind: 'runtime' },
    );
  return { image, topology: ctx.topology, publicKey: ctx.publicKey };
}

function vmImageState(v: VmImageState): VmImageState {
  return {
    key: v.key,
    rootImage: v.rootImage,
    repoImage: v.repoImage,
    kernel: v.kernel,
    initrd: v.initrd,
    kernelVersion: v.kernelVersion,
  };
}

function hostReport(host: HostState): LabHostReport {
  const running = isRunning(host.supervisor);
  const kind = hostKind(host);
  if (kind === 'vm') {
    return {
      name: host.name,
      address: host.address,
      groups: [...host.groups],
      kind,
      state: running ? 'running' : 'stopped',
      pid: running ? host.supervisor?.pid : undefined,
      accelerator: running ? host.accelerator : undefined,
      memoryMiB: host.vm?.memoryMiB,
      disksGiB: host.vm ? [...host.vm.disksGiB] : undefined,
    };
  }
  const procs = hostProcesses(host.supervisor);
  return {
    name: host.name,
    address: host.address,
    groups: [...host.groups],
    kind,
    state: running ? 'running' : 'stopped',
    pid: running ? procs.nspawn?.pid : undefined,
    supervisorPid: running ? host.supervisor?.pid : undefined,
  };
}

/** Orderly halt of either kind of host. */
function haltHost(host: HostState, timeoutMs: number): Promise<'stopped' | 'killed' | 'not running'> {
  return hostKind(host) === 'vm'
    ? stopVm(host.supervisor, vmPaths(host.name), timeoutMs)
    : stopHost(host.supervisor, timeoutMs);
}

/** Power cut of either kind of host. */
function cutPower(host: HostState): Promise<'killed' | 'not running'> {
  return hostKind(host) === 'vm' ? killVm(host.supervisor) : killHost(host.supervisor);
}

function hasRepoLists(name: string): boolean {
  const lists = join(hostPaths(name).root, 'var', 'lib', 'apt', 'lists');
  try {
    return readdirSync(lists).some((f) => f.startsWith('_srv_repo_') && f.endsWith('Packages'));
  } catch {
    return false;
  }
}

async function refreshPackageLists(state: LabState, host: LabHostSpec, gen: GeneratedPaths): Promise<void> {
  const result = await runSsh(reachAt(state, host), gen, { argv: ['apt-get', 'update', '-qq'] }, true);
  if (result.code !== 0) {
    throw new CairnError(
      `lab host ${host.name}: apt-get update from the local repository failed (exit ${result.code})`,
      {
        kind: 'runtime',
        detail: (result.stderr || result.stdout).trim().split('\n').slice(-10).join('\n') || undefined,
      },
    );
  }
}

/** known_hosts from the keys each host generated on its own disk (hosts that never booted have none). */
function writeKnownHosts(state: LabState, gen: GeneratedPaths): void {
  // A container's keys are the ones it generated on its disk; a VM's were generated here for its seed disk.
  const keyDir = (h: HostState) =>
    hostKind(h) === 'vm' ? vmPaths(h.name).seedDir : join(hostPaths(h.name).upper, 'etc', 'ssh');
  const entries = state.hosts
    .map((h) => {
      const address = reachAt(state, h);
      const otherAddresses = address === h.address ? [] : [h.address];
      return { name: h.name, address, otherAddresses, keys: readHostKeys(keyDir(h)) };
    })
    .filter((e) => e.keys.length > 0);
  writeFileAtomic(gen.knownHosts, knownHostsText(entries));
}

function countDebs(dir: string): number {
  try {
    return readdirSync(dir).filter((e) => e.endsWith('.deb')).length;
  } catch {
    return 0;
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

// ---------------------------------------------------------------------------------------------------------
// status

export interface LabStatus {
  up: boolean;
  bridge?: string;
  subnet?: string;
  vip?: string;
  hosts: LabHostReport[];
  inventoryPath?: string;
}

/** Each host running or stopped, with nspawn's pid and whether sshd answers. Changes nothing. */
export async function labStatus(): Promise<LabStatus> {
  const state = readState();
  if (!state) return { up: false, hosts: [] };
  const hosts = await Promise.all(
    state.hosts.map(async (host) => {
      const report = hostReport(host);
      if (report.state === 'running')
        report.sshAnswers =
          (await readBanner(reachAt(state, host), 22, hostKind(host) === 'vm' ? 30_000 : 1500)) !== undefined;
      return report;
    }),
  );
  return {
    up: true,
    bridge: state.bridge,
    subnet: state.subnet,
    vip: state.vip,
    hosts,
    inventoryPath: generatedPaths(state.generatedDir).inventory,
  };
}

// ---------------------------------------------------------------------------------------------------------
// down

export interface LabDownResult {
  /** Hosts halted in order, or killed when they would not halt. */
  stopped: string[];
  /** Lab processes found without a record (after a crash) and killed. */
  strays: number[];
  unmounted: string[];
  interfaces: string[];
  removed: string[];
}

/**
 * Remove every container process, mount, interface and file the lab made, and nothing else: taken from the
 * state file and from what exists (processes booting a directory under the lab's hosts dir, mounts under
 * the lab dir, the bridge by name and its ports, vb-NAME veths). Harmless with nothing up.
 */
export async function labDown(opts: { log?: LabLog } = {}): Promise<LabDownResult> {
  const log = opts.log ?? defaultLog;
  requireRoot('down');
  requireTools([TOOLS.ip, TOOLS.mount]);
  return withLabLock(
    async () => {
      const state = readStateLenient();
      const result: LabDownResult = { stopped: [], strays: [], unmounted: [], interfaces: [], removed: [] };
      // First, so nothing powers a host on again while the lab goes down (counted with the strays below).
      const fence = stopFenceServer();

      // 1. Recorded hosts: orderly halt in parallel, a power cut for any that will not halt.
      await Promise.all(
        (state?.hosts ?? []).map(async (host) => {
          // A VM's disks are about to be deleted: nothing to halt in order for, so a power cut (fast under TCG).
          const outcome =
            hostKind(host) === 'vm' ? await killVm(host.supervisor) : await stopHost(host.supervisor, 10_000);
          if (outcome !== 'not running') result.stopped.push(host.name);
        }),
      );

      // 2. Lab processes nobody recorded: supervisors first (so nothing boots again), then each nspawn's
      //    container init and the nspawn itself.
      result.strays = await killStrays();
      if (fence !== undefined) result.strays.push(fence);
      const strayVms = killStrayVms();
      await waitForExit(strayVms, 10_000);
      result.strays.push(...strayVms.map((p) => p.pid));

      // 3. Mounts: every host overlay, and anything an interrupted image build left mounted.
      result.unmounted = await unmountAllUnder(LAB_DIR);

      // 4. Interfaces: the bridges by name, their ports, vb-NAME and mg-NAME of every host we know of. The
      //    management bridge by its default name too: a state file lost in a crash must not leave it behind.
      const names = new Set<string>([...(state?.hosts ?? []).map((h) => h.name), ...listHostDirs()]);
      result.interfaces = await removeLabInterfaces(
        state?.bridge ?? DEFAULT_BRIDGE,
        [...names],
        [...names].map(tapName),
      );
      for (const bridge of new Set([state?.management?.bridge ?? DEFAULT_MANAGEMENT_BRIDGE, DEFAULT_MANAGEMENT_BRIDGE]))
        result.interfaces.push(...(await removeLabInterfaces(bridge, [...names], [], managementVethName)));

      // 5. Files: the hosts' disks (only once nothing is mounted there), the generated inventory, the state.
      if (mountsUnder(HOSTS_DIR, currentMounts()).length > 0) {
        throw new CairnError(`something is still mounted under ${HOSTS_DIR}; not deleting the hosts' disks`, {
          kind: 'runtime',
        });
      }
      for (const name of listHostDirs()) {
        rmSync(join(HOSTS_DIR, name), { recursive: true, force: true });
        result.removed.push(join(HOSTS_DIR, name));
      }
      const gen = generatedPaths(state?.generatedDir);
      for (const file of [gen.inventory, gen.knownHosts]) {
        if (existsSync(file)) {
          rmSync(file, { force: true });
          result.removed.push(file);
        }
      }
      removeState();
      if (result.stopped.length + result.strays.length + result.unmounted.length + result.interfaces.length === 0)
        log('nothing was running');
      return result;
    },
    { log },
  );
}

function listHostDirs(): string[] {
  try {
    return readdirSync(HOSTS_DIR).filter((n) => /^[a-z][a-z0-9-]{0,11}$/.test(n));
  } catch {
    return [];
  }
}

async function killStrays(): Promise<number[]> {
  const processes = allProcesses();
  const strays = strayLabProcesses(HOSTS_DIR, readCmdline, processes);
  const killed: ProcessInfo[] = [];
  for (const p of strays) {
    // A container's init lives below its nspawn; killing it ends the whole pid namespace at once.
    if (p.comm === 'systemd-nspawn') {
      const init = descendantsOf(p.pid, processes).find((d) => {
        const chain = namespacePids(d.pid);
        return chain.length >= 2 && chain[chain.length - 1] === 1;
      });
      if (init && signal(init, 'SIGKILL')) killed.push(init);
    }
    if (signal(p, 'SIGKILL')) killed.push(p);
  }
  await waitForExit(killed, 10_000);
  return killed.map((p) => p.pid);
}

// ---------------------------------------------------------------------------------------------------------
// one host: start, stop, kill, restart

export interface LabHostActionResult {
  host: LabHostReport;
  /** What happened, in words: "booted", "already running", "halted", "killed", "not running"... */
  outcome: string;
}

function requireUpState(): LabState {
  const state = readState();
  if (!state) throw optionsError('the lab is not up: run `cairn lab up` first');
  return state;
}

function stateHost(state: LabState, name: string): HostState {
  findHost(topologyOfState(state), name);
  return state.hosts.find((h) => h.name === name)!;
}

/** Boot a stopped host again (its disk is kept) and wait until sshd answers. */
export async function labStart(name: string, opts: { log?: LabLog } = {}): Promise<LabHostActionResult> {
  requireRoot('start');
  requireTools([TOOLS.ip, TOOLS.mount]);
  return withLabLock(
    async () => {
      const state = requireUpState();
      const host = stateHost(state, name);
      if (isRunning(host.supervisor))
        return {
          host: { ...hostReport(host), sshAnswers: (await readBanner(reachAt(state, host))) !== undefined },
          outcome: 'already running',
        };
      await ensureBridges(topologyOfState(state));
      const gen = generatedPaths(state.generatedDir);
      const { publicKey } = await ensureKeyPair(gen);
      const since = Date.now();
      if (hostKind(host) === 'vm') await bootVmHost(host, hostContext(state, publicKey), state, opts.log ?? defaultLog);
      else await bootHost(host, hostContext(state, publicKey), state);
      await waitForBanner(
        host.name,
        reachAt(state, host),
        bootTimeout(host),
        () => isRunning(host.supervisor),
        consoleLog(host),
        bannerAttemptMs(host),
      );
      writeKnownHosts(state, gen);
      return { host: { ...hostReport(host), sshAnswers: true, bootMs: Date.now() - since }, outcome: 'booted' };
    },
    { log: opts.log ?? defaultLog },
  );
}

/** Orderly halt (SIGTERM to nspawn: systemd stops every unit), like `poweroff` on the host; the disk is kept. */
export async function labStop(
  name: string,
  opts: { log?: LabLog; timeoutMs?: number } = {},
): Promise<LabHostActionResult> {
  requireRoot('stop');
  return withLabLock(
    async () => {
      const state = requireUpState();
      const host = stateHost(state, name);
      const outcome = await haltHost(host, opts.timeoutMs ?? (hostKind(host) === 'vm' ? 120_000 : 30_000));
      host.supervisor = undefined;
      writeState(state);
      return {
        host: hostReport(host),
        outcome:
          outcome === 'stopped' ? 'halted' : outcome === 'killed' ? 'killed (it did not halt in time)' : 'not running',
      };
    },
    { log: opts.log ?? defaultLog },
  );
}

/** Power cut: SIGKILL to the container's init and nspawn, nothing shuts down in order; the disk is kept. */
export async function labKill(name: string, opts: { log?: LabLog } = {}): Promise<LabHostActionResult> {
  requireRoot('kill');
  return withLabLock(
    async () => {
      const state = requireUpState();
      const host = stateHost(state, name);
      const outcome = await cutPower(host);
      host.supervisor = undefined;
      writeState(state);
      return { host: hostReport(host), outcome: outcome === 'killed' ? 'killed' : 'not running' };
    },
    { log: opts.log ?? defaultLog },
  );
}

/**
 * Cut every SSH session to a host, as a dropped network path or a crashed sshd child would: SIGKILL to each
 * sshd process below the host's listening sshd. Whatever those sessions ran is left to find its input gone,
 * as it would on a real host. The host and its listener keep running, so a new connection works at once.
 * Returns the pids killed (host pid namespace).
 */
export function labDropSshSessions(name: string): number[] {
  requireRoot('drop ssh sessions on');
  const state = requireUpState();
  const host = stateHost(state, name);
  if (hostKind(host) === 'vm')
    throw optionsError(
      `lab host ${name} is a VM: its sshd runs in its own kernel, out of this machine's reach; use \`cairn lab unplug ${name}\` to cut its sessions`,
    );
  const processes = allProcesses();
  const { init } = hostProcesses(host.supervisor, processes);
  if (!init) throw new CairnError(`lab host ${name} is not running (start it with \`cairn lab start ${name}\`)`);
  const listener = processes.find((p) => p.comm === 'sshd' && p.ppid === init.pid);
  if (!listener) return [];
  const sessions = descendantsOf(listener.pid, processes).filter((p) => p.comm === 'sshd');
  return sessions.filter((p) => signal(p, 'SIGKILL')).map((p) => p.pid);
}

/** A lab host as a drill sees it: its kind, whether it runs, and a VM's data disks (GiB each). */
export interface LabHostInfo {
  kind: 'container' | 'vm';
  running: boolean;
  /** A VM's data disks, by index 1..n (sizes in GiB); empty for a container. */
  disksGiB: number[];
  /** A VM booted with the OpenZFS image. */
  zfs: boolean;
}

/** What the lab knows of `name`; undefined when the lab is not up or has no such host. Changes nothing. */
export function labHostInfo(name: string): LabHostInfo | undefined {
  const state = readStateLenient();
  const host = state?.hosts.find((h) => h.name === name);
  if (!host) return undefined;
  return {
    kind: hostKind(host),
    running: isRunning(host.supervisor),
    disksGiB: [...(host.vm?.disksGiB ?? [])],
    zfs: Boolean(host.vm?.zfs),
  };
}

/** The running lab VM `name` and its data disk `index`, or a clear error saying why not. */
function runningVmDisk(name: string, index: number): { host: HostState; sizeGiB: number } {
  const state = requireUpState();
  const host = stateHost(state, name);
  if (hostKind(host) !== 'vm' || !host.vm)
    throw optionsError(
      `lab host ${name} is a container: it has no disks of its own to pull (only a VM of the lab, \`kind: vm\`, has)`,
    );
  if (!isRunning(host.supervisor))
    throw optionsError(`lab VM ${name} is not running (start it with \`cairn lab start ${name}\`)`);
  const sizeGiB = host.vm.disksGiB[index - 1];
  if (!Number.isInteger(index) || sizeGiB === undefined)
    throw optionsError(`lab VM ${name} has data disks 1 to ${host.vm.disksGiB.length}, not ${index}`);
  return { host, sizeGiB };
}

/**
 * Pull data disk `index` (1-based) out of a running lab VM, as a failed drive vanishes: qemu's device_del
 * through QMP, the guest sees the device go. Its file is kept until a blank disk replaces it.
 */
export async function labPullDisk(name: string, index: number, opts: { log?: LabLog } = {}): Promise<void> {
  requireRoot('pull a disk of');
  await withLabLock(
    async () => {
      runningVmDisk(name, index);
      await unplugDisk(name, index);
    },
    { log: opts.log ?? defaultLog },
  );
}

/** Plug a blank disk of the same size into slot `index` of a running lab VM (same serial, same by-id path). */
export async function labPlugBlankDisk(name: string, index: number, opts: { log?: LabLog } = {}): Promise<void> {
  requireRoot('plug a disk into');
  await withLabLock(
    async () => {
      const { sizeGiB } = runningVmDisk(name, index);
      await plugBlankDisk(name, index, sizeGiB);
    },
    { log: opts.log ?? defaultLog },
  );
}

/**
 * Pull a host's network cable: its link on the lab bridge (vb-NAME, this machine's end of its veth) goes
 * down. The host keeps running and believes itself fine, as a real node behind a dead switch port does; it
 * sees no peer and nobody sees it. `labPlug` puts the cable back.
 */
export async function labUnplug(name: string, opts: { log?: LabLog } = {}): Promise<LabHostActionResult> {
  return setLink(name, 'down', opts);
}

/** Put a host's network cable back (its link on the lab bridge up again). */
export async function labPlug(name: string, opts: { log?: LabLog } = {}): Promise<LabHostActionResult> {
  return setLink(name, 'up', opts);
}

async function setLink(name: string, state: 'up' | 'down', opts: { log?: LabLog }): Promise<LabHostActionResult> {
  requireRoot(state === 'down' ? 'unplug' : 'plug');
  requireTools([TOOLS.ip]);
  return withLabLock(
    async () => {
      const lab = requireUpState();
      const host = stateHost(lab, name);
      if (!isRunning(host.supervisor)) return { host: hostReport(host), outcome: 'not running' };
      // Both cables: a dead switch port cuts the node off, and cairn's SSH (management) must see it too.
      const links =
        hostKind(host) === 'vm'
          ? [tapName(name)]
          : [vethName(name), ...(managementAddress(topologyOfState(lab), host) ? [managementVethName(name)] : [])];
      for (const link of links)
        await runChecked('ip', ['link', 'set', 'dev', link, state], `setting the lab link ${link} of ${name} ${state}`);
      return {
        host: hostReport(host),
        outcome: state === 'down' ? 'unplugged (link down, still running)' : 'plugged in (link up)',
      };
    },
    { log: opts.log ?? defaultLog },
  );
}

/** Orderly halt, then boot again. */
export async function labRestart(name: string, opts: { log?: LabLog } = {}): Promise<LabHostActionResult> {
  return withLabLock(
    async () => {
      await labStop(name, opts);
      return labStart(name, opts);
    },
    { log: opts.log ?? defaultLog },
  );
}

// ---------------------------------------------------------------------------------------------------------
// ssh

export type RemoteCommand = { argv: readonly string[] } | { script: string };

export interface LabSshResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * ssh(1) to a lab host as root with strict host-key checking against the generated known_hosts. With
 * `capture` the output is returned; otherwise the terminal is handed over (interactive when no command).
 */
export async function labSsh(
  name: string,
  command?: RemoteCommand,
  opts: { capture?: boolean } = {},
): Promise<LabSshResult> {
  requireTools([TOOLS.ssh]);
  const state = requireUpState();
  const host = stateHost(state, name);
  return runSsh(reachAt(state, host), generatedPaths(state.generatedDir), command, opts.capture ?? false);
}

function runSsh(
  address: string,
  gen: GeneratedPaths,
  command: RemoteCommand | undefined,
  capture: boolean,
): Promise<LabSshResult> {
  const args = sshArgs(
    { address, privateKey: gen.privateKey, knownHosts: gen.knownHosts },
    command,
    !command && process.stdin.isTTY ? ['-t'] : [],
  );
  return new Promise((resolve, reject) => {
    const child = spawn(findExecutable('ssh') ?? 'ssh', args, {
      stdio: capture ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 255, stdout, stderr }));
  });
}

/**
 * `cairn lab fence-serve` (started by `up`): the lab's fence endpoint on the bridge address. A power cut is
 * `labKill`, power on is `labStart`: the same code, lock and state as the commands.
 */
export async function labFenceServe(): Promise<void> {
  requireRoot('serve the fence device of');
  const state = requireUpState();
  const fenceable = (current: LabState | undefined): HostState[] =>
    (current?.hosts ?? []).filter((h) => h.groups.includes(FENCE_GROUP) && hostKind(h) === 'container');
  await serveFence(state.bridgeAddress, {
    hosts: () => fenceable(readStateLenient()).map((h) => h.name),
    running: (name) => isRunning(fenceable(readStateLenient()).find((h) => h.name === name)?.supervisor),
    powerOff: async (name) => {
      await labKill(name, { log: () => {} });
    },
    powerOn: async (name) => {
      await labStart(name, { log: () => {} });
    },
  });
}
