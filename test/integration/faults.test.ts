/**
 * Faults while writing: the SSH connection cut in the middle of a large write, and a full disk. In both the
 * live file is either the old one or the complete new one — never partial — and the run says what happened.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('faults while writing', () => {
  let lab: TestSshLab;
  let inventory: string;
  let mounted = '';

  beforeAll(async () => {
    lab = await startSshHosts(1, { names: ['f1'] });
    inventory = lab.writeInventory({}, { f1: { host_dir: lab.hosts[0]!.dir } });
  });
  afterAll(async () => {
    if (mounted) execFileSync('nsenter', ['-t', String(lab.hosts[0]!.pid), '-m', 'umount', mounted]);
    await lab?.stop();
  });

  it('a connection cut during a large write leaves the old file or the complete new one, and the host unreachable', async () => {
    const host = lab.hosts[0]!;
    const dest = join(host.dir, 'big.conf');
    const old = 'old content\n';
    writeFileSync(dest, old);
    // 64 MiB of new content takes long enough on the wire to cut it in the middle.
    const src = join(lab.dir, 'files');
    mkdirSync(src, { recursive: true });
    const big = Buffer.alloc(64 * 1024 * 1024, 'x');
    writeFileSync(join(src, 'big.bin'), big);
    const playbook = join(lab.dir, 'big.yaml');
    writeFileSync(
      playbook,
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: big write\n      copy: { src: big.bin, dest: "{{ host_dir }}/big.conf" }\n`,
    );
    const run = runCairn(['play', playbook, '-i', inventory, '--json'], {
      env: { CAIRN_STATE_DIR: join(lab.dir, 'state') },
    });
    // Cut the session while the content is streaming (poll until a temp file appears beside the live one).
    const until = Date.now() + 20_000;
    while (Date.now() < until && !readdirSync(host.dir).some((f) => f.startsWith('.cairn-tmp')))
      await new Promise((r) => setTimeout(r, 5));
    host.killSessions();
    const res = await run;
    const live = readFileSync(dest);
    // Either untouched or complete: never a prefix of the new content.
    expect(
      [sha(old), sha(big)],
      `live file: ${live.length} bytes, starts ${JSON.stringify(live.subarray(0, 40).toString())}`,
    ).toContain(sha(live));
    if (sha(live) === sha(old)) {
      expect(res.code).toBe(4);
      const result = taskResults(jsonEvents(res.stdout)).find((e) => e.task.name === 'big write');
      expect(result?.status).toBe('unreachable');
    }
  });

  it('a full disk: a clear error, the live file intact, no temp file left', async () => {
    const host = lab.hosts[0]!;
    // The test host's sshd lives in its own mount namespace: the small filesystem is mounted there (nsenter),
    // and the test reads the host's files there too.
    const inHost = (...cmd: string[]) =>
      execFileSync('nsenter', ['-t', String(host.pid), '-m', ...cmd], { encoding: 'utf8' });
    mounted = join(host.dir, 'small');
    mkdirSync(mounted, { recursive: true });
    inHost('mount', '-t', 'tmpfs', '-o', 'size=256k', 'cairn-test-full', mounted);
    const dest = join(mounted, 'app.conf');
    inHost('sh', '-c', `printf 'live\\n' > ${dest}`);
    const playbook = join(lab.dir, 'full.yaml');
    // 1 MiB of content into a 256 KiB filesystem.
    const content = 'y'.repeat(1024 * 1024);
    writeFileSync(
      playbook,
      `- hosts: all\n  gather_facts: false\n  tasks:\n    - name: too big\n      copy:\n        dest: "${dest}"\n        content: "${content}"\n`,
    );
    const res = await runCairn(['play', playbook, '-i', inventory, '--json'], {
      env: { CAIRN_STATE_DIR: join(lab.dir, 'state') },
    });
    expect(res.code).toBe(2);
    const result = taskResults(jsonEvents(res.stdout)).find((e) => e.task.name === 'too big');
    expect(result?.status).toBe('failed');
    expect(result?.msg).toMatch(/No space left on device/);
    expect(inHost('cat', dest)).toBe('live\n');
    expect(
      inHost('ls', '-A', mounted)
        .split('\n')
        .filter((f) => f.startsWith('.cairn-tmp')),
    ).toEqual([]);
  });
});
