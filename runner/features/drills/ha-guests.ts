/**
 * Drills of the HA guest layer (roles/ha_cluster; issue 18, document 004's cluster acceptance):
 *
 * - vm-migrate: live-migrate a running HA guest to another node by cairn command (`crm resource move`, which makes
 *   pacemaker run VirtualDomain's migrate_to/migrate_from: `virsh migrate --live` over SSH). The guest's ticker
 *   (./tiny-guest.ts) proves it never stopped: its counter goes on from where it was on the old node instead of
 *   starting again at 0000. The move constraint is cleared afterwards (stickiness keeps the guest where it is).
 * - node-poweroff: cut the power of the node running an HA guest (the lab's power cut). The cluster must fence
 *   that node (its log shows the fence before the guest's start elsewhere), start the guest on another node within
 *   the target (< 120 s, document 000), and never run it on two nodes (a poll of every reachable node, and the
 *   dead node's serial log last written before the restart). The node is powered on again (by the fence's reboot,
 *   or by the drill) and the cluster is clean: every member online, no failed actions.
 *
 * Both need the guest's ticker boot sector (`boot: ticker` in kvm_guests) and, for node-poweroff, the lab's power.
 */
import { inputError } from '../../core/util/errors.js';
import { argv, quote } from '../../core/transport/quote.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import { tickerTicks } from './tiny-guest.js';
import type { DrillContext, DrillOutcome } from './types.js';
import { verdict } from './verdict.js';

const seconds = (ms: number): number => Math.round(ms / 10) / 100;
/** Document 000: a standby takes over in under 120 s. */
const RESTART_TARGET_S = 120;

interface GuestSpec {
  name: string;
  nodes: string[];
}

/** The HA guest to drill (--set guest=NAME, else the first HA guest of kvm_guests) and the cluster nodes. */
function guestSpec(ctx: DrillContext): GuestSpec {
  const nodes = ctx.inventory.select('pve');
  if (nodes.length < 2) throw inputError('the HA drills need at least two hosts in group pve');
  const guests = ctx.hostVars(nodes[0]!).kvm_guests;
  const list = Array.isArray(guests) ? (guests as Array<Record<string, unknown>>) : [];
  const ha = list.filter((g) => g.ha !== false && typeof g.name === 'string');
  const wanted = ctx.options.guest;
  const guest = wanted === undefined ? ha[0] : ha.find((g) => g.name === wanted);
  if (!guest)
    throw inputError(
      wanted ? `--set guest=${wanted}: no HA guest of that name in kvm_guests` : 'no HA guest in kvm_guests',
    );
  const name = String(guest.name);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name))
    throw inputError(`guest name ${JSON.stringify(name)} is not usable`);
  return { name, nodes };
}

const resource = (guest: string): string => `guest-${guest}`;
const serialPath = (guest: string): string => `/var/log/libvirt/qemu/${guest}.serial`;
const marker = (guest: string): string => `cairn ${guest}`;

/** Where pacemaker runs the guest, asked on `via` (undefined: stopped or unknown). */
async function locate(ctx: DrillContext, via: string, guest: string): Promise<string[]> {
  const res = await ctx.exec(via, `crm_resource --locate --resource ${quote(resource(guest))} 2>/dev/null; true`);
  return [...res.stdout.matchAll(/is running on: (\S+)/g)].map((m) => m[1]!);
}

/** The counter values of the guest's ticker in a node's serial log (empty when the node does not answer). */
async function ticksOn(ctx: DrillContext, node: string, guest: string): Promise<number[]> {
  const res = await ctx
    .exec(node, `tail -n 400 -- ${quote(serialPath(guest))} 2>/dev/null; true`, { timeoutMs: 10_000 })
    .catch(() => undefined);
  return res ? tickerTicks(res.stdout, marker(guest)) : [];
}

/** The most a drill reads of what a serial log gained: a minute of ticks is ~3 KiB. */
const SERIAL_READ_MAX = 262_144;

/** Shell: the byte size of a serial log (0 when there is none). */
export function serialSizeCommand(path: string): string {
  return `stat -c %s -- ${quote(path)} 2>/dev/null || echo 0`;
}

/**
 * Shell: what a serial log gained after byte `offset` (its size before the guest came to the node). The domain's
 * serial file is opened with append='on' (roles/ha_cluster/templates/guest.xml.hbs), so a node's log still holds
 * the ticks of every earlier stay of the guest there; only the bytes after the offset are this stay's. A log now
 * shorter than the offset was recreated: all of it is new.
 */
export function serialSinceCommand(path: string, offset: number): string {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`serial log offset ${offset} is not a byte count`);
  const file = quote(path);
  return (
    `size=$(stat -c %s -- ${file} 2>/dev/null) || exit 0; off=${offset}; [ "$size" -ge "$off" ] || off=0; ` +
    `tail -c +$((off + 1)) -- ${file} | head -c ${SERIAL_READ_MAX}`
  );
}

/** The byte size of the guest's serial log on `node` (0 when there is none or the node does not answer). */
async function serialSize(ctx: DrillContext, node: string, guest: string): Promise<number> {
  const res = await ctx.exec(node, serialSizeCommand(serialPath(guest)), { timeoutMs: 10_000 }).catch(() => undefined);
  const size = Number(res?.stdout.trim());
  return Number.isSafeInteger(size) && size >= 0 ? size : 0;
}

/** The ticker's counter values the guest printed on `node` after byte `offset` of its serial log. */
async function ticksSince(ctx: DrillContext, node: string, guest: string, offset: number): Promise<number[]> {
  const res = await ctx
    .exec(node, serialSinceCommand(serialPath(guest), offset), { timeoutMs: 10_000 })
    .catch(() => undefined);
  return res ? tickerTicks(res.stdout, marker(guest)) : [];
}

/**
 * Reads the ticks of this stay until there are `atLeast` or 30 s have passed: the domain is "running" on its new
 * node as soon as qemu runs, and under TCG on a loaded machine its first line follows seconds later.
 */
async function ticksOfThisStay(
  ctx: DrillContext,
  node: string,
  guest: string,
  offset: number,
  atLeast: number,
): Promise<number[]> {
  let ticks = await ticksSince(ctx, node, guest, offset);
  if (ticks.length < atLeast)
    await pollUntil(
      async () => ((ticks = await ticksSince(ctx, node, guest, offset)).length >= atLeast ? true : undefined),
      {
        timeoutMs: 30_000,
        everyMs: 1_000,
        signal: ctx.signal,
      },
    );
  return ticks;
}

/**
 * Does crm_mon list a failure still standing? A failed resource action always counts. Pacemaker keeps a failed
 * fence in its fencing history after a later attempt succeeded and marks it so ("(a later attempt from NODE
 * succeeded)", crm_mon of pacemaker 2.1): the node was fenced, that entry is history, not an unclean cluster.
 */
export function unresolvedFailures(crmMon: string): boolean {
  if (/Failed Resource Actions/.test(crmMon)) return true;
  const fencing = /Failed Fencing Actions:\n((?:[ \t]+\S.*\n?)*)/.exec(crmMon)?.[1] ?? '';
  return fencing
    .split('\n')
    .filter((line) => line.trim())
    .some((line) => !/\(a later attempt (from \S+ )?succeeded\)/.test(line));
}

/** Is the guest's domain running on `node`? undefined when the node does not answer. */
async function runningOn(ctx: DrillContext, node: string, guest: string): Promise<boolean | undefined> {
  const res = await ctx
    .exec(node, `virsh -q domstate ${quote(guest)} 2>/dev/null || echo absent`, { timeoutMs: 5_000 })
    .catch(() => undefined);
  if (!res || res.code !== 0) return undefined;
  return res.stdout.trim() === 'running';
}

function otherNode(spec: GuestSpec, from: string, wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (!spec.nodes.includes(wanted)) throw inputError(`--set to=${wanted}: not a host of group pve`);
    if (wanted === from) throw inputError(`--set to=${wanted}: the guest already runs there`);
    return wanted;
  }
  return spec.nodes.find((n) => n !== from)!;
}

// ---------------------------------------------------------------------------------------------------------
// vm-migrate
// ---------------------------------------------------------------------------------------------------------

async function vmMigrate(ctx: DrillContext): Promise<DrillOutcome> {
  const spec = guestSpec(ctx);
  const via = spec.nodes[0]!;
  const target =
    'the guest moves live to another node by cairn command: its ticker counter continues (no restart), ' +
    'it runs on exactly one node afterwards; migration ≤ 60 s';
  const measured: Record<string, number | string> = { guest: spec.name };
  const where = await locate(ctx, via, spec.name);
  if (where.length !== 1)
    throw new Error(`${spec.name} is not running on exactly one node (${where.join(', ') || 'none'})`);
  const from = where[0]!;
  const to = otherNode(spec, from, ctx.options.to);
  measured.from = from;
  measured.to = to;
  const before = await ticksOn(ctx, from, spec.name);
  if (!before.length) throw new Error(`${from}: the guest's serial log shows no ticker (is kvm_guests boot: ticker?)`);
  // Where the target's log ends now: its ticks after this are the migrated guest's, not an earlier stay's.
  const targetOffset = await serialSize(ctx, to, spec.name);
  ctx.log(`${spec.name} runs on ${from} (tick ${before.at(-1)!.toString(16)}); migrating it live to ${to}`);
  const t0 = performance.now();
  let moved = false;
  try {
    const res = await ctx.exec(via, argv('crm', 'resource', 'move', resource(spec.name), to));
    if (res.code !== 0) throw new Error(`crm resource move failed: ${(res.stderr || res.stdout).trim()}`);
    moved = true;
    const arrived = await pollUntil(
      async () => {
        const now = await locate(ctx, via, spec.name);
        if (now.length !== 1 || now[0] !== to) return undefined;
        const migrating = await ctx.exec(
          via,
          `crm_mon -1 2>/dev/null | grep -c ${quote(`${resource(spec.name)}.*Migrating`)}; true`,
        );
        return migrating.stdout.trim() === '0' ? true : undefined;
      },
      { timeoutMs: 120_000, everyMs: 500, signal: ctx.signal },
    );
    measured.migration_s = arrived ? seconds(arrived.afterMs) : 'not within 120 s';
    // The last ticks on the old node and the first on the new one.
    const oldTicks = await ticksOn(ctx, from, spec.name);
    const thisStay = arrived ? await ticksOfThisStay(ctx, to, spec.name, targetOffset, 2) : [];
    const lastOld = oldTicks.at(-1) ?? -1;
    const firstNew = thisStay[0] ?? -1;
    measured.last_tick_old = lastOld;
    measured.first_tick_new = firstNew;
    measured.ticks_after = thisStay.length;
    const counts = await Promise.all(spec.nodes.map((n) => runningOn(ctx, n, spec.name)));
    measured.running_on = spec.nodes.filter((_, i) => counts[i] === true).join(',');
    const problems: string[] = [];
    if (!arrived) problems.push(`${spec.name} did not arrive on ${to} within 120 s`);
    if (firstNew < 0) problems.push(`no ticks of ${spec.name} on ${to} after the migration`);
    else if (firstNew > lastOld + 10 || firstNew < lastOld)
      problems.push(`the ticker jumped from ${lastOld} on ${from} to ${firstNew} on ${to} (not a live migration)`);
    if (thisStay.length < 2) problems.push(`the guest did not go on ticking on ${to}`);
    if (measured.running_on !== to)
      problems.push(`running on ${measured.running_on || 'no node'}, expected ${to} only`);
    if (typeof measured.migration_s === 'number' && measured.migration_s > 60)
      problems.push(`migration took ${measured.migration_s} s`);
    measured.total_s = seconds(performance.now() - t0);
    return verdict(
      problems,
      measured,
      target,
      () =>
        `${spec.name} moved live ${from} → ${to} in ${String(measured.migration_s)} s; ticker ${lastOld} → ${firstNew}`,
    );
  } finally {
    // The move constraint goes; stickiness keeps the guest where it now is.
    if (moved) await ctx.exec(via, argv('crm', 'resource', 'clear', resource(spec.name))).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------------------
// node-poweroff
// ---------------------------------------------------------------------------------------------------------

interface LogEvent {
  at: number;
  line: string;
}

/** Pacemaker's log lines since `sinceEpoch` on `node`, as [unix seconds, text]. */
async function clusterLog(ctx: DrillContext, node: string, sinceEpoch: number): Promise<LogEvent[]> {
  const res = await ctx.exec(
    node,
    `journalctl -q --no-pager -o short-unix --since @${Math.floor(sinceEpoch)} 2>/dev/null | ` +
      `grep -E 'pacemaker|fence|stonith|VirtualDomain|guest-' | tail -n 600; true`,
  );
  return res.stdout
    .split('\n')
    .map((line) => ({ at: Number(line.split(' ')[0]), line }))
    .filter((e) => Number.isFinite(e.at) && e.at > 0);
}

async function nodePoweroff(ctx: DrillContext): Promise<DrillOutcome> {
  const spec = guestSpec(ctx);
  if (!ctx.power)
    throw inputError("node-poweroff cuts a node's power: only the built-in lab gives drills that control");
  const target =
    `the guest runs on another node within ${RESTART_TARGET_S} s (document 000), the dead node was fenced before ` +
    'the restart (cluster log), the guest never ran on two nodes; the node is back and the cluster clean';
  const measured: Record<string, number | string> = { guest: spec.name };
  const first = await locate(ctx, spec.nodes[0]!, spec.name);
  if (first.length !== 1)
    throw new Error(`${spec.name} is not running on exactly one node (${first.join(', ') || 'none'})`);
  const victim = first[0]!;
  const survivors = spec.nodes.filter((n) => n !== victim);
  const via = survivors[0]!;
  measured.victim = victim;
  // Where each survivor's serial log ends before the cut: the restarted guest's ticks are the bytes after it.
  const offsets = new Map(
    await Promise.all(survivors.map(async (n) => [n, await serialSize(ctx, n, spec.name)] as const)),
  );
  const killedAt = Date.now() / 1000;
  ctx.log(`${spec.name} runs on ${victim}: cutting ${victim}'s power`);
  const t0 = performance.now();
  await ctx.power.kill(victim);
  let doubleRun = '';
  let restartedOn = '';
  const restarted = await pollUntil(
    async () => {
      const states = await Promise.all(spec.nodes.map((n) => runningOn(ctx, n, spec.name)));
      const running = spec.nodes.filter((_, i) => states[i] === true);
      if (running.length > 1) doubleRun = running.join('+');
      const elsewhere = running.filter((n) => n !== victim);
      if (elsewhere.length === 1) {
        restartedOn = elsewhere[0]!;
        return true;
      }
      return undefined;
    },
    { timeoutMs: 180_000, everyMs: 1_000, signal: ctx.signal, since: t0 },
  );
  measured.restart_s = restarted ? seconds(restarted.afterMs) : 'not within 180 s';
  measured.restarted_on = restartedOn || 'none';
  // The ticker on the new node: a fresh boot (counter from 0), and still going (at least two ticks). Only what
  // the node's log gained since the cut counts: the log keeps the ticks of earlier stays (counting those, while
  // the new boot had not printed yet, once reported 400 ticks: the read's line limit, not this boot).
  const bootTicks = restartedOn ? await ticksOfThisStay(ctx, restartedOn, spec.name, offsets.get(restartedOn)!, 2) : [];
  measured.ticks_since_restart = bootTicks.length;
  measured.first_tick_after_restart = bootTicks[0] ?? -1;

  // The order from the cluster log: the fence of the victim, then the guest's start elsewhere.
  // Every survivor's log: the fence may be run by one node for the DC on another.
  const log = (await Promise.all(survivors.map((n) => clusterLog(ctx, n, killedAt - 5)))).flat();
  log.sort((a, b) => a.at - b.at);
  const fence = log.find((e) => new RegExp(`Operation '(reboot|off)' targeting ${victim} .*: OK`).test(e.line));
  const start = log.find(
    (e) => e.line.includes(`Initiating start operation ${resource(spec.name)}_start_0`) && e.at >= killedAt,
  );
  measured.fenced_after_s = fence ? Math.round((fence.at - killedAt) * 10) / 10 : 'no fence in the log';
  measured.started_after_s = start ? Math.round((start.at - killedAt) * 10) / 10 : 'no start in the log';
  if (fence) measured.fence_log = fence.line.replace(/^\S+\s+/, '').slice(0, 200);
  if (start) measured.start_log = start.line.replace(/^\S+\s+/, '').slice(0, 200);

  // The node back: the fence's reboot powers it on; if it is still off, the drill does.
  const back = await pollUntil(
    async () =>
      (await ctx.exec(victim, 'true', { timeoutMs: 5_000 }).catch(() => undefined))?.code === 0 ? true : undefined,
    { timeoutMs: 5_000, everyMs: 2_000, signal: ctx.signal },
  );
  if (!back) {
    ctx.log(`${victim} is still off after its fence: powering it on`);
    await ctx.power.start(victim);
  }
  // Its serial log: last written before the guest started elsewhere.
  const mtime = await ctx.exec(victim, `stat -c %Y -- ${quote(serialPath(spec.name))} 2>/dev/null; true`);
  const lastWriteOld = Number(mtime.stdout.trim());
  if (Number.isFinite(lastWriteOld) && lastWriteOld > 0)
    measured.old_serial_last_write_after_kill_s = Math.round((lastWriteOld - killedAt) * 10) / 10;

  const clean = await pollUntil(
    async () => {
      const res = await ctx.exec(via, 'crm_mon -1 2>/dev/null', { timeoutMs: 15_000 }).catch(() => undefined);
      const text = res?.stdout ?? '';
      const online = /Online: \[ ([^\]]*) \]/.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
      const ok = spec.nodes.every((n) => online.includes(n)) && !unresolvedFailures(text);
      return ok ? text : undefined;
    },
    { timeoutMs: 180_000, everyMs: 3_000, signal: ctx.signal },
  );
  measured.cluster_clean_s = clean ? seconds(performance.now() - t0) : 'not within 180 s after the restart';
  const finalStates = await Promise.all(spec.nodes.map((n) => runningOn(ctx, n, spec.name)));
  measured.running_on = spec.nodes.filter((_, i) => finalStates[i] === true).join(',');

  const problems: string[] = [];
  if (!restarted) problems.push(`${spec.name} was not running on another node within 180 s`);
  else if (restarted.afterMs / 1000 > RESTART_TARGET_S) problems.push(`restart took ${measured.restart_s} s`);
  if (doubleRun) problems.push(`the guest ran on two nodes at once (${doubleRun})`);
  if (!fence) problems.push(`the cluster log on ${via} shows no successful fence of ${victim}`);
  if (fence && start && fence.at > start.at) problems.push('the guest was started before the fence completed');
  if (!start) problems.push(`the cluster log on ${via} shows no start of ${resource(spec.name)}`);
  if (bootTicks.length < 2) problems.push(`the guest does not tick on ${restartedOn || 'any node'}`);
  else if (bootTicks[0] !== 0)
    problems.push(`the guest on ${restartedOn} did not boot afresh (its first tick is ${bootTicks[0]}, not 0)`);
  if (start && Number.isFinite(lastWriteOld) && lastWriteOld > start.at)
    problems.push(`${victim}'s serial log was written after the restart elsewhere`);
  if (!clean) problems.push('the cluster is not clean (all members online, no failed actions)');
  if (measured.running_on.toString().split(',').filter(Boolean).length !== 1)
    problems.push(`running on ${String(measured.running_on) || 'no node'} at the end`);
  measured.total_s = seconds(performance.now() - t0);
  return verdict(
    problems,
    measured,
    target,
    () =>
      `${victim} powered off, fenced after ${String(measured.fenced_after_s)} s, ${spec.name} running on ` +
      `${restartedOn} after ${String(measured.restart_s)} s; cluster clean again`,
  );
}

registerDrill({
  name: 'vm-migrate',
  summary: 'live-migrate a running HA guest to another node (crm resource move); its ticker never restarts (timed)',
  options: {
    guest: 'the HA guest (default: the first of kvm_guests)',
    to: 'the target node (default: another pve host)',
  },
  run: vmMigrate,
});

registerDrill({
  name: 'node-poweroff',
  summary:
    'cut the power of the node running an HA guest: fenced, guest running elsewhere < 120 s, never on two nodes, ' +
    'node back and cluster clean (lab)',
  options: { guest: 'the HA guest (default: the first of kvm_guests)' },
  run: nodePoweroff,
});
