/**
 * Ansible modules cairn knows by name but does not run (runner/core/modules/foreign.ts): they load with a
 * warning at the task, a misspelt name is still refused at load time, and a reached task fails with the
 * module's name and advice (the run-time half is in test/unit/engine.test.ts). Also the yum/dnf-only
 * arguments of `package` and apt's default_release.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import '../../../runner/core/modules/all.js';
import { foreignModule, isForeignModule } from '../../../runner/core/modules/foreign.js';
import { packageModule } from '../../../runner/core/modules/package.js';
import { aptApplyScript, aptProbeScript, planApt } from '../../../runner/core/modules/apt.js';
import { systemdModule } from '../../../runner/core/modules/systemd.js';
import type { ModuleContext } from '../../../runner/core/modules/types.js';
import { shortModuleName } from '../../../runner/core/playbook/ansible-keywords.js';
import { PlaybookLoader } from '../../../runner/core/playbook/load.js';
import { CairnError } from '../../../runner/core/util/errors.js';

const root = mkdtempSync(join(tmpdir(), 'cairn-foreign-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function load(yaml: string) {
  const file = join(root, `p${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(file, yaml);
  return new PlaybookLoader({ rolesPath: [] }).loadPlaybook(file);
}

describe('isForeignModule', () => {
  it.each([
    ['yum', true],
    ['ansible.builtin.dnf', true],
    ['rpm_key', true],
    ['seport', true],
    ['ec2_group', true],
    ['digital_ocean_droplet', true],
    ['docker_image', true],
    ['community.kubernetes.helm', true],
    ['community.general.some_module_cairn_lacks', true],
    ['ansible.builtin.deb822_repository', true],
    ['ansible.builtin.script', true],
    ['copyy', false],
    ['ansible.builtin.lineinfil', false],
    ['nosuchmodule', false],
  ])('%s -> %s', (written, expected) => {
    expect(isForeignModule(written, shortModuleName(written))).toBe(expected);
  });
});

describe('loading', () => {
  it('a foreign module loads, with a warning at the task naming it', () => {
    const book = load(
      '- hosts: all\n  tasks:\n    - name: rh\n      yum:\n        name: httpd\n        enablerepo: epel\n',
    );
    expect(book.plays[0]!.tasks[0]!.module).toBe('yum');
    expect(book.warnings).toHaveLength(1);
    expect(book.warnings?.[0]).toMatch(
      /\.yml:3:7: Ansible's yum module is not run by cairn: cairn manages Debian hosts/,
    );
  });

  it('a misspelt name is still refused at load time, at the module key', () => {
    let caught: unknown;
    try {
      load('- hosts: all\n  tasks:\n    - copyy:\n        src: a\n        dest: /b\n');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CairnError);
    expect(String(caught)).toMatch(/unknown module "copyy" \(did you mean "copy"\?\)/);
    expect((caught as CairnError).location?.line).toBe(3);
  });
});

describe('the refusal', () => {
  const ctx = {} as ModuleContext; // never used: the refusal is decided before any host is asked
  it('check and apply fail with the module and the collection named', async () => {
    const module = foreignModule('community.kubernetes.helm');
    const planned = await module.check(ctx, {});
    expect(planned.changed).toBe(false);
    expect(planned.failed).toMatch(/^Ansible's helm module \(collection community\.kubernetes\) is not run by cairn/);
    expect((await module.apply(ctx, {}, planned)).failed).toBe(true);
  });

  it('package with a yum/dnf-only argument fails at run time, not at load time', async () => {
    const planned = await packageModule.check(ctx, { name: 'git', enablerepo: 'epel' });
    expect(planned.failed).toMatch(/^package: enablerepo is an argument of the yum\/dnf backends/);
  });
});

describe('apt default_release', () => {
  it('the probe and the install use the same target release', () => {
    expect(aptProbeScript(['nginx'], false, 'bookworm-backports')).toMatch(
      /apt-cache -o '?APT::Default-Release=bookworm-backports'? policy -- nginx/,
    );
    const plan = planApt(
      { name: 'nginx', default_release: 'bookworm-backports' },
      ['nginx'],
      new Map(),
      new Map([['nginx', { candidate: '1.25' }]]),
      undefined,
    );
    expect(aptApplyScript(plan.state!)).toMatch(/ -t bookworm-backports install -- nginx/);
  });

  it('an empty default_release is unset, as in Ansible', () => {
    const plan = planApt(
      { name: 'nginx', default_release: '' },
      ['nginx'],
      new Map(),
      new Map([['nginx', { candidate: '1.22' }]]),
      undefined,
    );
    expect(aptApplyScript(plan.state!)).not.toContain('-t');
  });
});

describe('apt allow_downgrade, service use', () => {
  it('allow_downgrade adds --allow-downgrades to the install, through package too', () => {
    const policy = new Map([['nginx', { candidate: '1.25' }]]);
    const plan = planApt({ name: 'nginx=1.22', allow_downgrade: true }, ['nginx=1.22'], new Map(), policy, undefined);
    expect(aptApplyScript(plan.state!)).toMatch(/--allow-downgrades install -- nginx=1\.22/);
    const without = planApt({ name: 'nginx=1.22' }, ['nginx=1.22'], new Map(), policy, undefined);
    expect(aptApplyScript(without.state!)).not.toContain('--allow-downgrades');
  });

  it('service use: a backend other than systemd is refused when the task runs', async () => {
    const ctx = { taskLocation: { file: 'x.yml', line: 1, col: 1 } } as ModuleContext;
    await expect(systemdModule.check(ctx, { name: 'varnish', use: 'sysvinit' })).rejects.toThrow(
      /use "sysvinit" is not supported: cairn manages services with systemd/,
    );
  });
});

describe('arguments converted by the argument spec, as Ansible does', () => {
  it('systemd: daemon-reload=true (hyphenated alias, key=value) is daemon_reload true', () => {
    const book = load('- hosts: all\n  tasks:\n    - systemd: daemon-reload=true\n');
    expect(book.plays[0]!.tasks[0]!.args).toEqual({ daemon_reload: true });
  });

  it('a quoted "yes" for a boolean argument and "200,403" for uri status_code load', () => {
    const book = load(
      '- hosts: all\n  tasks:\n    - uri:\n        url: http://127.0.0.1/\n        return_content: "yes"\n' +
        '        status_code: "200,403"\n',
    );
    expect(book.plays[0]!.tasks[0]!.args).toMatchObject({ return_content: true, status_code: '200,403' });
  });

  it('a block notify reaches the tasks inside that have none of their own', () => {
    const book = load(
      '- hosts: all\n  tasks:\n    - block:\n        - command: a\n        - command: b\n          notify: own\n' +
        '      notify: from block\n  handlers:\n    - name: own\n      command: x\n' +
        '    - name: from block\n      command: y\n',
    );
    // A block without rescue/always may be flattened into its tasks.
    const inner = book.plays[0]!.tasks.flatMap((t) => (t.block ? t.block.block : [t]));
    expect(inner.map((t) => t.notify)).toEqual([['from block'], ['own']]);
  });
});
