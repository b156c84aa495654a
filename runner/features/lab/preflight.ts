/**
 * What the lab needs from this machine, checked before anything is changed. Each refusal is one sentence
 * saying what to install or why, and is an 'options' CairnError (exit code 5).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CairnError } from '../../core/util/errors.js';

export interface Tool {
  command: string;
  /** The Debian package that provides it. */
  pkg: string;
}

export const TOOLS = {
  nspawn: { command: 'systemd-nspawn', pkg: 'systemd-container' },
  debootstrap: { command: 'debootstrap', pkg: 'debootstrap' },
  scanpackages: { command: 'dpkg-scanpackages', pkg: 'dpkg-dev' },
  aptGet: { command: 'apt-get', pkg: 'apt' },
  ssh: { command: 'ssh', pkg: 'openssh-client' },
  sshKeygen: { command: 'ssh-keygen', pkg: 'openssh-client' },
  ip: { command: 'ip', pkg: 'iproute2' },
  mount: { command: 'mount', pkg: 'mount' },
  qemu: { command: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
  qemuImg: { command: 'qemu-img', pkg: 'qemu-utils' },
  mke2fs: { command: 'mke2fs', pkg: 'e2fsprogs' },
} as const satisfies Record<string, Tool>;

/** Full path of an executable on PATH (plus the sbin dirs, which a non-login root shell may lack). */
export function findExecutable(command: string, pathEnv = process.env.PATH ?? ''): string | undefined {
  const dirs = [
    ...pathEnv.split(delimiter).filter(Boolean),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
    '/usr/bin',
    '/bin',
  ];
  for (const dir of dirs) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function refusal(sentence: string): CairnError {
  return new CairnError(sentence, { kind: 'options' });
}

export function requireRoot(action: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw refusal(
      `cairn lab ${action} must run as root: the lab creates a bridge, mounts overlays and boots containers.`,
    );
  }
}

export function requireTools(tools: readonly Tool[]): void {
  for (const tool of tools) {
    if (!findExecutable(tool.command)) {
      throw refusal(
        `${tool.command} is missing: install the ${tool.pkg} package (apt-get install ${tool.pkg}, or run scripts/lab-prereqs.sh).`,
      );
    }
  }
}

export function requireOverlayfs(): void {
  let filesystems: string;
  try {
    filesystems = readFileSync('/proc/filesystems', 'utf8');
  } catch {
    // unknown: let mount report it
    return;
  }
  if (!/\boverlay\b/.test(filesystems))
    throw refusal("this kernel has no overlayfs, which the lab needs for its hosts' disks.");
}
