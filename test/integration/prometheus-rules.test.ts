/**
 * The prometheus role's alert rules and their unit tests, rendered as the role renders them for the example
 * inventory's monitoring host (mon1), checked by the real promtool (`promtool check rules`, `promtool test
 * rules`) here as the role's own validate and verify do on the monitoring host; and a `cairn drift
 * --metrics` textfile parses with `promtool check metrics`. promtool comes from Debian's prometheus package
 * (scripts/test-prereqs.sh installs it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EventBus, now } from '../../runner/core/engine/events.js';
import { lazyVars } from '../../runner/core/engine/lazy-vars.js';
import { DriftCollector, renderDriftMetrics } from '../../runner/app/report/drift.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { builtinRolesDir, sharedTemplatesDir } from '../../runner/core/util/paths.js';
import { createTemplater } from '../../runner/core/template/index.js';
import { layerVars } from '../../runner/core/util/vars.js';
import { parse, stringify } from 'yaml';
import { repoRoot } from '../helpers/cli.js';
import { drillsDue, parseSchedule, renderDrillMetrics } from '../../runner/features/drills/schedule.js';

const PROMTOOL = '/usr/bin/promtool';
if (!existsSync(PROMTOOL))
  throw new Error('promtool is not installed: apt-get install -y prometheus (scripts/test-prereqs.sh does it)');

const work = mkdtempSync(join(tmpdir(), 'cairn-promtool-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function promtool(args: string[], input?: string) {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', input, timeout: 120_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function renderForMon1(template: string, extra: Record<string, unknown> = {}): string {
  const role = join(builtinRolesDir(), 'prometheus');
  const inventory = loadInventory(join(repoRoot, 'inventories', 'example', 'hosts.yaml'));
  const defaults = parse(readFileSync(join(role, 'defaults.yaml'), 'utf8')) as Record<string, unknown>;
  const templater = createTemplater({ partialsDirs: [sharedTemplatesDir()] });
  const vars = lazyVars(layerVars(defaults, { ...inventory.hostVars('mon1'), ...extra }), (t, context) =>
    templater.renderValue(t, context, { file: template }),
  );
  return templater.renderFile(join(role, 'templates', template), vars);
}

/** The rendered rule tests with only the groups whose name starts with `prefix` (one promtool run in seconds). */
function testsOnly(rulesFile: string, prefix: string): string {
  const all = parse(renderForMon1('alert-rules.test.yml.hbs')) as { tests: { name: string }[] } & Record<
    string,
    unknown
  >;
  return stringify({
    ...all,
    rule_files: [rulesFile],
    tests: all.tests.filter((t) => t.name.startsWith(prefix)),
  });
}

// promtool evaluates every rule at every step of hours of series: on a loaded machine that takes minutes.
describe("the prometheus role's alert rules under promtool", { timeout: 300_000 }, () => {
  it("pass promtool check rules and the role's own rule unit tests, drift rules included", () => {
    const rules = join(work, 'cairn-alerts.yml');
    writeFileSync(rules, renderForMon1('alert-rules.yml.hbs'));
    expect(readFileSync(rules, 'utf8')).toContain('alert: ConfigurationDrift');
    const checked = promtool(['check', 'rules', rules]);
    expect(checked.code, checked.out).toBe(0);
    const tests = join(work, 'cairn-alerts.test.yml');
    writeFileSync(
      tests,
      renderForMon1('alert-rules.test.yml.hbs').replace('/etc/prometheus/rules/cairn-alerts.yml', rules),
    );
    expect(readFileSync(tests, 'utf8')).toContain('alertname: DriftCheckNotRun');
    expect(readFileSync(tests, 'utf8')).toContain('alertname: DrillScheduleNotExported');
    const tested = promtool(['test', 'rules', tests]);
    expect(tested.out).toMatch(/SUCCESS/);
    expect(tested.code, tested.out).toBe(0);
  });

  it('a failing expectation fails promtool test rules (the tests can fail)', () => {
    const rules = join(work, 'cairn-alerts.yml');
    writeFileSync(
      rules,
      renderForMon1('alert-rules.yml.hbs').replace(
        'max by (host, role) (cairn_drift_changes) > 0',
        'max by (host, role) (cairn_drift_changes) > 1',
      ),
    );
    const tests = join(work, 'broken.test.yml');
    writeFileSync(
      tests,
      renderForMon1('alert-rules.test.yml.hbs').replace('/etc/prometheus/rules/cairn-alerts.yml', rules),
    );
    const tested = promtool(['test', 'rules', tests]);
    expect(tested.code).not.toBe(0);
    expect(tested.out).toContain('ConfigurationDrift');
  });

  it("document 003's P0 and P2 tiers: the boundary tests fail when the rule's for: or threshold is wrong", () => {
    const good = renderForMon1('alert-rules.yml.hbs');
    const cpuFor = 'for: 5m\n        labels: {severity: P0, tier: P0}';
    const latencyAbove = '(haproxy_backend_total_time_average_seconds) > 200';
    expect(good).toContain(cpuFor);
    expect(good).toContain(latencyAbove);
    const run = (rulesText: string, prefix: string) => {
      const rules = join(work, `p-${prefix.replace(/\W/g, '')}-${Math.random().toString(36).slice(2)}.yml`);
      writeFileSync(rules, rulesText);
      const tests = `${rules}.test.yml`;
      const text = testsOnly(rules, prefix);
      writeFileSync(tests, text);
      return { ...promtool(['test', 'rules', tests]), text };
    };
    // The real rules pass their boundary tests (4 min above: quiet; 6 min: firing; 200 ms exactly: quiet).
    const p0 = run(good, 'P0 boundaries');
    expect(p0.text).toContain('eval_time: 15m');
    expect(p0.code, p0.out).toBe(0);
    const p2 = run(good, 'P2 boundaries');
    expect(p2.code, p2.out).toBe(0);
    // for: 3m would fire after 4 minutes above: the 15m expectation catches it.
    const shortFor = run(good.replace(cpuFor, cpuFor.replace('5m', '3m')), 'P0 boundaries');
    expect(shortFor.code).not.toBe(0);
    expect(shortFor.out).toMatch(/time: 15m/);
    // A threshold of 89 % would page for the 90 % host.
    const lowCpu = run(good.replace('> 95\n', '> 89\n'), 'P0 boundaries');
    expect(lowCpu.code).not.toBe(0);
    expect(lowCpu.out).toContain('instance="h2"');
    // >= instead of > fires for the backend at exactly 200 ms.
    const atLimit = run(good.replace(latencyAbove, latencyAbove.replace('>', '>=')), 'P2 boundaries');
    expect(atLimit.code).not.toBe(0);
    expect(atLimit.out).toContain('proxy="api"');
  });

  it('DrillOverdue fires on the due times cairn drill --due --metrics writes (calendar months)', () => {
    // A monthly drill passed at the Unix epoch is due on 1970-02-01 (January: 744 hours); a yearly one never
    // passed is due at once. The series are the metrics cairn renders, fed to the real rule file.
    const schedule = parseSchedule(
      'drills:\n  - {id: network-cut, drill: failover, every: monthly}\n  - {id: whole-system, drill: restore, every: yearly}\n',
      join(work, 'drills.yaml'),
    );
    const runs = [{ drill: 'failover', passed: true, options: {}, at: '1970-01-01T00:00:00.000Z', journal: 'x' }];
    const now = new Date('1970-01-02T00:00:00.000Z');
    const metrics = renderDrillMetrics(drillsDue(schedule, runs, now), now);
    expect(promtool(['check', 'metrics'], metrics).code).toBe(0);
    const series = metrics
      .split('\n')
      .filter((l) => l.startsWith('cairn_drill_next_due_timestamp_seconds{'))
      .map((l) => {
        const [name, value] = l.split(/ (?=\S+$)/);
        return { series: name!.replace('{', '{job="node",instance="jump",'), values: `${value}x800` };
      });
    expect(series.map((s) => s.values)).toEqual([`${744 * 3600}x800`, '0x800']);
    const rules = join(work, 'drill-rules.yml');
    writeFileSync(rules, renderForMon1('alert-rules.yml.hbs'));
    const expected = (ids: string[]) =>
      ids.map((id) => ({
        exp_labels: {
          id,
          drill: id === 'network-cut' ? 'failover' : 'restore',
          every: id === 'network-cut' ? 'monthly' : 'yearly',
          severity: 'warning',
          tier: 'drills',
        },
        exp_annotations: {
          summary:
            `drill ${id} (cairn drill ${id === 'network-cut' ? 'failover' : 'restore'}, ` +
            `${id === 'network-cut' ? 'monthly' : 'yearly'}) is overdue: not passed within its period (cairn drill --due)`,
        },
      }));
    const tests = join(work, 'drill-rules.test.yml');
    writeFileSync(
      tests,
      stringify({
        rule_files: [rules],
        evaluation_interval: '1h',
        tests: [
          {
            interval: '1h',
            input_series: series,
            alert_rule_test: [
              { eval_time: '743h', alertname: 'DrillOverdue', exp_alerts: expected(['whole-system']) },
              { eval_time: '745h', alertname: 'DrillOverdue', exp_alerts: expected(['network-cut', 'whole-system']) },
            ],
          },
        ],
      }),
    );
    const tested = promtool(['test', 'rules', tests]);
    expect(tested.code, tested.out).toBe(0);
  });

  it("cairn drift's textfile metrics parse with promtool check metrics", () => {
    const bus = new EventBus();
    const collector = new DriftCollector(bus);
    const task = (name: string, role: string) => ({ name, role, module: 'template', location: 'x:1:1' });
    bus.emit({
      type: 'task_result',
      time: now(),
      host: 'lb1',
      task: task('haproxy.cfg', 'haproxy'),
      status: 'changed',
      durationMs: 1,
    });
    bus.emit({
      type: 'task_result',
      time: now(),
      host: 'lb2',
      task: task('haproxy.cfg', 'haproxy'),
      status: 'ok',
      durationMs: 1,
    });
    bus.emit({ type: 'host_unreachable', time: now(), host: 'web"1', msg: 'refused' });
    const text = renderDriftMetrics(collector.finish(['lb1', 'lb2', 'web"1']));
    expect(text).toContain('cairn_drift_changes{host="lb1",role="haproxy"} 1');
    expect(text).toContain('cairn_drift_unreachable{host="web\\"1"} 1');
    const checked = promtool(['check', 'metrics'], text);
    expect(checked.code, checked.out).toBe(0);
  });

  const inventory = loadInventory(join(repoRoot, 'inventories', 'example', 'hosts.yaml'));
  it('with blackbox targets, prometheus.yml (probes through the local exporter) passes promtool check config', () => {
    const config = join(work, 'prometheus.yml');
    writeFileSync(
      config,
      renderForMon1('prometheus.yml.hbs', {
        prometheus_blackbox_targets: ['https://10.77.0.10/'],
        hostvars: Object.fromEntries([...inventory.hosts.keys()].map((h) => [h, inventory.hostVars(h)])),
      }).replace(/\/etc\/prometheus\/rules\/\*\.yml/, join(work, 'no-rules', '*.yml')),
    );
    const text = readFileSync(config, 'utf8');
    expect(text).toContain('job_name: blackbox');
    expect(text).toContain('- "https://10.77.0.10/"');
    expect(text).toContain('replacement: "127.0.0.1:9115"');
    const checked = promtool(['check', 'config', config]);
    expect(checked.code, checked.out + text).toBe(0);
  });
});
