/**
 * The VM tier (issue 11): a lab host that boots its own kernel under qemu beside the containers, with data
 * disks, a serial console and a QMP socket. What only a real kernel can show is proven on it:
 * - the VM comes up on the lab bridge (KVM tried where /dev/kvm is hardware virtualization, TCG otherwise,
 *   the accelerator reported), its host key checked, its disks at stable paths; status/stop/start/kill/unplug
 *   work on it;
 * - base-tuning applies every kernel sysctl of the profile live and reads it back (nothing "read-only"),
 *   loads tcp_bbr and keeps it across boots; a second run changes nothing; verify is green;
 * - an md RAID1 over two of its disks (made here: arrays come from the installer on real servers) is judged
 *   by raid_health on the live /proc/mdstat and `mdadm --detail`;
 * - disk failure: a data disk pulled out through QMP (device_del), the array degraded and verify failing
 *   naming it; a blank disk plugged in, `mdadm --add`, the resync observed until verify is green again;
 * - reboot: after a reboot every postcondition of base-tuning holds without running a play;
 * - `lab down` after a `kill -9` of cairn in the middle of `lab up` leaves no qemu, tap or disk file.
 *
 * The VM is named vmhost1 (not pve1) so it can run beside the container pve nodes other files use; not vm1:
 * that is within two edits of the lab inventory's committed host_vars/pve1, which cairn then refuses as a
 * probable typo ("host_vars folder for host "pve1" ...; did you mean "vm1"?"), failing every play.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  labDown,
  labKill,
  labStart,
  labStatus,
  labStop,
  labUnplug,
  labPlug,
  labUp,
} from '../../runner/features/lab/index.js';
import { HOSTS_DIR } from '../../runner/features/lab/paths.js';
import { allProcesses, readCmdline } from '../../runner/features/lab/proc.js';
import { defaultTopology, type LabTopology } from '../../runner/features/lab/topology.js';
import { kvmKind, plugBlankDisk, strayVmProcesses, unplugDisk, vmPaths } from '../../runner/features/lab/vm.js';
import { changedKeys, repoRoot, taskResults } from '../helpers/cli.js';
import {
  ensureLab,
  labJson,
  labUnavailable,
  onHost,
  runOnHost,
  sleep,
  verifyResults,
  type LabJsonOptions,
} from '../helpers/lab.js';

const VM = 'vmhost1';
const VM_ADDRESS = '10.77.0.51';
const PLAYBOOK = 'playbooks/base.yaml';
const SYSCTL_TASK = 'sysctl profile in the file and live';
const SYSCTL_CHECK = 'sysctl profile holds (live; in the file only for kernel-global keys in a container)';
const RAID_CHECK = 'md RAID arrays are healthy';
const DISK_GIB = 1;
/** Plays on a VM under TCG on a shared 2-core machine are slow: generous per-run limits. */
const RUN: LabJsonOptions = { timeoutMs: 900_000, lockWaitMs: 600_000, ms: 'total' };
const TEST_TIMEOUT_MS = 1_200_000;

function vmTopology(): LabTopology {
  const base = defaultTopology();
  return {
    ...base,
    source: '70-vm.test.ts',
    hosts: [
      {
        name: VM,
        address: VM_ADDRESS,
        groups: ['vmlab'],
        devices: [],
        kind: 'vm',
        vm: { memoryMiB: 1536, cpus: 1, disksGiB: [DISK_GIB, DISK_GIB, DISK_GIB] },
      },
    ],
  };
}

const byId = (n: number) => `/dev/disk/by-id/virtio-${VM}-d${n}`;
const measured: string[] = [];
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function verifyVm(): Promise<{
  code: number;
  failed: string[];
  passed: string[];
  /** The md arrays raid_health judged (names from its data). */
  raidArrays: string[];
  ms: number;
}> {
  const { res, events, ms } = await labJson(['verify', PLAYBOOK, '-l', VM], RUN);
  const results = verifyResults(events).filter((v) => v.host === VM);
  if (results.length === 0)
    throw new Error(`no verification results for ${VM} (exit ${res.code}): ${res.stderr}${res.stdout.slice(-2000)}`);
  // A failed check carries its message in msg; a passed one only in its module's data (raid_health's msg).
  const text = (v: (typeof results)[number]) => `${v.check}: ${v.msg ?? String(v.data?.msg ?? v.data?.stdout ?? '')}`;
  return {
    code: res.code,
    failed: results.filter((v) => !v.passed).map(text),
    passed: results.filter((v) => v.passed).map(text),
    raidArrays: ((results.find((v) => v.check === RAID_CHECK)?.data?.arrays ?? []) as Array<{ name: string }>).map(
      (a) => a.name,
    ),
    ms,
  };
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (!(await probe())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${seconds(timeoutMs)}`);
    await sleep(2000);
  }
  return Date.now() - started;
}

/**
 * Run to the end on 2026-12-07 (22:27-22:34 UTC, load average 2-5, every VM under TCG: this machine's
 * /dev/kvm is PVM): 393 s for the six tests, of which three VM boots to sshd at 38-41 s each and a reboot.
 * With a cold lab add the images (VM image with OpenZFS: 657 s). The suite's 45-minute budget is nearly used
 * without it, so it runs when asked for (docs/lab.md).
 */
const vmTierOff =
  process.env.CAIRN_LAB_VM === '1'
    ? undefined
    : 'the VM tier (about 7 min under TCG here, more with a cold VM image) is not in the 45-minute suite; set CAIRN_LAB_VM=1 to run it';
const unavailable = labUnavailable() ?? vmTierOff;

describe.skipIf(unavailable)(`VM hosts in the lab${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    // mon1 (the lab's time source) and the rest of the container lab, then the VM beside them. mon1 serves
    // time only once base-tuning has run on it (a fresh lab's has not), and must allow the VM's service
    // address (VMs have no management link).
    await ensureLab();
    const mon = await labJson(['play', PLAYBOOK, '-l', 'mon1'], RUN);
    expect(mon.res.code, mon.res.stderr + mon.res.stdout.slice(-2000)).toBe(0);
    measured.push(`base-tuning on mon1 (the time source): ${seconds(mon.ms)}`);
    const started = Date.now();
    const up = await labUp({ topology: vmTopology(), log: (line) => console.log(`lab: ${line}`) });
    const vm = up.hosts.find((h) => h.name === VM)!;
    measured.push(
      `lab up (VM): ${up.timings.vmImageBuilt ? `VM image built in ${seconds(up.timings.vmImageMs)}; ` : 'VM image cached; '}${vm.accelerator} boot to sshd ${vm.bootMs !== undefined ? seconds(vm.bootMs) : vm.note}; call ${seconds(Date.now() - started)}`,
    );
  }, 3_600_000);

  afterAll(() => {
    if (measured.length) console.log(`VM tier, measured:\n  ${measured.join('\n  ')}`);
  });

  it(
    'runs its own kernel on the lab bridge, host key checked, disks at stable paths; status says how',
    async () => {
      const status = await labStatus();
      const vm = status.hosts.find((h) => h.name === VM)!;
      expect(vm).toMatchObject({
        kind: 'vm',
        state: 'running',
        sshAnswers: true,
        memoryMiB: 1536,
        disksGiB: [DISK_GIB, DISK_GIB, DISK_GIB],
      });
      expect(['kvm', 'tcg']).toContain(vm.accelerator);
      // KVM only where /dev/kvm is hardware virtualization (a PVM /dev/kvm cannot boot this kernel: vm.ts).
      if (kvmKind() !== 'hardware') expect(vm.accelerator).toBe('tcg');
      // The lab's ssh checks host keys strictly (against known_hosts written from the key on the seed disk).
      const kernel = await onHost(VM, 'uname -r; systemd-detect-virt; ls /dev/disk/by-id/');
      expect(kernel).toMatch(/-cloud-amd64\n/);
      expect(kernel).not.toMatch(/\nsystemd-nspawn\n/);
      for (const n of [1, 2, 3]) expect(kernel).toContain(`virtio-${VM}-d${n}`);
      const known = await onHost(VM, 'cat /etc/ssh/ssh_host_ed25519_key.pub');
      const knownHosts = readFileSync(join(repoRoot, 'inventories', 'lab', 'generated', 'known_hosts'), 'utf8');
      expect(knownHosts).toContain(`${VM_ADDRESS},${VM} ${known.split(/\s+/).slice(0, 2).join(' ')}`);
      const mem = (await onHost(VM, "free -m | awk '/^Mem:/ {print $2}'")).trim();
      const qemu = allProcesses().find((p) => p.pid === vm.pid);
      const rss = qemu ? Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${qemu.pid}/status`, 'utf8'))?.[1] ?? 0) : 0;
      measured.push(`memory: guest sees ${mem} MiB of 1536; qemu RSS ${Math.round(rss / 1024)} MiB after boot`);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'base-tuning applies every kernel sysctl live on the VM, loads tcp_bbr, changes nothing the second time',
    async () => {
      const first = await labJson(['play', PLAYBOOK, '-l', VM], RUN);
      expect(first.res.code, first.res.stderr + first.res.stdout.slice(-3000)).toBe(0);
      // Nothing reported as read-only (the sysctl module's "live apply skipped: read-only in a container"):
      // results, messages and actions, not the scripts that are run (verify's mentions the container case).
      const reported = taskResults(first.events)
        .filter((e) => e.host === VM)
        .flatMap((e) => [
          e.msg ?? '',
          ...(e.actions ?? []).filter((a) => !a.startsWith('run ')),
          String((e.result as { stdout?: unknown } | undefined)?.stdout ?? ''),
        ]);
      expect(reported.filter((t) => /read-only/.test(t))).toEqual([]);
      // Every key of the profile went through the sysctl module on the VM, none reported as skipped.
      const sysctlItems = taskResults(first.events).filter(
        (e) => e.host === VM && e.task.name === SYSCTL_TASK && !e.loopSummary,
      );
      expect(sysctlItems.length).toBe(9);
      expect(sysctlItems.filter((e) => /skipped/.test(e.msg ?? ''))).toEqual([]);
      const second = await labJson(['play', PLAYBOOK, '-l', VM], RUN);
      expect(second.res.code, second.res.stderr).toBe(0);
      expect(changedKeys(second.events)).toEqual([]);
      measured.push(
        `base-tuning on the VM: first run ${seconds(first.ms)}, second run ${seconds(second.ms)} (0 changed)`,
      );
      const live = await onHost(
        VM,
        'sysctl -n vm.swappiness vm.max_map_count fs.file-max net.core.netdev_max_backlog net.ipv4.tcp_congestion_control; lsmod | grep -c "^tcp_bbr"; cat /etc/modules-load.d/60-cairn-tcp.conf',
      );
      expect(live.split('\n').slice(0, 6)).toEqual(['1', '262144', '2097152', '10000', 'bbr', '1']);
      expect(live).toContain('tcp_bbr');
      const verify = await verifyVm();
      expect(verify.failed).toEqual([]);
      const sysctl = verify.passed.find((p) => p.startsWith(SYSCTL_CHECK))!;
      expect(sysctl).toMatch(/(\d+) keys as wanted: \1 live$/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'checks a live md RAID1 over two VM disks; a disk pulled through QMP fails verify naming the array; a blank one resyncs',
    async () => {
      await onHost(
        VM,
        `mdadm --create /dev/md/cairn-test --name=cairn-test --level=1 --raid-devices=2 --metadata=1.2 --run --force ${byId(1)} ${byId(2)} 2>&1`,
      );
      await waitFor(
        'initial resync',
        900_000,
        async () => !/resync|recovery/.test(await onHost(VM, 'cat /proc/mdstat')),
      );
      const healthy = await verifyVm();
      expect(healthy.failed).toEqual([]);
      expect(healthy.passed.find((p) => p.startsWith(RAID_CHECK))).toMatch(/: 1 md array healthy$/);
      expect(healthy.raidArrays).toEqual([expect.stringMatching(/^md\d+$/)]);

      const pulled = Date.now();
      await unplugDisk(VM, 2);
      await waitFor('md notices the missing disk', 120_000, async () =>
        /\[U_\]|\[_U\]/.test(await onHost(VM, 'cat /proc/mdstat')),
      );
      const noticedMs = Date.now() - pulled;
      const degraded = await verifyVm();
      expect(degraded.code).not.toBe(0);
      const raidFailure = degraded.failed.find((f) => f.startsWith(RAID_CHECK));
      expect(raidFailure).toMatch(/md\d+/);
      expect(raidFailure).toMatch(/degraded/i);

      await plugBlankDisk(VM, 2, DISK_GIB);
      await waitFor(
        'the blank disk appears',
        120_000,
        async () => (await runOnHost(VM, `test -b ${byId(2)}`)).code === 0,
      );
      const md = (await onHost(VM, 'readlink -f /dev/md/cairn-test')).trim();
      // The lost member is still listed (as "removed"/faulty); clear it, then add the new disk.
      await onHost(
        VM,
        `mdadm ${md} --remove failed >/dev/null 2>&1; mdadm ${md} --remove detached >/dev/null 2>&1; mdadm ${md} --add ${byId(2)}`,
      );
      const repairStarted = Date.now();
      await waitFor(
        'resync of the new disk',
        900_000,
        async () =>
          /\[UU\]/.test(await onHost(VM, 'cat /proc/mdstat')) && !/recovery/.test(await onHost(VM, 'cat /proc/mdstat')),
      );
      const resyncMs = Date.now() - repairStarted;
      const repaired = await verifyVm();
      expect(repaired.failed).toEqual([]);
      measured.push(
        `disk failure (md): degraded seen ${seconds(noticedMs)} after device_del; resync of a ${DISK_GIB} GiB member ${seconds(resyncMs)}`,
      );
    },
    3 * TEST_TIMEOUT_MS,
  );

  it(
    'after a reboot every base-tuning postcondition holds without a play (sysctl.d, modules-load, the array)',
    async () => {
      const before = (await onHost(VM, 'cat /proc/sys/kernel/random/boot_id')).trim();
      const started = Date.now();
      await runOnHost(VM, 'systemctl reboot', { timeoutMs: 30_000 });
      await waitFor('the VM comes back with a new boot id', 900_000, async () => {
        const res = await runOnHost(VM, 'cat /proc/sys/kernel/random/boot_id', { timeoutMs: 20_000 });
        return res.code === 0 && res.stdout.trim() !== before;
      });
      const rebootMs = Date.now() - started;
      const verify = await verifyVm();
      expect(verify.failed).toEqual([]);
      expect(
        await onHost(VM, 'sysctl -n net.ipv4.tcp_congestion_control vm.swappiness; lsmod | grep -c "^tcp_bbr"'),
      ).toBe('bbr\n1\n1');
      measured.push(
        `reboot: back on SSH ${seconds(rebootMs)} after \`systemctl reboot\`; verify without a play ${seconds(verify.ms)}, green`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'unplug, stop, start and kill work on a VM',
    async () => {
      await labUnplug(VM, { log: () => {} });
      expect((await labStatus()).hosts.find((h) => h.name === VM)).toMatchObject({
        state: 'running',
        sshAnswers: false,
      });
      await labPlug(VM, { log: () => {} });
      await waitFor(
        'ssh after plug',
        60_000,
        async () => (await labStatus()).hosts.find((h) => h.name === VM)?.sshAnswers === true,
      );
      const stopStarted = Date.now();
      const stopped = await labStop(VM, { log: () => {} });
      expect(stopped.outcome).toBe('halted');
      const stopMs = Date.now() - stopStarted;
      const started = await labStart(VM, { log: () => {} });
      expect(started.outcome).toBe('booted');
      const killed = await labKill(VM, { log: () => {} });
      expect(killed.outcome).toBe('killed');
      expect(existsSync(`/proc/${started.host.pid}`)).toBe(false);
      const again = await labStart(VM, { log: () => {} });
      expect(again.host).toMatchObject({ state: 'running', sshAnswers: true });
      measured.push(
        `stop (ACPI power button) ${seconds(stopMs)}; start to sshd ${seconds(started.host.bootMs ?? 0)} (${started.host.accelerator}); after a power cut ${seconds(again.host.bootMs ?? 0)}`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'lab down after a kill -9 of cairn in the middle of lab up leaves no qemu, tap, socket or disk file',
    async () => {
      await labDown({ log: () => {} });
      const topologyFile = join(repoRoot, 'inventories', 'lab', 'generated', 'vm-crash-topology.yaml');
      writeFileSync(
        topologyFile,
        `hosts:\n  - name: ${VM}\n    address: ${VM_ADDRESS}\n    kind: vm\n    memory: 1024\n    disks: [1, 1]\n`,
      );
      const child = spawn(
        process.execPath,
        [join(repoRoot, 'bin', 'cairn.js'), 'lab', 'up', '--topology', topologyFile],
        { stdio: 'ignore' },
      );
      // Kill it once qemu runs (the VM is booting, its kernel not yet checked).
      await waitFor('qemu started by lab up', 600_000, async () => strayVmProcesses(HOSTS_DIR, readCmdline).length > 0);
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      expect(strayVmProcesses(HOSTS_DIR, readCmdline).length).toBeGreaterThan(0);
      await labDown({ log: () => {} });
      expect(strayVmProcesses(HOSTS_DIR, readCmdline)).toEqual([]);
      const links = await import('../../runner/features/lab/network.js').then((m) => m.listLinks());
      expect(links.map((l) => l.ifname).filter((n) => n.startsWith('vt-') || n === 'cairnbr0')).toEqual([]);
      expect(existsSync(vmPaths(VM).dir)).toBe(false);
      expect(existsSync(HOSTS_DIR) ? readdirSync(HOSTS_DIR) : []).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );
});
