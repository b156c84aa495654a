/**
 * VM hosts: the same Debian as the containers, booting its own kernel under qemu, for what a container cannot
 * prove (kernel sysctls, modules, md, OpenZFS, LVM, reboots, disks that fail).
 *
 * The VM image is the container image plus a kernel, installed in a chroot (systemd-nspawn without --boot) at
 * native speed from the lab's offline repository, then written into an ext4 file system image with
 * `mke2fs -d` (no loop mount). It comes in two variants, each cached under its own key: the base image (about
 * a minute to build) and the one with OpenZFS, whose zfs-dkms build takes most of ten minutes; only a VM the
 * topology marks `zfs: true` boots the second, so a VM lab without ZFS never pays for it. Each VM boots that kernel directly (-kernel/-initrd), its root a qcow2 overlay
 * on the cached base. Per-host identity (address, names, SSH host key, the lab's key) comes on a small
 * read-only "seed" disk that a unit in the image copies into place before the network and sshd start; the host
 * keys are generated here, so known_hosts is written from them. The package repository reaches the VMs as a
 * read-only disk (an ext4 image of it, made with the VM image: Debian's cloud kernel has no 9p). Data disks are sparse raw files with serials, so the guest names them
 * /dev/disk/by-id/virtio-NAME-dN.
 *
 * qemu runs detached under its own pid (recorded with its start time); the guest's reboots stay inside qemu.
 * KVM is tried first when /dev/kvm exists: a boot whose serial console does not reach init in time (nested
 * virtualization can hang right after the boot stub) is killed and started again under TCG.
 */
import { networkUnit } from './container.js';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../../core/util/errors.js';
import { run, runChecked } from './exec.js';
import type { ImageInfo } from './image.js';
import { HOSTS_DIR, LAB_DIR, LOG_DIR, REPO_MOUNT_POINT } from './paths.js';
import { findExecutable } from './preflight.js';
import {
  allProcesses,
  isAlive,
  processInfo,
  readCmdline,
  signal,
  sleep,
  waitForExit,
  type ProcessInfo,
  type ProcessRef,
} from './proc.js';
import { qmp } from './qmp.js';
import type { RepoInfo } from './repo.js';
import { VM_IMAGE_PACKAGES, VM_ZFS_PACKAGES } from './repo.js';
import { writeFileAtomic } from './ssh.js';
import type { LabHostSpec, LabTopology, LabVmSpec } from './topology.js';

export type Accelerator = 'kvm' | 'tcg';

/** Size of the root file system (sparse: only what is written takes space). */
const ROOT_SIZE = '12G';
/** The label of the repository's read-only disk. */
const REPO_LABEL = 'cairnrepo';
const SEED_SERIAL = 'cairnseed';
const SEED_LABEL = 'cairnseed';
const ROOT_LABEL = 'cairnroot';
/**
 * Proof that the accelerator runs Linux up to user space: the kernel's hand-over to the initramfs (printed at
 * loglevel 6 and up), or the initramfs's own first words (printed whatever the loglevel).
 */
export const KERNEL_REACHED_INIT = /Run \/(s?bin\/)?init as init process|Loading, please wait\.\.\./;
/** How long a KVM boot may take to reach init before the lab falls back to TCG. */
const KVM_MARKER_TIMEOUT_MS = 30_000;
/** Under TCG only a qemu that stopped is a failure; the marker may take long on a loaded machine. */
const TCG_MARKER_TIMEOUT_MS = 300_000;

/**
 * Run inside the VM image (in a chroot, after the container recipe). What a VM needs beyond a container:
 * an fstab, the repository's disk, the seed unit, the NIC named host0 (as in containers, so roles and the
 * inventory's lab_interface stay the same), the virtio drivers and md in the initramfs.
 */
export const VM_CUSTOMISE_SCRIPT = String.raw`set -eu
cat > /etc/fstab <<'END'
# Written by cairn lab (VM image)
LABEL=${ROOT_LABEL} / ext4 defaults,errors=remount-ro 0 1
LABEL=${REPO_LABEL} ${REPO_MOUNT_POINT} ext4 ro,nofail,noload,x-systemd.device-timeout=30s 0 0
END
mkdir -p ${REPO_MOUNT_POINT}
mkdir -p /etc/systemd/network
# The one virtio NIC is host0, as in a container: roles and the inventory name the lab interface host0.
cat > /etc/systemd/network/10-cairn-lab-host0.link <<'END'
[Match]
Driver=virtio_net
[Link]
Name=host0
END
cat > /usr/local/sbin/cairn-lab-seed <<'END'
#!/bin/sh
# This VM's identity comes from its read-only seed disk (made by cairn lab for each boot): mount it and run
# its apply script. The disk is found by its file system label on the kernel's own device nodes: waiting for
# udev's /dev/disk/by-* links costs a minute under TCG on a loaded machine.
set -eu
dev=
for i in $(seq 1 300); do
  for d in /dev/vd?; do
    [ -b "$d" ] && [ "$(blkid -o value -s LABEL "$d" 2>/dev/null)" = ${SEED_LABEL} ] && { dev=$d; break 2; }
  done
  sleep 0.2
done
[ -n "$dev" ] || { echo "cairn-lab: no seed disk (label ${SEED_LABEL})" > /dev/console; exit 1; }
mnt=/run/cairn-lab-seed
mkdir -p "$mnt"
mount -o ro "$dev" "$mnt"
trap 'umount "$mnt"' EXIT
sh "$mnt/apply" "$mnt"
echo "cairn-lab: seed applied" > /dev/console
END
chmod 0755 /usr/local/sbin/cairn-lab-seed
cat > /etc/systemd/system/cairn-lab-seed.service <<'END'
[Unit]
Description=cairn lab: this VM's identity from its seed disk
DefaultDependencies=no
After=local-fs.target
Before=systemd-networkd.service ssh.service network-pre.target sysinit.target
Wants=network-pre.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/cairn-lab-seed
[Install]
WantedBy=sysinit.target
END
systemctl enable cairn-lab-seed.service
# A serial console with a login prompt is not needed (and root has no password); the kernel log goes there.
systemctl mask serial-getty@ttyS0.service
# What the initramfs must carry to find the root disk: virtio (the cloud kernel builds it as modules).
printf '%s\n' virtio_pci virtio_blk virtio_net ext4 >> /etc/initramfs-tools/modules
update-initramfs -u -k all
`;

/**
 * Run in the VM image's chroot with the VM kernel's version as $1: OpenZFS from the repository (contrib), its
 * module built by zfs-dkms for that kernel. In a chroot `uname -r` is this machine's kernel, whose headers are
 * not there; dkms then builds for the kernels under /lib/modules (Debian's dkms common.postinst), and the
 * headers' own hook does the same. `dkms autoinstall` is run for the VM kernel if neither did, and the image
 * build fails unless modinfo finds the module for that kernel.
 */
export const VM_ZFS_SCRIPT = String.raw`set -eu
export DEBIAN_FRONTEND=noninteractive
kver="$1"
apt-get install -y -q --no-install-recommends ${VM_ZFS_PACKAGES.join(' ')}
modinfo -k "$kver" zfs >/dev/null 2>&1 || dkms autoinstall -k "$kver"
echo "cairn-lab: zfs module $(modinfo -k "$kver" -F version zfs) for $kver"
`;

/**
 * Run at every boot by the image's cairn-lab-seed unit with the mounted seed disk as $1, before the network
 * and sshd start. Lives on the seed disk, so changing it needs no new image.
 */
export const SEED_APPLY_SCRIPT = String.raw`set -eu
s="$1"
install -m 0644 "$s/hostname" /etc/hostname
hostname -F /etc/hostname
install -D -m 0644 "$s/host0.network" /etc/systemd/network/80-cairn-lab-host0.network
for t in ed25519 ecdsa rsa; do
  install -m 0600 "$s/ssh_host_$t"_key "/etc/ssh/ssh_host_$t"_key
  install -m 0644 "$s/ssh_host_$t"_key.pub "/etc/ssh/ssh_host_$t"_key.pub
done
# /etc/hosts: the lab's block is replaced, lines roles added are kept.
tmp=$(mktemp /etc/.hosts.XXXXXX)
sed '/^# BEGIN cairn lab hosts$/,/^# END cairn lab hosts$/d' /etc/hosts > "$tmp" || true
cat "$s/hosts-block" >> "$tmp"
chmod 0644 "$tmp"
mv "$tmp" /etc/hosts
install -d -m 0700 /root/.ssh
key=$(cat "$s/authorized_key")
touch /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
grep -qxF -- "$key" /root/.ssh/authorized_keys || printf '%s\n' "$key" >> /root/.ssh/authorized_keys
# The package repository's read-only disk, found by label like the seed (fstab's LABEL= waits for udev's
# by-label link, which under TCG on a loaded machine can come after fstab's device timeout).
mkdir -p ${REPO_MOUNT_POINT}
if ! mountpoint -q ${REPO_MOUNT_POINT}; then
  for d in /dev/vd?; do
    [ "$(blkid -o value -s LABEL "$d" 2>/dev/null)" = ${REPO_LABEL} ] && { mount -o ro,noload "$d" ${REPO_MOUNT_POINT}; break; }
  done
fi
`;

const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const;

export interface VmImageInfo {
  key: string;
  dir: string;
  rootImage: string;
  /** The package repository as a file system image, attached read-only to every VM. */
  repoImage: string;
  kernel: string;
  initrd: string;
  kernelVersion: string;
  /** Whether OpenZFS (zfs-dkms's module for the kernel, the tools) is in the image. */
  zfs: boolean;
  built: boolean;
  buildMs: number;
}

/** The cache key of a VM image variant: the base image's key differs from the OpenZFS one's. */
export function vmImageKey(image: Pick<ImageInfo, 'hash'>, repo: Pick<RepoInfo, 'dir'>, zfs: boolean): string {
  const canonical = JSON.stringify({
    image: image.hash,
    repo: repo.dir,
    packages: [...VM_IMAGE_PACKAGES].sort(),
    ...(zfs ? { zfs: VM_ZFS_SCRIPT } : {}),
    customise: VM_CUSTOMISE_SCRIPT,
    size: ROOT_SIZE,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

const VM_MARKER = '.cairn-lab-vm-image';

/** Where the VM image of `key` is cached. */
export function vmImageDir(key: string): string {
  return join(LAB_DIR, `vmimage-${key}`);
}

function vmImagePaths(key: string) {
  const dir = vmImageDir(key);
  return {
    dir,
    rootImage: join(dir, 'root.raw'),
    repoImage: join(dir, 'repo.ext4'),
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    marker: join(dir, VM_MARKER),
  };
}

export function vmImageIsComplete(key: string): boolean {
  try {
    return JSON.parse(readFileSync(vmImagePaths(key).marker, 'utf8')).key === key;
  } catch {
    return false;
  }
}

export interface EnsureVmImageOptions {
  image: ImageInfo;
  repo: RepoInfo;
  /** The variant with OpenZFS (for VMs marked `zfs: true`). */
  zfs: boolean;
  log: (line: string) => void;
}

/** Build the VM image variant unless a complete one for this container image and repository exists. */
export async function ensureVmImage(opts: EnsureVmImageOptions): Promise<VmImageInfo> {
  const key = vmImageKey(opts.image, opts.repo, opts.zfs);
  const paths = vmImagePaths(key);
  if (vmImageIsComplete(key)) {
    const recorded = JSON.parse(readFileSync(paths.marker, 'utf8')) as { kernelVersion: string };
    return {
      key,
      dir: paths.dir,
      rootImage: paths.rootImage,
      repoImage: paths.repoImage,
      kernel: paths.kernel,
      initrd: paths.initrd,
      kernelVersion: recorded.kernelVersion,
      zfs: opts.zfs,
      built: false,
      buildMs: 0,
    };
  }
  const started = Date.now();
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `vmimage-${key}.log`);
  writeFileSync(logFile, '');
  const tmp = `${paths.dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  rmSync(paths.dir, { recursive: true, force: true });
  const tree = join(tmp, 'tree');
  mkdirSync(tmp, { recursive: true });
  opts.log(
    opts.zfs
      ? `building the VM image ${key} with OpenZFS: the container image plus ${[...VM_IMAGE_PACKAGES, ...VM_ZFS_PACKAGES].join(', ')}, OpenZFS built for its kernel (once, about ten minutes; log: ${logFile})`
      : `building the VM image ${key}: the container image plus ${VM_IMAGE_PACKAGES.join(', ')} (once; log: ${logFile})`,
  );
  await runChecked('cp', ['-a', '--', opts.image.root, tree], 'copying the base image for the VM image', { logFile });
  // A chroot with /proc, /sys and /dev (nspawn provides them and takes them down), no network, the repository
  // read-only where apt in the image expects it. Native speed: nothing here runs under emulation.
  const nspawn = findExecutable('systemd-nspawn') ?? 'systemd-nspawn';
  const inChroot = (what: string, script: string, ...args: string[]) =>
    runChecked(
      nspawn,
      [
        '-q',
        `--directory=${tree}`,
        '--register=no',
        '--keep-unit',
        '--private-network',
        '--resolv-conf=off',
        '--timezone=off',
        `--bind-ro=${opts.repo.dir}:${REPO_MOUNT_POINT}`,
        '/bin/sh',
        '-c',
        script,
        'sh',
        ...args,
      ],
      what,
      { logFile },
    );
  await inChroot(
    'installing the kernel into the VM image',
    [
      'set -eu',
      'export DEBIAN_FRONTEND=noninteractive',
      'apt-get update -qq',
      `apt-get install -y -q --no-install-recommends ${VM_IMAGE_PACKAGES.join(' ')}`,
    ].join('\n'),
  );
  const boot = join(tree, 'boot');
  const kernelFile = readdirSync(boot).find((f) => /^vmlinuz-.*-cloud-amd64$/.test(f));
  if (!kernelFile)
    throw new CairnError(`the VM image has no cloud kernel in ${boot} (see ${logFile})`, { kind: 'runtime' });
  const kernelVersion = kernelFile.slice('vmlinuz-'.length);
  let zfsVersion: string | undefined;
  let zfsBuildMs: number | undefined;
  if (opts.zfs) {
    const zfsStarted = Date.now();
    await inChroot('building OpenZFS for the VM kernel (zfs-dkms)', VM_ZFS_SCRIPT, kernelVersion);
    zfsBuildMs = Date.now() - zfsStarted;
    // dkms keeps one folder per built version (and a `source` link) under /var/lib/dkms/zfs.
    zfsVersion = readdirSync(join(tree, 'var', 'lib', 'dkms', 'zfs')).find((v) => /^\d/.test(v)) ?? 'unknown';
    opts.log(
      `OpenZFS ${zfsVersion} built for ${kernelVersion} in ${(zfsBuildMs / 1000).toFixed(1)} s (zfs-dkms, in the chroot)`,
    );
  }
  await inChroot(
    'customising the VM image',
    ['set -eu', VM_CUSTOMISE_SCRIPT, 'apt-get clean', 'rm -rf /var/lib/apt/lists/*'].join('\n'),
  );
  const tmpPaths = {
    kernel: join(tmp, 'vmlinuz'),
    initrd: join(tmp, 'initrd.img'),
    rootImage: join(tmp, 'root.raw'),
    repoImage: join(tmp, 'repo.ext4'),
  };
  copyFileSync(join(boot, kernelFile), tmpPaths.kernel);
  copyFileSync(join(boot, `initrd.img-${kernelVersion}`), tmpPaths.initrd);
  // The file system image, filled from the tree without mounting anything (mke2fs -d keeps owners and modes).
  await runChecked(
    'mke2fs',
    ['-q', '-t', 'ext4', '-F', '-L', ROOT_LABEL, '-d', tree, tmpPaths.rootImage, ROOT_SIZE],
    'writing the VM root file system image',
    { logFile },
  );
  rmSync(tree, { recursive: true, force: true });
  // The repository: its size plus room for ext4's own metadata.
  const repoMiB = Math.ceil((directoryBytes(opts.repo.dir) * 1.15) / 1024 ** 2) + 64;
  await runChecked(
    'mke2fs',
    ['-q', '-t', 'ext4', '-F', '-L', REPO_LABEL, '-m', '0', '-d', opts.repo.dir, tmpPaths.repoImage, `${repoMiB}M`],
    'writing the repository disk for the VMs',
    { logFile },
  );
  writeFileSync(
    join(tmp, VM_MARKER),
    JSON.stringify({
      key,
      kernelVersion,
      zfs: opts.zfs,
      ...(opts.zfs ? { zfsVersion, zfsBuildMs } : {}),
      image: opts.image.hash,
      repo: opts.repo.dir,
      builtAt: new Date().toISOString(),
    }) + '\n',
  );
  renameSync(tmp, paths.dir);
  return {
    key,
    dir: paths.dir,
    rootImage: paths.rootImage,
    repoImage: paths.repoImage,
    kernel: paths.kernel,
    initrd: paths.initrd,
    kernelVersion,
    zfs: opts.zfs,
    built: true,
    buildMs: Date.now() - started,
  };
}

function directoryBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, entry) => {
    const st = statSync(join(dir, entry));
    return sum + (st.isFile() ? st.size : 0);
  }, 0);
}

/** VM images no running lab uses any more (and build leftovers). */
export function removeStaleVmImages(keep: ReadonlySet<string>): string[] {
  if (!existsSync(LAB_DIR)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(LAB_DIR)) {
    if (!/^vmimage-[0-9a-f]+(\.tmp)?$/.test(entry)) continue;
    const path = join(LAB_DIR, entry);
    if (keep.has(path)) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------------------
// One VM's files

export interface VmPaths {
  dir: string;
  overlay: string;
  seedDir: string;
  seedImage: string;
  qmpSocket: string;
  console: string;
  /** qemu's own messages (errors before the guest runs). */
  qemuLog: string;
  disk: (index: number) => string;
}

export function vmPaths(name: string): VmPaths {
  const dir = join(HOSTS_DIR, name);
  return {
    dir,
    overlay: join(dir, 'root.qcow2'),
    seedDir: join(dir, 'seed'),
    seedImage: join(dir, 'seed.img'),
    qmpSocket: join(dir, 'qmp.sock'),
    console: join(dir, 'console.log'),
    qemuLog: join(dir, 'qemu.log'),
    disk: (index) => join(dir, `disk${index}.raw`),
  };
}

/** The guest-side stable path of data disk `index` (1-based): the serial becomes /dev/disk/by-id/virtio-SERIAL. */
export function diskSerial(host: string, index: number): string {
  return `${host}-d${index}`;
}
export function diskById(host: string, index: number): string {
  return `/dev/disk/by-id/virtio-${diskSerial(host, index)}`;
}

/** Host-side tap name (15 characters at most: host names are 12). */
export function tapName(host: string): string {
  return `vt-${host}`;
}

/** A locally administered MAC from the host's address, so it is stable across boots. */
export function macAddress(address: string): string {
  const octets = address.split('.').map((o) => Number(o).toString(16).padStart(2, '0'));
  return `52:54:${octets.join(':')}`;
}

export interface VmContext {
  image: Pick<VmImageInfo, 'rootImage' | 'repoImage' | 'kernel' | 'initrd'>;
  topology: Pick<LabTopology, 'bridge' | 'bridgeAddress' | 'hosts'>;
  publicKey: string;
}

function vmSpecOf(spec: LabHostSpec): LabVmSpec {
  if (!spec.vm) throw new CairnError(`lab host ${spec.name} is not a VM`, { kind: 'runtime' });
  return spec.vm;
}

/**
 * The overlay, data disks and seed disk (made once; the seed is rewritten each boot so /etc/hosts follows the
 * topology). Host keys are generated once, here, and kept with the host.
 */
export async function prepareVm(spec: LabHostSpec, ctx: VmContext): Promise<VmPaths> {
  const vm = vmSpecOf(spec);
  const paths = vmPaths(spec.name);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  if (!existsSync(paths.overlay)) {
    await runChecked(
      'qemu-img',
      ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', ctx.image.rootImage, paths.overlay],
      `creating the disk of lab VM ${spec.name}`,
    );
  }
  vm.disksGiB.forEach((size, i) => {
    const file = paths.disk(i + 1);
    if (existsSync(file)) return;
    // Sparse: a 16 GiB disk takes no space until written.
    const fd = openSync(file, 'wx', 0o600);
    closeSync(fd);
    writeSparse(file, size);
  });
  mkdirSync(paths.seedDir, { recursive: true, mode: 0o700 });
  // Every type sshd would otherwise make at boot (ssh-keygen -A): RSA key generation alone takes minutes
  // under TCG on a loaded machine, and a second here.
  for (const type of HOST_KEY_TYPES) {
    const hostKey = join(paths.seedDir, `ssh_host_${type}_key`);
    if (existsSync(hostKey)) continue;
    await runChecked(
      'ssh-keygen',
      ['-q', '-t', type, '-N', '', '-C', `root@${spec.name}`, '-f', hostKey],
      `making the SSH host keys of lab VM ${spec.name}`,
    );
  }
  writeFileAtomic(join(paths.seedDir, 'hostname'), `${spec.name}\n`);
  writeFileAtomic(join(paths.seedDir, 'host0.network'), networkUnit(spec.address, 'vm'));
  writeFileAtomic(join(paths.seedDir, 'hosts-block'), hostsBlock(ctx.topology));
  writeFileAtomic(join(paths.seedDir, 'authorized_key'), `${ctx.publicKey}\n`);
  writeFileAtomic(join(paths.seedDir, 'apply'), SEED_APPLY_SCRIPT, 0o644);
  rmSync(paths.seedImage, { force: true });
  await runChecked(
    'mke2fs',
    ['-q', '-t', 'ext4', '-F', '-L', SEED_LABEL, '-d', paths.seedDir, paths.seedImage, '8M'],
    `writing the seed disk of lab VM ${spec.name}`,
  );
  return paths;
}

function writeSparse(file: string, sizeGiB: number): void {
  // truncate(2) through Node: the file grows without blocks.
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, sizeGiB * 1024 ** 3);
  } finally {
    closeSync(fd);
  }
}

export function hostsBlock(topology: Pick<LabTopology, 'bridgeAddress' | 'hosts'>): string {
  return [
    '# BEGIN cairn lab hosts',
    `${topology.bridgeAddress}\tcairn-controller`,
    ...topology.hosts.map((h) => `${h.address}\t${h.name}`),
    '# END cairn lab hosts',
    '',
  ].join('\n');
}

/** qemu's command line for one boot. Every path is the lab's own; nothing here comes from a guest. */
export function qemuArgs(
  spec: LabHostSpec,
  ctx: VmContext,
  paths: VmPaths,
  accel: Accelerator,
  machineId: string,
): string[] {
  const vm = vmSpecOf(spec);
  const append = [
    `root=LABEL=${ROOT_LABEL}`,
    'rw',
    'console=ttyS0,115200',
    `systemd.hostname=${spec.name}`,
    `systemd.machine_id=${machineId}`,
    // Kernel messages at info level: the console log then shows the hand-over to init (the accelerator
    // check) and "crng init done".
    'loglevel=6',
    'panic=-1',
  ].join(' ');
  const args = [
    '-name',
    `cairn-lab-${spec.name}`,
    '-machine',
    `pc,accel=${accel}`,
    '-cpu',
    'max',
    '-smp',
    String(vm.cpus),
    '-m',
    String(vm.memoryMiB),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-kernel',
    ctx.image.kernel,
    '-initrd',
    ctx.image.initrd,
    '-append',
    append,
    '-chardev',
    `file,id=console,path=${paths.console},append=on`,
    '-serial',
    'chardev:console',
    '-qmp',
    `unix:${paths.qmpSocket},server=on,wait=off`,
    // cache=unsafe: flushes are ignored, but every write is in this machine's page cache, so killing qemu (a
    // power cut drill) loses nothing the guest wrote; only a crash of this machine would.
    '-drive',
    `file=${paths.overlay},format=qcow2,if=none,id=root,cache=unsafe,discard=unmap`,
    '-device',
    'virtio-blk-pci,drive=root,serial=cairnroot',
    '-drive',
    `file=${paths.seedImage},format=raw,if=none,id=seed,readonly=on`,
    '-device',
    `virtio-blk-pci,drive=seed,serial=${SEED_SERIAL}`,
  ];
  vm.disksGiB.forEach((_, i) => {
    const n = i + 1;
    args.push('-drive', `file=${paths.disk(n)},format=raw,if=none,id=drive-d${n},cache=unsafe,discard=unmap`);
    args.push('-device', `virtio-blk-pci,drive=drive-d${n},id=d${n},serial=${diskSerial(spec.name, n)}`);
  });
  args.push(
    '-netdev',
    `tap,id=net0,ifname=${tapName(spec.name)},script=no,downscript=no`,
    '-device',
    `virtio-net-pci,netdev=net0,mac=${macAddress(spec.address)}`,
    // Entropy from this machine: without it, under TCG, the guest's random pool can take minutes to be
    // ready, and sshd (getrandom) waits for it before it answers.
    '-object',
    'rng-random,id=rng0,filename=/dev/urandom',
    '-device',
    'virtio-rng-pci,rng=rng0',
    '-drive',
    `file=${ctx.image.repoImage},format=raw,if=none,id=repo,readonly=on`,
    '-device',
    `virtio-blk-pci,drive=repo,serial=${REPO_LABEL}`,
  );
  return args;
}

export async function ensureTap(spec: LabHostSpec, bridge: string): Promise<void> {
  const tap = tapName(spec.name);
  const exists = await run('ip', ['link', 'show', 'dev', tap]);
  if (exists.code !== 0) await runChecked('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap'], `creating tap ${tap}`);
  await runChecked('ip', ['link', 'set', 'dev', tap, 'master', bridge], `attaching ${tap} to ${bridge}`);
  await runChecked('ip', ['link', 'set', 'dev', tap, 'up'], `bringing ${tap} up`);
}

export interface VmBoot {
  process: ProcessRef;
  accelerator: Accelerator;
  /** Notes for the log: why KVM was not tried, or why an accelerator was given up. */
  notes: string[];
  /** ms from starting qemu to the kernel reaching init. */
  kernelMs: number;
}

/**
 * What /dev/kvm is on this machine. 'pvm': the KVM of module kvm_pvm (PVM, pagetable-based nested
 * virtualization without VMX/SVM, as some cloud sandboxes provide), which runs only guest kernels built as PVM
 * guests: Debian's cloud kernel hangs there right after its real-mode boot stub (measured: the serial console
 * shows "Probing EDD ... ok" and nothing more, even with earlyprintk), so trying it only costs the timeout.
 */
export type KvmKind = 'none' | 'hardware' | 'pvm';

export function kvmKind(exists: (path: string) => boolean = existsSync): KvmKind {
  if (!exists('/dev/kvm')) return 'none';
  return exists('/sys/module/kvm_pvm') ? 'pvm' : 'hardware';
}

/**
 * The accelerators to try, in order: KVM when this machine has a hardware /dev/kvm, then TCG. CAIRN_LAB_ACCEL
 * forces one (kvm on a PVM machine too, to try it).
 */
export function acceleratorsToTry(env = process.env, kvm: KvmKind = kvmKind()): Accelerator[] {
  const forced = env.CAIRN_LAB_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return [forced];
  return kvm === 'hardware' ? ['kvm', 'tcg'] : ['tcg'];
}

/** Why KVM is not tried, for the log (undefined when it is tried, or there is no /dev/kvm). */
export function kvmSkippedNote(order: readonly Accelerator[], kvm: KvmKind = kvmKind()): string | undefined {
  if (order.includes('kvm') || kvm !== 'pvm') return undefined;
  return "kvm not tried: /dev/kvm is PVM (module kvm_pvm), which boots only PVM guest kernels; Debian's cloud kernel hangs after its boot stub there";
}

/** Start qemu detached and wait until the kernel reaches init; on KVM trouble, kill it and try TCG. */
export async function bootVm(
  spec: LabHostSpec,
  ctx: VmContext,
  paths: VmPaths,
  machineId: string,
  onStarted: (process: ProcessRef) => void = () => undefined,
): Promise<VmBoot> {
  await ensureTap(spec, ctx.topology.bridge);
  const qemuPath = findExecutable('qemu-system-x86_64');
  if (!qemuPath)
    throw new CairnError('qemu-system-x86_64 is not installed: apt-get install qemu-system-x86 qemu-utils', {
      kind: 'options',
    });
  const order = acceleratorsToTry();
  const skipped = kvmSkippedNote(order);
  const notes: string[] = skipped ? [skipped] : [];
  for (const accel of order) {
    rmSync(paths.qmpSocket, { force: true });
    const consoleStart = existsSync(paths.console) ? statSync(paths.console).size : 0;
    const logFd = openSync(paths.qemuLog, 'a');
    const started = Date.now();
    let child;
    try {
      child = spawn(qemuPath, qemuArgs(spec, ctx, paths, accel, machineId), {
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
      throw new CairnError(`could not start qemu for lab VM ${spec.name} (see ${paths.qemuLog})`, { kind: 'runtime' });
    const ref: ProcessRef = { pid, startTime: info.startTime };
    onStarted(ref);
    const timeout = accel === 'kvm' ? KVM_MARKER_TIMEOUT_MS : TCG_MARKER_TIMEOUT_MS;
    const outcome = await waitForConsole(paths.console, consoleStart, KERNEL_REACHED_INIT, timeout, () => isAlive(ref));
    if (outcome === 'seen') return { process: ref, accelerator: accel, notes, kernelMs: Date.now() - started };
    const tail = readTail(paths.qemuLog, 400);
    if (isAlive(ref)) signal(ref, 'SIGKILL');
    // The next attempt opens the same disk images: this qemu must be gone, every thread of it, first.
    if (!(await waitForExit([ref], 30_000)))
      throw new CairnError(
        `lab VM ${spec.name}: qemu ${pid} (${accel}) did not end within 30 s of SIGKILL; its disk images are still open`,
        { kind: 'runtime' },
      );
    const why =
      outcome === 'exited'
        ? `qemu exited${tail ? `: ${tail}` : ''}`
        : `the kernel did not reach init within ${timeout / 1000} s`;
    const last = accel === order[order.length - 1];
    notes.push(`${accel}: ${why}${last ? '' : '; trying the next accelerator'}`);
    if (last) break;
  }
  throw new CairnError(`lab VM ${spec.name} did not boot (${notes.join('; ')}); see ${paths.console}`, {
    kind: 'runtime',
  });
}

async function waitForConsole(
  file: string,
  from: number,
  marker: RegExp,
  timeoutMs: number,
  alive: () => boolean,
): Promise<'seen' | 'exited' | 'timeout'> {
  const started = Date.now();
  for (;;) {
    if (marker.test(readFrom(file, from))) return 'seen';
    if (!alive()) return 'exited';
    if (Date.now() - started > timeoutMs) return 'timeout';
    await sleep(200);
  }
}

function readFrom(file: string, offset: number): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const size = statSync(file).size;
      const length = Math.max(0, size - offset);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, offset);
      return buffer.toString('latin1');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

function readTail(file: string, chars: number): string {
  try {
    return readFileSync(file, 'utf8').trim().slice(-chars).replace(/\s+/g, ' ');
  } catch {
    return '';
  }
}

/** A machine-id for a VM, made once and kept with its disk (systemd would otherwise make a new one each boot). */
export function vmMachineId(paths: VmPaths): string {
  const file = join(paths.dir, 'machine-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[0-9a-f]{32}$/.test(id)) return id;
  } catch {
    // first boot
  }
  const id = randomBytes(16).toString('hex');
  writeFileAtomic(file, `${id}\n`, 0o600);
  return id;
}

/** Orderly: the ACPI power button (systemd powers off), then SIGKILL after `timeoutMs`. */
export async function stopVm(
  proc: ProcessRef | undefined,
  paths: VmPaths,
  timeoutMs = 60_000,
): Promise<'stopped' | 'killed' | 'not running'> {
  if (!proc || !isAlive(proc)) return 'not running';
  try {
    await qmp(paths.qmpSocket, 'system_powerdown', undefined, 5_000);
    if (await waitForExit([proc], timeoutMs)) return 'stopped';
  } catch {
    // No QMP answer: a power cut is all that is left.
  }
  await killVm(proc);
  return 'killed';
}

/** Power cut: SIGKILL to qemu. */
export async function killVm(proc: ProcessRef | undefined): Promise<'killed' | 'not running'> {
  if (!proc || !isAlive(proc)) return 'not running';
  signal(proc, 'SIGKILL');
  if (!(await waitForExit([proc], 10_000)))
    throw new CairnError(`qemu ${proc.pid} did not end after SIGKILL`, { kind: 'runtime' });
  return 'killed';
}

/** qemu processes the lab started, found from their command line (a -name cairn-lab-... and a disk under the hosts dir). */
export function strayVmProcesses(
  hostsDir: string,
  cmdlineOf: (pid: number) => string[],
  processes: ProcessInfo[] = allProcesses(),
): ProcessInfo[] {
  return processes.filter((p) => {
    if (!p.comm.startsWith('qemu-system')) return false;
    const args = cmdlineOf(p.pid);
    const nameAt = args.indexOf('-name');
    return (
      nameAt >= 0 && (args[nameAt + 1] ?? '').startsWith('cairn-lab-') && args.some((a) => a.includes(`${hostsDir}/`))
    );
  });
}

export function killStrayVms(): ProcessInfo[] {
  const strays = strayVmProcesses(HOSTS_DIR, readCmdline);
  return strays.filter((p) => signal(p, 'SIGKILL'));
}

// ---------------------------------------------------------------------------------------------------------
// Disks: pull one out of a running VM, plug a blank one in (QMP device_del / blockdev-add + device_add)

/** Pull data disk `index` out of the running VM, as a failed drive would vanish; its file is kept. */
export async function unplugDisk(host: string, index: number): Promise<void> {
  const paths = vmPaths(host);
  await qmp(paths.qmpSocket, 'device_del', { id: `d${index}` });
  // device_del is asynchronous: the guest acknowledges the ACPI eject, then the device is gone.
  const started = Date.now();
  for (;;) {
    if (!(await peripherals(paths.qmpSocket)).includes(`d${index}`)) break;
    if (Date.now() - started > 60_000)
      throw new CairnError(`lab VM ${host}: disk d${index} was not released within 60 s`, { kind: 'runtime' });
    await sleep(250);
  }
  await qmp(paths.qmpSocket, 'blockdev-del', { 'node-name': `drive-d${index}` }).catch(() => undefined);
}

/** The ids of the devices given on qemu's command line or plugged through QMP. */
export async function peripherals(socket: string): Promise<string[]> {
  const entries = (await qmp(socket, 'qom-list', { path: '/machine/peripheral' })) as Array<{
    name: string;
    type: string;
  }>;
  return entries.filter((e) => e.type.startsWith('child<')).map((e) => e.name);
}

/**
 * Plug a blank disk into the slot of data disk `index` (a new sparse file replaces the old one, as a new drive
 * would), with the same serial so it appears at the same /dev/disk/by-id path.
 */
export async function plugBlankDisk(host: string, index: number, sizeGiB: number): Promise<void> {
  const paths = vmPaths(host);
  const file = paths.disk(index);
  rmSync(file, { force: true });
  closeSync(openSync(file, 'wx', 0o600));
  writeSparse(file, sizeGiB);
  const node = `drive-d${index}-r${Date.now().toString(36)}`;
  await qmp(paths.qmpSocket, 'blockdev-add', {
    driver: 'raw',
    'node-name': node,
    file: { driver: 'file', filename: file, cache: { direct: false, 'no-flush': true } },
  });
  await qmp(paths.qmpSocket, 'device_add', {
    driver: 'virtio-blk-pci',
    drive: node,
    id: `d${index}`,
    serial: diskSerial(host, index),
  });
}
