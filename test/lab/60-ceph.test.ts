/**
 * ceph on the lab's pve hosts (issue 7): a cluster bootstrapped from nothing by playbooks/ceph.yaml (3
 * monitors in quorum, 2 managers, one file-backed BlueStore OSD per node, pool rbd with size 3 / min_size 2
 * over hosts), a second run that changes nothing, drift (a pool's size, a stopped manager) predicted exactly
 * by --check and repaired by a run, a bare node (packages purged, its OSD purged from the cluster) joining
 * again with a rebuilt monitor and a new OSD (what adding a node does), the osd-down drill, and the daemons'
 * memory. Everything through the built CLI against the real containers.
 * Other engineers share the lab: a run refused because another cairn run holds the inventory's lock waits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { changedKeys, jsonEvents, taskResults } from '../helpers/cli.js';
import {
  drillResult,
  ensureLab,
  failedVerifies,
  labCairn,
  labJson,
  labUnavailable,
  onHost,
  verifyResults,
  type LabJsonOptions,
  type VerifyResult,
} from '../helpers/lab.js';

const PLAYBOOK = 'playbooks/ceph.yaml';
const NODES = ['pve1', 'pve2', 'pve3'];
const CLUSTER_CHECK = 'cluster health, quorum, OSDs, PGs and pools';
const POOLS_TASK = 'CRUSH rule and pools with the wanted replication';
const SETTLE_TASK = 'Wait for the cluster to settle (HEALTH_OK, every PG active+clean)';
const TEST_TIMEOUT_MS = 900_000;

/** `ms` of a --json run counts from when the run got the lock (its own run_start..run_end). */
const RUN: LabJsonOptions = { timeoutMs: 420_000, lockWaitMs: 600_000, ms: 'run' };
/** Scripts here wait for the cluster (ceph osd purge, apt-get purge): more time than the default. */
const SSH = { timeoutMs: 120_000 };
/** Failed verifications as "host check: msg", the shape this file has always shown them in. */
const failedLine = (v: VerifyResult) => `${v.host} ${v.check}: ${v.msg}`;

/** The cluster verdict the verification registered (ceph_health's data). */
function clusterVerdict(events: RunEvent[]): Record<string, unknown> {
  const result = verifyResults(events).find((v) => v.check === CLUSTER_CHECK);
  if (!result?.data) throw new Error('no cluster verification in the run');
  return result.data;
}

// Stop every Ceph daemon of a node and remove what the role made: the node as before the first run (the
// packages stay installed, as on a host that had them before).
const WIPE = [
  'systemctl stop ceph.target ceph-mon.target ceph-mgr.target ceph-osd.target 2>/dev/null',
  'for u in $(systemctl list-units --all --plain --no-legend "ceph-mon@*" "ceph-mgr@*" "ceph-osd@*" | awk \'{print $1}\'); do systemctl stop "$u"; done',
  'rm -f /etc/systemd/system/ceph-mon.target.wants/ceph-mon@* /etc/systemd/system/ceph-mgr.target.wants/ceph-mgr@* /etc/systemd/system/ceph-osd.target.wants/ceph-osd@*',
  'systemctl daemon-reload; systemctl reset-failed',
  'rm -rf /var/lib/ceph/mon/* /var/lib/ceph/mgr/* /var/lib/ceph/osd/* /var/lib/ceph/osd-specs /var/lib/ceph/tmp/* /var/lib/ceph/bootstrap-osd/* /etc/ceph/ceph.conf /etc/ceph/ceph.client.admin.keyring',
  'if pgrep -x ceph-mon >/dev/null || pgrep -x ceph-mgr >/dev/null || pgrep -x ceph-osd >/dev/null; then echo "ceph daemons still running" >&2; exit 1; fi',
].join('\n');

/** Measured numbers, printed at the end for the issue note. */
const measured: string[] = [];

const unavailable = labUnavailable();

describe.skipIf(unavailable)(`ceph on the lab's pve hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    await ensureLab({ withPve: true });
  });

  afterAll(() => {
    if (measured.length) console.log(`ceph on the lab, measured:\n  ${measured.join('\n  ')}`);
  });

  it(
    'bootstraps a cluster from nothing: 3 monitors in quorum, 2 managers, an OSD per node, HEALTH_OK',
    async () => {
      await Promise.all(NODES.map((n) => onHost(n, WIPE, SSH)));
      // --check on nodes with no cluster yet: predicted, nothing fails (no quorum to wait for, no pools to read).
      const fresh = await labJson(['play', PLAYBOOK, '--check'], RUN);
      expect(fresh.res.code, fresh.res.stderr + fresh.res.stdout.slice(-2000)).toBe(0);
      expect(
        taskResults(fresh.events)
          .filter((e) => e.status === 'failed')
          .map((e) => `${e.host} ${e.task.name}: ${e.msg}`),
      ).toEqual([]);
      const predicted = changedKeys(fresh.events);
      for (const node of NODES) expect(predicted).toContain(`${node} | ceph : Monitor store (ceph-mon --mkfs)`);
      expect(predicted).toContain(`pve1 | ceph : ${POOLS_TASK}`);

      const { res, events, ms } = await labJson(['play', PLAYBOOK], RUN);
      expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(0);
      expect(failedVerifies(events, failedLine)).toEqual([]);
      const changed = changedKeys(events);
      for (const node of NODES) {
        expect(changed).toContain(`${node} | ceph : Monitor store (ceph-mon --mkfs)`);
        expect(changed).toContain(
          `${node} | ceph : OSDs of this host (ceph osd new, ceph-osd --mkfs on a sparse file) [{"name":"osd-a","size":"2G"}]`,
        );
      }
      expect(changed.filter((k) => k.endsWith('ceph : Manager running and enabled'))).toEqual([
        'pve1 | ceph : Manager running and enabled',
        'pve2 | ceph : Manager running and enabled',
      ]);
      // Daemons started after ceph.conf was written: the handler finds nothing to restart.
      expect(changed.filter((k) => k.includes('(handler)'))).toEqual([]);

      const verdict = clusterVerdict(events);
      expect(verdict.health).toBe('HEALTH_OK');
      expect(verdict.quorum).toEqual(NODES);
      expect(verdict.osds).toMatchObject({ total: 3, up: 3, in: 3 });
      expect(verdict.mgr_available).toBe(true);
      expect(verdict.mgr_standbys).toBe(1);
      // Document 004's networks, judged by verify from `ceph osd dump`: the lab has both on the service subnet.
      const networks = verdict.osd_networks as Array<{ up: boolean; public: string[]; cluster: string[] }>;
      expect(networks.filter((o) => o.up)).toHaveLength(3);
      for (const osd of networks)
        expect([...osd.public, ...osd.cluster].filter((ip) => !ip.startsWith('10.77.0.'))).toEqual([]);
      const pools = verdict.pools as Array<Record<string, unknown>>;
      expect(pools.find((p) => p.name === 'rbd')).toMatchObject({
        size: 3,
        min_size: 2,
        crush_rule: 'replicated_host',
        failure_domain: 'host',
        applications: ['rbd'],
      });
      for (const pool of pools)
        expect([pool.name, pool.size, pool.min_size, pool.failure_domain]).toEqual([pool.name, 3, 2, 'host']);
      const pgs = verdict.pgs as { total: number; active_clean: number };
      expect(pgs.active_clean).toBe(pgs.total);
      const settle = taskResults(events).find((e) => e.task.name === SETTLE_TASK);
      measured.push(
        `bootstrap from nothing (ceph packages installed too when the node lacks them): ${(ms / 1000).toFixed(1)} s run, of which waiting to settle ${String(settle?.result?.waited_s)} s; ${changed.length} changes; ${pgs.total} PGs active+clean`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a second run changes nothing and verifies green',
    async () => {
      const { res, events, ms } = await labJson(['play', PLAYBOOK], RUN);
      expect(res.code, res.stderr).toBe(0);
      expect(changedKeys(events)).toEqual([]);
      expect(failedVerifies(events, failedLine)).toEqual([]);
      measured.push(`second run: ${(ms / 1000).toFixed(1)} s, 0 changes`);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'drift (pool size 2, a manager stopped): --check predicts exactly it, a run repairs it',
    async () => {
      await onHost('pve1', 'ceph osd pool set rbd size 2 --yes-i-really-mean-it', SSH);
      await onHost('pve2', 'systemctl stop ceph-mgr@pve2', SSH);
      try {
        const check = await labJson(['play', PLAYBOOK, '--check', '--detailed-exitcode'], RUN);
        expect(check.res.code, check.res.stderr).toBe(3);
        expect(changedKeys(check.events)).toEqual([
          `pve1 | ceph : ${POOLS_TASK}`,
          'pve2 | ceph : Manager running and enabled',
        ]);
        const pools = taskResults(check.events).find((e) => e.task.name === POOLS_TASK);
        expect(pools?.result?.stdout).toBe('change: pool rbd: size 2 -> 3');
        const mgr = taskResults(check.events).find(
          (e) => e.host === 'pve2' && e.task.name === 'Manager running and enabled',
        );
        expect(mgr?.actions).toEqual(['start ceph-mgr@pve2 (was inactive)']);
        // --check changed nothing.
        expect(await onHost('pve1', 'ceph osd pool get rbd size', SSH)).toBe('size: 2');

        const repair = await labJson(['play', PLAYBOOK], RUN);
        expect(repair.res.code, repair.res.stderr + repair.res.stdout.slice(-2000)).toBe(0);
        expect(changedKeys(repair.events)).toEqual([
          `pve1 | ceph : ${POOLS_TASK}`,
          'pve2 | ceph : Manager running and enabled',
        ]);
        expect(failedVerifies(repair.events, failedLine)).toEqual([]);
        expect(await onHost('pve1', 'ceph osd pool get rbd size', SSH)).toBe('size: 3');
      } finally {
        await onHost('pve1', 'ceph osd pool set rbd size 3 --yes-i-really-mean-it', SSH);
        await onHost('pve2', 'systemctl start ceph-mgr@pve2', SSH);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a bare node (packages purged, no Ceph state) joins: --check predicts it, a run rebuilds its monitor and makes its OSD',
    async () => {
      const id = await onHost('pve3', 'cat /var/lib/ceph/osd-specs/osd-a.id', SSH);
      expect(id).toMatch(/^\d+$/);
      await onHost('pve1', `ceph osd out ${id}`, SSH);
      await onHost(
        'pve3',
        `${WIPE}\nexport DEBIAN_FRONTEND=noninteractive; apt-get purge -y -q ceph-mon ceph-mgr ceph-osd ceph-common ceph-base >/dev/null && apt-get autoremove -y -q --purge >/dev/null && rm -rf /etc/ceph /var/lib/ceph /usr/local/sbin/cairn-ceph-*`,
        SSH,
      );
      // A stopped OSD is marked down by its peers' reports after a while; purging needs it down now.
      await onHost('pve1', `ceph osd down ${id} && ceph osd purge ${id} --force --yes-i-really-mean-it`, SSH);
      expect(await onHost('pve1', 'ceph osd ls | wc -l', SSH)).toBe('2');

      const check = await labJson(['play', PLAYBOOK, '--check', '-l', 'pve3'], RUN);
      expect(check.res.code, check.res.stderr + check.res.stdout.slice(-2000)).toBe(0);
      expect(
        taskResults(check.events)
          .filter((e) => e.status === 'failed')
          .map((e) => `${e.task.name}: ${e.msg}`),
      ).toEqual([]);
      const predicted = changedKeys(check.events);
      for (const task of [
        "Ceph packages for this host's daemons",
        'ceph.conf',
        'Monitor store (ceph-mon --mkfs)',
        'OSDs of this host (ceph osd new, ceph-osd --mkfs on a sparse file) [{"name":"osd-a","size":"2G"}]',
      ]) {
        expect(predicted).toContain(`pve3 | ceph : ${task}`);
      }

      const { res, events, ms } = await labJson(['play', PLAYBOOK], RUN);
      expect(res.code, res.stderr + res.stdout.slice(-2000)).toBe(0);
      const changed = changedKeys(events);
      const newId = await onHost('pve3', 'cat /var/lib/ceph/osd-specs/osd-a.id', SSH);
      // Only the bare node changes; what --check predicted happened, plus starting the OSD it could not name.
      expect(changed.filter((k) => !k.startsWith('pve3 '))).toEqual([]);
      // (The restart handler is predicted as "would run": whether it restarts anything depends on when the
      // daemons started, known only after the run; here they started after ceph.conf was written.)
      const predictedTasks = predicted.filter((k) => !k.endsWith('(handler)'));
      expect(changed).toEqual(
        expect.arrayContaining([
          ...predictedTasks,
          `pve3 | ceph : Monitor running and enabled`,
          `pve3 | ceph : OSDs running and enabled [${JSON.stringify(newId)}]`,
        ]),
      );
      expect(changed.filter((k) => k.endsWith('(handler)'))).toEqual([]);
      expect(failedVerifies(events, failedLine)).toEqual([]);
      const verdict = clusterVerdict(events);
      expect(verdict.osds).toMatchObject({ total: 3, up: 3, in: 3 });
      expect(verdict.quorum).toEqual(NODES);
      expect(await onHost('pve1', `ceph osd tree -f json | tr ',' '\\n' | grep -c '"name":"osd.${newId}"'`, SSH)).toBe(
        '1',
      );
      measured.push(
        `a bare node rejoining (packages installed, monitor rebuilt, new OSD) to HEALTH_OK: ${(ms / 1000).toFixed(1)} s`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'drill osd-down: HEALTH_WARN with degraded PGs, then HEALTH_OK within the bound',
    async () => {
      const res = await labCairn(['drill', 'osd-down', '--json'], RUN);
      const events = jsonEvents(res.stdout);
      const result = drillResult(events);
      expect(result, res.stderr + res.stdout.slice(-2000)).toBeDefined();
      expect(result!.passed, `${result!.msg} ${JSON.stringify(result!.measured)}`).toBe(true);
      expect(res.code).toBe(0);
      const m = result!.measured;
      expect(m.health_while_down).toBe('HEALTH_WARN');
      expect(String(m.warn_checks)).toMatch(/OSD_DOWN: 1 osds down/);
      expect(String(m.warn_checks)).toMatch(/PG_DEGRADED: Degraded data redundancy: \d+\/\d+ objects degraded/);
      expect(Number(m.degraded_pgs)).toBeGreaterThan(0);
      expect(m.write_while_down).toBe('ok');
      expect(Number(m.recover_s)).toBeGreaterThan(0);
      measured.push(
        `osd-down drill (${String(m.osd)} on ${String(m.host)}): HEALTH_WARN after ${String(m.warn_after_s)} s with ${String(m.degraded_pgs)}/${String(m.pgs)} PGs degraded, a write served while down; HEALTH_OK ${String(m.recover_s)} s after the start`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'emergency tier: a replica corrupted and found by deep scrub fires CephDataInconsistent; ceph pg repair resolves it (drill alert-data-inconsistent)',
    async () => {
      // The role enabled the managers' Prometheus exporter; the active manager serves Ceph's health there.
      const services = JSON.parse(await onHost('pve1', 'ceph mgr services -f json', SSH)) as Record<string, string>;
      expect(services.prometheus).toMatch(/^http:\/\/[^/]+:9283\/$/);
      // Prometheus on mon1 follows the inventory, which now has the pve nodes: node exporters on them and the
      // ceph job on the manager hosts; its verification wants every target up, the emergency rules loaded.
      const monitoring = await labJson(['play', 'playbooks/monitoring.yaml', '-l', 'mon1:pve'], RUN);
      expect(
        monitoring.res.code,
        monitoring.res.stderr + failedVerifies(monitoring.events, failedLine).join('\n'),
      ).toBe(0);
      const targets = await onHost('mon1', 'curl -sS http://127.0.0.1:9090/api/v1/targets?state=active', SSH);
      const ceph = (
        JSON.parse(targets) as { data: { activeTargets: Array<{ labels: Record<string, string>; health: string }> } }
      ).data.activeTargets.filter((t) => t.labels.job === 'ceph');
      expect(ceph.map((t) => `${t.labels.instance} ${t.health}`).sort()).toEqual(['pve1 up', 'pve2 up']);

      const res = await labCairn(['drill', 'alert-data-inconsistent', '--json'], RUN);
      const result = drillResult(jsonEvents(res.stdout));
      expect(result, res.stderr + res.stdout.slice(-2000)).toBeDefined();
      expect(result!.passed, `${result!.msg} ${JSON.stringify(result!.measured)}`).toBe(true);
      expect(res.code).toBe(0);
      const m = result!.measured;
      expect(m.health_while_inconsistent).toBe('HEALTH_ERR');
      expect(m.alert).toBe('CephDataInconsistent');
      for (const key of ['scrub_detect_s', 'detect_s', 'resolve_s', 'repair_s'])
        expect(Number(m[key]), key).toBeGreaterThan(0);
      expect(m.notified_after_firing_s).not.toBe('never');
      // Back to HEALTH_OK with the drill's object gone.
      expect(clusterVerdict((await labJson(['verify', PLAYBOOK], RUN)).events).health).toBe('HEALTH_OK');
      expect(await onHost('pve1', "rados -p rbd ls | grep -c '^cairn-drill' || true", SSH)).toBe('0');
      measured.push(
        `alert-data-inconsistent drill (${String(m.corrupted)}, PG ${String(m.pg)}): deep scrub found it after ${String(m.scrub_detect_s)} s (HEALTH_ERR); CephDataInconsistent firing ${String(m.detect_s)} s later, webhook +${String(m.notified_after_firing_s)} s; pg repair -> HEALTH_OK in ${String(m.repair_s)} s, alert resolved ${String(m.resolve_s)} s after`,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "records each daemon's memory (RSS and PSS)",
    async () => {
      const script =
        "for p in $(pgrep -x ceph-mon; pgrep -x ceph-mgr; pgrep -x ceph-osd); do echo \"$(cat /proc/$p/comm) $(awk '/^VmRSS:/{print $2}' /proc/$p/status) $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)\"; done";
      const lines: string[] = [];
      let rssTotal = 0;
      let pssTotal = 0;
      for (const node of NODES) {
        for (const line of (await onHost(node, script, SSH)).split('\n')) {
          const [daemon, rss, pss] = line.trim().split(/\s+/);
          expect(daemon).toMatch(/^ceph-(mon|mgr|osd)$/);
          rssTotal += Number(rss);
          pssTotal += Number(pss);
          lines.push(`${node} ${daemon} ${(Number(rss) / 1024).toFixed(0)}/${(Number(pss) / 1024).toFixed(0)} MiB`);
        }
      }
      expect(lines.filter((l) => l.includes('ceph-mon'))).toHaveLength(3);
      expect(lines.filter((l) => l.includes('ceph-mgr'))).toHaveLength(2);
      expect(lines.filter((l) => l.includes('ceph-osd'))).toHaveLength(3);
      measured.push(
        `memory RSS/PSS per daemon: ${lines.join(', ')}; total RSS ${(rssTotal / 1024).toFixed(0)} MiB, PSS ${(pssTotal / 1024).toFixed(0)} MiB`,
      );
    },
    TEST_TIMEOUT_MS,
  );
});
