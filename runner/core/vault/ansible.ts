/**
 * Ansible Vault files (format 1.1 and 1.2, cipher AES256), decrypted with Node's crypto as Ansible's
 * VaultAES256 does (ansible/parsing/vault/__init__.py): the body is hex of "hex(salt)\nhex(hmac)\nhex(ciphertext)";
 * PBKDF2-HMAC-SHA256 (10000 iterations) of the password and salt gives 80 bytes: the AES-256-CTR key, the
 * HMAC-SHA256 key and the counter's initial block. The HMAC is checked (in constant time) before anything is
 * decrypted, and the PKCS#7 padding is removed.
 */
import { createDecipheriv, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';

export interface AnsibleVaultEnvelope {
  version: '1.1' | '1.2';
  cipher: 'AES256';
  /** The vault id of a 1.2 file (`--vault-id label@...`). */
  label?: string;
  salt: Buffer;
  hmac: Buffer;
  ciphertext: Buffer;
}

export class AnsibleVaultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnsibleVaultError';
  }
}

const HEADER = /^\$ANSIBLE_VAULT;(1\.1|1\.2);([A-Za-z0-9]+)(?:;([^\s;]+))?$/;

export function isAnsibleVault(text: string): boolean {
  return text.startsWith('$ANSIBLE_VAULT;');
}

function unhex(what: string, text: string): Buffer {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new AnsibleVaultError(`the vault's ${what} is not hexadecimal`);
  return Buffer.from(text, 'hex');
}

/** Parse a vault file's text (or an inline `!vault` value) without decrypting it. */
export function parseAnsibleVault(text: string): AnsibleVaultEnvelope {
  const lines = text.trim().split(/\r?\n/).map((l) => l.trim());
  const header = HEADER.exec(lines[0] ?? '');
  if (!header) throw new AnsibleVaultError('not an Ansible Vault file (the first line is not $ANSIBLE_VAULT;1.x;AES256)');
  const [, version, cipher, label] = header;
  if (cipher !== 'AES256') throw new AnsibleVaultError(`unsupported Ansible Vault cipher ${cipher} (only AES256 exists)`);
  if (version === '1.1' && label !== undefined) throw new AnsibleVaultError('a 1.1 vault header has no vault id');
  const inner = unhex('body', lines.slice(1).join('')).toString('latin1').split('\n');
  if (inner.length !== 3) throw new AnsibleVaultError("the vault's body does not hold salt, HMAC and ciphertext");
  return {
    version: version as '1.1' | '1.2',
    cipher: 'AES256',
    ...(label !== undefined ? { label } : {}),
    salt: unhex('salt', inner[0]!),
    hmac: unhex('HMAC', inner[1]!),
    ciphertext: unhex('ciphertext', inner[2]!),
  };
}

/** Decrypt with one password; AnsibleVaultError when the password does not open it (the HMAC differs). */
export function decryptAnsibleVault(envelope: AnsibleVaultEnvelope, password: string): Buffer {
  const derived = pbkdf2Sync(Buffer.from(password, 'utf8'), envelope.salt, 10000, 80, 'sha256');
  const cipherKey = derived.subarray(0, 32);
  const hmacKey = derived.subarray(32, 64);
  const iv = derived.subarray(64, 80);
  const expected = createHmac('sha256', hmacKey).update(envelope.ciphertext).digest();
  if (envelope.hmac.length !== expected.length || !timingSafeEqual(envelope.hmac, expected))
    throw new AnsibleVaultError('the password does not open this vault (HMAC mismatch)');
  const decipher = createDecipheriv('aes-256-ctr', cipherKey, iv);
  const padded = Buffer.concat([decipher.update(envelope.ciphertext), decipher.final()]);
  const pad = padded[padded.length - 1] ?? 0;
  if (pad < 1 || pad > 16 || pad > padded.length || !padded.subarray(padded.length - pad).every((b) => b === pad))
    throw new AnsibleVaultError("the vault's padding is malformed");
  return padded.subarray(0, padded.length - pad);
}

/** A vault secret as Ansible reads --vault-password-file / --vault-id label@file: the file's text, stripped. */
export interface AnsibleVaultSecret {
  label?: string;
  password: string;
  /** Where it came from, for messages (never the secret). */
  origin: string;
}

/**
 * Try the secrets in order, those whose label matches a 1.2 file's vault id first (as Ansible does); the
 * plaintext of the first that opens it.
 */
export function openAnsibleVault(text: string, secrets: readonly AnsibleVaultSecret[]): Buffer {
  const envelope = parseAnsibleVault(text);
  if (secrets.length === 0) throw new AnsibleVaultError('no vault secret given (--vault-password-file or --vault-id)');
  const ordered = [
    ...secrets.filter((s) => envelope.label !== undefined && s.label === envelope.label),
    ...secrets.filter((s) => !(envelope.label !== undefined && s.label === envelope.label)),
  ];
  for (const secret of ordered) {
    try {
      return decryptAnsibleVault(envelope, secret.password);
    } catch (err) {
      if (!(err instanceof AnsibleVaultError) || !/HMAC/.test(err.message)) throw err;
    }
  }
  const tried = ordered.map((s) => s.origin).join(', ');
  throw new AnsibleVaultError(
    `none of the vault secrets opens it${envelope.label ? ` (its vault id is "${envelope.label}")` : ''}; tried ${tried}`,
  );
}
