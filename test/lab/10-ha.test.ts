/**
 * The HA front door on the lab (issue 4): webapp on web1/web2, haproxy + keepalived on lb1/lb2, the VIP.
 * Deploys, proves idempotence, drift prediction and repair, validation that protects the live config and
 * the running haproxy, the rolling stop after a failed verification, verification of split brain and
 * outage by name, and the three drills with their measured times (printed for the issue note).
 *
 * Everything runs through the built CLI against the real containers. Other engineers share the lab while
 * they develop: a command refused because another cairn run holds the inventory's lock is retried.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedKeys, repoRoot, runCairn, taskResults } from '../helpers/cli.js';
import {
  ensureLab,
  failedVerifyResults,
  labDrill,
  labJson,
  labUnavailable,
  onHost,
  sleep,
  verifyResults,
  type LabCairnOptions,
} from '../helpers/lab.js';

const PLAYBOOK = 'playbooks/ha.yaml';
const VIP = '10.77.0.10';
/** The lab CA (`cairn lab up` makes it; the lab inventory turns TLS on at the front door with it). */
const LAB_CA = '/var/lib/cairn/lab/ca/ca.pem';

/** GET over HTTPS, the chain checked against the lab CA: status, headers and body. */
function httpsGet(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolveGet, reject) => {
    const req = httpsRequest(url, { ca: readFileSync(LAB_CA, 'utf8'), agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** openssl s_client from this machine to the VIP; its exit code and output. */
function sClient(version: '-tls1_3' | '-tls1_2'): Promise<{ code: number; out: string }> {
  return new Promise((resolveRun) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `${VIP}:443`, version, '-CAfile', LAB_CA, '-verify_return_error', '-verify_ip', VIP],
      { timeout: 15_000 },
      (err, stdout, stderr) => resolveRun({ code: err ? Number(err.code ?? 1) || 1 : 0, out: stdout + stderr }),
    );
    child.stdin?.end('Q\n');
  });
}
const CONFIG_TASK = 'haproxy.cfg is rendered and checked by haproxy before it replaces the live one';

/** This file gives up waiting for another run's lock after 5 minutes. */
const RUN: LabCairnOptions = { timeoutMs: 240_000, lockWaitMs: 300_000 };

const holders = async () =>
  (
    await Promise.all(['lb1', 'lb2'].map(async (h) => ((await onHost(h, `ip -o -4 addr show to ${VIP}/32`)) ? h : '')))
  ).filter(Boolean);

async function waitForVipOn(host: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const now = await holders();
    if (now.length === 1 && now[0] === host) return;
    await sleep(300);
  }
  throw new Error(
    `the VIP did not settle on ${host} within ${timeoutMs} ms (holders: ${(await holders()).join(', ') || 'none'})`,
  );
}

/** Measured drill numbers, printed at the end for the issue note. */
const measured: string[] = [];

const unavailable = labUnavailable();

describe.skipIf(unavailable)(`HA front door on the lab${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    await ensureLab();
  });

  afterAll(() => {
    if (measured.length) console.log(`HA drills, measured:\n  ${measured.join('\n  ')}`);
  });

  it('deploys webapp, haproxy and keepalived; every verification passes', async () => {
    const started = Date.now();
    const { res, events } = await labJson(['play', PLAYBOOK], RUN);
    measured.push(`deploy (play ${PLAYBOOK}): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(
      res.code,
      res.stderr +
        failedVerifyResults(events)
          .map((e) => e.msg)
          .join('\n'),
    ).toBe(0);
    const checks = verifyResults(events).map((e) => `${e.host} ${e.role}: ${e.check}`);
    for (const lb of ['lb1', 'lb2']) {
      expect(checks).toContain(`${lb} haproxy: every backend server is UP`);
      // With TLS (the lab inventory) each load balancer's own address is checked over HTTPS instead.
      expect(checks).toContain(
        `${lb} haproxy: TLS 1.3 is negotiated, the chain is valid and the certificate outlives the renewal window`,
      );
      expect(checks).toContain(`${lb} keepalived: keepalived is active`);
    }
    expect(
      checks.filter((c) => c.endsWith('the VIP is held by exactly one peer (none is an outage, two a split brain)')),
    ).toHaveLength(2);
    expect(checks.filter((c) => c.endsWith('the VIP answers HTTP from the jump host'))).toHaveLength(2); // over HTTPS
    expect(checks).toContain('web1 webapp: the page names this host');
    // The load balancers were worked on one at a time.
    const batches = events.filter((e) => e.type === 'batch_start').map((e) => (e as { hosts: string[] }).hosts);
    expect(batches).toEqual([['lb1'], ['lb2']]);
    expect(await holders()).toEqual(['lb1']);
    const page = await httpsGet(`https://${VIP}/`);
    expect(page.body).toMatch(/served by web[12]/);
  });

  it('TLS at the VIP: openssl -tls1_3 succeeds with a chain valid for the lab CA, -tls1_2 fails; HTTP redirects; HSTS', async () => {
    const tls13 = await sClient('-tls1_3');
    expect(tls13.code, tls13.out).toBe(0);
    expect(tls13.out).toMatch(/^New, TLSv1\.3, Cipher is TLS_/m);
    expect(tls13.out).toMatch(/Verify return code: 0 \(ok\)/);
    const tls12 = await sClient('-tls1_2');
    expect(tls12.code, tls12.out).not.toBe(0);
    const plain = await fetch(`http://${VIP}/some/path?q=1`, { redirect: 'manual' });
    expect(plain.status).toBe(301);
    expect(plain.headers.get('location')).toBe(`https://${VIP}/some/path?q=1`);
    const page = await httpsGet(`https://${VIP}/`);
    expect(page.status).toBe(200);
    expect(String(page.headers['strict-transport-security'])).toMatch(/^max-age=31536000/);
  });

  it('a bad role variable is refused before any host is touched, naming the variable and the inventory file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-ha-'));
    try {
      copyFileSync(join(repoRoot, 'inventories/lab/hosts.yaml'), join(dir, 'hosts.yaml'));
      mkdirSync(join(dir, 'group_vars', 'lb'), { recursive: true });
      const varsFile = join(dir, 'group_vars', 'lb', 'ha.yaml');
      writeFileSync(varsFile, 'keepalived_auth_pass: secret12\nkeepalived_priority: 300\n');
      const res = await runCairn(['play', PLAYBOOK, '-i', join(dir, 'hosts.yaml'), '--check']);
      expect(res.code).toBe(5);
      expect(res.stderr).toContain(
        `role keepalived: variable "keepalived_priority" must be <= 254, got number 300 (set in ${varsFile}:2:1)`,
      );
      writeFileSync(varsFile, 'haproxy_balance: fastest\n');
      const bad = await runCairn(['play', PLAYBOOK, '-i', join(dir, 'hosts.yaml'), '--check']);
      expect(bad.code).toBe(5);
      expect(bad.stderr).toContain(`role haproxy: variable "haproxy_balance" must be one of`);
      expect(bad.stderr).toContain(`(set in ${varsFile}:1:1)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a second run changes nothing', async () => {
    const { res, events } = await labJson(['play', PLAYBOOK], RUN);
    expect(res.code).toBe(0);
    expect(changedKeys(events)).toEqual([]);
  });

  it('--check after a hand edit of haproxy.cfg on lb1 predicts exactly that drift; --roles haproxy -l lb1 repairs it', async () => {
    await onHost(
      'lb1',
      "sed -i 's/^    timeout client 30s$/    timeout client 31s/' /etc/haproxy/haproxy.cfg && grep -q 'timeout client 31s' /etc/haproxy/haproxy.cfg",
    );
    const check = await labJson(['play', PLAYBOOK, '--check', '--diff'], RUN);
    expect(check.res.code).toBe(0);
    expect(changedKeys(check.events)).toEqual([
      `lb1 | haproxy : ${CONFIG_TASK}`,
      'lb1 | haproxy : reload haproxy (handler)',
    ]);
    const predicted = taskResults(check.events).find((e) => e.host === 'lb1' && e.task.name === CONFIG_TASK)!;
    expect(predicted.diffs?.[0]?.before).toContain('timeout client 31s');
    expect(predicted.diffs?.[0]?.after).toContain('timeout client 30s');
    expect(await onHost('lb1', 'grep -c "timeout client 31s" /etc/haproxy/haproxy.cfg')).toBe('1'); // --check changed nothing

    const repair = await labJson(['play', PLAYBOOK, '--roles', 'haproxy', '-l', 'lb1'], RUN);
    expect(repair.res.code).toBe(0);
    expect(changedKeys(repair.events)).toEqual([
      `lb1 | haproxy : ${CONFIG_TASK}`,
      'lb1 | haproxy : reload haproxy (handler)',
    ]);
    expect(await onHost('lb1', 'grep -c "timeout client 30s" /etc/haproxy/haproxy.cfg')).toBe('1');
    const again = await labJson(['play', PLAYBOOK, '--check'], RUN);
    expect(changedKeys(again.events)).toEqual([]);
  });

  it('a template that renders an invalid haproxy.cfg fails validation: live file and running haproxy untouched, lb2 never reached', async () => {
    const state = (host: string) =>
      onHost(
        host,
        'sha256sum /etc/haproxy/haproxy.cfg; systemctl show -p MainPID --value haproxy; pgrep -d, -x haproxy; ls -a /etc/haproxy | grep -c cairn-tmp || true',
      );
    const before = { lb1: await state('lb1'), lb2: await state('lb2') };
    const { res, events } = await labJson(
      ['play', PLAYBOOK, '-e', '{"haproxy_defaults_extra": ["option no-such-option"]}'],
      RUN,
    );
    expect(res.code).toBe(2);
    const failed = taskResults(events).filter((e) => e.status === 'failed');
    expect(failed.map((e) => `${e.host} ${e.task.name}`)).toEqual([`lb1 ${CONFIG_TASK}`]);
    expect(failed[0]!.msg).toMatch(
      /validation of \/etc\/haproxy\/haproxy\.cfg failed \(exit \d+\); the live file was left unchanged/,
    );
    expect(failed[0]!.msg).toContain("unknown option 'no-such-option'");
    expect(failed[0]!.msg).toMatch(/rendered line \d+: +option no-such-option/);
    expect(taskResults(events).some((e) => e.handler)).toBe(false);
    // A failed task stops the roll-out too (max_fail_percentage: 0): lb2 is never touched.
    expect(events.some((e) => e.type === 'warning' && /over max_fail_percentage 0: stopping/.test(e.msg))).toBe(true);
    expect(events.filter((e) => (e.type === 'task_start' || e.type === 'task_result') && e.host === 'lb2')).toEqual([]);
    // Same bytes, same master and worker pids, no temp file left behind.
    expect({ lb1: await state('lb1'), lb2: await state('lb2') }).toEqual(before);
    expect(before.lb1.split('\n').at(-1)).toBe('0');
  });

  it('a failed verification on lb1 stops the roll-out before lb2 is touched', async () => {
    // A realistic mistake: a server that does not exist in the backend. haproxy accepts the file, the
    // service still answers, but verification sees the server DOWN on lb1.
    const ghost = {
      haproxy_verify_wait_s: 3,
      haproxy_backends: [
        {
          name: 'web',
          port: 80,
          servers: [
            { name: 'web1', address: '10.77.0.21' },
            { name: 'web2', address: '10.77.0.22' },
            { name: 'ghost', address: '10.77.0.99' },
          ],
        },
      ],
    };
    const { res, events } = await labJson(['play', PLAYBOOK, '-e', JSON.stringify(ghost)], RUN);
    expect(res.code).toBe(2);
    const failures = failedVerifyResults(events);
    expect(failures.map((f) => `${f.host}: ${f.msg}`)).toEqual([
      'lb1: haproxy on lb1: not UP in show stat: web/ghost is DOWN',
    ]);
    expect(
      events.some(
        (e) =>
          e.type === 'warning' &&
          /verification failed after batch 1 of 2; not touching the remaining hosts/.test(e.msg),
      ),
    ).toBe(true);
    expect(events.filter((e) => (e.type === 'task_start' || e.type === 'task_result') && e.host === 'lb2')).toEqual([]);
    expect(await onHost('lb1', 'grep -c ghost /etc/haproxy/haproxy.cfg')).toBe('1');
    expect(await onHost('lb2', 'grep -c ghost /etc/haproxy/haproxy.cfg', { allowFailure: true })).toBe('0');

    const fixed = await labJson(['play', PLAYBOOK], RUN);
    expect(
      fixed.res.code,
      failedVerifyResults(fixed.events)
        .map((e) => e.msg)
        .join('\n'),
    ).toBe(0);
    expect(changedKeys(fixed.events)).toEqual([
      `lb1 | haproxy : ${CONFIG_TASK}`,
      'lb1 | haproxy : reload haproxy (handler)',
    ]);
  });

  it('verify names both hosts of a split brain, and reports an outage when no host holds the VIP', async () => {
    await onHost('lb2', `ip addr add ${VIP}/24 dev host0`);
    try {
      const { res, events } = await labJson(['verify', PLAYBOOK], RUN);
      expect(res.code).toBe(2);
      const msgs = failedVerifyResults(events).map((e) => e.msg);
      expect(msgs.length).toBeGreaterThan(0);
      expect(new Set(msgs)).toEqual(new Set([`split brain: the VIP ${VIP} is held by lb1 and lb2`]));
    } finally {
      await onHost('lb2', `ip addr del ${VIP}/24 dev host0`, { allowFailure: true });
    }

    await onHost('lb2', 'systemctl stop keepalived');
    await onHost('lb1', 'systemctl stop keepalived');
    try {
      expect(await holders()).toEqual([]);
      const { res, events } = await labJson(['verify', PLAYBOOK], RUN);
      expect(res.code).toBe(2);
      const msgs = failedVerifyResults(events).map((e) => `${e.host} ${e.check}: ${e.msg}`);
      expect(msgs).toContain(
        `lb1 the VIP is held by exactly one peer (none is an outage, two a split brain): outage: no host holds the VIP ${VIP} (asked lb1, lb2)`,
      );
      expect(msgs.some((m) => m.startsWith('lb1 keepalived is active'))).toBe(true);
      expect(msgs.some((m) => m.startsWith('lb2 keepalived is active'))).toBe(true);
      expect(msgs.some((m) => m.includes('the VIP answers HTTP from the jump host'))).toBe(true);
    } finally {
      await onHost('lb1', 'systemctl start keepalived');
      await onHost('lb2', 'systemctl start keepalived');
    }
    await waitForVipOn('lb1');
    const { res } = await labJson(['verify', PLAYBOOK], RUN);
    expect(res.code).toBe(0);
  });

  it('drill backend-down: one web host stopped, no request fails, the host is back UP', async () => {
    const result = await labDrill('backend-down', [], measured, RUN);
    expect(result.passed, result.msg).toBe(true);
    expect(result.measured.failed_requests).toBe(0);
    expect(result.measured.served_by_stopped_while_down).toBe(0);
    expect(Number(result.measured.requests_while_down)).toBeGreaterThan(10);
  });

  it('drill cert-rotate: both load balancers get a new certificate through the role, 0 failed HTTPS requests', async () => {
    const result = await labDrill('cert-rotate', [], measured, RUN);
    expect(result.passed, result.msg).toBe(true);
    expect(result.measured.failed_requests).toBe(0);
    expect(result.measured.rotated).toBe('lb1,lb2');
    expect(Number(result.measured.requests)).toBeGreaterThan(50);
    expect(Number(result.measured.lb1_days_left)).toBeGreaterThan(30);
    // The role's renewal rule holds again afterwards: nothing to change.
    const again = await labJson(['play', PLAYBOOK, '--check'], RUN);
    expect(changedKeys(again.events)).toEqual([]);
  });

  it('drill canary: web2 in at 0 % and up to 100 % in 10 gated steps, 0 failed; a forced gate failure rolls back', async () => {
    const promoted = await labDrill('canary', ['hold_s=3'], measured, RUN);
    expect(promoted.passed, promoted.msg).toBe(true);
    expect(promoted.measured.canary).toBe('web2');
    expect(promoted.measured.steps_done).toBe(10);
    expect(promoted.measured.failed_requests).toBe(0);
    expect(Number(promoted.measured.requests)).toBeGreaterThan(100);
    const rolledBack = await labDrill('canary', ['expect=rollback'], measured, RUN);
    expect(rolledBack.passed, rolledBack.msg).toBe(true);
    expect(rolledBack.measured.failed_gate).toBe('p99 at step 1');
    expect(rolledBack.measured.rolled_back).toBe('yes');
    expect(rolledBack.measured.failed_requests).toBe(0);
    // The drill put every weight back: the role has nothing to change.
    const again = await labJson(['play', PLAYBOOK, '--check'], RUN);
    expect(changedKeys(again.events)).toEqual([]);
  });

  it('drill failover (keepalived stopped on the master): the backup takes the VIP within the targets', async () => {
    const result = await labDrill('failover', [], measured, RUN);
    expect(result.passed, result.msg).toBe(true);
    expect(result.measured).toMatchObject({
      variant: 'service',
      old_master: 'lb1',
      new_master: 'lb2',
      restored: 'yes',
    });
    expect(Number(result.measured.outage_s)).toBeLessThanOrEqual(3);
    await waitForVipOn('lb1');
  });

  it('drill failover --set variant=poweroff (the master shuts down): the backup takes the VIP within the targets', async () => {
    const result = await labDrill('failover', ['variant=poweroff'], measured, RUN);
    expect(result.passed, result.msg).toBe(true);
    expect(result.measured).toMatchObject({ variant: 'poweroff', new_master: 'lb2', restored: 'yes' });
    await waitForVipOn('lb1');
  });

  it('drill failback: the restored master takes the VIP back (preempt); forwarding never stops longer than the move', async () => {
    const result = await labDrill('failback', [], measured, RUN);
    expect(result.passed, result.msg).toBe(true);
    expect(result.measured).toMatchObject({ master: 'lb1', vip_returned: 'yes' });
    // Only a request in flight at the ARP switch may fail (the drill's comment says why): at 100 ms a probe,
    // a gap of at most 200 ms is at most two requests.
    expect(Number(result.measured.outage_s)).toBeLessThanOrEqual(0.2);
    expect(Number(result.measured.failed_requests)).toBeLessThanOrEqual(2);
    await waitForVipOn('lb1');
  });

  it('drill two-node --set variant=powercut (document 001, half-yearly): lb1 and web1 killed at once; lb2 and web2 carry the traffic; both recover', async () => {
    const result = await labDrill('two-node', ['variant=powercut'], measured, RUN);
    expect(result.passed, result.msg).toBe(true);
    expect(result.measured).toMatchObject({ variant: 'powercut', lb_down: 'lb1', web_down: 'web1', new_master: 'lb2' });
    expect(Number(result.measured.switch_s)).toBeLessThanOrEqual(30);
    expect(Number(result.measured.detect_web_down_s)).toBeGreaterThan(0);
    expect(Number(result.measured.recovery_s)).toBeGreaterThan(0);
    // Probed every 100 ms from 1 s before the fault until 2 s after the VIP answers again (44 on the lab).
    expect(Number(result.measured.requests)).toBeGreaterThan(20);
    expect(await holders()).toEqual(['lb1']);
    const { res, events } = await labJson(['verify', PLAYBOOK], RUN);
    expect(
      res.code,
      failedVerifyResults(events)
        .map((e) => `${e.host}: ${e.msg}`)
        .join('\n'),
    ).toBe(0);
  });

  it('drill failover --set variant=powercut: measured against the targets (VRRPv2 needs 3 adverts + skew to notice)', async () => {
    // A power cut sends no "priority 0" goodbye: the backup notices only after its master-down interval
    // (3 x advert_int + skew = 3.6 s with advert_int 1), so the ≤ 3 s claim of document 000 is not always
    // met here; the switch target of document 003 (≤ 30 s) is, and the master comes back.
    const result = await labDrill('failover', ['variant=powercut'], measured, RUN);
    expect(result.measured).toMatchObject({ variant: 'powercut', new_master: 'lb2', restored: 'yes' });
    expect(Number(result.measured.switch_s)).toBeLessThanOrEqual(30);
    await waitForVipOn('lb1');
    const { res } = await labJson(['verify', PLAYBOOK], RUN);
    expect(res.code).toBe(0);
  });

  it('drill failover --set variant=unplug (document 001: cut the network): the isolated master keeps the VIP, the backup takes it too; plugged back, lb1 alone holds it and it answers', async () => {
    // Like a power cut, the backup only notices after its master-down interval; unlike one, the master runs on
    // and holds the VIP behind its dead link. Plugged back, the two meet: the backup must let go and the
    // jump host must reach the master again (its ARP entry pointed at the backup meanwhile).
    const result = await labDrill('failover', ['variant=unplug'], measured, RUN);
    expect(result.measured).toMatchObject({ variant: 'unplug', old_master: 'lb1', new_master: 'lb2', restored: 'yes' });
    expect(Number(result.measured.switch_s)).toBeLessThanOrEqual(30);
    expect(await holders()).toEqual(['lb1']);
    const { res, events } = await labJson(['verify', PLAYBOOK], RUN);
    expect(
      res.code,
      failedVerifyResults(events)
        .map((e) => `${e.host}: ${e.msg}`)
        .join('\n'),
    ).toBe(0);
  });
});
