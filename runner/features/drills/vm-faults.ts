/**
 * Drills that need a real kernel (issue 11), on a VM of the built-in lab:
 *
 * - disk-failure: one data disk pulled out of the running VM through QMP (device_del: the guest loses the
 *   device, nothing is run in it). What the disk carried is judged: every md array with it as a member goes
 *   degraded, every ZFS pool with it as a vdev goes DEGRADED naming it, and the verify of the host's roles
 *   fails naming each array and pool. A blank disk of the same size is plugged into the slot (same serial, so
 *   the same /dev/disk/by-id path), the repair runs (`mdadm --add` of the new disk to each array, `zpool
 *   replace` of the vdev in each pool), and the resync/resilver is waited for until everything is healthy and
 *   verify is green. Ceph OSDs on the disk are not judged yet (the drill says so in its result).
 * - reboot: `systemctl reboot` in the VM; after it, without running a play, the host's md arrays and pools
 *   are back and healthy and the verify of its roles is green. Timed to SSH back and to green.
 * - powercut: qemu killed (`lab kill`), the VM started again; md arrays clean (a resync they need is waited
 *   for and reported), pools ONLINE with no errors, verify green.
 *
 * "The host's roles" are the roles of the playbook given with --set playbook= (default site.yaml), limited
 * to the host. Every drill refuses, with a message, a host that is not a running VM of the lab.
 */
import { argv, quote } from '../../core/transport/quote.js';
import { assessRaid, type ArrayHealth } from '../../core/modules/raid/health.js';
import { parseMdstat } from '../../core/modules/raid/mdstat.js';
import { assessPool } from '../../core/modules/zfs/health.js';
import { leafVdevs, parseZpoolStatus, type PoolStatus, type VdevNode } from '../../core/modules/zfs/zpool-status.js';
import { inputError } from '../../core/util/errors.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import type { DrillContext, DrillOutcome, DrillVerifyResult, DrillVm } from './types.js';
import { verdict } from './verdict.js';

const seconds = (ms: number): number => Math.round(ms / 100) / 10;
const DEFAULT_PLAYBOOK = 'site.yaml';

/** Under TCG on a loaded machine a reboot takes about a minute; a 1 GiB resync several. */
function limitMs(ctx: DrillContext, key: string, fallbackS: number): number {
  const raw = ctx.options[key];
  if (raw === undefined) return fallbackS * 1000;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 1 || value > 7200)
    throw inputError(`--set ${key}=${raw}: expected seconds from 1 to 7200`);
  return value * 1000;
}

/** The lab's VM hands, or a refusal saying why this inventory has none. */
function labVm(ctx: DrillContext): DrillVm {
  if (!ctx.vm)
    throw inputError(
      `this drill needs a VM of the built-in lab (\`cairn lab up --vm\`, or a topology host with \`kind: vm\`); the inventory ${ctx.inventory.path} is not the lab's`,
    );
  return ctx.vm;
}

/** The drill's host: --set host=NAME, which must be a running VM of the lab; else the lab's first VM. */
export function vmTarget(ctx: DrillContext): string {
  const vm = labVm(ctx);
  const wanted = ctx.options.host;
  if (wanted !== undefined) {
    if (!ctx.inventory.hosts.has(wanted)) throw inputError(`--set host=${wanted}: no such host in the inventory`);
    const info = vm.host(wanted);
    if (!info) throw inputError(`--set host=${wanted}: not a host of the running lab`);
    if (info.kind !== 'vm')
      throw inputError(
        `--set host=${wanted}: a container of the lab, which shares this machine's kernel and has no disks of its own; this drill needs a VM (\`kind: vm\` in the topology, or \`cairn lab up --vm\`)`,
      );
    if (!info.running) throw inputError(`--set host=${wanted}: the VM is not running (\`cairn lab start ${wanted}\`)`);
    return wanted;
  }
  const first = [...ctx.inventory.hosts.keys()].find((h) => vm.host(h)?.kind === 'vm');
  if (!first)
    throw inputError(
      'the lab has no VM: bring one up (`cairn lab up --vm`, or a topology host with `kind: vm`), or give --set host=NAME',
    );
  if (!vm.host(first)!.running) throw inputError(`lab VM ${first} is not running (\`cairn lab start ${first}\`)`);
  return first;
}

/** Run a script on a host; a non-zero exit throws with its last output lines. */
async function run(ctx: DrillContext, host: string, script: string, what: string): Promise<string> {
  const res = await ctx.exec(host, script);
  if (res.code !== 0) {
    const detail = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-3).join(' / ');
    throw new Error(`${host}: ${what} failed (exit ${res.code})${detail ? `: ${detail}` : ''}`);
  }
  return res.stdout;
}

// ---------------------------------------------------------------------------------------------------------
// What the host's disks carry: md arrays (from /proc/mdstat) and ZFS pools (zpool status -P)
// ---------------------------------------------------------------------------------------------------------

export const byIdPath = (host: string, index: number): string => `/dev/disk/by-id/virtio-${host}-d${index}`;

export interface Storage {
  arrays: ArrayHealth[];
  /** Kernel member names of each array ("vdc", "vdc1"), by array name. */
  members: Map<string, string[]>;
  pools: PoolStatus[];
  /** Data disk index -> kernel name ("vdc"), for the disks present. */
  disks: Map<number, string>;
  /** Ceph OSD folders on the host (judging them is not part of these drills yet). */
  cephOsds: string[];
}

const MARK = '@@cairn-drill';

export function storageScript(host: string, diskCount: number): string {
  const disks = Array.from({ length: diskCount }, (_, i) => i + 1);
  return [
    `echo ${quote(`${MARK} disks`)}`,
    ...disks.map((n) => `printf '%s %s\\n' ${n} "$(readlink -f -- ${quote(byIdPath(host, n))} 2>/dev/null)"`),
    `echo ${quote(`${MARK} mdstat`)}`,
    'cat /proc/mdstat 2>/dev/null',
    `echo ${quote(`${MARK} zpool`)}`,
    // -P: vdevs by their full path (the by-id path the zfs role gives them).
    'if command -v zpool >/dev/null 2>&1; then zpool status -P 2>&1; fi',
    `echo ${quote(`${MARK} ceph`)}`,
    'ls -1 /var/lib/ceph/osd 2>/dev/null',
    'true',
  ].join('\n');
}

export function parseStorage(out: string): Storage {
  const sections = new Map<string, string>();
  let current = '';
  for (const line of out.split('\n')) {
    if (line.startsWith(`${MARK} `)) {
      current = line.slice(MARK.length + 1).trim();
      sections.set(current, '');
    } else if (current) sections.set(current, `${sections.get(current)}${line}\n`);
  }
  const disks = new Map<number, string>();
  for (const line of (sections.get('disks') ?? '').split('\n')) {
    const m = /^(\d+) \/dev\/(\S+)$/.exec(line.trim());
    if (m) disks.set(Number(m[1]), m[2]!);
  }
  const mdstatText = sections.get('mdstat') ?? '';
  const mdstat = mdstatText.trim() ? parseMdstat(mdstatText) : undefined;
  const members = new Map((mdstat?.arrays ?? []).map((a) => [a.name, a.members.map((m) => m.device)]));
  const zpoolText = sections.get('zpool') ?? '';
  const pools = /no pools available/.test(zpoolText) || !zpoolText.trim() ? [] : parseZpoolStatus(zpoolText).pools;
  return {
    arrays: assessRaid(mdstat, [], { allowRecovering: false }),
    members,
    pools,
    disks,
    cephOsds: (sections.get('ceph') ?? '').split('\n').filter((l) => /^ceph-\d+$/.test(l.trim())),
  };
}

async function readStorage(ctx: DrillContext, host: string, diskCount: number): Promise<Storage> {
  return parseStorage(await run(ctx, host, storageScript(host, diskCount), 'reading md arrays and pools'));
}

/** A member name ("vdc", "vdc1") is the disk `kname` or one of its partitions. */
function onDisk(member: string, kname: string): boolean {
  return member === kname || new RegExp(`^${kname}p?\\d+$`).test(member);
}

/** A pool's leaf vdev path is that disk: its by-id path (whole or a partition) or its kernel name. */
export function vdevOnDisk(vdev: string, byId: string, kname: string | undefined): boolean {
  if (vdev === byId || vdev.startsWith(`${byId}-part`)) return true;
  return kname !== undefined && vdev.startsWith('/dev/') && onDisk(vdev.slice('/dev/'.length), kname);
}

/**
 * The leaf of `pool` that is `vdev`: by its name, or, once zpool lists a device it cannot open by its GUID,
 * by the "was PATH" note it prints beside it.
 */
export function leafOf(pool: PoolStatus | undefined, vdev: string): VdevNode | undefined {
  const leaves = leafVdevs(pool?.root);
  return leaves.find((l) => l.name === vdev) ?? leaves.find((l) => l.note?.split(/\s+/).includes(vdev));
}

/** The arrays and pools (with the vdev's path as zpool prints it) that disk `index` carries. */
export function carriedBy(
  storage: Storage,
  host: string,
  index: number,
): { arrays: string[]; pools: Array<{ pool: string; vdev: string }> } {
  const kname = storage.disks.get(index);
  const byId = byIdPath(host, index);
  const arrays = kname
    ? [...storage.members].filter(([, members]) => members.some((m) => onDisk(m, kname))).map(([name]) => name)
    : [];
  const pools: Array<{ pool: string; vdev: string }> = [];
  for (const pool of storage.pools)
    for (const leaf of leafVdevs(pool.root))
      if (vdevOnDisk(leaf.name, byId, kname)) pools.push({ pool: pool.name, vdev: leaf.name });
  return { arrays, pools };
}

/** Everything unhealthy among the host's arrays and pools ([] when all are clean and ONLINE). */
export function storageProblems(storage: Storage): string[] {
  return [
    ...storage.arrays.filter((a) => a.verdict !== 'healthy').map((a) => a.message),
    ...storage.pools.flatMap((p) => {
      const health = assessPool(p);
      return health.healthy && !health.resilvering ? [] : [`pool ${p.name}: ${health.problems.join('; ') || p.state}`];
    }),
  ];
}

/** Wait until the host's storage satisfies `done`; the last look and the milliseconds (-1: not in time). */
async function waitForStorage(
  ctx: DrillContext,
  host: string,
  diskCount: number,
  done: (s: Storage) => boolean,
  timeoutMs: number,
  opts: { since?: number; everyMs?: number; nudge?: (afterMs: number) => Promise<void> } = {},
): Promise<{ ms: number; last: Storage }> {
  let last: Storage | undefined;
  const since = opts.since ?? performance.now();
  const seen = await pollUntil(
    async () => {
      last = await readStorage(ctx, host, diskCount);
      if (done(last)) return last;
      await opts.nudge?.(performance.now() - since);
      return undefined;
    },
    { timeoutMs, everyMs: opts.everyMs ?? 1000, signal: ctx.signal, since },
  );
  return seen ? { ms: seen.afterMs, last: seen.value } : { ms: -1, last: last! };
}

function failedChecks(results: DrillVerifyResult[], host: string): DrillVerifyResult[] {
  return results.filter((r) => r.host === host && !r.passed);
}

const describeFailure = (r: DrillVerifyResult) => `${r.check}: ${r.msg ?? ''}`;

/** The verify of the host's roles, timed; its failures as lines. */
async function timedVerify(
  ctx: DrillContext,
  playbook: string,
  host: string,
): Promise<{ ms: number; failed: string[]; checks: number; unreachable: boolean }> {
  const t = performance.now();
  const { results, unreachable } = await ctx.verify(playbook, { limit: host });
  return {
    ms: performance.now() - t,
    failed: failedChecks(results, host).map(describeFailure),
    checks: results.filter((r) => r.host === host).length,
    unreachable: unreachable.includes(host),
  };
}

/** Before a drill: storage clean and verify green, or the reasons not to start. */
async function preflight(
  ctx: DrillContext,
  host: string,
  playbook: string,
  diskCount: number,
  measured: DrillOutcome['measured'],
): Promise<{ storage: Storage; problems: string[] }> {
  const storage = await readStorage(ctx, host, diskCount);
  const problems = storageProblems(storage).map((p) => `not healthy before the drill: ${p}`);
  ctx.log(`${host}: verify of ${playbook} before the drill`);
  const before = await timedVerify(ctx, playbook, host);
  measured.verify_before_s = seconds(before.ms);
  if (before.checks === 0) problems.push(`${playbook} has no verification for ${host}: nothing to judge`);
  if (before.failed.length) problems.push(`verify is not green before the drill: ${before.failed.join(' | ')}`);
  measured.arrays = storage.arrays.map((a) => a.name).join(' ') || '-';
  measured.pools = storage.pools.map((p) => p.name).join(' ') || '-';
  if (storage.cephOsds.length)
    measured.ceph = `${storage.cephOsds.length} OSD(s) on the host: not judged by this drill (md and ZFS are)`;
  return { storage, problems };
}

// ---------------------------------------------------------------------------------------------------------
// disk-failure
// ---------------------------------------------------------------------------------------------------------

/**
 * Make ZFS touch a pool: it learns of a vanished vdev at its next I/O to it (zed may mark it REMOVED from the
 * kernel's event first). A small write and `zpool sync` are that I/O; nothing about the disk is told to it.
 */
function poolWriteScript(pool: string): string {
  const file = `.cairn-drill-disk-failure`;
  return [
    `mnt=$(zfs get -H -o value mountpoint ${quote(pool)} 2>/dev/null)`,
    `case "$mnt" in /*) dd if=/dev/urandom of="$mnt/${file}" bs=64k count=16 2>/dev/null; rm -f -- "$mnt/${file}";; esac`,
    `zpool sync ${quote(pool)} 2>/dev/null`,
    'true',
  ].join('\n');
}

/** The repair of one array: the lost member cleared, the new disk added (md then rebuilds onto it). */
function mdRepairScript(array: string, byId: string): string {
  const dev = quote(`/dev/${array}`);
  return [
    `mdadm ${dev} --remove failed >/dev/null 2>&1`,
    `mdadm ${dev} --remove detached >/dev/null 2>&1`,
    `mdadm ${dev} --add ${quote(byId)}`,
  ].join('\n');
}

async function diskFailure(ctx: DrillContext): Promise<DrillOutcome> {
  const host = vmTarget(ctx);
  const vm = labVm(ctx);
  const diskCount = vm.host(host)!.disksGiB.length;
  const playbook = ctx.options.playbook ?? DEFAULT_PLAYBOOK;
  const measured: DrillOutcome['measured'] = { host, playbook };
  const target =
    'the pulled disk degrades every md array and ZFS pool it carried, verify fails naming each; after a blank ' +
    'disk and the repair (mdadm --add, zpool replace) everything resyncs to healthy and verify is green';
  const { storage, problems: before } = await preflight(ctx, host, playbook, diskCount, measured);
  if (before.length) return verdict(before, measured, target);

  const carrying = [...storage.disks.keys()].filter((n) => {
    const c = carriedBy(storage, host, n);
    return c.arrays.length + c.pools.length > 0;
  });
  let disk: number;
  if (ctx.options.disk !== undefined) {
    disk = Number(ctx.options.disk);
    if (!Number.isInteger(disk) || disk < 1 || disk > diskCount)
      throw inputError(`--set disk=${ctx.options.disk}: ${host} has data disks 1 to ${diskCount}`);
  } else {
    if (!carrying.length)
      return verdict(
        [`no data disk of ${host} is in an md array or a ZFS pool: nothing to degrade (make one first)`],
        measured,
        target,
      );
    disk = carrying[0]!;
  }
  const carried = carriedBy(storage, host, disk);
  if (carried.arrays.length + carried.pools.length === 0)
    return verdict([`disk ${disk} of ${host} is in no md array or ZFS pool: nothing to judge`], measured, target);
  const byId = byIdPath(host, disk);
  const kname = storage.disks.get(disk);
  measured.disk = `${byId} (${kname ?? '?'})`;
  measured.judged = [
    ...carried.arrays.map((a) => `md ${a}`),
    ...carried.pools.map((p) => `zfs ${p.pool}`),
    ...(storage.cephOsds.length ? ['ceph: not judged'] : []),
  ].join(', ');
  const problems: string[] = [];
  const poolNames = [...new Set(carried.pools.map((p) => p.pool))];
  let pulled = false;
  let plugged = false;
  try {
    // 1. The disk goes (QMP device_del); md and ZFS must notice by themselves.
    ctx.log(`${host}: pulling disk ${disk} (${byId}) out through QMP; it carries ${measured.judged}`);
    const t0 = performance.now();
    await vm.pullDisk(host, disk);
    pulled = true;
    measured.pull_s = seconds(performance.now() - t0);
    let nudged = false;
    const detected = await waitForStorage(
      ctx,
      host,
      diskCount,
      (s) =>
        carried.arrays.every((a) => {
          const health = s.arrays.find((h) => h.name === a);
          return health !== undefined && (health.verdict === 'degraded' || health.verdict === 'failed');
        }) &&
        carried.pools.every(({ pool, vdev }) => {
          const status = s.pools.find((p) => p.name === pool);
          const leaf = leafOf(status, vdev);
          return status?.state === 'DEGRADED' && leaf !== undefined && leaf.state !== 'ONLINE';
        }),
      limitMs(ctx, 'detect_timeout_s', 180),
      {
        since: t0,
        nudge: async (afterMs) => {
          // ZFS sees a vanished vdev at its next I/O: after 10 s without it, give the pools some.
          if (nudged || afterMs < 10_000 || !poolNames.length) return;
          nudged = true;
          ctx.log(`${host}: writing to ${poolNames.join(', ')} (ZFS notices a lost vdev at its next I/O)`);
          for (const pool of poolNames) await ctx.exec(host, poolWriteScript(pool));
        },
      },
    );
    measured.detect_s = detected.ms < 0 ? 'not within the limit' : seconds(detected.ms);
    if (nudged) measured.pool_io_nudged = 'yes';
    if (detected.ms < 0)
      problems.push(
        `the loss was not seen in time: ${storageProblems(detected.last).join('; ') || 'arrays and pools still healthy'}`,
      );
    for (const { pool, vdev } of carried.pools) {
      const status = detected.last.pools.find((p) => p.name === pool);
      const leaf = leafOf(status, vdev);
      measured[`pool_${pool}`] = `${status?.state ?? 'gone'}; ${vdev} ${leaf?.state ?? 'not listed'}`;
    }
    for (const a of carried.arrays)
      measured[`md_${a}`] = detected.last.arrays.find((h) => h.name === a)?.message ?? 'gone';

    // 2. Verify of the host's roles fails, naming each array and pool (and the device for a pool).
    ctx.log(`${host}: verify while degraded`);
    const degraded = await timedVerify(ctx, playbook, host);
    measured.verify_degraded_s = seconds(degraded.ms);
    measured.verify_failed = degraded.failed.join(' | ') || 'nothing';
    for (const a of carried.arrays)
      if (!degraded.failed.some((f) => new RegExp(`\\b${a}\\b`).test(f)))
        problems.push(`verify did not name md array ${a} while it was degraded`);
    for (const { pool } of carried.pools)
      if (!degraded.failed.some((f) => f.includes(pool) && f.includes(`virtio-${host}-d${disk}`)))
        problems.push(`verify did not name pool ${pool} with the lost device ${byId}`);

    // 3. A blank disk in the slot, then the repair.
    ctx.log(`${host}: plugging a blank disk into slot ${disk}`);
    const t1 = performance.now();
    await vm.plugBlankDisk(host, disk);
    plugged = true;
    const visible = await pollUntil(
      async () => ((await ctx.exec(host, `test -b ${quote(byId)}`)).code === 0 ? true : undefined),
      { timeoutMs: 120_000, everyMs: 500, signal: ctx.signal },
    );
    if (!visible) throw new Error(`${host}: the blank disk did not appear at ${byId} within 120 s`);
    measured.blank_visible_s = seconds(visible.afterMs);
    if (ctx.options.repair === 'skip') {
      // For proving the drill can fail: no repair, so nothing resyncs and verify stays red.
      measured.repair = 'skipped (--set repair=skip)';
    } else {
      for (const a of carried.arrays) {
        ctx.log(`${host}: mdadm /dev/${a} --add ${byId}`);
        await run(ctx, host, mdRepairScript(a, byId), `adding ${byId} to /dev/${a}`);
      }
      for (const pool of poolNames) {
        // One-argument replace: the vdev whose path the new disk has (a whole disk the pool had partitioned,
        // as -part1) is rebuilt onto the disk now at that path.
        ctx.log(`${host}: zpool replace ${pool} ${byId}`);
        await run(ctx, host, argv('zpool', 'replace', pool, byId), `zpool replace ${pool} ${byId}`);
      }
    }
    measured.repair_s = seconds(performance.now() - t1);

    // 4. Resync/resilver until every array and pool is healthy.
    const t2 = performance.now();
    const healed = await waitForStorage(
      ctx,
      host,
      diskCount,
      (s) => storageProblems(s).length === 0 && carried.arrays.every((a) => s.arrays.some((h) => h.name === a)),
      limitMs(ctx, 'resync_timeout_s', 1800),
      { since: t2, everyMs: 2000 },
    );
    measured.resync_s = healed.ms < 0 ? 'not within the limit' : seconds(healed.ms);
    if (healed.ms < 0) problems.push(`not healthy after the repair: ${storageProblems(healed.last).join('; ')}`);

    // 5. Verify green again.
    const after = await timedVerify(ctx, playbook, host);
    measured.verify_after_s = seconds(after.ms);
    if (after.failed.length) problems.push(`verify after the repair: ${after.failed.join(' | ')}`);
    measured.total_s = seconds(performance.now() - t0);
  } finally {
    // Never leave the VM a disk short: a blank one goes back in (the arrays stay degraded then, as reported).
    if (pulled && !plugged) await vm.plugBlankDisk(host, disk).catch(() => undefined);
  }
  return verdict(problems, measured, target, () => `${measured.judged}: degraded, named by verify, repaired`);
}

// ---------------------------------------------------------------------------------------------------------
// reboot and powercut
// ---------------------------------------------------------------------------------------------------------

async function bootId(ctx: DrillContext, host: string): Promise<string> {
  return (await run(ctx, host, 'cat /proc/sys/kernel/random/boot_id', 'reading the boot id')).trim();
}

/**
 * After the host came back: its arrays and pools are the ones it had, healthy (a resync is waited for and
 * reported), and the verify of its roles is green, no play run. `t0` is when it went down.
 */
async function judgeComeback(
  ctx: DrillContext,
  host: string,
  playbook: string,
  diskCount: number,
  before: Storage,
  t0: number,
  measured: DrillOutcome['measured'],
): Promise<string[]> {
  const problems: string[] = [];
  const arraysBefore = before.arrays.length;
  const poolsBefore = before.pools.map((p) => p.name).sort();
  let firstLook: Storage | undefined;
  const clean = await waitForStorage(
    ctx,
    host,
    diskCount,
    (s) => {
      firstLook ??= s;
      return (
        s.arrays.length === arraysBefore &&
        poolsBefore.every((p) => s.pools.some((q) => q.name === p)) &&
        storageProblems(s).length === 0
      );
    },
    limitMs(ctx, 'resync_timeout_s', 1800),
    { everyMs: 2000 },
  );
  const resyncing = storageProblems(firstLook!);
  if (resyncing.length) measured.after_boot = resyncing.join('; ');
  measured.storage_clean_s = clean.ms < 0 ? 'not within the limit' : seconds(performance.now() - t0);
  if (clean.last.arrays.length !== arraysBefore)
    problems.push(`${arraysBefore} md array(s) before, ${clean.last.arrays.length} after`);
  const missing = poolsBefore.filter((p) => !clean.last.pools.some((q) => q.name === p));
  if (missing.length) problems.push(`pool(s) not imported after the boot: ${missing.join(', ')}`);
  if (clean.ms < 0) problems.push(`not clean after the boot: ${storageProblems(clean.last).join('; ')}`);
  const verify = await timedVerify(ctx, playbook, host);
  measured.verify_s = seconds(verify.ms);
  measured.green_s = seconds(performance.now() - t0);
  if (verify.failed.length) problems.push(`verify without a play: ${verify.failed.join(' | ')}`);
  return problems;
}

/** How a drill takes the VM down and brings it back; a problem when it did not come back. */
type GoDown = (
  host: string,
  vm: DrillVm,
  ctx: { oldBoot: string; t0: number; storage: Storage; measured: DrillOutcome['measured'] },
) => Promise<string | undefined>;

/** reboot and powercut: preflight, the VM down and back (`goDown`), then the comeback judged. */
async function comebackDrill(ctx: DrillContext, target: string, goDown: GoDown): Promise<DrillOutcome> {
  const host = vmTarget(ctx);
  const vm = labVm(ctx);
  const diskCount = vm.host(host)!.disksGiB.length;
  const playbook = ctx.options.playbook ?? DEFAULT_PLAYBOOK;
  const measured: DrillOutcome['measured'] = { host, playbook };
  const { storage, problems: before } = await preflight(ctx, host, playbook, diskCount, measured);
  if (before.length) return verdict(before, measured, target);
  const oldBoot = await bootId(ctx, host);
  const t0 = performance.now();
  const lost = await goDown(host, vm, { oldBoot, t0, storage, measured });
  if (lost) return verdict([lost], measured, target);
  const problems: string[] = [];
  if ((await bootId(ctx, host)) === oldBoot) problems.push(`${host} has the same boot id: it did not go down`);
  problems.push(...(await judgeComeback(ctx, host, playbook, diskCount, storage, t0, measured)));
  return verdict(
    problems,
    measured,
    target,
    () => `back on SSH after ${measured.ssh_back_s} s, green after ${measured.green_s} s`,
  );
}

function reboot(ctx: DrillContext): Promise<DrillOutcome> {
  const target =
    'after `systemctl reboot`, without a play: the same md arrays and pools, healthy, and verify of the roles green';
  return comebackDrill(ctx, target, async (host, vm, { oldBoot, t0, measured }) => {
    ctx.log(`${host}: systemctl reboot`);
    // --no-block: the reboot job is queued and the command returns before sshd goes down.
    await ctx.exec(host, 'systemctl --no-block reboot');
    const back = await pollUntil(
      async () => {
        await vm.reconnect(host);
        try {
          const res = await ctx.exec(host, 'cat /proc/sys/kernel/random/boot_id', { timeoutMs: 20_000 });
          return res.code === 0 && res.stdout.trim() && res.stdout.trim() !== oldBoot ? true : undefined;
        } catch {
          // Down, or sshd not yet up.
          return undefined;
        }
      },
      { timeoutMs: limitMs(ctx, 'boot_timeout_s', 900), everyMs: 2000, signal: ctx.signal, since: t0 },
    );
    if (!back) return `${host} did not come back with a new boot id`;
    measured.ssh_back_s = seconds(back.afterMs);
    return undefined;
  });
}

function powercut(ctx: DrillContext): Promise<DrillOutcome> {
  const power = ctx.power;
  if (!power) throw inputError('powercut needs the lab power control (the built-in lab inventory)');
  const target =
    'after qemu is killed and the VM started: the same md arrays clean, pools ONLINE with no errors, verify green, no play';
  return comebackDrill(ctx, target, async (host, _vm, { t0, storage, measured }) => {
    // Writes in flight when the power goes: the pools must come back consistent all the same.
    for (const pool of storage.pools) await ctx.exec(host, `(${poolWriteScript(pool.name)}) &`);
    ctx.log(`${host}: power cut (qemu killed)`);
    let killed = false;
    try {
      await power.kill(host);
      killed = true;
      measured.kill_s = seconds(performance.now() - t0);
      ctx.log(`${host}: starting it again`);
      await power.start(host);
      killed = false;
    } finally {
      // A start that failed is tried once more: the drill never leaves the VM off.
      if (killed) await power.start(host).catch(() => undefined);
    }
    measured.ssh_back_s = seconds(performance.now() - t0);
    return undefined;
  });
}

const COMMON_OPTIONS = {
  host: 'a running VM of the lab (default: the first VM of the lab)',
  playbook: `the playbook whose roles' verify judges the host (default ${DEFAULT_PLAYBOOK})`,
  resync_timeout_s: 'how long a resync/resilver may take (default 1800)',
};

registerDrill({
  name: 'disk-failure',
  summary:
    'pull a data disk out of a lab VM (QMP): md degraded, ZFS pool DEGRADED naming it, verify failing; blank disk, ' +
    'mdadm --add / zpool replace, resync until healthy and verify green (timed)',
  options: {
    ...COMMON_OPTIONS,
    disk: 'the data disk to pull, 1..n (default: the first in an md array or pool)',
    detect_timeout_s: 'how long md/ZFS may take to notice the loss (default 180)',
    repair: '"skip" leaves out the repair (the drill must then fail: a check of the drill itself)',
  },
  run: diskFailure,
});

registerDrill({
  name: 'reboot',
  summary:
    'reboot a lab VM: back on SSH, its md arrays and pools healthy and the verify of its roles green without a play (timed)',
  options: { ...COMMON_OPTIONS, boot_timeout_s: 'how long the VM may take to answer again (default 900)' },
  run: reboot,
});

registerDrill({
  name: 'powercut',
  summary:
    'power cut on a lab VM (qemu killed), start it: md arrays clean, pools ONLINE without errors, verify green (timed)',
  options: COMMON_OPTIONS,
  run: powercut,
});
