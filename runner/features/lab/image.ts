/**
 * The base image every lab host is an overlay on: Debian bookworm from debootstrap (minbase), customised
 * so each container boots with systemd and sshd, gets its own identity at first boot, and installs packages
 * only from the lab's local repository. Cached under LAB_DIR/image-<recipe hash>/root and rebuilt when the
 * recipe (suite, package list, customisation script) changes.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError } from '../../core/util/errors.js';
import { runChecked } from './exec.js';
import type { Mirror } from './mirror.js';
import { unmountAllUnder, mountsUnder } from './mounts.js';
import { LAB_DIR, LOG_DIR } from './paths.js';

export const IMAGE_SUITE = 'bookworm';

/** What debootstrap adds to minbase: enough for a host that boots, answers SSH and runs role tasks. */
export const IMAGE_PACKAGES: readonly string[] = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'iproute2',
  'python3',
  'procps',
  'curl',
  'sudo',
  'ca-certificates',
  'iputils-ping',
  'less',
  // Without it every package install prints "debconf: delaying package configuration".
  'apt-utils',
];

/**
 * Run on this machine with the image root as $1 after debootstrap. Per-host files (address, /etc/hosts,
 * machine-id, authorized_keys) are not here: they are written into each host's overlay, so one image serves
 * every host and every checkout's key pair.
 */
export const CUSTOMISE_SCRIPT = String.raw`set -eu
R="$1"
# Only ever a tree under the lab's directory, never this machine's own root.
case "$R" in /var/lib/cairn/lab/image-*/root) ;; *) echo "refusing to customise $R" >&2; exit 64 ;; esac
[ -x "$R/usr/bin/apt-get" ] || { echo "$R is not a bootstrapped tree" >&2; exit 64; }

# The build-time dpkg speed-up (see ensureImage) must not stay in the image.
rm -f "$R/etc/dpkg/dpkg.cfg.d/cairn-lab-build-unsafe-io"

# apt: only the lab's local repository, bind-mounted read-only at /srv/repo; no timers, no translations.
rm -f "$R/etc/apt/sources.list" "$R"/etc/apt/sources.list.d/*
echo 'deb [trusted=yes] file:/srv/repo ./' > "$R/etc/apt/sources.list.d/cairn-lab.list"
cat > "$R/etc/apt/apt.conf.d/90cairn-lab" <<'END'
Acquire::Languages "none";
APT::Periodic::Enable "0";
Dpkg::Use-Pty "0";
END
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
find "$R/var/cache/apt/archives" -name '*.deb' -delete

# Identity is per host: the lab writes a machine-id per host, and ssh-keygen -A makes host keys at first boot.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id" "$R/etc/hostname" "$R"/etc/ssh/ssh_host_*
mkdir -p "$R/etc/systemd/system/ssh.service.d"
# The empty ExecStartPre= resets Debian's list first; without it sshd -t runs before the keys exist and fails.
cat > "$R/etc/systemd/system/ssh.service.d/cairn-lab-host-keys.conf" <<'END'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
END
cat > "$R/etc/ssh/sshd_config.d/cairn-lab.conf" <<'END'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 64:30:128
MaxSessions 64
END
# The client's LANG would name a locale minbase does not have, and perl and apt would complain on every task.
sed -i '/^AcceptEnv/d' "$R/etc/ssh/sshd_config"
echo 'LANG=C.UTF-8' > "$R/etc/default/locale"
install -d -m 700 "$R/root/.ssh"

# No DNS in the lab: names come from /etc/hosts, written per host.
echo '# the cairn lab has no DNS; lab names are in /etc/hosts' > "$R/etc/resolv.conf"

# Addresses come from a systemd-networkd file per host; nothing waits for "online", no getty on the console.
systemctl --root="$R" enable systemd-networkd.service >/dev/null 2>&1
systemctl --root="$R" mask systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
  dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer console-getty.service \
  getty@tty1.service systemd-firstboot.service >/dev/null 2>&1
`;

export interface ImageRecipe {
  suite: string;
  variant: 'minbase';
  packages: readonly string[];
  customise: string;
}

export const IMAGE_RECIPE: ImageRecipe = {
  suite: IMAGE_SUITE,
  variant: 'minbase',
  packages: IMAGE_PACKAGES,
  customise: CUSTOMISE_SCRIPT,
};

export function recipeHash(recipe: ImageRecipe = IMAGE_RECIPE): string {
  const canonical = JSON.stringify({
    suite: recipe.suite,
    variant: recipe.variant,
    packages: [...recipe.packages].sort(),
    customise: recipe.customise,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

export interface ImageInfo {
  hash: string;
  dir: string;
  /** The tree used as the overlay's lower layer. */
  root: string;
  built: boolean;
  buildMs: number;
}

const MARKER = 'etc/cairn-lab-image';
const UNSAFE_IO_CONF = 'etc/dpkg/dpkg.cfg.d/cairn-lab-build-unsafe-io';

export function imagePaths(hash: string): { dir: string; root: string } {
  const dir = join(LAB_DIR, `image-${hash}`);
  return { dir, root: join(dir, 'root') };
}

export function imageIsComplete(hash: string): boolean {
  const { root } = imagePaths(hash);
  try {
    return readFileSync(join(root, MARKER), 'utf8').trim() === hash;
  } catch {
    return false;
  }
}

export interface EnsureImageOptions {
  mirror: Mirror;
  log: (line: string) => void;
  recipe?: ImageRecipe;
}

/** Build the image unless a complete one for this recipe exists. The build goes to a temp dir renamed at the end. */
export async function ensureImage(opts: EnsureImageOptions): Promise<ImageInfo> {
  const recipe = opts.recipe ?? IMAGE_RECIPE;
  const hash = recipeHash(recipe);
  const { dir, root } = imagePaths(hash);
  if (imageIsComplete(hash)) return { hash, dir, root, built: false, buildMs: 0 };

  const started = Date.now();
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `image-${hash}.log`);
  writeFileSync(logFile, '');
  const tmp = `${dir}.tmp`;
  await discardTree(tmp);
  if (existsSync(dir)) await discardTree(dir); // an incomplete leftover
  const tmpRoot = join(tmp, 'root');
  mkdirSync(tmpRoot, { recursive: true });
  // Downloaded .debs are kept, so a recipe change costs the unpacking, not the download.
  const debCache = join(LAB_DIR, 'cache', 'debootstrap');
  mkdirSync(debCache, { recursive: true });

  // dpkg inside the new tree skips its fsync()s while it is being built (as mmdebstrap does): a crash
  // only ever loses a temp tree that is rebuilt anyway. The customisation removes the setting.
  mkdirSync(join(tmpRoot, UNSAFE_IO_CONF, '..'), { recursive: true });
  writeFileSync(join(tmpRoot, UNSAFE_IO_CONF), 'force-unsafe-io\n');

  opts.log(
    `building the base image ${hash} with debootstrap from ${opts.mirror.uri} (once; about a minute; log: ${logFile})`,
  );
  const args = [
    `--variant=${recipe.variant}`,
    `--include=${recipe.packages.join(',')}`,
    '--components=main',
    `--cache-dir=${debCache}`,
    ...(opts.mirror.keyring ? [`--keyring=${opts.mirror.keyring}`] : []),
    recipe.suite,
    tmpRoot,
    opts.mirror.uri,
  ];
  try {
    await runChecked('debootstrap', args, 'building the lab image', { logFile });
    await runChecked('sh', ['-c', recipe.customise, 'cairn-lab-customise', tmpRoot], 'customising the lab image', {
      logFile,
    });
  } finally {
    // debootstrap mounts /proc and /sys inside the target while it works; never leave them behind.
    await unmountAllUnder(tmp);
  }
  writeFileSync(join(tmpRoot, MARKER), hash + '\n');
  const record = { ...recipe, hash, mirror: opts.mirror.uri, builtAt: new Date().toISOString() };
  writeFileSync(join(tmp, 'recipe.json'), JSON.stringify(record, null, 2) + '\n');
  renameSync(tmp, dir);
  return { hash, dir, root, built: true, buildMs: Date.now() - started };
}

/** Remove a tree the lab built, after making sure nothing is mounted inside it. */
export async function discardTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  await unmountAllUnder(path);
  if (mountsUnder(path).length > 0)
    throw new CairnError(`refusing to delete ${path}: something is still mounted inside it`, { kind: 'runtime' });
  rmSync(path, { recursive: true, force: true });
}

/** Older images and build leftovers that no host uses any more. */
export async function removeStaleImages(keep: ReadonlySet<string>): Promise<string[]> {
  if (!existsSync(LAB_DIR)) return [];
  const removed: string[] = [];
  for (const entry of readdirSync(LAB_DIR)) {
    if (!/^image-[0-9a-f]+(\.tmp)?$/.test(entry)) continue;
    const path = join(LAB_DIR, entry);
    if (keep.has(path)) continue;
    await discardTree(path);
    rmSync(join(LOG_DIR, `${entry.replace(/\.tmp$/, '')}.log`), { force: true });
    removed.push(path);
  }
  return removed;
}
