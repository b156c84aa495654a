/**
 * Backups on the lab (issue 6, backup): borgmatic on lb1 lb2 web1 web2, one repository per client on mon1
 * over SSH. Proves convergence with a green verify (fresh archive, `borg check`), a second run with no
 * change, an exact --check prediction of a hand-made drift and its repair, that each client's key opens
 * only its own repository and no shell, that verify notices a stale backup, and document 004's backup
 * acceptance as the restore drill with its measured times (printed for the issue note).
 *
 * Everything runs through the built CLI against the real containers. Other engineers share the lab while
 * they develop: a command refused because another cairn run holds the inventory's lock is retried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedKeys } from '../helpers/cli.js';
import {
  drillResult,
  ensureLab,
  labJson,
  labUnavailable,
  onHost,
  runOnHost,
  verifyResults,
  type LabCairnOptions,
} from '../helpers/lab.js';

const PLAYBOOK = 'playbooks/backup.yaml';
const CONFIG_TASK = 'borgmatic configuration (validate-borgmatic-config before it goes live)';
const CLIENTS = ['lb1', 'lb2', 'web1', 'web2'];

const RUN: LabCairnOptions = { timeoutMs: 300_000, lockWaitMs: 600_000 };
/** Scripts here may run borg against the repository host: more time than the default. */
const SSH = { timeoutMs: 120_000 };

/** Measured numbers, printed at the end for the issue note. */
const measured: string[] = [];

/** borg run by hand on a client with its own key, known_hosts and passphrase (as borgmatic runs it). */
const borgAs = (args: string) =>
  `BORG_RSH='ssh -i /root/.ssh/cairn_borg_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/borgmatic/known_hosts' ` +
  `BORG_PASSCOMMAND='cat /etc/borgmatic/passphrase' borg ${args}`;

const unavailable = labUnavailable();

describe.skipIf(unavailable)(`backups on the lab${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  beforeAll(async () => {
    await ensureLab();
  });

  afterAll(() => {
    if (measured.length) console.log(`backup, measured:\n  ${measured.join('\n  ')}`);
  });

  it('converges and verifies: valid config, hourly timer, a fresh archive, borg check, restricted keys', async () => {
    const started = Date.now();
    const { res, events } = await labJson(['play', PLAYBOOK], RUN);
    measured.push(
      `first play: exit ${res.code} in ${((Date.now() - started) / 1000).toFixed(1)} s, ${changedKeys(events).length} changes`,
    );
    expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(0);
    const checks = verifyResults(events);
    expect(checks.filter((c) => !c.passed)).toEqual([]);
    const names = new Set(checks.map((c) => `${c.host}: ${c.check}`));
    for (const host of CLIENTS) {
      for (const check of [
        'the borgmatic configuration is valid',
        "the hourly timer is enabled and waiting, and the units in effect are cairn's",
        'the newest archive is younger than backup_max_age_hours',
        'borg check passes on the repository (repository and archives)',
      ]) {
        expect(names).toContain(`${host}: ${check}`);
      }
    }
    expect(names).toContain('mon1: every key of the borg account is restricted to borg serve');
    // Encrypted with repokey; the passphrase and the configuration readable by root only.
    expect(await onHost('web2', 'borgmatic rinfo --json', SSH)).toContain('"mode": "repokey"');
    expect(await onHost('web2', 'stat -c "%a %U" /etc/borgmatic/passphrase /etc/borgmatic/config.yaml', SSH)).toBe(
      '600 root\n600 root',
    );
    expect(await onHost('web2', 'systemctl show -p TimersCalendar borgmatic.timer', SSH)).toContain(
      'OnCalendar=*-*-* *:00:00',
    );
  });

  it('a second run changes nothing', async () => {
    const { res, events } = await labJson(['play', PLAYBOOK], RUN);
    expect(res.code, res.stderr).toBe(0);
    expect(changedKeys(events)).toEqual([]);
  });

  it('--check predicts exactly a hand-made drift, and --roles backup repairs it', async () => {
    await onHost('web2', "echo '# edited by hand' >> /etc/borgmatic/config.yaml", SSH);
    const check = await labJson(['play', PLAYBOOK, '--check'], RUN);
    expect(check.res.code, check.res.stderr).toBe(0);
    expect(changedKeys(check.events)).toEqual([`web2 | backup : ${CONFIG_TASK}`]);
    const repair = await labJson(['play', PLAYBOOK, '--roles', 'backup', '-l', 'web2'], RUN);
    expect(repair.res.code, repair.res.stderr).toBe(0);
    expect(changedKeys(repair.events)).toEqual([`web2 | backup : ${CONFIG_TASK}`]);
    expect(await onHost('web2', "grep -c 'edited by hand' /etc/borgmatic/config.yaml || true", SSH)).toBe('0');
  });

  it("a client's key opens its own repository only, and no shell", async () => {
    expect((await runOnHost('web2', borgAs('list --short ssh://borg@mon1:22/srv/borg/web2'), SSH)).code).toBe(0);
    const other = await runOnHost('web2', borgAs('list --short ssh://borg@mon1:22/srv/borg/web1'), SSH);
    expect(other.code).not.toBe(0);
    expect(other.stderr + other.stdout).toMatch(/not allowed|restrict/i);
    const shell = await runOnHost(
      'web2',
      "ssh -i /root/.ssh/cairn_borg_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/borgmatic/known_hosts borg@mon1 'id; echo shell-ran' </dev/null",
      SSH,
    );
    expect(shell.stdout).not.toContain('shell-ran');
    expect(shell.stdout).not.toContain('uid=');
  });

  it('verify notices a backup older than the threshold', async () => {
    const { res, events } = await labJson(['verify', PLAYBOOK, '-l', 'web2', '-e', 'backup_max_age_hours=0.0001'], RUN);
    expect(res.code).toBe(2);
    const age = verifyResults(events).find(
      (c) => c.check === 'the newest archive is younger than backup_max_age_hours',
    );
    expect(age?.passed).toBe(false);
    expect(JSON.stringify(age?.data)).toMatch(/the newest archive is [\d.]+ h old/);
  });

  it('drill restore: back up a marker tree, delete it, restore it from the newest archive, byte for byte', async () => {
    const { res, events } = await labJson(['drill', 'restore'], RUN);
    const result = drillResult(events);
    if (!result) throw new Error(`no drill_result (exit ${res.code}): ${res.stderr}${res.stdout.slice(-2000)}`);
    measured.push(`restore: ${result.passed ? 'PASS' : 'FAIL'} ${JSON.stringify(result.measured)}`);
    expect(result.passed, result.msg).toBe(true);
    expect(res.code).toBe(0);
    expect(result.measured.differences).toBe(0);
    expect(result.measured.archive).toBe(result.measured.newest_archive);
    expect(Number(result.measured.entries)).toBeGreaterThan(40);
    // The marker tree is gone again; the archive that held it stays (prune's business).
    const host = String(result.measured.host);
    expect((await runOnHost(host, `test -e ${String(result.measured.tree)}`, SSH)).code).not.toBe(0);
    expect(await onHost(host, borgAs(`list --short ssh://borg@mon1:22/srv/borg/${host}`), SSH)).toContain(
      String(result.measured.archive),
    );
  });
});
