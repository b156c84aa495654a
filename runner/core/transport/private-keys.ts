/**
 * Private key files for SSH authentication, read and parsed once per run and path.
 *
 * Every connection of a run usually names the same key file: at 1000 hosts, reading and parsing it for each
 * (and ssh2 parsing the bytes again for its publickey attempt) was a visible share of the controller's CPU
 * (docs/performance.md, "Branch sshperf"). A parsed key is kept with the stat signature it was read at, as the
 * known_hosts index is (./known-hosts.ts): each later use costs one stat, and a file changed since (replaced,
 * rewritten, renamed over) is read and parsed again, so a stale key is never offered. Failures are not kept:
 * a missing or unusable file is tried again on the next use.
 */
import { readFileSync } from 'node:fs';
import ssh2, { type ParsedKey } from 'ssh2';
import { fileSignature } from '../util/file-signature.js';

/** Why a key file cannot be used: `cannot read private key PATH: ENOENT`, or ssh2's reason. */
export class PrivateKeyError extends Error {}

const keyCache = new Map<string, { signature: string; key: ParsedKey }>();

function unreadable(path: string, error: unknown): PrivateKeyError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new PrivateKeyError(`cannot read private key ${path}: ${reason}`);
}

/**
 * The parsed key in the file at `path`. Throws PrivateKeyError when it cannot be read or parsed (encrypted,
 * unsupported, not a key). The object is shared by every connection that uses the path: ssh2 takes a parsed
 * key as it is (`parseKey` returns it unchanged) and only reads it.
 */
export function loadPrivateKey(path: string): ParsedKey {
  let signature: string | undefined;
  try {
    signature = fileSignature(path);
  } catch (error) {
    keyCache.delete(path);
    throw unreadable(path, error);
  }
  if (signature === undefined) {
    keyCache.delete(path);
    throw new PrivateKeyError(`cannot read private key ${path}: ENOENT`);
  }
  const cached = keyCache.get(path);
  if (cached && cached.signature === signature) return cached.key;
  let text: Buffer;
  try {
    text = readFileSync(path);
  } catch (error) {
    keyCache.delete(path);
    throw unreadable(path, error);
  }
  const parsed = ssh2.utils.parseKey(text);
  if (parsed instanceof Error) {
    keyCache.delete(path);
    throw new PrivateKeyError(`private key ${path} cannot be used: ${parsed.message}`);
  }
  keyCache.set(path, { signature, key: parsed });
  return parsed;
}
