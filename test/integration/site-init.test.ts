/**
 * `cairn init` and the example production inventory (inventories/example/): init writes exactly the
 * repository's example, the site it makes passes --syntax-check and --list-hosts from its own folder (its
 * cairn.cfg names the inventory), every host's role variables — rendered, as the tasks will see them — pass
 * the role schemas, and a --check run of the whole site reaches real sshd hosts addressed under the
 * example's names (loopback sshd stands in for the servers; no lab here).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { Ajv } from 'ajv';
import { jsonEvents, repoRoot, runCairn } from '../helpers/cli.js';
import { startSshHosts, type TestSshLab } from '../helpers/sshd.js';
import '../../runner/core/modules/all.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import { builtinRolesDir, sharedTemplatesDir } from '../../runner/core/util/paths.js';
import { createTemplater } from '../../runner/core/template/index.js';
import { lazyVars, materialise } from '../../runner/core/engine/lazy-vars.js';
import { layerVars, type Vars } from '../../runner/core/util/vars.js';
import type { RunEvent } from '../../runner/core/engine/events.js';

const EXAMPLE_HOSTS = ['lb1', 'lb2', 'web1', 'web2', 'mon1', 'pve1', 'pve2', 'pve3'];

function filesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? filesUnder(p, base) : [relative(base, p)];
    })
    .sort();
}

describe('cairn init and the example inventory', { timeout: 300_000 }, () => {
  let work: string;
  let site: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'cairn-init-'));
    site = join(work, 'site');
    const made = await runCairn(['init', site], { cwd: work });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain('cairn vault keygen');
    // The jump host's drift watch is the jumphost role's, through the play init copies.
    expect(made.stdout).toContain('cairn play playbooks/jumphost.yaml (role jumphost');
    expect(readFileSync(join(site, 'README.md'), 'utf8')).toContain('`cairn play playbooks/jumphost.yaml`');
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('writes exactly inventories/example/, the built-in plays, rollout.yaml, drills.yaml and a cairn.cfg', () => {
    const example = join(repoRoot, 'inventories', 'example');
    const written = join(site, 'inventories', 'production');
    expect(filesUnder(written)).toEqual(filesUnder(example));
    for (const f of filesUnder(example))
      expect(readFileSync(join(written, f), 'utf8'), f).toBe(readFileSync(join(example, f), 'utf8'));
    for (const f of [
      'site.yaml',
      'rollout.yaml',
      'drills.yaml',
      ...readdirSync(join(repoRoot, 'playbooks')).map((p) => `playbooks/${p}`),
    ]) {
      expect(readFileSync(join(site, f), 'utf8'), f).toBe(readFileSync(join(repoRoot, f), 'utf8'));
    }
    expect(readFileSync(join(site, 'cairn.cfg'), 'utf8')).toMatch(
      /^inventory = inventories\/production\/hosts\.yaml$/m,
    );
    // No role is copied: the built-in roles come from the installed cairn.
    expect(readdirSync(join(site, 'roles'))).toEqual(['README.md']);
    // Every secret is a placeholder in the vault file, and the file says how to encrypt it.
    const vault = readFileSync(join(written, 'group_vars', 'all', 'vault.yaml'), 'utf8');
    expect(vault).toContain('cairn vault keygen');
    // No staging folder is left beside the site.
    expect(readdirSync(work)).toEqual(['site']);
  });

  it('refuses a folder that is not empty, and writes nothing', async () => {
    const again = await runCairn(['init', site], { cwd: work });
    expect(again.code).toBe(5);
    expect(again.stderr).toMatch(/is not empty/);
    expect(readdirSync(work)).toEqual(['site']);
  });

  it('passes --syntax-check and --list-hosts from the site folder, with no -i (cairn.cfg)', async () => {
    const syntax = await runCairn(['play', 'site.yaml', '--syntax-check'], { cwd: site });
    expect(syntax.stderr).toBe('');
    expect(syntax.code).toBe(0);
    expect(syntax.stdout).toMatch(/syntax OK \(10 plays\)/);
    const hosts = await runCairn(['play', 'site.yaml', '--list-hosts'], { cwd: site });
    expect(hosts.code, hosts.stderr).toBe(0);
    const first = hosts.stdout.split('\nplay #')[1]!;
    for (const h of EXAMPLE_HOSTS) expect(first).toContain(`    ${h}\n`);
    expect(hosts.stdout).toMatch(
      /play #8 \(lb\): Load balancers, one at a time\n {2}pattern: \['lb'\]\n {2}hosts \(2\):\n {4}lb1\n {4}lb2\n/,
    );
  });

  it('gives every host of every play role variables that pass the role schemas once rendered', () => {
    const inventory = loadInventory(join(site, 'inventories', 'production', 'hosts.yaml'));
    const playbook = new PlaybookLoader({ rolesPath: [builtinRolesDir()] }).loadPlaybook(join(site, 'site.yaml'));
    const templater = createTemplater({ partialsDirs: [sharedTemplatesDir()] });
    const ajv = new Ajv({ allErrors: true, strict: false });
    let checked = 0;
    for (const play of playbook.plays) {
      const defaults = layerVars(...play.roles.map((r) => r.defaults));
      for (const host of inventory.select(play.hosts)) {
        // Facts the defaults read (zfs_debian_suite: facts.os.codename) as Debian 12 reports them.
        const layered = layerVars(defaults, inventory.hostVars(host), play.vars, {
          facts: { os: { codename: 'bookworm' } },
        });
        const view = lazyVars(layered, (t, context) => templater.renderValue(t, context, play.location));
        for (const role of play.roles) {
          expect(role.dir, `${role.name} comes from the built-in roles`).toBe(join(builtinRolesDir(), role.name));
          const schema = role.schema as { properties?: Record<string, unknown> } | undefined;
          if (!schema) continue;
          const vars: Vars = {};
          for (const key of Object.keys(schema.properties ?? {}))
            if (key in layered) vars[key] = materialise(view[key]);
          const validate = ajv.compile(schema);
          expect(validate(vars), `${host} ${role.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
          checked++;
        }
      }
    }
    // 8 base + 8 networks + 8 firewall + 3 zfs + 3 kvm + 3 ceph + 2 webapp + 2x2 lb + 8 prometheus + 5 backup
    // host x role pairs
    expect(checked).toBe(52);
  });

  it('announces a site role that replaces a built-in one, and reads cairn.cfg strictly', async () => {
    const own = join(work, 'own-role');
    expect((await runCairn(['init', own], { cwd: work })).code).toBe(0);
    mkdirSync(join(own, 'roles', 'webapp'));
    writeFileSync(join(own, 'roles', 'webapp', 'tasks.yaml'), "- name: the site's own webapp\n  debug: {msg: mine}\n");
    const syntax = await runCairn(['play', 'site.yaml', '--syntax-check'], { cwd: own });
    expect(syntax.code, syntax.stderr).toBe(0);
    expect(syntax.stderr).toBe("NOTE: role webapp: using the site's roles/webapp, not cairn's built-in role\n");
    const tasks = await runCairn(['play', 'site.yaml', '--list-tasks'], { cwd: own });
    expect(tasks.stdout).toContain("webapp : the site's own webapp");
    // A misspelt key is an error at its line, never a silent fall-back to the lab's inventory.
    writeFileSync(join(own, 'cairn.cfg'), '[defaults]\ninventroy = inventories/production/hosts.yaml\n');
    const typo = await runCairn(['play', 'site.yaml', '--list-hosts'], { cwd: own });
    expect(typo.code).toBe(5);
    expect(typo.stderr).toContain(`${join(own, 'cairn.cfg')}:2:1: unknown key "inventroy"`);
  });

  describe('a --check run of site.yaml against real sshd hosts named as the example', () => {
    let lab: TestSshLab;
    beforeAll(async () => {
      lab = await startSshHosts(EXAMPLE_HOSTS.length, { names: EXAMPLE_HOSTS });
    });
    afterAll(async () => {
      await lab?.stop();
    });

    it('reaches every host and predicts changes; the only failures are this machine having no systemd', async () => {
      // The example's hosts.yaml with each host's address replaced by its loopback sshd; group_vars and
      // host_vars stay the example's.
      const hostsFile = join(site, 'inventories', 'production', 'hosts.yaml');
      const doc = parse(readFileSync(hostsFile, 'utf8')) as {
        all: { vars: Vars; children: Record<string, { hosts: Record<string, Vars> }> };
      };
      doc.all.vars.ansible_ssh_private_key_file = lab.clientKeyPath;
      doc.all.vars.cairn_known_hosts = lab.knownHostsPath;
      for (const group of Object.values(doc.all.children)) {
        for (const [name, vars] of Object.entries(group.hosts)) {
          const h = lab.hosts.find((x) => x.name === name)!;
          vars.ansible_host = h.address;
          vars.ansible_port = h.port;
        }
      }
      const loopbackSite = join(work, 'loopback-site');
      mkdirSync(loopbackSite);
      const copy = await runCairn(['init', loopbackSite], { cwd: work });
      expect(copy.code).toBe(0);
      writeFileSync(join(loopbackSite, 'inventories', 'production', 'hosts.yaml'), stringify(doc));
      const check = await runCairn(['play', 'site.yaml', '--check', '--json'], {
        cwd: loopbackSite,
        env: { CAIRN_STATE_DIR: join(work, 'state') },
        timeoutMs: 280_000,
      });
      const events = jsonEvents(check.stdout);
      const results = events.filter((e): e is Extract<RunEvent, { type: 'task_result' }> => e.type === 'task_result');
      expect(
        results.filter((e) => e.status === 'unreachable').map((e) => e.host),
        check.stderr,
      ).toEqual([]);
      // The loopback "hosts" are this test machine, a container whose PID 1 is not systemd: the first task
      // that asks systemd fails there, on every host alike. Anything else failing is a defect of the example
      // (a variable, a template, a probe), and fails this test.
      const failed = results.filter((e) => e.status === 'failed');
      const notSystemd = /systemd is not running on this host/;
      expect(
        failed.filter((e) => !notSystemd.test(String(e.msg))).map((e) => `${e.host}: ${e.task.name}: ${e.msg}`),
      ).toEqual([]);
      // Every host was reached and its facts read, and the baseline's file changes were predicted.
      for (const host of EXAMPLE_HOSTS) {
        const mine = results.filter((e) => e.host === host);
        expect(mine.find((e) => e.task.module === 'setup')?.status, host).toBe('ok');
        expect(mine.filter((e) => e.status === 'changed').length, host).toBeGreaterThan(0);
      }
      const recap = events.find((e): e is Extract<RunEvent, { type: 'recap' }> => e.type === 'recap');
      expect(Object.keys(recap?.stats ?? {}).sort()).toEqual([...EXAMPLE_HOSTS].sort());
      expect(check.code).toBe(failed.length ? 2 : 0);
    });
  });
});
