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
 * - the drills, run through the CLI as an operator would (`cairn drill NAME --set host=vmhost1 --set
 *   playbook=playbooks/base.yaml`): disk-failure (a data disk pulled out through QMP, the array degraded and
 *   verify failing naming it; a blank disk, `mdadm --add`, the resync observed until verify is green),
 *   reboot and powercut (every postcondition of base-tuning and the array hold without running a play);
 *   they refuse a container of the lab with a message;
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
import { kvmKind, strayVmProcesses, vmPaths } from '../../runner/features/lab/vm.js';
import { changedKeys, repoRoot, taskResults } from '../helpers/cli.js';
import {
  drillResult,
  ensureLab,
  labDrill,
  labJson,
  labUnavailable,
  onHost,
  sleep,
  verifyResults,
  vmSeconds as seconds,
  vmTestTopology,
  VM_RUN as RUN,
  VM_TEST_TIMEOUT_MS as TEST_TIMEOUT_MS,
} from '../helpers/lab.js';

const VM = 'vmhost1';
const VM_ADDRESS = '10.77.0.51';
const PLAYBOOK = 'playbooks/base.yaml';
const SYSCTL_TASK = 'sysctl profile in the file and live';
const SYSCTL_CHECK = 'sysctl profile holds (live; in the file only for kernel-global keys in a container)';
const RAID_CHECK = 'md RAID arrays are healthy';
const DISK_GIB = 1;
/** The drills judge the VM by the verify of the roles it runs here: base-tuning's (raid_health among them). */
const DRILL_SET = [`host=${VM}`, `playbook=${PLAYBOOK}`];

const byId = (n: number) => `/dev/disk/by-id/virtio-${VM}-d${n}`;
const measured: string[] = [];

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
 * Gated (CAIRN_LAB_VM=1), though the VM now boots the base VM image (no OpenZFS: 97.9 s to build cold): run
 * to the end on 2026-12-08 00:59-01:16 UTC with that image cold, 1043 s for the nine tests (load average 2-16,
 * the VM under TCG: this machine's /dev/kvm is PVM), of which base-tuning's first run on the VM 122 s, the
 * disk-failure drill 200 s, reboot 194 s, powercut 177 s. Over the ~12 minutes the 45-minute suite can give
 * it (its last CI run took 1400 s); the lead decides (docs/lab.md).
 */
const vmTierOff =
  process.env.CAIRN_LAB_VM === '1'
    ? undefined
    : 'the VM tier (about 17 min under TCG here with a cold base VM image) is not in the 45-minute suite; set CAIRN_LAB_VM=1 to run it';
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
    const up = await labUp({
      topology: vmTestTopology(VM, VM_ADDRESS, ['vmlab'], [DISK_GIB, DISK_GIB, DISK_GIB], { source: '70-vm.test.ts' }),
      log: (line) => console.log(`lab: ${line}`),
    });
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
    'checks a live md RAID1 over two VM disks: raid_health on the live /proc/mdstat and mdadm --detail',
    async () => {
      await onHost(
        VM,
        `mdadm --create /dev/md/cairn-test --name=cairn-test --level=1 --raid-devices=2 --metadata=1.2 --run --force ${byId(1)} ${byId(2)} 2>&1`,
      );
      const started = Date.now();
      await waitFor(
        'initial resync',
        900_000,
        async () => !/resync|recovery/.test(await onHost(VM, 'cat /proc/mdstat')),
      );
      measured.push(`initial resync of the ${DISK_GIB} GiB RAID1: ${seconds(Date.now() - started)}`);
      const healthy = await verifyVm();
      expect(healthy.failed).toEqual([]);
      expect(healthy.passed.find((p) => p.startsWith(RAID_CHECK))).toMatch(/: 1 md array healthy$/);
      expect(healthy.raidArrays).toEqual([expect.stringMatching(/^md\d+$/)]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    '`cairn drill disk-failure`: a disk pulled through QMP degrades the array, verify names it; a blank disk, mdadm --add, resync, green',
    async () => {
      const md = (await onHost(VM, 'basename "$(readlink -f /dev/md/cairn-test)"')).trim();
      const result = await labDrill('disk-failure', DRILL_SET, measured, RUN);
      expect(result.passed, result.msg).toBe(true);
      // The drill's default disk: the first one in an array (d1); it judged the array on it, nothing else.
      expect(result.measured.disk).toMatch(new RegExp(`^${byId(1)} \\(vd[a-z]+\\)$`));
      expect(result.measured.judged).toBe(`md ${md}`);
      expect(String(result.measured[`md_${md}`])).toMatch(/degraded/);
      // Verify failed while degraded, naming the array, and only the RAID check failed.
      expect(String(result.measured.verify_failed)).toMatch(new RegExp(`^${RAID_CHECK}: .*\\b${md}\\b.*degraded`, 'i'));
      expect(String(result.measured.verify_failed)).not.toContain(' | ');
      for (const phase of ['detect_s', 'blank_visible_s', 'repair_s', 'resync_s', 'verify_after_s'])
        expect(typeof result.measured[phase], phase).toBe('number');
      // The blank disk is a member now and the array is whole (the drill's own word is not enough).
      const blank = (await onHost(VM, `basename "$(readlink -f ${byId(1)})"`)).trim();
      const mdstat = await onHost(VM, 'cat /proc/mdstat');
      expect(mdstat).toMatch(new RegExp(`${md} : active raid1 .*\\b${blank}\\[`));
      expect(mdstat).toMatch(/\[UU\]/);
      expect((await verifyVm()).failed).toEqual([]);
    },
    3 * TEST_TIMEOUT_MS,
  );

  it(
    '`cairn drill reboot`: after a reboot every base-tuning postcondition holds without a play (sysctl.d, modules-load, the array)',
    async () => {
      const before = (await onHost(VM, 'cat /proc/sys/kernel/random/boot_id')).trim();
      const result = await labDrill('reboot', DRILL_SET, measured, RUN);
      expect(result.passed, result.msg).toBe(true);
      expect(typeof result.measured.ssh_back_s).toBe('number');
      expect(typeof result.measured.green_s).toBe('number');
      expect((await onHost(VM, 'cat /proc/sys/kernel/random/boot_id')).trim()).not.toBe(before);
      expect(
        await onHost(VM, 'sysctl -n net.ipv4.tcp_congestion_control vm.swappiness; lsmod | grep -c "^tcp_bbr"'),
      ).toBe('bbr\n1\n1');
      // The array came back by itself (udev's incremental assembly), whole.
      expect(await onHost(VM, 'cat /proc/mdstat')).toMatch(/\[UU\]/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    '`cairn drill powercut`: qemu killed, started again: the array clean, verify green without a play',
    async () => {
      const before = (await onHost(VM, 'cat /proc/sys/kernel/random/boot_id')).trim();
      const result = await labDrill('powercut', DRILL_SET, measured, RUN);
      expect(result.passed, result.msg).toBe(true);
      expect(typeof result.measured.ssh_back_s).toBe('number');
      expect(typeof result.measured.storage_clean_s).toBe('number');
      expect((await onHost(VM, 'cat /proc/sys/kernel/random/boot_id')).trim()).not.toBe(before);
      expect(await onHost(VM, 'cat /proc/mdstat')).toMatch(/\[UU\]/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'the VM drills refuse a container of the lab, saying why (no stack trace)',
    async () => {
      const { res, events } = await labJson(['drill', 'disk-failure', '--set', 'host=web1'], RUN);
      const result = drillResult(events);
      expect(res.code).toBe(2);
      expect(result?.passed).toBe(false);
      expect(result?.msg).toMatch(/host=web1: a container of the lab, .*this drill needs a VM/);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'unplug, stop, start and kill work on a VM (kill then start: the powercut drill)',
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
      // No start after the kill here: the powercut drill above started a killed VM (and judged it), and the
      // next test takes the lab down.
      measured.push(
        `stop (ACPI power button) ${seconds(stopMs)}; start to sshd ${seconds(started.host.bootMs ?? 0)} (${started.host.accelerator})`,
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
