/**
 * SIGTERM and SIGHUP stop a run the way a second Ctrl-C does (issue 13): a real signal to a child cairn
 * process while a slow validation runs on two real sshd hosts. The commands still running on the hosts get
 * TERM (the validation's process is gone at once, not 60 s later), the atomic write's trap removes its temp
 * file, the live file is untouched, no later task starts, the journal ends with run_end (exit 99, interrupted)
 * and the run lock is released. Before: SIGHUP killed cairn outright (no run_end, the lock left behind) and a
 * single SIGTERM waited for the running task to finish.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readJournal } from '../../runner/app/report/index.js';
import { startCairn, useTwoHostPlay, waitUntil } from '../helpers/play-child.js';
import { requireSshd } from '../helpers/sshd.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();

/** A process that has not ended (a zombie has: a container's pid 1 may never reap it). */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('a signal while a slow validation runs on the hosts', () => {
  const setup = useTwoHostPlay(['s1', 's2'], 'slow-validate.yaml', [
    '- name: slow validation',
    '  copy:',
    '    dest: "{{ host_dir }}/guarded.conf"',
    '    content: "new\\n"',
    `    validate: "sh -c 'echo $$ > {{ host_dir }}/validate.pid; exec sleep 60' -- %s"`,
    '- name: never reached',
    '  copy: { dest: "{{ host_dir }}/after", content: "no\\n" }',
  ]);

  const cases: Array<[string, NodeJS.Signals[]]> = [
    ['SIGTERM', ['SIGTERM']],
    ['SIGHUP', ['SIGHUP']],
    ['a second SIGINT', ['SIGINT', 'SIGINT']],
  ];
  for (const [name, signals] of cases) {
    it(`${name} stops the run: remote commands ended, temp files removed, journal closed, lock released, exit 99`, async () => {
      const { lab, inventory, playbook } = setup;
      const tag = signals.join('-');
      const stateDir = join(lab.dir, `state-${tag}`);
      const lockDir = mkdtempSync(join(lab.dir, `locks-${tag}-`));
      for (const h of lab.hosts) {
        writeFileSync(join(h.dir, 'guarded.conf'), 'old\n');
        for (const stale of ['validate.pid', 'after'])
          if (existsSync(join(h.dir, stale))) writeFileSync(join(h.dir, stale), '');
      }
      const {
        child,
        done,
        output: outputNow,
      } = startCairn(['play', playbook, '-i', inventory], {
        CAIRN_STATE_DIR: stateDir,
        CAIRN_LOCK_DIR: lockDir,
      });
      const pidFile = (dir: string) => join(dir, 'validate.pid');
      const validationPids = (): number[] =>
        lab.hosts.map((h) => Number(existsSync(pidFile(h.dir)) ? readFileSync(pidFile(h.dir), 'utf8').trim() : 0));
      // Both hosts are inside the validation: each holds a temp file with the new content.
      await waitUntil('both validations to start', () => validationPids().every((pid) => pid > 0), 30_000);
      const pids = validationPids();
      expect(pids.every(alive)).toBe(true);
      for (const h of lab.hosts) expect(readdirSync(h.dir).filter((f) => f.startsWith('.cairn-tmp'))).toHaveLength(1);

      const signalledAt = Date.now();
      for (const signal of signals) {
        child.kill(signal);
        await new Promise((r) => setTimeout(r, 100));
      }
      const code = await done;
      const tookMs = Date.now() - signalledAt;
      const output = outputNow();

      expect(code, output).toBe(99);
      // It did not wait for the 60 s validation: the hosts were told to stop it.
      expect(tookMs, output).toBeLessThan(30_000);
      await waitUntil('the validations on the hosts to end', () => !pids.some(alive), 5_000);
      for (const h of lab.hosts) {
        expect(readdirSync(h.dir).filter((f) => f.startsWith('.cairn-tmp'))).toEqual([]);
        expect(readFileSync(join(h.dir, 'guarded.conf'), 'utf8')).toBe('old\n');
        expect(existsSync(join(h.dir, 'after')) && readFileSync(join(h.dir, 'after'), 'utf8')).toBeFalsy();
      }
      expect(readdirSync(lockDir)).toEqual([]);
      const journals = readdirSync(join(stateDir, 'runs'));
      expect(journals).toHaveLength(1);
      const events = readJournal(join(stateDir, 'runs', journals[0]!));
      const last = events[events.length - 1]!;
      expect(last).toMatchObject({ type: 'run_end', exitCode: 99, interrupted: true });
      expect(events.filter((e) => e.type === 'run_end')).toHaveLength(1);
      const stopSignal = signals[signals.length - 1]!;
      expect(output).toContain(`${stopSignal}: stopping now`);
      expect(output).toMatch(/PLAY RECAP/);
      expect(output).not.toMatch(/TASK \[never reached\]/);
    }, 90_000);
  }
});
