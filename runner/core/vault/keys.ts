/**
 * Where vault keys come from, in this order: an age identity file (`--vault-identity FILE`, else
 * CAIRN_VAULT_IDENTITY), a passphrase file (`--vault-password-file FILE`, else CAIRN_VAULT_PASSWORD_FILE),
 * and the passphrase itself in CAIRN_VAULT_PASSWORD. Decryption tries every key given, in that order;
 * encryption uses `--recipient`/`--recipients-file` when given, else the first key.
 *
 * Key material is read into memory and never echoed: errors name the file and line, not the key.
 */
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { CairnError, inputError } from '../util/errors.js';
import { readKeyFile, readPasswordFile } from './key-file.js';
import type { EncryptionTarget, IdentityKey, VaultKey } from './age.js';

export { readPasswordFile };

/** Options the CLI passes (commander's camelCase names for the flags above). */
export interface VaultKeyOptions {
  vaultIdentity?: string;
  vaultPasswordFile?: string;
  /** `--recipient age1...`, repeatable: encrypt to these instead of the key's own recipient. */
  recipient?: string[];
  /** `--recipients-file FILE`: one age1... per line, # comments, as age's -R. */
  recipientsFile?: string;
}

/** An age identity file: AGE-SECRET-KEY-1... lines, blank lines and # comments (what age-keygen writes). */
export async function readIdentityFile(path: string, origin = `identity file ${path}`): Promise<IdentityKey> {
  const text = readKeyFile(path, 'age identity file');
  const identities: string[] = [];
  const recipients: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!/^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/.test(line)) {
      throw inputError('expected an age identity (AGE-SECRET-KEY-1...), a # comment or a blank line', {
        file: path,
        line: i + 1,
        col: 1,
      });
    }
    try {
      recipients.push(await identityToRecipient(line));
    } catch {
      // The library's message quotes the key; ours does not.
      throw inputError('this age identity is damaged (its checksum or length is wrong)', {
        file: path,
        line: i + 1,
        col: 1,
      });
    }
    identities.push(line);
  }
  if (identities.length === 0)
    throw inputError('no age identity in this file (expected a line AGE-SECRET-KEY-1...)', { file: path });
  return { kind: 'identity', identities, recipients, origin };
}

/** `age1...` recipients, one per line, blank lines and # comments allowed (age's recipients file). */
export function readRecipientsFile(path: string): string[] {
  const text = readKeyFile(path, 'age recipients file');
  const recipients: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!/^age1[0-9a-z]+$/.test(line))
      throw inputError('expected an age recipient (age1...), a # comment or a blank line', {
        file: path,
        line: i + 1,
        col: 1,
      });
    recipients.push(line);
  }
  if (recipients.length === 0)
    throw inputError('no age recipient in this file (expected a line age1...)', { file: path });
  return recipients;
}

/** Every key given by flags and environment, in the documented order (possibly none). */
export async function loadVaultKeys(opts: VaultKeyOptions, env: NodeJS.ProcessEnv = process.env): Promise<VaultKey[]> {
  const keys: VaultKey[] = [];
  const identityFile = opts.vaultIdentity ?? nonEmpty(env.CAIRN_VAULT_IDENTITY);
  if (identityFile !== undefined) {
    const via = opts.vaultIdentity !== undefined ? '--vault-identity' : 'CAIRN_VAULT_IDENTITY';
    keys.push(await readIdentityFile(identityFile, `identity file ${identityFile} (${via})`));
  }
  const passwordFile = opts.vaultPasswordFile ?? nonEmpty(env.CAIRN_VAULT_PASSWORD_FILE);
  if (passwordFile !== undefined) {
    const via = opts.vaultPasswordFile !== undefined ? '--vault-password-file' : 'CAIRN_VAULT_PASSWORD_FILE';
    keys.push(readPasswordFile(passwordFile, `passphrase file ${passwordFile} (${via})`));
  }
  const password = nonEmpty(env.CAIRN_VAULT_PASSWORD);
  if (password !== undefined)
    keys.push({ kind: 'passphrase', passphrase: password, origin: 'the passphrase in CAIRN_VAULT_PASSWORD' });
  return keys;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Recipients named explicitly (`--recipient`, `--recipients-file`), or undefined when there are none. */
export function explicitRecipients(
  recipient: readonly string[] | undefined,
  recipientsFile: string | undefined,
): string[] | undefined {
  const all = [...(recipient ?? [])];
  if (recipientsFile !== undefined) all.push(...readRecipientsFile(recipientsFile));
  for (const r of all) {
    if (!/^age1[0-9a-z]+$/.test(r))
      throw new CairnError(`--recipient "${r}" is not an age recipient (expected age1...)`, { kind: 'options' });
  }
  return all.length ? [...new Set(all)] : undefined;
}

/** What a key encrypts to: its passphrase, or the public recipients of its identities. */
export function targetOfKey(key: VaultKey): EncryptionTarget {
  return key.kind === 'passphrase'
    ? { kind: 'passphrase', passphrase: key.passphrase }
    : { kind: 'recipients', recipients: [...key.recipients] };
}

/** Whom `create` and `encrypt` encrypt to: explicit recipients, else the first key. */
export function encryptionTarget(opts: VaultKeyOptions, keys: readonly VaultKey[]): EncryptionTarget {
  const recipients = explicitRecipients(opts.recipient, opts.recipientsFile);
  if (recipients) return { kind: 'recipients', recipients };
  const first = keys[0];
  if (!first) {
    throw new CairnError(
      'nothing to encrypt to: pass --recipient age1..., --vault-identity FILE or --vault-password-file FILE, or set CAIRN_VAULT_IDENTITY, CAIRN_VAULT_PASSWORD_FILE or CAIRN_VAULT_PASSWORD',
      { kind: 'options' },
    );
  }
  return targetOfKey(first);
}

/** A new identity in age-keygen's file format, and its public recipient. */
export async function newIdentity(now: Date = new Date()): Promise<{ text: string; recipient: string }> {
  const identity = await generateIdentity();
  const recipient = await identityToRecipient(identity);
  return { text: `# created: ${now.toISOString()}\n# public key: ${recipient}\n${identity}\n`, recipient };
}
