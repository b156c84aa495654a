/**
 * The transport against real OpenSSH sshd processes on loopback (test/helpers/sshd.ts) and against this
 * machine for `connection: local`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshHosts, requireSshd, type TestSshLab } from '../helpers/sshd.js';
import { commandArgv, explainBecomeFailure, openLocalConnection } from '../../runner/core/transport/local.js';
import { ConnectionPool, openConnection } from '../../runner/core/transport/pool.js';
import { quote } from '../../runner/core/transport/quote.js';
import { openSshConnection } from '../../runner/core/transport/ssh.js';
import {
  HostKeyError,
  UnreachableError,
  type Connection,
  type ConnectionSpec,
} from '../../runner/core/transport/types.js';

// No sshd (or not root) fails this file naming the package, never skips it (scripts/test-prereqs.sh installs it).
requireSshd();
if (!existsSync('/usr/bin/sudo'))
  throw new Error('sudo is not installed: apt-get install -y sudo (scripts/test-prereqs.sh does it)');

/** Strings that would run a command, end a quote or break a line if they reached a shell unquoted. */
function nastyStrings(markerPath: string): string[] {
  return [
    `$(touch ${markerPath})`,
    `\`touch ${markerPath}\``,
    `'; touch ${markerPath}; echo '`,
    `"; touch ${markerPath}; echo "`,
    `x\ntouch ${markerPath}\n`,
    `a && touch ${markerPath} || true`,
    `héllo wörld ✓ 日本 \u{1F600}`,
    `back\\slash \\n and $HOME and \${HOME} and *`,
    `-n`,
    ``,
    `'`,
    `''"'"''`,
  ];
}

/** Established TCP connections whose local end is address:port, read from /proc/net/tcp. */
function establishedConnectionsTo(address: string, port: number): number {
  const hexAddress = address
    .split('.')
    .map((octet) => Number(octet).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
  const local = `${hexAddress}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => {
      const fields = line.trim().split(/\s+/);
      return fields[1] === local && fields[3] === '01';
    }).length;
}

async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return check();
}

/** Processes on this machine whose command line is exactly `argv` (our remote hosts are loopback sshds). */
function processesRunning(argv: string[]): number {
  const wanted = argv.join('\0');
  let count = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0$/, '') === wanted) count++;
    } catch {
      // Gone meanwhile.
    }
  }
  return count;
}

/** Behaviours both transports share, run against each. */
function sharedExecBehaviours(label: string, connect: () => Promise<{ connection: Connection; dir: string }>): void {
  describe(`${label}: exec`, () => {
    let connection: Connection;
    let dir: string;
    beforeAll(async () => {
      ({ connection, dir } = await connect());
    });
    afterAll(async () => {
      await connection?.close();
    });

    it('returns stdout, stderr and the exit code exactly, untrimmed', async () => {
      const result = await connection.exec(`printf '  out\\n\\n'; printf 'err \\n' >&2; exit 3`);
      expect(result).toEqual({ stdout: '  out\n\n', stderr: 'err \n', code: 3 });
    });

    it('writes stdin and closes it', async () => {
      const text = `line 1 'single' "double" \`tick\` $HOME\n\ttab ünïcödé ✓\r\nno newline at end`;
      const result = await connection.exec('cat', { stdin: text });
      expect(result.stdout).toBe(text);
      expect(result.code).toBe(0);
    });

    it('passes binary stdin byte for byte', async () => {
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const result = await connection.exec('base64 -w0', { stdin: Buffer.concat([bytes, bytes]) });
      expect(result.stdout).toBe(Buffer.concat([bytes, bytes]).toString('base64'));
    });

    it('runs a command that ignores stdin without waiting for it', async () => {
      const result = await connection.exec('echo ignored', { stdin: 'x'.repeat(100_000) });
      expect(result.stdout).toBe('ignored\n');
    });

    it('delivers quoted nasty strings literally and runs nothing from them', async () => {
      const markerDir = join(dir, `nasty-${label}`);
      mkdirSync(markerDir, { recursive: true });
      chmodSync(markerDir, 0o777);
      const marker = join(markerDir, 'pwned');
      for (const nasty of nastyStrings(marker)) {
        const result = await connection.exec(`cd ${quote(markerDir)} && printf '%s' ${quote(nasty)}`);
        expect(result.stdout).toBe(nasty);
        // The same string nested one level deeper, as modules do when they build scripts of scripts.
        const nested = await connection.exec(`/bin/sh -c ${quote(`printf '%s' ${quote(nasty)}`)}`);
        expect(nested.stdout).toBe(nasty);
      }
      expect(readdirSync(markerDir)).toEqual([]);
    });

    it('kills a command at timeoutMs with code 124 and stays usable', async () => {
      // A distinctive sleep argument so we can look for the process afterwards.
      const started = Date.now();
      const sleepSeconds = label === 'ssh' ? '7.25' : '7.5';
      const result = await connection.exec(`echo before; sleep ${sleepSeconds}; echo never`, { timeoutMs: 300 });
      expect(result.code).toBe(124);
      expect(result.timedOut).toBe(true);
      expect(result.stdout).toBe('before\n');
      expect(Date.now() - started).toBeLessThan(3000);
      // The command's own children are gone too, not just the channel.
      expect(await eventually(() => processesRunning(['sleep', sleepSeconds]) === 0)).toBe(true);
      expect((await connection.exec('echo after')).stdout).toBe('after\n');
    });

    it('becomes another user through sudo, and not at all when already that user', async () => {
      expect((await connection.exec('id -un', { become: true, becomeUser: 'nobody' })).stdout).toBe('nobody\n');
      // Login user is root here: become root runs directly.
      expect((await connection.exec('id -un', { become: true })).stdout).toBe('root\n');
      const marker = join(dir, `become-${label}`);
      mkdirSync(marker, { recursive: true });
      chmodSync(marker, 0o777);
      for (const nasty of nastyStrings(join(marker, 'pwned'))) {
        const result = await connection.exec(`printf '%s' ${quote(nasty)}`, { become: true, becomeUser: 'nobody' });
        expect(result.stdout).toBe(nasty);
      }
      expect(readdirSync(marker)).toEqual([]);
    });

    it('explains a become to a user that does not exist', async () => {
      const result = await connection.exec('true', { become: true, becomeUser: 'no-such-user-cairn' });
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/^become failed on .*: user no-such-user-cairn does not exist/);
    });
  });
}

describe('ssh transport against real sshd', () => {
  let lab: TestSshLab;
  beforeAll(async () => {
    // h1 keeps OpenSSH's default channel limit, as real hosts have it.
    lab = await startSshHosts(2, { sshdExtraConfig: (i) => (i === 0 ? 'MaxSessions 10' : '') });
  });
  afterAll(async () => {
    await lab?.stop();
  });

  sharedExecBehaviours('ssh', async () => ({
    connection: await openSshConnection(lab.spec('h1')),
    dir: (lab.hosts[0] as { dir: string }).dir,
  }));

  it('refuses a host whose key does not match known_hosts, naming the file and line', async () => {
    const h1 = lab.hosts[0]!;
    // h2's real key recorded under h1's address: exactly what a man in the middle would present.
    const lines = readFileSync(lab.knownHostsPath, 'utf8').trim().split('\n');
    const h2Key = lines[1]!.split(' ').slice(1).join(' ');
    const wrong = join(lab.dir, 'known_hosts_wrong');
    writeFileSync(wrong, `# a comment\n\n[${h1.address}]:${h1.port} ${h2Key}\n`);
    const attempt = openSshConnection(lab.spec('h1', { knownHostsPath: wrong, acceptNewHostKeys: true }));
    await expect(attempt).rejects.toBeInstanceOf(HostKeyError);
    const error = (await attempt.catch((e: unknown) => e)) as HostKeyError;
    expect(error.host).toBe('h1');
    expect(error.message).toContain(`h1 (${h1.address}:${h1.port})`);
    expect(error.message).toContain(`${wrong}:3`);
    expect(error.message).toMatch(/man-in-the-middle/);
    // acceptNewHostKeys never overwrites a mismatch.
    expect(readFileSync(wrong, 'utf8').trim().split('\n')).toHaveLength(3);
  });

  it('refuses an unknown host, then trusts it on first use and matches it afterwards', async () => {
    const h2 = lab.hosts[1]!;
    const fresh = join(lab.dir, 'tofu', 'known_hosts');
    const refused = await openSshConnection(lab.spec('h2', { knownHostsPath: fresh })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HostKeyError);
    expect((refused as Error).message).toMatch(
      /not in known_hosts .*\(use --accept-new-host-keys to trust on first use\)/,
    );
    expect(existsSync(fresh)).toBe(false);

    const accepted = await openSshConnection(lab.spec('h2', { knownHostsPath: fresh, acceptNewHostKeys: true }));
    expect((await accepted.exec('echo tofu')).stdout).toBe('tofu\n');
    await accepted.close();
    const recorded = readFileSync(fresh, 'utf8');
    expect(recorded).toMatch(new RegExp(`^\\[${h2.address.replace(/\./g, '\\.')}\\]:${h2.port} ssh-ed25519 \\S+\\n$`));
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
    // The recorded key is the one in the lab's own known_hosts.
    expect(readFileSync(lab.knownHostsPath, 'utf8')).toContain(recorded.trim());

    const again = await openSshConnection(lab.spec('h2', { knownHostsPath: fresh }));
    expect((await again.exec('echo matched')).stdout).toBe('matched\n');
    await again.close();
  });

  it('reports a refused connection quickly as unreachable', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const port = (server.address() as { port: number }).port;
        server.close(() => resolve(port));
      });
    });
    const error = await openSshConnection(lab.spec('h1', { address: '127.0.0.1', port: closedPort })).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnreachableError);
    expect(error).not.toBeInstanceOf(HostKeyError);
    expect((error as Error).message).toBe(`cannot connect to h1 (root@127.0.0.1:${closedPort}): connection refused`);
  });

  it('times out against a server that never speaks SSH', async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const started = Date.now();
      const error = await openSshConnection(
        lab.spec('h1', { address: '127.0.0.1', port, connectTimeoutMs: 300 }),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnreachableError);
      expect((error as Error).message).toMatch(/timed out after 300 ms/);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      silent.close();
    }
  });

  it('reports a key the server does not accept as an authentication failure', async () => {
    const otherKey = join(lab.dir, 'not-authorised');
    spawnSync('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const error = await openSshConnection(lab.spec('h1', { privateKeyPath: otherKey })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnreachableError);
    expect((error as Error).message).toMatch(/authentication failed for root \(tried key .*not-authorised\)/);
    const missing = await openSshConnection(lab.spec('h1', { privateKeyPath: join(lab.dir, 'nope') })).catch(
      (e: unknown) => e,
    );
    expect((missing as Error).message).toMatch(/cannot read private key .*nope: ENOENT/);
  });

  it('falls back to ~/.ssh/id_ed25519 and the SSH agent when no key or password is given', async () => {
    const savedHome = process.env.HOME;
    const savedAgent = process.env.SSH_AUTH_SOCK;
    const home = join(lab.dir, 'fake-home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    const agentSocket = join(lab.dir, 'agent.sock');
    let agent: ChildProcess | undefined;
    try {
      process.env.HOME = home;
      delete process.env.SSH_AUTH_SOCK;
      const noKey = await openSshConnection(lab.spec('h1', { privateKeyPath: undefined })).catch((e: unknown) => e);
      expect((noKey as Error).message).toMatch(
        /authentication failed for root \(tried nothing: no key, password or agent\)$/,
      );

      copyFileSync(lab.clientKeyPath, join(home, '.ssh', 'id_ed25519'));
      const byDefaultKey = await openSshConnection(lab.spec('h1', { privateKeyPath: undefined }));
      expect((await byDefaultKey.exec('echo default-key')).stdout).toBe('default-key\n');
      await byDefaultKey.close();
      rmSync(join(home, '.ssh', 'id_ed25519'));

      // A real ssh-agent holding the key, and no key file anywhere.
      agent = spawn('/usr/bin/ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
      expect(await eventually(() => existsSync(agentSocket))).toBe(true);
      const added = spawnSync('/usr/bin/ssh-add', [lab.clientKeyPath], {
        env: { ...process.env, SSH_AUTH_SOCK: agentSocket },
      });
      expect(added.status).toBe(0);
      process.env.SSH_AUTH_SOCK = agentSocket;
      const byAgent = await openSshConnection(lab.spec('h1', { privateKeyPath: undefined }));
      expect((await byAgent.exec('echo agent')).stdout).toBe('agent\n');
      await byAgent.close();
    } finally {
      process.env.HOME = savedHome;
      if (savedAgent === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = savedAgent;
      if (agent?.pid !== undefined) process.kill(agent.pid, 'SIGTERM');
    }
  });

  it('fails a running command and every later one when the connection is cut', async () => {
    const connection = await openSshConnection(lab.spec('h2'));
    const h2 = lab.hosts[1]!;
    const running = connection.exec('sleep 5');
    const outcome = running.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const cutAt = Date.now();
    h2.killSessions();
    const error = await outcome;
    expect(error).toBeInstanceOf(UnreachableError);
    expect((error as Error).message).toMatch(/^connection to h2 .* lost: /);
    expect(Date.now() - cutAt).toBeLessThan(2000);
    const later = await connection.exec('true').catch((e: unknown) => e);
    expect(later).toBeInstanceOf(UnreachableError);
    await connection.close();
  });

  it('runs more concurrent execs than sshd allows channels by waiting for free ones', async () => {
    const connection = await openSshConnection(lab.spec('h1'));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => connection.exec(`sleep 0.05; echo ${i}`)));
    expect(results.map((result) => result.stdout)).toEqual(Array.from({ length: 30 }, (_, i) => `${i}\n`));
    expect(results.every((result) => result.code === 0)).toBe(true);
    await connection.close();
  });

  it('builds no "already finished" error per command (ssh2 ends each channel a second time)', async () => {
    const connection = await openSshConnection(lab.spec('h1'));
    const end = Duplex.prototype.end;
    let endsOfFinishedStreams = 0;
    Duplex.prototype.end = function (this: Duplex, ...args: unknown[]) {
      if (this.writableFinished) endsOfFinishedStreams++;
      return (end as (...a: unknown[]) => Duplex).apply(this, args);
    } as typeof end;
    try {
      for (let i = 0; i < 20; i++) expect((await connection.exec(`echo ${i}`)).stdout).toBe(`${i}\n`);
      // Control: the count sees a second end() of a finished stream when one happens.
      const control = new Duplex({ read() {}, write: (_c, _e, done) => done() });
      control.end();
      await new Promise((resolve) => control.once('finish', resolve));
      control.end();
    } finally {
      Duplex.prototype.end = end;
      await connection.close();
    }
    expect(endsOfFinishedStreams).toBe(1);
  });

  it('sends the SSH packets of one event-loop turn in one socket write, not one write per packet', async () => {
    // ssh2 calls socket.write once per packet; _write/_writev are the writes handed to the kernel.
    const proto = Socket.prototype as unknown as Record<'write' | '_write' | '_writev', (...a: unknown[]) => unknown>;
    const original = { write: proto.write, _write: proto._write, _writev: proto._writev };
    let packets = 0;
    let writes = 0;
    proto.write = function (this: Socket, ...args: unknown[]) {
      packets++;
      return original.write.apply(this, args);
    };
    proto._write = function (this: Socket, ...args: unknown[]) {
      writes++;
      return original._write.apply(this, args);
    };
    proto._writev = function (this: Socket, ...args: unknown[]) {
      writes++;
      return original._writev.apply(this, args);
    };
    const counted = async (run: () => Promise<unknown>): Promise<{ packets: number; writes: number }> => {
      packets = 0;
      writes = 0;
      await run();
      return { packets, writes };
    };
    try {
      const connection = await openSshConnection(lab.spec('h1'));
      // One after another: the exec request alone, then its input and EOF together, then the channel's close
      // and the next channel's open together.
      const sequential = await counted(async () => {
        for (let i = 0; i < 20; i++) expect((await connection.exec(`echo ${i}`)).stdout).toBe(`${i}\n`);
      });
      // At once: the opens of all channels in one write, and so on.
      const concurrent = await counted(() => Promise.all(Array.from({ length: 20 }, () => connection.exec('true'))));
      await connection.close();
      expect(sequential.packets).toBeGreaterThanOrEqual(80);
      expect(sequential.writes).toBeLessThanOrEqual(sequential.packets * 0.75);
      expect(concurrent.packets).toBeGreaterThanOrEqual(80);
      expect(concurrent.writes).toBeLessThanOrEqual(concurrent.packets * 0.5);
    } finally {
      Object.assign(proto, original);
    }
  });

  it('a pool opens one connection per host for many execs and remembers an unreachable host', async () => {
    let attempts = 0;
    const pool = new ConnectionPool((spec) => {
      attempts++;
      return openConnection(spec);
    });
    const specs = [lab.spec('h1'), lab.spec('h2')];
    const outputs = await Promise.all(
      specs.map(async (spec) => {
        const seen: string[] = [];
        for (let i = 0; i < 50; i++) seen.push((await (await pool.get(spec)).exec(`echo ${i}`)).stdout);
        return seen;
      }),
    );
    expect(outputs[0]).toEqual(Array.from({ length: 50 }, (_, i) => `${i}\n`));
    expect(pool.opened).toBe(2);

    const dead: ConnectionSpec = { ...lab.spec('h1'), name: 'dead', address: '127.0.0.1', port: 1 };
    const first = await pool.get(dead).catch((e: unknown) => e);
    const second = await pool.get(dead).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(UnreachableError);
    expect(second).toBe(first);
    expect(attempts).toBe(3);
    expect(pool.opened).toBe(2);
    await pool.closeAll();
  });
});

describe('ssh through jump hosts', () => {
  let targets: TestSshLab;
  let innerJump: TestSshLab;
  let outerJumps: TestSshLab;
  let knownHostsPath: string;
  const hop = (lab: TestSshLab, name: string) => {
    const host = lab.hosts.find((candidate) => candidate.name === name)!;
    return { address: host.address, port: host.port, user: host.user, privateKeyPath: lab.clientKeyPath };
  };
  const at = (lab: TestSshLab, name: string): string => `${hop(lab, name).address}:${hop(lab, name).port}`;

  beforeAll(async () => {
    // The jump hosts may forward only where PermitOpen says: a route that works has to go through them.
    targets = await startSshHosts(2, { names: ['target', 'other'] });
    innerJump = await startSshHosts(1, { names: ['j2'], sshdExtraConfig: () => `PermitOpen ${at(targets, 'target')}` });
    outerJumps = await startSshHosts(1, {
      names: ['j1'],
      sshdExtraConfig: () => `PermitOpen ${at(targets, 'target')} ${at(innerJump, 'j2')}`,
    });
    knownHostsPath = join(targets.dir, 'all_known_hosts');
    writeFileSync(
      knownHostsPath,
      [targets, innerJump, outerJumps].map((lab) => readFileSync(lab.knownHostsPath, 'utf8')).join(''),
    );
  });
  afterAll(async () => {
    await Promise.all([targets?.stop(), innerJump?.stop(), outerJumps?.stop()]);
  });

  const specFor = (name: string, jump: ConnectionSpec['jump']): ConnectionSpec =>
    targets.spec(name, { knownHostsPath, jump });

  it('reaches the host through one jump host, and fails the same route when the jump forbids the target', async () => {
    const j1 = outerJumps.hosts[0]!;
    const connection = await openSshConnection(specFor('target', [hop(outerJumps, 'j1')]));
    expect((await connection.exec('echo via-j1')).stdout).toBe('via-j1\n');
    expect(establishedConnectionsTo(j1.address, j1.port)).toBe(1);
    await connection.close();
    // Closing the connection closes the jump host's connection too.
    expect(await eventually(() => establishedConnectionsTo(j1.address, j1.port) === 0)).toBe(true);

    const forbidden = await openSshConnection(specFor('other', [hop(outerJumps, 'j1')])).catch((e: unknown) => e);
    expect(forbidden).toBeInstanceOf(UnreachableError);
    expect((forbidden as Error).message).toMatch(
      /jump host root@.* refused to forward to .*\(administratively prohibited: open failed\)$/,
    );
    // The forbidden target itself is fine when reached directly.
    const direct = await openSshConnection(targets.spec('other'));
    expect((await direct.exec('echo direct')).stdout).toBe('direct\n');
    await direct.close();
  });

  it('reaches the host through a chain of two jump hosts, outermost first', async () => {
    const chain = [hop(outerJumps, 'j1'), hop(innerJump, 'j2')];
    const connection = await openSshConnection(specFor('target', chain));
    expect((await connection.exec('echo via-chain')).stdout).toBe('via-chain\n');
    const j2 = innerJump.hosts[0]!;
    expect(establishedConnectionsTo(j2.address, j2.port)).toBe(1);
    await connection.close();
    expect(await eventually(() => establishedConnectionsTo(j2.address, j2.port) === 0)).toBe(true);

    const forbidden = await openSshConnection(specFor('other', chain)).catch((e: unknown) => e);
    expect((forbidden as Error).message).toBe(
      `cannot connect to other (root@${at(targets, 'other')} via root@${at(outerJumps, 'j1')} -> root@${at(innerJump, 'j2')}): ` +
        `jump host root@${at(innerJump, 'j2')} refused to forward to ${at(targets, 'other')} (administratively prohibited: open failed)`,
    );
  });

  it('checks the jump host key too', async () => {
    const onlyTargets = join(targets.dir, 'targets_only_known_hosts');
    writeFileSync(onlyTargets, readFileSync(targets.knownHostsPath));
    const error = await openSshConnection(
      targets.spec('target', { knownHostsPath: onlyTargets, jump: [hop(outerJumps, 'j1')] }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HostKeyError);
    expect((error as Error).message).toContain(`jump host root@${at(outerJumps, 'j1')}`);
  });
});

describe('local transport', () => {
  let localDir: string | undefined;
  afterAll(() => {
    if (localDir) rmSync(localDir, { recursive: true, force: true });
  });
  sharedExecBehaviours('local', async () => {
    localDir = mkdtempSync(join(tmpdir(), 'cairn-local-transport-'));
    const spec: ConnectionSpec = {
      name: 'localhost',
      connection: 'local',
      address: '127.0.0.1',
      port: 22,
      user: 'root',
      jump: [],
      connectTimeoutMs: 1000,
      knownHostsPath: join(localDir, 'unused_known_hosts'),
      acceptNewHostKeys: false,
      become: false,
      becomeUser: 'root',
    };
    return { connection: await openLocalConnection(spec), dir: localDir };
  });

  it('a sudo that wants a password fails at once with a clear message', () => {
    // Run our own become argv as `nobody`, whom sudo asks for a password (real sudo, real output).
    const opts = { become: true, becomeUser: 'root' };
    const run = spawnSync('runuser', ['-u', 'nobody', '--', ...commandArgv('id -un', 'nobody', opts)], {
      encoding: 'utf8',
      input: '',
      timeout: 10_000,
    });
    expect(run.signal).toBeNull();
    const explained = explainBecomeFailure(
      { stdout: run.stdout, stderr: run.stderr, code: run.status ?? 255 },
      'web1',
      'nobody',
      opts,
    );
    expect(explained.code).toBe(1);
    expect(explained.stderr).toMatch(
      /^become failed on web1: sudo asks nobody for a password to become root; cairn needs passwordless sudo/,
    );
  });
});
