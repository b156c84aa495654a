/**
 * Ansible's argument aliases (`lineinfile: dest=...`, `apt: pkg=...`, `sysctl: key=...`): the loader renames
 * them to the module's own argument before the schema check, for a mapping, `args:` and key=value strings;
 * an alias given beside its argument is refused at the alias's key. Names from each module's documentation
 * (ansible.builtin.lineinfile, apt, sysctl, cron, systemd_service, user, file, stat, replace, blockinfile).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import '../../runner/core/modules/all.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import { CairnError } from '../../runner/core/util/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-aliases-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function loadTask(task: string): Record<string, unknown> {
  const file = join(dir, `p${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `- hosts: all\n  tasks:\n    - ${task.replace(/\n/g, '\n      ')}\n`);
  const playbook = new PlaybookLoader({ rolesPath: [] }).loadPlaybook(file);
  return playbook.plays[0]!.tasks[0]!.args as Record<string, unknown>;
}

describe("Ansible's argument aliases", () => {
  it.each([
    ['lineinfile:\n  dest: /etc/hosts\n  line: x', { path: '/etc/hosts', line: 'x' }],
    ['lineinfile:\n  destfile: /etc/a\n  regex: ^a\n  line: b', { path: '/etc/a', regexp: '^a', line: 'b' }],
    ['blockinfile:\n  name: /etc/b\n  block: x', { path: '/etc/b', block: 'x' }],
    ['replace:\n  dest: /etc/c\n  regexp: a\n  replace: b', { path: '/etc/c', regexp: 'a', replace: 'b' }],
    ['file:\n  dest: /tmp/d\n  state: directory', { path: '/tmp/d', state: 'directory' }],
    ['stat:\n  name: /etc/e', { path: '/etc/e' }],
    ['apt:\n  pkg: nginx\n  update-cache: true', { name: 'nginx', update_cache: true }],
    ['apt: package=nginx state=present', { name: 'nginx', state: 'present' }],
    ['sysctl:\n  key: vm.swappiness\n  val: 10', { name: 'vm.swappiness', value: 10 }],
    ['cron:\n  name: job\n  job: /bin/true\n  dow: 1\n  dom: 2', { name: 'job', job: '/bin/true', weekday: 1, day: 2 }],
    ['systemd:\n  unit: nginx\n  state: started', { name: 'nginx', state: 'started' }],
    ['service:\n  service: nginx\n  state: started', { name: 'nginx', state: 'started' }],
    ['user:\n  user: deploy', { name: 'deploy' }],
  ])('%s', (task, want) => {
    expect(loadTask(task)).toEqual(want);
  });

  it('reads an alias from args:', () => {
    expect(loadTask('lineinfile:\n  line: x\nargs:\n  dest: /etc/f')).toEqual({ path: '/etc/f', line: 'x' });
  });

  it('refuses an alias given beside its argument, at the alias', () => {
    let caught: unknown;
    try {
      loadTask('lineinfile:\n  path: /etc/a\n  dest: /etc/b\n  line: x');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CairnError);
    const err = caught as CairnError;
    expect(err.message).toBe(
      'module "lineinfile": "dest" is Ansible\'s alias of "path", and "path" is given too; keep one',
    );
    // Line 5 of the playbook: `dest:` under the task's lineinfile mapping.
    expect(err.location).toMatchObject({ line: 5, col: 9 });
    expect(() => loadTask('apt:\n  pkg: a\n  package: b')).toThrow(
      /"package" is Ansible's alias of "name", and "pkg" is given too/,
    );
  });
});
