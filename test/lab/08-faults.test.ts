/**
 * Faults on real lab hosts while cairn writes a config (issue 5, "safety under faults"):
 *  - the SSH connection is cut (every sshd session on the host killed) in the middle of a 34 MB template write;
 *  - the host loses power (`cairn lab kill`) in the middle of the same write, and `--rerun failed` completes it;
 *  - the target filesystem is full (a 256 KiB tmpfs mounted on the host);
 *  - Ctrl-C during the write (the task finishes, exit 99, complete journal), and a second Ctrl-C (exit 99 at
 *    once, the live file old or complete, no temp file left);
 *  - a second cairn process against the lab inventory refuses, naming the holder; a stale lock is taken over.
 * In every case the live file is the old one or the complete new one, never a part of it.
 *
 * The test reads the hosts' files from their overlay disks on this machine (lab/paths.ts): polling there for
 * the write's temp file costs no SSH round trip, so the fault lands while the bytes are on the wire.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { labDropSshSessions, labKill, labSsh, labStart } from '../../runner/features/lab/index.js';
import { hostPaths } from '../../runner/features/lab/paths.js';
import { readJournal } from '../../runner/app/report/index.js';
import { cairnBin, jsonEvents, repoRoot, runCairn, taskResults } from '../helpers/cli.js';
import { ensureLab, labUnavailable, sleep } from '../helpers/lab.js';

const unavailable = labUnavailable();
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

const DIR = '/etc/cairn-fault';
const TASK = 'write the big config';
// 32 blocks of 1 MiB from a 1 MiB template: a loop-generated config (a large deny list, say) of ~34 MB,
// which takes a few hundred milliseconds on the wire, long enough to cut in the middle.
const BLOCK_LINE = 'deny 10.0.0.0/8; # filler line for a large rendered file\n';
const TEMPLATE = `# generation {{ fault_generation }} on {{ inventory_hostname }}\n{{#each (range 0 32)}}\n# block {{ this }}\n${BLOCK_LINE.repeat(Math.floor((1024 * 1024) / BLOCK_LINE.length))}{{/each}}\n`;

/** A host's file as seen on its overlay disk from this machine, or undefined when absent. */
function liveFile(host: string, path: string): Buffer | undefined {
  const onDisk = join(hostPaths(host).root, path);
  return existsSync(onDisk) ? readFileSync(onDisk) : undefined;
}

function tempFiles(host: string, dir = DIR): string[] {
  const onDisk = join(hostPaths(host).root, dir);
  return existsSync(onDisk) ? readdirSync(onDisk).filter((f) => f.startsWith('.cairn-tmp')) : [];
}

async function untilTempFile(host: string, ms = 20_000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (tempFiles(host).length > 0) return true;
    await sleep(2);
  }
  return false;
}

async function onHost(host: string, script: string): Promise<string> {
  const res = await labSsh(host, { script }, { capture: true });
  if (res.code !== 0) throw new Error(`${host}: ${script}: exit ${res.code}: ${res.stderr}`);
  return res.stdout.trim();
}

/** A cairn play run as a child process, so the test can signal it. */
function startPlay(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [cairnBin, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<number>((resolveDone) => child.on('close', (code) => resolveDone(code ?? -1)));
  return { child, done, stdout: () => stdout, stderr: () => stderr };
}

function resultOf(events: RunEvent[], host: string) {
  return taskResults(events).find((e) => e.task.name === TASK && e.host === host);
}

describe.skipIf(unavailable)(
  `faults while writing, on lab hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    let work = '';
    let playbook = '';
    let stateDir = '';
    let generation = 0;
    /** The complete render for each generation, to compare the live file with (computed by a clean write). */
    const complete = new Map<string, string>();
    /** What each fault did, printed at the end for the issue note. */
    const observed: string[] = [];

    const args = (host: string, dest: string, gen: number, extra: string[] = []) => [
      'play',
      playbook,
      '-l',
      host,
      '--json',
      '-e',
      JSON.stringify({ fault_generation: gen, fault_dest: dest }),
      ...extra,
    ];

    /** Put small "old" content live, and learn the sha of the complete new render with a clean write beside it. */
    async function prepare(host: string): Promise<{ old: string; gen: number; full: string }> {
      generation += 1;
      const gen = generation;
      const old = `old content before generation ${gen}\n`;
      await onHost(host, `mkdir -p ${DIR} && printf '%s' '${old}' > ${DIR}/app.conf && rm -f ${DIR}/reference.conf`);
      const key = `${host}/${gen}`;
      const ref = await runCairn(args(host, `${DIR}/reference.conf`, gen), {
        env: { CAIRN_STATE_DIR: join(work, 'ref') },
      });
      expect(ref.code, ref.stderr + ref.stdout.slice(-1500)).toBe(0);
      complete.set(key, sha(liveFile(host, `${DIR}/reference.conf`)!));
      return { old, gen, full: complete.get(key)! };
    }

    beforeAll(async () => {
      await ensureLab();
      work = mkdtempSync(join(tmpdir(), 'cairn-lab-faults-'));
      stateDir = join(work, 'state');
      mkdirSync(join(work, 'templates'));
      writeFileSync(join(work, 'templates', 'big.conf.hbs'), TEMPLATE);
      playbook = join(work, 'big.yaml');
      writeFileSync(
        playbook,
        [
          '- hosts: web',
          '  gather_facts: false',
          '  tasks:',
          `    - name: ${TASK}`,
          '      template: { src: big.conf.hbs, dest: "{{ fault_dest }}" }',
          '',
        ].join('\n'),
      );
    });

    afterAll(async () => {
      if (unavailable) return;
      if (observed.length) console.log(`faults on the lab, observed:\n  ${observed.join('\n  ')}`);
      for (const host of ['web1', 'web2']) {
        await labStart(host, { log: () => {} }).catch(() => undefined);
        await labSsh(host, { script: `umount ${DIR}/small 2>/dev/null; rm -rf ${DIR}` }, { capture: true }).catch(
          () => undefined,
        );
      }
    });

    it('the SSH sessions cut mid-write: the live file stays the old one, no temp file remains, the host is reported unreachable', async () => {
      const { old, gen, full } = await prepare('web1');
      const run = runCairn(args('web1', `${DIR}/app.conf`, gen), { env: { CAIRN_STATE_DIR: stateDir } });
      expect(await untilTempFile('web1'), 'the write never started').toBe(true);
      const cutAt = Date.now();
      const killed = labDropSshSessions('web1');
      expect(killed.length).toBeGreaterThan(0);
      const res = await run;
      const reportedMs = Date.now() - cutAt;
      const live = liveFile('web1', `${DIR}/app.conf`)!;
      expect(
        [sha(old), full],
        `live file: ${live.length} bytes, starts ${JSON.stringify(live.subarray(0, 40).toString())}`,
      ).toContain(sha(live));
      // The cut came while the temp file existed, i.e. before the rename: the old file must still be live.
      expect(live.toString()).toBe(old);
      expect(res.code, res.stderr).toBe(4);
      expect(resultOf(jsonEvents(res.stdout), 'web1')?.status).toBe('unreachable');
      // The write script's trap removes its temp file when its input ends early (the byte count does not match).
      const until = Date.now() + 5000;
      while (tempFiles('web1').length > 0 && Date.now() < until) await sleep(50);
      expect(tempFiles('web1')).toEqual([]);
      observed.push(
        `SSH sessions cut mid-write (${killed.length} sshd processes killed while the temp file grew): live file = old (${live.length} bytes), run exit ${res.code} ${reportedMs} ms after the cut, task unreachable, temp file removed by the script's trap`,
      );
      // The host itself is fine: a new connection repairs it.
      const again = await runCairn(args('web1', `${DIR}/app.conf`, gen), { env: { CAIRN_STATE_DIR: stateDir } });
      expect(again.code, again.stderr).toBe(0);
      expect(sha(liveFile('web1', `${DIR}/app.conf`)!)).toBe(full);
    });

    it('a power cut mid-write: old file or complete new one, the host unreachable, and --rerun failed completes it', async () => {
      const { old, gen, full } = await prepare('web2');
      const run = runCairn(args('web2', `${DIR}/app.conf`, gen), { env: { CAIRN_STATE_DIR: stateDir } });
      expect(await untilTempFile('web2'), 'the write never started').toBe(true);
      await labKill('web2', { log: () => {} });
      const res = await run;
      // The disk outlives the container (its overlay is on this machine): read what the power cut left.
      const live = liveFile('web2', `${DIR}/app.conf`)!;
      expect([sha(old), full], `live file: ${live.length} bytes`).toContain(sha(live));
      expect(live.toString()).toBe(old);
      expect(res.code, res.stderr).toBe(4);
      expect(resultOf(jsonEvents(res.stdout), 'web2')?.status).toBe('unreachable');
      const leftover = tempFiles('web2').length;
      // Nothing ran the trap, so the temp file of the interrupted write may remain; it is never the live file.
      await labStart('web2', { log: () => {} });
      const rerun = await runCairn(
        [
          'play',
          playbook,
          '--rerun',
          'failed',
          '--json',
          '-e',
          JSON.stringify({ fault_generation: gen, fault_dest: `${DIR}/app.conf` }),
        ],
        {
          env: { CAIRN_STATE_DIR: stateDir },
        },
      );
      expect(rerun.code, rerun.stderr + rerun.stdout.slice(-1500)).toBe(0);
      expect([...new Set(taskResults(jsonEvents(rerun.stdout)).map((e) => e.host))]).toEqual(['web2']);
      expect(resultOf(jsonEvents(rerun.stdout), 'web2')?.status).toBe('changed');
      expect(sha(liveFile('web2', `${DIR}/app.conf`)!)).toBe(full);
      observed.push(
        `power cut mid-write: live file = old, exit 4 (unreachable), ${leftover} orphaned temp file(s) left (no trap runs in a power cut; never live); after lab start, --rerun failed wrote the complete file (${liveFile('web2', `${DIR}/app.conf`)!.length} bytes)`,
      );
    });

    it("a full disk: the task fails with the system's message, the live file intact, no temp file left", async () => {
      const small = `${DIR}/small`;
      await onHost(
        'web1',
        `mkdir -p ${small} && (mountpoint -q ${small} || mount -t tmpfs -o size=256k cairn-fault-small ${small}) && printf 'live\\n' > ${small}/app.conf`,
      );
      const res = await runCairn(args('web1', `${small}/app.conf`, 1), { env: { CAIRN_STATE_DIR: stateDir } });
      expect(res.code, res.stderr).toBe(2);
      const result = resultOf(jsonEvents(res.stdout), 'web1');
      expect(result?.status).toBe('failed');
      expect(result?.msg).toMatch(/No space left on device/);
      observed.push(
        `full disk (256 KiB tmpfs, 34 MB render): exit 2, "${String(result?.msg).split('\n')[0]!.slice(0, 160)}"; live file intact, no temp file`,
      );
      // The tmpfs lives in the container's mount namespace: read it over SSH.
      expect(await onHost('web1', `cat ${small}/app.conf`)).toBe('live');
      expect(await onHost('web1', `ls -A ${small}`)).toBe('app.conf');
      await onHost('web1', `umount ${small} && rmdir ${small}`);
    });

    it('Ctrl-C during the write: the running write finishes, the journal is complete, exit 99', async () => {
      const { gen, full } = await prepare('web1');
      const dir = join(work, 'int1');
      const run = startPlay(args('web1', `${DIR}/app.conf`, gen), { CAIRN_STATE_DIR: dir });
      expect(await untilTempFile('web1'), 'the write never started').toBe(true);
      run.child.kill('SIGINT');
      expect(await run.done).toBe(99);
      expect(sha(liveFile('web1', `${DIR}/app.conf`)!)).toBe(full);
      expect(tempFiles('web1')).toEqual([]);
      const events = jsonEvents(run.stdout());
      expect(resultOf(events, 'web1')?.status).toBe('changed');
      const journals = readdirSync(join(dir, 'runs'));
      expect(journals).toHaveLength(1);
      const journal = readJournal(join(dir, 'runs', journals[0]!));
      expect(journal[0]!.type).toBe('run_start');
      const last = journal.at(-1)!;
      expect(last.type === 'run_end' && last.exitCode).toBe(99);
      observed.push(
        `Ctrl-C during the write: the write finished (complete file), exit 99, journal of ${journal.length} events ending in run_end`,
      );
    });

    it('a second Ctrl-C aborts at once: exit 99, the live file old or complete, no temp file left', async () => {
      const { old, gen, full } = await prepare('web1');
      const run = startPlay(args('web1', `${DIR}/app.conf`, gen), { CAIRN_STATE_DIR: join(work, 'int2') });
      expect(await untilTempFile('web1'), 'the write never started').toBe(true);
      const t0 = Date.now();
      run.child.kill('SIGINT');
      await sleep(20);
      run.child.kill('SIGINT');
      expect(await run.done).toBe(99);
      const abortMs = Date.now() - t0;
      const live = liveFile('web1', `${DIR}/app.conf`)!;
      expect([sha(old), full], `live file: ${live.length} bytes`).toContain(sha(live));
      // The connection went with the process: the remote write script sees its input end short and cleans up.
      const until = Date.now() + 5000;
      while (tempFiles('web1').length > 0 && Date.now() < until) await sleep(50);
      expect(tempFiles('web1')).toEqual([]);
      expect(abortMs).toBeLessThan(3000);
      observed.push(
        `second Ctrl-C mid-write: exit 99 after ${abortMs} ms, live file ${sha(live) === sha(old) ? 'old' : 'complete new'}, no temp file left`,
      );
    });

    it('a second cairn run against the lab inventory refuses, naming the holder; a stale lock is taken over', async () => {
      const dir = join(work, 'lock');
      const slow = join(work, 'slow.yaml');
      writeFileSync(
        slow,
        [
          '- hosts: web1',
          '  gather_facts: false',
          '  tasks:',
          '    - name: hold the lock',
          '      command: sleep 30.5',
          '',
        ].join('\n'),
      );
      const holder = startPlay(['play', slow, '--json'], { CAIRN_STATE_DIR: dir });
      const until = Date.now() + 20_000;
      while (!/"type":"task_start"/.test(holder.stdout()) && Date.now() < until) await sleep(50);
      const second = await runCairn(['play', slow], { env: { CAIRN_STATE_DIR: dir } });
      expect(second.code).toBe(5);
      expect(second.stderr).toMatch(
        new RegExp(
          `another cairn run holds the lock on .*inventories/lab/hosts\\.yaml: pid ${holder.child.pid}, started \\S+, command \`cairn play ${slow.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} --json\``,
        ),
      );
      // A holder killed with SIGKILL never released its lock: the next run finds it stale and takes it over.
      holder.child.kill('SIGKILL');
      await holder.done;
      const quick = join(work, 'quick.yaml');
      writeFileSync(
        quick,
        [
          '- hosts: web1',
          '  gather_facts: false',
          '  tasks:',
          '    - name: quick',
          '      command: "true"',
          '      changed_when: false',
          '',
        ].join('\n'),
      );
      const third = await runCairn(['play', quick], { env: { CAIRN_STATE_DIR: dir } });
      expect(third.code, third.stderr).toBe(0);
      expect(third.stderr).toMatch(
        new RegExp(`took over a stale lock on .*: pid ${holder.child.pid}, .* is no longer running`),
      );
      observed.push(
        `lock: "${second.stderr
          .trim()
          .split('\n')[0]!
          .replace(/^ERROR! /, '')}"; after SIGKILL of the holder the next run took the stale lock over`,
      );
      // As with Ansible, a command already started on the host runs to its end when the controller dies (cutting a
      // restart in half would be worse); this one is only a sleep, so the test ends it.
      await onHost('web1', "pkill -f '^sleep 30.5$' || true");
    });
  },
);
