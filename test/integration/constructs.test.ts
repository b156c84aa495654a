/**
 * Ansible's playbook constructs through the CLI against real OpenSSH sshd hosts (issue 12): block/rescue/always
 * with ansible_failed_task/result, include_vars, include_tasks in a loop, include_role with tasks_from and its
 * handlers, meta flush_handlers/end_host, with_sequence/with_dict and loop_control. --check predicts exactly
 * what the run changes, a second run changes nothing. Also the CLI's --list-tasks, --list-tags,
 * --start-at-task and --step.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedKeys, jsonEvents, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();
const playbook = join(import.meta.dirname, '..', 'fixtures', 'constructs', 'site.yml');

describe('Ansible constructs against real sshd hosts', () => {
  let lab: TestSshLab;
  let inventory: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    lab = await startSshHosts(2, { names: ['app1', 'app2'] });
    inventory = lab.writeInventory(
      { app: ['app1', 'app2'] },
      Object.fromEntries(lab.hosts.map((h) => [h.name, { host_dir: h.dir }])),
    );
    env = { CAIRN_STATE_DIR: join(lab.dir, 'state') };
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('--check predicts exactly what the run changes; the run does what Ansible would; a second run changes nothing', async () => {
    const check = await runCairn(['play', playbook, '-i', inventory, '--check', '--json'], { env });
    expect(check.code, check.stderr).toBe(0);
    const predicted = changedKeys(jsonEvents(check.stdout));
    for (const h of lab.hosts) expect(existsSync(join(h.dir, 'first'))).toBe(false);

    const first = await runCairn(['play', playbook, '-i', inventory, '--json'], { env });
    expect(first.code, first.stderr + first.stdout.slice(-3000)).toBe(0);
    const events = jsonEvents(first.stdout);
    expect(changedKeys(events)).toEqual(predicted);

    const [app1, app2] = lab.hosts.map((h) => (name: string) => {
      const p = join(h.dir, name);
      return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
    });
    // block/rescue/always: app1 failed in the block, was rescued with the failed task's name and message.
    expect(app1!('first')).toBe('first red\n');
    expect(app1!('second')).toBeUndefined();
    expect(app1!('rescued')).toBe('Fail on app1 only: app1 fails here\n');
    expect(app2!('second')).toBe('second\n');
    expect(app2!('rescued')).toBeUndefined();
    for (const f of [app1!, app2!]) {
      expect(f('always')).toBe('always\n');
      expect(f('part-0-alpha')).toBe('alpha\n');
      expect(f('part-1-beta')).toBe('beta\n');
      expect(f('seq-n01')).toBe('n01\n');
      expect(f('seq-n02')).toBe('n02\n');
      expect(f('web.conf')).toBe('port=8080\n');
      expect(f('restarted')).toBe('restarted\n');
    }
    expect(app1!('settings')).toBe('a=1\nb=2\n');
    expect(app2!('settings')).toBe('c=3\n');
    // meta end_host ended app2's play without failing it.
    expect(app1!('after-end-host')).toBe('yes\n');
    expect(app2!('after-end-host')).toBeUndefined();
    const recap = events.find((e) => e.type === 'recap');
    expect(recap?.type === 'recap' && recap.stats.app1).toMatchObject({ failed: 0, rescued: 1 });
    expect(recap?.type === 'recap' && recap.stats.app2).toMatchObject({ failed: 0, rescued: 0 });
    // loop_control.label: the dict items are shown by their key.
    const labels = events
      .filter((e) => e.type === 'task_result' && e.task.name === 'Settings from a dict' && !e.loopSummary)
      .map((e) => (e.type === 'task_result' ? `${e.host}:${String(e.item)}` : ''));
    expect(labels.sort()).toEqual(['app1:a', 'app1:b', 'app2:c']);

    const second = await runCairn(['play', playbook, '-i', inventory, '--json'], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(changedKeys(jsonEvents(second.stdout))).toEqual([]);
    for (const h of lab.hosts) expect(readdirSync(h.dir).filter((n) => n.includes('.cairn'))).toEqual([]);
  });

  it('--list-tasks opens blocks and includes, --list-tags lists every tag', async () => {
    const tasks = await runCairn(['play', playbook, '-i', inventory, '--list-tasks'], { env });
    expect(tasks.code, tasks.stderr).toBe(0);
    expect(tasks.stdout).toContain('Write the first file\tTAGS: [guarded]');
    expect(tasks.stdout).toContain('Record the failed task\tTAGS: [guarded]');
    expect(tasks.stdout).toContain('Parts, once per item');
    expect(tasks.stdout).toContain('One part');
    const tags = await runCairn(['play', playbook, '-i', inventory, '--list-tags'], { env });
    expect(tags.code, tags.stderr).toBe(0);
    expect(tags.stdout).toContain('TASK TAGS: [guarded]');
  });

  it('--start-at-task starts at the named task; an unknown name and --step without a terminal are refused', async () => {
    const run = await runCairn(
      // include_vars is skipped with the tasks before the start: its variable comes from -e.
      [
        'play',
        playbook,
        '-i',
        inventory,
        '--json',
        '--start-at-task',
        'Numbered*',
        '-l',
        'app2',
        '-e',
        '{"settings": {}}',
      ],
      { env },
    );
    expect(run.code, run.stderr).toBe(0);
    const names = [...new Set(jsonEvents(run.stdout).flatMap((e) => (e.type === 'task_result' ? [e.task.name] : [])))];
    expect(names[0]).toBe('Numbered files');
    expect(names).not.toContain('Write the first file');

    const unknown = await runCairn(['play', playbook, '-i', inventory, '--start-at-task', 'No such task'], { env });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/--start-at-task: no task named "No such task"/);
    const step = await runCairn(['play', playbook, '-i', inventory, '--step'], { env });
    expect(step.code).not.toBe(0);
    expect(step.stderr).toMatch(/--step asks before each task and needs a terminal/);
  });
});
