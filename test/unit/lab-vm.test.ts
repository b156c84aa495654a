import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kindCell } from '../../runner/commands/lab.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { loadInventory } from '../../runner/core/inventory/load.js';
import { inventoryDocument, inventoryText } from '../../runner/features/lab/inventory.js';
import { labInterfaces } from '../../runner/features/lab/network.js';
import { withContrib } from '../../runner/features/lab/repo.js';
import { repoRoot } from '../helpers/cli.js';
import { checkCompatible, defaultTopology, DEFAULT_VM, loadTopologyFile } from '../../runner/features/lab/topology.js';
import {
  acceleratorsToTry,
  diskById,
  kvmKind,
  kvmSkippedNote,
  macAddress,
  qemuArgs,
  strayVmProcesses,
  tapName,
  vmImageKey,
  vmPaths,
} from '../../runner/features/lab/vm.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-lab-vm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
function topologyFile(text: string): string {
  const file = join(dir, `t${counter++}.yaml`);
  writeFileSync(file, text);
  return file;
}
function errorOf(fn: () => unknown): CairnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw err;
  }
  throw new Error('expected a CairnError');
}

describe('VM hosts in the topology', () => {
  it('--vm makes the pve nodes VMs (no container devices), the rest stay containers', () => {
    const t = defaultTopology(false, true);
    const pve = t.hosts.filter((h) => h.groups.includes('pve'));
    expect(pve.map((h) => h.name)).toEqual(['pve1', 'pve2', 'pve3']);
    for (const h of pve) expect(h).toMatchObject({ kind: 'vm', devices: [], vm: DEFAULT_VM });
    expect(t.hosts.filter((h) => h.kind === 'vm')).toHaveLength(3);
    expect(t.hosts.find((h) => h.name === 'lb1')!.kind).toBeUndefined();
  });

  it('reads kind, memory, cpus and disks from a topology file', () => {
    const t = loadTopologyFile(
      topologyFile('hosts:\n  - name: vm1\n    kind: vm\n    memory: 1024\n    disks: [4, 8]\n  - name: c1\n'),
    );
    expect(t.hosts[0]).toMatchObject({
      kind: 'vm',
      vm: { memoryMiB: 1024, cpus: DEFAULT_VM.cpus, disksGiB: [4, 8], zfs: false },
    });
    expect(t.hosts[1]!.kind).toBeUndefined();
  });

  it('gives a VM the OpenZFS image only when asked (zfs: true; the --vm pve nodes run the zfs role)', () => {
    const t = loadTopologyFile(
      topologyFile('hosts:\n  - name: vm1\n    kind: vm\n    zfs: true\n  - name: vm2\n    kind: vm\n'),
    );
    expect(t.hosts.map((h) => h.vm?.zfs)).toEqual([true, false]);
    expect(
      defaultTopology(false, true)
        .hosts.filter((h) => h.vm?.zfs)
        .map((h) => h.name),
    ).toEqual(['pve1', 'pve2', 'pve3']);
    const file = topologyFile('hosts:\n  - name: c1\n    zfs: true\n');
    const err = errorOf(() => loadTopologyFile(file));
    expect(err.location).toMatchObject({ file, line: 3 });
    expect(err.message).toContain('"zfs" is for VMs');
  });

  it('caches the VM image with OpenZFS under its own key', () => {
    const image = { hash: 'abc' };
    const repo = { dir: '/var/lib/cairn/lab/repo-x' };
    expect(vmImageKey(image, repo, false)).not.toBe(vmImageKey(image, repo, true));
    expect(vmImageKey(image, repo, false)).toBe(vmImageKey(image, repo, false));
    expect(vmImageKey(image, { dir: '/other' }, false)).not.toBe(vmImageKey(image, repo, false));
  });

  it('refuses VM settings on a container and devices on a VM, at file:line:col', () => {
    const file = topologyFile('hosts:\n  - name: c1\n    disks: [4]\n');
    const err = errorOf(() => loadTopologyFile(file));
    expect(err.location).toMatchObject({ file, line: 3 });
    expect(err.message).toContain('"disks" is for VMs');
    const file2 = topologyFile('hosts:\n  - name: v1\n    kind: vm\n    devices: [kvm]\n');
    expect(errorOf(() => loadTopologyFile(file2)).message).toContain('is a VM');
    const file3 = topologyFile('hosts:\n  - name: v1\n    kind: vm\n    memory: 64\n');
    expect(errorOf(() => loadTopologyFile(file3)).location).toMatchObject({ file: file3, line: 4 });
  });

  it('a running container cannot become a VM in place', () => {
    const running = defaultTopology(true);
    expect(() => checkCompatible(running, defaultTopology(false, true))).toThrow(
      /host pve1 is up as 10\.77\.0\.41.*describes it as a VM 10\.77\.0\.41/,
    );
  });

  it("the inventory names a VM's data disks by stable path", () => {
    const doc = inventoryDocument({
      topology: defaultTopology(false, true),
      paths: { privateKey: '/k', knownHosts: '/kh' },
    }) as {
      all: { hosts: Record<string, Record<string, unknown>> };
    };
    expect(doc.all.hosts.pve2).toMatchObject({ lab_kind: 'vm' });
    expect((doc.all.hosts.pve2!.lab_data_disks as string[])[0]).toBe('/dev/disk/by-id/virtio-pve2-d1');
    expect(doc.all.hosts.lb1!.lab_kind).toBeUndefined();
  });

  it("puts every VM in lab_vm, whose group_vars win over its other groups' (native OpenZFS on its disks)", () => {
    // The generated inventory beside the lab's real group_vars for pve and lab_vm: pve2 a VM, pve1 a container.
    const topology = defaultTopology(true);
    topology.hosts = topology.hosts.map((h) =>
      h.name === 'pve2' ? { ...h, devices: [], kind: 'vm' as const, vm: { ...DEFAULT_VM, disksGiB: [1, 1, 1, 1] } } : h,
    );
    const inv = join(dir, 'inv');
    mkdirSync(join(inv, 'group_vars'), { recursive: true });
    writeFileSync(join(inv, 'hosts.yaml'), inventoryText({ topology, paths: { privateKey: '/k', knownHosts: '/kh' } }));
    for (const group of ['pve', 'lab_vm'])
      cpSync(join(repoRoot, 'inventories', 'lab', 'group_vars', group), join(inv, 'group_vars', group), {
        recursive: true,
      });
    const loaded = loadInventory(inv);
    expect(loaded.select('lab_vm')).toEqual(['pve2']);
    const vm = loaded.hostVars('pve2');
    expect(vm.zfs_backend).toBe('native');
    expect(vm.zfs_debian_contrib_source).toBe(false);
    expect(vm.zfs_pools).toEqual([
      {
        name: 'tank',
        vdev_type: 'raidz',
        ashift: 12,
        devices: [1, 2, 3].map((n) => `/dev/disk/by-id/virtio-{{inventory_hostname}}-d${n}`),
      },
    ]);
    expect(vm.lab_data_disks).toHaveLength(4);
    expect(loaded.hostVars('pve1').zfs_backend).toBe('fuse');
    expect(
      errorOf(() => loadTopologyFile(topologyFile('hosts:\n  - name: v1\n    kind: vm\n    groups: [lab_vm]\n')))
        .message,
    ).toContain('given to every VM by the lab');
  });
});

describe('qemu command line', () => {
  const t = defaultTopology(false, true);
  const pve1 = t.hosts.find((h) => h.name === 'pve1')!;
  const ctx = {
    image: {
      rootImage: '/img/root.raw',
      repoImage: '/img/repo.ext4',
      kernel: '/img/vmlinuz',
      initrd: '/img/initrd.img',
    },
    topology: t,
    publicKey: 'ssh-ed25519 AAAA lab',
  };
  const args = qemuArgs(pve1, ctx, vmPaths('pve1'), 'tcg', '0123456789abcdef0123456789abcdef');

  it('boots the image kernel directly with the asked accelerator, memory, vCPUs and a QMP socket', () => {
    expect(args.slice(args.indexOf('-machine'), args.indexOf('-machine') + 2)).toEqual(['-machine', 'pc,accel=tcg']);
    expect(args[args.indexOf('-m') + 1]).toBe(String(DEFAULT_VM.memoryMiB));
    expect(args[args.indexOf('-kernel') + 1]).toBe('/img/vmlinuz');
    expect(args[args.indexOf('-append') + 1]).toContain('console=ttyS0');
    expect(args[args.indexOf('-qmp') + 1]).toBe('unix:/var/lib/cairn/lab/hosts/pve1/qmp.sock,server=on,wait=off');
  });

  it('attaches one data disk per topology entry, each with an id QMP can pull and a serial for by-id', () => {
    const devices = args.filter((_, i) => args[i - 1] === '-device' && args[i]!.includes('serial=pve1-d'));
    expect(devices).toHaveLength(DEFAULT_VM.disksGiB.length);
    expect(devices[0]).toBe('virtio-blk-pci,drive=drive-d1,id=d1,serial=pve1-d1');
    expect(diskById('pve1', 1)).toBe('/dev/disk/by-id/virtio-pve1-d1');
  });

  it('joins the lab bridge through its own tap with a MAC from its address', () => {
    expect(args[args.indexOf('-netdev') + 1]).toBe('tap,id=net0,ifname=vt-pve1,script=no,downscript=no');
    expect(macAddress('10.77.0.41')).toBe('52:54:0a:4d:00:29');
    expect(tapName('abcdefghijkl').length).toBeLessThanOrEqual(15);
  });
});

describe('accelerator choice', () => {
  it('tries KVM first when /dev/kvm exists, then TCG; TCG alone without it; CAIRN_LAB_ACCEL forces one', () => {
    expect(acceleratorsToTry({}, 'hardware')).toEqual(['kvm', 'tcg']);
    expect(acceleratorsToTry({}, 'none')).toEqual(['tcg']);
    expect(acceleratorsToTry({ CAIRN_LAB_ACCEL: 'tcg' }, 'hardware')).toEqual(['tcg']);
    expect(acceleratorsToTry({ CAIRN_LAB_ACCEL: 'bogus' }, 'none')).toEqual(['tcg']);
  });

  it('does not try a PVM /dev/kvm (kvm_pvm boots only PVM guest kernels) unless forced, and says why', () => {
    const paths = (present: string[]) => (p: string) => present.includes(p);
    expect(kvmKind(paths([]))).toBe('none');
    expect(kvmKind(paths(['/dev/kvm']))).toBe('hardware');
    expect(kvmKind(paths(['/dev/kvm', '/sys/module/kvm_pvm']))).toBe('pvm');
    expect(acceleratorsToTry({}, 'pvm')).toEqual(['tcg']);
    expect(acceleratorsToTry({ CAIRN_LAB_ACCEL: 'kvm' }, 'pvm')).toEqual(['kvm']);
    expect(kvmSkippedNote(['tcg'], 'pvm')).toMatch(/PVM \(module kvm_pvm\)/);
    expect(kvmSkippedNote(['kvm'], 'pvm')).toBeUndefined();
    expect(kvmSkippedNote(['tcg'], 'none')).toBeUndefined();
  });
});

describe('what down cleans after a crash', () => {
  it("finds the lab's qemu processes by their command line, and no other qemu", () => {
    const processes = [
      { pid: 10, ppid: 1, comm: 'qemu-system-x86', startTime: 1, state: 'S' },
      { pid: 11, ppid: 1, comm: 'qemu-system-x86', startTime: 1, state: 'S' },
      { pid: 12, ppid: 1, comm: 'bash', startTime: 1, state: 'S' },
    ];
    const cmdlines: Record<number, string[]> = {
      10: ['qemu-system-x86_64', '-name', 'cairn-lab-pve1', '-drive', 'file=/var/lib/cairn/lab/hosts/pve1/root.qcow2'],
      11: ['qemu-system-x86_64', '-name', 'someone-else', '-drive', 'file=/tmp/x.qcow2'],
      12: ['bash', '-name', 'cairn-lab-x', '/var/lib/cairn/lab/hosts/'],
    };
    expect(
      strayVmProcesses('/var/lib/cairn/lab/hosts', (pid) => cmdlines[pid] ?? [], processes).map((p) => p.pid),
    ).toEqual([10]);
  });

  it('removes taps of the lab even when they were never attached to the bridge', () => {
    const links = [
      { ifname: 'cairnbr0', linkinfo: { info_kind: 'bridge' } },
      { ifname: 'vt-pve1', master: 'cairnbr0', linkinfo: { info_kind: 'tun' } },
      { ifname: 'vt-pve2', linkinfo: { info_kind: 'tun' } },
      { ifname: 'vt-other', linkinfo: { info_kind: 'tun' } },
    ];
    expect(labInterfaces(links, 'cairnbr0', ['pve1', 'pve2'], ['vt-pve1', 'vt-pve2'])).toEqual([
      'vt-pve1',
      'vt-pve2',
      'cairnbr0',
    ]);
  });
});

describe('status and repository', () => {
  it('shows kind, accelerator, memory and disks', () => {
    const base = { name: 'pve1', address: '10.77.0.41', groups: ['pve'], state: 'running' as const };
    expect(kindCell({ ...base, kind: 'vm', accelerator: 'tcg', memoryMiB: 2048, disksGiB: [16, 16] })).toBe(
      'vm tcg 2048M 2x16G',
    );
    expect(kindCell({ ...base, kind: 'vm', memoryMiB: 1024, disksGiB: [4, 8] })).toBe('vm - 1024M 4G+8G');
    expect(kindCell({ ...base, kind: 'container' })).toBe('container');
  });

  it('resolves against contrib as well as main (zfs), leaving other components alone', () => {
    const text =
      'Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nComponents: main contrib non-free\n';
    expect(withContrib(text)).toBe(
      'Types: deb\nURIs: http://m/debian\nSuites: bookworm\nComponents: main contrib\n\nTypes: deb\nComponents: main contrib non-free\n',
    );
  });
});
