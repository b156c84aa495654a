/**
 * The age file format as cairn uses it: vault files are age-encrypted YAML, written ASCII-armoured so they
 * diff and commit as text. The cryptography is the `age-encryption` package (by age's author); this file
 * only chooses keys, recognises headers and turns the library's terse failures into messages that name
 * the file and say what to do. Library messages are never passed through verbatim: some of them quote the
 * key they choked on.
 */
import { armor, Decrypter, Encrypter } from 'age-encryption';
import { CairnError, inputError } from '../util/errors.js';

import { ARMOR_BEGIN, BINARY_MAGIC, isAgeEncrypted } from './find.js';

export { ARMOR_BEGIN, BINARY_MAGIC, isAgeEncrypted };

/** age's own default; a passphrase file only protects as well as scrypt makes guessing slow. */
export const DEFAULT_SCRYPT_WORK_FACTOR = 18;
/** The decrypting side (age-encryption, and age itself) refuses anything above 2^20. */
const MAX_SCRYPT_WORK_FACTOR = 20;
/** Below this a passphrase-encrypted vault is cheap to brute-force; the knob exists for tests only. */
const MIN_SCRYPT_WORK_FACTOR = 10;

/** Something that can open vault files, and where it came from (for messages; never the key itself). */
export type VaultKey =
  | { kind: 'identity'; identities: string[]; recipients: string[]; origin: string }
  | { kind: 'passphrase'; passphrase: string; origin: string };

export type IdentityKey = Extract<VaultKey, { kind: 'identity' }>;
export type PassphraseKey = Extract<VaultKey, { kind: 'passphrase' }>;

/** Whom a vault file is encrypted to. */
export type EncryptionTarget =
  { kind: 'passphrase'; passphrase: string } | { kind: 'recipients'; recipients: string[] };

export interface DecryptedVault {
  text: string;
  /** The key that opened the file: edit and rekey encrypt back to it. */
  openedBy: VaultKey;
  /** Stanza types of the header ("X25519", "scrypt"...), one per recipient. */
  stanzas: string[];
}

/**
 * The scrypt work factor for passphrase encryption: age's 18 unless CAIRN_VAULT_SCRYPT_WORK_FACTOR lowers it
 * (each step halves the time a test spends in scrypt; decryption reads the factor from the file itself).
 */
export function scryptWorkFactor(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.CAIRN_VAULT_SCRYPT_WORK_FACTOR;
  if (raw === undefined || raw === '') return DEFAULT_SCRYPT_WORK_FACTOR;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < MIN_SCRYPT_WORK_FACTOR || value > MAX_SCRYPT_WORK_FACTOR) {
    throw new CairnError(
      `CAIRN_VAULT_SCRYPT_WORK_FACTOR must be a whole number from ${MIN_SCRYPT_WORK_FACTOR} to ${MAX_SCRYPT_WORK_FACTOR}, got "${raw}"`,
      { kind: 'options' },
    );
  }
  return value;
}

/** Encrypt YAML text to an armoured age file (ends with a newline). */
export async function encryptText(
  plaintext: string,
  target: EncryptionTarget,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const encrypter = new Encrypter();
  if (target.kind === 'passphrase') {
    if (target.passphrase === '')
      throw new CairnError('refusing to encrypt with an empty passphrase', { kind: 'options' });
    encrypter.setScryptWorkFactor(scryptWorkFactor(env));
    encrypter.setPassphrase(target.passphrase);
  } else {
    const recipients = [...new Set(target.recipients)];
    if (recipients.length === 0) throw new CairnError('no recipient to encrypt to', { kind: 'options' });
    for (const recipient of recipients) {
      try {
        encrypter.addRecipient(recipient);
      } catch {
        throw new CairnError(
          `"${recipient}" is not a valid age recipient (expected age1... from \`cairn vault keygen\` or age-keygen)`,
          { kind: 'options' },
        );
      }
    }
  }
  const binary = await encrypter.encrypt(new TextEncoder().encode(plaintext));
  return armor.encode(binary);
}

/** The binary age file inside `data` (armoured or not), or a CairnError naming the file. */
export function ageBinary(file: string, data: Uint8Array): Uint8Array {
  const head = Buffer.from(data.subarray(0, 64)).toString('latin1');
  if (head.startsWith(BINARY_MAGIC)) return data;
  if (!head.startsWith(ARMOR_BEGIN)) throw inputError('not an age-encrypted vault file (no age header)', { file });
  try {
    return armor.decode(Buffer.from(data).toString('latin1'));
  } catch (err) {
    // Armour errors ("invalid line length", "invalid base64") describe the damage, never the content.
    throw inputError(
      `damaged vault file: its age armour is invalid (${err instanceof Error ? err.message : String(err)})`,
      { file },
    );
  }
}

/** Stanza types of an age header: `-> TYPE args...` lines before the `---` MAC line. */
export function headerStanzas(binary: Uint8Array): string[] {
  const text = Buffer.from(binary.subarray(0, Math.min(binary.length, 64 * 1024))).toString('latin1');
  const end = text.indexOf('\n---');
  const header = end >= 0 ? text.slice(0, end) : text;
  return header
    .split('\n')
    .filter((line) => line.startsWith('-> '))
    .map((line) => line.slice(3).split(' ')[0] ?? '')
    .filter((type) => type !== '' && !type.endsWith('-grease'));
}

function describeKeys(keys: readonly VaultKey[]): string {
  return keys.map((k) => k.origin).join(', ');
}

/** A key of this kind could open a file with these stanzas; other keys are not even tried (scrypt is slow). */
function keyFits(key: VaultKey, stanzas: readonly string[]): boolean {
  const passphraseFile = stanzas.includes('scrypt');
  return key.kind === 'passphrase' ? passphraseFile : !passphraseFile;
}

/**
 * Decrypt one vault file with the first key (in the given order) that opens it. A file no key opens is a
 * CairnError naming the file and every key tried; a file that opens but is damaged says so; the plaintext
 * must be UTF-8 text.
 */
export async function decryptVault(file: string, data: Uint8Array, keys: readonly VaultKey[]): Promise<DecryptedVault> {
  const binary = ageBinary(file, data);
  const stanzas = headerStanzas(binary);
  if (keys.length === 0) {
    throw inputError(
      `this vault file is encrypted and no vault key was given: use --vault-identity FILE, --vault-password-file FILE, or set CAIRN_VAULT_IDENTITY, CAIRN_VAULT_PASSWORD_FILE or CAIRN_VAULT_PASSWORD`,
      { file },
    );
  }
  const candidates = keys.filter((k) => keyFits(k, stanzas));
  if (candidates.length === 0) {
    const wanted = stanzas.includes('scrypt')
      ? 'a passphrase (--vault-password-file or CAIRN_VAULT_PASSWORD)'
      : `an identity (--vault-identity) for one of its ${stanzas.length} recipient${stanzas.length === 1 ? '' : 's'}`;
    throw inputError(
      `the vault key does not open this file: it is encrypted for ${wanted}, and cairn was given ${describeKeys(keys)}`,
      { file },
    );
  }
  for (const key of candidates) {
    const decrypter = new Decrypter();
    if (key.kind === 'passphrase') decrypter.addPassphrase(key.passphrase);
    else for (const identity of key.identities) decrypter.addIdentity(identity);
    let plain: Uint8Array;
    try {
      plain = await decrypter.decrypt(binary);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // The header MAC fails for a wrong scrypt key only by accident; both mean "not this key".
      if (/no identity matched|invalid header HMAC/.test(message)) continue;
      if (/work factor is too high/.test(message))
        throw inputError('this vault file asks for an scrypt work factor above 2^20; refusing to spend that long', {
          file,
        });
      throw inputError(
        `damaged vault file: ${/tag|chunk|stream|payload|truncat|short/i.test(message) ? 'its encrypted content fails authentication (edited or truncated?)' : 'its age header cannot be read'}`,
        { file },
      );
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(plain);
    } catch {
      throw inputError('this vault file decrypts to bytes that are not UTF-8 text; a vault file holds YAML', { file });
    } finally {
      plain.fill(0);
    }
    return { text, openedBy: key, stanzas };
  }
  throw inputError(`the vault key does not open this file (tried ${describeKeys(candidates)})`, { file });
}

/** How many recipients a file is encrypted to, as far as re-encrypting is concerned. */
export function recipientCount(stanzas: readonly string[]): number {
  return stanzas.filter((s) => s !== 'scrypt').length;
}
