/**
 * The lab's certificate authority: made once by `cairn lab up` under LAB_DIR/ca (kept across ups, removed
 * with the lab), named in the generated inventory (lab_ca_cert, lab_ca_key) so the haproxy role issues the
 * front door's certificate from it, and trusted by the lab tests and drills that speak HTTPS to the VIP.
 * No internet, no ACME: openssl on this machine (runner/core/util/tls-ca.ts).
 */
import { join } from 'node:path';
import { ensureCa, type CaFiles } from '../../core/util/tls-ca.js';
import { LAB_DIR } from './paths.js';

export const LAB_CA_DIR = join(LAB_DIR, 'ca');

/** The lab CA's files, made when missing (ten years, EC P-256). */
export function ensureLabCa(dir = LAB_CA_DIR): CaFiles & { created: boolean } {
  return ensureCa(dir, 'cairn lab CA');
}
