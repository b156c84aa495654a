/**
 * A small certificate authority on this machine, with the openssl command-line tool (Node's crypto reads
 * X.509 but cannot write it; openssl 3 is on every Debian host and signs with `req -x509 -CA`): the lab's CA
 * (`cairn lab up`) and the certificates the tls_certificate module issues from it. No network, no ACME.
 *
 * Keys are written by openssl into a fresh 0700 folder and read back; no key, passphrase or PEM is ever on
 * an argv. Subject and SAN values reach openssl as single argv entries, checked against strict patterns
 * first, so no value can add a field or an option.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CaFiles {
  certPath: string;
  keyPath: string;
}

/** A DNS name or an IPv4 address: what a subjectAltName may hold here. */
const DNS_NAME =
  /^(?=.{1,253}$)([A-Za-z0-9*]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$/;
/** A common name: letters, digits and a few separators (it is also a file-name-safe label). */
export const COMMON_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

export function isSubjectAltName(value: string): boolean {
  return IPV4.test(value) || DNS_NAME.test(value);
}

/** "IP:10.77.0.10,DNS:www.lab" from plain names and addresses; throws on anything else. */
export function sanExtension(names: string[]): string {
  return names
    .map((name) => {
      if (IPV4.test(name)) return `IP:${name}`;
      if (DNS_NAME.test(name)) return `DNS:${name}`;
      throw new Error(`"${name}" is neither an IPv4 address nor a DNS name`);
    })
    .join(',');
}

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT')
      throw new Error('openssl is not installed on this machine (Debian package openssl)', { cause: err });
    throw new Error(
      `openssl ${args[0]} failed: ${
        String(e.stderr ?? '')
          .trim()
          .split('\n')[0]
      }`,
      { cause: err },
    );
  }
}

function withPrivateDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-tls-'));
  chmodSync(dir, 0o700);
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The CA in `dir` (ca.pem, ca.key), created when missing: an EC P-256 key and a self-signed CA certificate
 * valid `days`. An existing CA is kept (certificates issued from it stay valid); a half-made one (only one
 * of the two files) is an error, never silently replaced.
 */
export function ensureCa(dir: string, commonName: string, days = 3650): CaFiles & { created: boolean } {
  const files = { certPath: join(dir, 'ca.pem'), keyPath: join(dir, 'ca.key') };
  const have = [existsSync(files.certPath), existsSync(files.keyPath)];
  if (have[0] && have[1]) {
    readCa(files); // refuses a damaged CA now rather than at the first issue
    return { ...files, created: false };
  }
  if (have[0] !== have[1])
    throw new Error(`${dir} holds only one of ca.pem and ca.key: restore the other or remove both to make a new CA`);
  if (!COMMON_NAME.test(commonName)) throw new Error(`CA name "${commonName}" has characters openssl would misread`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  withPrivateDir((tmp) => {
    const key = join(tmp, 'ca.key');
    const cert = join(tmp, 'ca.pem');
    openssl([
      'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${commonName}`,
      '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]); // prettier-ignore
    // Key first with its mode set before any reader could open it, then the certificate; each by rename.
    writeFileSync(join(dir, '.ca.key.new'), readFileSync(key), { mode: 0o600, flag: 'wx' });
    renameSync(join(dir, '.ca.key.new'), files.keyPath);
    writeFileSync(join(dir, '.ca.pem.new'), readFileSync(cert), { mode: 0o644, flag: 'wx' });
    renameSync(join(dir, '.ca.pem.new'), files.certPath);
  });
  return { ...files, created: true };
}

/** The CA's certificate, checked to be a CA whose key matches it. */
export function readCa(files: CaFiles): X509Certificate {
  const cert = new X509Certificate(readFileSync(files.certPath));
  if (!cert.ca) throw new Error(`${files.certPath} is not a CA certificate (basicConstraints CA:FALSE)`);
  if (!cert.checkPrivateKey(createPrivateKey(readFileSync(files.keyPath))))
    throw new Error(`${files.keyPath} is not the key of ${files.certPath}`);
  return cert;
}

export interface IssuedCertificate {
  /** PEM: the server certificate, then the CA certificate (the chain haproxy sends), then the key. */
  bundle: string;
  notAfter: Date;
  fingerprint256: string;
}

/** A server certificate for `names` (SANs; the first is the common name) signed by the CA, valid `days`. */
export function issueCertificate(ca: CaFiles, names: string[], days: number): IssuedCertificate {
  if (!names.length) throw new Error('a certificate needs at least one name');
  const san = sanExtension(names);
  const caCert = readCa(ca);
  return withPrivateDir((tmp) => {
    const key = join(tmp, 'server.key');
    const cert = join(tmp, 'server.pem');
    openssl([
      'req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', String(days), '-subj', `/CN=${names[0]}`,
      '-CA', ca.certPath, '-CAkey', ca.keyPath,
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-addext', 'keyUsage=critical,digitalSignature',
      '-addext', 'extendedKeyUsage=serverAuth',
      '-addext', `subjectAltName=${san}`,
    ]); // prettier-ignore
    const certPem = readFileSync(cert, 'utf8');
    const parsed = new X509Certificate(certPem);
    return {
      bundle: certPem + caCert.toString() + readFileSync(key, 'utf8'),
      notAfter: new Date(parsed.validTo),
      fingerprint256: parsed.fingerprint256,
    };
  });
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[A-Za-z0-9+/=\r\n]+?-----END \1-----/g;

export interface BundleFacts {
  subject: string;
  names: string[];
  notAfter: Date;
  fingerprint256: string;
  /** Signed by the given CA (signature checked, not only the issuer's name). */
  issuedByCa: boolean;
  /** The bundle's private key belongs to its certificate. */
  keyMatches: boolean;
}

/**
 * What a PEM bundle on a host holds (its first certificate, its key), read here with Node's parser: the
 * host's bytes are data, never trusted for more than a decision to renew. Undefined when it is not a bundle
 * of a certificate and a key.
 */
export function inspectBundle(pem: string, caCert: X509Certificate): BundleFacts | undefined {
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  const certBlock = blocks.find((b) => b[1] === 'CERTIFICATE');
  const keyBlock = blocks.find((b) => /PRIVATE KEY$/.test(b[1]!));
  if (!certBlock || !keyBlock) return undefined;
  try {
    const cert = new X509Certificate(certBlock[0]);
    const names = (cert.subjectAltName ?? '')
      .split(', ')
      .map((entry) => entry.replace(/^(DNS|IP Address):/, ''))
      .filter(Boolean);
    return {
      subject: cert.subject,
      names,
      notAfter: new Date(cert.validTo),
      fingerprint256: cert.fingerprint256,
      issuedByCa: cert.checkIssued(caCert) && cert.verify(caCert.publicKey),
      keyMatches: cert.checkPrivateKey(createPrivateKey(keyBlock[0])),
    };
  } catch {
    return undefined;
  }
}
