/**
 * drift: a hand edit on a load balancer is found by the drift check, alerted on, and repaired by rerunning
 * one role on one host (issue 16; docs/drift.md).
 *
 *   1. check (`cairn drift` for the haproxy role): (lb1, haproxy) must match the site before anything breaks
 *   2. hand-edit haproxy.cfg on lb1 (a comment line: harmless to haproxy, but not what the role writes)
 *   3. check again; its textfile metrics go to the monitoring host's node-exporter folder (the lab's
 *      controller runs no node exporter, so the monitoring host's stands in for the jump host's), checked by
 *      `promtool check metrics` there before they replace the old file
 *   4. ConfigurationDrift{host=lb1, role=haproxy} must fire in Alertmanager (after alert_drift_for)
 *   5. repair: `cairn play site.yaml --roles haproxy -l lb1`, check again, export again
 *   6. the alert must resolve
 * The timing targets and the Alertmanager/sink polling are the alert drills' (runAlertDrill). At the end the
 * drill removes its metrics file, so DriftCheckNotRun does not fire hours later in the lab.
 */
import { CairnError, inputError } from '../../core/util/errors.js';
import { renderDriftMetrics, totalChanges, type DriftReport } from '../../app/report/drift.js';
import { quote } from '../../core/transport/quote.js';
import { monitoringOf, parsePromDuration, runAlertDrill, type Fault } from './monitoring.js';
import { registerDrill } from './registry.js';
import { hostSettings } from './settings.js';
import type { DrillContext } from './types.js';

const METRICS_FILE = 'cairn-drift.prom';

function cell(report: DriftReport, host: string, role: string): number | undefined {
  return report.changes.get(host)?.get(role);
}

/** Put the metrics into `dir` on `host`: a new temp file, checked by promtool, renamed over the old one. */
async function exportMetrics(ctx: DrillContext, host: string, dir: string, text: string): Promise<void> {
  const target = `${dir}/${METRICS_FILE}`;
  const script = [
    'set -e',
    'umask 022',
    `tmp=$(mktemp -- ${quote(`${dir}/.${METRICS_FILE}.XXXXXX`)})`,
    'trap \'rm -f -- "$tmp"\' EXIT',
    'cat > "$tmp"',
    'chmod 0644 -- "$tmp"',
    'promtool check metrics < "$tmp"',
    `mv -f -- "$tmp" ${quote(target)}`,
    'trap - EXIT',
  ].join('\n');
  const res = await ctx.exec(host, script, { stdin: text, timeoutMs: 60_000 });
  if (res.code !== 0)
    throw new CairnError(
      `host ${host}: cannot install the drift metrics in ${dir}: ${(res.stderr || res.stdout).trim() || `exit ${res.code}`}`,
      { kind: 'runtime' },
    );
}

registerDrill({
  name: 'drift',
  summary:
    'hand-edit haproxy.cfg on a load balancer -> cairn drift finds it and ConfigurationDrift fires; rerun the haproxy role there -> it resolves',
  options: {
    host: 'the load balancer to edit (default: the first host of prometheus_haproxy_group, lb)',
    playbook: 'the site playbook (default site.yaml)',
    timeout: 'seconds to wait for the alert (default: alert_drift_for + scrape + evaluation + 70)',
    poll: 'seconds between questions to Alertmanager (default 1)',
  },
  async run(ctx) {
    const mon = monitoringOf(ctx);
    const monSettings = hostSettings(ctx, mon.server, 'prometheus');
    const lbGroup = String(monSettings.prometheus_haproxy_group ?? 'lb');
    const host = ctx.options.host ?? ctx.inventory.select(lbGroup)[0];
    if (host === undefined || !ctx.inventory.hosts.has(host))
      throw inputError(`no load balancer to edit (group "${lbGroup}" is empty); pass --set host=NAME`);
    const playbook = ctx.options.playbook ?? 'site.yaml';
    const role = 'haproxy';
    const hs = hostSettings(ctx, host, role);
    const config = String(hs.haproxy_config_path);
    const textfileDir = String(monSettings.node_exporter_textfile_dir);
    let forS: number;
    try {
      forS = parsePromDuration(String(monSettings.alert_drift_for));
    } catch (err) {
      throw inputError(`host ${mon.server}: alert_drift_for: ${err instanceof Error ? err.message : String(err)}`);
    }
    const measured: Record<string, number | string> = { host, role };
    // The check covers the role on every host it runs on (as the hourly check would for that role).
    const check = async (when: string): Promise<DriftReport> => {
      const t = performance.now();
      const report = await ctx.drift(playbook, { roles: [role] });
      measured[`check_${when}_s`] = Math.round((performance.now() - t) / 100) / 10;
      if (report.unreachable.size)
        throw new CairnError(`drift check (${when}): unreachable: ${[...report.unreachable].join(', ')}`, {
          kind: 'runtime',
        });
      ctx.log(
        `drift check (${when}): ${totalChanges(report)} predicted change(s); ${host} ${role}: ${cell(report, host, role) ?? 'not run'}`,
      );
      return report;
    };

    const before = await check('before');
    if (cell(before, host, role) === undefined)
      throw inputError(`${playbook} does not run the ${role} role on ${host}`);
    if (cell(before, host, role) !== 0)
      throw inputError(
        `${host} already drifts in ${role} before the drill: repair it first (cairn play ${playbook} --roles ${role} -l ${host})`,
      );
    await exportMetrics(ctx, mon.server, textfileDir, renderDriftMetrics(before));

    const edit = `# hand edit by the drift drill at ${new Date().toISOString()}`;
    const fault: Fault = {
      what: `a hand edit of ${config} on ${host}`,
      alertname: 'ConfigurationDrift',
      labels: { host, role },
      forS,
      source: 'issue 16: drift for more than alert_drift_for is a warning',
      breakIt: async () => {
        const res = await ctx.exec(host, `printf '%s\\n' ${quote(edit)} >> ${quote(config)}`, { timeoutMs: 30_000 });
        if (res.code !== 0)
          throw new CairnError(`host ${host}: cannot edit ${config}: ${res.stderr.trim()}`, { kind: 'runtime' });
        const found = await check('after-edit');
        measured.predicted_changes = cell(found, host, role) ?? 0;
        if (!cell(found, host, role))
          throw new CairnError(`drift check did not find the hand edit of ${config} on ${host}`, { kind: 'runtime' });
        await exportMetrics(ctx, mon.server, textfileDir, renderDriftMetrics(found));
      },
      restore: async () => {
        const t = performance.now();
        const code = await ctx.play(playbook, { limit: host, roles: [role] });
        measured.repair_s = Math.round((performance.now() - t) / 100) / 10;
        if (code !== 0)
          throw new CairnError(`cairn play ${playbook} --roles ${role} -l ${host} exited ${code}`, { kind: 'runtime' });
        const after = await check('after-repair');
        if (cell(after, host, role) !== 0)
          throw new CairnError(`${host} still drifts in ${role} after the repair`, { kind: 'runtime' });
        await exportMetrics(ctx, mon.server, textfileDir, renderDriftMetrics(after));
      },
    };
    try {
      const outcome = await runAlertDrill(ctx, mon, fault, measured);
      // runAlertDrill copies `measured` at its start; the check and repair times are filled in afterwards.
      return { ...outcome, measured: { ...outcome.measured, ...measured } };
    } finally {
      await ctx.exec(mon.server, `rm -f -- ${quote(`${textfileDir}/${METRICS_FILE}`)}`, { timeoutMs: 30_000 });
    }
  },
});
