/**
 * The jumphost role's systemd tasks on a host whose PID 1 is systemd (issue 16): test/integration/jumphost-role
 * proves the rest of the role on loopback sshd but skips its two `systemd`-tagged tasks there (daemon-reload, the
 * drift timer enabled and started). Here the whole role runs on mon1, a lab container running systemd: --check
 * predicts the apply exactly, a second apply changes nothing, systemd has the timer enabled, active and scheduled;
 * the same for the drill schedule's timer (issue 19: `cairn drill --due --metrics` hourly), whose service systemd
 * loaded as the role wrote it (root, no network, in the site folder).
 *
 * Stand-ins, said: the lab's package repository has no Node.js 20 (Debian 12's is 18) and its hosts have no way
 * to the npm registry, so `jumphost_node_bin` is a small script that answers `--version` as Node 20 would and
 * `jumphost_cairn_bin` one that answers as cairn does. The timer is only enabled and started, never fired (the
 * first run is an hour away), so neither stands in for anything that runs. Everything the role put on mon1 is
 * removed afterwards.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedKeys, repoRoot, taskResults } from '../helpers/cli.js';
import { ensureLab, labJson, labUnavailable, onHost, type LabCairnOptions } from '../helpers/lab.js';

const RUN: LabCairnOptions = { timeoutMs: 300_000, lockWaitMs: 300_000 };
const STANDIN_DIR = '/usr/local/lib/cairn-lab-standin';
const unavailable = labUnavailable();

describe.skipIf(Boolean(unavailable))(
  `the jumphost role on a systemd lab host${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-jumphost-lab-'));
    const playbook = join(dir, 'jumphost.yaml');
    const varsFile = join(dir, 'vars.json');

    async function play(...extra: string[]): Promise<string[]> {
      const run = await labJson(['play', playbook, '-e', `@${varsFile}`, ...extra], RUN);
      const failed = taskResults(run.events).filter((e) => e.status === 'failed' || e.status === 'unreachable');
      expect(failed.map((e) => `${e.task.name}: ${JSON.stringify(e.msg ?? e)}`)).toEqual([]);
      expect(run.res.code, run.res.stderr).toBe(0);
      return changedKeys(run.events);
    }

    beforeAll(async () => {
      await ensureLab();
      writeFileSync(playbook, '- name: jump host\n  hosts: mon1\n  roles: [jumphost]\n');
      const key = join(dir, 'drift_ed25519');
      const made = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cairn-drift', '-f', key]);
      expect(made.status).toBe(0);
      writeFileSync(
        varsFile,
        JSON.stringify({
          jumphost_install_packages: true,
          jumphost_packages: ['logrotate', 'openssh-client'],
          jumphost_node_bin: `${STANDIN_DIR}/node`,
          jumphost_cairn_bin: `${STANDIN_DIR}/cairn`,
          jumphost_drift_ssh_key: readFileSync(key, 'utf8'),
          jumphost_drift_known_hosts: readFileSync(join(repoRoot, 'inventories/lab/generated/known_hosts'), 'utf8'),
        }),
      );
      await onHost(
        'mon1',
        [
          `mkdir -p ${STANDIN_DIR}`,
          `printf '#!/bin/sh\\n[ "$1" = --version ] && echo v20.11.1 && exit 0\\nexec "$@"\\n' > ${STANDIN_DIR}/node`,
          `printf '#!/bin/sh\\necho "cairn 0.0.0 (lab stand-in)"\\n' > ${STANDIN_DIR}/cairn`,
          `chmod 0755 ${STANDIN_DIR}/node ${STANDIN_DIR}/cairn`,
        ].join(' && '),
      );
    }, 900_000);

    afterAll(async () => {
      await onHost(
        'mon1',
        'systemctl disable --now cairn-drift.timer cairn-drills-due.timer >/dev/null 2>&1; ' +
          'rm -f /etc/systemd/system/cairn-drift.service /etc/systemd/system/cairn-drift.timer /etc/logrotate.d/cairn; ' +
          'rm -f /etc/systemd/system/cairn-drills-due.service /etc/systemd/system/cairn-drills-due.timer; ' +
          `systemctl daemon-reload; userdel -r cairn-drift >/dev/null 2>&1; rm -rf ${STANDIN_DIR} /var/log/cairn; true`,
        { allowFailure: true },
      );
      rmSync(dir, { recursive: true, force: true });
    }, 120_000);

    it('--check predicts the apply exactly, systemd tasks included; a second apply changes nothing', async () => {
      const predicted = await play('--check');
      const applied = await play();
      expect(applied).toEqual(predicted);
      expect(applied).toEqual(
        expect.arrayContaining([
          'mon1 | jumphost : systemd reads the changed units',
          'mon1 | jumphost : The drift timer runs and starts at boot',
          "mon1 | jumphost : The drill schedule's timer runs and starts at boot",
        ]),
      );
      expect(await play()).toEqual([]);
      expect(await play('--check')).toEqual([]);
    }, 900_000);

    it('systemd has the drift timer enabled, active and scheduled hourly', async () => {
      const state = await onHost(
        'mon1',
        'systemctl is-enabled cairn-drift.timer; systemctl is-active cairn-drift.timer; ' +
          'systemctl show -p TimersCalendar --value cairn-drift.timer; ' +
          'systemctl show -p NextElapseUSecRealtime --value cairn-drift.timer',
      );
      const [enabled, active, calendar, next] = state.split('\n');
      expect([enabled, active]).toEqual(['enabled', 'active']);
      expect(calendar).toMatch(/OnCalendar=\*-\*-\* \*:00:00/);
      expect(next).not.toBe('');
    }, 120_000);

    it("systemd has the drill schedule's timer enabled, active and hourly, its service as the role wrote it", async () => {
      const state = await onHost(
        'mon1',
        'systemctl is-enabled cairn-drills-due.timer; systemctl is-active cairn-drills-due.timer; ' +
          'systemctl show -p TimersCalendar --value cairn-drills-due.timer; ' +
          'systemctl show -p NextElapseUSecRealtime --value cairn-drills-due.timer; ' +
          'systemctl show -p User --value cairn-drills-due.service; ' +
          'systemctl show -p PrivateNetwork --value cairn-drills-due.service; ' +
          'systemctl show -p WorkingDirectory --value cairn-drills-due.service',
      );
      const [enabled, active, calendar, next, user, privateNetwork, workingDirectory] = state.split('\n');
      expect([enabled, active]).toEqual(['enabled', 'active']);
      expect(calendar).toMatch(/OnCalendar=\*-\*-\* \*:00:00/);
      expect(next).not.toBe('');
      expect([user, privateNetwork, workingDirectory]).toEqual(['root', 'yes', '/srv/site']);
    }, 120_000);
  },
);
