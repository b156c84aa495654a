/**
 * One settings reader (runner/app/config.ts) for cairn.cfg and ansible.cfg, with one precedence rule: the
 * first of CAIRN_CONFIG, ANSIBLE_CONFIG, ./cairn.cfg, ./ansible.cfg, ~/.ansible.cfg, /etc/ansible/ansible.cfg
 * that exists is read, alone. Files are real, in temp folders; HOME points at a temp folder too.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { applyBatchingEnabled, configPath, loadConfig, parseConfig } from '../../runner/app/config.js';
import { runCairn } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'cairn-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

/** A fresh site folder and home folder with the given files. */
function place(files: Record<string, string>): { site: string; home: string } {
  const base = join(root, `case${++counter}`);
  const site = join(base, 'site');
  const home = join(base, 'home');
  mkdirSync(site, { recursive: true });
  mkdirSync(home, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const path = name.startsWith('~/') ? join(home, name.slice(2)) : join(base, name);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, text);
  }
  return { site, home };
}

describe('which settings file is read', () => {
  it('takes the first that exists, never merging two', () => {
    const { site, home } = place({
      'site/cairn.cfg': '[defaults]\ninventory = inv/hosts.yaml\n',
      'site/ansible.cfg': '[defaults]\nforks = 3\n',
      '~/.ansible.cfg': '[defaults]\nroles_path = /shared/roles\nremote_user = deploy\n',
      'elsewhere/explicit.cfg': '[defaults]\nforks = 9\n',
    });
    const env = { HOME: home };
    const cfg = loadConfig(env, site)!;
    expect(cfg.path).toBe(join(site, 'cairn.cfg'));
    expect(cfg.inventory).toBe(join(site, 'inv', 'hosts.yaml'));
    // ~/.ansible.cfg is not merged in under cairn.cfg (it used to add its roles_path and remote_user).
    expect(cfg.rolesPath).toEqual([]);
    expect(cfg.remoteUser).toBeUndefined();
    const explicit = join(site, '..', 'elsewhere', 'explicit.cfg');
    expect(configPath({ ...env, ANSIBLE_CONFIG: explicit }, site)).toBe(explicit);
    expect(configPath({ ...env, ANSIBLE_CONFIG: explicit, CAIRN_CONFIG: 'cairn.cfg' }, site)).toBe(
      join(site, 'cairn.cfg'),
    );
    // A missing ANSIBLE_CONFIG is skipped, as Ansible does; then ./cairn.cfg.
    expect(configPath({ ...env, ANSIBLE_CONFIG: join(root, 'none.cfg') }, site)).toBe(join(site, 'cairn.cfg'));
  });

  it('falls through ./ansible.cfg and ~/.ansible.cfg', () => {
    const withAnsible = place({ 'site/ansible.cfg': '[defaults]\nforks = 3\n', '~/.ansible.cfg': '[defaults]\n' });
    expect(loadConfig({ HOME: withAnsible.home }, withAnsible.site)).toMatchObject({ forks: 3 });
    const homeOnly = place({ '~/.ansible.cfg': '[defaults]\nremote_user = deploy\nprivate_key_file = ~/k\n' });
    const cfg = loadConfig({ HOME: homeOnly.home }, homeOnly.site)!;
    expect(cfg.path).toBe(join(homeOnly.home, '.ansible.cfg'));
    expect(cfg.remoteUser).toBe('deploy');
  });

  it('a CAIRN_CONFIG that names no file is an error', () => {
    const { site, home } = place({});
    expect(() => loadConfig({ HOME: home, CAIRN_CONFIG: 'missing.cfg' }, site)).toThrow(/CAIRN_CONFIG names a file/);
  });
});

describe('reading a file', () => {
  it('cairn.cfg knows every key ansible.cfg does (forks, remote_user, ...), and refuses a typo at its line', () => {
    const cfg = parseConfig('/srv/site/cairn.cfg', '[defaults]\nforks = 7\nremote_user = deploy\nroles_path = roles\n');
    expect(cfg).toMatchObject({ forks: 7, remoteUser: 'deploy', rolesPath: ['/srv/site/roles'] });
    expect(() => parseConfig('/srv/site/cairn.cfg', '[defaults]\n\ninventroy = x\n')).toThrow(
      /unknown key "inventroy"/,
    );
    expect(() => parseConfig('/srv/site/cairn.cfg', '[defualts]\n')).toThrow(/unknown section \[defualts\]/);
  });

  it('an ansible.cfg may carry keys and sections cairn does not use', () => {
    const cfg = parseConfig('/srv/site/ansible.cfg', 'stray line\n[defaults]\ngathering = smart\n[weird]\nx = 1\n');
    expect(cfg).toEqual({ path: '/srv/site/ansible.cfg', rolesPath: [] });
  });

  it("reads Ansible's ssh plugin settings: [ssh_connection] or [connection] retries and timeout, [defaults] timeout", () => {
    const ansible = parseConfig('/srv/site/ansible.cfg', '[defaults]\ntimeout = 30\n[ssh_connection]\nretries = 3\n');
    expect([ansible.timeout, ansible.sshRetries]).toEqual([30, 3]);
    const cairn = parseConfig('/srv/site/cairn.cfg', '[connection]\nretries = 0\ntimeout = 12\n');
    expect([cairn.timeout, cairn.sshRetries]).toEqual([12, 0]);
    expect(() => parseConfig('/srv/site/ansible.cfg', '[ssh_connection]\n\nretries = -1\n')).toThrow(
      expect.objectContaining({
        message: 'retries must be a whole number ≥ 0, got "-1"',
        location: { file: '/srv/site/ansible.cfg', line: 3, col: 1 },
      }),
    );
    expect(() => parseConfig('/srv/site/cairn.cfg', '[defaults]\ntimeout = 0\n')).toThrow(
      /timeout must be a whole number ≥ 1, got "0"/,
    );
  });

  it('an inventory setting that names several paths is an error (cairn reads one inventory)', () => {
    expect(() => parseConfig('/srv/ansible.cfg', '[defaults]\ninventory = a.yaml, b.yaml\n')).toThrow(
      /inventory names 2 paths; cairn reads one/,
    );
  });
});

describe('apply batching switch', () => {
  it('on by default; apply_batching in the file turns it off; CAIRN_APPLY_BATCHING wins; a bad value is an error', () => {
    const off = parseConfig('/srv/site/cairn.cfg', '[defaults]\napply_batching = False\n');
    expect(off.applyBatching).toBe(false);
    expect(applyBatchingEnabled({}, undefined)).toBe(true);
    expect(applyBatchingEnabled({}, off)).toBe(false);
    expect(applyBatchingEnabled({ CAIRN_APPLY_BATCHING: '1' }, off)).toBe(true);
    expect(applyBatchingEnabled({ CAIRN_APPLY_BATCHING: 'off' }, undefined)).toBe(false);
    expect(() => applyBatchingEnabled({ CAIRN_APPLY_BATCHING: 'sometimes' }, undefined)).toThrow(
      /CAIRN_APPLY_BATCHING must be true or false, got "sometimes"/,
    );
    expect(() => parseConfig('/srv/site/cairn.cfg', '[defaults]\napply_batching = maybe\n')).toThrow(
      /apply_batching must be true or false/,
    );
  });
});

describe('the CLI reads it', () => {
  it('forks from cairn.cfg reaches the run (cairn.cfg could not set it before)', async () => {
    const { site, home } = place({
      'site/cairn.cfg': '[defaults]\ninventory = hosts.yaml\nforks = 1\n',
      'site/hosts.yaml': 'all:\n  hosts:\n    h1:\n      ansible_connection: local\n',
      'site/p.yaml': '- hosts: all\n  gather_facts: false\n  tasks: [{ debug: { msg: hi } }]\n',
    });
    const r = await runCairn(['play', 'p.yaml', '--syntax-check'], { cwd: site, env: { HOME: home } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
