/**
 * The lab's offline package repository: every package the roles install, resolved by this machine's apt
 * against the base image's dpkg status (so only what the image lacks is fetched), downloaded once from the
 * mirror in apt's sources, indexed with dpkg-scanpackages and bind-mounted read-only at /srv/repo in every
 * host. Cached under LAB_DIR/repo-<key>, the key covering the package lists, the image and the sources.
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { runChecked } from './exec.js';
import type { ImageInfo } from './image.js';
import type { Mirror } from './mirror.js';
import { LAB_DIR, LOG_DIR } from './paths.js';

/**
 * Packages the VM image installs from this repository (the kernel its VMs boot); kept here, beside the other
 * lists, so the repository's key covers them.
 */
export const VM_IMAGE_PACKAGES: readonly string[] = ['linux-image-cloud-amd64', 'initramfs-tools', 'mdadm'];

/**
 * Native OpenZFS in the VM image: the kernel's headers and dkms, with which zfs-dkms builds its module for the
 * VM kernel while the image is made (in the chroot, at native speed), and the user-space tools and event
 * daemon. A VM then has `modprobe zfs` at boot, as a production node with zfs-dkms has.
 */
export const VM_ZFS_PACKAGES: readonly string[] = [
  'linux-headers-cloud-amd64',
  'dkms',
  'zfs-dkms',
  'zfsutils-linux',
  'zfs-zed',
];

/** Installed with their Recommends by the roles (small): downloaded with Recommends. */
export const REPO_PACKAGES_WITH_RECOMMENDS: readonly string[] = [
  'haproxy',
  'keepalived',
  'nginx',
  'socat',
  'prometheus',
  'prometheus-alertmanager',
  'prometheus-node-exporter',
  'prometheus-blackbox-exporter',
  'borgbackup',
  'borgmatic',
  'restic',
  'sanoid',
  'zfs-fuse',
  'chrony',
  'rsync',
  'jq',
  'python3-yaml',
  'mdadm',
  'nftables',
  // Public roles of the compatibility corpus run for real on the lab (test/lab/95-compat-roles.test.ts):
  // geerlingguy.security (fail2ban and python3-systemd for its systemd backend, unattended-upgrades),
  // .firewall (iptables); .ntp's ntpsec is in REPO_PACKAGES_ALONE.
  'fail2ban',
  'python3-systemd',
  'unattended-upgrades',
  'iptables',
];

/**
 * Packages that conflict with one of the lists above (ntpsec and chrony both provide time-daemon), so apt
 * cannot resolve them in the same install: each is downloaded, with its Recommends, in an install of its own.
 */
export const REPO_PACKAGES_ALONE: readonly string[] = ['ntpsec'];

/**
 * Heavy packages whose Recommends pull in desktops and machine-learning stacks (qemu-system-gui,
 * ceph-mgr-diskprediction-local...): downloaded without Recommends. apt skips a Recommends it cannot find,
 * so installing these with Recommends inside a host still works, with only what is here.
 */
export const REPO_PACKAGES_WITHOUT_RECOMMENDS: readonly string[] = [
  'libvirt-daemon-system',
  'libvirt-clients',
  'libvirt-daemon-driver-qemu',
  'qemu-system-x86',
  'qemu-utils',
  'ceph-mon',
  'ceph-mgr',
  'ceph-osd',
  'ceph-common',
  // HA guests (roles/kvm kvm_guests, roles/ha_cluster): qemu's RBD block driver, the cluster stack (corosync,
  // pacemaker, crmsh), VirtualDomain (resource-agents) and the production fence agents (fence_ipmilan,
  // fence_redfish).
  'qemu-block-extra',
  'corosync',
  'pacemaker',
  'crmsh',
  'resource-agents',
  'fence-agents',
  // The VM tier (runner/features/lab/vm.ts): the kernel and initramfs its image boots, and what only a real kernel can
  // use (md, LVM for ceph-volume, OpenZFS built by dkms for that kernel from Debian's contrib section).
  ...VM_IMAGE_PACKAGES,
  ...VM_ZFS_PACKAGES,
  'lvm2',
];

/**
 * The sources the repository is resolved against: this machine's, with Debian's contrib section added to each
 * stanza that has main (zfs-dkms and zfsutils-linux live in contrib; this machine itself needs only main).
 */
export function withContrib(sourcesText: string): string {
  return sourcesText.replace(/^(Components:[ \t]*)(.*)$/gm, (line, key: string, value: string) => {
    const words = value.split(/\s+/).filter(Boolean);
    return words.includes('main') && !words.includes('contrib') ? `${key}${[...words, 'contrib'].join(' ')}` : line;
  });
}

export interface RepoInfo {
  key: string;
  dir: string;
  packageCount: number;
  built: boolean;
  buildMs: number;
}

export function repoKey(image: Pick<ImageInfo, 'hash'>, mirror: Pick<Mirror, 'sourcesText'>): string {
  const canonical = JSON.stringify({
    image: image.hash,
    withRecommends: [...REPO_PACKAGES_WITH_RECOMMENDS].sort(),
    withoutRecommends: [...REPO_PACKAGES_WITHOUT_RECOMMENDS].sort(),
    alone: [...REPO_PACKAGES_ALONE].sort(),
    sources: withContrib(mirror.sourcesText),
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

export function repoDir(key: string): string {
  return join(LAB_DIR, `repo-${key}`);
}

const MARKER = '.cairn-lab-repo';

export function repoIsComplete(key: string): boolean {
  try {
    return readFileSync(join(repoDir(key), MARKER), 'utf8').trim() === key;
  } catch {
    return false;
  }
}

export interface EnsureRepoOptions {
  image: ImageInfo;
  mirror: Mirror;
  log: (line: string) => void;
}

/**
 * Hard links (a copy across file systems) of the packages of the lab's other complete repositories into apt's
 * archive folder for this build: apt uses a file already there when its size and hash match the mirror's
 * index and downloads it otherwise, so a changed package list fetches only what is new. The earlier packages
 * all land in the new repository too (those the mirror has since replaced as well: apt in a host takes the
 * newest version), as they would have if they had been downloaded again.
 */
function seedArchives(archives: string, key: string): number {
  let count = 0;
  let names: string[];
  try {
    names = readdirSync(LAB_DIR);
  } catch {
    return 0;
  }
  for (const name of names) {
    const other = /^repo-([0-9a-f]{16})$/.exec(name)?.[1];
    if (!other || other === key || !repoIsComplete(other)) continue;
    for (const deb of readdirSync(join(LAB_DIR, name))) {
      if (!deb.endsWith('.deb') || existsSync(join(archives, deb))) continue;
      try {
        linkSync(join(LAB_DIR, name, deb), join(archives, deb));
      } catch {
        copyFileSync(join(LAB_DIR, name, deb), join(archives, deb));
      }
      count++;
    }
  }
  return count;
}

export async function ensureRepo(opts: EnsureRepoOptions): Promise<RepoInfo> {
  const key = repoKey(opts.image, opts.mirror);
  const dir = repoDir(key);
  if (repoIsComplete(key)) return { key, dir, packageCount: countDebs(dir), built: false, buildMs: 0 };

  const started = Date.now();
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `repo-${key}.log`);
  writeFileSync(logFile, '');
  const work = `${dir}.work`;
  const tmp = `${dir}.tmp`;
  for (const stale of [work, tmp, dir]) rmSync(stale, { recursive: true, force: true });
  const paths = {
    sourceParts: join(work, 'etc', 'sources.list.d'),
    preferenceParts: join(work, 'etc', 'preferences.d'),
    lists: join(work, 'lists'),
    state: join(work, 'state'),
    cache: join(work, 'cache'),
    archives: join(work, 'cache', 'archives'),
  };
  for (const p of [
    paths.sourceParts,
    paths.preferenceParts,
    join(paths.lists, 'partial'),
    paths.state,
    join(paths.archives, 'partial'),
  ]) {
    mkdirSync(p, { recursive: true });
  }
  const reused = seedArchives(paths.archives, key);
  if (reused > 0) opts.log(`reusing ${reused} packages of earlier lab repositories (apt checks each one's hash)`);
  writeFileSync(join(work, 'etc', 'sources.list'), '');
  writeFileSync(join(paths.sourceParts, 'debian.sources'), withContrib(opts.mirror.sourcesText));

  // apt with private state: this machine's package lists, cache and dpkg database are never touched.
  const apt = [
    '-o',
    `Dir::Etc::SourceList=${join(work, 'etc', 'sources.list')}`,
    '-o',
    `Dir::Etc::SourceParts=${paths.sourceParts}`,
    '-o',
    `Dir::Etc::Preferences=${join(work, 'etc', 'preferences')}`,
    '-o',
    `Dir::Etc::PreferencesParts=${paths.preferenceParts}`,
    '-o',
    `Dir::State=${paths.state}`,
    '-o',
    `Dir::State::Lists=${paths.lists}`,
    '-o',
    `Dir::State::status=${join(opts.image.root, 'var', 'lib', 'dpkg', 'status')}`,
    '-o',
    `Dir::Cache=${paths.cache}`,
    '-o',
    `Dir::Cache::Archives=${paths.archives}`,
    '-o',
    'Debug::NoLocking=1',
    // The private directories are root's; apt's download sandbox user could not write them.
    '-o',
    'APT::Sandbox::User=root',
    '-o',
    'Acquire::Languages=none',
    '-q',
  ];
  const total =
    REPO_PACKAGES_WITH_RECOMMENDS.length + REPO_PACKAGES_WITHOUT_RECOMMENDS.length + REPO_PACKAGES_ALONE.length;
  opts.log(`building the package repository (${total} role packages and their dependencies; once; log: ${logFile})`);
  await runChecked('apt-get', [...apt, 'update'], 'reading the Debian mirror for the lab repository', { logFile });
  await runChecked(
    'apt-get',
    [...apt, '-y', '--download-only', '-o', 'APT::Install-Recommends=1', 'install', ...REPO_PACKAGES_WITH_RECOMMENDS],
    'downloading lab packages',
    { logFile },
  );
  await runChecked(
    'apt-get',
    [...apt, '-y', '--download-only', '--no-install-recommends', 'install', ...REPO_PACKAGES_WITHOUT_RECOMMENDS],
    'downloading lab packages',
    { logFile },
  );
  for (const alone of REPO_PACKAGES_ALONE) {
    await runChecked(
      'apt-get',
      [...apt, '-y', '--download-only', '-o', 'APT::Install-Recommends=1', 'install', alone],
      `downloading ${alone} for the lab`,
      { logFile },
    );
  }

  mkdirSync(tmp, { recursive: true, mode: 0o755 });
  for (const entry of readdirSync(paths.archives)) {
    if (!entry.endsWith('.deb')) continue;
    // rename within one file system; copy if the cache were elsewhere.
    try {
      renameSync(join(paths.archives, entry), join(tmp, entry));
    } catch {
      copyFileSync(join(paths.archives, entry), join(tmp, entry));
    }
  }
  const scan = await runChecked(
    'dpkg-scanpackages',
    ['--multiversion', '.', '/dev/null'],
    'indexing the lab repository',
    { cwd: tmp },
  );
  writeIndex(tmp, scan.stdout);
  writeFileSync(join(tmp, MARKER), key + '\n');
  renameSync(tmp, dir);
  rmSync(work, { recursive: true, force: true });
  return { key, dir, packageCount: countDebs(dir), built: true, buildMs: Date.now() - started };
}

/** Packages, Packages.gz and a Release listing their hashes, so apt reads the flat repository without warnings. */
export function writeIndex(dir: string, packagesText: string): void {
  const packages = Buffer.from(packagesText, 'utf8');
  const packagesGz = gzipSync(packages, { level: 9 });
  writeFileSync(join(dir, 'Packages'), packages, { mode: 0o644 });
  writeFileSync(join(dir, 'Packages.gz'), packagesGz, { mode: 0o644 });
  writeFileSync(
    join(dir, 'Release'),
    releaseText([
      { name: 'Packages', data: packages },
      { name: 'Packages.gz', data: packagesGz },
    ]),
    { mode: 0o644 },
  );
}

export function releaseText(files: Array<{ name: string; data: Buffer }>, date = new Date()): string {
  const lines = [
    'Origin: cairn-lab',
    'Label: cairn-lab',
    'Suite: lab',
    'Codename: lab',
    `Date: ${date.toUTCString().replace('GMT', 'UTC')}`,
    'Architectures: amd64 all',
    'Description: cairn lab offline repository',
  ];
  for (const [field, algo] of [
    ['MD5Sum', 'md5'],
    ['SHA256', 'sha256'],
  ] as const) {
    lines.push(`${field}:`);
    for (const f of files)
      lines.push(` ${createHash(algo).update(f.data).digest('hex')} ${String(f.data.length).padStart(8)} ${f.name}`);
  }
  return lines.join('\n') + '\n';
}

function countDebs(dir: string): number {
  try {
    return readdirSync(dir).filter((e) => e.endsWith('.deb')).length;
  } catch {
    return 0;
  }
}

/** Repositories no host uses any more (and build leftovers). */
export function removeStaleRepos(keep: ReadonlySet<string>): string[] {
  if (!existsSync(LAB_DIR)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(LAB_DIR)) {
    if (!/^repo-[0-9a-f]+(\.tmp|\.work)?$/.test(entry)) continue;
    const path = join(LAB_DIR, entry);
    if (keep.has(path) || !statSync(path).isDirectory()) continue;
    rmSync(path, { recursive: true, force: true });
    rmSync(join(LOG_DIR, `${entry.replace(/\.(tmp|work)$/, '')}.log`), { force: true });
    removed.push(path);
  }
  return removed;
}
