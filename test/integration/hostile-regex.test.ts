/**
 * A managed host's file can be built to make a backtracking regex run for ever (issue 13, item 10). The module
 * regexes (lineinfile here; blockinfile and the filters take the same path, runner/core/template/regex.ts)
 * run on a linear-time engine, so the run ends; before, JavaScript's RegExp took 2^n steps on `^(a+)+$` over a
 * line of n a's ending in '!', with the event loop (and Ctrl-C) blocked. A pattern RE2 cannot run is a task
 * error at the task's file:line:col naming the construct, and nothing on the host changes.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();

describe('regexes over a hostile host file, real sshd, the built CLI', () => {
  let lab: TestSshLab;
  let inventory: string;
  const hostile = `${'a'.repeat(40_000)}!`;

  beforeAll(async () => {
    lab = await startSshHosts(1, { names: ['r1'] });
    inventory = lab.writeInventory({}, { r1: { host_dir: lab.hosts[0]!.dir } });
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('catastrophic patterns over a 40,000-character line end: lineinfile and a when over the same text', async () => {
    const dir = lab.hosts[0]!.dir;
    writeFileSync(join(dir, 'hostile.conf'), `first\n${hostile}\n`);
    const playbook = join(lab.dir, 'redos.yaml');
    writeFileSync(
      playbook,
      [
        '- hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - name: read the hostile file',
        '      command: cat {{ host_dir }}/hostile.conf',
        '      register: hostile',
        '      changed_when: false',
        '    - name: a when over host output',
        '      debug: { msg: "never" }',
        "      when: hostile.stdout is search('^(a+)+$', multiline=True)",
        '    - name: lineinfile over the hostile file',
        '      lineinfile:',
        '        path: "{{ host_dir }}/hostile.conf"',
        "        regexp: '^(a|aa)+$'",
        '        line: managed',
        '',
      ].join('\n'),
    );
    const res = await runCairn(['play', playbook, '-i', inventory], {
      env: { CAIRN_STATE_DIR: join(lab.dir, 'state-redos') },
    });
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/skipping: \[r1\]/);
    expect(readFileSync(join(dir, 'hostile.conf'), 'utf8')).toBe(`first\n${hostile}\nmanaged\n`);
  });

  it('a backreference is a task error at the task location naming the construct; the file is untouched', async () => {
    const dir = lab.hosts[0]!.dir;
    writeFileSync(join(dir, 'pairs.conf'), 'a=a\n');
    const playbook = join(lab.dir, 'backref.yaml');
    writeFileSync(
      playbook,
      [
        '- hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - name: a pattern RE2 cannot run',
        '      lineinfile:',
        '        path: "{{ host_dir }}/pairs.conf"',
        "        regexp: '^(\\w+)=\\1$'",
        '        line: same',
        '',
      ].join('\n'),
    );
    const res = await runCairn(['play', playbook, '-i', inventory], {
      env: { CAIRN_STATE_DIR: join(lab.dir, 'state-backref') },
    });
    const output = res.stdout + res.stderr;
    expect(res.code, output).toBe(5);
    expect(output).toContain(`${playbook}:4:7`);
    expect(output).toMatch(/lineinfile regexp: invalid regular expression .*the backreference \\1 is not supported/);
    expect(output).not.toMatch(/^\s+at /m);
    expect(readFileSync(join(dir, 'pairs.conf'), 'utf8')).toBe('a=a\n');
  });
});
