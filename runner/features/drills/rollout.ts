/**
 * Drills the rollout's acceptance phase needs beyond the areas' own:
 *
 * - load-probe: a bounded load probe against the VIP from the jump host — N concurrent probe loops
 *   (document 000's "200 concurrent users" at most), bounded in requests and time — reporting availability
 *   and P99 latency against document 000's acceptance (availability ≥ 99.95 %, P99 ≤ 800 ms).
 * - backup-age: the recovery point from the backups' age — on each protected host, the newest archive's
 *   time from `borgmatic list --last 1 --json`, against the backup policy (hourly: ≤ 3600 s). Document 000's
 *   RPO ≤ 5 s is for hot-standby replication; a backup's RPO is its age, and this measures exactly that.
 */
import { inputError } from '../../core/util/errors.js';
import { quote } from '../../core/transport/quote.js';
import { ProbeLoop, summarise, type ProbeSample } from './probe.js';
import { pollUntil } from '../../core/util/poll.js';
import { registerDrill } from './registry.js';
import type { DrillContext, DrillOutcome } from './types.js';

function intOption(ctx: DrillContext, key: string, fallback: number, min: number, max: number): number {
  const raw = ctx.options[key];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max)
    throw inputError(`--set ${key}=${raw}: expected a number from ${min} to ${max}`);
  return value;
}

/** The VIP's URL: --set url=, else http://<vip>:<port>/ with the VIP from --set vip= or vip_address. */
export function probeUrl(ctx: DrillContext): string {
  if (ctx.options.url) {
    if (!/^https?:\/\/[^\s/]+/.test(ctx.options.url))
      throw inputError(`--set url=${ctx.options.url}: expected an http:// URL`);
    return ctx.options.url;
  }
  const first = [...ctx.inventory.hosts.keys()][0];
  const vip = String(ctx.options.vip ?? (first ? ctx.hostVars(first).vip_address : undefined) ?? '');
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(vip))
    throw inputError(
      `load-probe: no VIP: set vip_address in the inventory, or --set vip=ADDRESS or --set url=URL (got "${vip}")`,
    );
  return `http://${vip}:${ctx.options.port ?? '80'}/`;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

registerDrill({
  name: 'load-probe',
  summary:
    'bounded load on the VIP from the jump host: availability and P99 latency against document 000 (≥ 99.95 %, ≤ 800 ms)',
  options: {
    concurrency: 'concurrent clients, 1–200 (default 20)',
    requests: 'total requests, at most (default 2000)',
    duration_s: 'seconds, at most (default 60)',
    interval_ms: 'pause of each client between its requests (default 20)',
    timeout_ms: 'a request not answered in this time fails (default 2000)',
    min_availability: 'pass threshold in % (default 99.95)',
    max_p99_ms: 'pass threshold in ms (default 800)',
    url: 'the URL (default http://<vip_address>/)',
    vip: 'the VIP (default vip_address)',
  },
  async run(ctx) {
    const concurrency = intOption(ctx, 'concurrency', 20, 1, 200);
    const requests = intOption(ctx, 'requests', 2000, 1, 200_000);
    const durationS = intOption(ctx, 'duration_s', 60, 1, 900);
    const intervalMs = intOption(ctx, 'interval_ms', 20, 0, 10_000);
    const timeoutMs = intOption(ctx, 'timeout_ms', 2000, 50, 60_000);
    const minAvailability = Number(ctx.options.min_availability ?? 99.95);
    const maxP99 = Number(ctx.options.max_p99_ms ?? 800);
    const url = probeUrl(ctx);
    // Exactly `requests` in all: the first (requests mod clients) clients send one more.
    const clients = Math.min(concurrency, requests);
    const shares = Array.from(
      { length: clients },
      (_, i) => Math.floor(requests / clients) + (i < requests % clients ? 1 : 0),
    );
    ctx.log(`${clients} clients, ${requests} requests in all against ${url}, ≤ ${durationS} s`);
    const started = performance.now();
    const loops = shares.map((share) => ({
      share,
      loop: new ProbeLoop({
        url,
        intervalMs,
        timeoutMs,
        maxRequests: share,
        maxDurationMs: durationS * 1000,
        signal: ctx.signal,
      }),
    }));
    // Each loop ends by itself at its bounds; wait for that (or Ctrl-C), then collect.
    await pollUntil(async () => (loops.every((l) => l.loop.count >= l.share) ? true : undefined), {
      since: started,
      timeoutMs: durationS * 1000,
      everyMs: 100,
      signal: ctx.signal,
    });
    const reports = await Promise.all(loops.map((l) => l.loop.stop()));
    const elapsedS = (performance.now() - started) / 1000;
    const samples: ProbeSample[] = reports.flatMap((r) => r.samples).sort((a, b) => a.atMs - b.atMs);
    const report = summarise(samples);
    const measured = {
      requests: report.sent,
      failed: report.failed,
      availability_pct: round(report.availabilityPct, 3),
      latency_p50_ms: round(report.latencyP50Ms, 1),
      latency_p99_ms: round(report.latencyP99Ms, 1),
      concurrency: clients,
      duration_s: round(elapsedS, 1),
      requests_per_s: round(report.sent / Math.max(elapsedS, 0.001), 1),
    };
    const firstError = samples.find((s) => !s.ok);
    const target = `availability ≥ ${minAvailability} %, P99 ≤ ${maxP99} ms (document 000)`;
    const passed = report.sent > 0 && measured.availability_pct >= minAvailability && measured.latency_p99_ms <= maxP99;
    const msg = `${report.sent} requests, ${report.failed} failed (${measured.availability_pct} %), P99 ${measured.latency_p99_ms} ms${firstError ? `; first failure: ${firstError.error ?? `HTTP ${firstError.status}`}` : ''}`;
    return { passed, measured, target, msg } satisfies DrillOutcome;
  },
});

// ---------------------------------------------------------------- backup-age

/**
 * The newest archive's time in `borgmatic list --last 1 --json` output: an array with one entry per
 * repository, each holding borg's `list --json` document ({"archives": [{"name", "start", "time", ...}]};
 * borg's documentation, "Frontends / Archive formats"). Undefined when there is no archive.
 */
export function newestArchiveTime(json: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return undefined;
  }
  const repos = Array.isArray(parsed) ? parsed : [parsed];
  let newest: string | undefined;
  for (const repo of repos) {
    const archives = (repo as { archives?: unknown }).archives;
    if (!Array.isArray(archives)) continue;
    for (const a of archives) {
      const time = (a as { time?: unknown; start?: unknown }).time ?? (a as { start?: unknown }).start;
      if (typeof time === 'string' && (newest === undefined || time > newest)) newest = time;
    }
  }
  return newest;
}

registerDrill({
  name: 'backup-age',
  summary:
    'recovery point from the backups: age of the newest archive on every protected host (borgmatic), against the policy',
  options: {
    hosts: 'comma-separated hosts (default: every host that has borgmatic and /etc/borgmatic/config.yaml)',
    max_age_s: 'pass threshold in seconds (default 3600: hourly backups, document 000)',
  },
  async run(ctx) {
    const maxAge = intOption(ctx, 'max_age_s', 3600, 1, 365 * 86400);
    const wanted = ctx.options.hosts
      ? ctx.options.hosts
          .split(',')
          .map((h) => h.trim())
          .filter(Boolean)
      : undefined;
    const candidates = wanted ?? [...ctx.inventory.hosts.keys()];
    for (const h of candidates)
      if (!ctx.inventory.hosts.has(h)) throw inputError(`backup-age: --set hosts: "${h}" is not in the inventory`);
    const ages: Record<string, number | string> = {};
    let worst = -1;
    const problems: string[] = [];
    // Hosts are asked at once: `borgmatic list` opens the repository over SSH, a few seconds each.
    const perHost = await Promise.all(
      candidates.map(async (host): Promise<{ host: string; age?: number; problem?: string; none?: boolean }> => {
        if (ctx.signal.aborted) return { host };
        const probe = await ctx.exec(host, 'command -v borgmatic >/dev/null && test -e /etc/borgmatic/config.yaml', {
          become: true,
        });
        if (probe.code !== 0) return wanted ? { host, problem: `${host}: no borgmatic configuration` } : { host };
        const listed = await ctx.exec(host, 'borgmatic list --last 1 --json', { become: true, timeoutMs: 120_000 });
        const time = listed.code === 0 ? newestArchiveTime(listed.stdout) : undefined;
        if (!time)
          return {
            host,
            none: true,
            problem: `${host}: no archive${listed.code !== 0 ? ` (borgmatic exit ${listed.code}: ${listed.stderr.trim().split('\n').pop()})` : ''}`,
          };
        // The archive time is the host's local time: compare it with the host's own clock.
        const clock = await ctx.exec(host, `date -d ${quote(time)} +%s && date +%s`);
        const [then, now] = clock.stdout.trim().split('\n').map(Number);
        if (clock.code !== 0 || !Number.isFinite(then) || !Number.isFinite(now))
          return { host, problem: `${host}: cannot read the archive time ${JSON.stringify(time)}` };
        return { host, age: Math.max(0, now! - then!) };
      }),
    );
    for (const r of perHost) {
      if (r.problem) problems.push(r.problem);
      if (r.none) ages[`age_s_${r.host}`] = 'none';
      if (r.age !== undefined) {
        ages[`age_s_${r.host}`] = r.age;
        worst = Math.max(worst, r.age);
      }
    }
    const checked = Object.keys(ages).length;
    if (!checked && !problems.length) problems.push('no host has borgmatic configured: nothing is backed up');
    const measured: Record<string, number | string> = { hosts: checked, ...ages };
    if (worst >= 0) measured.rpo_s = worst;
    const passed = problems.length === 0 && worst >= 0 && worst <= maxAge;
    return {
      passed,
      measured,
      target: `newest backup ≤ ${maxAge} s old on every protected host (RPO of the backups)`,
      msg: problems.length ? problems.join('; ') : `worst backup age ${worst} s`,
    };
  },
});
