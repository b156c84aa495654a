/**
 * The engine end to end through the CLI, against real OpenSSH sshd hosts on loopback: check mode predicts
 * exactly what the run changes, a second run changes nothing, failures and unreachable hosts stay contained.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { changedKeys, jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();
const playbook = join(import.meta.dirname, '..', 'fixtures', 'play', 'site.yaml');

describe('cairn play against real sshd hosts', () => {
  let lab: TestSshLab;
  let inventory: string;
  let stateDir: string;

  beforeAll(async () => {
    lab = await startSshHosts(3, { names: ['app1', 'app2', 'app3'] });
    inventory = lab.writeInventory(
      { app: ['app1', 'app2', 'app3'] },
      Object.fromEntries(lab.hosts.map((h) => [h.name, { host_dir: h.dir }])),
    );
    stateDir = join(lab.dir, 'state');
  });
  afterAll(async () => {
    await lab?.stop();
  });

  const env = () => ({ CAIRN_STATE_DIR: stateDir });

  it('--check predicts exactly the changes the run makes, and a second run changes nothing', async () => {
    const check = await runCairn(['play', playbook, '-i', inventory, '--check', '--json'], { env: env() });
    expect(check.stderr).toBe('');
    expect(check.code).toBe(0);
    const predicted = changedKeys(jsonEvents(check.stdout));
    // Nothing was touched by the check run.
    for (const h of lab.hosts) expect(existsSync(join(h.dir, 'etc'))).toBe(false);

    const first = await runCairn(['play', playbook, '-i', inventory, '--json'], { env: env() });
    expect(first.code, first.stderr + first.stdout.slice(-2000)).toBe(0);
    const events = jsonEvents(first.stdout);
    const made = changedKeys(events);
    expect(made.length).toBeGreaterThan(20);
    expect(made).toEqual(predicted);

    for (const h of lab.hosts) {
      const conf = readFileSync(join(h.dir, 'etc', 'demo', 'demo.conf'), 'utf8');
      expect(conf).toContain('port = 8080');
      expect(conf).toContain(`# demo on ${h.name}`);
      expect(conf).toContain('item = gamma');
      expect(statSync(join(h.dir, 'etc', 'demo', 'demo.conf')).mode & 0o777).toBe(0o640);
      expect(readFileSync(join(h.dir, 'restarts.log'), 'utf8')).toBe('restarted for port 8080\n');
      expect(existsSync(join(h.dir, 'never'))).toBe(false);
      expect(readFileSync(join(h.dir, 'play-marker'), 'utf8')).toBe(`hello from ${h.name}\n`);
      // No temp file of the atomic writes is left behind.
      expect(readdirSync(join(h.dir, 'etc', 'demo')).sort()).toEqual([
        'alpha.txt',
        'beta.txt',
        'demo.conf',
        'gamma.txt',
        'settings',
      ]);
    }
    // One SSH connection per host for the whole run (tasks, handlers and verification all share it).
    const connections = events
      .filter((e) => e.type === 'connection_open')
      .map((e) => (e.type === 'connection_open' ? `${e.host} ${e.transport} ${e.user}@${e.address}` : ''));
    expect(connections.sort()).toEqual(lab.hosts.map((h) => `${h.name} ssh ${h.user}@${h.address}`).sort());
    const verify = events.filter((e) => e.type === 'verify_result');
    expect(verify).toHaveLength(9);
    expect(verify.every((e) => e.type === 'verify_result' && e.passed)).toBe(true);
    const recap = events.find((e) => e.type === 'recap');
    expect(recap && recap.type === 'recap' && recap.stats.app1).toMatchObject({
      failed: 0,
      unreachable: 0,
      skipped: 1,
    });

    const second = await runCairn(['play', playbook, '-i', inventory, '--json'], { env: env() });
    expect(second.code).toBe(0);
    expect(changedKeys(jsonEvents(second.stdout))).toEqual([]);
    const recap2 = jsonEvents(second.stdout).find((e) => e.type === 'recap');
    expect(recap2 && recap2.type === 'recap' && Object.values(recap2.stats).every((s) => s.changed === 0)).toBe(true);

    const checkAgain = await runCairn(['play', playbook, '-i', inventory, '--check', '--detailed-exitcode'], {
      env: env(),
    });
    expect(checkAgain.code).toBe(0);
  });

  it('detects drift with --check --diff and repairs it with --roles and --limit', async () => {
    await runCairn(['play', playbook, '-i', inventory, '--json'], { env: env() });
    const conf = join(lab.hosts[1]!.dir, 'etc', 'demo', 'demo.conf');
    writeFileSync(conf, readFileSync(conf, 'utf8').replace('port = 8080', 'port = 9999'));
    const check = await runCairn(['play', playbook, '-i', inventory, '--check', '--diff', '--detailed-exitcode'], {
      env: env(),
    });
    expect(check.code).toBe(3);
    expect(check.stdout).toContain('-port = 9999');
    expect(check.stdout).toContain('+port = 8080');
    expect(check.stdout).toMatch(/changed: \[app2\]/);
    expect(check.stdout).not.toMatch(/changed: \[app1\]/);
    const repair = await runCairn(['play', playbook, '-i', inventory, '--roles', 'demo', '-l', 'app2', '--json'], {
      env: env(),
    });
    expect(repair.code).toBe(0);
    const changed = changedKeys(jsonEvents(repair.stdout));
    expect(changed).toEqual(['app2 | demo : Render the config', 'app2 | demo : restart demo (handler)']);
    expect(readFileSync(conf, 'utf8')).toContain('port = 8080');
    // The handler ran once more on app2 only.
    expect(
      readFileSync(join(lab.hosts[1]!.dir, 'restarts.log'), 'utf8').split('\n').filter(Boolean).length,
    ).toBeGreaterThan(readFileSync(join(lab.hosts[0]!.dir, 'restarts.log'), 'utf8').split('\n').filter(Boolean).length);
    const hosts = new Set(taskResults(jsonEvents(repair.stdout)).map((e) => e.host));
    expect([...hosts]).toEqual(['app2']);
  });

  it('tags, extra vars and list options behave as in Ansible', async () => {
    const tagged = await runCairn(
      ['play', playbook, '-i', inventory, '-t', 'marker', '-e', 'greeting=salut', '--json'],
      { env: env() },
    );
    expect(tagged.code).toBe(0);
    const names = new Set(
      taskResults(jsonEvents(tagged.stdout))
        .filter((e) => !e.verify)
        .map((e) => e.task.name),
    );
    expect([...names].sort()).toEqual(['Gathering Facts', 'Record that the play ran']);
    expect(readFileSync(join(lab.hosts[0]!.dir, 'play-marker'), 'utf8')).toBe('salut from app1\n');

    const listHosts = await runCairn(['play', playbook, '-i', inventory, '--list-hosts', '-l', 'app1:app3'], {
      env: env(),
    });
    expect(listHosts.code).toBe(0);
    expect(listHosts.stdout).toMatch(/hosts \(2\):\n\s+app1\n\s+app3/);
    const listTasks = await runCairn(['play', playbook, '-i', inventory, '--list-tasks'], { env: env() });
    expect(listTasks.stdout).toContain('demo : Render the config');
    expect(listTasks.stdout).toContain('demo-base : Base directory exists');
    const syntax = await runCairn(['play', playbook, '-i', inventory, '--syntax-check'], { env: env() });
    expect(syntax.code).toBe(0);
  });

  it('an unreachable host and a refused host key stop only those hosts; --rerun failed picks them up', async () => {
    const bad = await startSshHosts(2, { names: ['gone', 'forged'] });
    try {
      // `gone` is stopped; `forged` presents a host key that the known_hosts file does not hold.
      const gone = bad.hosts[0]!;
      const forged = bad.hosts[1]!;
      await gone.stop();
      const hostVars: Record<string, Record<string, unknown>> = Object.fromEntries(
        lab.hosts.map((h) => [h.name, { host_dir: h.dir }]),
      );
      const inv = lab.writeInventory({ app: ['app1', 'app2', 'app3'] }, hostVars);
      const doc = parse(readFileSync(inv, 'utf8')) as {
        all: { hosts: Record<string, unknown>; children: { app: { hosts: Record<string, null> } } };
      };
      for (const [h, extra] of [
        [gone, { ansible_timeout: 3 }],
        [forged, {}],
      ] as const) {
        doc.all.hosts[h.name] = {
          ansible_host: h.address,
          ansible_port: h.port,
          ansible_user: 'root',
          ansible_ssh_private_key_file: lab.clientKeyPath,
          cairn_known_hosts: lab.knownHostsPath,
          host_dir: h.dir,
          ...extra,
        };
        doc.all.children.app.hosts[h.name] = null;
      }
      writeFileSync(inv, stringify(doc));
      const run = await runCairn(['play', playbook, '-i', inv, '--json'], { env: env() });
      expect(run.code).toBe(4);
      const events = jsonEvents(run.stdout);
      const unreachable = events
        .filter((e) => e.type === 'host_unreachable')
        .map((e) => e.type === 'host_unreachable' && `${e.host}: ${e.msg}`);
      expect(unreachable.join('\n')).toMatch(/forged: .*known_hosts/);
      expect(unreachable.join('\n')).toMatch(/gone: .*(refused|timed out)/i);
      const recap = events.find((e) => e.type === 'recap');
      expect(recap?.type === 'recap' && recap.stats.app3!.failed).toBe(0);
      expect(recap?.type === 'recap' && recap.stats.app3!.unreachable).toBe(0);
      expect(recap?.type === 'recap' && recap.stats.gone!.unreachable).toBe(1);

      // --rerun failed runs only the two lost hosts (both still lost).
      const rerun = await runCairn(['play', playbook, '-i', inv, '--rerun', 'failed', '--json'], { env: env() });
      const rerunHosts = new Set(taskResults(jsonEvents(rerun.stdout)).map((e) => e.host));
      expect([...rerunHosts].sort()).toEqual(['forged', 'gone']);
    } finally {
      await bad.stop();
    }
  });

  it('reaches a host through a jump host', async () => {
    const [a, b] = lab.hosts;
    const inv = lab.writeInventory(
      { app: ['app2'] },
      {
        app2: { host_dir: b!.dir, cairn_jump: `root@${a!.address}:${a!.port}` },
      },
    );
    const run = await runCairn(['run', 'app2', '-i', inv, '-m', 'command', '-a', 'echo via-jump', '--json', '-v'], {
      env: env(),
    });
    expect(run.code, run.stderr).toBe(0);
    const result = taskResults(jsonEvents(run.stdout))[0]!;
    expect(result.status).toBe('changed');
    expect(result.result?.stdout).toBe('via-jump');
  });
});
