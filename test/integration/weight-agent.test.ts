/**
 * Document 000's dynamic weight (weight = base + (current_qps / max_qps) x factor) through HAProxy's
 * agent-check, with REAL parts on loopback: the haproxy role's template with haproxy_weight_agent on (checked
 * by `haproxy -c`) in a real haproxy, the webapp role's agent (roles/webapp/files/cairn-weight-agent.py) run
 * by python3 on each backend address, reading a request counter in nginx's stub_status format that this
 * test serves at a rate it sets. Proven by the weight haproxy itself applies (`show servers state`): 75 at
 * half of max_qps, 50 idle, 100 at or past max_qps (configured weight 100).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinRolesDir } from '../../runner/core/util/paths.js';
import {
  renderRoleHaproxyCfg,
  requireHaproxyTools,
  serverWeights,
  startHaproxy,
  stopChild,
  stopHaproxy,
  type TestHaproxy,
} from '../helpers/haproxy.js';
import { freePort } from '../helpers/sshd.js';

requireHaproxyTools([['/usr/bin/python3', 'python3']]);

const VIP = '127.0.24.10';
const BACKENDS = { web1: '127.0.24.21', web2: '127.0.24.22' } as const;
type Name = keyof typeof BACKENDS;

describe('the weight agent: haproxy applies base + (qps / max_qps) x factor', () => {
  let dir: string;
  let socket: string;
  let haproxy: TestHaproxy | undefined;
  /** The agents' stderr; with haproxy's, the message of a failed expectation. */
  let log = '';
  const logs = () => log + (haproxy?.log ?? '');
  const agents: ChildProcess[] = [];
  const servers: Server[] = [];
  /** Requests per second each backend's counter grows by. */
  const rate: Record<Name, number> = { web1: 500, web2: 0 };
  const counted: Record<Name, { at: number; count: number }> = {
    web1: { at: performance.now(), count: 0 },
    web2: { at: performance.now(), count: 0 },
  };
  const counter = (name: Name) => {
    const c = counted[name];
    const t = performance.now();
    c.count += ((t - c.at) / 1000) * rate[name];
    c.at = t;
    return Math.floor(c.count);
  };

  const weights = () => serverWeights(socket, 'web');
  async function until(want: Record<string, number>): Promise<Record<string, number>> {
    let seen: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      seen = weights();
      if (JSON.stringify(seen) === JSON.stringify(want)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return seen;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-weight-agent-'));
    socket = join(dir, 'admin.sock');
    const port = await freePort(VIP);
    const webPort = await freePort(BACKENDS.web1);
    const statusPort = await freePort(BACKENDS.web1);
    const agentPort = await freePort(BACKENDS.web1);
    for (const [name, address] of Object.entries(BACKENDS) as Array<[Name, string]>) {
      const web = createServer((req, res) => res.end(`served by ${name}\n`));
      await new Promise<void>((ok) => web.listen(webPort, address, ok));
      // nginx's stub_status format (ngx_http_stub_status_module's documentation).
      const status = createServer((req, res) =>
        res.end(
          `Active connections: 1 \nserver accepts handled requests\n 5 5 ${counter(name)} \nReading: 0 Writing: 1 Waiting: 0 \n`,
        ),
      );
      await new Promise<void>((ok) => status.listen(statusPort, address, ok));
      servers.push(web, status);
      // The role's agent with the role's defaults (base 50, factor 50, max_qps 1000).
      const agent = spawn(
        'python3',
        [
          join(builtinRolesDir(), 'webapp', 'files', 'cairn-weight-agent.py'),
          '--listen', address, '--port', String(agentPort),
          '--status-url', `http://${address}:${statusPort}/cairn-stub-status`,
          '--base', '50', '--factor', '50', '--max-qps', '1000', '--sample-s', '0.5',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      ); // prettier-ignore
      agent.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      agents.push(agent);
    }
    const config = renderRoleHaproxyCfg({
      haproxy_vip: VIP,
      haproxy_stats_socket: socket,
      haproxy_maxconn: 256,
      haproxy_stats_bind_address: VIP,
      haproxy_stats_port: await freePort(VIP),
      haproxy_frontends: [{ name: 'www', port, backend: 'web' }],
      haproxy_backends: [
        { name: 'web', port: webPort, servers: Object.entries(BACKENDS).map(([name, address]) => ({ name, address })) },
      ],
      haproxy_health_path: '/',
      haproxy_weight_agent: true,
      haproxy_weight_agent_port: agentPort,
      haproxy_weight_agent_inter_ms: 500,
    });
    expect(config).toContain(`default-server agent-check agent-port ${agentPort} agent-inter 500`);
    haproxy = await startHaproxy({ config, configPath: join(dir, 'haproxy.cfg'), readySocket: socket });
  }, 60_000);

  afterAll(async () => {
    await stopHaproxy(haproxy);
    for (const agent of agents) await stopChild(agent);
    await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
    rmSync(dir, { recursive: true, force: true });
  });

  it('half of max_qps gives 75 %, idle gives 50 % of the configured weight 100', async () => {
    expect(await until({ web1: 75, web2: 50 }), logs()).toEqual({ web1: 75, web2: 50 });
  }, 60_000);

  it('at or past max_qps the weight is the whole configured weight; back to idle, back to base', async () => {
    rate.web2 = 2500;
    expect(await until({ web1: 75, web2: 100 }), logs()).toEqual({ web1: 75, web2: 100 });
    rate.web2 = 0;
    rate.web1 = 0;
    expect(await until({ web1: 50, web2: 50 }), logs()).toEqual({ web1: 50, web2: 50 });
  }, 60_000);
});
