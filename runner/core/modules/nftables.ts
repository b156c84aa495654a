/**
 * nft_ruleset: load an nftables ruleset so that it can never lock cairn out, then make it the one the host boots
 * with (`dest`, e.g. /etc/nftables.conf, which nftables.service loads).
 *
 * The order is what makes it safe:
 * 1. the rendered ruleset is checked with `nft -c` (in check mode too: a ruleset nft refuses fails the plan);
 * 2. the live ruleset is saved, and a rollback timer is armed ON THE HOST: a detached process (its own session,
 *    so neither a dropped connection nor sshd's end kills it) that restores the saved ruleset after
 *    `rollback_after` seconds unless it is cancelled;
 * 3. the new ruleset is loaded live (`nft -f` is one transaction: all or nothing);
 * 4. from this machine a NEW TCP connection to the host's SSH port must get the SSH banner (the next run can
 *    still get in; an established session may survive a ruleset that refuses new ones), then
 * 5. cairn's own connection confirms: a command over the same SSH connection, with a timeout, cancels the
 *    timer and only then writes `dest` (atomically, validated by `nft -c` again) and records what was loaded.
 * A ruleset that cuts the connection cannot confirm: the host puts the previous ruleset back by itself, and
 * `dest` still holds the previous one, so a reboot in the window boots the old rules too. A ruleset that
 * refuses new SSH connections is rolled back at once over the surviving connection.
 *
 * Drift: after a load the live ruleset (`nft -s -p list ruleset`, stateless, protocols by number) is recorded
 * in `state_dir`; a live ruleset that differs from that record (flushed, edited by hand) is planned as a reload.
 */
import { connect as netConnect } from 'node:net';
import { quote } from '../transport/quote.js';
import { attributeSchema, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import { planContentWrite, type FileWritePlan } from './file-write.js';
import {
  atomicWriteScript,
  failureText,
  parseSections,
  parseWriteResult,
  ProbeError,
  runScript,
  section,
} from './remote.js';
import type { Module, ModuleContext, Planned } from './types.js';

export interface NftRulesetArgs extends AttributeArgs {
  /** A template (roles' templates/ folder) or... */
  src?: string;
  /** ...the ruleset itself. */
  content?: string;
  /** The file the host boots with. */
  dest: string;
  /** Where the saved ruleset, the armed timer's pid and the record of the loaded ruleset live (root only). */
  state_dir?: string;
  /** Seconds until the host restores the previous ruleset by itself unless cairn confirms. */
  rollback_after?: number;
  /**
   * The table this ruleset owns, "family name" (e.g. "inet cairn"): drift is looked for in it alone, so rules
   * other software adds elsewhere (libvirt's NAT) are not drift. Unset: the whole ruleset.
   */
  table?: string;
  /** Check that a new TCP connection from this machine to the host's SSH port still gets in (default true). */
  probe_ssh?: boolean;
}

interface NftPlanState {
  file: Planned<FileWritePlan>;
  content: Buffer;
  stateDir: string;
  rollbackAfter: number;
}

const DEFAULT_STATE_DIR = '/var/lib/cairn/nft';
const DEFAULT_ROLLBACK_AFTER = 30;
/** The rollback timer's $0: how disarm recognises the process its pid file names. */
const TIMER_NAME = 'cairn-nft-rollback';
/** How long the banner probe may take: a dropped SYN never answers. */
const BANNER_TIMEOUT_MS = 4000;

/** Exit codes of the arm and confirm scripts (the atomic write's own are 70-77). */
const Exit = {
  stateDir: 80,
  pending: 81,
  invalid: 82,
  save: 83,
  arm: 84,
  load: 85,
  notArmed: 86,
  rolledBack: 87,
} as const;

function stateDirOf(args: NftRulesetArgs): string {
  return args.state_dir ?? DEFAULT_STATE_DIR;
}

/**
 * Shell that makes sure `$sd` is a directory owned by us and closed to everyone else (the saved ruleset and the
 * pid file live there; a directory someone else could write to would let them choose what disarm kills).
 */
function stateDirScript(stateDir: string): string {
  return [
    `sd=${quote(stateDir)}`,
    `mkdir -p -m 0700 -- "$sd" || exit ${Exit.stateDir}`,
    `[ -d "$sd" ] && [ ! -L "$sd" ] && [ "$(stat -c %u -- "$sd")" = "$(id -u)" ] || { echo "$sd is not a directory owned by $(id -un)" >&2; exit ${Exit.stateDir}; }`,
    `chmod 0700 -- "$sd" || exit ${Exit.stateDir}`,
  ].join('\n');
}

/** Shell that sets `pid` to the armed timer's pid when one is pending, else to ''; a stale pid file is removed. */
const PENDING_TIMER = [
  `pid=''`,
  `if [ -f "$sd/rollback.pid" ]; then`,
  `  pid=$(cat -- "$sd/rollback.pid")`,
  `  case "$pid" in ''|*[!0-9]*) pid='';; esac`,
  `  if [ -n "$pid" ] && ! tr '\\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- ${quote(` ${TIMER_NAME} `)}; then pid=''; fi`,
  `  [ -n "$pid" ] || rm -f -- "$sd/rollback.pid"`,
  `fi`,
].join('\n');

/**
 * Whether two stateless listings show the same rules. nft prints a one-element anonymous set as `{ 10.0.0.0/24 }`
 * after loading it from a file but as `10.0.0.0/24` once that listing is loaded back (a rollback restores the
 * saved listing: seen on the lab, nftables 1.0.6), so a set of one is read as its element on both sides.
 */
export function sameRuleset(a: string, b: string): boolean {
  const oneElementSet = /\{ ([^{},\s]+) \}/g;
  return a.replace(oneElementSet, '$1') === b.replace(oneElementSet, '$1');
}

/**
 * The stateless listing (no counter values) drift is judged on: the owned table, or the whole ruleset. Layer 4
 * protocols are listed by number (-p): by name, nft takes them from /etc/protocols, so the same rules list as
 * `{ 1, 58 }` on a host without netbase and as `{ icmp, ipv6-icmp }` once a later package installs it, which
 * read as drift and reloaded the firewall on the lab's pve hosts on the second site run. (A record written by an
 * older cairn, by name, differs once from this listing: one reload, then the record is by number.)
 */
function listCommand(table: string | undefined): string {
  if (table === undefined) return 'nft -s -p list ruleset';
  const [family, name] = table.split(' ');
  return `nft -s -p list table ${quote(family ?? '')} ${quote(name ?? '')}`;
}

/** The probe of check: dest, the live ruleset, cairn's record of what it loaded, a pending timer, nft -c. */
function probeScript(stateDir: string, table: string | undefined): string {
  return [
    `sd=${quote(stateDir)}`,
    `command -v nft >/dev/null 2>&1 || { echo "nft is not installed (package nftables)" >&2; exit 127; }`,
    section('live', `${listCommand(table)} 2>&1; echo "rc=$?"`),
    section('loaded', `if [ -f "$sd/loaded.list" ]; then cat -- "$sd/loaded.list"; else printf '%s' '::none::'; fi`),
    `if [ -d "$sd" ]; then ${PENDING_TIMER.split('\n').join('\n  ')}`,
    `else pid=''; fi`,
    section('pending', `printf '%s' "$pid"`),
    section('check', `out=$(nft -c -f /dev/stdin 2>&1); echo "rc=$?"; printf '%s\\n' "$out"`),
  ].join('\n');
}

/** Arm the timer and load the candidate (sent on stdin). Prints section 'armed' with the timer's pid. */
function armScript(stateDir: string, rollbackAfter: number, bytes: number): string {
  return [
    stateDirScript(stateDir),
    `umask 077`,
    PENDING_TIMER,
    `if [ -n "$pid" ]; then echo "a rollback timer (pid $pid) is pending: another apply has not been confirmed yet" >&2; exit ${Exit.pending}; fi`,
    `rm -f -- "$sd/candidate.nft" "$sd/rolled-back" "$sd/previous.nft.new" || exit ${Exit.save}`,
    // Created exclusively (noclobber), 0600 by the umask, before any content.
    `( set -C; cat > "$sd/candidate.nft" ) || exit ${Exit.save}`,
    `[ "$(wc -c < "$sd/candidate.nft")" -eq ${bytes} ] || { echo "the ruleset arrived incomplete" >&2; exit ${Exit.save}; }`,
    `out=$(nft -c -f "$sd/candidate.nft" 2>&1) || { printf '%s\\n' "$out" >&2; exit ${Exit.invalid}; }`,
    // The previous ruleset, restorable as a whole: flush, then exactly what was live.
    `{ echo 'flush ruleset'; nft list ruleset; } > "$sd/previous.nft.new" && mv -f -- "$sd/previous.nft.new" "$sd/previous.nft" || exit ${Exit.save}`,
    // Its own session (setsid -f), no descriptor of this connection: nothing that happens to the connection
    // reaches it. It writes its pid (atomically), sleeps, restores, and says so in rolled-back.
    `setsid -f /bin/sh -c 'echo $$ > "$1.new" && mv -f -- "$1.new" "$1"; sleep "$2"; nft -f "$3" && date +%s > "$4"; rm -f -- "$1"' ` +
      `${TIMER_NAME} "$sd/rollback.pid" ${rollbackAfter} "$sd/previous.nft" "$sd/rolled-back" </dev/null >/dev/null 2>&1 || exit ${Exit.arm}`,
    `i=0; while [ ! -s "$sd/rollback.pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done`,
    PENDING_TIMER,
    `[ -n "$pid" ] || { echo "the rollback timer did not start" >&2; exit ${Exit.arm}; }`,
    `if ! out=$(nft -f "$sd/candidate.nft" 2>&1); then`,
    `  kill -TERM "-$pid" 2>/dev/null; rm -f -- "$sd/rollback.pid"`,
    `  printf '%s\\n' "$out" >&2; exit ${Exit.load}`,
    `fi`,
    section('armed', `printf '%s' "$pid"`),
  ].join('\n');
}

/** Cancel the timer (it must still be pending and must not have fired), the shell prefix of confirm and undo. */
function disarmScript(stateDir: string): string {
  return [
    `sd=${quote(stateDir)}`,
    PENDING_TIMER,
    `if [ -z "$pid" ]; then`,
    `  if [ -f "$sd/rolled-back" ]; then exit ${Exit.rolledBack}; fi`,
    `  exit ${Exit.notArmed}`,
    `fi`,
    // The timer leads its own process group (setsid): the shell and its sleep end together.
    `kill -TERM "-$pid" 2>/dev/null; rm -f -- "$sd/rollback.pid"`,
    `if [ -f "$sd/rolled-back" ]; then exit ${Exit.rolledBack}; fi`,
  ].join('\n');
}

/** Resolves with whether a new TCP connection to address:port answers with an SSH banner within the timeout. */
function sshBannerAnswers(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: address, port });
    let received = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(BANNER_TIMEOUT_MS, () => finish(false));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\n')) finish(received.startsWith('SSH-'));
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

/**
 * Where cairn's next connection to this host goes: ansible_host:ansible_port, when cairn connects to it
 * directly. Through a jump host, or run locally, the probe would not test cairn's own path: undefined, with why.
 */
function directSshTarget(ctx: ModuleContext): { address: string; port: number } | { skip: string } {
  const vars = ctx.vars;
  const text = (value: unknown): string | undefined =>
    value === undefined || value === null || value === '' ? undefined : String(value as string | number);
  if (text(vars.ansible_connection) === 'local') return { skip: 'the host is this machine (connection local)' };
  if (text(vars.cairn_jump) !== undefined && !(Array.isArray(vars.cairn_jump) && vars.cairn_jump.length === 0))
    return { skip: 'cairn reaches the host through a jump host' };
  const address = text(vars.ansible_host) ?? text(vars.ansible_ssh_host) ?? ctx.host;
  const port = Number(text(vars.ansible_port) ?? text(vars.ansible_ssh_port) ?? '22');
  return { address, port };
}

export const nftRulesetModule: Module<NftRulesetArgs, NftPlanState> = {
  name: 'nft_ruleset',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['dest'],
    oneOf: [{ required: ['src'] }, { required: ['content'] }],
    properties: {
      src: { type: 'string', minLength: 1 },
      content: { type: 'string' },
      dest: { type: 'string', pattern: '^/' },
      state_dir: { type: 'string', pattern: '^/[^\\n]*$' },
      rollback_after: { type: 'integer', minimum: 5, maximum: 3600 },
      table: { type: 'string', pattern: '^(ip|ip6|inet|arp|bridge|netdev) [A-Za-z0-9_]+$' },
      probe_ssh: { type: 'boolean' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<NftPlanState>> {
    validateAttributeArgs(ctx, args);
    const text =
      args.src !== undefined
        ? ctx.renderTemplateFile(ctx.findLocalFile('templates', args.src), ctx.vars)
        : (args.content ?? '');
    const content = Buffer.from(text, 'utf8');
    const stateDir = stateDirOf(args);
    const rollbackAfter = args.rollback_after ?? DEFAULT_ROLLBACK_AFTER;
    const file = await planContentWrite(
      ctx,
      { dest: args.dest, mode: args.mode, owner: args.owner, group: args.group },
      content,
    );
    if (file.failed) return { changed: false, actions: [], failed: file.failed };
    const res = await runScript(ctx, probeScript(stateDir, args.table), { stdin: content });
    const state = { file, content, stateDir, rollbackAfter };
    // In check mode an earlier task (apt) may be about to install nftables: the plan says so, and apply checks.
    if (res.code === 127 && /nft is not installed/.test(res.stderr))
      return {
        changed: true,
        actions: [
          ...file.actions,
          'load the ruleset (nft is not installed yet: an earlier task must install nftables)',
        ],
        ...(file.diffs && file.changed ? { diffs: file.diffs } : {}),
        state,
        data: { dest: args.dest },
      };
    if (res.code !== 0) return { changed: false, actions: [], failed: `cannot inspect nftables: ${failureText(res)}` };
    let sections: Map<string, string>;
    try {
      sections = parseSections(res.stdout);
    } catch (err) {
      if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
      throw err;
    }
    const checkOut = sections.get('check') ?? '';
    const checkRc = /^rc=(\d+)/.exec(checkOut)?.[1];
    if (checkRc !== '0') {
      const detail = checkOut.split('\n').slice(1).join('\n').trim();
      return {
        changed: false,
        actions: [],
        failed: `nft -c refuses the ruleset for ${args.dest}; nothing was loaded or written:\n${detail}`,
      };
    }
    const pending = (sections.get('pending') ?? '').trim();
    if (pending !== '')
      return {
        changed: false,
        actions: [],
        failed: `a rollback timer (pid ${pending}) is pending in ${stateDir}: another apply has not been confirmed yet`,
      };
    const liveOut = sections.get('live') ?? '';
    const listed = liveOut.replace(/rc=\d+\n?$/, '');
    const listedOk = /rc=0\n?$/.test(liveOut);
    // A table that does not exist (yet) lists with an error; the whole ruleset always lists.
    if (!listedOk && args.table === undefined)
      return { changed: false, actions: [], failed: `nft list ruleset failed: ${listed.trim()}` };
    const live = listedOk ? listed : '::absent::';
    const loaded = sections.get('loaded') ?? '::none::';
    const actions: string[] = [];
    if (file.changed) actions.push(...file.actions);
    if (loaded === '::none::') actions.push('load the ruleset (cairn has not loaded one on this host)');
    else if (!sameRuleset(loaded, live))
      actions.push('reload the ruleset: the live one differs from what cairn loaded');
    else if (file.changed) actions.push('load the new ruleset');
    const changed = actions.length > 0;
    if (changed)
      actions.push(
        `loaded with a rollback in ${rollbackAfter} s unless this connection confirms${args.probe_ssh === false ? '' : ' (after a new SSH connection gets in)'}`,
      );
    return {
      changed,
      actions,
      ...(file.diffs && file.changed ? { diffs: file.diffs } : {}),
      state,
      data: { dest: args.dest },
    };
  },

  async apply(ctx, args, plan) {
    const data: Record<string, unknown> = { dest: args.dest };
    const state = plan.state;
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
    if (!plan.changed) return { changed: false, data };
    const { content, stateDir, rollbackAfter } = state;

    const armed = await runScript(ctx, armScript(stateDir, rollbackAfter, content.length), { stdin: content });
    if (armed.code !== 0) {
      const why: Record<number, string> = {
        [Exit.stateDir]: `cannot use ${stateDir}`,
        [Exit.pending]: 'refused',
        [Exit.invalid]: `nft -c refuses the ruleset for ${args.dest}; nothing was loaded or written`,
        [Exit.save]: `cannot save the candidate and the live ruleset in ${stateDir}`,
        [Exit.arm]: 'cannot arm the rollback timer; nothing was loaded',
        [Exit.load]: 'nft -f failed; the live ruleset is unchanged (one transaction) and the timer cancelled',
      };
      return {
        changed: false,
        failed: true,
        msg: `${why[armed.code] ?? `arming failed (exit ${armed.code})`}: ${failureText(armed)}`,
        data,
      };
    }
    const timerPid = (parseSections(armed.stdout).get('armed') ?? '').trim();
    data.rollback_pid = timerPid;
    const deadline = new Date(Date.now() + rollbackAfter * 1000).toISOString();

    // A new connection from here, as the next run will open one.
    if (args.probe_ssh !== false) {
      const target = directSshTarget(ctx);
      if ('skip' in target) data.ssh_probe = `not probed: ${target.skip}`;
      else if (await sshBannerAnswers(target.address, target.port)) {
        data.ssh_probe = `a new connection to ${target.address}:${target.port} got the SSH banner`;
      } else {
        const undo = await runScript(ctx, `${disarmScript(stateDir)}\nnft -f "$sd/previous.nft" || exit 88`, {
          timeoutMs: Math.min(10_000, (rollbackAfter * 1000) / 2),
        });
        const how =
          undo.code === 0
            ? 'rolled back now over the existing connection'
            : `the host restores the previous ruleset by itself by ${deadline} (rollback timer pid ${timerPid})`;
        return {
          changed: false,
          failed: true,
          msg:
            `the new ruleset refuses a new SSH connection from here to ${target.address}:${target.port} ` +
            `(no SSH banner within ${BANNER_TIMEOUT_MS} ms): ${how}; ${args.dest} was not written`,
          data: { ...data, rolled_back: true },
        };
      }
    }

    // The confirmation: over the same connection, before the timer fires.
    const fileState = state.file.state;
    const confirm = [
      disarmScript(stateDir),
      atomicWriteScript({
        dest: args.dest,
        ...(fileState?.owner !== undefined ? { owner: fileState.owner } : {}),
        ...(fileState?.group !== undefined ? { group: fileState.group } : {}),
        ...(fileState?.mode !== undefined ? { mode: fileState.mode } : {}),
        validate: 'nft -c -f %s',
        expectedBytes: content.length,
      }),
      `umask 077; ${listCommand(args.table)} > "$sd/loaded.list.new" && mv -f -- "$sd/loaded.list.new" "$sd/loaded.list" || exit 89`,
      `rm -f -- "$sd/candidate.nft"`,
    ].join('\n');
    const confirmTimeoutMs = Math.max(2000, Math.min(15_000, (rollbackAfter * 1000) / 2));
    const confirmed = await runScript(ctx, confirm, { stdin: content, timeoutMs: confirmTimeoutMs });
    if (confirmed.timedOut || confirmed.code === 255)
      return {
        changed: true,
        failed: true,
        msg:
          `cairn's connection did not confirm the new ruleset within ${confirmTimeoutMs} ms (cut by it?): the host ` +
          `restores the previous ruleset by itself by ${deadline} (rollback timer pid ${timerPid}); ${args.dest} was not written`,
        data: { ...data, rolled_back: true },
      };
    if (confirmed.code === Exit.rolledBack || confirmed.code === Exit.notArmed)
      return {
        changed: true,
        failed: true,
        msg: `the rollback timer fired before the confirmation: the previous ruleset is live again; ${args.dest} was not written`,
        data: { ...data, rolled_back: true },
      };
    if (confirmed.code !== 0) {
      const outcome = parseWriteResult(confirmed, args.dest, content.toString('utf8'));
      return {
        changed: true,
        failed: true,
        msg: `the new ruleset is live and confirmed, but ${args.dest} was not updated: ${outcome.error ?? failureText(confirmed)}`,
        data,
      };
    }
    return { changed: true, ...(plan.diffs ? { diffs: plan.diffs } : {}), data: { ...data, confirmed: true } };
  },
};
