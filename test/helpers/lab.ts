/**
 * For lab test files: bring the shared lab up (warm: seconds) and say why when this machine cannot run it.
 * Lab files run one at a time (vitest.lab.config.ts), so they may change the hosts freely; each file leaves
 * the hosts as it found them where it can (drills restore what they broke).
 */
import { existsSync, readFileSync } from 'node:fs';
import { labUp, type LabUpResult } from '../../runner/lab/index.js';
import { findExecutable } from '../../runner/lab/preflight.js';

export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'the lab needs root (bridge, overlay mounts, containers)';
  for (const [tool, pkg] of [['systemd-nspawn', 'systemd-container'], ['debootstrap', 'debootstrap'], ['dpkg-scanpackages', 'dpkg-dev'], ['ssh', 'openssh-client']] as const) {
    if (!findExecutable(tool)) return `${tool} is missing (install ${pkg}, or run scripts/lab-prereqs.sh)`;
  }
  if (!existsSync('/proc/filesystems') || !readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'the kernel has no overlayfs';
  return undefined;
}

let upResult: Promise<LabUpResult> | undefined;

/** The default lab (lb1 lb2 web1 web2 mon1, plus pve1-3 with withPve), up and answering SSH. */
export function ensureLab(opts: { withPve?: boolean } = {}): Promise<LabUpResult> {
  if (!upResult || opts.withPve) upResult = labUp({ withPve: opts.withPve, log: (line) => console.log(`lab: ${line}`) });
  return upResult;
}
