/**
 * Bench hosts: many loopback "hosts" served by a few real OpenSSH sshd processes, for `npm run bench` and
 * `npm run bench:peers`. Never used by `npm test`.
 *
 * - sshd listens on at most 16 addresses per process (OpenSSH's MAX_LISTEN_SOCKS), so N hosts take
 *   ceil(N / 16) sshd processes, each on 16 addresses of 127.77.0.0/16 and one shared port.
 * - MaxStartups is raised so that hundreds of handshakes at once are not dropped (default 10:30:100).
 * - Logins go to an unprivileged user (`cairnbench`, created when missing) whose shell is /bin/sh and whose
 *   home holds no shell start-up files: every remote command costs sshd's work, not a .bashrc (on this
 *   machine root's .bashrc runs pyenv, ~85 ms per command; see /work/shared/perf-notes.md).
 * - Every host has its own known_hosts line (one shared host key), so host key checking costs what it
 *   costs on a fleet of that size.
 * Each sshd is started with a parent-death signal and killed by pid at the end, or on SIGINT/SIGTERM with its
 * sessions and the temp folder (./cleanup.ts).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdirSync, unlinkSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descendantsOf, trackPath, trackProcess, untrackPath } from './cleanup.js';

export const BENCH_USER = 'cairnbench';
const BENCH_HOME = '/var/lib/cairn-bench';
const ADDRESSES_PER_SSHD = 16;

export interface BenchHost {
  name: string;
  address: string;
  port: number;
}

export interface BenchHosts {
  hosts: BenchHost[];
  dir: string;
  user: string;
  clientKeyPath: string;
  knownHostsPath: string;
  /** Writes a YAML inventory (Ansible's shape: cairn and ansible-playbook both read it) for the first n hosts. */
  writeInventory(n: number, file: string): string;
  stop(): Promise<void>;
}

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** The unprivileged login user, with an empty home except ~/.ssh/authorized_keys holding our client key. */
function ensureBenchUser(publicKey: string): { uid: number; gid: number } {
  if (spawnSync('id', ['-u', BENCH_USER]).status !== 0) {
    run('useradd', ['--system', '--home-dir', BENCH_HOME, '--no-create-home', '--shell', '/bin/sh', BENCH_USER]);
  }
  // useradd locks the account ('!'), and sshd without PAM refuses locked accounts even for keys: '*' is
  // "no password" without the lock.
  run('usermod', ['-p', '*', BENCH_USER]);
  const uid = Number(run('id', ['-u', BENCH_USER]).trim());
  const gid = Number(run('id', ['-g', BENCH_USER]).trim());
  mkdirSync(join(BENCH_HOME, '.ssh'), { recursive: true });
  // No shell start-up files: whatever a skeleton or an earlier run left there goes.
  for (const entry of readdirSync(BENCH_HOME)) {
    if (/^\.(bashrc|profile|bash_profile|bash_login|bash_logout|shrc)$/.test(entry))
      unlinkSync(join(BENCH_HOME, entry));
  }
  writeFileSync(join(BENCH_HOME, '.ssh', 'authorized_keys'), publicKey, { mode: 0o600 });
  for (const path of [BENCH_HOME, join(BENCH_HOME, '.ssh'), join(BENCH_HOME, '.ssh', 'authorized_keys')]) {
    chownSync(path, uid, gid);
  }
  chmodSync(BENCH_HOME, 0o755);
  chmodSync(join(BENCH_HOME, '.ssh'), 0o700);
  return { uid, gid };
}

function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, address, () => {
      const bound = server.address();
      const port = typeof bound === 'object' && bound !== null ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function answersBanner(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: address, port });
    let received = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\n')) finish(received.startsWith('SSH-'));
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

/** Host i (0-based) lives on 127.77.x.y, away from the 127.0.0.N addresses the test harness uses. */
function addressOf(i: number): string {
  return `127.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;
}

export async function startBenchHosts(count: number): Promise<BenchHosts> {
  if (process.getuid?.() !== 0) throw new Error('the bench starts sshd and a login user: run it as root');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = mkdtempSync(join(tmpdir(), 'cairn-bench-'));
  trackPath(dir);
  trackPath(join(BENCH_HOME, 'w2'));
  // Where the bench works, for whoever has to find what it left (test/integration/bench-interrupt.test.ts).
  process.stderr.write(`bench hosts: ${count} in ${dir}\n`);
  const clientKeyPath = join(dir, 'client_ed25519');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cairn-bench', '-f', clientKeyPath]);
  const hostKeyPath = join(dir, 'host_ed25519');
  run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cairn-bench-host', '-f', hostKeyPath]);
  ensureBenchUser(readFileSync(`${clientKeyPath}.pub`, 'utf8'));
  // The client key and known_hosts are read by the controller (root) only.
  const port = await freePort('127.77.0.1');
  const hosts = Array.from({ length: count }, (_, i) => ({ name: `b${i + 1}`, address: addressOf(i), port }));
  const [keyType, keyBase64] = readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(/\s+/);
  const knownHostsPath = join(dir, 'known_hosts');
  writeFileSync(knownHostsPath, hosts.map((h) => `[${h.address}]:${port} ${keyType} ${keyBase64}\n`).join(''));

  const children: ChildProcess[] = [];
  const stopAll = (): void => {
    for (const child of children) {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
      // A listener's per-connection sessions outlive it: they go first.
      for (const pid of [...descendantsOf(child.pid), child.pid]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
  };
  process.once('exit', stopAll);
  for (let first = 0; first < count; first += ADDRESSES_PER_SSHD) {
    const group = hosts.slice(first, first + ADDRESSES_PER_SSHD);
    const configPath = join(dir, `sshd_config.${first}`);
    writeFileSync(
      configPath,
      [
        ...group.map((h) => `ListenAddress ${h.address}:${port}`),
        `HostKey ${hostKeyPath}`,
        `PidFile ${join(dir, `sshd.${first}.pid`)}`,
        `AllowUsers ${BENCH_USER}`,
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'PrintMotd no',
        'PrintLastLog no',
        'MaxSessions 64',
        'MaxStartups 2000:30:4000',
        'LogLevel ERROR',
        'Subsystem sftp /usr/lib/openssh/sftp-server',
      ].join('\n') + '\n',
    );
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', '/usr/sbin/sshd', '-D', '-e', '-f', configPath], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(child);
    trackProcess(child);
  }
  const deadline = Date.now() + 30_000;
  for (const group of hosts.filter((_, i) => i % ADDRESSES_PER_SSHD === 0)) {
    while (!(await answersBanner(group.address, port))) {
      if (Date.now() > deadline) {
        stopAll();
        throw new Error(`bench sshd on ${group.address}:${port} did not answer`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    hosts,
    dir,
    user: BENCH_USER,
    clientKeyPath,
    knownHostsPath,
    writeInventory(n, file) {
      const lines = ['all:', '  vars:', `    ansible_user: ${BENCH_USER}`, `    ansible_port: ${port}`];
      lines.push(`    ansible_ssh_private_key_file: ${clientKeyPath}`, `    cairn_known_hosts: ${knownHostsPath}`);
      lines.push('    ansible_python_interpreter: /usr/bin/python3', '  hosts:');
      for (const h of hosts.slice(0, n)) lines.push(`    ${h.name}:`, `      ansible_host: ${h.address}`);
      const path = join(dir, file);
      writeFileSync(path, lines.join('\n') + '\n');
      return path;
    },
    async stop() {
      stopAll();
      await Promise.all(
        children.map((child) =>
          child.exitCode !== null || child.signalCode !== null ? undefined : new Promise((r) => child.once('exit', r)),
        ),
      );
      rmSync(dir, { recursive: true, force: true });
      untrackPath(dir);
      if (existsSync(join(BENCH_HOME, 'w2'))) rmSync(join(BENCH_HOME, 'w2'), { recursive: true, force: true });
      untrackPath(join(BENCH_HOME, 'w2'));
    },
  };
}
