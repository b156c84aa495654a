/**
 * Traffic control at the front door (issue 19 item 4) against a REAL haproxy on loopback: the haproxy
 * role's own template (rendered here, checked by `haproxy -c`) runs in a real haproxy in front of three real
 * HTTP backends in this process; `cairn drain` and `cairn canary` run through the CLI against a load balancer
 * reached over a real sshd (127.0.0.x), speaking to haproxy's admin socket through socat as on a real host.
 * Proven: drain takes a server to DRAIN and 0 sessions with slow requests in flight and 0 failed requests
 * under load, --check changes nothing, --undo makes it READY; a canary moves traffic in 10 steps to 100 %
 * with 0 failed requests; a backend that turns to 500s, or slow, during the canary fails its gate and the
 * weights haproxy reports are the starting weights again.
 */
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseServersState, parseServerStats } from '../../runner/features/drills/haproxy-api.js';
import { ProbeLoop } from '../../runner/features/drills/probe.js';
import type { RunEvent } from '../../runner/core/engine/events.js';
import { jsonEvents, runCairn } from '../helpers/cli.js';
import {
  haproxyAdmin,
  renderRoleHaproxyCfg,
  requireHaproxyTools,
  serverWeights,
  startHaproxy,
  stopHaproxy,
  type TestHaproxy,
} from '../helpers/haproxy.js';
import { freePort, requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();
requireHaproxyTools();

/** Loopback addresses of this file only. */
const VIP = '127.0.23.10';
const BACKENDS = { web1: '127.0.23.21', web2: '127.0.23.22', web3: '127.0.23.23' } as const;
type BackendName = keyof typeof BACKENDS;
type Mode = 'ok' | 'error' | 'slow';

type TrafficEvent = Extract<RunEvent, { type: 'traffic' }>;
const trafficEvents = (stdout: string) => jsonEvents(stdout).filter((e): e is TrafficEvent => e.type === 'traffic');

describe('cairn drain and cairn canary against a real haproxy', () => {
  let lab: TestSshLab;
  let dir: string;
  let inventory: string;
  let socket: string;
  let haproxy: TestHaproxy | undefined;
  let port = 0;
  const servers: Server[] = [];
  const mode: Record<BackendName, Mode> = { web1: 'ok', web2: 'ok', web3: 'ok' };
  const served: Record<BackendName, number> = { web1: 0, web2: 0, web3: 0 };
  /** Called on every request a backend serves (a test flips a mode after N requests). */
  let onServe: (name: BackendName) => void = () => {};
  const env = () => ({ CAIRN_STATE_DIR: join(dir, 'state') });

  /** The admin socket, asked directly by the test (not through cairn): what haproxy itself reports. */
  const admin = (command: string) => haproxyAdmin(socket, command);
  const weights = () => serverWeights(socket, 'web');
  const resetWeights = () => {
    for (const [name, w] of Object.entries({ web1: 100, web2: 100, web3: 0 }))
      admin(`set server web/${name} weight ${w}`);
  };

  beforeAll(async () => {
    lab = await startSshHosts(1, { names: ['lb1'] });
    dir = lab.hosts[0]!.dir;
    socket = join(dir, 'admin.sock');
    port = await freePort(VIP);
    const backendPort = await freePort(BACKENDS.web1);
    for (const [name, address] of Object.entries(BACKENDS) as Array<[BackendName, string]>) {
      const server = createServer((req, res) => {
        if (req.url === '/healthz') return res.end('ok\n');
        served[name]++;
        onServe(name);
        const delay = req.url === '/slow' ? 1500 : mode[name] === 'slow' ? 400 : 0;
        setTimeout(() => {
          res.writeHead(mode[name] === 'error' ? 500 : 200, { 'content-type': 'text/plain' });
          res.end(`served by ${name}\n`);
        }, delay);
      });
      await new Promise<void>((ok) => server.listen(backendPort, address, ok));
      servers.push(server);
    }
    // The haproxy role's template with the role's layout: web1 and web2 serve, web3 (the canary) is in the
    // backend at weight 0 until `cairn canary` brings it in.
    const config = renderRoleHaproxyCfg({
      haproxy_vip: VIP,
      haproxy_stats_socket: socket,
      haproxy_stats_bind_address: lab.hosts[0]!.address,
      haproxy_stats_port: await freePort(lab.hosts[0]!.address),
      haproxy_frontends: [{ name: 'www', port, backend: 'web' }],
      haproxy_backends: [
        {
          name: 'web',
          port: backendPort,
          servers: Object.entries(BACKENDS).map(([name, address]) => ({ name, address })),
        },
      ],
    });
    haproxy = await startHaproxy({ config, configPath: join(dir, 'haproxy.cfg'), readySocket: socket });
    resetWeights();
    // Every server UP before the tests start (health checks every 500 ms, rise 1).
    for (let i = 0; i < 50; i++) {
      const up = parseServerStats(admin('show stat')).filter((s) => s.status === 'UP').length;
      if (up === 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    inventory = lab.writeInventory({ lb: ['lb1'] }, { lb1: { haproxy_stats_socket: socket, vip_address: VIP } });
  }, 60_000);

  afterAll(async () => {
    await stopHaproxy(haproxy);
    await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
    await lab?.stop();
  });

  it('drain --check says what it would do and changes nothing', async () => {
    const res = await runCairn(['drain', 'web1', '-i', inventory, '--check', '--json'], { env: env() });
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const check = trafficEvents(res.stdout).find((e) => e.phase === 'check');
    expect(check?.host).toBe('lb1');
    expect(check?.msg).toMatch(/^would set web\/web1 to drain \(now web\/web1 ready weight 100/);
    expect(parseServersState(admin('show servers state web')).find((s) => s.server === 'web1')!.adminState).toBe(0);
  }, 60_000);

  it('drain takes web1 to 0 sessions with slow requests in flight, no request failing; --undo makes it ready', async () => {
    const probe = new ProbeLoop({
      url: `http://${VIP}:${port}/`,
      intervalMs: 20,
      maxRequests: 2000,
      maxDurationMs: 60_000,
    });
    // Slow requests spread over web1 and web2 by roundrobin: web1 holds sessions when the drain starts.
    const slow = Array.from({ length: 6 }, () => fetch(`http://${VIP}:${port}/slow`).then((r) => r.status));
    await new Promise((r) => setTimeout(r, 300));
    expect(parseServerStats(admin('show stat')).find((s) => s.server === 'web1')!.sessions).toBeGreaterThan(0);
    const res = await runCairn(['drain', 'web1', '-i', inventory, '--json'], { env: env() });
    const statuses = await Promise.all(slow);
    const report = await probe.stop();
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const events = trafficEvents(res.stdout);
    const drained = events.find((e) => e.phase === 'drained');
    expect(drained, JSON.stringify(events)).toBeDefined();
    expect(drained!.host).toBe('lb1');
    expect(Number(drained!.data!.waited_s)).toBeGreaterThan(0);
    // What haproxy itself says: DRAIN, 0 current sessions.
    const web1 = parseServerStats(admin('show stat')).find((s) => s.server === 'web1')!;
    expect(web1.status).toBe('DRAIN');
    expect(web1.sessions).toBe(0);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(report.sent).toBeGreaterThan(20);
    expect(report.failed).toBe(0);
    // New requests go elsewhere now.
    const before = served.web1;
    for (let i = 0; i < 10; i++) await fetch(`http://${VIP}:${port}/`).then((r) => r.text());
    expect(served.web1).toBe(before);

    const undo = await runCairn(['drain', 'web1', '--undo', '-i', inventory, '--json'], { env: env() });
    expect(undo.code, undo.stderr + undo.stdout).toBe(0);
    expect(parseServerStats(admin('show stat')).find((s) => s.server === 'web1')!.status).toBe('UP');
  }, 90_000);

  it('drain of a server no load balancer has: a clear error, exit 2', async () => {
    const res = await runCairn(['drain', 'web9', '-i', inventory], { env: env() });
    expect(res.code).toBe(2);
    expect(res.stdout).toMatch(/DRAIN \[lb1\] error: no server named web9 in any backend of lb1/);
  }, 60_000);

  it('canary: web3 from 0 % to 100 % in 10 steps under load, 0 failed requests', async () => {
    resetWeights();
    const res = await runCairn(
      [
        // P99's gate is proven below (a slow backend); here a loaded CI machine must not fail promotion on it.
        'canary', '-i', inventory, '--json', '--backend', 'web', '--servers', 'web3', '--max-p99-ms', '3000',
        '--hold', '0.6', '--concurrency', '3', '--interval-ms', '20', '--url', `http://${VIP}:${port}/`,
      ],
      { env: env(), timeoutMs: 90_000 },
    ); // prettier-ignore
    expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(0);
    const events = trafficEvents(res.stdout);
    const gates = events.filter((e) => e.phase.startsWith('gate '));
    expect(gates.map((g) => g.phase)).toEqual(Array.from({ length: 10 }, (_, i) => `gate ${i + 1}/10`));
    expect(gates.every((g) => g.passed === true && g.data!.failed === 0)).toBe(true);
    const steps = events.filter((e) => e.phase.startsWith('step '));
    expect(steps[0]!.msg).toBe('10 %: web1=90 web2=90 web3=20');
    expect(steps[9]!.msg).toBe('100 %: web1=0 web2=0 web3=200');
    const done = events.find((e) => e.phase === 'done');
    expect(done?.data?.failed).toBe(0);
    expect(Number(done?.data?.requests)).toBeGreaterThan(100);
    expect(weights()).toEqual({ web1: 0, web2: 0, web3: 200 });
  }, 120_000);

  it('canary: web3 turns to 500s mid-way; the error-rate gate fails and the start weights come back', async () => {
    resetWeights();
    served.web3 = 0;
    onServe = (name) => {
      if (name === 'web3' && served.web3 >= 25) mode.web3 = 'error';
    };
    try {
      const res = await runCairn(
        [
          'canary', '-i', inventory, '--json', '--servers', 'web3', '--max-p99-ms', '3000',
          '--hold', '0.6', '--concurrency', '3', '--interval-ms', '20', '--url', `http://${VIP}:${port}/`,
        ],
        { env: env(), timeoutMs: 90_000 },
      ); // prettier-ignore
      expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(2);
      const events = trafficEvents(res.stdout);
      const failedGate = events.find((e) => e.phase.startsWith('gate ') && e.passed === false);
      expect(failedGate?.msg).toMatch(/^error_rate [\d.]+ % is over 0\.05; first failure: HTTP 500/);
      expect(Number(failedGate!.data!.failed)).toBeGreaterThan(0);
      const failed = events.find((e) => e.phase === 'failed');
      expect(failed?.msg).toMatch(/gate error_rate failed: .* requests failed, P99 \d+ ms\)$/);
      expect(events.some((e) => e.phase === 'rolled back' && e.host === 'lb1')).toBe(true);
      expect(weights()).toEqual({ web1: 100, web2: 100, web3: 0 });
    } finally {
      onServe = () => {};
      mode.web3 = 'ok';
    }
  }, 120_000);

  it('canary: a slow web3 fails the P99 gate and rolls back', async () => {
    resetWeights();
    mode.web3 = 'slow';
    try {
      const res = await runCairn(
        [
          'canary', '-i', inventory, '--json', '--servers', 'web3', '--max-p99-ms', '200',
          '--hold', '1', '--concurrency', '3', '--interval-ms', '20', '--url', `http://${VIP}:${port}/`,
        ],
        { env: env(), timeoutMs: 90_000 },
      ); // prettier-ignore
      expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(2);
      const failedGate = trafficEvents(res.stdout).find((e) => e.phase.startsWith('gate ') && e.passed === false);
      expect(failedGate?.msg).toMatch(/^p99 \d+ ms is over 200/);
      expect(Number(failedGate!.data!.p99_ms)).toBeGreaterThanOrEqual(400);
      expect(weights()).toEqual({ web1: 100, web2: 100, web3: 0 });
    } finally {
      mode.web3 = 'ok';
    }
  }, 120_000);

  it('drill canary: promoted in 10 steps with 0 failed requests, then the weights from before the drill again', async () => {
    resetWeights();
    const url = `http://${VIP}:${port}/`;
    for (const expectWhat of ['promote', 'rollback']) {
      const res = await runCairn(
        [
          'drill', 'canary', '-i', inventory, '--json', '--set', `url=${url}`, '--set', 'hold_s=0.4',
          '--set', 'concurrency=2', '--set', `expect=${expectWhat}`,
          ...(expectWhat === 'promote' ? ['--set', 'max_p99_ms=3000'] : []),
        ],
        { env: env(), timeoutMs: 90_000 },
      ); // prettier-ignore
      const result = jsonEvents(res.stdout).find((e) => e.type === 'drill_result');
      expect(result, res.stderr + res.stdout.slice(-3000)).toBeDefined();
      if (result?.type !== 'drill_result') return;
      expect(result.passed, result.msg).toBe(true);
      expect(res.code).toBe(0);
      expect(result.measured.failed_requests).toBe(0);
      expect(result.measured.canary).toBe('web3');
      if (expectWhat === 'promote') expect(result.measured.steps_done).toBe(10);
      else {
        expect(result.measured.failed_gate).toBe('p99 at step 1');
        expect(result.measured.rolled_back).toBe('yes');
      }
      expect(weights()).toEqual({ web1: 100, web2: 100, web3: 0 });
    }
  }, 200_000);

  it('canary --check prints the plan and changes nothing', async () => {
    resetWeights();
    const res = await runCairn(
      ['canary', '-i', inventory, '--json', '--servers', 'web3', '--check', '--url', `http://${VIP}:${port}/`],
      { env: env() },
    );
    expect(res.code, res.stderr + res.stdout).toBe(0);
    const check = trafficEvents(res.stdout).find((e) => e.phase === 'check');
    expect(check?.msg).toContain('10 %: web1=90 web2=90 web3=20;');
    expect(check?.msg).toContain('100 %: web1=0 web2=0 web3=200');
    expect(weights()).toEqual({ web1: 100, web2: 100, web3: 0 });
  }, 60_000);
});
