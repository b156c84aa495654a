/**
 * A REAL haproxy on loopback for integration tests: the haproxy role's own template rendered with test
 * values, checked by `haproxy -c`, run master-worker in the foreground by this process and stopped by PID.
 * One place for what traffic, weight-agent and haproxy-tls tests each did by hand.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTemplater } from '../../runner/core/template/index.js';
import { builtinRolesDir, sharedTemplatesDir } from '../../runner/core/util/paths.js';
import { parseServersState } from '../../runner/features/drills/haproxy-api.js';

/** Fails the file naming the package (never skips it): haproxy and socat, plus whatever else a file needs. */
export function requireHaproxyTools(extra: ReadonlyArray<readonly [tool: string, pkg: string]> = []): void {
  for (const [tool, pkg] of [['/usr/sbin/haproxy', 'haproxy'], ['/usr/bin/socat', 'socat'], ...extra] as const)
    if (!existsSync(tool))
      throw new Error(`${tool} is missing: apt-get install -y ${pkg} (scripts/test-prereqs.sh does it)`);
}

/** What every loopback test haproxy shares: no TLS, no own-address bind, fast health checks (rise 1). */
const LOOPBACK_DEFAULTS = {
  inventory_hostname: 'lb1',
  haproxy_bind_own_address: false,
  haproxy_maxconn: 1024,
  haproxy_tls: false,
  haproxy_global_extra: [],
  haproxy_defaults_extra: [],
  haproxy_retries: 2,
  haproxy_timeout_connect: '2s',
  haproxy_timeout_client: '30s',
  haproxy_timeout_server: '30s',
  haproxy_timeout_http_request: '10s',
  haproxy_timeout_queue: '30s',
  haproxy_timeout_check: '2s',
  haproxy_balance: 'roundrobin',
  haproxy_health_path: '/healthz',
  haproxy_check_inter_ms: 500,
  haproxy_check_fall: 2,
  haproxy_check_rise: 1,
  haproxy_server_weight: 100,
  haproxy_weight_agent: false,
};

/** What differs between tests: where haproxy listens and what it sends to; any default above may be overridden. */
export interface RoleHaproxyVars extends Partial<Record<keyof typeof LOOPBACK_DEFAULTS, unknown>> {
  haproxy_vip: string;
  haproxy_stats_socket: string;
  haproxy_stats_bind_address: string;
  haproxy_stats_port: number;
  haproxy_frontends: Array<{ name: string; port: number; backend: string }>;
  /** Each backend names its servers, or inventory hosts (their service_address, else ansible_host, from hostvars). */
  haproxy_backends: Array<
    { name: string; port: number } & ({ servers: Array<{ name: string; address: string }> } | { hosts: string[] })
  >;
  [name: string]: unknown;
}

/** The haproxy role's template (roles/haproxy/templates/haproxy.cfg.hbs) rendered with the loopback defaults + `vars`. */
export function renderRoleHaproxyCfg(vars: RoleHaproxyVars): string {
  const templater = createTemplater({ partialsDirs: [sharedTemplatesDir()] });
  return templater.renderFile(join(builtinRolesDir(), 'haproxy', 'templates', 'haproxy.cfg.hbs'), {
    ...LOOPBACK_DEFAULTS,
    ...vars,
  });
}

export interface TestHaproxy {
  readonly child: ChildProcess;
  /** haproxy's stderr so far (for assertion messages). */
  readonly log: string;
}

/**
 * Writes `config` to `configPath`, has `haproxy -c` check it, and starts haproxy master-worker in the
 * foreground (with the master CLI on `masterSocket` when given). Resolves once `readySocket` exists (the
 * runtime API or master socket haproxy creates when it is up); throws with haproxy's output if it does not.
 */
export async function startHaproxy(cfg: {
  config: string;
  configPath: string;
  readySocket: string;
  masterSocket?: string;
}): Promise<TestHaproxy> {
  writeFileSync(cfg.configPath, cfg.config);
  const checked = spawnSync('haproxy', ['-c', '-q', '-f', cfg.configPath]);
  if (checked.status !== 0) throw new Error(`haproxy -c refused the config: ${checked.stderr.toString()}`);
  const master = cfg.masterSocket === undefined ? [] : ['-S', cfg.masterSocket];
  const child = spawn('haproxy', ['-W', '-db', ...master, '-f', cfg.configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 50 && !existsSync(cfg.readySocket); i++) await new Promise((r) => setTimeout(r, 100));
  if (!existsSync(cfg.readySocket)) {
    await stopChild(child);
    throw new Error(`haproxy did not start: ${log}`);
  }
  return {
    child,
    get log() {
      return log;
    },
  };
}

/**
 * One command to haproxy's runtime API on `socket`, through socat as on a real host; its answer. Tests ask
 * haproxy directly (not through cairn) for what haproxy itself reports.
 */
export function haproxyAdmin(socket: string, command: string): string {
  const res = spawnSync('socat', ['-t', '2', 'stdio', `UNIX-CONNECT:${socket}`], { input: `${command}\n` });
  return res.stdout.toString();
}

/** server -> the weight haproxy applies now, for each server of `backend` (`show servers state`). */
export function serverWeights(socket: string, backend: string): Record<string, number> {
  const state = parseServersState(haproxyAdmin(socket, `show servers state ${backend}`));
  return Object.fromEntries(state.map((s) => [s.server, s.weight]));
}

/** Stops the haproxy `startHaproxy` started (master and workers), by its PID; nothing if it is not running. */
export function stopHaproxy(haproxy: TestHaproxy | undefined): Promise<void> {
  return stopChild(haproxy?.child);
}

/** Stops a child this test started, by its PID (SIGTERM), and waits for it to exit; nothing if it already did. */
export async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  process.kill(child.pid, 'SIGTERM');
  await exited;
}
