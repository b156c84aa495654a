/**
 * Drills of the hypervisor layer (kvm and zfs roles).
 *
 * - vm-lifecycle (document 004's cluster acceptance, the VM part): on one pve host, define a tiny guest from
 *   the template in ./tiny-guest.ts, clone it (XML copy + disk copy, as virt-clone does), start both
 *   with the domain type the kvm role chose (kvm, or qemu = TCG on a host without /dev/kvm), prove they run (domstate running, the qemu process alive, `info kvm` enabled, and
 *   the marker the guest's own code writes to its serial port), then destroy and undefine both. Timed.
 * - zfs-degrade: take one vdev of a pool offline (`zpool offline`), check that the pool is DEGRADED and that
 *   the health verdict (the same code as the zpool_health verify module) names exactly that vdev, write
 *   while degraded, bring it back (`zpool online`) and time the resilver back to ONLINE.
 *
 * Both restore what they changed in a finally block, also on Ctrl-C.
 */
import { argv, quote } from '../../core/transport/quote.js';
import { bootSector, cloneDomainXml, tinyGuestXml } from './tiny-guest.js';
import { assessPool } from '../../core/modules/zfs/health.js';
import { leafVdevs, parseZpoolStatus, type PoolStatus } from '../../core/modules/zfs/zpool-status.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import type { DrillContext, DrillOutcome } from './types.js';
import { verdict } from './verdict.js';

const seconds = (ms: number): number => Math.round(ms / 10) / 100;

/** Run a script on a host; a non-zero exit throws with the script's last output lines. */
async function run(ctx: DrillContext, host: string, script: string, what: string, stdin?: string): Promise<string> {
  const res = await ctx.exec(host, script, stdin === undefined ? {} : { stdin });
  if (res.code !== 0) {
    const detail = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-3).join(' / ');
    throw new Error(`${host}: ${what} failed (exit ${res.code})${detail ? `: ${detail}` : ''}`);
  }
  return res.stdout;
}

/** The host to drill: --set host=NAME, else the first host of group pve. */
function drillHost(ctx: DrillContext): string {
  const wanted = ctx.options.host;
  const pve = ctx.inventory.select('pve');
  if (wanted !== undefined) {
    if (!ctx.inventory.hosts.has(wanted)) throw new Error(`--set host=${wanted}: no such host in the inventory`);
    return wanted;
  }
  if (!pve.length) throw new Error('no host in group pve (or give --set host=NAME)');
  return pve[0]!;
}

// ---------------------------------------------------------------------------------------------------------
// vm-lifecycle
// ---------------------------------------------------------------------------------------------------------

interface GuestPaths {
  name: string;
  disk: string;
  serial: string;
}

function imagesDir(ctx: DrillContext, host: string): string {
  const pools = ctx.hostVars(host).kvm_pools;
  const first = Array.isArray(pools) ? (pools[0] as { path?: unknown } | undefined) : undefined;
  const path = typeof first?.path === 'string' && !first.path.includes('{{') ? first.path : '/var/lib/libvirt/images';
  if (!/^\/[A-Za-z0-9_./-]+$/.test(path)) throw new Error(`images folder ${JSON.stringify(path)} is not usable`);
  return path.replace(/\/+$/, '');
}

/** The kvm role's folder of rendered libvirt files on a host (kvm_config_dir), where it records the domain type. */
function configDir(ctx: DrillContext, host: string): string {
  const dir = ctx.hostVars(host).kvm_config_dir;
  const path = typeof dir === 'string' && !dir.includes('{{') ? dir : '/etc/cairn/libvirt';
  if (!/^\/[A-Za-z0-9_./-]+$/.test(path)) throw new Error(`kvm_config_dir ${JSON.stringify(path)} is not usable`);
  return path.replace(/\/+$/, '');
}

/** Prints the domain type the kvm role recorded (kvm, or qemu = TCG), after checking that libvirtd answers. */
export function domainTypeScript(dir: string): string {
  return ['virsh -q -c qemu:///system version >/dev/null || exit 1', `cat -- ${quote(`${dir}/domain-type`)}`].join(
    '\n',
  );
}

export function parseDomainType(out: string): 'kvm' | 'qemu' {
  const type = out.trim();
  if (type !== 'kvm' && type !== 'qemu')
    throw new Error(`the kvm role recorded domain type ${JSON.stringify(type)}, not kvm or qemu`);
  return type;
}

/** Remove a guest and its files whatever state it is in (also leftovers of an interrupted run). */
function removeGuestScript(g: GuestPaths): string {
  return [
    `virsh -q destroy ${quote(g.name)} >/dev/null 2>&1`,
    `virsh -q undefine ${quote(g.name)} >/dev/null 2>&1`,
    `rm -f -- ${quote(g.disk)} ${quote(g.serial)}`,
    'true',
  ].join('\n');
}

/** Define a domain from XML on stdin (a private temp file, removed again). */
function defineScript(): string {
  return ['f=$(mktemp) || exit 1', 'cat > "$f"', 'virsh -q define "$f"; rc=$?', 'rm -f -- "$f"', 'exit $rc'].join('\n');
}

/** Write a file from base64 on stdin atomically (temp file in the same folder, then rename). */
function writeFileScript(path: string): string {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  return [
    `tmp=$(mktemp ${quote(`${dir}/.cairn-drill.`)}XXXXXXXX) || exit 1`,
    'base64 -d > "$tmp" || { rm -f -- "$tmp"; exit 1; }',
    `mv -f -- "$tmp" ${quote(path)}`,
  ].join('\n');
}

interface RunningProof {
  state: string;
  pid: number;
  kvm: string;
  rssKiB: number;
}

/** The proofs that a guest runs with KVM: domstate, the qemu pid alive, qemu's own `info kvm`, its RSS. */
async function proveRunning(ctx: DrillContext, host: string, name: string): Promise<RunningProof> {
  const out = await run(
    ctx,
    host,
    [
      `printf 'state=%s\\n' "$(virsh -q domstate ${quote(name)})"`,
      `pid=$(cat ${quote(`/run/libvirt/qemu/${name}.pid`)} 2>/dev/null)`,
      'if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "pid=$pid"; echo "rss=$(ps -o rss= -p "$pid" | tr -d " ")"; else echo pid=0; fi',
      `printf 'kvm=%s\\n' "$(virsh -q qemu-monitor-command --hmp ${quote(name)} 'info kvm' | tr -d '\\r')"`,
    ].join('\n'),
    `checking guest ${name}`,
  );
  const kv = new Map(
    out
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()] as [string, string]),
  );
  return {
    state: kv.get('state') ?? '',
    pid: Number(kv.get('pid') ?? 0),
    kvm: kv.get('kvm') ?? '',
    rssKiB: Number(kv.get('rss') ?? 0),
  };
}

/** Wait until the guest's serial log holds the marker its boot sector prints; milliseconds, or -1 on timeout. */
async function waitForMarker(
  ctx: DrillContext,
  host: string,
  serial: string,
  marker: string,
  limitMs: number,
): Promise<number> {
  const seen = await pollUntil(
    async () => {
      const res = await ctx.exec(host, `grep -qF ${quote(marker)} ${quote(serial)} 2>/dev/null && echo found`);
      return res.stdout.includes('found') ? true : undefined;
    },
    { timeoutMs: limitMs, everyMs: 100, signal: ctx.signal },
  );
  return seen ? seen.afterMs : -1;
}

async function vmLifecycle(ctx: DrillContext): Promise<DrillOutcome> {
  const host = drillHost(ctx);
  const dir = imagesDir(ctx, host);
  const stamp = Date.now().toString(36);
  const original: GuestPaths = {
    name: `cairn-drill-${stamp}`,
    disk: `${dir}/cairn-drill-${stamp}.img`,
    serial: `/var/log/libvirt/qemu/cairn-drill-${stamp}.serial`,
  };
  const clone: GuestPaths = {
    name: `cairn-drill-${stamp}-clone`,
    disk: `${dir}/cairn-drill-${stamp}-clone.img`,
    serial: `/var/log/libvirt/qemu/cairn-drill-${stamp}-clone.serial`,
  };
  const marker = `cairn guest ${stamp} up`;
  const measured: Record<string, number | string> = { host };
  const target =
    'a template guest and its clone each start with the domain type the kvm role chose (kvm: info kvm enabled; ' +
    'qemu/TCG where the host has no /dev/kvm: info kvm disabled), run their own code (serial marker) and are ' +
    'gone afterwards; start ≤ 10 s each';
  const t0 = performance.now();
  let cleaned = false;
  try {
    ctx.log(`${host}: preflight (libvirtd answers; the domain type the kvm role chose)`);
    const domainType = parseDomainType(
      await run(ctx, host, domainTypeScript(configDir(ctx, host)), 'preflight (run the kvm role first)'),
    );
    measured.domain_type = domainType;
    await run(ctx, host, `${removeGuestScript(original)}\n${removeGuestScript(clone)}`, 'clearing leftovers');

    ctx.log(`${host}: defining ${original.name} from the template (512-byte boot-sector disk in ${dir})`);
    let t = performance.now();
    await run(
      ctx,
      host,
      writeFileScript(original.disk),
      'writing the boot disk',
      bootSector(marker).toString('base64'),
    );
    await run(
      ctx,
      host,
      defineScript(),
      `defining ${original.name}`,
      tinyGuestXml({ name: original.name, diskPath: original.disk, serialLogPath: original.serial, domainType }),
    );
    measured.define_s = seconds(performance.now() - t);

    ctx.log(`${host}: cloning it as ${clone.name}`);
    t = performance.now();
    const dumped = await run(ctx, host, argv('virsh', '-q', 'dumpxml', original.name), `dumpxml ${original.name}`);
    const cloneXml = cloneDomainXml(dumped, {
      name: clone.name,
      diskPath: clone.disk,
      serialLogPath: clone.serial,
      fromDiskPath: original.disk,
      fromSerialLogPath: original.serial,
    });
    await run(ctx, host, argv('cp', '--sparse=always', '--', original.disk, clone.disk), 'copying the disk');
    await run(ctx, host, defineScript(), `defining ${clone.name}`, cloneXml);
    measured.clone_s = seconds(performance.now() - t);

    const proofs: Record<string, RunningProof> = {};
    for (const [label, g] of [
      ['original', original],
      ['clone', clone],
    ] as const) {
      ctx.log(`${host}: starting ${g.name} (domain type ${domainType})`);
      t = performance.now();
      await run(ctx, host, argv('virsh', '-q', 'start', g.name), `starting ${g.name}`);
      measured[`start_${label}_s`] = seconds(performance.now() - t);
      const markerMs = await waitForMarker(ctx, host, g.serial, marker, 15_000);
      measured[`guest_output_${label}_s`] = markerMs < 0 ? 'none within 15 s' : seconds(markerMs);
      proofs[label] = await proveRunning(ctx, host, g.name);
    }
    const o = proofs.original!;
    const c = proofs.clone!;
    measured.state = `${o.state}/${c.state}`;
    measured.kvm = o.kvm === c.kvm ? o.kvm : `${o.kvm} / ${c.kvm}`;
    measured.qemu_rss_mib = Math.round((o.rssKiB + c.rssKiB) / 2 / 1024);

    ctx.log(`${host}: destroying and undefining both`);
    t = performance.now();
    await run(
      ctx,
      host,
      [
        argv('virsh', '-q', 'destroy', original.name),
        argv('virsh', '-q', 'destroy', clone.name),
        argv('virsh', '-q', 'undefine', original.name),
        argv('virsh', '-q', 'undefine', clone.name),
      ].join(' && '),
      'destroy and undefine',
    );
    measured.destroy_undefine_s = seconds(performance.now() - t);
    const gone = await ctx.exec(
      host,
      [
        `virsh -q list --all --name | grep -c ${quote(`cairn-drill-${stamp}`)}`,
        `for p in ${o.pid} ${c.pid}; do kill -0 "$p" 2>/dev/null && echo "alive=$p"; done`,
        'true',
      ].join('\n'),
    );
    const leftDomains = Number(gone.stdout.split('\n')[0] ?? '0');
    const alive = gone.stdout.split('\n').filter((l) => l.startsWith('alive='));
    await run(ctx, host, `${removeGuestScript(original)}\n${removeGuestScript(clone)}`, 'removing the drill files');
    cleaned = true;
    measured.total_s = seconds(performance.now() - t0);

    const problems: string[] = [];
    for (const [label, p] of Object.entries(proofs)) {
      if (p.state !== 'running') problems.push(`${label} is "${p.state}", not running`);
      if (!p.pid) problems.push(`${label}: no live qemu process`);
      const wantKvm = measured.domain_type === 'kvm';
      if (wantKvm && !/enabled/.test(p.kvm)) problems.push(`${label}: qemu reports "${p.kvm}" (not KVM-accelerated)`);
      if (!wantKvm && !/disabled/.test(p.kvm))
        problems.push(`${label}: qemu reports "${p.kvm}" for a domain of type qemu (TCG expected)`);
      if (typeof measured[`guest_output_${label}_s`] !== 'number')
        problems.push(`${label}: the guest printed no marker (its code did not run)`);
      const start = measured[`start_${label}_s`];
      if (typeof start !== 'number' || start > 10) problems.push(`${label}: start took ${String(start)} s`);
    }
    if (leftDomains) problems.push(`${leftDomains} drill domain(s) still defined`);
    if (alive.length) problems.push(`qemu still running after destroy (${alive.join(', ')})`);
    return verdict(
      problems,
      measured,
      target,
      () => `both guests ran (domain type ${String(measured.domain_type)}) on ${host} and are gone`,
    );
  } finally {
    if (!cleaned) {
      await ctx.exec(host, `${removeGuestScript(original)}\n${removeGuestScript(clone)}`).catch(() => undefined);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// zfs-degrade
// ---------------------------------------------------------------------------------------------------------

async function poolStatus(ctx: DrillContext, host: string, pool: string): Promise<PoolStatus> {
  const out = await run(ctx, host, argv('zpool', 'status', pool), `zpool status ${pool}`);
  const status = parseZpoolStatus(out).pools.find((p) => p.name === pool);
  if (!status) throw new Error(`${host}: zpool status printed no pool ${pool}`);
  return status;
}

/** Poll zpool status until `done` holds; milliseconds taken, or -1 on timeout. */
async function waitForPool(
  ctx: DrillContext,
  host: string,
  pool: string,
  done: (s: PoolStatus) => boolean,
  limitMs: number,
): Promise<{ ms: number; last: PoolStatus }> {
  let last: PoolStatus | undefined;
  const seen = await pollUntil(
    async () => {
      last = await poolStatus(ctx, host, pool);
      return done(last) ? last : undefined;
    },
    { timeoutMs: limitMs, everyMs: 200, signal: ctx.signal },
  );
  // pollUntil asks at least once, so `last` is set.
  return seen ? { ms: seen.afterMs, last: seen.value } : { ms: -1, last: last! };
}

function poolChoice(ctx: DrillContext, host: string): { pool: string; vdev?: string } {
  const pools = ctx.hostVars(host).zfs_pools;
  const first = Array.isArray(pools) ? (pools[0] as { name?: unknown; devices?: unknown } | undefined) : undefined;
  const pool = ctx.options.pool ?? (typeof first?.name === 'string' ? first.name : undefined);
  if (!pool) throw new Error(`${host} has no zfs_pools; give --set pool=NAME`);
  const devices =
    Array.isArray(first?.devices) && first?.name === pool
      ? (first.devices as unknown[]).filter((d): d is string => typeof d === 'string')
      : [];
  return { pool, vdev: ctx.options.vdev ?? devices[devices.length - 1] };
}

async function zfsDegrade(ctx: DrillContext): Promise<DrillOutcome> {
  const host = drillHost(ctx);
  const { pool, vdev: wantedVdev } = poolChoice(ctx, host);
  const measured: Record<string, number | string> = { host, pool };
  const target =
    'the health check names exactly the offlined vdev while the pool is DEGRADED; ONLINE again ≤ 60 s after zpool online';
  const before = await poolStatus(ctx, host, pool);
  const healthBefore = assessPool(before);
  if (!healthBefore.healthy)
    return {
      passed: false,
      measured,
      target,
      msg: `pool ${pool} on ${host} is not healthy before the drill: ${healthBefore.problems.join('; ')}`,
    };
  const leaves = leafVdevs(before.root).filter((l) => !l.vdevClass);
  const vdev = wantedVdev ?? leaves[leaves.length - 1]?.name;
  if (!vdev || !leaves.some((l) => l.name === vdev))
    return {
      passed: false,
      measured,
      target,
      msg: `no data vdev ${vdev ?? '(none)'} in pool ${pool} (vdevs: ${leaves.map((l) => l.name).join(', ')})`,
    };
  measured.vdev = vdev;
  const mount = (
    await run(ctx, host, argv('zfs', 'get', '-H', '-o', 'value', 'mountpoint', pool), 'reading the pool mountpoint')
  ).trim();
  const scratch = /^\/[A-Za-z0-9_./-]+$/.test(mount) ? `${mount}/.cairn-drill-degraded-write` : undefined;
  let offline = false;
  try {
    ctx.log(`${host}: zpool offline ${pool} ${vdev}`);
    let t = performance.now();
    await run(ctx, host, argv('zpool', 'offline', pool, vdev), 'zpool offline');
    offline = true;
    const degraded = await waitForPool(ctx, host, pool, (s) => s.state === 'DEGRADED', 30_000);
    // From the offline command to the first status that shows the pool DEGRADED.
    measured.detect_s = degraded.ms < 0 ? 'not DEGRADED within 30 s' : seconds(performance.now() - t);
    measured.pool_state = degraded.last.state;
    const health = assessPool(degraded.last);
    const leafProblems = health.vdevProblems.filter((p) =>
      leafVdevs(degraded.last.root).some((l) => l.name === p.vdev),
    );
    measured.reported = leafProblems.map((p) => p.message).join('; ') || '(no vdev reported)';
    const exact = leafProblems.length === 1 && leafProblems[0]!.vdev === vdev && leafProblems[0]!.state === 'OFFLINE';

    if (scratch) {
      // Data written while degraded must be resilvered onto the returning vdev. Taking (and dropping) a
      // snapshot makes ZFS commit the open transaction group now, instead of at its timer (30 s on zfs-fuse).
      const sync = `${pool}@cairn-drill-sync-${Date.now().toString(36)}`;
      await run(
        ctx,
        host,
        `dd if=/dev/urandom of=${quote(scratch)} bs=1M count=8 2>/dev/null && ${argv('zfs', 'snapshot', sync)} && ${argv('zfs', 'destroy', sync)}`,
        'writing while degraded',
      );
      measured.written_while_degraded_mib = 8;
    }

    ctx.log(`${host}: zpool online ${pool} ${vdev}`);
    t = performance.now();
    await run(ctx, host, argv('zpool', 'online', pool, vdev), 'zpool online');
    offline = false;
    const healed = await waitForPool(ctx, host, pool, (s) => assessPool(s).healthy, 60_000);
    measured.heal_s = healed.ms < 0 ? 'not ONLINE within 60 s' : seconds(performance.now() - t);
    const note = leafVdevs(healed.last.root).find((l) => l.name === vdev)?.note;
    if (note) measured.resilvered = note;
    const after = assessPool(healed.last);
    const problems: string[] = [];
    if (degraded.ms < 0) problems.push(`pool stayed ${degraded.last.state}`);
    if (!exact)
      problems.push(`the health check should name exactly ${vdev} as OFFLINE, it reported: ${measured.reported}`);
    if (!after.healthy) problems.push(`after zpool online: ${after.problems.join('; ')}`);
    return verdict(problems, measured, target, () => `reported "${leafProblems[0]!.message}", healed`);
  } finally {
    if (offline) await ctx.exec(host, argv('zpool', 'online', pool, vdev)).catch(() => undefined);
    if (scratch) await ctx.exec(host, argv('rm', '-f', '--', scratch)).catch(() => undefined);
  }
}

registerDrill({
  name: 'vm-lifecycle',
  summary:
    'define a tiny guest from a template, clone it, start both (KVM, or TCG without /dev/kvm), prove they run, ' +
    'destroy and undefine both (timed)',
  options: { host: 'the pve host (default: the first of group pve)' },
  run: vmLifecycle,
});

registerDrill({
  name: 'zfs-degrade',
  summary:
    'zpool offline one vdev -> the pool is DEGRADED and the health check names that vdev -> zpool online -> ONLINE again (timed)',
  options: {
    host: 'the pve host (default: the first of group pve)',
    pool: "the pool (default: the host's first zfs_pools entry)",
    vdev: "the vdev to take offline (default: the pool's last device)",
  },
  run: zfsDegrade,
});
