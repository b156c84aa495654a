/**
 * Ansible material read the way Ansible reads it (issue 12, "no silent ignores"): YAML 1.1 booleans,
 * legacy ansible_ssh_* connection variables, warnings for ansible_* variables cairn does not implement,
 * role search order and layout, and Ansible Vault (vectors made with Debian's ansible-vault, see
 * test/fixtures/ansible-compat/vault/README.md).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectionSpecFor } from '../../runner/core/engine/connection-spec.js';
import { AnsibleVarWarnings, unimplementedAnsibleVars } from '../../runner/core/engine/ansible-vars.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { ansibleBool, shortModuleName } from '../../runner/core/playbook/ansible-keywords.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import { builtinRolesDir, packageRoot } from '../../runner/core/util/paths.js';
import {
  decryptAnsibleVault,
  encryptAnsibleVault,
  revealedAnsibleVaultValues,
  setAnsibleVaultSecrets,
} from '../../runner/core/util/ansible-vault.js';
import { loadYamlFile, parseYaml } from '../../runner/core/util/yaml-source.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { parseConfig } from '../../runner/app/config.js';
import '../../runner/core/modules/all.js';

const fixtures = join(packageRoot(), 'test', 'fixtures', 'ansible-compat');
const vaultDir = join(fixtures, 'vault');
const password = readFileSync(join(vaultDir, 'password.txt'), 'utf8').trim();

afterEach(() => setAnsibleVaultSecrets([]));

describe('YAML 1.1 booleans, as PyYAML reads them for Ansible', () => {
  it('reads yes/no/on/off in their three spellings as booleans, quoted ones as strings', () => {
    const v = parseYaml('a: yes\nb: No\nc: OFF\nd: on\ne: "no"\nf: y\ng: True\nh: 0644\n', 'x.yml').value;
    expect(v).toEqual({ a: true, b: false, c: false, d: true, e: 'no', f: 'y', g: true, h: 644 });
  });

  it('keywords take Ansible boolean words, and nothing else', () => {
    for (const w of ['yes', 'True', 'on', '1', 'y', 't']) expect(ansibleBool(w)).toBe(true);
    for (const w of ['no', 'False', 'off', '0', 'n', 'f']) expect(ansibleBool(w)).toBe(false);
    expect(ansibleBool('banana')).toBeUndefined();
  });
});

describe('connection variables', () => {
  const defaults = { baseDir: '/tmp', acceptNewHostKeys: false };
  it('honours ansible_ssh_host/port/user/pass; the legacy name wins when both are set, as in the ssh plugin', () => {
    const spec = connectionSpecFor(
      'web1',
      { ansible_ssh_host: '127.0.0.9', ansible_ssh_port: 2222, ansible_ssh_user: 'deploy', ansible_ssh_pass: 'pw' },
      defaults,
    );
    expect(spec).toMatchObject({ address: '127.0.0.9', port: 2222, user: 'deploy', password: 'pw' });
    const both = connectionSpecFor('web1', { ansible_host: '127.0.0.8', ansible_ssh_host: '127.0.0.9' }, defaults);
    expect(both.address).toBe('127.0.0.9');
  });

  it('warns once per variable about ansible_* variables cairn does not implement', () => {
    expect(
      unimplementedAnsibleVars({
        ansible_become_method: 'su',
        ansible_host: 'x',
        ansible_python_interpreter: '/usr/bin/python3',
        foo: 1,
      }),
    ).toEqual(['ansible_become_method']);
    const seen: string[] = [];
    const w = new AnsibleVarWarnings((m) => seen.push(m));
    w.check({ ansible_become_method: 'su' }, 'host a');
    w.check({ ansible_become_method: 'su', ansible_ssh_common_args: '-o X' }, 'host b');
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatch(
      /^ansible_become_method \(set for host a\) is an Ansible variable cairn does not implement/,
    );
    expect(seen[1]).toMatch(/^ansible_ssh_common_args/);
  });

  it('reads the fixture inventory with legacy variables and a YAML 1.1 `no`', () => {
    const inv = loadInventory(join(fixtures, 'shadow', 'hosts.yml'));
    const vars = inv.hostVars('web1');
    expect(vars.enable_thing).toBe(false);
    expect(connectionSpecFor('web1', vars, { baseDir: '/tmp', acceptNewHostKeys: false })).toMatchObject({
      address: '127.0.0.9',
      port: 2222,
      user: 'deploy',
    });
  });
});

describe('roles and plays as Ansible writes them', () => {
  const load = () =>
    new PlaybookLoader({ rolesPath: [builtinRolesDir()] }).loadPlaybook(join(fixtures, 'shadow', 'site.yml'));

  it('a user role beats the built-in role of the same name, and says where it came from', () => {
    const play = load().plays[0]!;
    const haproxy = play.roles.filter((r) => r.name === 'haproxy');
    expect(haproxy[0]!.dir).toBe(join(fixtures, 'shadow', 'roles', 'haproxy'));
    expect(haproxy[0]!.origin).toBe("the playbook's roles/");
  });

  it('reads tasks/main.yml, defaults/, vars/, meta/ dependencies with parameters; play keys in YAML 1.1', () => {
    const play = load().plays[0]!;
    expect(play.become).toBe(true);
    expect(play.gatherFacts).toBe(false);
    expect(play.remoteUser).toBe('deploy');
    const names = play.roles.map((r) => `${r.name}:${JSON.stringify(r.vars)}`);
    // base (dependency, with its parameter) once, haproxy three times: no params, other params, and
    // the third entry has the same (no) params as the first but a `when`; Ansible dedups it by params.
    expect(names).toEqual(['base:{"base_flag":true}', 'haproxy:{}', 'haproxy:{"haproxy_port":8080}']);
    const haproxy = play.roles[1]!;
    expect(haproxy.defaults).toEqual({ haproxy_port: 80 });
    expect(haproxy.roleVars).toEqual({ haproxy_pkg: 'haproxy' });
    expect(haproxy.tasks[0]!.module).toBe('debug');
    expect(haproxy.tasks[0]!.roleRef).toBe(haproxy);
    expect(play.tasks[0]!.module).toBe('command');
    expect(play.tasks[0]!.changedWhen).toBe(false);
  });

  it('fully qualified module names map to cairn modules', () => {
    expect(shortModuleName('ansible.builtin.copy')).toBe('copy');
    expect(shortModuleName('ansible.posix.sysctl')).toBe('sysctl');
    expect(shortModuleName('copy')).toBe('copy');
  });
});

describe('Ansible Vault', () => {
  it('decrypts ansible-vault 1.1 and 1.2 files (made by ansible-core) with the password', () => {
    const plain = 'db_password: hunter2\nother: "x"\n';
    expect(decryptAnsibleVault(readFileSync(join(vaultDir, 'v11.yml'), 'utf8'), [{ label: 'default', password }])).toBe(
      plain,
    );
    expect(
      decryptAnsibleVault(readFileSync(join(vaultDir, 'v12.yml'), 'utf8'), [
        { label: 'other', password: 'wrong' },
        { label: 'prod', password },
      ]),
    ).toBe(plain);
  });

  it('refuses a wrong password without decrypting', () => {
    expect(() =>
      decryptAnsibleVault(readFileSync(join(vaultDir, 'v11.yml'), 'utf8'), [{ label: 'default', password: 'nope' }]),
    ).toThrow(/no vault password given opens/);
  });

  it('round-trips its own encryption', () => {
    const text = encryptAnsibleVault('hello\n', 'pw', 'dev');
    expect(text.startsWith('$ANSIBLE_VAULT;1.2;AES256;dev\n')).toBe(true);
    expect(decryptAnsibleVault(text, [{ label: 'dev', password: 'pw' }])).toBe('hello\n');
  });

  it('an inline !vault value never loads as its ciphertext: refused without a password, opened and masked with one', () => {
    const file = join(vaultDir, 'inline.yml');
    let err: unknown;
    try {
      loadYamlFile(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CairnError);
    expect((err as CairnError).render()).toMatch(
      /inline\.yml:1:10: cannot open this !vault value: this is encrypted with Ansible Vault; give its password/,
    );
    setAnsibleVaultSecrets([{ label: 'default', password }]);
    expect(loadYamlFile(file).value).toEqual({ api_key: 's3cr3t-value' });
    expect(revealedAnsibleVaultValues()).toContain('s3cr3t-value');
  });

  it('a whole vars file encrypted with ansible-vault loads through the same loader, its strings masked', () => {
    setAnsibleVaultSecrets([{ label: 'default', password }]);
    expect(loadYamlFile(join(vaultDir, 'v11.yml')).value).toEqual({ db_password: 'hunter2', other: 'x' });
    expect(revealedAnsibleVaultValues()).toContain('hunter2');
  });
});

describe('ansible.cfg', () => {
  it('reads the [defaults] settings cairn has equivalents for, paths relative to the file', () => {
    const cfg = parseConfig(
      '/srv/site/ansible.cfg',
      '[defaults]\ninventory = ./hosts.ini\nroles_path = roles:~/shared/roles\nforks = 7\nremote_user = deploy\nprivate_key_file = keys/id_ed25519\nhost_key_checking = False ; no\n\n[ssh_connection]\npipelining = True\n',
    );
    expect(cfg).toMatchObject({
      inventory: '/srv/site/hosts.ini',
      forks: 7,
      remoteUser: 'deploy',
      privateKeyFile: '/srv/site/keys/id_ed25519',
      hostKeyChecking: false,
    });
    expect(cfg.rolesPath[0]).toBe('/srv/site/roles');
    expect(() => parseConfig('/x/ansible.cfg', '[defaults]\nforks = many\n')).toThrow(/forks must be a whole number/);
  });
});
