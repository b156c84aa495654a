/**
 * `cairn lab ...`: the built-in lab of Debian hosts in systemd-nspawn containers on a private bridge.
 * The work is in runner/features/lab/; this file parses options and prints results.
 */
import type { Command } from 'commander';
import { optionsError } from '../core/util/errors.js';
import {
  labDown,
  labFenceServe,
  labKill,
  labRestart,
  labSsh,
  labStart,
  labStatus,
  labStop,
  labUnplug,
  labPlug,
  labUp,
  setFenceBlocked,
  type LabHostActionResult,
  type LabHostReport,
  type LabUpResult,
} from '../features/lab/index.js';

function parseHostCount(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw optionsError(`--hosts expects a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '' : `${(ms / 1000).toFixed(1)} s`;
}

/** "container", or "vm tcg 2048M 6x16G" (accelerator of the current boot, memory, data disks). */
export function kindCell(h: LabHostReport): string {
  if (h.kind !== 'vm') return 'container';
  const disks = h.disksGiB ?? [];
  const sameSize = disks.length > 0 && disks.every((d) => d === disks[0]);
  const diskText =
    disks.length === 0 ? 'no disks' : sameSize ? `${disks.length}x${disks[0]}G` : disks.map((d) => `${d}G`).join('+');
  return ['vm', h.accelerator ?? '-', h.memoryMiB !== undefined ? `${h.memoryMiB}M` : '', diskText]
    .filter(Boolean)
    .join(' ');
}

/** A plain aligned table: a header row, then one row per host. */
export function hostTable(hosts: readonly LabHostReport[]): string {
  const rows = [
    ['HOST', 'ADDRESS', 'GROUPS', 'KIND', 'STATE', 'PID', 'SSH', 'BOOT'],
    ...hosts.map((h) => [
      h.name,
      h.address,
      h.groups.join(',') || '-',
      kindCell(h),
      h.state,
      h.pid === undefined ? '-' : String(h.pid),
      h.sshAnswers === undefined ? '-' : h.sshAnswers ? 'answers' : 'silent',
      h.bootMs !== undefined ? seconds(h.bootMs) : (h.note ?? ''),
    ]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function upSummary(result: LabUpResult): string {
  const t = result.timings;
  const lines = [
    hostTable(result.hosts),
    '',
    `bridge ${result.bridge} ${result.subnet}, VIP reserved at ${result.vip}`,
    `image: ${t.imageBuilt ? `built in ${seconds(t.imageMs)}` : 'cached'}; ${t.vmImageBuilt ? `VM image: built in ${seconds(t.vmImageMs)}; ` : ''}repository: ${t.repoBuilt ? `built in ${seconds(t.repoMs)}` : 'cached'} (${t.repoPackages} packages); boot: ${t.bootMs ? seconds(t.bootMs) : 'nothing to boot'}; total ${seconds(t.totalMs)}`,
    `inventory:   ${result.inventoryPath}`,
    `known_hosts: ${result.knownHostsPath}`,
    `ssh key:     ${result.privateKeyPath}`,
  ];
  return lines.join('\n') + '\n';
}

function actionLine(result: LabHostActionResult): string {
  const h = result.host;
  const extra = [
    h.pid !== undefined ? `pid ${h.pid}` : '',
    h.bootMs !== undefined ? `ssh answered after ${seconds(h.bootMs)}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${h.name} (${h.address}): ${result.outcome}${extra ? ` (${extra})` : ''}\n`;
}

export function registerLabCommands(program: Command): void {
  const lab = program
    .command('lab')
    .description('a lab of Debian 12 hosts (systemd-nspawn containers on a private bridge) on this machine');

  lab
    .command('up')
    .description(
      'build (once) and boot the lab hosts; write the inventory, known_hosts and SSH key to inventories/lab/generated/',
    )
    .option('--hosts <n>', 'the first N hosts of the default topology')
    .option('--topology <file>', 'a YAML topology file (see inventories/lab/README.md)')
    .option('--with-pve', 'also boot pve1, pve2 and pve3')
    .option('--vm', 'run pve1, pve2 and pve3 as VMs under qemu (own kernel, data disks; see docs/lab.md)')
    .action(async (opts: { hosts?: string; topology?: string; withPve?: boolean; vm?: boolean }) => {
      const result = await labUp({
        hosts: opts.hosts === undefined ? undefined : parseHostCount(opts.hosts),
        topologyFile: opts.topology,
        withPve: opts.withPve,
        vm: opts.vm,
      });
      process.stdout.write(upSummary(result));
    });

  lab
    .command('status')
    .description(
      'each lab host: kind (container, or VM with accelerator, memory, disks), running or stopped, pid, address, whether sshd answers',
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const status = await labStatus();
      if (opts.json) {
        process.stdout.write(JSON.stringify(status, null, 2) + '\n');
        return;
      }
      if (!status.up) {
        process.stdout.write('the lab is not up (start it with `cairn lab up`)\n');
        return;
      }
      process.stdout.write(
        `${hostTable(status.hosts)}\n\nbridge ${status.bridge} ${status.subnet}, VIP ${status.vip}; inventory ${status.inventoryPath}\n`,
      );
    });

  lab
    .command('down')
    .description(
      'remove every container, mount, interface and file the lab made (the image and repository caches stay)',
    )
    .action(async () => {
      const result = await labDown();
      process.stdout.write(
        `lab down: ${result.stopped.length} host(s) stopped, ${result.strays.length} stray process(es) killed, ` +
          `${result.unmounted.length} mount(s) and ${result.interfaces.length} interface(s) removed\n`,
      );
    });

  lab
    .command('fence-serve', { hidden: true })
    .description(
      "the lab's fence endpoint for the cluster hosts (started by `lab up`; see runner/features/lab/fence.ts)",
    )
    .action(async () => {
      await labFenceServe();
    });

  lab
    .command('fence-block')
    .description(
      "make the lab's fence device fail every request (on), as an unreachable BMC would, or work again (off)",
    )
    .argument('<state>', 'on or off')
    .action((state: string) => {
      if (state !== 'on' && state !== 'off')
        throw optionsError(`fence-block takes on or off, not ${JSON.stringify(state)}`);
      setFenceBlocked(state === 'on');
      process.stdout.write(`lab fence device: ${state === 'on' ? 'blocked (every request fails)' : 'working'}\n`);
    });

  lab
    .command('ssh')
    .description('ssh to a lab host as root (host keys checked); words after -- are run there, each quoted')
    .argument('<host>', 'lab host name')
    .argument('[command...]', 'command and arguments to run (after --)')
    .action(async (host: string, command: string[]) => {
      const result = await labSsh(host, command.length ? { argv: command } : undefined);
      process.exitCode = result.code;
    });

  const hostAction = (name: string, description: string, fn: (host: string) => Promise<LabHostActionResult>) =>
    lab
      .command(name)
      .description(description)
      .argument('<host>', 'lab host name')
      .action(async (host: string) => {
        process.stdout.write(actionLine(await fn(host)));
      });
  hostAction('stop', 'halt a host in order (like poweroff); its disk is kept', (h) => labStop(h));
  hostAction('kill', "cut a host's power (SIGKILL to its init and nspawn, or to qemu); its disk is kept", (h) =>
    labKill(h),
  );
  hostAction('start', 'boot a stopped host again and wait for sshd', (h) => labStart(h));
  hostAction('restart', 'halt a host in order, then boot it again', (h) => labRestart(h));
  hostAction('unplug', "pull a host's network cable (its link on the lab bridge goes down); it keeps running", (h) =>
    labUnplug(h),
  );
  hostAction('plug', "put a host's network cable back (its link on the lab bridge comes up)", (h) => labPlug(h));
}
