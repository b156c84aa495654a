/**
 * The compact console against 12 real sshd hosts (above the 10-host threshold): announced in its first line,
 * it prints the plays, every change (with its diff under --diff, its actions in check mode), every failure,
 * and a recap listing only the hosts that changed or failed; a no-change rerun is a handful of lines.
 * --full gives the Ansible-style console back; --compact asks for compact on few hosts. (Line counts on 20 and
 * 100 hosts: `npm run bench:console`.)
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();
const playbook = join(repoRoot, 'test', 'fixtures', 'drift', 'site.yaml');
const HOSTS = 12;

describe('the compact console on 12 sshd hosts', { timeout: 240_000 }, () => {
  let lab: TestSshLab;
  let inventory: string;
  const env = () => ({ CAIRN_STATE_DIR: join(lab.dir, 'state') });
  const play = (...args: string[]) => runCairn(['play', playbook, '-i', inventory, ...args], { env: env() });

  beforeAll(async () => {
    lab = await startSshHosts(HOSTS, { names: Array.from({ length: HOSTS }, (_, i) => `h${i + 1}`) });
    inventory = lab.writeInventory({}, Object.fromEntries(lab.hosts.map((h) => [h.name, { host_dir: h.dir }])));
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('is the default from 10 hosts, says so first, and prints each change once', async () => {
    const first = await play();
    expect(first.code, first.stderr).toBe(0);
    const out = first.stdout.split('\n');
    expect(out[0]).toBe(
      'cairn play: compact output (12 hosts): changes, failures and the recap only; --full for every task',
    );
    expect(out[1]).toBe('PLAY [Front] 12 hosts');
    // 3 changing tasks per host, one line each; no ok/skipping lines, no task banners.
    expect(out.filter((l) => l.startsWith('changed: ['))).toHaveLength(3 * HOSTS);
    expect(out.filter((l) => /^(ok|skipping): |^TASK \[/.test(l))).toEqual([]);
    expect(first.stdout).toContain('changed: [h7] proxy : proxy configuration');
    expect(first.stdout).toMatch(
      /^PLAY RECAP 12 hosts: 0 unchanged, 12 changed, 0 failed, 0 unreachable \(tasks: ok=48 changed=36 failed=0 skipped=0 ignored=0\)$/m,
    );
    expect(first.stdout).toMatch(/^ {2}changed: h1, h10, h11, h12, h2, h3, h4, h5, h6, h7, h8, h9$/m);
  });

  it('prints a handful of lines for a no-change rerun, and no escape codes off a terminal', async () => {
    const again = await play();
    expect(again.code).toBe(0);
    expect(again.stdout.trimEnd().split('\n')).toEqual([
      'cairn play: compact output (12 hosts): changes, failures and the recap only; --full for every task',
      'PLAY [Front] 12 hosts',
      '',
      'PLAY RECAP 12 hosts: 12 unchanged, 0 changed, 0 failed, 0 unreachable (tasks: ok=48 changed=0 failed=0 skipped=0 ignored=0)',
      expect.stringMatching(/^Finished in \S+, exit code 0$/),
    ]);
    expect(again.stdout).not.toContain('\x1b');
  });

  it('shows the diff of a change with --diff, and its actions in check mode', async () => {
    appendFileSync(join(lab.hosts[2]!.dir, 'proxy.cfg'), '# hand edit\n');
    const check = await play('--check', '--diff');
    expect(check.code).toBe(0);
    expect(check.stdout.split('\n')[0]).toContain('[CHECK MODE]');
    expect(check.stdout).toContain('changed: [h3] proxy : proxy configuration');
    expect(check.stdout).toMatch(/^-# hand edit$/m);
    expect(check.stdout.split('\n').filter((l) => l.startsWith('changed: ['))).toHaveLength(1);
  });

  it('lists failures with their message and host in the recap', async () => {
    lab.hosts[4]!.kill();
    const broken = await play();
    expect(broken.code).toBe(4);
    expect(broken.stdout).toMatch(/^fatal: \[h5\].*UNREACHABLE! => /m);
    expect(broken.stdout).toMatch(/^ {2}unreachable: h5 \(1\)$/m);
  });

  it('gives the Ansible-style console with --full, and compact on few hosts with --compact', async () => {
    const full = await play('--full', '-l', 'h1,h2,h3,h4');
    expect(full.stdout).toMatch(/^TASK \[proxy : proxy configuration\]/m);
    expect(full.stdout).toMatch(/^ok: \[h1\]$/m);
    const few = await play('--compact', '-l', 'h1,h2');
    expect(few.stdout.split('\n')[0]).toBe(
      'cairn play: compact output (--compact): changes, failures and the recap only; --full for every task',
    );
    const both = await play('--compact', '--full');
    expect(both.code).toBe(5);
    expect(both.stderr).toContain('--compact and --full exclude each other');
  });
});
