/**
 * `async` with `poll > 0` through the CLI against real sshd hosts (runner/core/engine/async-job.ts): the job
 * runs detached on the host in its own session and is polled over new channels; check predicts the run; a
 * second run changes nothing; a job over its limit is killed and the task fails with Ansible's message; and the
 * job outlives the SSH connection that started it (its sessions killed mid-job).
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedKeys, jsonEvents, runCairn } from '../helpers/cli.js';
import { descendantPids, requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();
const playbook = join(import.meta.dirname, '..', 'fixtures', 'async', 'site.yml');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The job folders on this machine (the sshd hosts are this machine, logged in as root). */
const jobFolders = (): string[] =>
  existsSync('/root/.cairn_async') ? readdirSync('/root/.cairn_async').filter((n) => n.startsWith('job.')) : [];

describe('async with poll against real sshd', () => {
  let lab: TestSshLab;
  let env: Record<string, string>;
  const inventoryFor = (extra: Record<string, unknown> = {}) =>
    lab.writeInventory(
      { jobs: lab.hosts.map((h) => h.name) },
      Object.fromEntries(lab.hosts.map((h) => [h.name, { host_dir: h.dir, ...extra }])),
    );

  beforeAll(async () => {
    lab = await startSshHosts(1, { names: ['job1'] });
    env = { CAIRN_STATE_DIR: join(lab.dir, 'state') };
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('--check predicts the run; the job runs detached and its output comes back; a second run changes nothing', async () => {
    const inventory = inventoryFor();
    const dir = lab.hosts[0]!.dir;
    // Folders an earlier, interrupted run left are not this test's.
    const before = new Set(jobFolders());
    const check = await runCairn(['play', playbook, '-i', inventory, '--check', '--json'], { env });
    expect(check.code, check.stderr).toBe(0);
    expect(existsSync(join(dir, 'job-done'))).toBe(false);
    const first = await runCairn(['play', playbook, '-i', inventory, '--json'], { env });
    expect(first.code, first.stderr + first.stdout.slice(-2000)).toBe(0);
    expect(changedKeys(jsonEvents(first.stdout))).toEqual(changedKeys(jsonEvents(check.stdout)));
    expect(readFileSync(join(dir, 'job-stdout'), 'utf8')).toBe('job-output\n');
    // Its parent was not the sshd session that started it: setsid -f detached it (reparented).
    const ppid = readFileSync(join(dir, 'job-ppid'), 'utf8').trim();
    const parentName = existsSync(`/proc/${ppid}/comm`) ? readFileSync(`/proc/${ppid}/comm`, 'utf8').trim() : 'gone';
    expect(parentName).not.toBe('sshd');
    const second = await runCairn(['play', playbook, '-i', inventory, '--json'], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(changedKeys(jsonEvents(second.stdout))).toEqual([]);
    // The job folder is removed once its result is read.
    expect(jobFolders().filter((n) => !before.has(n))).toEqual([]);
  }, 120_000);

  it('poll: 0 registers the job id and goes on; async_status waits for it, reads its output, cleans it up', async () => {
    const inventory = inventoryFor();
    const dir = lab.hosts[0]!.dir;
    const fire = join(import.meta.dirname, '..', 'fixtures', 'async', 'fire.yml');
    const check = await runCairn(['play', fire, '-i', inventory, '--check', '--json'], { env });
    expect(check.code, check.stderr).toBe(0);
    expect(changedKeys(jsonEvents(check.stdout))).toEqual(['job1 |  : start in the background']);
    const run = await runCairn(['play', fire, '-i', inventory, '--json'], { env });
    expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);
    expect(readFileSync(join(dir, 'fired-stdout'), 'utf8')).toBe('fired-job1\n to-err\n 0\n');
    expect(readFileSync(join(dir, 'forged-msg'), 'utf8')).toMatch(/^async_status: "\/etc\/passwd" is not a job id/);
    const fired = jsonEvents(run.stdout).find(
      (e) => e.type === 'task_result' && (e.task as { name?: string }).name === 'start in the background',
    ) as { result?: Record<string, unknown> } | undefined;
    expect(fired?.result).toMatchObject({ started: 1, finished: 0 });
    expect(String(fired?.result?.ansible_job_id)).toMatch(/\/\.cairn_async\/job\.[A-Za-z0-9]{10}$/);
    // The cleanup removed the job's folder.
    expect(existsSync(String(fired?.result?.ansible_job_id))).toBe(false);
  }, 120_000);

  it('a job over its async limit is killed, the task fails with Ansible message', async () => {
    const inventory = inventoryFor({ slow_case: true });
    const run = await runCairn(['play', playbook, '-i', inventory, '--json'], { env });
    expect(run.code, run.stderr).toBe(0); // ignore_errors
    expect(readFileSync(join(lab.hosts[0]!.dir, 'slow-msg'), 'utf8')).toBe(
      'async task did not complete within the requested time - 2s\n',
    );
  }, 120_000);

  it('the job outlives the connection that started it', async () => {
    const host = lab.hosts[0]!;
    rmSync(join(host.dir, 'job-done'), { force: true });
    rmSync(join(host.dir, 'job-stdout'), { force: true });
    const inventory = inventoryFor();
    const run = runCairn(['play', playbook, '-i', inventory, '--json'], { env });
    // Cut every live session of this host once the job has started (its start channel has ended by then).
    const before = new Set(jobFolders());
    const jobs = () => jobFolders().filter((n) => !before.has(n));
    for (let i = 0; i < 300 && jobs().length === 0; i++) await sleep(50);
    expect(jobs().length).toBeGreaterThan(0);
    // The folder exists before the job has detached: until `setsid -f` has forked and its parent has exited,
    // the job is still in the session's process tree, and killing the sessions would kill it too (seen under
    // load). A cut connection leaves a detached job alone, so cut only once the job has left the tree.
    const jobPid = (): number | undefined => {
      const file = join('/root/.cairn_async', jobs()[0]!, 'pid');
      const text = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
      return /^\d+$/.test(text) ? Number(text) : undefined;
    };
    for (let i = 0; i < 300; i++) {
      const pid = jobPid();
      if (pid !== undefined && !descendantPids(host.pid).includes(pid)) break;
      await sleep(50);
    }
    expect(jobPid()).toBeDefined();
    host.killSessions();
    const result = await run;
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toMatch(/unreachable|lost/i);
    // The job sleeps 3 s; on a loaded machine it may take longer to write its mark.
    for (let i = 0; i < 200 && !existsSync(join(host.dir, 'job-done')); i++) await sleep(100);
    expect(readFileSync(join(host.dir, 'job-done'), 'utf8')).toBe('done\n');
    // Nobody polled this job to its end: its folder is this test's to remove.
    for (const job of jobs()) rmSync(join('/root/.cairn_async', job), { recursive: true, force: true });
  }, 120_000);
});
