/**
 * cert-rotate (issue 19, document 000: certificates rotated every 90 days): renew the front door's
 * certificate on every load balancer, one at a time, through the haproxy role itself (haproxy_tls_force_renew
 * for this run; the role then verifies TLS 1.3, the chain and the days left as always) while the
 * probe loop sends HTTPS requests to the VIP, each a new TLS handshake checked against the CA. Target: no
 * failed request (the reload is seamless: master-worker, listeners handed over with expose-fd), every load
 * balancer then serves a new certificate with more days left than the renewal window.
 */
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { inputError } from '../../core/util/errors.js';
import { sleep } from '../../core/util/sleep.js';
import { frontDoor, probeMeasures, requireAnswer, startProbe, tlsPortOf } from './ha.js';
import { registerDrill } from './registry.js';
import { hostSettings } from './settings.js';
import type { DrillContext, DrillOutcome } from './types.js';
import { verdict } from './verdict.js';

const DAY_MS = 86_400_000;

interface Served {
  fingerprint: string;
  daysLeft: number;
}

/** The certificate `address:port` serves, its chain checked against `ca` (and the address against its names). */
export function servedCertificate(address: string, port: number, ca: string, timeoutMs = 5000): Promise<Served> {
  return new Promise((resolveServed, reject) => {
    const socket = tlsConnect({ host: address, port, ca, minVersion: 'TLSv1.2', timeout: timeoutMs });
    socket.once('secureConnect', () => {
      const cert: X509Certificate | undefined = socket.getPeerX509Certificate();
      socket.end();
      if (!cert) return reject(new Error(`${address}:${port} sent no certificate`));
      resolveServed({
        fingerprint: cert.fingerprint256,
        daysLeft: Math.floor((new Date(cert.validTo).getTime() - Date.now()) / DAY_MS),
      });
    });
    socket.once('timeout', () =>
      socket.destroy(new Error(`${address}:${port}: no TLS handshake within ${timeoutMs} ms`)),
    );
    socket.once('error', reject);
  });
}

registerDrill({
  name: 'cert-rotate',
  summary:
    "renew the front door's TLS certificate on every load balancer through the haproxy role under an HTTPS probe loop: 0 failed requests",
  options: {
    playbook: 'the playbook that holds the haproxy role (default playbooks/ha.yaml)',
    lb_group: 'group of the load balancers (default lb)',
    url: 'the HTTPS URL probed (default https://VIP:haproxy_tls_port/)',
  },
  async run(ctx: DrillContext): Promise<DrillOutcome> {
    const door = frontDoor(ctx);
    if (door.ca === undefined)
      throw inputError('cert-rotate needs TLS at the front door (haproxy_tls: true on the load balancers)');
    const playbook = ctx.options.playbook ?? 'playbooks/ha.yaml';
    const hosts = door.lbs.map((lb) => {
      const s = hostSettings(ctx, lb, 'haproxy');
      if (s.haproxy_tls_certificate_source !== 'ca')
        throw inputError(
          `${lb}: the certificate comes from the vault (haproxy_tls_certificate_source ${String(s.haproxy_tls_certificate_source)}): rotate it by replacing the vault file and playing; cert-rotate renews CA-issued ones`,
        );
      return {
        lb,
        address: String(s.haproxy_own_address),
        port: tlsPortOf(s),
        window: Number(s.haproxy_tls_renew_within_days),
      };
    });
    const before = new Map<string, Served>();
    for (const h of hosts) before.set(h.lb, await servedCertificate(h.address, h.port, door.ca));
    await requireAnswer(door, ctx.signal);

    const probe = startProbe(ctx, door, 240_000);
    const measured: Record<string, number | string> = {};
    const problems: string[] = [];
    try {
      await sleep(1000, ctx.signal);
      for (const h of hosts) {
        ctx.log(`renew the certificate on ${h.lb} (haproxy role, haproxy_tls_force_renew)`);
        const t0 = performance.now();
        const code = await ctx.play(playbook, {
          limit: h.lb,
          roles: ['haproxy'],
          extraVars: { haproxy_tls_force_renew: true },
        });
        measured[`${h.lb}_rotate_s`] = Math.round(performance.now() - t0) / 1000;
        if (code !== 0) problems.push(`the haproxy role failed on ${h.lb} (exit ${code})`);
        // The probe keeps going across the reload and a little after it.
        await sleep(1500, ctx.signal);
      }
    } finally {
      Object.assign(measured, probeMeasures(await probe.stop()));
    }
    const rotated: string[] = [];
    for (const h of hosts) {
      const after = await servedCertificate(h.address, h.port, door.ca);
      measured[`${h.lb}_days_left`] = after.daysLeft;
      if (after.fingerprint === before.get(h.lb)!.fingerprint)
        problems.push(`${h.lb} still serves its old certificate`);
      else rotated.push(h.lb);
      if (after.daysLeft <= h.window)
        problems.push(`${h.lb}'s new certificate has ${after.daysLeft} days left, not above the window ${h.window}`);
    }
    measured.rotated = rotated.join(',');
    if (Number(measured.failed_requests) > 0) problems.push(`${measured.failed_requests} requests failed`);
    return verdict(
      problems,
      measured,
      'every load balancer serves a new certificate, 0 failed HTTPS requests (document 000)',
    );
  },
});
