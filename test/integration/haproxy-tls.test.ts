/**
 * TLS at the front door with a REAL haproxy (issue 19 item 1), on loopback: the haproxy role, played by the
 * CLI through a real sshd on 127.0.0.x, issues the certificate from a CA made by the lab's CA function,
 * renders haproxy.cfg (checked by the real `haproxy -c`), and a real haproxy (master-worker, started here,
 * reloaded through its master socket as the role's handler does) serves two real HTTP backends. Proven:
 * `openssl s_client -tls1_3` succeeds and `-tls1_2` fails; plain HTTP answers 301 to HTTPS; HTTPS carries
 * HSTS; the role's verification passes; a second run changes nothing; the `cert-rotate` drill replaces the
 * certificate under the HTTPS probe loop without a failed request.
 */
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ensureLabCa } from '../../runner/features/lab/ca.js';
import { createTemplater } from '../../runner/core/template/index.js';
import { builtinRolesDir, sharedTemplatesDir } from '../../runner/core/util/paths.js';
import { changedKeys, jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { requireHaproxyTools, startHaproxy, stopChild, stopHaproxy, type TestHaproxy } from '../helpers/haproxy.js';
import { freePort, requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();
requireHaproxyTools([
  ['/usr/bin/openssl', 'openssl'],
  ['/usr/bin/curl', 'curl'],
  ['/usr/bin/prometheus-blackbox-exporter', 'prometheus-blackbox-exporter'],
]);

/** Loopback addresses of this file only (127.0.0.x belongs to the sshd harness). */
const VIP = '127.0.19.10';
const BACKENDS = ['127.0.19.21', '127.0.19.22'];

/**
 * A bootstrap haproxy.cfg where the role will write its own: only the runtime API socket (expose-fd
 * listeners), so the master-worker process starts before any certificate exists, as Debian's package
 * starts haproxy before the role configures it; the role's reload handler then moves it onto the real file.
 */
function bootstrapConfig(adminSocket: string): string {
  return [
    'global',
    `    stats socket ${adminSocket} mode 600 level admin expose-fd listeners`,
    'defaults',
    '    mode http',
    '    timeout connect 1s',
    '    timeout client 1s',
    '    timeout server 1s',
    '',
  ].join('\n');
}

/**
 * Runs a tool without blocking this process: the backends answer from this very process, so a synchronous
 * spawn of a client would deadlock against them.
 */
function run(cmd: string, args: string[], input = ''): Promise<{ code: number; out: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code: code ?? -1, out: out + (signal ? `(killed by ${signal})` : '') });
    });
    child.stdin.end(input);
  });
}

/** The certificate the front door serves on `address:port` (SHA-256 fingerprint), checked against `ca`. */
function servedFingerprint(address: string, port: number, ca: string): Promise<string> {
  return new Promise((resolveFp, reject) => {
    const socket = tlsConnect({ host: address, port, ca, servername: undefined, checkServerIdentity: () => undefined });
    socket.once('secureConnect', () => {
      const fp = socket.getPeerX509Certificate()?.fingerprint256 ?? '';
      socket.end();
      resolveFp(fp);
    });
    socket.once('error', reject);
  });
}

describe('haproxy role: TLS 1.3 at the front door, with a real haproxy on loopback', () => {
  let lab: TestSshLab;
  let inventory: string;
  let playbook: string;
  let dir: string;
  let ca: { certPath: string; keyPath: string };
  let caPem: string;
  let haproxy: TestHaproxy | undefined;
  const backends: Server[] = [];
  const ports = { http: 0, https: 0, stats: 0, backend: 0 };
  const env = () => ({ CAIRN_STATE_DIR: join(dir, 'state') });

  beforeAll(async () => {
    lab = await startSshHosts(1, { names: ['lb1'] });
    dir = lab.hosts[0]!.dir;
    ca = ensureLabCa(join(dir, 'ca'));
    caPem = readFileSync(ca.certPath, 'utf8');
    ports.http = await freePort(VIP);
    ports.https = await freePort(VIP);
    ports.stats = await freePort(lab.hosts[0]!.address);
    ports.backend = await freePort(BACKENDS[0]!);
    for (const [i, address] of BACKENDS.entries()) {
      const server = createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.url === '/healthz' ? 'ok\n' : `served by web${i + 1}\n`);
      });
      await new Promise<void>((ok) => server.listen(ports.backend, address, ok));
      backends.push(server);
    }
    const own = lab.hosts[0]!.address;
    inventory = lab.writeInventory(
      { lb: ['lb1'] },
      {
        lb1: {
          haproxy_vip: VIP,
          haproxy_own_address: own,
          haproxy_frontends: [{ name: 'www', port: ports.http, tls_port: ports.https, backend: 'web' }],
          haproxy_backends: [
            {
              name: 'web',
              port: ports.backend,
              servers: BACKENDS.map((a, i) => ({ name: `web${i + 1}`, address: a })),
            },
          ],
          haproxy_stats_port: ports.stats,
          haproxy_stats_bind_address: own,
          haproxy_stats_socket: join(dir, 'admin.sock'),
          haproxy_master_socket: join(dir, 'master.sock'),
          haproxy_reload_via: 'master-socket',
          haproxy_nonlocal_bind: false,
          haproxy_config_path: join(dir, 'haproxy.cfg'),
          haproxy_tls: true,
          haproxy_tls_ca_cert: ca.certPath,
          haproxy_tls_ca_key: ca.keyPath,
          haproxy_tls_dir: join(dir, 'certs'),
          haproxy_tls_certificate_path: join(dir, 'certs', 'front-door.pem'),
          haproxy_tls_trust_path: join(dir, 'certs', 'ca.pem'),
        },
      },
    );
    playbook = join(dir, 'front-door.yaml');
    writeFileSync(playbook, stringify([{ name: 'Front door', hosts: 'lb', roles: ['haproxy'] }]));
    haproxy = await startHaproxy({
      config: bootstrapConfig(join(dir, 'admin.sock')),
      configPath: join(dir, 'haproxy.cfg'),
      masterSocket: join(dir, 'master.sock'),
      readySocket: join(dir, 'master.sock'),
    });
  }, 60_000);

  afterAll(async () => {
    await stopHaproxy(haproxy);
    await Promise.all(backends.map((s) => new Promise((ok) => s.close(ok))));
    await lab?.stop();
  });

  it('the role issues the certificate and writes a config haproxy accepts; check predicted exactly that', async () => {
    const check = await runCairn(['play', playbook, '-i', inventory, '--check', '--json'], { env: env() });
    expect(check.code, check.stderr).toBe(0);
    const predicted = changedKeys(jsonEvents(check.stdout));
    // The run reloads the bootstrap haproxy onto the role's file, then verifies it (TLS, chain, days, HSTS).
    const first = await runCairn(['play', playbook, '-i', inventory, '--json'], { env: env() });
    expect(first.code, first.stderr + first.stdout.slice(-3000) + haproxy!.log).toBe(0);
    const changed = changedKeys(jsonEvents(first.stdout));
    expect(changed).toEqual(predicted);
    expect(changed).toContain(
      "lb1 | haproxy : the front door's certificate is current (issued by the CA, renewed within the window)",
    );
    const bundle = readFileSync(join(dir, 'certs', 'front-door.pem'), 'utf8');
    const cert = new X509Certificate(bundle);
    expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
    expect(cert.subjectAltName).toContain(`IP Address:${VIP}`);
    const days = (new Date(cert.validTo).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89);
    expect(days).toBeLessThanOrEqual(90);
    const cfg = readFileSync(join(dir, 'haproxy.cfg'), 'utf8');
    expect(cfg).toContain('ssl-min-ver TLSv1.3');
    expect((await run('haproxy', ['-c', '-q', '-f', join(dir, 'haproxy.cfg')])).code).toBe(0);
  }, 120_000);

  it('the real haproxy serves TLS 1.3 only, redirects HTTP to HTTPS and sends HSTS; a second run changes nothing', async () => {
    const tls13 = await run(
      'openssl',
      ['s_client', '-connect', `${VIP}:${ports.https}`, '-tls1_3', '-CAfile', ca.certPath, '-verify_return_error'],
      'Q\n',
    );
    expect(tls13.code, tls13.out + haproxy!.log).toBe(0);
    expect(tls13.out).toMatch(/^New, TLSv1\.3, Cipher is TLS_/m);
    expect(tls13.out).toMatch(/Verify return code: 0 \(ok\)/);
    const tls12 = await run('openssl', ['s_client', '-connect', `${VIP}:${ports.https}`, '-tls1_2'], 'Q\n');
    expect(tls12.code, tls12.out).not.toBe(0);
    expect(tls12.out).toMatch(/alert protocol version|no protocols available|wrong version/i);

    const redirect = await run('curl', [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code} %{redirect_url}',
      `http://${VIP}:${ports.http}/x`,
    ]);
    expect(redirect.out).toBe(`301 https://${VIP}:${ports.https}/x`);
    const page = await run('curl', ['-sS', '-D', '-', '--cacert', ca.certPath, `https://${VIP}:${ports.https}/`]);
    expect(page.code, page.out).toBe(0);
    expect(page.out).toMatch(/strict-transport-security: max-age=31536000; includeSubDomains/i);
    expect(page.out).toMatch(/served by web[12]/);

    // Second run: nothing changes, and the role's own verification (TLS 1.3, chain, days, HSTS, redirect,
    // every backend UP) passes against the live haproxy.
    const again = await runCairn(['play', playbook, '-i', inventory, '--json'], { env: env() });
    const events = jsonEvents(again.stdout);
    expect(again.code, again.stderr + again.stdout.slice(-3000)).toBe(0);
    expect(changedKeys(events)).toEqual([]);
    const verified = events.filter((e) => e.type === 'verify_result').map((e) => JSON.stringify(e));
    expect(verified.join('\n')).toContain('TLS 1.3 is negotiated, the chain is valid');
    expect(taskResults(events).some((e) => e.status === 'failed')).toBe(false);
  }, 120_000);

  it('TLS 1.2 is the documented switch: haproxy_tls_min_version TLSv1.2 renders a config haproxy -c accepts', async () => {
    const extra = join(dir, 'tls12.yaml');
    writeFileSync(extra, 'haproxy_tls_min_version: TLSv1.2\nhaproxy_config_path: ' + join(dir, 'haproxy12.cfg') + '\n');
    const res = await runCairn(['play', playbook, '-i', inventory, '-e', `@${extra}`, '--tags', 'config', '--json'], {
      env: env(),
    });
    expect(res.code, res.stderr).toBe(0);
    const cfg = readFileSync(join(dir, 'haproxy12.cfg'), 'utf8');
    expect(cfg).toContain('ssl-min-ver TLSv1.2');
    expect((await run('haproxy', ['-c', '-q', '-f', join(dir, 'haproxy12.cfg')])).code).toBe(0);
  }, 120_000);

  it("the prometheus role's blackbox module, in a real blackbox exporter, sees TLS 1.3 and the expiry", async () => {
    const templater = createTemplater({ partialsDirs: [sharedTemplatesDir()] });
    const rendered = templater
      .renderFile(join(builtinRolesDir(), 'prometheus', 'templates', 'blackbox.yml.hbs'), {
        prometheus_blackbox_min_tls: 'TLS13',
        prometheus_blackbox_ca_pem: caPem,
      })
      .replace('/etc/prometheus/blackbox-ca.pem', ca.certPath);
    const config = join(dir, 'blackbox.yml');
    writeFileSync(config, rendered);
    const checked = await run('prometheus-blackbox-exporter', ['--config.check', `--config.file=${config}`]);
    expect(checked.code, checked.out).toBe(0);
    const listen = `${lab.hosts[0]!.address}:${await freePort(lab.hosts[0]!.address)}`;
    const exporter = spawn(
      'prometheus-blackbox-exporter',
      [`--config.file=${config}`, `--web.listen-address=${listen}`],
      {
        stdio: 'ignore',
      },
    );
    try {
      let metrics = '';
      const target = encodeURIComponent(`https://${VIP}:${ports.https}/`);
      for (let i = 0; i < 50 && !metrics.includes('probe_success'); i++) {
        metrics = await fetch(`http://${listen}/probe?module=https_front_door&target=${target}`)
          .then((r) => r.text())
          .catch(() => '');
        if (!metrics.includes('probe_success')) await new Promise((r) => setTimeout(r, 200));
      }
      expect(metrics).toMatch(/^probe_success 1$/m);
      expect(metrics).toMatch(/^probe_tls_version_info\{version="TLS 1\.3"\} 1$/m);
      const expiry = Number(/^probe_ssl_earliest_cert_expiry (\S+)$/m.exec(metrics)?.[1]);
      const days = (expiry * 1000 - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(14);
      expect(days).toBeLessThanOrEqual(90);
    } finally {
      await stopChild(exporter);
    }
  }, 60_000);

  it('cert-rotate: the certificate is replaced and haproxy reloaded under the HTTPS probe loop, 0 failed', async () => {
    const before = await servedFingerprint(VIP, ports.https, caPem);
    const drill = await runCairn(
      [
        'drill', 'cert-rotate', '-i', inventory, '--json',
        '--set', `playbook=${playbook}`, '--set', `url=https://${VIP}:${ports.https}/`,
      ],
      { env: env(), timeoutMs: 180_000 },
    ); // prettier-ignore
    const result = jsonEvents(drill.stdout).find((e) => e.type === 'drill_result') as
      { passed: boolean; measured: Record<string, number | string>; msg?: string } | undefined;
    expect(result, drill.stderr + drill.stdout.slice(-2000)).toBeDefined();
    console.log(`cert-rotate measured: ${JSON.stringify(result!.measured)}`);
    const failures = jsonEvents(drill.stdout)
      .filter((e) => ('passed' in e && e.passed === false) || ('status' in e && e.status === 'failed'))
      .map((e) => JSON.stringify(e).slice(0, 800));
    expect(result!.passed, `${result!.msg}\n${failures.join('\n')}`).toBe(true);
    expect(result!.measured.failed_requests).toBe(0);
    expect(Number(result!.measured.requests)).toBeGreaterThan(20);
    const after = await servedFingerprint(VIP, ports.https, caPem);
    expect(after).not.toBe(before);
    expect(drill.code).toBe(0);
  }, 200_000);
});
