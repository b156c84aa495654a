/**
 * Where the lab keeps things. Everything the lab makes on this machine lives under LAB_DIR (images, the
 * package repository, per-host overlays, the state file) except the bridge and its veth interfaces, and the
 * generated inventory inside the repository's inventories/lab/generated/.
 */
import { join } from 'node:path';
import { packageRoot } from '../../core/util/paths.js';

export const LAB_DIR = '/var/lib/cairn/lab';
export const HOSTS_DIR = join(LAB_DIR, 'hosts');
export const STATE_FILE = join(LAB_DIR, 'state.json');
export const LOCK_FILE = join(LAB_DIR, 'lock');
export const LOG_DIR = join(LAB_DIR, 'logs');

/** Inside every container: the read-only bind of the package repository. */
export const REPO_MOUNT_POINT = '/srv/repo';

export interface HostPaths {
  dir: string;
  upper: string;
  work: string;
  /** The overlay's merged tree: the container's root. */
  root: string;
  /** nspawn's console and the supervisor's messages. */
  log: string;
}

export function hostPaths(name: string): HostPaths {
  const dir = join(HOSTS_DIR, name);
  return {
    dir,
    upper: join(dir, 'upper'),
    work: join(dir, 'work'),
    root: join(dir, 'root'),
    log: join(dir, 'console.log'),
  };
}

/**
 * inventories/lab/generated/ of this checkout: known_hosts and the lab's SSH key pair. The inventory itself
 * is written one level up (inventories/lab/hosts.yaml, git-ignored) so that the committed
 * inventories/lab/group_vars/ and host_vars/ sit beside it, as Ansible expects.
 */
export function defaultGeneratedDir(): string {
  return join(packageRoot(), 'inventories', 'lab', 'generated');
}

export interface GeneratedPaths {
  dir: string;
  inventory: string;
  knownHosts: string;
  privateKey: string;
  publicKey: string;
}

export function generatedPaths(dir = defaultGeneratedDir()): GeneratedPaths {
  return {
    dir,
    inventory: join(dir, '..', 'hosts.yaml'),
    knownHosts: join(dir, 'known_hosts'),
    privateKey: join(dir, 'id_ed25519'),
    publicKey: join(dir, 'id_ed25519.pub'),
  };
}
