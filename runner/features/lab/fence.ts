/**
 * The lab's fence device: what a BMC (IPMI, Redfish) is for a real server, for the lab's container hosts.
 *
 * A cluster that lost a node must prove it dead before it starts that node's guests elsewhere, or a guest's
 * disk is written by two machines. On real servers the fence agent asks the node's BMC to cut its power
 * (fence_ipmilan, fence_redfish). In the lab, the power of a container is this machine's to cut, so `cairn lab
 * up` runs a small HTTP endpoint on the bridge address (10.77.0.1:7410) that the hosts' fence agent
 * (roles/ha_cluster/files/fence_cairn_lab) calls: `status`, `off` (a power cut, the same as `cairn lab kill`),
 * `on` (`cairn lab start`), `reboot` (off, then on), `list`.
 *
 * Authentication: each host that may fence gets its own token, HMAC-SHA256(lab secret, host name), written into
 * the host at boot as /etc/cairn-lab/fence.token (0600). The agent reads it from that file and sends it in a
 * header, so it is in no argv, no cluster configuration and no log. The secret stays in LAB_DIR (0600).
 * Only hosts of group pve may call, and only hosts of group pve can be fenced.
 *
 * Fault injection: `cairn lab fence-block on` makes every request fail (503), as an unreachable BMC would; the
 * test that a guest is NOT started elsewhere while fencing fails uses it. Every request is logged to
 * LOG_DIR/fence.log (time, caller, action, target, outcome): the controller-side evidence of a fence.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { packageRoot } from '../../core/util/paths.js';
import { pollUntil } from '../../core/util/poll.js';
import { isAlive, processInfo, type ProcessRef } from './proc.js';
import { LAB_DIR, LOG_DIR } from './paths.js';

export const FENCE_PORT = 7410;
/** Inside a host: the token its fence agent sends. */
export const FENCE_TOKEN_PATH = 'etc/cairn-lab/fence.token';
/** Hosts of this group may fence and be fenced. */
export const FENCE_GROUP = 'pve';

const SECRET_FILE = join(LAB_DIR, 'fence.secret');
const PID_FILE = join(LAB_DIR, 'fence.pid');
const BLOCK_FILE = join(LAB_DIR, 'fence.blocked');
export const FENCE_LOG = join(LOG_DIR, 'fence.log');

export type FenceAction = 'status' | 'off' | 'on' | 'reboot' | 'list';
const ACTIONS: readonly FenceAction[] = ['status', 'off', 'on', 'reboot', 'list'];

/** The lab's fence secret, made once (0600). */
export function fenceSecret(file = SECRET_FILE): Buffer {
  if (!existsSync(file)) {
    mkdirSync(LAB_DIR, { recursive: true });
    // 'wx': created exclusively with its mode, never overwriting a secret another `up` just made.
    try {
      writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
}

export function fenceToken(secret: Buffer, host: string): string {
  return createHmac('sha256', secret).update(`cairn-lab-fence:${host}`).digest('hex');
}

/** Write a host's token into its root (at boot): a fresh temp file made with mode 0600 first, then renamed. */
export function writeFenceToken(root: string, host: string): void {
  const path = join(root, FENCE_TOKEN_PATH);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${fenceToken(fenceSecret(), host)}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, path);
}

/** Which allowed host a token belongs to, or undefined (compared in constant time). */
export function tokenOwner(secret: Buffer, token: string, hosts: readonly string[]): string | undefined {
  const given = Buffer.from(token, 'utf8');
  for (const host of hosts) {
    const want = Buffer.from(fenceToken(secret, host), 'utf8');
    if (want.length === given.length && timingSafeEqual(want, given)) return host;
  }
  return undefined;
}

export interface FenceRequest {
  action: FenceAction;
  target?: string;
}

/** Validate a request body (JSON from a host: hostile input). */
export function parseFenceRequest(body: string, hosts: readonly string[]): FenceRequest | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return 'the body is not JSON';
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'the body is not an object';
  const { action, target } = parsed as Record<string, unknown>;
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action))
    return `action must be one of ${ACTIONS.join(', ')}`;
  if (action === 'list') return { action };
  if (typeof target !== 'string' || !hosts.includes(target))
    return `target must be a lab host of group ${FENCE_GROUP} (${hosts.join(', ')})`;
  return { action: action as FenceAction, target };
}

export function fenceBlocked(): boolean {
  return existsSync(BLOCK_FILE);
}

/** `cairn lab fence-block on|off`: make the fence device fail every request (as an unreachable BMC), or not. */
export function setFenceBlocked(blocked: boolean): void {
  if (blocked) {
    mkdirSync(LAB_DIR, { recursive: true });
    writeFileSync(BLOCK_FILE, `${new Date().toISOString()}\n`, { mode: 0o600 });
  } else rmSync(BLOCK_FILE, { force: true });
}

export interface FenceOperations {
  /** Hosts of group pve in the running lab. */
  hosts(): string[];
  running(host: string): boolean;
  powerOff(host: string): Promise<void>;
  powerOn(host: string): Promise<void>;
}

function logLine(entry: Record<string, unknown>): void {
  mkdirSync(LOG_DIR, { recursive: true });
  appendFileSync(FENCE_LOG, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n', { mode: 0o600 });
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
}

async function readBody(req: IncomingMessage, limit = 4096): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Serve the fence endpoint until the process ends (`cairn lab fence-serve`, started by `lab up`). */
export function serveFence(address: string, ops: FenceOperations, port = FENCE_PORT): Promise<void> {
  const secret = fenceSecret();
  // One power operation at a time: two cluster nodes may race to fence the same dead peer.
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    void (async () => {
      const started = Date.now();
      const hosts = ops.hosts();
      const caller = tokenOwner(secret, String(req.headers['x-cairn-fence-token'] ?? ''), hosts);
      if (req.method !== 'POST' || req.url !== '/fence') return reply(res, 404, { error: 'POST /fence only' });
      if (!caller) {
        logLine({ caller: req.socket.remoteAddress, outcome: 'refused: no valid token' });
        return reply(res, 403, { error: 'no valid fence token' });
      }
      const request = parseFenceRequest(await readBody(req), hosts);
      if (typeof request === 'string') return reply(res, 400, { error: request });
      if (fenceBlocked()) {
        logLine({ caller, ...request, outcome: 'failed: fencing blocked (cairn lab fence-block on)' });
        return reply(res, 503, { error: 'fence device unreachable (lab fault injection: cairn lab fence-block on)' });
      }
      if (request.action === 'list') return reply(res, 200, { hosts });
      const target = request.target!;
      const run = async (): Promise<Record<string, unknown>> => {
        if (request.action === 'off' || request.action === 'reboot') await ops.powerOff(target);
        if (request.action === 'on' || request.action === 'reboot') await ops.powerOn(target);
        return { target, power: ops.running(target) ? 'on' : 'off' };
      };
      const done = queue.then(run);
      queue = done.catch(() => undefined);
      try {
        const result = await done;
        logLine({ caller, ...request, outcome: `ok: power ${String(result.power)}`, ms: Date.now() - started });
        reply(res, 200, result);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        logLine({ caller, ...request, outcome: `failed: ${msg}`, ms: Date.now() - started });
        reply(res, 500, { error: msg });
      }
    })().catch((err: unknown) => reply(res, 400, { error: err instanceof Error ? err.message : String(err) }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      writeFileSync(PID_FILE, `${process.pid}\n`, { mode: 0o600 });
      logLine({ outcome: `listening on ${address}:${port}` });
    });
    server.once('close', () => resolve());
  });
}

function recordedServer(): ProcessRef | undefined {
  try {
    const pid = Number(readFileSync(PID_FILE, 'utf8').trim());
    const info = Number.isInteger(pid) && pid > 0 ? processInfo(pid) : undefined;
    // Only our own server: a recycled pid running something else is not ours to signal.
    if (!info) return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes('fence-serve') ? info : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The CLI the server runs as: the package's bin/cairn.js, found from the package root (packageRoot() climbs to
 * it from dist/runner/, dist/bundle/ or, when the lab tests bring the lab up in-process, runner/ itself); it runs
 * the bundled or the compiled CLI. A path relative to this module (once ../../cli.js) names a different file from
 * each of those places: from source it did not exist and no fence ever succeeded; from a bundle chunk it points
 * outside the package.
 */
export function fenceServerCli(): string {
  const cli = join(packageRoot(), 'bin', 'cairn.js');
  if (!existsSync(cli)) throw new Error(`the lab fence endpoint cannot start: no cairn CLI at ${cli}`);
  return cli;
}

/** How long a starting fence endpoint may take to listen (measured: under 1 s; a loaded machine, a few). */
const FENCE_START_MS = 30_000;

/**
 * Start the fence endpoint in the background unless it runs (lab up), and wait until it listens: a lab whose
 * cluster cannot be fenced is not up. Its output goes to LOG_DIR/fence-serve.out.
 */
export async function ensureFenceServer(): Promise<number> {
  const running = recordedServer();
  if (running) return running.pid;
  mkdirSync(LOG_DIR, { recursive: true });
  const outPath = join(LOG_DIR, 'fence-serve.out');
  const out = openSync(outPath, 'a', 0o600);
  const child = spawn(process.execPath, [fenceServerCli(), 'lab', 'fence-serve'], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited: string | undefined;
  // A server that exited will never listen: its exit ends the wait.
  const gone = new AbortController();
  child.once('exit', (code, signal) => {
    exited = signal ?? `exit ${code}`;
    gone.abort();
  });
  child.unref();
  const listening = await pollUntil(
    async () => {
      if (exited !== undefined) return undefined;
      const server = recordedServer();
      return server && server.pid === child.pid ? server.pid : undefined;
    },
    { timeoutMs: FENCE_START_MS, everyMs: 200, signal: gone.signal },
  );
  if (listening) return listening.value;
  const tail = readFileSync(outPath, 'utf8').trim().split('\n').slice(-5).join('\n');
  if (exited === undefined && child.pid) process.kill(child.pid, 'SIGTERM');
  throw new Error(
    `the lab fence endpoint did not start (${exited ?? `not listening after ${FENCE_START_MS / 1000} s`}); ` +
      `${outPath} ends with:\n${tail}`,
  );
}

/** End the fence endpoint (lab down), by its recorded pid only. */
export function stopFenceServer(): number | undefined {
  const running = recordedServer();
  if (running && isAlive(running)) process.kill(running.pid, 'SIGTERM');
  rmSync(PID_FILE, { force: true });
  return running?.pid;
}
