/**
 * Ctrl-C during a play: running tasks finish, no new task starts, the journal is complete, exit code 99.
 * A second Ctrl-C leaves at once, still with no partial file on the host.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJournal } from '../../runner/app/report/index.js';
import { startCairn as startPlay, useTwoHostPlay } from '../helpers/play-child.js';
import { requireSshd } from '../helpers/sshd.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();

describe('Ctrl-C during a play', () => {
  const setup = useTwoHostPlay(['i1', 'i2'], 'slow.yaml', [
    '- name: started',
    '  copy: { dest: "{{ host_dir }}/started", content: "yes\\n" }',
    '- name: slow step',
    '  shell: sleep 1.5 && echo done > {{ host_dir }}/slow-done',
    '- name: never reached',
    '  copy: { dest: "{{ host_dir }}/after", content: "no\\n" }',
  ]);

  it('the first SIGINT lets running tasks finish, starts nothing new, writes a complete journal, exits 99', async () => {
    const { lab, inventory, playbook } = setup;
    const stateDir = join(lab.dir, 'state1');
    const run = startPlay(['play', playbook, '-i', inventory], { CAIRN_STATE_DIR: stateDir });
    await run.waitFor(
      /TASK \[started\][\s\S]*changed: \[i1\][\s\S]*changed: \[i2\]|changed: \[i2\][\s\S]*changed: \[i1\]/,
    );
    // Both hosts are now inside "slow step" (or about to be).
    await new Promise((r) => setTimeout(r, 300));
    run.child.kill('SIGINT');
    const code = await run.done;
    expect(code).toBe(99);
    for (const h of lab.hosts) {
      expect(readFileSync(join(h.dir, 'slow-done'), 'utf8')).toBe('done\n');
      expect(existsSync(join(h.dir, 'after'))).toBe(false);
    }
    const journals = readdirSync(join(stateDir, 'runs'));
    expect(journals).toHaveLength(1);
    const events = readJournal(join(stateDir, 'runs', journals[0]!));
    expect(events[0]!.type).toBe('run_start');
    const last = events[events.length - 1]!;
    expect(last.type).toBe('run_end');
    expect(last.type === 'run_end' && last.exitCode).toBe(99);
    expect(run.output()).toMatch(/interrupted/);
  });

  // A stop first ends the commands still running on the hosts (TERM, a bounded wait), so it takes a round
  // trip or two: the slow step here is 30 s, and the run must end long before it would (signals.test.ts
  // checks the remote processes and temp files in detail, for SIGTERM and SIGHUP too).
  it('a second SIGINT aborts at once with exit 99', async () => {
    const { lab, inventory, playbook } = setup;
    const stateDir = join(lab.dir, 'state2');
    const longPlaybook = join(lab.dir, 'long.yaml');
    writeFileSync(longPlaybook, readFileSync(playbook, 'utf8').replace('sleep 1.5', 'sleep 30'));
    const run = startPlay(['play', longPlaybook, '-i', inventory], { CAIRN_STATE_DIR: stateDir });
    // Both hosts are past "started" (ok or changed: the hosts are shared with the test above), so inside
    // the slow step or about to be.
    await run.waitFor(/TASK \[started\][\s\S]*: \[i1\][\s\S]*: \[i2\]|TASK \[started\][\s\S]*: \[i2\][\s\S]*: \[i1\]/);
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    run.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 50));
    run.child.kill('SIGINT');
    const code = await run.done;
    expect(code).toBe(99);
    // It did not wait for the 30 s task.
    expect(Date.now() - t0).toBeLessThan(10_000);
    for (const h of lab.hosts) expect(readdirSync(h.dir).filter((f) => f.startsWith('.cairn-tmp'))).toEqual([]);
  });

  // Issue 13 item 10: a catastrophic pattern (nested quantifiers on a long non-matching text) took minutes
  // on JavaScript's backtracking RegExp with the event loop blocked, so SIGINT and SIGTERM went unheard.
  // Patterns now run on re2js (linear time): the task finishes, and the signals are heard at once.
  // SIGINT is sent twice (once only drains); SIGTERM once, which stops the run at once.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`a catastrophic regex cannot block ${signal}`, async () => {
      const { lab, inventory } = setup;
      const regexPlaybook = join(lab.dir, `regex-${signal}.yaml`);
      writeFileSync(
        regexPlaybook,
        [
          '- hosts: all',
          '  gather_facts: false',
          '  tasks:',
          '    - name: catastrophic regex',
          `      debug: { msg: "matched={{ ('a' * 5000 ~ 'b') is match('^(a+)+$') }}" }`,
          '      loop: "{{ range(200) | list }}"',
          '    - name: slow step',
          '      shell: sleep 30',
          '',
        ].join('\n'),
      );
      const run = startPlay(['play', regexPlaybook, '-i', inventory], {
        CAIRN_STATE_DIR: join(lab.dir, `state-${signal}`),
      });
      await run.waitFor(/TASK \[catastrophic regex\]/);
      run.child.kill(signal);
      if (signal === 'SIGINT') {
        await new Promise((r) => setTimeout(r, 50));
        run.child.kill('SIGINT');
      }
      const code = await run.done;
      expect(code, run.output()).toBe(99);
      expect(run.output()).not.toMatch(/TASK \[slow step\][\s\S]*changed/);
    }, 60_000);
  }
});
