/**
 * A managed host is hostile or simply broken: what it prints, and how big a script for it gets, must never
 * take down the run (issue 13, items 7 and 8). Real OpenSSH sshd hosts on loopback, the built CLI.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cairnBin, jsonEvents, repoRoot, runCairn, taskResults } from '../helpers/cli.js';
import { sshdAvailable, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

const available = sshdAvailable();
const GNU_TIME = '/usr/bin/time';

/** Runs the CLI under GNU time: the result and the controller's peak resident memory in KiB. */
function runCairnMeasured(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string; maxRssKiB: number }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(GNU_TIME, ['-f', 'cairn-max-rss-kib=%M', process.execPath, cairnBin, ...args], {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const rss = /cairn-max-rss-kib=(\d+)/.exec(stderr);
      resolveRun({
        code: code ?? -1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: stderr.replace(/cairn-max-rss-kib=\d+\n?/, ''),
        maxRssKiB: rss ? Number(rss[1]) : -1,
      });
    });
  });
}

describe.skipIf(!available.ok || !existsSync(GNU_TIME))(
  `hostile output and big scripts against real sshd${available.ok ? '' : ` (skipped: ${available.reason})`}`,
  () => {
    let lab: TestSshLab;
    let inventory: string;
    let stateDir: string;

    beforeAll(async () => {
      lab = await startSshHosts(3, { names: ['loud', 'calm1', 'calm2'] });
      inventory = lab.writeInventory(
        {},
        Object.fromEntries(lab.hosts.map((h) => [h.name, { host_dir: h.dir, loud: h.name === 'loud' ? 1 : 0 }])),
      );
      stateDir = join(lab.dir, 'state');
    });
    afterAll(async () => {
      await lab?.stop();
    });

    function writePlaybook(name: string, tasks: unknown[]): string {
      const path = join(lab.dir, `${name}.yaml`);
      writeFileSync(path, stringify([{ name, hosts: 'all', gather_facts: false, tasks }]));
      return path;
    }

    it('a host printing 600 MB gets its output cut (head, tail, a note); the run ends with a recap, other hosts are untouched and memory stays bounded', async () => {
      const playbook = writePlaybook('flood', [
        {
          name: 'Print a flood',
          shell: "head -c 600M /dev/zero | tr '\\0' x; echo; echo the-end",
          when: 'loud == 1',
          register: 'flood',
        },
        { name: 'Print a line', shell: 'echo calm', when: 'loud == 0' },
        { name: 'Keep working', copy: { dest: '{{ host_dir }}/after-flood', content: 'still here\n' } },
      ]);
      const run = await runCairnMeasured(['play', playbook, '-i', inventory, '--json'], { CAIRN_STATE_DIR: stateDir });
      expect(run.stderr).not.toMatch(/RangeError|at .*\.js:\d+/);
      expect(run.code, run.stderr).toBe(0);
      const events = jsonEvents(run.stdout);
      const recap = events.find((e) => e.type === 'recap');
      expect(recap && recap.type === 'recap' ? Object.keys(recap.stats).sort() : []).toEqual([
        'calm1',
        'calm2',
        'loud',
      ]);
      const flood = taskResults(events).find((e) => e.host === 'loud' && e.task.name === 'Print a flood');
      expect(flood?.status).toBe('changed');
      const stdout = String(flood?.result?.stdout ?? '');
      // The start and the end are kept, and the note says how much there was (never dump 12 MB in a failure).
      expect(stdout.slice(0, 8)).toBe('xxxxxxxx');
      expect(stdout.slice(-12)).toBe('xxxx\nthe-end');
      const note = /\[cairn: output cut: (\d+) bytes in all; [^\]]* (\d+) bytes in between were dropped\]/.exec(stdout);
      expect(note?.[0]).toBeDefined();
      expect(Number(note?.[1])).toBe(600 * 1024 * 1024 + '\nthe-end\n'.length);
      expect(Number(note?.[2])).toBeGreaterThan(500 * 1024 * 1024);
      expect(stdout.length).toBeLessThan(20 * 1024 * 1024);
      for (const h of lab.hosts) expect(readFileSync(join(h.dir, 'after-flood'), 'utf8')).toBe('still here\n');
      // 600 MB were received; far less was ever held (before the fix: 1.2 GB for 100 MB, a crash at 600 MB).
      console.log(`600 MB from one host: controller max RSS ${Math.round(run.maxRssKiB / 1024)} MiB`);
      expect(run.maxRssKiB).toBeGreaterThan(0);
      expect(run.maxRssKiB).toBeLessThan(450 * 1024);
    }, 300_000);

    it('a script far beyond the argv limit runs: file recurse over 6,500 entries with long names', async () => {
      const tree = join(lab.hosts[1]!.dir, 'big-tree');
      mkdirSync(tree, { recursive: true });
      const names: string[] = [];
      for (let i = 0; i < 6500; i++) {
        const name = `entry-${String(i).padStart(5, '0')}-${'long-name-'.repeat(6)}`;
        writeFileSync(join(tree, name), '', { mode: 0o600 });
        names.push(name);
      }
      const playbook = writePlaybook('recurse', [
        {
          name: 'Tree modes',
          file: { path: tree, state: 'directory', recurse: true, mode: '0640' },
          when: "inventory_hostname == 'calm1'",
        },
      ]);
      const first = await runCairn(['play', playbook, '-i', inventory, '--json'], {
        env: { CAIRN_STATE_DIR: stateDir },
        timeoutMs: 180_000,
      });
      expect(first.code, first.stderr + first.stdout.slice(-3000)).toBe(0);
      const result = taskResults(jsonEvents(first.stdout)).find((e) => e.host === 'calm1');
      expect(result?.status).toBe('changed');
      for (const name of [names[0]!, names[3333]!, names[6499]!])
        expect(statSync(join(tree, name)).mode & 0o777).toBe(0o640);
      expect(readdirSync(tree).filter((name) => (statSync(join(tree, name)).mode & 0o777) !== 0o640)).toEqual([]);
      const second = await runCairn(['play', playbook, '-i', inventory, '--json'], {
        env: { CAIRN_STATE_DIR: stateDir },
        timeoutMs: 180_000,
      });
      expect(second.code).toBe(0);
      expect(taskResults(jsonEvents(second.stdout)).find((e) => e.host === 'calm1')?.status).toBe('ok');
    }, 240_000);

    it('a NUL byte in an argument is a task error naming the argument; ignore_errors applies and the host stays reachable', async () => {
      const playbook = writePlaybook('nul', [
        {
          name: 'Content with a NUL',
          copy: { dest: '{{ host_dir }}/nul', content: 'before\u0000after' },
          ignore_errors: true,
        },
        { name: 'Header with a NUL', command: { argv: ['printf', '%s', 'a\u0000b'] }, ignore_errors: true },
        { name: 'Still reachable', copy: { dest: '{{ host_dir }}/after-nul', content: 'fine\n' } },
      ]);
      const run = await runCairn(['play', playbook, '-i', inventory, '--json', '-l', 'calm2'], {
        env: { CAIRN_STATE_DIR: stateDir },
      });
      const results = taskResults(jsonEvents(run.stdout));
      const copy = results.find((e) => e.task.name === 'Content with a NUL');
      expect(copy?.status).toBe('failed');
      expect(copy?.ignored).toBe(true);
      expect(copy?.msg).toMatch(/argument content contains a NUL byte/);
      const argvTask = results.find((e) => e.task.name === 'Header with a NUL');
      expect(argvTask?.status).toBe('failed');
      expect(argvTask?.msg).toMatch(/argument argv\[2\] contains a NUL byte/);
      expect(results.find((e) => e.task.name === 'Still reachable')?.status).toBe('changed');
      expect(results.some((e) => e.status === 'unreachable')).toBe(false);
      expect(existsSync(join(lab.hosts[2]!.dir, 'nul'))).toBe(false);
      expect(readFileSync(join(lab.hosts[2]!.dir, 'after-nul'), 'utf8')).toBe('fine\n');
    }, 120_000);
  },
);
