/**
 * Bad input through the real CLI: each mistake gets one clear paragraph naming file:line:col and what was
 * expected, exit code 5, and never a stack trace.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCairn } from '../helpers/cli.js';

let dir: string;
let inventory: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-bad-input-'));
  inventory = join(dir, 'hosts.yaml');
  writeFileSync(
    inventory,
    `all:\n  hosts:\n    box:\n      ansible_connection: local\n      out: ${dir}/out\n  children:\n    web:\n      hosts:\n        box:\n`,
  );
  mkdirSync(join(dir, 'templates'));
  writeFileSync(join(dir, 'templates', 'broken.conf.hbs'), '# header\nlisten {{ listen_port }}\n');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function playbook(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const cases: Array<{ name: string; file: string; text: string; args?: string[]; expect: RegExp }> = [
  {
    name: 'malformed YAML',
    file: 'broken-yaml.yaml',
    text: '- hosts: all\n  tasks:\n    - name: x\n      command: [unclosed\n',
    expect: /broken-yaml\.yaml:\d+:\d+: invalid YAML: /,
  },
  {
    name: 'an unknown module, with a suggestion',
    file: 'unknown-module.yaml',
    text: '- hosts: all\n  tasks:\n    - name: write\n      copyy:\n        dest: /tmp/x\n',
    expect: /unknown-module\.yaml:4:7: unknown module "copyy" \(did you mean "copy"\?\)/,
  },
  {
    name: 'a wrong argument type',
    file: 'wrong-type.yaml',
    text: '- hosts: all\n  tasks:\n    - name: dir\n      file:\n        path: /tmp/x\n        state: folder\n',
    expect: /wrong-type\.yaml:6:16: module "file": "state" must be one of .*"directory".*got the string "folder"/,
  },
  {
    name: 'an unknown argument',
    file: 'unknown-arg.yaml',
    text: '- hosts: all\n  tasks:\n    - name: dir\n      file:\n        path: /tmp/x\n        mdoe: "0644"\n',
    expect: /unknown-arg\.yaml:6:9: module "file": unknown key "mdoe".*expected one of: .*mode/,
  },
  {
    name: 'an unknown play keyword',
    file: 'play-key.yaml',
    text: '- hostz: all\n  tasks: []\n',
    expect: /play-key\.yaml:1:3: play: .*(unknown key "hostz"|missing the required key "hosts")/,
  },
  {
    name: 'a missing role',
    file: 'no-role.yaml',
    text: '- hosts: all\n  roles:\n    - nosuchrole\n',
    expect: /no-role\.yaml:3:7: role "nosuchrole" not found/,
  },
];

describe('bad input gets file:line:col, exit 5, no stack trace', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const res = await runCairn(['play', playbook(c.file, c.text), '-i', inventory, ...(c.args ?? [])], {
        env: { CAIRN_STATE_DIR: join(dir, 'state') },
      });
      expect(res.code).toBe(5);
      expect(res.stderr).toMatch(c.expect);
      expect(res.stderr).toMatch(/^ERROR! /);
      expect(res.stderr).not.toMatch(/\n\s+at /);
      expect(res.stdout).toBe('');
    });
  }

  it('an undefined variable in a template names the template file, line, column and variable', async () => {
    const p = playbook(
      'undefined-var.yaml',
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: render\n      template:\n        src: broken.conf.hbs\n        dest: "{{ out }}.conf"\n`,
    );
    const res = await runCairn(['play', p, '-i', inventory], { env: { CAIRN_STATE_DIR: join(dir, 'state') } });
    expect(res.code).toBe(5);
    expect(res.stdout).toMatch(/broken\.conf\.hbs:2:\d+: undefined variable "listen_port"/);
    expect(res.stdout + res.stderr).not.toMatch(/\n\s+at /);
  });

  it("an undefined variable in a task argument names the argument's own line and column, and the variable", async () => {
    const p = playbook(
      'undefined-arg.yaml',
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: copy\n      copy:\n        dest: "{{ nowhere }}/x"\n        content: hi\n`,
    );
    const res = await runCairn(['play', p, '-i', inventory], { env: { CAIRN_STATE_DIR: join(dir, 'state') } });
    expect(res.code).toBe(5);
    // The TASK header names the task; the error names the value `dest:` holds (line 6, column 15).
    expect(res.stdout).toMatch(
      /undefined-arg\.yaml:6:15: undefined variable "nowhere" in template "\{\{ nowhere \}\}\/x"/,
    );
  });

  it('a bad host pattern', async () => {
    const p = playbook('ok.yaml', '- hosts: all\n  gather_facts: false\n  tasks:\n    - command: "true"\n');
    const bad = await runCairn(['play', p, '-i', inventory, '-l', 'web[0'], {
      env: { CAIRN_STATE_DIR: join(dir, 'state') },
    });
    expect(bad.code).toBe(5);
    expect(bad.stderr).toMatch(/bad host pattern/);
    const unknown = await runCairn(['play', p, '-i', inventory, '-l', 'wbe'], {
      env: { CAIRN_STATE_DIR: join(dir, 'state') },
    });
    expect(unknown.code).toBe(5);
    expect(unknown.stderr).toMatch(/"wbe": no host or group.*web/s);
  });

  it('a bad option', async () => {
    const res = await runCairn(['play', '--no-such-flag']);
    expect(res.code).toBe(5);
    expect(res.stderr).toMatch(/unknown option '--no-such-flag'/);
  });
});
