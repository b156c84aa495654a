/**
 * tls_certificate: keep a server certificate issued by a CA on this machine (the lab's CA, made by
 * `cairn lab up`) at `dest` on the host, as one PEM bundle (certificate, CA certificate, key) the way haproxy
 * reads it. check reads the host's bundle and decides with Node's X.509 parser: a bundle that is missing,
 * unreadable, not signed by the CA, whose key does not match, whose names differ, or that expires within
 * `renew_within_days` is replaced by a new one valid `lifetime_days`; otherwise only attributes are managed.
 * The new bundle is issued during check (locally; nothing on the host changes) so apply writes exactly what
 * check planned, atomically, mode 0600 unless told. Diffs show the certificates' facts, never the key.
 *
 * No Ansible module does this in one step (community.crypto splits it into openssl_privatekey, openssl_csr
 * and x509_certificate with an ownca provider); this is that chain for the one case cairn needs.
 */
import { isAbsolute } from 'node:path';
import { attributeSchema, argError, validateAttributeArgs } from './attributes.js';
import { applyFileWrite, planFileWrite, type FileWritePlan } from './file-write.js';
import { probeFile, ProbeError } from './remote.js';
import type { Module, Planned } from './types.js';
import {
  inspectBundle,
  isSubjectAltName,
  issueCertificate,
  readCa,
  type BundleFacts,
  type IssuedCertificate,
} from '../util/tls-ca.js';

export interface TlsCertificateArgs {
  dest: string;
  ca_cert: string;
  ca_key: string;
  /** Subject alternative names (DNS names or IPv4 addresses); the first is also the common name. */
  names: string[];
  lifetime_days?: number;
  renew_within_days?: number;
  /** Replace the certificate whatever it holds (the cert-rotate drill); every run then changes. */
  force_renew?: boolean;
  owner?: string;
  group?: string;
  mode?: string | number;
  validate?: string;
}

const DAY_MS = 86_400_000;

function describe(facts: { names: string[]; notAfter: Date; fingerprint256: string }): string {
  return (
    `names: ${facts.names.join(', ')}\n` +
    `not after: ${facts.notAfter.toISOString()}\n` +
    `sha256 fingerprint: ${facts.fingerprint256}\n` +
    `(private key not shown)\n`
  );
}

/** Why the host's bundle must be replaced, or undefined when it may stay. */
export function renewalReason(
  facts: BundleFacts | undefined,
  wantNames: string[],
  renewWithinDays: number,
  nowMs: number,
): string | undefined {
  if (!facts) return 'no certificate and key bundle';
  if (!facts.issuedByCa) return 'not issued by the CA';
  if (!facts.keyMatches) return 'the key does not belong to the certificate';
  const have = [...facts.names].sort().join(',');
  if (have !== [...wantNames].sort().join(',')) return `names ${facts.names.join(', ') || '(none)'} differ`;
  const daysLeft = (facts.notAfter.getTime() - nowMs) / DAY_MS;
  if (daysLeft <= renewWithinDays)
    return `expires in ${daysLeft.toFixed(1)} days, within the renewal window of ${renewWithinDays}`;
  return undefined;
}

export const tlsCertificateModule: Module<TlsCertificateArgs, FileWritePlan> = {
  name: 'tls_certificate',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['dest', 'ca_cert', 'ca_key', 'names'],
    properties: {
      dest: { type: 'string', minLength: 1 },
      ca_cert: { type: 'string', minLength: 1 },
      ca_key: { type: 'string', minLength: 1 },
      names: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      lifetime_days: { type: 'integer', minimum: 1, maximum: 3650 },
      renew_within_days: { type: 'integer', minimum: 0 },
      force_renew: { type: 'boolean' },
      validate: { type: 'string', pattern: '%s' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<FileWritePlan>> {
    validateAttributeArgs(ctx, args);
    const lifetime = args.lifetime_days ?? 90;
    const renewWithin = args.renew_within_days ?? 30;
    for (const name of args.names)
      if (!isSubjectAltName(name)) throw argError(ctx, `names: "${name}" is neither an IPv4 address nor a DNS name`);
    for (const path of [args.ca_cert, args.ca_key])
      if (!isAbsolute(path)) throw argError(ctx, `${path}: the CA's files are given as absolute paths on this machine`);
    let caCert;
    try {
      caCert = readCa({ certPath: args.ca_cert, keyPath: args.ca_key });
    } catch (err) {
      return { changed: false, actions: [], failed: `the CA cannot be used: ${(err as Error).message}` };
    }
    let probe;
    try {
      probe = await probeFile(ctx, args.dest, { content: true });
    } catch (err) {
      if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
      throw err;
    }
    if (probe.type === 'directory' || probe.type === 'other')
      return { changed: false, actions: [], failed: `dest ${args.dest} is not a regular file` };
    if (probe.type === 'file' && probe.content === undefined)
      return { changed: false, actions: [], failed: `cannot read ${args.dest} (${probe.contentOmitted})` };
    const facts = probe.content ? inspectBundle(probe.content.toString('utf8'), caCert) : undefined;
    const reason = args.force_renew
      ? 'renewal forced (force_renew)'
      : renewalReason(facts, args.names, renewWithin, Date.now());
    const mode = args.mode ?? '0600';
    let issued: IssuedCertificate | undefined;
    if (reason !== undefined) {
      try {
        issued = issueCertificate({ certPath: args.ca_cert, keyPath: args.ca_key }, args.names, lifetime);
      } catch (err) {
        return { changed: false, actions: [], failed: `cannot issue a certificate: ${(err as Error).message}` };
      }
    }
    const plan = planFileWrite(probe, {
      path: args.dest,
      content: issued ? Buffer.from(issued.bundle, 'utf8') : undefined,
      owner: args.owner,
      group: args.group,
      mode,
      validate: args.validate,
    });
    const current = facts;
    const after = issued
      ? { names: args.names, notAfter: issued.notAfter, fingerprint256: issued.fingerprint256 }
      : current;
    if (issued) plan.actions[0] = `${plan.actions[0]} (${reason})`;
    // The diff names the certificates, never the key's bytes; a new one by what check can promise (its
    // names and lifetime: its key and fingerprint are new on every issue).
    const promised = `names: ${args.names.join(', ')}\nvalid for: ${lifetime} days from issue\n(new private key, not shown)\n`;
    plan.diffs = plan.diffs?.map((d) => ({
      ...d,
      before: current ? describe(current) : '',
      after: issued ? promised : after ? describe(after) : '',
    }));
    const notAfter = after?.notAfter;
    plan.data = {
      dest: args.dest,
      renewed: Boolean(issued),
      ...(reason ? { reason } : {}),
      ...(notAfter ? { not_after: notAfter.toISOString() } : {}),
      ...(notAfter ? { days_left: Math.floor((notAfter.getTime() - Date.now()) / DAY_MS) } : {}),
      ...(after ? { fingerprint: after.fingerprint256 } : {}),
    };
    return plan;
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
