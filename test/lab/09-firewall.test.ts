/**
 * The firewall role on the lab (issue 19, item 2), numbered before 10-ha, 30-monitoring and 60-ceph on
 * purpose: it leaves the filter in place, so those files run behind it and prove VRRP, the exporters, haproxy
 * and Ceph's ports still pass (inventories/lab/group_vars/STAR/firewall.yaml list what each group opens).
 *
 * Written by the fence-net branch without running it (the lab belonged to another developer); the same module
 * and role are proven on a real sshd with real nft in test/integration/firewall.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sameRuleset } from '../../runner/core/modules/nftables.js';
import { changedKeys } from '../helpers/cli.js';
import {
  describeOnLab,
  failedVerifyResults,
  labJson,
  onHost,
  runOnHost,
  verifyResults,
  type LabCairnOptions,
} from '../helpers/lab.js';

const PLAYBOOK = 'playbooks/firewall.yaml';
const RUN: LabCairnOptions = { timeoutMs: 240_000, lockWaitMs: 300_000 };
const LB1 = '10.77.0.11';
const LB1_MGMT = '10.77.1.11';
/** A port nothing in the lab uses; lb1 listens on it during the test, so "no answer" is the firewall's doing. */
const PROBE_PORT = 5999;

/** From `host`, whether a TCP connect to address:port succeeds within 3 s ("open"), is refused, or times out. */
async function tcpFrom(host: string, address: string, port: number): Promise<'open' | 'refused' | 'dropped'> {
  const res = await runOnHost(host, `timeout 3 bash -c 'exec 3<>/dev/tcp/${address}/${port}'; echo "rc=$?"`);
  const rc = /rc=(\d+)/.exec(res.stdout)?.[1];
  return rc === '0' ? 'open' : rc === '124' ? 'dropped' : 'refused';
}

describeOnLab('firewall', () => {
  let varsDir: string;

  beforeAll(() => {
    varsDir = mkdtempSync(join(tmpdir(), 'cairn-fw-lab-'));
  });
  afterAll(() => {
    rmSync(varsDir, { recursive: true, force: true });
  });

  it('applies the filter on every host; verify green; --check exact; second run 0 changed', async () => {
    const check = await labJson(['play', PLAYBOOK, '--check'], RUN);
    expect(check.res.code, check.res.stderr).toBe(0);
    const first = await labJson(['play', PLAYBOOK], RUN);
    expect(
      first.res.code,
      failedVerifyResults(first.events)
        .map((e) => e.msg)
        .join('\n') + first.res.stderr,
    ).toBe(0);
    expect(changedKeys(first.events)).toEqual(changedKeys(check.events));
    const checks = verifyResults(first.events).map((e) => `${e.host} ${e.role}: ${e.check}`);
    expect(checks).toContain('lb1 firewall: input the rules do not accept is counted and dropped');
    const second = await labJson(['play', PLAYBOOK], RUN);
    expect(second.res.code).toBe(0);
    expect(changedKeys(second.events)).toEqual([]);
  });

  it('from another host: 80 and SSH pass on lb1, a listening port outside the rules is dropped and counted', async () => {
    // perl-base is on every Debian host; the listener's pid is kept to end exactly it.
    const listener = await onHost(
      'lb1',
      `setsid perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => ${PROBE_PORT}, Listen => 5, ReuseAddr => 1) or die; while ($c = $s->accept) { close $c }' </dev/null >/dev/null 2>&1 & echo $!`,
    );
    try {
      const before = await onHost('lb1', `nft list counter inet cairn dropped | grep -o 'packets [0-9][0-9]*'`);
      // SSH answers on the management network only (document 001): lb1's management address from web1's, not
      // its service address.
      expect(await tcpFrom('web1', LB1_MGMT, 22)).toBe('open');
      expect(await tcpFrom('web1', LB1, 22)).toBe('dropped');
      // 80 passes the filter: answered, or refused by lb1's kernel when haproxy is not deployed yet (10-ha).
      expect(await tcpFrom('web1', LB1, 80)).not.toBe('dropped');
      // Listening, reachable on lb1 itself, silent from web1: the filter, not a missing listener.
      expect(await tcpFrom('lb1', '127.0.0.1', PROBE_PORT)).toBe('open');
      expect(await tcpFrom('web1', LB1, PROBE_PORT)).toBe('dropped');
      expect(await tcpFrom('web1', LB1, 3306)).toBe('dropped');
      const after = await onHost('lb1', `nft list counter inet cairn dropped | grep -o 'packets [0-9][0-9]*'`);
      expect(Number(after.split(' ')[1])).toBeGreaterThan(Number(before.split(' ')[1]));
    } finally {
      await onHost('lb1', `kill ${Number(listener)}`, { allowFailure: true });
    }
  });

  it('a change that would cut cairn SSH to web2 is rolled back; web2 keeps its filter and cairn gets in', async () => {
    const before = await onHost('web2', 'nft -s list table inet cairn');
    const varsFile = join(varsDir, 'cut.json');
    writeFileSync(
      varsFile,
      JSON.stringify({ firewall_management_networks: ['10.77.0.250/32'], firewall_jump_hosts: [] }),
    );
    const cut = await labJson(['play', PLAYBOOK, '-l', 'web2', '-e', `@${varsFile}`], RUN);
    expect(cut.res.code).not.toBe(0);
    expect(cut.res.stdout).toContain('refuses a new SSH connection');
    // The same rules (a rollback loads the saved listing back, and nft prints a set of one without braces then).
    const restored = await onHost('web2', 'nft -s list table inet cairn');
    expect(sameRuleset(restored, before), `${before}\n---\n${restored}`).toBe(true);
    const again = await labJson(['play', PLAYBOOK, '-l', 'web2'], RUN);
    expect(again.res.code).toBe(0);
    expect(changedKeys(again.events)).toEqual([]);
  });
});
