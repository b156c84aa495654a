/**
 * The SSH transport: one node-ssh client per host for the whole run, optionally reached through a chain of
 * jump hosts, with host keys checked against an OpenSSH known_hosts file.
 *
 * Speed: we open the TCP socket ourselves and set TCP_NODELAY before handing it to ssh2. ssh2 leaves Nagle on,
 * and every exec round trip then waits ~40 ms on delayed ACKs (see shared/perf-notes.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect as netConnect, Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { NodeSSH, type Config as NodeSshConfig } from 'node-ssh';
import type { AnyAuthMethod, Client as Ssh2Client, ClientChannel, ParsedKey, ServerHostKeyAlgorithm } from 'ssh2';
import { appendHostKey, checkHostKey, keyTypeOfBlob, knownKeysFor } from './known-hosts.js';
import { explainBecomeFailure, shellArgv, signalNumber, TIMEOUT_EXIT_CODE } from './local.js';
import { carryScript } from './carrier.js';
import { CappedOutput } from './output.js';
import { loadPrivateKey, PrivateKeyError } from './private-keys.js';
import { argv } from './quote.js';
import type { Connection, ConnectionSpec, ExecOptions, ExecResult } from './types.js';
import { HostKeyError, UnreachableError } from './types.js';

/** Keepalives every 5 s, dead after 3 unanswered: a vanished host is noticed in ~15-20 s. */
const KEEPALIVE_INTERVAL_MS = 5000;
const KEEPALIVE_COUNT_MAX = 3;

/**
 * How long the key exchange and user authentication may take once the server's banner came: sshd's own
 * default LoginGraceTime, the time the server gives a client to log in. The connect timeout (Ansible's
 * `timeout`, ansible_timeout) covers the TCP connect and the server's banner, as OpenSSH's ConnectTimeout does
 * (Ansible passes its `timeout` as `-o ConnectTimeout`; ssh.c gives what the connect left of it to
 * kex_exchange_identification, the banner exchange, and puts no limit on the key exchange and authentication
 * after it): this limit bounds a server that stalls there. OpenSSH counts the TCP connect and the banner against
 * one budget; cairn gives each its own, because a controller serving hundreds of hosts from one event loop can
 * lose time between the two that is not the host's.
 */
export const AUTH_TIMEOUT_MS = 120_000;

/**
 * A deadline that is judged after the I/O already waiting has been read. Node runs expired timers before it
 * polls for I/O, so when the event loop was busy (hundreds of hosts starting at once, a loaded controller), a
 * plain timer fires before the 'connect' or the server's reply that arrived in time is even seen, and the
 * host is blamed for the controller's own delay (at 100 hosts at once with a 2 s timeout, every TCP connect on
 * loopback "timed out"). So on expiry the verdict waits for one poll phase (setImmediate runs after it), and
 * `done()` before then cancels it.
 */
function deadline(ms: number, expired: () => void): { done(): void } {
  let finished = false;
  let immediate: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => {
    immediate = setImmediate(() => {
      if (!finished) {
        finished = true;
        expired();
      }
    });
  }, ms);
  return {
    done() {
      finished = true;
      clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}

/** One SSH server on the way to the host (jump hosts first, the host itself last). */
interface Hop {
  /** How messages name it: "jump host root@127.0.0.3:2222" or "root@127.0.0.4:2222". */
  label: string;
  /** The host itself, as opposed to a jump host on the way. */
  isTarget: boolean;
  address: string;
  port: number;
  user: string;
  privateKeyPath?: string;
  password?: string;
}

/** A connect step failed for a reason that already reads well as one line. */
class ConnectFailure extends Error {
  /** The message already says which hop failed (so it is not prefixed with one). */
  constructor(
    message: string,
    readonly namesTheHop = false,
    /** Trying again cannot help (a refused key, an unreadable key file): never retried. */
    readonly lasting = false,
  ) {
    super(message);
  }
}

/** Unreachable for a reason that trying again cannot change (see connectRetries). */
class LastingUnreachable extends UnreachableError {}

function hopName(user: string, address: string, port: number): string {
  return `${user}@${address}:${port}`;
}

function hopsOf(spec: ConnectionSpec): Hop[] {
  const jumps: Hop[] = spec.jump.map((jump) => ({
    label: `jump host ${hopName(jump.user, jump.address, jump.port)}`,
    isTarget: false,
    address: jump.address,
    port: jump.port,
    user: jump.user,
    privateKeyPath: jump.privateKeyPath,
  }));
  return [
    ...jumps,
    {
      label: hopName(spec.user, spec.address, spec.port),
      isTarget: true,
      address: spec.address,
      port: spec.port,
      user: spec.user,
      privateKeyPath: spec.privateKeyPath,
      password: spec.password,
    },
  ];
}

/** "root@127.0.0.4:2222 via root@127.0.0.3:2222" for messages. */
function routeOf(spec: ConnectionSpec): string {
  const target = hopName(spec.user, spec.address, spec.port);
  if (spec.jump.length === 0) return target;
  return `${target} via ${spec.jump.map((jump) => hopName(jump.user, jump.address, jump.port)).join(' -> ')}`;
}

// ---------------------------------------------------------------------------------------------------------
// Connecting

/**
 * Opens the connection, trying again `spec.connectRetries` times after a failure that may pass, as Ansible's
 * ssh plugin does with `reconnection_retries` (lib/ansible/plugins/connection/ssh.py, `_ssh_retry`): the pause
 * before attempt n+1 is 2^n - 1 seconds (0, 1, 3, 7, ...), at most 30. A host key or authentication failure is
 * never tried again.
 */
export async function openSshConnection(spec: ConnectionSpec): Promise<Connection> {
  const retries = spec.connectRetries ?? 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await openSshConnectionOnce(spec);
    } catch (error) {
      if (attempt >= retries || error instanceof HostKeyError || error instanceof LastingUnreachable) {
        if (attempt === 0 || !(error instanceof UnreachableError)) throw error;
        throw new UnreachableError(spec.name, `${error.message} (attempt ${attempt + 1} of ${retries + 1})`);
      }
      const pauseMs = Math.min(2 ** attempt - 1, 30) * 1000;
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }
}

async function openSshConnectionOnce(spec: ConnectionSpec): Promise<Connection> {
  const hops = hopsOf(spec);
  const chain = new ClientChain();
  let hopIndex = 0;
  try {
    for (; hopIndex < hops.length; hopIndex++) {
      const hop = hops[hopIndex] as Hop;
      const previous = chain.last();
      const sock = previous
        ? await forwardThrough(previous, hops[hopIndex - 1] as Hop, hop, spec.connectTimeoutMs)
        : await openTcpSocket(hop, spec.connectTimeoutMs);
      chain.add(await handshake(spec, hop, sock), hop.label);
    }
  } catch (error) {
    void chain.dispose();
    if (error instanceof HostKeyError) throw error;
    const hop = hops[hopIndex] as Hop;
    const namesTheHop = error instanceof ConnectFailure && error.namesTheHop;
    const where = hop.isTarget || namesTheHop ? '' : `${hop.label}: `;
    const reason =
      error instanceof ConnectFailure ? error.message : describeConnectError(error, hop, spec.connectTimeoutMs);
    const message = `cannot connect to ${spec.name} (${routeOf(spec)}): ${where}${reason}`;
    if (error instanceof ConnectFailure && error.lasting) throw new LastingUnreachable(spec.name, message);
    throw new UnreachableError(spec.name, message);
  }
  return new SshConnection(spec, chain);
}

function openTcpSocket(hop: Hop, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: hop.address, port: hop.port });
    socket.setNoDelay(true);
    coalesceWrites(socket);
    const timer = deadline(timeoutMs, () => {
      socket.destroy();
      reject(new ConnectFailure(`timed out after ${timeoutMs} ms opening a TCP connection`));
    });
    const onError = (error: Error): void => {
      timer.done();
      socket.destroy();
      reject(error);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      timer.done();
      socket.removeListener('error', onError);
      resolve(socket);
    });
  });
}

/**
 * ssh2 writes every SSH packet to the socket on its own, and with TCP_NODELAY each write is a system call and
 * a TCP segment: socket writes were 43 % of the wall-clock samples of cairn at 1000 hosts (issue 17). Packets
 * written in one turn of the event loop (an exec's request, input and EOF; the close of one channel and the
 * open of the next) are sent together: the socket is corked at the first write of a turn and uncorked when
 * that turn's callbacks are done (setImmediate runs after the poll phase, which does not block while an
 * immediate is pending), so Node hands them to the kernel in one writev. Nothing waits longer than the turn.
 */
function coalesceWrites(socket: Socket): void {
  const write = socket.write;
  let flush: NodeJS.Immediate | undefined;
  socket.write = function (this: Socket, ...args: unknown[]): boolean {
    if (flush === undefined) {
      this.cork();
      flush = setImmediate(() => {
        flush = undefined;
        this.uncork();
      });
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Socket['write'];
}

/** Asks the previous hop to open a TCP connection to the next one (what `ssh -J` does). */
function forwardThrough(previous: NodeSSH, previousHop: Hop, next: Hop, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const timer = deadline(timeoutMs, () =>
      reject(
        new ConnectFailure(
          `timed out after ${timeoutMs} ms waiting for ${previousHop.label} to open a channel to ${next.address}:${next.port}`,
          true,
        ),
      ),
    );
    previous.forwardOut('127.0.0.1', 0, next.address, next.port).then(
      (channel) => {
        timer.done();
        resolve(channel);
      },
      (error: unknown) => {
        timer.done();
        const reason = channelOpenFailure(error);
        reject(
          new ConnectFailure(
            `${previousHop.label} refused to forward to ${next.address}:${next.port} (${reason})`,
            true,
          ),
        );
      },
    );
  });
}

/** RFC 4254 section 5.1 reason codes, as ssh2 reports them on a failed channel open. */
const CHANNEL_OPEN_FAILURES: Record<number, string> = {
  1: 'administratively prohibited',
  2: 'connect failed',
  3: 'unknown channel type',
  4: 'resource shortage',
};

function channelOpenFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const reason = (error as Error & { reason?: unknown }).reason;
  const named = typeof reason === 'number' ? CHANNEL_OPEN_FAILURES[reason] : undefined;
  const message = error.message.replace(/^\(SSH\) /, '').replace(/^Channel open failure: /, '');
  return named ? `${named}: ${message}` : message;
}

/**
 * The SSH handshake on an open socket: the server's banner within the connect timeout, then the key exchange
 * and user authentication within AUTH_TIMEOUT_MS (spec.authTimeoutMs in tests).
 */
async function handshake(spec: ConnectionSpec, hop: Hop, sock: Socket | Duplex): Promise<NodeSSH> {
  let auth: AuthPlan;
  try {
    auth = authMethods(hop);
  } catch (error) {
    sock.destroy();
    throw error;
  }
  let hostKeyFailure: HostKeyError | undefined;
  const hostVerifier = (keyBlob: Buffer): boolean => {
    hostKeyFailure = verifyHostKey(spec, hop, keyBlob);
    return hostKeyFailure === undefined;
  };
  // Offer only the key types known_hosts holds for this host, so a host with several keys is checked
  // against the one we have on record (what OpenSSH does) instead of failing as a mismatch.
  const serverHostKey = hostKeyAlgorithmsFor(spec.knownHostsPath, hop);
  const config: NodeSshConfig = {
    sock: sock as Socket,
    username: hop.user,
    authHandler: auth.methods,
    hostVerifier,
    // No timer of ssh2's (a plain timer, and one limit for every step): ours below, step by step.
    readyTimeout: 0,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    ...(serverHostKey ? { algorithms: { serverHostKey } } : {}),
  };
  const client = new NodeSSH();
  let timedOut: ConnectFailure | undefined;
  const giveUp = (reason: string): void => {
    timedOut = new ConnectFailure(reason);
    sock.destroy();
  };
  const authTimeoutMs = spec.authTimeoutMs ?? AUTH_TIMEOUT_MS;
  let kexDone = false;
  let step: { done(): void } | undefined;
  /** The banner came: the key exchange and the authentication now have their own, longer limit. */
  const afterBanner = (): void => {
    step?.done();
    step = deadline(authTimeoutMs, () =>
      giveUp(
        kexDone
          ? `timed out after ${authTimeoutMs} ms waiting for user authentication (key exchange done)`
          : `timed out after ${authTimeoutMs} ms waiting for the key exchange and user authentication`,
      ),
    );
  };
  // What the server sends first is its banner: any byte read from our own TCP socket means it came. A jump
  // host's channel does not count bytes, so there the key exchange's end stands for it (stricter).
  const bannerSeen = (): boolean => sock instanceof Socket && sock.bytesRead > 0;
  step = deadline(spec.connectTimeoutMs, () => {
    if (bannerSeen()) {
      afterBanner();
      return;
    }
    const waitingFor = sock instanceof Socket ? "the server's SSH banner" : 'the SSH banner and key exchange';
    giveUp(`timed out after ${spec.connectTimeoutMs} ms (the connect timeout) waiting for ${waitingFor}`);
  });
  const connecting = client.connect(config);
  // node-ssh makes its ssh2 client before its first await (no key path is given to it): the client is there.
  const raw = client.connection as Ssh2Client | null;
  raw?.once('handshake', () => {
    kexDone = true;
    afterBanner();
  });
  try {
    await connecting;
  } catch (error) {
    client.dispose();
    sock.destroy();
    if (hostKeyFailure) throw hostKeyFailure;
    if (timedOut) throw timedOut;
    if (isAuthFailure(error)) {
      const tried = auth.tried.join(', ') || 'nothing: no key, password or agent';
      throw new ConnectFailure(`authentication failed for ${hop.user} (tried ${tried})`, false, true);
    }
    throw error;
  } finally {
    step?.done();
  }
  return client;
}

function isAuthFailure(error: unknown): boolean {
  return (
    error instanceof Error &&
    ((error as Error & { level?: string }).level === 'client-authentication' ||
      /All configured authentication methods failed/.test(error.message))
  );
}

const HOST_KEY_ALGORITHMS: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

function hostKeyAlgorithmsFor(knownHostsPath: string, hop: Hop): ServerHostKeyAlgorithm[] | undefined {
  const known = new Set(knownKeysFor(knownHostsPath, hop.address, hop.port).map((entry) => entry.keyType));
  const algorithms = Object.entries(HOST_KEY_ALGORITHMS)
    .filter(([keyType]) => known.has(keyType))
    .flatMap(([, names]) => names);
  return algorithms.length > 0 ? algorithms : undefined;
}

/** The fingerprint as `ssh-keygen -l` prints it. */
function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** undefined when the key may be used; otherwise the error that refuses it. Records new keys under TOFU. */
function verifyHostKey(spec: ConnectionSpec, hop: Hop, keyBlob: Buffer): HostKeyError | undefined {
  const file = spec.knownHostsPath;
  const keyType = keyTypeOfBlob(keyBlob) ?? 'unknown-key-type';
  const who = hop.isTarget ? `${spec.name} (${hop.address}:${hop.port})` : `${hop.label} (on the way to ${spec.name})`;
  const check = checkHostKey(file, hop.address, hop.port, keyBlob);
  switch (check.status) {
    case 'match':
      return undefined;
    case 'mismatch':
      return new HostKeyError(
        spec.name,
        `host key for ${who} does not match ${file}:${check.line} (offered ${keyType} ${fingerprint(keyBlob)}): ` +
          `someone may be doing a man-in-the-middle attack, or the host key was changed; ` +
          `if the change is expected, remove line ${check.line} from ${file}`,
      );
    case 'revoked':
      return new HostKeyError(
        spec.name,
        `host key for ${who} (${keyType} ${fingerprint(keyBlob)}) is marked @revoked in ${file}:${check.line}: refusing to connect`,
      );
    case 'unknown':
      if (!spec.acceptNewHostKeys) {
        return new HostKeyError(
          spec.name,
          `host key for ${who} (${keyType} ${fingerprint(keyBlob)}) is not in known_hosts ${file} ` +
            `(use --accept-new-host-keys to trust on first use)`,
        );
      }
      try {
        appendHostKey(file, hop.address, hop.port, keyType, keyBlob);
      } catch (error) {
        return new HostKeyError(
          spec.name,
          `cannot record the host key for ${who} in ${file}: ${(error as Error).message}`,
        );
      }
      return undefined;
  }
}

interface AuthPlan {
  methods: AnyAuthMethod[];
  /** What was tried, for the "authentication failed" message. */
  tried: string[];
}

/** The key file, or the password, or the default keys and the agent, as OpenSSH would try them. */
function authMethods(hop: Hop): AuthPlan {
  const plan: AuthPlan = { methods: [], tried: [] };
  const addKey = (path: string, required: boolean): void => {
    let key: ParsedKey;
    try {
      // Parsed once per path and run (./private-keys.ts) and handed to ssh2 parsed: given bytes, ssh2 would
      // parse them again for every connection, and each connection would keep its own copy.
      key = loadPrivateKey(path);
    } catch (error) {
      if (required && error instanceof PrivateKeyError) throw new ConnectFailure(error.message, false, true);
      if (required) throw error;
      return;
    }
    plan.methods.push({ type: 'publickey', username: hop.user, key });
    plan.tried.push(`key ${path}`);
  };
  if (hop.privateKeyPath) addKey(hop.privateKeyPath, true);
  const password = hop.password;
  if (password !== undefined) {
    plan.methods.push({ type: 'password', username: hop.user, password });
    // Servers that take passwords through PAM offer keyboard-interactive rather than "password".
    plan.methods.push({
      type: 'keyboard-interactive',
      username: hop.user,
      prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)),
    });
    plan.tried.push('password');
  }
  if (!hop.privateKeyPath && hop.password === undefined) {
    const agentSocket = process.env.SSH_AUTH_SOCK;
    if (agentSocket && existsSync(agentSocket)) {
      plan.methods.push({ type: 'agent', username: hop.user, agent: agentSocket });
      plan.tried.push(`agent ${agentSocket}`);
    }
    for (const name of ['id_ed25519', 'id_rsa']) addKey(join(homedir(), '.ssh', name), false);
  }
  return plan;
}

function describeConnectError(error: unknown, hop: Hop, timeoutMs: number): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ETIMEDOUT':
      return `timed out after ${timeoutMs} ms`;
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve ${hop.address}`;
    case 'ECONNRESET':
      return 'connection reset by the server';
  }
  if (/Timed out while waiting for handshake/.test(error.message)) {
    return `timed out after ${timeoutMs} ms waiting for the SSH handshake`;
  }
  if (/No response from server/.test(error.message)) return 'the server closed the connection during the SSH handshake';
  return (error.message.split('\n')[0] ?? '').trim() || 'unknown error';
}

// ---------------------------------------------------------------------------------------------------------
// The open connection

/**
 * The clients of one route (jump hosts, then the host). Notices when any of them goes away: after that, every
 * exec fails at once with the same reason, and nothing reconnects behind the engine's back.
 */
class ClientChain {
  private readonly links: Array<{ client: NodeSSH; raw: Ssh2Client; closed: Promise<void> }> = [];
  lostReason?: string;
  private readonly lossListeners = new Set<() => void>();

  add(client: NodeSSH, label: string): void {
    const raw = client.connection as Ssh2Client;
    const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    this.links.push({ client, raw, closed });
    // node-ssh adds an 'error' listener per exec until its channel opens; many concurrent execs are normal.
    raw.setMaxListeners(0);
    // A permanent listener: an 'error' with none would crash the process.
    raw.on('error', (error: Error & { level?: string }) => {
      const reason = /Keepalive timeout/i.test(error.message) ? 'no answer to keepalives' : error.message;
      this.markLost(`${label}: ${reason}`);
    });
    raw.on('end', () => this.markLost(`${label} closed the connection`));
    raw.on('close', () => this.markLost(`${label} closed the connection`));
  }

  last(): NodeSSH | undefined {
    return this.links[this.links.length - 1]?.client;
  }

  markLost(reason: string): void {
    if (this.lostReason !== undefined) return;
    this.lostReason = reason;
    for (const listener of [...this.lossListeners]) listener();
  }

  onLoss(listener: () => void): () => void {
    this.lossListeners.add(listener);
    return () => this.lossListeners.delete(listener);
  }

  /** Closes the host first, then each jump host outward. */
  async dispose(): Promise<void> {
    for (const { raw } of [...this.links].reverse()) raw.end();
    // Wait for the sockets to close, but never hang a run's shutdown on a host that does not answer.
    const giveUp = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([Promise.all(this.links.map((link) => link.closed)), giveUp]);
    for (const { raw } of this.links) raw.destroy();
  }
}

/**
 * sshd refuses more than MaxSessions (default 10) channels at once on one connection; the engine may ask for
 * more. Execs beyond this wait for a free channel instead of failing.
 */
const MAX_OPEN_CHANNELS = 8;
/** Channel opens refused while the connection is up are retried this many times (5 ms, 10 ms, ... apart). */
const CHANNEL_OPEN_RETRIES = 20;

/** A counting semaphore: FIFO, no timeouts. */
class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(count: number) {
    this.free = count;
  }

  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

class SshConnection implements Connection {
  readonly host: string;
  readonly user: string;
  private readonly target: NodeSSH;
  private closedByUs = false;
  private readonly channelSlots = new Slots(MAX_OPEN_CHANNELS);
  /** Commands still running, with their mark and options: close() stops them (see stopRunningCommands). */
  private readonly running = new Map<ClientChannel, { mark: string; opts: ExecOptions }>();

  constructor(
    private readonly spec: ConnectionSpec,
    private readonly chain: ClientChain,
  ) {
    this.host = spec.name;
    this.user = spec.user;
    this.target = chain.last() as NodeSSH;
  }

  private lostError(): UnreachableError {
    if (this.closedByUs) return new UnreachableError(this.host, `connection to ${this.host} was closed`);
    return new UnreachableError(
      this.host,
      `connection to ${this.host} (${routeOf(this.spec)}) lost: ${this.chain.lostReason}`,
    );
  }

  async exec(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.chain.lostReason !== undefined) throw this.lostError();
    await this.channelSlots.acquire();
    try {
      return await this.execInChannel(script, opts);
    } finally {
      this.channelSlots.release();
    }
  }

  private execInChannel(script: string, opts: ExecOptions): Promise<ExecResult> {
    if (this.chain.lostReason !== undefined) return Promise.reject(this.lostError());
    // The remote login shell parses this line: a fixed loader, the script and its input follow on stdin.
    const carried = carryScript(script, opts.stdin);
    const mark = `${RUN_MARK}${randomBytes(8).toString('hex')}`;
    const shellArgs = markedShellArgs(carried.shellArgs, mark);
    const command = argv(...withRemoteTimeout(shellArgv(shellArgs, this.user, opts), opts.timeoutMs));
    const raw = this.target.connection as Ssh2Client;
    const startedAt = Date.now();
    return new Promise<ExecResult>((resolve, reject) => {
      // Capped and streamed: a host printing without end costs a bounded amount of memory (./output.ts).
      const stdout = new CappedOutput();
      const stderr = new CappedOutput();
      let channel: ClientChannel | undefined;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const output = (): Pick<ExecResult, 'stdout' | 'stderr' | 'cut'> => {
        const cut = {
          ...(stdout.cutBytes > 0 ? { stdout: stdout.totalBytes } : {}),
          ...(stderr.cutBytes > 0 ? { stderr: stderr.totalBytes } : {}),
        };
        return { stdout: stdout.text(), stderr: stderr.text(), ...(Object.keys(cut).length > 0 ? { cut } : {}) };
      };
      const settle = (finish: () => void): void => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        stopWatching();
        finish();
      };
      const stopWatching = this.chain.onLoss(() => settle(() => reject(this.lostError())));
      if (opts.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          settle(() => {
            if (channel) stopRemote(channel);
            resolve({ ...output(), code: TIMEOUT_EXIT_CODE, timedOut: true });
          });
        }, opts.timeoutMs);
      }
      const finished = (code: number | null, signal: string | null): void => {
        settle(() => {
          if (code === null && signal === null && this.chain.lostReason !== undefined) {
            reject(this.lostError());
            return;
          }
          const status = code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 255);
          if (
            status === TIMEOUT_EXIT_CODE &&
            opts.timeoutMs !== undefined &&
            Date.now() - startedAt >= opts.timeoutMs
          ) {
            // The remote timeout(1) won the race against our own timer.
            resolve({ ...output(), code: status, timedOut: true });
            return;
          }
          resolve(explainBecomeFailure({ ...output(), code: status }, this.host, this.user, opts));
        });
      };
      const refused = (error: Error, attempt: number): void => {
        if (settled) return;
        if (this.chain.lostReason !== undefined) {
          settle(() => reject(this.lostError()));
          return;
        }
        // The connection is up but sshd refused the channel. It frees a finished session's slot a moment
        // after the client sees it close, so at the MaxSessions limit a retry shortly after succeeds.
        if (attempt < CHANNEL_OPEN_RETRIES) {
          setTimeout(() => run(attempt + 1), 5 * (attempt + 1));
          return;
        }
        settle(() =>
          resolve({ stdout: '', stderr: `cannot open a session on ${this.host}: ${error.message}\n`, code: 255 }),
        );
      };
      // ssh2's own exec, not node-ssh's execCommand: that one keeps every byte and joins it into one string.
      const run = (attempt: number): void => {
        try {
          raw.exec(command, (error, stream) => {
            if (error) {
              refused(error, attempt);
              return;
            }
            channel = stream;
            if (settled) {
              stopRemote(stream);
              return;
            }
            this.running.set(stream, { mark, opts });
            let code: number | null = null;
            let signal: string | null = null;
            stream.on('data', (chunk: Buffer) => stdout.push(chunk));
            stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
            stream.on('exit', (exitCode: number | null, exitSignal?: string) => {
              code = exitCode ?? null;
              signal = exitSignal ?? null;
            });
            stream.on('error', () => undefined);
            stream.on('close', () => {
              this.running.delete(stream);
              finished(code, signal);
            });
            // A command that exits without reading all its input is normal: the rest is dropped.
            stream.end(carried.input);
            endOnlyOnce(stream);
          });
        } catch (error) {
          refused(error instanceof Error ? error : new Error(String(error)), attempt);
        }
      };
      run(0);
    });
  }

  async close(): Promise<void> {
    if (!this.closedByUs) {
      this.closedByUs = true;
      await this.stopRunningCommands();
      this.chain.markLost('closed by cairn');
    }
    await this.chain.dispose();
  }

  /**
   * A connection closed while commands still run on it (the run was stopped by SIGTERM, SIGHUP or a second
   * Ctrl-C): closing alone leaves them running on the host (sshd does not end a command without a terminal
   * when its client goes), an atomic write with them, which could still rename its file into place after
   * cairn said it stopped. So each command's process group gets TERM, and the atomic write's trap turns it
   * into an exit that removes its temp file. Two ways, because neither reaches every host: the SSH "signal"
   * request (OpenSSH 7.9+, refused for root logins, whose session runs without privilege separation), and a
   * short script on a new channel that finds the command by the random mark in its argv and signals its
   * process group (through sudo when the command used it). Then wait for the channels to close, at most
   * STOP_GRACE_MS: a command that ignores TERM must not hold the controller's exit.
   */
  private async stopRunningCommands(): Promise<void> {
    if (this.running.size === 0 || this.chain.lostReason !== undefined) return;
    const running = [...this.running];
    const closed = running.map(([channel]) => new Promise<void>((resolve) => channel.once('close', () => resolve())));
    for (const [channel] of running) sendSignal(channel, 'TERM');
    const killers = running.map(([, { mark, opts }]) =>
      this.execInChannel(stopByMarkScript(mark), {
        become: opts.become,
        becomeUser: opts.becomeUser,
        timeoutMs: STOP_GRACE_MS,
      }).catch(() => undefined),
    );
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_GRACE_MS)));
    await Promise.race([Promise.all([...closed, ...killers]), giveUp]);
    clearTimeout(timer);
  }
}

/**
 * ssh2 ends a channel again when its reading side ends (Channel.destroy calls end()), and on a finished stream
 * Node answers a second end() by building an ERR_STREAM_ALREADY_FINISHED error, stack trace and all, that
 * nobody reads: one per command, 1.2 % of cairn's CPU at 1000 hosts (issue 17's profile). Once our side has
 * ended, a further end() is a no-op (its callback, if any, still runs).
 */
function endOnlyOnce(channel: ClientChannel): void {
  const end = channel.end.bind(channel) as (...args: unknown[]) => ClientChannel;
  const once = (...args: unknown[]): ClientChannel => {
    if (!channel.writableFinished) return end(...args);
    const callback = args.find((arg): arg is () => void => typeof arg === 'function');
    if (callback) process.nextTick(callback);
    return channel;
  };
  channel.end = once as ClientChannel['end'];
}

/** The start of every remote command's mark: `$0` of its shell, so a stop can find it (not a secret). */
const RUN_MARK = 'cairn-run-';

/**
 * The shell's arguments with the mark as `$0` (`sh -c LOADER MARK`), where `ps` and pgrep see it. A script
 * without input is read whole from stdin, as `sh -s` would, then run.
 */
function markedShellArgs(shellArgs: string[], mark: string): string[] {
  if (shellArgs[0] === '-c') return ['-c', shellArgs[1]!, mark];
  return ['-c', 'cairn_script=$(cat) && eval "$cairn_script"', mark];
}

/** Signal the process group of the command that carries `mark` (its sh, and sudo's when it became). */
function stopByMarkScript(mark: string): string {
  return [
    `for p in $(pgrep -f -- ${quoteMark(mark)}); do`,
    `  g=$(ps -o pgid= -p "$p" | tr -d ' ')`,
    // dash's kill reads `--` as a pid: the group is a number (checked), so no option can hide in it.
    `  if [ -n "$g" ] && [ "$g" -gt 1 ]; then kill -TERM "-$g"; fi`,
    'done 2>/dev/null; true',
  ].join('\n');
}

/** A mark is RUN_MARK and hex: safe in single quotes, and a regex matching only itself. */
function quoteMark(mark: string): string {
  if (!/^cairn-run-[0-9a-f]+$/.test(mark)) throw new Error(`bad run mark ${mark}`);
  return `'${mark}'`;
}

/** How long close() waits for commands it sent TERM to. */
const STOP_GRACE_MS = 2_000;

/**
 * Closing a channel does not stop its command: sshd leaves it running, and OpenSSH before 9.x ignores the
 * "signal" request. So a timed exec also runs under timeout(1) on the host, a little after our own deadline:
 * it signals the whole process group (TERM, then KILL a second later), so the script's children die too.
 */
const REMOTE_TIMEOUT_GRACE_MS = 200;

function withRemoteTimeout(commandArgv: string[], timeoutMs: number | undefined): string[] {
  if (timeoutMs === undefined) return commandArgv;
  const shellAt = commandArgv.lastIndexOf('/bin/sh');
  const seconds = ((timeoutMs + REMOTE_TIMEOUT_GRACE_MS) / 1000).toFixed(3);
  return [...commandArgv.slice(0, shellAt), 'timeout', '-k', '1', seconds, ...commandArgv.slice(shellAt)];
}

/** Ask sshd to kill the command (the "signal" request) and close the channel. */
function stopRemote(channel: ClientChannel): void {
  sendSignal(channel, 'KILL');
  channel.close();
}

/** The part of ssh2's channel that sends a request on it (ssh2 1.x; not in its typings). */
interface ChannelInternals {
  outgoing?: { id?: unknown; state?: unknown };
  _client?: { _protocol?: { signal?: (channelId: number, signal: string) => void } };
}

/**
 * Send a "signal" channel request: sshd (OpenSSH 7.9+) sends it to the command's process group. ssh2's own
 * `channel.signal()` sends nothing once our side of the channel has ended, and every exec ends it right away
 * (the script and its input are all written, then EOF), so the request goes through the channel's protocol
 * the way channel.signal() itself does; if ssh2's internals change, fall back to its public call.
 */
function sendSignal(channel: ClientChannel, signal: 'TERM' | 'KILL'): void {
  try {
    const internals = channel as unknown as ChannelInternals;
    const protocol = internals._client?._protocol;
    const id = internals.outgoing?.id;
    const state = internals.outgoing?.state;
    // 'eof': our side has ended (all input sent); the channel is open until either side closes it.
    if (protocol?.signal && typeof id === 'number' && (state === 'open' || state === 'eof')) {
      protocol.signal(id, signal);
    } else {
      channel.signal(signal);
    }
  } catch {
    // The channel is closing already.
  }
}
