/**
 * A managed host is hostile (issue 13): against a real OpenSSH sshd on 127.0.0.x, an unprivileged local user
 * (`nobody`, started with setpriv from this test) plants files, races cairn's writes and crafts file names,
 * and cairn must neither write through what it planted, nor show it a secret, nor believe what it printed.
 * Each case failed on the code before the fix (see the commit that added this file) and passes after.
 *
 * The sshd runs on this machine, so "the host's" files are this machine's files under a temp folder that
 * `nobody` can reach; the attacker's programs are small node scripts run as uid 65534.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyExecutor, checkExecutor } from '../../runner/core/engine/executor.js';
import { copyModule } from '../../runner/core/modules/copy.js';
import { fileModule } from '../../runner/core/modules/file.js';
import type { AnyModule } from '../../runner/core/modules/types.js';
import { openSshConnection } from '../../runner/core/transport/ssh.js';
import type { Connection } from '../../runner/core/transport/types.js';
import { runCairn } from '../helpers/cli.js';
import { contextFor } from '../helpers/fake-connection.js';
import { startSshHosts, type TestSshLab } from '../helpers/sshd.js';

const NOBODY = 65534;
const SETPRIV = '/usr/bin/setpriv';

let lab: TestSshLab;
let conn: Connection;
/** A folder under /tmp that `nobody` may enter (the managed host's filesystem, for these tests). */
let base: string;
let caseNo = 0;

/** A fresh folder for one case; `owner` nobody makes it one the attacker can write in. */
function caseDir(opts: { nobodyWrites?: boolean; mode?: number } = {}): string {
  const dir = join(base, `case-${++caseNo}`);
  mkdirSync(dir);
  chmodSync(dir, opts.mode ?? 0o755);
  if (opts.nobodyWrites) chownSync(dir, NOBODY, NOBODY);
  return dir;
}

/** The argv that runs node code as uid/gid 65534 with no supplementary groups. */
function nobodyArgv(code: string, args: string[]): string[] {
  return [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    '--clear-groups',
    '--',
    process.execPath,
    '-e',
    code,
    '--',
    ...args,
  ];
}

/** Run node code as nobody to its end; fails the test if it fails. */
function asNobody(code: string, ...args: string[]): string {
  const res = spawnSync(SETPRIV, nobodyArgv(code, args), { encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`the nobody helper failed (${res.status}): ${res.stderr}`);
  return res.stdout;
}

/** Start node code as nobody in the background; resolves with its stdout when it ends. */
function startAsNobody(code: string, ...args: string[]): { child: ChildProcess; done: Promise<string> } {
  const child = spawn(SETPRIV, nobodyArgv(code, args), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const done = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
  return { child, done };
}

const ctx = () => contextFor(conn);

async function apply(module: AnyModule, args: Record<string, unknown>) {
  return applyExecutor.run(module, ctx(), args);
}

const modeOf = (path: string): string => (statSync(path).mode & 0o7777).toString(8).padStart(4, '0');
const tempLeftovers = (dir: string): string[] => readdirSync(dir).filter((name) => name.startsWith('.cairn-'));

beforeAll(async () => {
  lab = await startSshHosts(1);
  conn = await openSshConnection(lab.spec('h1'));
  base = mkdtempSync('/tmp/cairn-hostile-');
  chmodSync(base, 0o755);
}, 30_000);

afterAll(async () => {
  await conn?.close();
  await lab?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('item 1: backup: yes never follows a planted symlink and never loses a backup', () => {
  it('symlinks planted at every backup name of the next minute are not written through', async () => {
    const dir = caseDir({ nobodyWrites: true });
    const victim = join(base, `victim-${caseNo}`);
    writeFileSync(victim, 'precious\n', { mode: 0o600 });
    const dest = join(dir, 'app.conf');
    writeFileSync(dest, 'v0\n', { mode: 0o640 });
    // The old backup name was "$dest.<date to the second>~": the attacker plants one for each coming second.
    const planted = asNobody(
      `const [dest, victim] = process.argv.slice(1); const fs = require('fs'); let n = 0;
       const pad = (x) => String(x).padStart(2, '0');
       for (let s = 0; s < 60; s++) {
         const d = new Date(Date.now() + s * 1000);
         const name = dest + '.' + d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + '@' +
           pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '~';
         try { fs.symlinkSync(victim, name); n++; } catch {}
       }
       process.stdout.write(String(n));`,
      dest,
      victim,
    );
    expect(Number(planted)).toBeGreaterThan(50);

    const first = await apply(copyModule, { dest, content: 'v1\n', backup: true });
    expect(first.result.failed, first.result.msg).toBeFalsy();
    const second = await apply(copyModule, { dest, content: 'v2\n', backup: true });
    expect(second.result.failed, second.result.msg).toBeFalsy();

    // root wrote nothing through the links: the victim keeps its content and its owner.
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(statSync(victim).uid).toBe(0);
    expect(readFileSync(dest, 'utf8')).toBe('v2\n');
    // Two writes within (usually) one second: two backups, each the content it replaced, mode kept.
    const backups = [first.result.data.backup_file, second.result.data.backup_file] as string[];
    expect(new Set(backups).size).toBe(2);
    for (const backup of backups) {
      expect(lstatSync(backup).isFile()).toBe(true);
      expect(modeOf(backup)).toBe('0640');
      expect(statSync(backup).uid).toBe(0);
    }
    expect(backups.map((backup) => readFileSync(backup, 'utf8'))).toEqual(['v0\n', 'v1\n']);
    expect(tempLeftovers(dir)).toEqual([]);
  });

  it('ten writes in a row keep ten distinct backups: the original content is never lost', async () => {
    const dir = caseDir();
    const dest = join(dir, 'fast.conf');
    writeFileSync(dest, 'c0\n');
    const backups: string[] = [];
    for (let i = 1; i <= 10; i++) {
      const run = await apply(copyModule, { dest, content: `c${i}\n`, backup: true });
      expect(run.result.failed, run.result.msg).toBeFalsy();
      backups.push(run.result.data.backup_file as string);
    }
    expect(new Set(backups).size).toBe(10);
    expect(backups.map((backup) => readFileSync(backup, 'utf8'))).toEqual(
      Array.from({ length: 10 }, (_, i) => `c${i}\n`),
    );
  });
});

describe('item 2: a secret is never readable while it is written', () => {
  it('an unprivileged user polling the directory reads no byte of 40 secret files (mode 0600)', async () => {
    const dir = caseDir();
    const stopFile = join(base, `stop-${caseNo}`);
    // A tight poller: every entry named like a temp file is opened at once; whatever it reads is reported.
    const poller = startAsNobody(
      `const [dir, stop] = process.argv.slice(1); const fs = require('fs');
       let loops = 0; const seen = new Set(); const leaked = [];
       while (!fs.existsSync(stop)) {
         loops++;
         let names = [];
         try { names = fs.readdirSync(dir); } catch {}
         for (const name of names) {
           if (!name.startsWith('.cairn-')) continue;
           seen.add(name);
           try { const text = fs.readFileSync(dir + '/' + name, 'utf8'); if (text.includes('password=')) leaked.push(text); } catch {}
         }
       }
       process.stdout.write(JSON.stringify({ loops, seen: seen.size, leaked }));`,
      dir,
      stopFile,
    );
    try {
      for (let i = 0; i < 40; i++) {
        const run = await apply(copyModule, {
          dest: join(dir, `db-${i}.conf`),
          content: `password=s3cret-${i}\n`,
          mode: '0600',
        });
        expect(run.result.failed, run.result.msg).toBeFalsy();
      }
    } finally {
      writeFileSync(stopFile, '');
      // It stops by itself on the stop file; if it does not within 5 s, end it (by its pid) so the test cannot hang.
      const guard = setTimeout(() => poller.child.kill('SIGKILL'), 5000);
      void poller.done.then(() => clearTimeout(guard));
    }
    const report = JSON.parse(await poller.done) as { loops: number; seen: number; leaked: string[] };
    // The poller was really racing: it saw the temp files come and go, and could read none of them.
    expect(report.seen).toBeGreaterThan(0);
    expect(report.leaked).toEqual([]);
    for (let i = 0; i < 40; i++) expect(modeOf(join(dir, `db-${i}.conf`))).toBe('0600');
    expect(tempLeftovers(dir)).toEqual([]);
  }, 120_000);
});

describe('item 3: output from the host cannot forge results', () => {
  it('a file name holding a newline and the section marker changes nothing in the plan of file: recurse', async () => {
    const tree = caseDir({ mode: 0o777 });
    const uploads = join(tree, 'uploads');
    mkdirSync(uploads);
    chownSync(uploads, NOBODY, NOBODY);
    // What the old line-based framing read as a new, trusted "file" section saying the tree root is fine.
    const forgedFile =
      '\n::cairn-section:: file\numask=0022\ntype=directory\nmode=755\nuid=0\ngid=0\nowner=root\ngroup=root\n';
    const forgedBad = '\n::cairn-section:: tree\n9x9\t0\t0\troot\troot\tf\t..\n';
    asNobody(
      `const [dir, a, b] = process.argv.slice(1); const fs = require('fs');
       fs.writeFileSync(dir + '/' + 'a' + a, 'x'); fs.writeFileSync(dir + '/' + 'b' + b, 'y');
       fs.chmodSync(dir + '/' + 'a' + a, 0o666); fs.chmodSync(dir + '/' + 'b' + b, 0o666);`,
      uploads,
      forgedFile,
      forgedBad,
    );
    const args = { path: tree, state: 'directory', recurse: true, owner: 'root', mode: 'u=rwX,g=rX,o=rX' };
    const check = await checkExecutor.run(fileModule, ctx(), args);
    expect(check.plan.failed).toBeUndefined();
    expect(check.plan.changed).toBe(true);
    expect(check.plan.actions).toContain(`set mode 0777 -> 0755 on ${tree}`);
    const run = await apply(fileModule, args);
    expect(run.result.failed, run.result.msg).toBeFalsy();
    expect(modeOf(tree)).toBe('0755');
    // The crafted names are ordinary entries of the tree: owned by root now, mode fixed like the rest.
    for (const name of [`a${forgedFile}`, `b${forgedBad}`]) {
      expect(statSync(join(uploads, name)).uid).toBe(0);
      expect(modeOf(join(uploads, name))).toBe('0644');
    }
    const recheck = await checkExecutor.run(fileModule, ctx(), args);
    expect(recheck.plan.changed, recheck.plan.actions.join('; ')).toBe(false);
  });
});

describe('item 6: state=link never moves a planted directory into place', () => {
  it('directories planted at the temp names the next process ids would give are not used', async () => {
    const sticky = caseDir({ mode: 0o1777 });
    const link = join(sticky, 'current');
    const src = join(base, `release-${caseNo}`);
    mkdirSync(src);
    // The old temp name was ".cairn-link.$$": plant a directory for each of the next 20,000 process ids.
    const lastPid = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const planted = asNobody(
      `const [dir, from, max] = process.argv.slice(1).map((v, i) => i === 0 ? v : Number(v)); const fs = require('fs');
       let n = 0;
       for (let i = 1; i <= 20000; i++) { const pid = ((from + i) % max) || 1; try { fs.mkdirSync(dir + '/.cairn-link.' + pid); n++; } catch {} }
       process.stdout.write(String(n));`,
      sticky,
      String(lastPid),
      String(pidMax),
    );
    expect(Number(planted)).toBeGreaterThan(1000);
    const run = await apply(fileModule, { path: link, state: 'link', src });
    expect(run.result.failed, run.result.msg).toBeFalsy();
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(src);
    // No planted directory was touched, nothing of cairn's is left.
    expect(readdirSync(sticky).filter((name) => name.startsWith('.cairn-link.')).length).toBe(Number(planted));
  }, 60_000);
});

describe('item 11: names are never options; a killed run leaves no temp file', () => {
  it('owner and group starting with "-" are refused with a task error, and nothing is chowned', async () => {
    const dir = caseDir();
    const reference = join(base, `nobody-owned-${caseNo}`);
    writeFileSync(reference, '');
    chownSync(reference, NOBODY, NOBODY);
    const path = join(dir, 'f');
    writeFileSync(path, 'x');
    for (const [module, args] of [
      [fileModule, { path, owner: `--reference=${reference}` }],
      [fileModule, { path, group: `--reference=${reference}` }],
      [copyModule, { dest: path, content: 'y', owner: `--reference=${reference}` }],
    ] as const) {
      await expect(applyExecutor.run(module, ctx(), args)).rejects.toThrow(
        /starts with '-'; user and group names cannot/,
      );
    }
    expect(statSync(path).uid).toBe(0);
    expect(statSync(path).gid).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('x');
  });

  it('cairn killed while a validation is failing: the host removes its temp file', async () => {
    const dir = caseDir();
    const dest = join(dir, 'app.conf');
    writeFileSync(dest, 'live\n');
    const started = join(dir, 'validator-started');
    const playbook = join(base, `kill-${caseNo}.yaml`);
    writeFileSync(
      playbook,
      [
        '- hosts: all',
        '  gather_facts: false',
        '  tasks:',
        '    - name: write with a slow, failing validator',
        '      copy:',
        `        dest: ${JSON.stringify(dest)}`,
        '        content: "new\\n"',
        `        validate: ${JSON.stringify(`sh -c 'touch ${started}; sleep 3; exit 1' validator %s`)}`,
        '',
      ].join('\n'),
    );
    const inventory = lab.writeInventory();
    let cairn: ChildProcess | undefined;
    const run = runCairn(['play', playbook, '-i', inventory], {
      cwd: base,
      timeoutMs: 60_000,
      onStart: (child) => (cairn = child),
    });
    // Kill cairn (SIGKILL: no cleanup of its own) once the validator runs on the host.
    const deadline = Date.now() + 30_000;
    while (!existsSync(started) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(existsSync(started)).toBe(true);
    expect(tempLeftovers(dir).length).toBe(1);
    cairn!.kill('SIGKILL');
    await run;
    // The validator ends 3 s after it started; then the script must notice it lost its connection and clean up.
    const cleanDeadline = Date.now() + 10_000;
    while (tempLeftovers(dir).length > 0 && Date.now() < cleanDeadline)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(tempLeftovers(dir)).toEqual([]);
    expect(readFileSync(dest, 'utf8')).toBe('live\n');
  }, 60_000);
});
