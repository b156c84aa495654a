/**
 * Ceph on the VM tier (issue 11): the ceph role's production path, which the container tier cannot run (no
 * device-mapper, so no LVM): OSDs made by `ceph-volume lvm create` on whole virtio disks by
 * /dev/disk/by-id, from the inventory's `ceph_osd_devices` (inventories/lab/group_vars/lab_vm/ceph.yaml: each
 * VM's d4 and d5). Three VMs in group pve run playbooks/ceph.yaml as production nodes would: 3 monitors and
 * managers, 2 OSDs per node (6 up and in, document 003), pool rbd size 3 / min_size 2 over hosts, HEALTH_OK.
 * Then: a second run changes nothing; a disk added to one node's inventory is planned exactly by --check (that
 * one OSD) and made by the run; a disk holding a file system, added to another node, is refused naming host
 * and device and is left as it was; verify is green, every device's OSD up and in.
 *
 * The VMs are vmceph1-3 (.61-.63): they run beside the container lab, and no name is a near miss of the lab
 * inventory's host_vars/pve1. They are group pve's only members for this file (the default lab has no pve
 * containers), and the file ends with `lab down` (as 70-vm and 72-vm-zfs do). CAIRN_CEPH_VMS=1 runs one VM
 * (failure domain osd, three OSDs) where three do not fit.
 *
 * Gated like 70-vm.test.ts (CAIRN_LAB_VM=1): three VMs under TCG on this machine's two cores.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { labDown, labUp } from '../../runner/features/lab/index.js';
import { defaultTopology, type LabTopology } from '../../runner/features/lab/topology.js';
import { changedKeys, repoRoot, taskResults } from '../helpers/cli.js';
import { failedVerifies, labJson, labUnavailable, onHost, verifyResults, type LabJsonOptions } from '../helpers/lab.js';

const COUNT = process.env.CAIRN_CEPH_VMS === '1' ? 1 : 3;
const VMS = ['vmceph1', 'vmceph2', 'vmceph3'].slice(0, COUNT);
const ADDRESS = (i: number) => `10.77.0.${61 + i}`;
const LIMIT = VMS.join(',');
const PLAYBOOK = 'playbooks/ceph.yaml';
/** Data disks in GiB: d1-d3 (the zfs role's on a site VM; d3 gets a file system here), d4-d5 OSDs, d6 added. */
const DISKS_GIB = [1, 1, 1, 8, 8, 8];
const MEMORY_MIB = Number(process.env.CAIRN_CEPH_VM_MEMORY ?? 3072);
const byId = (vm: string, n: number) => `/dev/disk/by-id/virtio-${vm}-d${n}`;
const OSD_TASK = "OSDs on this host's devices (ceph-volume lvm create, one per whole device)";
const CLUSTER_CHECK = 'cluster health, quorum, OSDs, PGs and pools';
const DEVICES_CHECK = 'every device of this node holds its OSD, up and in (ceph-volume)';
/** Plays on VMs under TCG on a shared 2-core machine are slow: generous per-run limits. */
const RUN: LabJsonOptions = { timeoutMs: 2_400_000, lockWaitMs: 600_000, ms: 'total' };
const TEST_TIMEOUT_MS = 3_000_000;
const SSH = { timeoutMs: 300_000 };
const HOST_VARS = join(repoRoot, 'inventories', 'lab', 'host_vars');
/** host_vars this file writes (the inventory changes under test), removed in afterAll. */
const written: string[] = [];
const measured: string[] = [];
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The devices each VM starts with: d4 and d5 (group_vars/lab_vm), or d3-d5 with one VM (three copies need 3). */
const baseDevices = (vm: string) => (COUNT === 1 ? [3, 4, 5] : [4, 5]).map((n) => byId(vm, n));

function vmTopology(): LabTopology {
  return {
    ...defaultTopology(),
    source: '74-vm-ceph.test.ts',
    hosts: VMS.map((name, i) => ({
      name,
      address: ADDRESS(i),
      groups: ['pve'],
      devices: [],
      kind: 'vm' as const,
      // No OpenZFS in the image: ceph needs none, and the base VM image costs ~100 s where the OpenZFS one costs ~560 s.
      vm: { memoryMiB: MEMORY_MIB, cpus: 1, disksGiB: [...DISKS_GIB], zfs: false },
    })),
  };
}

/**
 * One host's devices in the inventory (the change under test): host_vars/VM/ceph.yaml, rewritten whole each
 * time (with one VM it also keeps the failure domain osd). undefined removes it: the group's values again.
 */
function setDevices(vm: string, devices: string[] | undefined): void {
  const dir = join(HOST_VARS, vm);
  if (devices === undefined) {
    rmSync(join(dir, 'ceph.yaml'), { force: true });
    return;
  }
  mkdirSync(dir, { recursive: true });
  if (!written.includes(dir)) written.push(dir);
  const lines = ['ceph_osd_devices:', ...devices.map((d) => `  - ${d}`)];
  if (COUNT === 1) lines.push('ceph_crush_failure_domain: osd');
  writeFileSync(join(dir, 'ceph.yaml'), `${lines.join('\n')}\n`);
}

function clusterVerdict(events: RunEvent[]): Record<string, unknown> {
  const result = verifyResults(events).find((v) => v.check === CLUSTER_CHECK);
  if (!result?.data) throw new Error('no cluster verification in the run');
  return result.data;
}

const vmTierOff =
  process.env.CAIRN_LAB_VM === '1'
    ? undefined
    : 'the VM tier boots its VMs under TCG on this machine (minutes each); set CAIRN_LAB_VM=1 to run it';
const unavailable = labUnavailable() ?? vmTierOff;

describe.skipIf(unavailable)(
  `Ceph with ceph-volume OSDs on lab VMs${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    beforeAll(async () => {
      const started = Date.now();
      const up = await labUp({ topology: vmTopology(), log: (line) => console.log(`lab: ${line}`) });
      const vms = up.hosts.filter((h) => VMS.includes(h.name));
      measured.push(
        `lab up (${VMS.length} VMs, ${MEMORY_MIB} MiB, 1 vCPU each): ${up.timings.vmImageBuilt ? `VM image built in ${seconds(up.timings.vmImageMs)}; ` : 'VM image cached; '}${vms.map((v) => `${v.name} ${v.accelerator} boot ${v.bootMs !== undefined ? seconds(v.bootMs) : v.note}`).join(', ')}; call ${seconds(Date.now() - started)}`,
      );
      // One node: three OSDs, copies spread over OSDs (the pool keeps size 3 / min_size 2).
      if (COUNT === 1) setDevices(VMS[0]!, baseDevices(VMS[0]!));
      // The play must find exactly these VMs in group pve (ceph_mon_hosts is groups.pve): no pve container up.
      const generated = parse(readFileSync(join(repoRoot, 'inventories', 'lab', 'hosts.yaml'), 'utf8')) as {
        all: { children: Record<string, { hosts?: Record<string, unknown> }> };
      };
      expect(Object.keys(generated.all.children.pve?.hosts ?? {}), 'group pve holds only these VMs').toEqual(VMS);
    }, 3_600_000);

    afterAll(async () => {
      for (const dir of written.splice(0)) rmSync(dir, { recursive: true, force: true });
      if (measured.length) console.log(`Ceph with ceph-volume OSDs on lab VMs, measured:\n  ${measured.join('\n  ')}`);
      // vmceph* are in group pve: no later file may find them there.
      await labDown({ log: () => {} });
    }, 300_000);

    it(
      `converges from nothing: ${VMS.length} monitors and managers, ${VMS.length * baseDevices('x').length} OSDs by ceph-volume, HEALTH_OK`,
      async () => {
        const { res, events, ms } = await labJson(['play', PLAYBOOK, '-l', LIMIT], RUN);
        expect(
          taskResults(events)
            .filter((e) => e.status === 'failed')
            .map((e) => `${e.host} ${e.task.name}: ${e.msg}`),
          res.stderr + res.stdout.slice(-3000),
        ).toEqual([]);
        expect(failedVerifies(events)).toEqual([]);
        expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(0);
        const changed = changedKeys(events);
        for (const vm of VMS) {
          expect(changed).toContain(`${vm} | ceph : ${OSD_TASK}`);
          const made = taskResults(events).find((e) => e.host === vm && e.task.name === OSD_TASK);
          expect(made?.result?.created).toEqual(baseDevices(vm));
        }
        const verdict = clusterVerdict(events);
        const osdCount = VMS.length * baseDevices('x').length;
        expect(verdict.health).toBe('HEALTH_OK');
        expect(verdict.quorum).toEqual(VMS);
        expect(verdict.osds).toMatchObject({ total: osdCount, up: osdCount, in: osdCount });
        expect(verdict.mgr_available).toBe(true);
        expect(verdict.mgr_standbys).toBe(VMS.length - 1);
        for (const pool of verdict.pools as Array<Record<string, unknown>>)
          expect([pool.name, pool.size, pool.min_size, pool.failure_domain]).toEqual([
            pool.name,
            3,
            2,
            COUNT === 1 ? 'osd' : 'host',
          ]);
        const pgs = verdict.pgs as { total: number; active_clean: number };
        expect(pgs.active_clean).toBe(pgs.total);
        measured.push(`converge: ${seconds(ms)}, ${changed.length} changes, ${osdCount} OSDs up+in, ${pgs.total} PGs`);

        // What ceph-volume made, as the host shows it: an LV per disk, the activation unit enabled for boots.
        const first = VMS[0]!;
        const host = await onHost(
          first,
          [
            `for d in ${baseDevices(first).join(' ')}; do lsblk -nr -o TYPE "$d" | paste -sd, -; done`,
            // ceph-volume enables one activation unit per OSD for every boot (multi-user.target wants it).
            'ls /etc/systemd/system/multi-user.target.wants | grep -c "^ceph-volume@lvm-"',
            'ceph-volume lvm list --format json',
          ].join('; '),
          SSH,
        );
        const lines = host.split('\n');
        expect(lines.slice(0, baseDevices(first).length)).toEqual(baseDevices(first).map(() => 'disk,lvm'));
        expect(lines[baseDevices(first).length]).toBe(String(baseDevices(first).length));
        // The listing as this Ceph prints it (for test/fixtures/ceph: the hand-built shape's real counterpart).
        console.log(
          `ceph-volume lvm list --format json on ${first}:\n${lines.slice(baseDevices(first).length + 1).join('\n')}`,
        );
      },
      TEST_TIMEOUT_MS,
    );

    it(
      'a second run changes nothing',
      async () => {
        const { res, events, ms } = await labJson(['play', PLAYBOOK, '-l', LIMIT], RUN);
        expect(res.code, res.stderr + res.stdout.slice(-2000)).toBe(0);
        expect(changedKeys(events)).toEqual([]);
        measured.push(`second run: ${seconds(ms)}, 0 changed`);
      },
      TEST_TIMEOUT_MS,
    );

    it(
      'a disk added to one node: --check plans exactly its OSD, the run makes exactly it, verify is green',
      async () => {
        const vm = VMS[0]!;
        const added = byId(vm, 6);
        setDevices(vm, [...baseDevices(vm), added]);
        const check = await labJson(['play', PLAYBOOK, '-l', LIMIT, '--check'], RUN);
        expect(check.res.code, check.res.stderr + check.res.stdout.slice(-2000)).toBe(0);
        const keys = changedKeys(check.events);
        expect(keys).toEqual([`${vm} | ceph : ${OSD_TASK}`]);
        const predicted = taskResults(check.events).find((e) => e.host === vm && e.task.name === OSD_TASK);
        expect(predicted?.actions).toEqual([`create an OSD on ${added} (ceph-volume lvm create --bluestore)`]);
        // --check made nothing.
        expect(await onHost(vm, `lsblk -nr -o TYPE ${added} | paste -sd, -`, SSH)).toBe('disk');

        const run = await labJson(['play', PLAYBOOK, '-l', LIMIT], RUN);
        expect(run.res.code, run.res.stderr + run.res.stdout.slice(-3000)).toBe(0);
        expect(changedKeys(run.events)).toEqual(keys);
        const made = taskResults(run.events).find((e) => e.host === vm && e.task.name === OSD_TASK);
        expect(made?.result?.created).toEqual([added]);
        const osdCount = VMS.length * baseDevices('x').length + 1;
        expect(clusterVerdict(run.events).osds).toMatchObject({ total: osdCount, up: osdCount, in: osdCount });
        expect(failedVerifies(run.events)).toEqual([]);
        const again = await labJson(['play', PLAYBOOK, '-l', LIMIT, '--check'], RUN);
        expect(changedKeys(again.events)).toEqual([]);
        measured.push(
          `added disk: --check ${seconds(check.ms)} (1 OSD planned), run ${seconds(run.ms)} (1 change, ${osdCount} OSDs up+in), --check after ${seconds(again.ms)} (0)`,
        );
      },
      TEST_TIMEOUT_MS,
    );

    it(
      'a disk that holds a file system is refused naming host and device, and keeps its file system',
      async () => {
        const vm = VMS[VMS.length - 1]!;
        // With one VM, d3 is an OSD already: the file system goes on d2.
        const disk = byId(vm, COUNT === 1 ? 2 : 3);
        await onHost(vm, `mkfs.ext4 -q -F -L cairn-keep ${disk}`, SSH);
        const before = [...baseDevices(vm), ...(vm === VMS[0] ? [byId(vm, 6)] : [])];
        setDevices(vm, [...before, disk]);
        try {
          const check = await labJson(['play', PLAYBOOK, '-l', LIMIT, '--check'], RUN);
          const failed = taskResults(check.events).filter((e) => e.status === 'failed');
          expect(failed.map((e) => [e.host, e.task.name])).toEqual([[vm, OSD_TASK]]);
          expect(String(failed[0]!.msg)).toMatch(
            new RegExp(
              `^${vm}: refusing to make an OSD on a device of ceph_osd_devices: ${disk.replace(/[/.-]/g, '\\$&')} \\(/dev/vd[a-z]\\): it holds a ext4 signature`,
            ),
          );
          const run = await labJson(['play', PLAYBOOK, '-l', LIMIT], RUN);
          expect(run.res.code).not.toBe(0);
          expect(
            taskResults(run.events)
              .filter((e) => e.status === 'failed')
              .map((e) => [e.host, e.task.name]),
          ).toEqual([[vm, OSD_TASK]]);
          expect(await onHost(vm, `blkid -p -o value -s LABEL ${disk}`, SSH)).toBe('cairn-keep');
          measured.push(
            `foreign disk refused under --check (${seconds(check.ms)}) and by the run (${seconds(run.ms)}), untouched`,
          );
        } finally {
          setDevices(vm, vm === VMS[0] || COUNT === 1 ? before : undefined);
        }
      },
      TEST_TIMEOUT_MS,
    );

    it(
      "verify is green: every device's OSD up and in, the cluster HEALTH_OK with size 3 / min_size 2",
      async () => {
        const { res, events, ms } = await labJson(['verify', PLAYBOOK, '-l', LIMIT], RUN);
        expect(failedVerifies(events)).toEqual([]);
        expect(res.code).toBe(0);
        for (const vm of VMS) {
          const devices = verifyResults(events).find((v) => v.host === vm && v.check === DEVICES_CHECK);
          expect(devices?.passed, vm).toBe(true);
          expect((devices?.data?.osds as unknown[]).length).toBe(baseDevices(vm).length + (vm === VMS[0] ? 1 : 0));
        }
        const memory = await Promise.all(
          VMS.map((vm) => onHost(vm, 'free -m | awk \'/^Mem:/ {print $3 "/" $2}\'', SSH).then((m) => `${vm} ${m} MiB`)),
        );
        measured.push(`verify: ${seconds(ms)}; guest memory used/total: ${memory.join(', ')}`);
      },
      TEST_TIMEOUT_MS,
    );
  },
);
