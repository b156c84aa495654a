/**
 * The SSH connect's time limits against a real sshd (test/helpers/sshd.ts), reached through a TCP proxy on
 * loopback that can hold the client's bytes at a chosen point of the handshake. What is tested is which step
 * a limit covers, never how long anything takes:
 * - the connect timeout (Ansible's `timeout`) covers the TCP connect and the server's banner, as OpenSSH's
 *   ConnectTimeout; the key exchange and user authentication after it have their own, longer limit (at 500
 *   hosts at once on a loaded machine, handshakes outlasted the 10 s that used to cover every step);
 * - a controller whose event loop was busy does not blame a host whose answer arrived in time;
 * - a failed connect is tried again ansible_ssh_retries times (Ansible's reconnection_retries), never after a
 *   host key failure.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';
import { openSshConnection } from '../../runner/core/transport/ssh.js';
import { HostKeyError, UnreachableError, type ConnectionSpec } from '../../runner/core/transport/types.js';

requireSshd();

/** SSH_MSG_NEWKEYS (RFC 4253 section 7.3): the last packet before a side's traffic is encrypted. */
const SSH_MSG_NEWKEYS = 21;

/**
 * Reads the client's side of an SSH connection up to and including its NEWKEYS packet (banner line, then
 * unencrypted binary packets: uint32 length, padding length, payload whose first byte is the message type).
 * Returns how many bytes of `buffer` that is, or undefined while NEWKEYS has not arrived whole.
 */
function endOfClientNewKeys(buffer: Buffer): number | undefined {
  const bannerEnd = buffer.indexOf('\n');
  if (bannerEnd === -1) return undefined;
  let at = bannerEnd + 1;
  while (at + 6 <= buffer.length) {
    const length = buffer.readUInt32BE(at);
    if (at + 4 + length > buffer.length) return undefined;
    const type = buffer[at + 5];
    at += 4 + length;
    if (type === SSH_MSG_NEWKEYS) return at;
  }
  return undefined;
}

interface Proxy {
  port: number;
  /** Connections the proxy accepted so far. */
  accepted(): number;
  /** Releases the held bytes of every connection (and stops holding new ones). */
  release(): void;
  close(): Promise<void>;
}

/** Where the proxy starts holding the client's bytes (see startProxy). */
type HoldPoint = 'after-banner' | 'after-kex' | 'nothing';

/** How many bytes of the client's stream so far go through before the hold point, or undefined if not reached. */
function holdOffset(buffer: Buffer, hold: HoldPoint): number | undefined {
  if (hold === 'after-kex') return endOfClientNewKeys(buffer);
  const bannerEnd = buffer.indexOf('\n');
  return bannerEnd === -1 ? undefined : bannerEnd + 1;
}

/**
 * A loopback TCP proxy to `target`. It forwards the server's bytes as they come, and the client's until the
 * hold point, then keeps the client's further bytes until release(): 'after-banner' holds the key exchange
 * (the server's banner has come, the client's key exchange offer is held), 'after-kex' holds everything after
 * the client's NEWKEYS (its first encrypted packet asks for user authentication).
 */
async function startProxy(
  target: { address: string; port: number },
  hold: HoldPoint,
  opts: { dropFirst?: number } = {},
): Promise<Proxy> {
  const sockets = new Set<Socket>();
  const releasers: Array<() => void> = [];
  let released = hold === 'nothing';
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    // A host whose sshd drops a connection before its banner (restarting, MaxStartups reached): a reset.
    if (accepted <= (opts.dropFirst ?? 0)) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: target.address, port: target.port });
    sockets.add(client).add(upstream);
    upstream.pipe(client);
    let seen = Buffer.alloc(0);
    let holding = false;
    const held: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      if (released || holding) {
        if (released) upstream.write(chunk);
        else held.push(chunk);
        return;
      }
      seen = Buffer.concat([seen, chunk]);
      const end = holdOffset(seen, hold);
      if (end === undefined) {
        upstream.write(chunk);
        return;
      }
      holding = true;
      const forwardNow = chunk.length - (seen.length - end);
      upstream.write(chunk.subarray(0, forwardNow));
      if (forwardNow < chunk.length) held.push(chunk.subarray(forwardNow));
    });
    releasers.push(() => {
      for (const chunk of held.splice(0)) upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    const destroyBoth = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', destroyBoth);
    upstream.on('error', destroyBoth);
    client.on('close', destroyBoth);
    upstream.on('close', destroyBoth);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    accepted: () => accepted,
    release() {
      released = true;
      for (const releaseOne of releasers) releaseOne();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A fresh ed25519 public key in known_hosts' base64 form (RFC 8709 blob): a key no test host has. */
function otherEd25519Key(): string {
  const raw = Buffer.from(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const field = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
  return Buffer.concat([field(Buffer.from('ssh-ed25519')), field(raw)]).toString('base64');
}

describe('ssh connect time limits and retries', () => {
  let lab: TestSshLab;
  beforeAll(async () => {
    lab = await startSshHosts(1);
  });
  afterAll(async () => {
    await lab?.stop();
  });

  /** h1 reached at 127.0.0.1:port (the proxy), with h1's host key on record for that address. */
  function throughProxy(port: number, overrides: Partial<ConnectionSpec>): ConnectionSpec {
    const h1 = lab.hosts[0]!;
    const line = readFileSync(lab.knownHostsPath, 'utf8')
      .split('\n')
      .find((entry) => entry.startsWith(`[${h1.address}]:${h1.port} `));
    if (!line) throw new Error(`no known_hosts line for h1 in ${lab.knownHostsPath}`);
    const knownHostsPath = join(lab.dir, `known_hosts.proxy-${port}`);
    writeFileSync(knownHostsPath, `[127.0.0.1]:${port} ${line.split(' ').slice(1).join(' ')}\n`);
    return lab.spec('h1', { address: '127.0.0.1', port, knownHostsPath, ...overrides });
  }

  it('the proxy forwards a whole connection (control for the tests below)', async () => {
    const proxy = await startProxy(lab.hosts[0]!, 'nothing');
    try {
      const connection = await openSshConnection(throughProxy(proxy.port, {}));
      expect((await connection.exec('echo through')).stdout).toBe('through\n');
      await connection.close();
    } finally {
      await proxy.close();
    }
  });

  it('does not count user authentication against the connect timeout', async () => {
    const proxy = await startProxy(lab.hosts[0]!, 'after-kex');
    try {
      const connectTimeoutMs = 2500;
      const opening = openSshConnection(throughProxy(proxy.port, { connectTimeoutMs, authTimeoutMs: 60_000 }));
      // Authentication is held until well after the connect timeout has passed, then let through.
      setTimeout(() => proxy.release(), connectTimeoutMs * 2);
      const connection = await opening;
      expect((await connection.exec('echo authenticated late')).stdout).toBe('authenticated late\n');
      await connection.close();
    } finally {
      await proxy.close();
    }
  });

  it('does not count the key exchange against the connect timeout once the banner came', async () => {
    const proxy = await startProxy(lab.hosts[0]!, 'after-banner');
    try {
      const connectTimeoutMs = 2500;
      const opening = openSshConnection(throughProxy(proxy.port, { connectTimeoutMs, authTimeoutMs: 60_000 }));
      // The server's banner goes through at once; the key exchange is held past the connect timeout.
      setTimeout(() => proxy.release(), connectTimeoutMs * 2);
      const connection = await opening;
      expect((await connection.exec('echo exchanged late')).stdout).toBe('exchanged late\n');
      await connection.close();
    } finally {
      await proxy.close();
    }
  });

  it('gives up on a key exchange that never finishes, after the longer limit, saying which step', async () => {
    const proxy = await startProxy(lab.hosts[0]!, 'after-banner');
    try {
      // The banner comes at once; the connect timeout is long enough for it on a loaded machine (a banner
      // later than that would rightly be reported as such).
      const error = await openSshConnection(
        throughProxy(proxy.port, { connectTimeoutMs: 2000, authTimeoutMs: 300 }),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnreachableError);
      expect((error as Error).message).toBe(
        `cannot connect to h1 (root@127.0.0.1:${proxy.port}): ` +
          'timed out after 300 ms waiting for the key exchange and user authentication',
      );
    } finally {
      await proxy.close();
    }
  });

  it('gives up on an authentication that never finishes, after its own limit, saying which step', async () => {
    const proxy = await startProxy(lab.hosts[0]!, 'after-kex');
    try {
      const error = await openSshConnection(
        throughProxy(proxy.port, { connectTimeoutMs: 5000, authTimeoutMs: 300 }),
      ).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnreachableError);
      expect((error as Error).message).toBe(
        `cannot connect to h1 (root@127.0.0.1:${proxy.port}): ` +
          'timed out after 300 ms waiting for user authentication (key exchange done)',
      );
    } finally {
      await proxy.close();
    }
  });

  it('does not blame a host for the time its own event loop was busy', async () => {
    // A server that accepts and never speaks: the TCP connect succeeds at once, the banner never comes.
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      // The controller is busy past the connect timeout right after starting the connect (the kernel completes
      // a loopback connect at once): the connect arrived in time and must be seen as such; the step that
      // really timed out is the banner. Busy in the check phase, as a host's I/O keeps it busy in a real run:
      // the loop then reaches the expired timers before it polls for the connect.
      const { attempt: opening } = await new Promise<{ attempt: Promise<unknown> }>((resolve) =>
        setImmediate(() => {
          const attempt = openSshConnection(lab.spec('h1', { address: '127.0.0.1', port, connectTimeoutMs: 200 }));
          attempt.catch(() => undefined);
          const busyUntil = Date.now() + 600;
          while (Date.now() < busyUntil) {
            // Busy, as hundreds of hosts starting at once keep the event loop.
          }
          resolve({ attempt });
        }),
      );
      const error = await opening.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnreachableError);
      expect((error as Error).message).toBe(
        `cannot connect to h1 (root@127.0.0.1:${port}): ` +
          "timed out after 200 ms (the connect timeout) waiting for the server's SSH banner",
      );
    } finally {
      silent.close();
    }
  });

  it('tries again after a failure that may pass, as often as ansible_ssh_retries says, and no more', async () => {
    const proxy = await startProxy(lab.hosts[0]!, 'nothing', { dropFirst: 2 });
    try {
      const once = await openSshConnection(throughProxy(proxy.port, { connectRetries: 0 })).catch((e: unknown) => e);
      expect(once).toBeInstanceOf(UnreachableError);
      expect((once as Error).message).toMatch(/^cannot connect to h1 \(root@127\.0\.0\.1:\d+\): /);
      expect(proxy.accepted()).toBe(1);
      // The second connection is dropped too; the third goes through (pauses 0 s, then 1 s, as Ansible's).
      const connection = await openSshConnection(throughProxy(proxy.port, { connectRetries: 2 }));
      expect((await connection.exec('echo third time')).stdout).toBe('third time\n');
      expect(proxy.accepted()).toBe(3);
      await connection.close();
    } finally {
      await proxy.close();
    }
  });

  it('never tries again after a failure that cannot pass (a host key that does not match)', async () => {
    const proxy = await startProxy(lab.hosts[0]!, 'nothing');
    try {
      const spec = throughProxy(proxy.port, { connectRetries: 3 });
      writeFileSync(spec.knownHostsPath, `[127.0.0.1]:${proxy.port} ssh-ed25519 ${otherEd25519Key()}\n`);
      const error = await openSshConnection(spec).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HostKeyError);
      expect(proxy.accepted()).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});
