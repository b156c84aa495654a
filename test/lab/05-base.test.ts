/**
 * base-tuning on the lab (issue 6): the sysctl profile, open-file limits, chrony and journald on every lab
 * host, RAID health as a verification. Proves convergence, a second run that changes nothing, sysctl drift
 * predicted exactly by --check and repaired by --roles base-tuning -l HOST, the container's read-only
 * kernel-global keys reported as skipped with the reason, a green verification, and the raid_health module
 * judging real mdstat / mdadm outputs (test/fixtures/raid, each citing its source) copied onto a lab host.
 *
 * Everything runs through the built CLI against the real containers. Other engineers share the lab: a run
 * refused because another cairn run holds the inventory's lock is retried.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { changedKeys, jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import {
  describeOnLab,
  ensureLab,
  labCairn,
  labJson,
  labUnavailable,
  onHost,
  verifyResults,
  type LabJsonOptions,
  type VerifyResult,
} from '../helpers/lab.js';
import { loadRaidFixture } from '../fixtures/raid/fixture.js';

const PLAYBOOK = 'playbooks/base.yaml';
const SYSCTL_TASK = 'sysctl profile in the file and live';
const RAID_CHECK = 'md RAID arrays are healthy';
const SYSCTL_CHECK = 'sysctl profile holds (live; in the file only for kernel-global keys in a container)';
const DRIFT_HOST = 'web1';
const RAID_HOST = 'web2';
const FIXTURE_DIR = '/tmp/cairn-raid-fixtures';
const READ_ONLY_KEYS = ['vm.swappiness', 'vm.max_map_count', 'fs.file-max', 'fs.inotify.max_user_watches'];
const NAMESPACED_KEYS = [
  'net.core.somaxconn',
  'net.ipv4.tcp_max_syn_backlog',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_congestion_control',
];

/**
 * Other engineers' drills power hosts off and on while this file runs: a run with a host unreachable is
 * tried again (at most twice, after a pause). `ms` counts the whole call, waits and retries included.
 */
const RUN: LabJsonOptions = { timeoutMs: 240_000, lockWaitMs: 600_000, unreachableRetries: 2, ms: 'total' };

const recapHosts = (events: RunEvent[]) =>
  Object.keys(events.find((e): e is Extract<RunEvent, { type: 'recap' }> => e.type === 'recap')?.stats ?? {}).sort();

function itemName(item: unknown): string | undefined {
  return item !== null && typeof item === 'object' && 'name' in item
    ? String((item as { name: unknown }).name)
    : undefined;
}

/** Measured numbers, printed at the end for the issue note. */
const measured: string[] = [];

/** Copy a fixture's body (the real output, without its citation header) onto the RAID test host. */
async function putFixture(name: string): Promise<string> {
  const body = Buffer.from(loadRaidFixture(name).body).toString('base64');
  await onHost(RAID_HOST, `mkdir -p ${FIXTURE_DIR} && printf '%s' '${body}' | base64 -d > ${FIXTURE_DIR}/${name}`);
  return `${FIXTURE_DIR}/${name}`;
}

/** `cairn verify` of the base play on the RAID host with the RAID paths pointed at files; the RAID result. */
async function raidVerify(extra: string[]): Promise<{ code: number; result: VerifyResult }> {
  const { res, events } = await labJson(['verify', PLAYBOOK, '-l', RAID_HOST, ...extra.flatMap((e) => ['-e', e])], RUN);
  const result = verifyResults(events).find((e) => e.check === RAID_CHECK && e.host === RAID_HOST);
  if (!result)
    throw new Error(`no RAID verification in the output (exit ${res.code}): ${res.stderr}${res.stdout.slice(-2000)}`);
  // The other checks of the role stay green: only the RAID verdict decides the exit code here.
  expect(verifyResults(events).filter((e) => !e.passed && e.check !== RAID_CHECK)).toEqual([]);
  return { code: res.code, result };
}

/** Each test may wait for other engineers' runs to release the lab's lock. */
const TEST_TIMEOUT_MS = 900_000;

/**
 * Issue 16's acceptance path, on the fresh lab before this file converges anything: from an empty folder,
 * `cairn init site`, the site's inventory pointed at the lab as the README says ("To try the site on the lab"),
 * and `cairn play site.yaml --check` from the site folder. The CLI is this checkout's bin/cairn.js: installing
 * the packed tarball and running init and --syntax-check with it is test/integration/install.test.ts. The
 * example's hosts have the lab's names; the default lab has lb1 lb2 web1 web2 mon1 but no pve nodes, so the
 * edit empties the pve group (its plays then match no host, with a warning). No lab time beyond the check run.
 */
const SITE_LAB_HOSTS = ['lb1', 'lb2', 'mon1', 'web1', 'web2'];

interface LabInventoryFile {
  all: { vars: Record<string, unknown>; hosts: Record<string, { ansible_host: string; ansible_port: number }> };
}
interface SiteHostsFile {
  all: { children: Record<string, { hosts: Record<string, unknown> }> };
}

describeOnLab('cairn init site', (measured) => {
  let work = '';
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('from an empty folder: init, the inventory at the lab, and --check exits 0 with every play on its hosts', async () => {
    const lab = await ensureLab();
    work = mkdtempSync(join(tmpdir(), 'cairn-site-on-lab-'));
    const init = await runCairn(['init', 'site'], { cwd: work });
    expect(init.code, init.stderr).toBe(0);
    const site = join(work, 'site');

    // The user's edit of inventories/production/hosts.yaml, comments kept: each host's ansible_host and
    // ansible_port as the lab's inventory has them (cairn reaches the lab on its management bridge), the lab's
    // user, key, known_hosts and VIP, and no pve hosts.
    const labInventory = parse(readFileSync(lab.inventoryPath, 'utf8')) as LabInventoryFile;
    const hostsFile = join(site, 'inventories', 'production', 'hosts.yaml');
    const doc = parseDocument(readFileSync(hostsFile, 'utf8'));
    for (const key of ['ansible_user', 'ansible_ssh_private_key_file', 'cairn_known_hosts', 'vip_address'])
      doc.setIn(['all', 'vars', key], labInventory.all.vars[key]);
    // The pve group stays (site.yaml's pve plays name it; a pattern naming no group is an error), empty.
    doc.setIn(['all', 'children', 'pve', 'hosts'], doc.createNode({}));
    const groups = (doc.toJS() as SiteHostsFile).all.children;
    const siteHosts: string[] = [];
    for (const [group, { hosts }] of Object.entries(groups)) {
      for (const name of Object.keys(hosts)) {
        const reach = labInventory.all.hosts[name];
        expect(reach, `the lab has the example's host ${name}`).toBeDefined();
        doc.setIn(['all', 'children', group, 'hosts', name, 'ansible_host'], reach!.ansible_host);
        doc.setIn(['all', 'children', group, 'hosts', name, 'ansible_port'], reach!.ansible_port);
        siteHosts.push(name);
      }
    }
    expect(siteHosts.sort()).toEqual(SITE_LAB_HOSTS);
    writeFileSync(hostsFile, String(doc));

    const started = Date.now();
    const check = await runCairn(['play', 'site.yaml', '--check', '--json'], { cwd: site, timeoutMs: 280_000 });
    const seconds = (Date.now() - started) / 1000;
    const events = jsonEvents(check.stdout);
    const results = taskResults(events);
    expect(
      results
        .filter((e) => e.status === 'failed' || e.status === 'unreachable')
        .map((e) => `${e.host}: ${e.task.name}: ${e.msg}`),
      check.stderr,
    ).toEqual([]);
    expect(check.code, check.stderr + check.stdout.slice(-2000)).toBe(0);

    // Every play reached every host its pattern names (the pve plays none, and they say so), in site.yaml's
    // order: base, networks, firewall on all; zfs, kvm, ceph on pve; webapp on web; haproxy + keepalived on lb;
    // monitoring on all; backup on lb:web:mon.
    const web = ['web1', 'web2'];
    const lb = ['lb1', 'lb2'];
    const all = SITE_LAB_HOSTS;
    const plays: Array<{ hosts: string[]; reached: Set<string> }> = [];
    for (const e of events) {
      if (e.type === 'play_start') plays.push({ hosts: [...e.hosts].sort(), reached: new Set() });
      else if (e.type === 'task_result') plays.at(-1)?.reached.add(e.host);
    }
    expect(plays.map((p) => p.hosts)).toEqual([all, all, all, [], [], [], web, lb, all, all]);
    for (const [i, p] of plays.entries()) expect([...p.reached].sort(), `play #${i + 1}`).toEqual(p.hosts);
    expect(
      events.flatMap((e) => (e.type === 'warning' ? [e.msg] : [])).filter((m) => /no hosts matched/.test(m)),
    ).toEqual([
      'play "ZFS on the hypervisors": no hosts matched "pve"',
      'play "KVM hypervisors": no hosts matched "pve"',
      'play "Ceph cluster": no hosts matched "pve"',
    ]);
    // The predictions of a first run on fresh hosts: every host has changes to make, predicted (check).
    const changed = results.filter((e) => e.status === 'changed' && !e.loopSummary);
    for (const host of all) expect(changed.filter((e) => e.host === host).length, host).toBeGreaterThan(0);
    // Only a command or shell task marked check_mode: false runs in a check (a probe); nothing else changed.
    expect(changed.filter((e) => e.check !== true && !['command', 'shell'].includes(e.task.module))).toEqual([]);
    const recap = events.find((e): e is Extract<RunEvent, { type: 'recap' }> => e.type === 'recap');
    expect(Object.keys(recap?.stats ?? {}).sort()).toEqual(all);
    measured.push(
      `--check of the init'ed site (5 hosts, fresh): ${seconds.toFixed(1)} s, ${changed.length} changes predicted`,
    );
  }, 600_000);
});

const unavailable = labUnavailable();

describe.skipIf(unavailable)(`base-tuning on the lab${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let hosts: string[] = [];

  beforeAll(async () => {
    await ensureLab();
  });

  afterAll(async () => {
    if (!unavailable) await runCairn(['lab', 'ssh', RAID_HOST, '--', 'rm', '-rf', FIXTURE_DIR], { timeoutMs: 60_000 });
    if (measured.length) console.log(`base-tuning on the lab, measured:\n  ${measured.join('\n  ')}`);
  }, TEST_TIMEOUT_MS);

  it(
    "converges on every lab host (one host starting without the role's files) and verifies green",
    async () => {
      await onHost(
        'web2',
        'rm -f /etc/sysctl.d/60-cairn-base.conf /etc/security/limits.d/60-cairn-nofile.conf /etc/systemd/journald.conf.d/60-cairn-retention.conf',
      );
      const { res, events, ms } = await labJson(['play', PLAYBOOK], RUN);
      expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(0);
      hosts = recapHosts(events);
      expect(hosts).toEqual(expect.arrayContaining(['lb1', 'lb2', 'mon1', 'web1', 'web2']));
      const changed = changedKeys(events);
      // web2 had lost its files: they are written again, and journald restarted for its drop-in.
      for (const task of [
        'open-file limits for login sessions (pam_limits)',
        'journald retention (SystemMaxUse, MaxRetentionSec)',
      ]) {
        expect(changed).toContain(`web2 | base-tuning : ${task}`);
      }
      expect(changed).toContain('web2 | base-tuning : restart journald (handler)');
      expect(changed.filter((k) => k.startsWith(`web2 | base-tuning : ${SYSCTL_TASK} `))).toHaveLength(9);
      const verify = verifyResults(events);
      expect(verify.filter((v) => !v.passed)).toEqual([]);
      // Every host got every check.
      expect(new Set(verify.map((v) => `${v.host}|${v.check}`)).size).toBe(hosts.length * 9);
      measured.push(`first run (web2 converging, ${hosts.length} hosts): ${ms} ms, ${changed.length} changes`);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'a second run changes nothing',
    async () => {
      const { res, events, ms } = await labJson(['play', PLAYBOOK], RUN);
      expect(res.code).toBe(0);
      expect(changedKeys(events)).toEqual([]);
      expect(verifyResults(events).filter((v) => !v.passed)).toEqual([]);
      measured.push(`second run: ${ms} ms, 0 changes`);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'reports the kernel-global keys as skipped with the container reason; namespaced keys apply live',
    async () => {
      const { events } = await labJson(['play', PLAYBOOK, '-l', 'mon1', '--tags', 'sysctl'], RUN);
      const items = taskResults(events).filter((e) => e.task.name === SYSCTL_TASK && !e.loopSummary);
      const byKey = new Map(items.map((e) => [itemName(e.item), e]));
      for (const key of READ_ONLY_KEYS)
        expect([byKey.get(key)?.status, byKey.get(key)?.msg], key).toEqual([
          'skipped',
          'live apply skipped: read-only in a container',
        ]);
      expect([byKey.get('net.core.netdev_max_backlog')?.status, byKey.get('net.core.netdev_max_backlog')?.msg]).toEqual(
        ['skipped', 'live apply skipped: read-only in a container (a kernel-global key, not visible in the container)'],
      );
      for (const key of NAMESPACED_KEYS) expect(byKey.get(key)?.status, key).toBe('ok');
      // The verification says which keys it could only check in the file, and why.
      const { events: verifyEvents } = await labJson(['verify', PLAYBOOK, '-l', 'mon1'], RUN);
      const sysctl = verifyResults(verifyEvents).find((v) => v.check === SYSCTL_CHECK);
      expect(sysctl?.passed).toBe(true);
      expect(String(sysctl?.data?.stdout)).toBe(
        '9 keys as wanted: 4 live, 5 in /etc/sysctl.d/60-cairn-base.conf only (read-only in a container: net.core.netdev_max_backlog vm.swappiness vm.max_map_count fs.file-max fs.inotify.max_user_watches)',
      );
      // ...and what the file holds, byte for byte.
      expect(await onHost('mon1', 'grep -v "^#" /etc/sysctl.d/60-cairn-base.conf')).toBe(
        [
          'net.core.somaxconn = 65535',
          'net.ipv4.tcp_max_syn_backlog = 65535',
          'net.ipv4.ip_local_port_range = 10240 65535',
          'net.core.netdev_max_backlog = 10000',
          'net.ipv4.tcp_congestion_control = bbr',
          'vm.swappiness = 1',
          'vm.max_map_count = 262144',
          'fs.file-max = 2097152',
          'fs.inotify.max_user_watches = 524288',
        ].join('\n'),
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'sysctl drift by hand: --check predicts exactly that one change, --roles base-tuning -l HOST repairs it',
    async () => {
      await onHost(DRIFT_HOST, 'sysctl -w net.core.somaxconn=128');
      try {
        await driftDetectedAndRepaired();
      } finally {
        // Whatever failed above, the host does not stay drifted for the tests after this one.
        await onHost(DRIFT_HOST, 'sysctl -q -w net.core.somaxconn=65535');
      }
    },
    TEST_TIMEOUT_MS,
  );

  async function driftDetectedAndRepaired(): Promise<void> {
    const check = await labJson(['play', PLAYBOOK, '--check', '--detailed-exitcode'], RUN);
    expect(check.res.code, check.res.stderr).toBe(3);
    expect(changedKeys(check.events)).toEqual([
      `${DRIFT_HOST} | base-tuning : ${SYSCTL_TASK} [{"name":"net.core.somaxconn","value":"65535"}]`,
    ]);
    const predicted = taskResults(check.events).find((e) => e.status === 'changed' && !e.loopSummary);
    expect(predicted?.actions).toEqual(['set net.core.somaxconn 128 -> 65535 (live)']);
    expect(await onHost(DRIFT_HOST, 'sysctl -n net.core.somaxconn')).toBe('128');

    // The verification names the key and both values.
    const drifted = await labJson(['verify', PLAYBOOK, '-l', DRIFT_HOST], RUN);
    expect(drifted.res.code).toBe(2);
    expect(
      verifyResults(drifted.events)
        .filter((v) => !v.passed)
        .map((v) => [v.check, v.msg]),
    ).toEqual([[SYSCTL_CHECK, 'non-zero return code 1: sysctl drift: net.core.somaxconn is 128 live, wanted 65535']]);

    const repair = await labJson(['play', PLAYBOOK, '--roles', 'base-tuning', '-l', DRIFT_HOST], RUN);
    expect(repair.res.code, repair.res.stderr).toBe(0);
    expect(changedKeys(repair.events)).toEqual([
      `${DRIFT_HOST} | base-tuning : ${SYSCTL_TASK} [{"name":"net.core.somaxconn","value":"65535"}]`,
    ]);
    expect(await onHost(DRIFT_HOST, 'sysctl -n net.core.somaxconn')).toBe('65535');
    expect(verifyResults(repair.events).filter((v) => !v.passed)).toEqual([]);
    const after = await labJson(['play', PLAYBOOK, '--check', '--detailed-exitcode', '-l', DRIFT_HOST], RUN);
    expect(after.res.code).toBe(0);
    measured.push(
      `drift: --check ${check.ms} ms (all hosts), repair ${repair.ms} ms (${DRIFT_HOST}, with verification)`,
    );
  }

  it(
    'inventory overrides any profile key, and a misspelt key is refused before anything runs',
    async () => {
      const override = await labJson(
        ['play', PLAYBOOK, '--check', '-l', DRIFT_HOST, '-e', '{base_sysctl_overrides: {net.core.somaxconn: 4096}}'],
        RUN,
      );
      expect(changedKeys(override.events)).toEqual([
        `${DRIFT_HOST} | base-tuning : ${SYSCTL_TASK} [{"name":"net.core.somaxconn","value":"65535"}]`,
      ]);
      expect(taskResults(override.events).find((e) => e.status === 'changed' && !e.loopSummary)?.actions).toEqual([
        'write net.core.somaxconn = 4096 to /etc/sysctl.d/60-cairn-base.conf (was 65535)',
        'set net.core.somaxconn 65535 -> 4096 (live)',
      ]);
      const typo = await labCairn(
        ['play', PLAYBOOK, '--check', '-l', DRIFT_HOST, '-e', '{base_sysctl_overrides: {net.core.somaxcon: 4096}}'],
        RUN,
      );
      expect(typo.code).toBe(5);
      expect(typo.stderr).toMatch(/host web1: role base-tuning: variable .*base_sysctl_overrides.*somaxcon/s);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'verification: no /proc/mdstat is a pass with a note; limits, time and journald say what holds',
    async () => {
      const { res, events } = await labJson(['verify', PLAYBOOK], RUN);
      expect(res.code).toBe(0);
      const results = verifyResults(events);
      for (const raid of results.filter((v) => v.check === RAID_CHECK)) {
        expect([raid.passed, raid.data?.msg, raid.data?.mdstat_present], raid.host).toEqual([
          true,
          'no md arrays (no /proc/mdstat)',
          false,
        ]);
      }
      const on = (check: string, host: string) =>
        String(results.find((v) => v.check === check && v.host === host)?.data?.stdout);
      expect(on('time is synchronised by chrony', 'web1')).toMatch(
        /^synchronised to [0-9A-F]{8} \(10\.77\.1\.31\), stratum 11; .*tracking only: chronyd -x in a container without CAP_SYS_TIME/,
      );
      expect(on('time is synchronised by chrony', 'mon1')).toMatch(
        /^synchronised to its own local clock \(local stratum 10/,
      );
      expect(on('open-file limits are in effect for sessions and services', 'web1')).toMatch(
        /^sessions and services get \d+ soft \/ \d+ hard open files; capped at \d+ by PID 1's hard limit \(a container without CAP_SYS_RESOURCE\) \(wanted 1048576\)$/,
      );
      expect(on('journald runs with the configured SystemMaxUse', 'web1')).toMatch(
        /^journald: System Journal \(.*\) is .*, max 1\.0G, /,
      );
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'RAID fixtures through raid_health on a lab host: healthy passes, degraded fails naming the array and member, recovering reports progress',
    async () => {
      const healthy = await raidVerify([`raid_mdstat_path=${await putFixture('healthy-2.4-raid5-raid1.mdstat')}`]);
      expect([healthy.code, healthy.result.passed, healthy.result.data?.msg]).toEqual([0, true, '3 md arrays healthy']);

      const failed = await raidVerify([`raid_mdstat_path=${await putFixture('failed-raid1-2.4.mdstat')}`]);
      expect([failed.code, failed.result.passed]).toEqual([2, false]);
      expect(failed.result.msg).toMatch(
        /^md3 \(raid1\): failed: member sdb1 is faulty; 1 member missing \(slot 1\); \[2\/2\] \[U_\]; members: sdb1 \(faulty\), sda1 \| md2 /,
      );

      const degraded = await raidVerify([`raid_mdstat_path=${await putFixture('degraded-raid10.mdstat')}`]);
      expect(degraded.result.msg).toMatch(
        /^md127 \(raid10\): degraded: 2 members missing \(slots 17, 19\); \[22\/20\]/,
      );

      // mdadm --detail names the member that left: /dev/sda3 faulty, slot 0 removed.
      const faulty = await raidVerify([
        'raid_mdstat_path=/nonexistent',
        `raid_mdadm_detail_path=${await putFixture('detail-faulty-raid1.detail')}`,
      ]);
      expect([faulty.code, faulty.result.msg]).toEqual([
        2,
        'md1 (raid1): failed: member /dev/sda3 is faulty; 1 member missing (slot 0); [2/1]; members: /dev/sdb3, /dev/sda3 (faulty)',
      ]);

      const resync = await raidVerify([`raid_mdstat_path=${await putFixture('resync-raid1.mdstat')}`]);
      expect([resync.code, resync.result.data?.msg]).toEqual([
        0,
        '1 md array passes (0 healthy): md127 (raid1): resyncing: resync 50.4% done, 67648K/sec, about 6.4 min left; [2/2] [UU]; members: sdc1, sdc2',
      ]);

      const rebuilding = await raidVerify([
        'raid_mdstat_path=/nonexistent',
        `raid_mdadm_detail_path=${await putFixture('detail-recovering-raid1.detail')}`,
      ]);
      expect([rebuilding.code, rebuilding.result.data?.msg]).toEqual([
        0,
        '1 md array passes (0 healthy): md127 (raid1): recovering: 1 member missing (slot 0); rebuild 10% done; [2/1]; members: /dev/sdb1 (spare, rebuilding), /dev/sdc1',
      ]);
      const refused = await raidVerify([
        'raid_mdstat_path=/nonexistent',
        `raid_mdadm_detail_path=${FIXTURE_DIR}/detail-recovering-raid1.detail`,
        'raid_allow_recovering=false',
      ]);
      expect([refused.code, refused.result.passed]).toEqual([2, false]);

      // A rebuild next to failed arrays: the failure names those; the rebuild's progress is in the report.
      const mixed = await raidVerify([`raid_mdstat_path=${await putFixture('recovery-raid1-2.4.mdstat')}`]);
      expect(mixed.result.msg?.split(' | ').map((m) => m.split(':')[0])).toEqual([
        'md3 (raid1)',
        'md2 (raid1)',
        'md4 (raid1)',
      ]);
      const arrays = mixed.result.data?.arrays as Array<{
        name: string;
        verdict: string;
        progress?: { percent: number; speedKiBps: number };
      }>;
      expect(arrays.find((a) => a.name === 'md1')).toMatchObject({
        verdict: 'recovering',
        progress: { percent: 8.1, speedKiBps: 6963 },
      });

      const inactive = await raidVerify([`raid_mdstat_path=${await putFixture('inactive.mdstat')}`]);
      expect(inactive.result.msg).toBe('md127: inactive: not running (members: sdc1 (spare))');
    },
    TEST_TIMEOUT_MS,
  );
});
