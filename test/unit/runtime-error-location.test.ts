/**
 * Issue #14: an error found while rendering `{{ }}` at run time names the file:line:col of the YAML value (or
 * template line) that holds the expression, quotes the expression and says what failed, wherever the value is
 * written: a task argument, `args:`, a loop, a vars file, an inventory variable, a template file. The engine
 * runs for real over a fake connection (no sshd: every case fails before anything is sent to a host).
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import '../../runner/core/modules/all.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { makeTestEngine } from '../helpers/fake-connection.js';

const root = mkdtempSync(join(tmpdir(), 'cairn-errloc-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

const INVENTORY = [
  'all:',
  '  hosts:',
  '    app1:',
  '      ansible_host: 127.0.0.1',
  '      motd: "welcome to {{ site_name | upper }}"',
  '      port_text: "{{ http_port + 1 }}"',
  '  vars:',
  '    http_port: "80"',
  '',
].join('\n');

/** Runs `playbook` (YAML text) with extra files beside it; returns the failed task's message. */
async function failureOf(playbook: string, files: Record<string, string> = {}): Promise<{ msg: string; dir: string }> {
  const dir = join(root, `case${++counter}`);
  mkdirSync(dir);
  for (const [name, text] of Object.entries({ 'hosts.yaml': INVENTORY, ...files })) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  writeFileSync(join(dir, 'site.yaml'), playbook);
  const inventory = loadInventory(join(dir, 'hosts.yaml'));
  // No reply: nothing may reach the host, a script would be an unexpected round trip (FakeConnection refuses it).
  const { events, run } = makeTestEngine({ inventory, check: true, forks: 1 });
  await run(join(dir, 'site.yaml'));
  const failed = events.find((e) => e.type === 'task_result' && e.status === 'failed') as { msg?: string } | undefined;
  expect(failed, 'a task failed').toBeDefined();
  return { msg: failed!.msg ?? '', dir };
}

const play = (...taskLines: string[]) =>
  ['- hosts: all', '  gather_facts: false', '  tasks:', ...taskLines.map((l) => `    ${l}`), ''].join('\n');

describe('a run-time expression error names the YAML value it is written in', () => {
  it('a task argument in a module mapping: its own line and column', async () => {
    const { msg, dir } = await failureOf(
      play('- name: write the page', '  copy:', '    dest: /tmp/page', '    content: "hello {{ visitor.name }}"'),
    );
    // Line 7, column 18: where the quoted value starts (not the task's line 4); then the failing part.
    expect(msg.split('\n')[0]).toMatch(
      new RegExp(
        `^${dir}/site.yaml:7:18: undefined variable "visitor.name": "visitor" is not defined ` +
          'in template "hello \\{\\{ visitor.name \\}\\}" \\(at col 10: "visitor.name"\\)',
      ),
    );
    // The expression with a caret under the failing part.
    expect(msg.split('\n').slice(1)).toEqual(['1 | hello {{ visitor.name }}', '             ^']);
  });

  it('an argument given under args:, and a free-form argument', async () => {
    const viaArgs = await failureOf(
      play('- name: make it', '  file:', '    state: directory', '  args:', '    path: "/srv/{{ app_dir }}"'),
    );
    expect(viaArgs.msg).toMatch(new RegExp(`^${viaArgs.dir}/site.yaml:8:15: undefined variable "app_dir"`));
    const freeForm = await failureOf(play('- name: run it', '  command: echo {{ ghost }}'));
    expect(freeForm.msg).toMatch(new RegExp(`^${freeForm.dir}/site.yaml:5:16: undefined variable "ghost"`));
  });

  it('a loop', async () => {
    const { msg, dir } = await failureOf(
      play('- name: each', '  command: echo {{ item }}', '  loop: "{{ packages | sort }}"'),
    );
    expect(msg).toMatch(new RegExp(`^${dir}/site.yaml:6:13: undefined variable "packages"`));
  });

  it('a variable from a vars file, read by a task: the vars file line, not the task', async () => {
    const { msg, dir } = await failureOf(
      [
        '- hosts: all',
        '  gather_facts: false',
        '  vars_files: [vars/web.yaml]',
        '  tasks:',
        '    - command: echo {{ greeting }}',
        '',
      ].join('\n'),
      { 'vars/web.yaml': '# greetings\ngreeting: "hi {{ visitor_count * 2 }}"\n' },
    );
    // The task's argument that read it, and inside, the vars file's line that holds the failing template.
    expect(msg).toMatch(new RegExp(`^${dir}/site.yaml:5:16: undefined variable "greeting"`));
    expect(msg).toContain(
      `(its template failed: ${dir}/vars/web.yaml:2:1: undefined variable "visitor_count" ` +
        'in template "hi {{ visitor_count * 2 }}" (at col 7: "visitor_count")',
    );
  });

  it('an inventory variable: its line in the inventory, with the failing part and what was expected', async () => {
    const undefinedVar = await failureOf(play('- command: echo {{ motd }}'));
    expect(undefinedVar.msg).toContain(
      `(its template failed: ${undefinedVar.dir}/hosts.yaml:5:7: undefined variable "site_name" in template`,
    );
    const badType = await failureOf(play('- command: echo {{ port_text }}'));
    expect(badType.msg.split('\n')[0]).toContain(`${badType.dir}/hosts.yaml:6:7: `);
    expect(badType.msg.split('\n')[0]).toContain('"{{ http_port + 1 }}"');
  });

  it('a template file: the template line', async () => {
    const { msg, dir } = await failureOf(play('- template: { src: page.hbs, dest: /tmp/page }'), {
      'templates/page.hbs': 'line one\nline two\nhello {{visitor_name}}\n',
    });
    expect(msg).toMatch(new RegExp(`^${dir}/templates/page.hbs:3`));
    expect(msg).toContain('visitor_name');
  });
});

/**
 * Conditions and task vars: a role's, a block's or an include's `when` is merged into each task's list when
 * the playbook loads; each condition still names its own YAML value, and so does each key of a task's `vars:`.
 */
describe('a run-time condition error names the condition it is written in', () => {
  const ROLE = { 'roles/web/tasks/main.yaml': '# the web role\n- name: say hi\n  debug: { msg: hi }\n' };

  it.each(['import_role', 'include_role'])('a when on %s: its own line, not the role task', async (keyword) => {
    const { msg, dir } = await failureOf(
      play('- name: bring in web', `  ${keyword}:`, '    name: web', "  when: site_mode == 'live'"),
      ROLE,
    );
    expect(msg.split('\n')[0]).toMatch(
      new RegExp(
        `^${dir}/site.yaml:7:13: undefined variable "site_mode" in expression "site_mode == 'live'" \\(at col 1`,
      ),
    );
    expect(msg.split('\n').slice(1)).toEqual(["1 | site_mode == 'live'", '    ^']);
  });

  it("a when on a play's role entry", async () => {
    const { msg, dir } = await failureOf(
      ['- hosts: all', '  gather_facts: false', '  roles:', '    - role: web', '      when: site_mode', ''].join('\n'),
      ROLE,
    );
    expect(msg).toMatch(new RegExp(`^${dir}/site.yaml:5:13: undefined variable "site_mode"`));
  });

  it("a block's when, and a task's own when after it in the merged list", async () => {
    const blockWhen = await failureOf(
      play('- name: grouped', '  when: ready_now', '  block:', '    - debug: { msg: hi }'),
    );
    expect(blockWhen.msg).toMatch(new RegExp(`^${blockWhen.dir}/site.yaml:5:13: undefined variable "ready_now"`));
    const taskWhen = await failureOf(
      play(
        '- name: grouped',
        '  when: true',
        '  block:',
        '    - debug: { msg: hi }',
        '      when: [1 == 1, ghost > 1]',
      ),
    );
    expect(taskWhen.msg).toMatch(new RegExp(`^${taskWhen.dir}/site.yaml:8:26: undefined variable "ghost"`));
  });

  it('failed_when and until: the failing item of the list', async () => {
    const failedWhen = await failureOf(
      play('- name: judge', '  debug: { msg: hi }', '  failed_when:', '    - 1 == 1', '    - ghost_out.rc != 0'),
    );
    expect(failedWhen.msg.split('\n')[0]).toMatch(
      new RegExp(`^${failedWhen.dir}/site.yaml:8:11: undefined variable "ghost_out`),
    );
    expect(failedWhen.msg.split('\n').slice(1)).toEqual(['1 | ghost_out.rc != 0', '    ^']);
    const until = await failureOf(
      play('- name: wait', '  debug: { msg: hi }', '  retries: 1', '  delay: 0', '  until: done_count > 2'),
    );
    expect(until.msg).toMatch(new RegExp(`^${until.dir}/site.yaml:8:14: undefined variable "done_count"`));
  });

  it('an assert item: its own line in that:', async () => {
    const { msg, dir } = await failureOf(play('- assert:', '    that:', '      - 1 == 1', '      - ghost_flag'));
    expect(msg).toContain(`could not be evaluated: ${dir}/site.yaml:7:13: undefined variable "ghost_flag"`);
  });

  it("a task vars key: the key's line, not the task", async () => {
    const { msg, dir } = await failureOf(
      play('- command: echo {{ greeting }}', '  vars:', '    unused: 1', '    greeting: "hi {{ ghost }}"'),
    );
    expect(msg).toMatch(new RegExp(`^${dir}/site.yaml:4:16: undefined variable "greeting"`));
    expect(msg).toContain(`(its template failed: ${dir}/site.yaml:7:9: undefined variable "ghost"`);
  });
});
