/**
 * The lab's state file: what `up` made and which processes it started, so `status`, `stop`, `kill` and
 * `down` act on exactly those. Written atomically after every change; `down` also cleans what exists when
 * this file is missing or behind.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CairnError } from '../../core/util/errors.js';
import { parseSubnet24 } from './ipv4.js';
import { STATE_FILE } from './paths.js';
import type { ProcessRef } from './proc.js';
import type { LabDevice, LabHostSpec, LabTopology } from './topology.js';

export interface HostState extends LabHostSpec {
  /** The supervisor loop (sh) that runs systemd-nspawn again after a reboot; absent when stopped. */
  supervisor?: ProcessRef;
  createdAt: string;
  startedAt?: string;
  /** VMs: the accelerator qemu runs the current boot with (kvm, or tcg after KVM failed or is absent). */
  accelerator?: 'kvm' | 'tcg';
}

export interface VmImageState {
  key: string;
  rootImage: string;
  repoImage: string;
  kernel: string;
  initrd: string;
  kernelVersion: string;
}

export interface LabState {
  version: 1;
  bridge: string;
  subnet: string;
  bridgeAddress: string;
  vip: string;
  /** The management bridge (absent in a lab brought up before it existed: every host is then on `bridge` only). */
  management?: { bridge: string; subnet: string; bridgeAddress: string };
  imageHash: string;
  /** The overlay's lower layer for every host. */
  imageRoot: string;
  repoDir: string;
  /** The base VM image (no OpenZFS) the lab's VMs boot; absent while no such VM was wanted. */
  vmImage?: VmImageState;
  /** The VM image with OpenZFS, booted by VMs marked `zfs: true`; absent while none was wanted. */
  vmZfsImage?: VmImageState;
  /** inventories/lab/generated of the checkout that brought the lab up. */
  generatedDir: string;
  hosts: HostState[];
}

export function readState(file = STATE_FILE): LabState | undefined {
  if (!existsSync(file)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CairnError(
      `the lab state file ${file} is unreadable (${err instanceof Error ? err.message : String(err)}); \`cairn lab down\` cleans up from what exists`,
      { kind: 'runtime' },
    );
  }
  const state = parsed as Partial<LabState>;
  if (state.version !== 1 || !Array.isArray(state.hosts) || typeof state.bridge !== 'string') {
    throw new CairnError(
      `the lab state file ${file} is not one this version of cairn wrote; \`cairn lab down\` cleans up from what exists`,
      { kind: 'runtime' },
    );
  }
  return state as LabState;
}

/** Like readState, but a damaged file counts as absent (for `down`, which cleans from what exists anyway). */
export function readStateLenient(file = STATE_FILE): LabState | undefined {
  try {
    return readState(file);
  } catch {
    return undefined;
  }
}

export function writeState(state: LabState, file = STATE_FILE): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
}

export function removeState(file = STATE_FILE): void {
  rmSync(file, { force: true });
}

export function topologyOfState(state: LabState): LabTopology {
  return {
    source: 'the running lab',
    bridge: state.bridge,
    subnet: parseSubnet24(state.subnet) ?? { base: 0, text: state.subnet },
    bridgeAddress: state.bridgeAddress,
    vip: state.vip,
    ...(state.management
      ? {
          management: {
            bridge: state.management.bridge,
            subnet: parseSubnet24(state.management.subnet) ?? { base: 0, text: state.management.subnet },
            bridgeAddress: state.management.bridgeAddress,
          },
        }
      : {}),
    hosts: state.hosts.map((h) => ({
      name: h.name,
      address: h.address,
      groups: [...h.groups],
      devices: [...h.devices] as LabDevice[],
      ...(h.kind ? { kind: h.kind } : {}),
      ...(h.vm ? { vm: { ...h.vm, disksGiB: [...h.vm.disksGiB] } } : {}),
    })),
  };
}
