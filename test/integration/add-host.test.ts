/**
 * add_host and group_by through the CLI against real OpenSSH sshd hosts (issue 12). Play 1 runs on host A, the
 * only host of the inventory; add_host adds B (its address and port given by the task alone) and, in a loop,
 * C and D (C by Ansible's "address:port" name); play 2 targets them by their new group and runs a command
 * on each, which reports the sshd it came through; group_by puts A into a group that play 3 targets.
 * group_vars/ of a group only add_host creates are read, as Ansible's vars plugin reads them. --check runs
 * add_host and group_by too (Ansible does: they change no host) and predicts exactly what the run changes;
 * host keys are checked for an added host; a bad argument is an error at its file:line:col.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as yamlStringify } from 'yaml';
import { changedKeys, jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();

describe('add_host and group_by against real sshd hosts', () => {
  let lab: TestSshLab;
  let dir: string;
  let inventory: string;
  let playbook: string;
  let env: Record<string, string>;
  let extraVars: string;

  beforeAll(async () => {
    lab = await startSshHosts(4, { names: ['hosta', 'hostb', 'hostc', 'hostd'] });
    const [a, b, c, d] = lab.hosts;
    dir = join(lab.dir, 'play');
    mkdirSync(join(dir, 'group_vars'), { recursive: true });
    mkdirSync(join(lab.dir, 'marks'), { recursive: true });
    // Only A is in the inventory; how to log in is the `all` group's, which added hosts belong to as well.
    inventory = join(dir, 'hosts.yml');
    writeFileSync(
      inventory,
      yamlStringify({ all: { hosts: { hosta: { ansible_host: a!.address, ansible_port: a!.port, colour: 'blue' } } } }),
    );
    writeFileSync(
      join(dir, 'group_vars', 'all.yml'),
      yamlStringify({
        ansible_user: a!.user,
        ansible_ssh_private_key_file: lab.clientKeyPath,
        cairn_known_hosts: lab.knownHostsPath,
        marks: join(lab.dir, 'marks'),
      }),
    );
    // A group no inventory host is in: read when add_host creates it.
    writeFileSync(join(dir, 'group_vars', 'added.yml'), yamlStringify({ greeting: 'hello from group_vars' }));
    extraVars = JSON.stringify({
      b_address: b!.address,
      b_port: b!.port,
      others: [`${c!.address}:${c!.port}`, 'hostd'],
      d_address: d!.address,
      d_port: d!.port,
    });
    playbook = join(dir, 'site.yml');
    writeFileSync(
      playbook,
      [
        '- name: Play 1 on A',
        '  hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - name: Add B',
        '      ansible.builtin.add_host:',
        '        name: hostb',
        '        groups: added',
        '        ansible_host: "{{ b_address }}"',
        '        ansible_port: "{{ b_port }}"',
        '    - name: Add the others',
        '      add_host: name={{ item }} groups=added,looped',
        '      loop: "{{ others }}"',
        '    - name: D is reached at its own address',
        '      add_host:',
        '        hostname: hostd',
        '        ansible_host: "{{ d_address }}"',
        '        ansible_port: "{{ d_port }}"',
        '    - name: Group by colour',
        '      group_by:',
        '        key: "colour {{ colour }}"',
        '',
        '- name: Play 2 on the added hosts',
        '  hosts: added',
        '  gather_facts: false',
        '  tasks:',
        '    - name: Where am I',
        '      command: printenv SSH_CONNECTION',
        '      register: where',
        '      changed_when: false',
        '      check_mode: false',
        '    - name: Mark',
        '      copy:',
        "        content: \"{{ inventory_hostname }} {{ where.stdout.split()[2:] | join(':') }} {{ greeting }} " +
          "{{ group_names | join(',') }}\\n\"",
        '        dest: "{{ marks }}/{{ inventory_hostname }}"',
        '',
        '- name: Play 3 on the group group_by made',
        '  hosts: colour-blue',
        '  gather_facts: false',
        '  tasks:',
        '    - name: Mark A',
        '      copy:',
        '        content: "{{ inventory_hostname }} {{ group_names | join(\',\') }}\\n"',
        '        dest: "{{ marks }}/by-colour"',
        '',
      ].join('\n'),
    );
    env = { CAIRN_STATE_DIR: join(lab.dir, 'state') };
  });
  afterAll(async () => {
    await lab?.stop();
  });

  const mark = (name: string) => {
    const path = join(lab.dir, 'marks', name);
    return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  };

  it('later plays run on added hosts through their own sshd; --check predicts exactly what the run changes', async () => {
    const [, b, c, d] = lab.hosts;
    const check = await runCairn(['play', playbook, '-i', inventory, '-e', extraVars, '--check', '--json'], { env });
    expect(check.code, check.stderr + check.stdout.slice(-3000)).toBe(0);
    const checkEvents = jsonEvents(check.stdout);
    // In check mode too the hosts are added (Ansible runs add_host there) and play 2 runs on them.
    const plays = checkEvents.flatMap((e) => (e.type === 'play_start' ? [e.hosts] : []));
    expect(plays).toEqual([['hosta'], ['hostb', c!.address, 'hostd'], ['hosta']]);
    for (const name of ['hostb', c!.address, 'hostd', 'by-colour']) expect(mark(name)).toBeUndefined();

    const run = await runCairn(['play', playbook, '-i', inventory, '-e', extraVars, '--json'], { env });
    expect(run.code, run.stderr + run.stdout.slice(-3000)).toBe(0);
    const events = jsonEvents(run.stdout);
    expect(changedKeys(events)).toEqual(changedKeys(checkEvents));
    // Each command came in through the added host's own sshd (SSH_CONNECTION names the server's address and port).
    expect(mark('hostb')).toBe(`hostb ${b!.address}:${b!.port} hello from group_vars added\n`);
    expect(mark(c!.address)).toBe(`${c!.address} ${c!.address}:${c!.port} hello from group_vars added,looped\n`);
    expect(mark('hostd')).toBe(`hostd ${d!.address}:${d!.port} hello from group_vars added,looped\n`);
    expect(mark('by-colour')).toBe('hosta colour-blue\n');

    // add_host reports changed, once (on A: it bypasses the host loop), per item in a loop; group_by is ok.
    const results = taskResults(events);
    const status = (task: string) =>
      results.filter((e) => e.task.name === task && !e.loopSummary).map((e) => `${e.host}:${e.status}`);
    expect(status('Add B')).toEqual(['hosta:changed']);
    expect(status('Add the others')).toEqual(['hosta:changed', 'hosta:changed']);
    // hostd existed already (the loop added it); a new address is a change.
    expect(status('D is reached at its own address')).toEqual(['hosta:changed']);
    expect(status('Group by colour')).toEqual(['hosta:ok']);
    const addB = results.find((e) => e.task.name === 'Add B');
    expect(addB?.result).toMatchObject({
      changed: true,
      add_host: {
        host_name: 'hostb',
        groups: ['added'],
        host_vars: { ansible_host: b!.address, ansible_port: b!.port },
      },
    });
    const addC = results.find((e) => e.task.name === 'Add the others' && e.item === `${c!.address}:${c!.port}`);
    expect(addC?.result).toMatchObject({
      add_host: { host_name: c!.address, groups: ['added', 'looped'], host_vars: { ansible_ssh_port: c!.port } },
    });

    // A second run: the files are in place; add_host changes the new run's inventory again, as in Ansible.
    const second = await runCairn(['play', playbook, '-i', inventory, '-e', extraVars, '--json'], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(changedKeys(jsonEvents(second.stdout))).toEqual([
      `hosta |  : Add B`,
      `hosta |  : Add the others [${JSON.stringify(`${c!.address}:${c!.port}`)}]`,
      `hosta |  : Add the others ["hostd"]`,
      `hosta |  : D is reached at its own address`,
    ]);
  });

  it("an added host's key is checked: one not in known_hosts is unreachable, not trusted", async () => {
    const [, b] = lab.hosts;
    const emptyKnownHosts = join(lab.dir, 'empty_known_hosts');
    writeFileSync(emptyKnownHosts, '', { mode: 0o600 });
    const strict = join(dir, 'strict.yml');
    writeFileSync(
      strict,
      [
        '- hosts: hosta',
        '  gather_facts: false',
        '  tasks:',
        '    - add_host:',
        '        name: stranger',
        '        groups: strangers',
        `        ansible_host: ${b!.address}`,
        `        ansible_port: ${b!.port}`,
        `        cairn_known_hosts: ${emptyKnownHosts}`,
        '- hosts: strangers',
        '  gather_facts: false',
        '  tasks:',
        '    - command: "true"',
        '',
      ].join('\n'),
    );
    const run = await runCairn(['play', strict, '-i', inventory, '--json'], { env });
    expect(run.code).not.toBe(0);
    const unreachable = jsonEvents(run.stdout).find((e) => e.type === 'host_unreachable');
    expect(unreachable?.type === 'host_unreachable' && unreachable.host).toBe('stranger');
    expect(unreachable?.type === 'host_unreachable' && unreachable.msg).toMatch(/host key/i);
  });

  it('a bad argument is an error at its file:line:col, before anything runs', async () => {
    const bad = join(dir, 'bad.yml');
    writeFileSync(
      bad,
      ['- hosts: all', '  gather_facts: false', '  tasks:', '    - add_host:', '        groups: [web]', ''].join('\n'),
    );
    const run = await runCairn(['play', bad, '-i', inventory], { env });
    expect(run.code).toBe(5);
    expect(run.stderr).toContain(`${bad}:5:9`);
    expect(run.stderr).toMatch(/add_host.*name/);
    const badGroupBy = join(dir, 'bad-group-by.yml');
    writeFileSync(
      badGroupBy,
      ['- hosts: all', '  gather_facts: false', '  tasks:', '    - group_by:', '        keys: x', ''].join('\n'),
    );
    const second = await runCairn(['play', badGroupBy, '-i', inventory], { env });
    expect(second.code).toBe(5);
    expect(second.stderr).toContain(`${badGroupBy}:5:9`);
    expect(second.stderr).toMatch(/group_by.*keys/);
  });
});
