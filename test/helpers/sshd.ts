/**
 * Test harness: real OpenSSH sshd processes on loopback addresses, one per test host.
 *
 * Each host gets its own sshd on its own 127.0.0.N address and free port, its own ed25519 host key, and a
 * shared client key authorised for root. Every sshd runs in a private mount namespace where root's ~/.bashrc
 * is replaced by an empty file: on this machine it runs `pyenv init`, which would add ~85 ms to every remote
 * command and make tests measure pyenv instead of cairn. Nothing outside that namespace changes.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  closeSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import type { ConnectionSpec } from '../../runner/core/transport/types.js';

export interface TestSshHost {
  name: string;
  address: string;
  port: number;
  user: string;
  /** This host's own temp folder for test files. */
  dir: string;
  pid: number;
  /** SIGTERM by pid, wait. */
  stop(): Promise<void>;
  /** SIGKILL sshd and its live sessions: simulates a dead host. */
  kill(): void;
  /** SIGKILL only the per-connection sshd children, cutting live connections. */
  killSessions(): void;
  /**
   * Start this host's sshd again after kill()/stop(), same address, port and host key (a "reboot" for the
   * reboot tests); `pid` then names the new sshd.
   */
  restart(): Promise<void>;
}

export interface TestSshLab {
  hosts: TestSshHost[];
  dir: string;
  knownHostsPath: string;
  clientKeyPath: string;
  /**
   * Writes an Ansible-shaped inventory YAML for these hosts (ansible_host, ansible_port, ansible_user,
   * ansible_ssh_private_key_file, cairn_known_hosts) with the given groups {group: [hostnames]} and returns
   * its path.
   */
  writeInventory(groups?: Record<string, string[]>, extraHostVars?: Record<string, Record<string, unknown>>): string;
  spec(hostName: string, overrides?: Partial<ConnectionSpec>): ConnectionSpec;
  stop(): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const UNSHARE = '/usr/bin/unshare';
const SETPRIV = '/usr/bin/setpriv';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';
const IP = '/usr/sbin/ip';
/** How long a freshly started sshd may take to answer with its banner. */
const READY_TIMEOUT_MS = 10_000;

/** The Debian package of each tool the harness runs, so a missing one is named by what to install. */
const PACKAGE_OF: Record<string, string> = {
  [SSHD]: 'openssh-server',
  [SSH_KEYGEN]: 'openssh-client',
  [UNSHARE]: 'util-linux',
  [SETPRIV]: 'util-linux',
};

export function sshdAvailable(): { ok: true } | { ok: false; reason: string } {
  for (const tool of [SSHD, SSH_KEYGEN, UNSHARE, SETPRIV]) {
    if (!existsSync(tool))
      return {
        ok: false,
        reason: `${tool} is not installed: apt-get install -y ${PACKAGE_OF[tool]} (scripts/test-prereqs.sh does it)`,
      };
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return { ok: false, reason: 'the sshd harness needs root (root login, mount namespaces)' };
  }
  return { ok: true };
}

/** For a test file that needs real sshd: fail (never skip) when it cannot run, saying what to install. */
export function requireSshd(): void {
  const available = sshdAvailable();
  if (!available.ok) throw new Error(`these tests need real sshd: ${available.reason}`);
}

// ---- process bookkeeping: every sshd we start is killed on exit, by pid ----

const liveSshdPids = new Set<number>();
const liveLabDirs = new Set<string>();
let exitHookInstalled = false;

function killEverythingStarted(): void {
  for (const pid of liveSshdPids) {
    for (const child of descendantPids(pid)) signalPid(child, 'SIGKILL');
    signalPid(pid, 'SIGKILL');
  }
  liveSshdPids.clear();
  for (const dir of liveLabDirs) rmSync(dir, { recursive: true, force: true });
  liveLabDirs.clear();
}

/**
 * Leftover sshds are killed when this process ends: on 'exit', and on SIGTERM (how vitest ends its fork
 * workers, which skips 'exit'). A SIGKILLed test process cannot clean up: for that, each sshd is started with
 * a parent-death signal (see startOneSshd).
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killEverythingStarted);
  const onTerminate = (signal: NodeJS.Signals): void => {
    killEverythingStarted();
    // With no other listener left, let the signal do what it would have done without us.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.once('SIGTERM', onTerminate);
  process.once('SIGINT', onTerminate);
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

/** Every process below `rootPid` (children first-level, then theirs), read from /proc. */
export function descendantPids(rootPid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may contain spaces; fields after it are fixed.
      const afterName = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(afterName[1]));
    } catch {
      // The process ended while we were reading.
    }
  }
  const found: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const [pid, ppid] of parentOf) {
      if (ppid === parent && !found.includes(pid)) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

/** The state letter of /proc/PID/stat (R, S, T, Z, ...), or undefined when the process is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/**
 * SIGKILL `rootPid` and every process below it with no survivor: a listener killed while it forks a new
 * connection leaves that child alive (reparented, out of reach of a descendant list read before the kill).
 * So the tree is frozen first: SIGSTOP each process, wait until /proc says it is stopped (a stopped process
 * cannot fork), list descendants again, until no new one appears; then SIGKILL them all.
 */
function killTree(rootPid: number): void {
  const frozen = new Set<number>();
  for (let round = 0; round < 50; round++) {
    const tree = [rootPid, ...descendantPids(rootPid)].filter((pid) => !frozen.has(pid));
    if (tree.length === 0) break;
    for (const pid of tree) {
      signalPid(pid, 'SIGSTOP');
      frozen.add(pid);
    }
    for (const pid of tree) {
      for (let waited = 0; waited < 1000; waited++) {
        const state = processState(pid);
        if (state === undefined || state === 'T' || state === 't' || state === 'Z' || state === 'X') break;
        sleepSync(1);
      }
    }
  }
  for (const pid of frozen) signalPid(pid, 'SIGKILL');
}

// ---- addresses and ports ----

let hostCounter = 0;

/** 127.0.0.N with N spread by vitest worker so parallel test files use different addresses. */
function nextLoopbackAddress(): string {
  const poolId = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 0) || 0;
  const n = 2 + ((poolId * 50 + hostCounter++) % 250);
  return `127.0.0.${n}`;
}

/** A port free on `address` now (the bench's sshds share one, the test hosts take one each). */
export function freePort(address: string): Promise<number> {
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

/** Resolves once the port answers with an SSH identification banner. */
export function probeBanner(address: string, port: number): Promise<boolean> {
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function runTool(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  }
  return result.stdout;
}

export function generateKey(path: string, comment: string): void {
  runTool(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
}

/**
 * sshd_config takes the first value it sees for most keywords, and Match blocks must come last: the caller's
 * plain settings go before our defaults (so they win) and its Match blocks after them.
 */
function composeConfig(defaults: string[], extra: string): string {
  const extraLines = extra.split('\n');
  const matchAt = extraLines.findIndex((line) => /^\s*Match\s/i.test(line));
  const plain = matchAt === -1 ? extraLines : extraLines.slice(0, matchAt);
  const matchBlocks = matchAt === -1 ? [] : extraLines.slice(matchAt);
  return [...plain, ...defaults, ...matchBlocks].join('\n') + '\n';
}

/**
 * The settings every sshd cairn's tests and bench start shares: key logins only, no PAM, no banners, quiet
 * logs, sftp. `maxStartups` is how many handshakes may wait at once (the bench opens hundreds).
 */
export function sshdKeyOnlyConfig(opts: { maxStartups: string }): string[] {
  return [
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PrintMotd no',
    'PrintLastLog no',
    // Engines may run several commands at once on one connection; OpenSSH's default is 10 channels.
    'MaxSessions 64',
    `MaxStartups ${opts.maxStartups}`,
    'LogLevel ERROR',
    `Subsystem sftp ${SFTP_SERVER}`,
  ];
}

interface StartedSshd {
  child: ChildProcess;
  port: number;
  exited: Promise<void>;
}

async function startOneSshd(opts: {
  name: string;
  address: string;
  configDir: string;
  hostKeyPath: string;
  authorizedKeysPath: string;
  emptyRcPath: string;
  extraConfig: string;
  /** Run sshd inside this (existing) network namespace, on port 22 of `address` there. */
  netns?: string;
  /** Listen on this port (a restart); no other port is tried. */
  port?: number;
}): Promise<StartedSshd> {
  const logPath = join(opts.configDir, 'sshd.log');
  let lastFailure = '';
  // A port found free can be taken by someone else before sshd binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    // A network namespace of its own has every port free; its address is not this namespace's to probe.
    const port = opts.port ?? (opts.netns !== undefined ? 22 : await freePort(opts.address));
    const configPath = join(opts.configDir, 'sshd_config');
    const defaults = [
      `ListenAddress ${opts.address}:${port}`,
      `HostKey ${opts.hostKeyPath}`,
      `PidFile ${join(opts.configDir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${opts.authorizedKeysPath}`,
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'AllowTcpForwarding yes',
      ...sshdKeyOnlyConfig({ maxStartups: '64:30:128' }),
    ];
    writeFileSync(configPath, composeConfig(defaults, opts.extraConfig));
    const logFd = openSync(logPath, 'a');
    // setpriv, unshare and sh each exec the next, so the pid we hold is sshd's own. The parent-death signal
    // survives those execs: if this test process dies, even by SIGKILL, the kernel kills the listener.
    // The bind mount over ~/.bashrc lives only in sshd's private mount namespace.
    const bashrc = join(homedir(), '.bashrc');
    const script =
      `if [ -e '${bashrc}' ]; then mount --bind '${opts.emptyRcPath}' '${bashrc}' || exit 97; fi; ` +
      `exec ${SSHD} -D -e -f '${configPath}'`;
    // `ip netns exec` execs its command (no fork), so the pid stays sshd's.
    const inNetns = opts.netns !== undefined ? [IP, 'netns', 'exec', opts.netns] : [];
    const child = spawn(
      SETPRIV,
      [
        '--pdeathsig',
        'SIGKILL',
        '--',
        ...inNetns,
        UNSHARE,
        '--mount',
        '--propagation',
        'private',
        '/bin/sh',
        '-c',
        script,
      ],
      { stdio: ['ignore', logFd, logFd] },
    );
    closeSync(logFd);
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        exitCode = code ?? (signal ? -1 : null);
        resolve();
      });
    });
    if (child.pid !== undefined) liveSshdPids.add(child.pid);
    void exited.then(() => {
      if (child.pid !== undefined) liveSshdPids.delete(child.pid);
    });

    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (exitCode === undefined && Date.now() < deadline) {
      if (await probeBanner(opts.address, port)) return { child, port, exited };
      await sleep(15);
    }
    if (exitCode === undefined) {
      signalPid(child.pid ?? -1, 'SIGKILL');
      await exited;
    }
    lastFailure = readFileSync(logPath, 'utf8').trim().split('\n').slice(-5).join('\n');
    if (!/Address already in use|Cannot bind/i.test(lastFailure) || opts.port !== undefined) break;
  }
  throw new Error(`sshd for test host ${opts.name} on ${opts.address} did not start: ${lastFailure || 'no output'}`);
}

export async function startSshHosts(
  count: number,
  opts: {
    names?: string[];
    sshdExtraConfig?: (i: number) => string;
    /**
     * Host i's sshd runs in this existing network namespace, listening on `address` port 22 there (the
     * caller made the namespace and its link to this one, e.g. a veth pair, and removes them).
     */
    netns?: (i: number) => { name: string; address: string } | undefined;
  } = {},
): Promise<TestSshLab> {
  const available = sshdAvailable();
  if (!available.ok) throw new Error(`cannot start test sshd: ${available.reason}`);
  installExitHook();
  // sshd's privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const labDir = mkdtempSync(join(tmpdir(), 'cairn-sshd-'));
  liveLabDirs.add(labDir);
  const clientKeyPath = join(labDir, 'client_ed25519');
  generateKey(clientKeyPath, 'cairn-test-client');
  const authorizedKeysPath = join(labDir, 'authorized_keys');
  writeFileSync(authorizedKeysPath, readFileSync(`${clientKeyPath}.pub`), { mode: 0o600 });
  const emptyRcPath = join(labDir, 'empty-bashrc');
  writeFileSync(emptyRcPath, '');
  const knownHostsPath = join(labDir, 'known_hosts');

  const names = Array.from({ length: count }, (_, i) => opts.names?.[i] ?? `h${i + 1}`);
  const hosts: TestSshHost[] = [];
  const knownHostLines: string[] = [];
  try {
    // Started one after another: parallel starts on 2 cores gain little and make failures harder to read.
    for (let i = 0; i < count; i++) {
      const name = names[i] as string;
      const configDir = join(labDir, 'sshd', name);
      const hostDir = join(labDir, 'hosts', name);
      mkdirSync(configDir, { recursive: true });
      mkdirSync(hostDir, { recursive: true });
      const hostKeyPath = join(configDir, 'ssh_host_ed25519_key');
      generateKey(hostKeyPath, `cairn-test-host-${name}`);
      const inNamespace = opts.netns?.(i);
      const address = inNamespace?.address ?? nextLoopbackAddress();
      const sshdOpts = {
        ...(inNamespace !== undefined ? { netns: inNamespace.name } : {}),
        name,
        address,
        configDir,
        hostKeyPath,
        authorizedKeysPath,
        emptyRcPath,
        extraConfig: opts.sshdExtraConfig?.(i) ?? '',
      };
      const started = await startOneSshd(sshdOpts);
      const [keyType, keyBase64] = readFileSync(`${hostKeyPath}.pub`, 'utf8').trim().split(/\s+/);
      const hostPattern = started.port === 22 ? address : `[${address}]:${started.port}`;
      knownHostLines.push(`${hostPattern} ${keyType} ${keyBase64}`);
      hosts.push(makeHost(name, address, started, hostDir, () => startOneSshd({ ...sshdOpts, port: started.port })));
    }
  } catch (error) {
    await Promise.all(hosts.map((host) => host.stop()));
    rmSync(labDir, { recursive: true, force: true });
    liveLabDirs.delete(labDir);
    throw error;
  }
  writeFileSync(knownHostsPath, knownHostLines.join('\n') + '\n', { mode: 0o600 });

  let inventoryCount = 0;
  const lab: TestSshLab = {
    hosts,
    dir: labDir,
    knownHostsPath,
    clientKeyPath,
    writeInventory(groups = {}, extraHostVars = {}) {
      const hostEntries: Record<string, Record<string, unknown>> = {};
      for (const host of hosts) {
        hostEntries[host.name] = {
          ansible_host: host.address,
          ansible_port: host.port,
          ansible_user: host.user,
          ansible_ssh_private_key_file: clientKeyPath,
          cairn_known_hosts: knownHostsPath,
          ...(extraHostVars[host.name] ?? {}),
        };
      }
      const children: Record<string, { hosts: Record<string, null> }> = {};
      for (const [group, members] of Object.entries(groups)) {
        children[group] = { hosts: Object.fromEntries(members.map((member) => [member, null])) };
      }
      const document: Record<string, unknown> = {
        all: { hosts: hostEntries, ...(Object.keys(children).length > 0 ? { children } : {}) },
      };
      const path = join(labDir, `inventory-${++inventoryCount}.yml`);
      writeFileSync(path, yamlStringify(document, { nullStr: '' }));
      return path;
    },
    spec(hostName, overrides = {}) {
      const host = hosts.find((candidate) => candidate.name === hostName);
      if (!host) throw new Error(`no test host named ${hostName} (have ${hosts.map((h) => h.name).join(', ')})`);
      return {
        name: host.name,
        connection: 'ssh',
        address: host.address,
        port: host.port,
        user: host.user,
        privateKeyPath: clientKeyPath,
        jump: [],
        connectTimeoutMs: 5000,
        knownHostsPath,
        acceptNewHostKeys: false,
        become: false,
        becomeUser: 'root',
        ...overrides,
      };
    },
    async stop() {
      await Promise.all(hosts.map((host) => host.stop()));
      rmSync(labDir, { recursive: true, force: true });
      liveLabDirs.delete(labDir);
    },
  };
  return lab;
}

function makeHost(
  name: string,
  address: string,
  first: StartedSshd,
  hostDir: string,
  relaunch: () => Promise<StartedSshd>,
): TestSshHost {
  let started = first;
  let running = true;
  const watch = (s: StartedSshd): void => {
    void s.exited.then(() => {
      if (started === s) running = false;
    });
  };
  watch(started);
  const pidNow = (): number => started.child.pid as number;
  const killSessions = (): void => {
    if (!running) return;
    // Per-connection sshd processes are children of the listener; their own children are the sessions.
    for (const child of descendantPids(pidNow())) signalPid(child, 'SIGKILL');
  };
  return {
    name,
    address,
    port: first.port,
    user: 'root',
    dir: hostDir,
    get pid() {
      return pidNow();
    },
    async stop() {
      if (!running) return;
      killSessions();
      const pid = pidNow();
      signalPid(pid, 'SIGTERM');
      const forceKill = setTimeout(() => signalPid(pid, 'SIGKILL'), 3000);
      await started.exited;
      clearTimeout(forceKill);
    },
    kill() {
      if (!running) return;
      // A dead host loses its live connections too, including one the listener is forking right now.
      killTree(pidNow());
    },
    killSessions,
    async restart() {
      const ended = await Promise.race([started.exited.then(() => true), sleep(5000).then(() => false)]);
      if (!ended) throw new Error(`sshd of ${name} is still running; kill() or stop() it first`);
      started = await relaunch();
      running = true;
      watch(started);
    },
  };
}
