/**
 * The networks role on the lab (issue 19, item 3; document 001: management and service networks separate). Every
 * container has two links: host0 on the service bridge cairnbr0 (10.77.0.0/24: the VIP, the front door, backends,
 * VRRP, Ceph, corosync) and mgmt0 on the management bridge cairnbr1 (10.77.1.0/24: cairn's SSH, monitoring
 * scrapes, backups). The role takes both over as systemd-networkd units from inventories/lab/group_vars/all/
 * networks.yaml: --check predicts the apply exactly, a second run changes nothing, verify reads the kernel's view;
 * and cairn's own connections really go over the management bridge.
 */
import { expect, it } from 'vitest';
import { changedKeys } from '../helpers/cli.js';
import {
  describeOnLab,
  failedVerifyResults,
  labJson,
  onHost,
  verifyResults,
  type LabCairnOptions,
} from '../helpers/lab.js';

const PLAYBOOK = 'playbooks/networks.yaml';
const RUN: LabCairnOptions = { timeoutMs: 240_000, lockWaitMs: 300_000 };
const HOSTS = ['lb1', 'lb2', 'web1', 'web2', 'mon1'];

describeOnLab('networks', (measured) => {
  it('converges exactly as --check predicted, verifies both links per host, and a second run changes nothing', async () => {
    const check = await labJson(['play', PLAYBOOK, '--check'], RUN);
    expect(check.res.code, check.res.stderr).toBe(0);
    const first = await labJson(['play', PLAYBOOK], { ...RUN, ms: 'run' });
    expect(failedVerifyResults(first.events).map((v) => `${v.host}: ${v.msg ?? ''}`)).toEqual([]);
    expect(first.res.code, first.res.stderr).toBe(0);
    expect(changedKeys(first.events)).toEqual(changedKeys(check.events));
    const verified = verifyResults(first.events).filter((v) => v.role === 'networks' && v.passed);
    expect(verified.map((v) => v.host).sort()).toEqual(expect.arrayContaining(HOSTS.sort()));
    const second = await labJson(['play', PLAYBOOK], RUN);
    expect(second.res.code, second.res.stderr).toBe(0);
    expect(changedKeys(second.events)).toEqual([]);
    measured.push(`first run ${(first.ms / 1000).toFixed(1)} s, ${changedKeys(first.events).length} changes; second 0`);
  }, 600_000);

  it("puts host0 on the service /24 and mgmt0 on the management /24, with the role's units in charge", async () => {
    for (const host of HOSTS) {
      const view = await onHost(
        host,
        'ip -o -4 addr show | awk \'$2 != "lo" {print $2, $4}\' | sort; ' +
          'networkctl status host0 mgmt0 2>/dev/null | sed -n "s/^ *Network File: //p"',
      );
      const lines = view.split('\n');
      expect(lines.filter((l) => /^(host0|mgmt0) /.test(l))).toEqual([
        expect.stringMatching(/^host0 10\.77\.0\.\d+\/24$/),
        expect.stringMatching(/^mgmt0 10\.77\.1\.\d+\/24$/),
      ]);
      expect(lines.filter((l) => l.startsWith('/'))).toEqual([
        '/etc/systemd/network/60-cairn-host0.network',
        '/etc/systemd/network/60-cairn-mgmt0.network',
      ]);
    }
  }, 120_000);

  it("cairn's SSH sessions arrive over the management bridge", async () => {
    // sshd sees the client's address: the controller's on cairnbr1 (10.77.1.1), not on cairnbr0 (10.77.0.1).
    for (const host of HOSTS) expect(await onHost(host, 'echo "${SSH_CONNECTION%% *}"')).toBe('10.77.1.1');
  }, 120_000);
});
