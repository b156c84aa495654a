/**
 * The lab CA and the certificates issued from it (runner/core/util/tls-ca.ts), with the real openssl: a CA
 * is made once and kept, a half-made one is refused, an issued bundle is checked by Node's X.509 parser,
 * bad names never reach openssl, and the renewal rule of the tls_certificate module decides as documented.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureCa, inspectBundle, issueCertificate, sanExtension } from '../../runner/core/util/tls-ca.js';
import { renewalReason } from '../../runner/core/modules/tls-certificate.js';
import { ensureLabCa } from '../../runner/features/lab/ca.js';
import { inventoryDocument } from '../../runner/features/lab/inventory.js';
import { defaultTopology } from '../../runner/features/lab/topology.js';

const work = mkdtempSync(join(tmpdir(), 'cairn-tls-ca-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the lab CA', () => {
  it('is made once (key 0600, a CA certificate) and kept by the next up', () => {
    const dir = join(work, 'lab-ca');
    const made = ensureLabCa(dir);
    expect(made.created).toBe(true);
    expect(statSync(made.keyPath).mode & 0o777).toBe(0o600);
    const cert = new X509Certificate(readFileSync(made.certPath));
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=cairn lab CA');
    const again = ensureLabCa(dir);
    expect(again.created).toBe(false);
    expect(readFileSync(again.certPath, 'utf8')).toBe(readFileSync(made.certPath, 'utf8'));
  });

  it('a half-made CA (certificate without key) is refused, never replaced', () => {
    const dir = join(work, 'half');
    const made = ensureCa(dir, 'half CA');
    unlinkSync(made.keyPath);
    expect(() => ensureCa(dir, 'half CA')).toThrow(/holds only one of ca\.pem and ca\.key/);
  });

  it('the generated lab inventory names the CA for the haproxy role', () => {
    const doc = inventoryDocument({
      topology: defaultTopology(),
      paths: { privateKey: 'k', knownHosts: 'h' },
      ca: { certPath: '/var/lib/cairn/lab/ca/ca.pem', keyPath: '/var/lib/cairn/lab/ca/ca.key' },
    }) as { all: { vars: Record<string, unknown> } };
    expect(doc.all.vars).toMatchObject({
      lab_ca_cert: '/var/lib/cairn/lab/ca/ca.pem',
      lab_ca_key: '/var/lib/cairn/lab/ca/ca.key',
    });
  });
});

describe('issued certificates', () => {
  const ca = ensureCa(join(work, 'ca'), 'unit CA');
  const caCert = new X509Certificate(readFileSync(ca.certPath));

  it('a bundle of certificate, CA certificate and key, for the names, valid the lifetime', () => {
    const issued = issueCertificate(ca, ['10.77.0.10', 'www.lab'], 90);
    const facts = inspectBundle(issued.bundle, caCert)!;
    expect(facts.names).toEqual(['10.77.0.10', 'www.lab']);
    expect(facts.issuedByCa).toBe(true);
    expect(facts.keyMatches).toBe(true);
    const days = (facts.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);
    expect(issued.bundle.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
  });

  it('a name that is neither an address nor a DNS name never reaches openssl', () => {
    expect(() => sanExtension(['10.0.0.1,DNS:evil'])).toThrow(/neither an IPv4 address nor a DNS name/);
    expect(() => issueCertificate(ca, ['a/CN=x'], 1)).toThrow(/neither/);
  });

  it('another CA, a foreign key or garbage are seen for what they are', () => {
    const other = ensureCa(join(work, 'other'), 'other CA');
    const foreign = issueCertificate(other, ['10.77.0.10'], 90);
    expect(inspectBundle(foreign.bundle, caCert)!.issuedByCa).toBe(false);
    const mine = issueCertificate(ca, ['10.77.0.10'], 90);
    const swapped = mine.bundle.replace(
      /-----BEGIN PRIVATE KEY-----[\s\S]*$/,
      foreign.bundle.slice(foreign.bundle.indexOf('-----BEGIN PRIVATE KEY-----')),
    );
    expect(inspectBundle(swapped, caCert)!.keyMatches).toBe(false);
    expect(inspectBundle('garbage', caCert)).toBeUndefined();
  });
});

describe('the renewal rule', () => {
  const now = Date.parse('2026-12-07T00:00:00Z');
  const facts = (daysLeft: number, names = ['10.77.0.10']) => ({
    subject: 'CN=10.77.0.10',
    names,
    notAfter: new Date(now + daysLeft * 86_400_000),
    fingerprint256: 'AA',
    issuedByCa: true,
    keyMatches: true,
  });

  it('keeps a certificate with more days left than the window; renews within it', () => {
    expect(renewalReason(facts(31), ['10.77.0.10'], 30, now)).toBeUndefined();
    expect(renewalReason(facts(30), ['10.77.0.10'], 30, now)).toMatch(
      /expires in 30\.0 days, within the renewal window of 30/,
    );
    expect(renewalReason(facts(-1), ['10.77.0.10'], 30, now)).toMatch(/expires in -1\.0 days/);
  });

  it('renews for other names (in any order they are the same), another CA, a foreign key, or nothing', () => {
    expect(renewalReason(facts(60, ['b', 'a']), ['a', 'b'], 30, now)).toBeUndefined();
    expect(renewalReason(facts(60), ['10.77.0.11'], 30, now)).toMatch(/names 10\.77\.0\.10 differ/);
    expect(renewalReason({ ...facts(60), issuedByCa: false }, ['10.77.0.10'], 30, now)).toBe('not issued by the CA');
    expect(renewalReason({ ...facts(60), keyMatches: false }, ['10.77.0.10'], 30, now)).toMatch(/key does not belong/);
    expect(renewalReason(undefined, ['10.77.0.10'], 30, now)).toBe('no certificate and key bundle');
  });
});
