/**
 * The jumphost role (roles/jumphost) against a real sshd host: check mode predicts exactly what the apply
 * changes, a second apply changes nothing, and what it wrote is what a jump host needs to run the drift watch
 * of docs/drift.md: the units pass `systemd-analyze verify`, the logrotate file passes `logrotate -d`, and
 * the drift user (a real system user, removed afterwards) can log in to a managed host with the key the role
 * gave it, checking that host's key against the known_hosts the role wrote. The drill schedule's unit (issue 19:
 * `cairn drill --due --metrics` for DrillOverdue) is run as systemd would run it: its ExecStart in its working
 * folder and environment, then its ExecStartPost, and the metrics land in the textfile folder, mode 0644.
 *
 * The test host is this machine, reached over loopback sshd as root, so every path the role writes is pointed
 * into the host's temp folder through the role's variables, and the apt task only confirms packages this
 * machine has (scripts/test-prereqs.sh installs logrotate; nodejs is left out, as this machine's node may not
 * come from a Debian package). The tasks tagged `systemd` (daemon-reload, the
 * timer) are skipped: this machine's PID 1 is not systemd, so there is no systemd to tell; the lab, whose
 * hosts run systemd, is where they run.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity } from 'age-encryption';
import { changedKeys, jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();

const driftUser = `cdrift${randomBytes(3).toString('hex')}`;
let lab: TestSshLab;
let inventory: string;
let playbook: string;
let home: string;
let hostDir: string;
let userCreated = false;

function sh(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

beforeAll(async () => {
  lab = await startSshHosts(2, { names: ['jump1', 'managed1'] });
  const jump = lab.hosts[0]!;
  hostDir = jump.dir;
  home = join(hostDir, 'home', driftUser);
  // The drift user must reach its home under the test's temp folders (mkdtemp makes them 0700).
  chmodSync(lab.dir, 0o711);
  chmodSync(join(lab.dir, 'hosts'), 0o711);
  chmodSync(hostDir, 0o711);
  const keyPath = join(lab.dir, 'drift_ed25519');
  expect(sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cairn-drift', '-f', keyPath]).code).toBe(0);
  // The managed hosts authorise the drift key (the test sshds share one authorized_keys file).
  writeFileSync(
    join(lab.dir, 'authorized_keys'),
    readFileSync(join(lab.dir, 'authorized_keys'), 'utf8') + readFileSync(`${keyPath}.pub`, 'utf8'),
  );
  const roleVars = {
    jumphost_packages: ['logrotate', 'openssh-client'],
    jumphost_node_bin: process.execPath,
    jumphost_cairn_bin: join(process.cwd(), 'bin', 'cairn.js'),
    jumphost_site_dir: join(hostDir, 'site'),
    jumphost_drift_user: driftUser,
    jumphost_drift_home: home,
    jumphost_drift_ssh_key: readFileSync(keyPath, 'utf8'),
    jumphost_drift_known_hosts: readFileSync(lab.knownHostsPath, 'utf8'),
    jumphost_drift_vault_identity: await generateIdentity(),
    jumphost_metrics_dir: join(hostDir, 'node-exporter'),
    jumphost_systemd_dir: hostDir,
    jumphost_logrotate_dir: hostDir,
    jumphost_log_dir: join(hostDir, 'log'),
    jumphost_drills_state_dir: join(hostDir, 'site', '.cairn'),
  };
  inventory = lab.writeInventory({ jumphost: ['jump1'] }, { jump1: roleVars });
  playbook = join(lab.dir, 'jumphost.yaml');
  writeFileSync(playbook, '- name: jump host\n  hosts: jumphost\n  gather_facts: false\n  roles: [jumphost]\n');
}, 120_000);

afterAll(async () => {
  if (userCreated || sh('id', ['-u', driftUser]).code === 0) sh('userdel', ['--', driftUser]);
  await lab?.stop();
});

async function play(...extra: string[]) {
  const run = await runCairn(
    ['play', playbook, '-i', inventory, '--skip-tags', 'systemd', '--json', '--no-journal', ...extra],
    { env: { CAIRN_STATE_DIR: join(lab.dir, 'state') }, timeoutMs: 240_000 },
  );
  const events = jsonEvents(run.stdout);
  const failed = taskResults(events).filter((e) => e.status === 'failed' || e.status === 'unreachable');
  expect(failed.map((e) => `${e.task.name}: ${JSON.stringify(e.msg ?? e)}`)).toEqual([]);
  expect(run.code, run.stderr).toBe(0);
  return changedKeys(events);
}

describe('the jumphost role on a real sshd host', { timeout: 600_000 }, () => {
  let predicted: string[];
  let applied: string[];

  it('check mode predicts exactly what the apply changes, and changes nothing itself', async () => {
    predicted = await play('--check');
    expect(existsSync(join(hostDir, 'cairn-drift.service'))).toBe(false);
    expect(sh('id', ['-u', driftUser]).code).not.toBe(0);
    applied = await play();
    userCreated = true;
    expect(applied).toEqual(predicted);
    expect(applied).toEqual(
      expect.arrayContaining([
        "jump1 | jumphost : The drift check's own user (not root)",
        "jump1 | jumphost : The drift user's key to the managed hosts",
        'jump1 | jumphost : drift.log is rotated weekly (logrotate -d checks it before it goes live)',
        'jump1 | jumphost : The drill schedule\'s metrics service and timer ["cairn-drills-due.service"]',
        'jump1 | jumphost : The drill schedule\'s metrics service and timer ["cairn-drills-due.timer"]',
      ]),
    );
  });

  it('a second apply, and a check after it, change nothing', async () => {
    expect(await play()).toEqual([]);
    expect(await play('--check')).toEqual([]);
  });

  it('writes units that systemd-analyze verify accepts, running cairn drift as the drift user', () => {
    const service = readFileSync(join(hostDir, 'cairn-drift.service'), 'utf8');
    expect(service).toContain(`User=${driftUser}\n`);
    expect(service).toContain(
      `ExecStart=${process.execPath} ${join(process.cwd(), 'bin', 'cairn.js')} drift site.yaml --no-journal --metrics ${home}/cairn-drift.prom\n`,
    );
    expect(readFileSync(join(hostDir, 'cairn-drift.timer'), 'utf8')).toContain('OnCalendar=hourly\n');
    const verified = sh('systemd-analyze', [
      'verify',
      '--man=no',
      ...['cairn-drift.service', 'cairn-drift.timer', 'cairn-drills-due.service', 'cairn-drills-due.timer'].map(
        (unit) => join(hostDir, unit),
      ),
    ]);
    // verify warns about the site folder missing from this test (WorkingDirectory) only at start, not here.
    expect(verified.code, verified.out).toBe(0);
  });

  it('writes a logrotate file that logrotate -d accepts', () => {
    const rotated = sh('logrotate', ['-d', join(hostDir, 'cairn')]);
    expect(rotated.code, rotated.out).toBe(0);
    expect(rotated.out).toContain(join(hostDir, 'log', 'drift.log'));
  });

  it('gives the drift user its key, known hosts and vault identity, readable by it alone', () => {
    const uid = Number(sh('id', ['-u', driftUser]).out.trim());
    for (const [file, mode] of [
      ['.ssh/id_ed25519', 0o600],
      ['.ssh/known_hosts', 0o644],
      ['.config/cairn/site.key', 0o600],
      ['.ssh', 0o700],
    ] as const) {
      const st = statSync(join(home, file));
      expect([file, st.uid, st.mode & 0o777]).toEqual([file, uid, mode]);
    }
    expect(readFileSync(join(home, '.config/cairn/site.key'), 'utf8')).toMatch(/^AGE-SECRET-KEY-1[0-9A-Z]+\n$/);
  });

  it('the drift user logs in to a managed host with that key, the host key checked', () => {
    const managed = lab.hosts[1]!;
    const login = sh('runuser', [
      '-u',
      driftUser,
      '--',
      'ssh',
      '-F',
      '/dev/null',
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${home}/.ssh/known_hosts`,
      '-i',
      `${home}/.ssh/id_ed25519`,
      '-p',
      String(managed.port),
      `root@${managed.address}`,
      'echo drift-login-ok',
    ]);
    expect(login.out).toContain('drift-login-ok');
    expect(login.code).toBe(0);
  });

  it('runs cairn drill --due hourly, without network, into the textfile folder, as DrillOverdue reads it', () => {
    const timer = readFileSync(join(hostDir, 'cairn-drills-due.timer'), 'utf8');
    expect(timer).toContain('OnCalendar=hourly\n');
    expect(timer).toContain('WantedBy=timers.target\n');
    const unit = readFileSync(join(hostDir, 'cairn-drills-due.service'), 'utf8');
    const settings = (key: string) =>
      unit
        .split('\n')
        .filter((line) => line.startsWith(`${key}=`))
        .map((line) => line.slice(key.length + 1));
    expect(settings('User')).toEqual(['root']);
    expect(settings('PrivateNetwork')).toEqual(['yes']);
    expect(settings('ProtectSystem')).toEqual(['strict']);
    expect(settings('SuccessExitStatus')).toEqual(['3']);
    expect(settings('RuntimeDirectory')).toEqual(['cairn-drills-due']);

    // The unit's own command lines, run as systemd would run them: in its working folder, with its
    // environment, the runtime folder (/run/cairn-drills-due, made by systemd) standing in as a temp folder.
    const site = join(hostDir, 'site');
    const runtime = join(hostDir, 'runtime');
    mkdirSync(site, { recursive: true });
    mkdirSync(runtime, { recursive: true });
    copyFileSync(join(process.cwd(), 'drills.yaml'), join(site, 'drills.yaml'));
    expect(settings('WorkingDirectory')).toEqual([site]);
    expect(settings('Environment')).toEqual([`CAIRN_STATE_DIR=${join(site, '.cairn')}`]);
    const [execStart] = settings('ExecStart');
    const argv = execStart!.replaceAll('/run/cairn-drills-due', runtime).split(' ');
    expect(argv.slice(2)).toEqual([
      'drill', '--due', '--no-color', '--schedule', join(site, 'drills.yaml'),
      '--metrics', join(runtime, 'cairn-drills.prom'),
    ]); // prettier-ignore
    const before = Math.floor(Date.now() / 1000);
    const ran = spawnSync(argv[0]!, argv.slice(1), {
      cwd: site,
      env: { ...process.env, CAIRN_STATE_DIR: join(site, '.cairn') },
      encoding: 'utf8',
      timeout: 60_000,
    });
    // No drill was ever recorded here: every entry is overdue, exit 3, which the unit counts as success.
    expect(ran.status, `${ran.stdout}${ran.stderr}`).toBe(3);
    const [post] = settings('ExecStartPost');
    const script = /^\+\/bin\/sh -c '(.*)'$/.exec(post!)?.[1];
    expect(script).toBeDefined();
    const copied = sh('/bin/sh', ['-c', script!.replaceAll('/run/cairn-drills-due', runtime)]);
    expect(copied.code, copied.out).toBe(0);

    const metricsDir = join(hostDir, 'node-exporter');
    expect(readdirSync(metricsDir).filter((n) => n.includes('drills'))).toEqual(['cairn-drills.prom']);
    expect(statSync(join(metricsDir, 'cairn-drills.prom')).mode & 0o777).toBe(0o644);
    const metrics = readFileSync(join(metricsDir, 'cairn-drills.prom'), 'utf8');
    expect(metrics).toMatch(
      /^cairn_drill_next_due_timestamp_seconds\{id="network-cut",drill="failover",every="monthly"\} 0$/m,
    );
    const written = Number(/^cairn_drill_schedule_timestamp_seconds (\d+)$/m.exec(metrics)?.[1]);
    expect(written).toBeGreaterThanOrEqual(before);
  });
});
