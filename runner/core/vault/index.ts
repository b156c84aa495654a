/**
 * Vault files in an inventory, and the file operations `cairn vault` shares.
 *
 * The inventory loader is synchronous and asks a synchronous hook for each encrypted file it meets, but age
 * decryption is asynchronous (WebCrypto for X25519). So `configureVault` works ahead of the loader: it finds
 * every age file the loader can read (the inventory file, everything under group_vars/ and host_vars/ beside
 * it), decrypts them all in memory, and keeps the plaintext keyed by real path together with a SHA-256 of the
 * ciphertext. The hook then only looks up: a file it was not prepared for, or one whose bytes changed since,
 * is a clear error rather than a stale or silent result. Plaintext never leaves memory.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  chmodSync,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CairnError, inputError } from '../util/errors.js';
import { setVaultDecryptor } from '../inventory/index.js';
import { describeFsError, MAX_YAML_BYTES } from '../util/yaml-source.js';
import { decryptVault, isAgeEncrypted, type DecryptedVault, type VaultKey } from './age.js';
import { loadVaultKeys, newIdentity, type VaultKeyOptions } from './keys.js';
import { findInventoryVaultFiles, realPathOf } from './find.js';

export { findInventoryVaultFiles };

export {
  ARMOR_BEGIN,
  decryptVault,
  encryptText,
  isAgeEncrypted,
  recipientCount,
  scryptWorkFactor,
  type DecryptedVault,
  type EncryptionTarget,
  type IdentityKey,
  type PassphraseKey,
  type VaultKey,
} from './age.js';
export {
  encryptionTarget,
  explicitRecipients,
  loadVaultKeys,
  newIdentity,
  readIdentityFile,
  readPasswordFile,
  readRecipientsFile,
  targetOfKey,
  type VaultKeyOptions,
} from './keys.js';

/** The loader refuses vault files above this; so does cairn before spending time decrypting them. */
const MAX_VAULT_FILE_BYTES = 2 * MAX_YAML_BYTES;

interface UnlockedFile {
  /** SHA-256 of the bytes that were decrypted, to notice a file replaced between unlocking and loading. */
  digest: string;
  text: string;
}

/** Plaintext of unlocked vault files, by real path. Lives only in this process's memory. */
const unlocked = new Map<string, UnlockedFile>();

function digestOf(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The hook given to the inventory loader: answers from what configureVault decrypted. */
function decryptFromMemory(file: string, data: Buffer): string {
  const entry = unlocked.get(realPathOf(file));
  if (!entry) {
    throw inputError(
      'this vault file was not unlocked before the inventory was read (cairn unlocks the inventory file and everything under group_vars/ and host_vars/)',
      { file },
    );
  }
  if (entry.digest !== digestOf(data))
    throw inputError('this vault file changed while cairn was reading the inventory; run again', { file });
  return entry.text;
}

/** Read a file that should be a vault file: size-checked, and a CairnError naming it when unreadable. */
export function readVaultBytes(file: string): Buffer {
  let data: Buffer;
  try {
    const size = statSync(file).size;
    if (size > MAX_VAULT_FILE_BYTES)
      throw inputError(`file is ${Math.round(size / 1024)} KiB; too large to be a vault file`, { file });
    data = readFileSync(file);
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw inputError(`cannot read vault file: ${describeFsError(err)}`, { file });
  }
  if (!isAgeEncrypted(data))
    throw inputError('this file is not encrypted (no age header); `cairn vault encrypt` encrypts it', { file });
  return data;
}

/** Read and decrypt one vault file in memory. */
export async function openVaultFile(file: string, keys: readonly VaultKey[]): Promise<DecryptedVault> {
  return decryptVault(file, readVaultBytes(file), keys);
}

/** Decrypt the given files now and let the inventory hook return their plaintext later. */
export async function unlockVaultFiles(files: readonly string[], keys: readonly VaultKey[]): Promise<void> {
  for (const file of files) {
    const data = readVaultBytes(file);
    const { text } = await decryptVault(file, data, keys);
    unlocked.set(realPathOf(file), { digest: digestOf(data), text });
  }
}

export interface VaultSetup {
  /** The encrypted files found and decrypted (in memory). */
  files: string[];
  /** Where the keys came from ("identity file x (--vault-identity)"), for -v output. */
  keyOrigins: string[];
}

/**
 * Prepare an inventory's vault files for `loadInventory`: read the keys (flags, then environment), decrypt
 * every encrypted file of the inventory in memory, and install the loader's hook. Call it, await it, then
 * load the inventory. A file no key opens, or encrypted files and no key, is a CairnError naming the file.
 */
export async function configureVault(
  inventoryPath: string,
  opts: VaultKeyOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<VaultSetup> {
  const keys = await loadVaultKeys(opts, env);
  const files = findInventoryVaultFiles(inventoryPath);
  await unlockVaultFiles(files, keys);
  setVaultDecryptor(decryptFromMemory);
  return { files, keyOrigins: keys.map((k) => k.origin) };
}

/** Forget every decrypted file and remove the loader hook (tests; or once the inventory is loaded). */
export function resetVault(): void {
  unlocked.clear();
  setVaultDecryptor(undefined);
}

export interface AtomicWriteOptions {
  /** File mode of the result (exactly: umask does not apply). */
  mode?: number;
  /** Fail if the target exists instead of replacing it (`create`, `keygen`). */
  exclusive?: boolean;
}

/**
 * Write a local file atomically: a temp file in the same folder, written and fsynced, then renamed over the
 * target (or hard-linked to it, which fails if the target exists, for exclusive creation), then the folder
 * fsynced. Readers see the old file or the whole new one, never a part. A symlinked target is written
 * through: the file it points to is replaced.
 */
export function writeFileAtomic(target: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  let path = target;
  try {
    if (lstatSync(target).isSymbolicLink()) path = realpathSync(target);
  } catch {
    // does not exist yet: written where asked
  }
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.cairn-${randomBytes(6).toString('hex')}.tmp`);
  const mode = opts.mode ?? 0o644;
  let fd: number | undefined;
  try {
    fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    chmodSync(temp, mode);
    if (opts.exclusive) {
      linkSync(temp, path);
      unlinkSync(temp);
    } else {
      renameSync(temp, path);
    }
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // never created, or already renamed
    }
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && opts.exclusive)
      throw inputError('refusing to overwrite: the file exists', { file: target });
    throw inputError(`cannot write file: ${describeFsError(err)}`, { file: target });
  }
  syncDirectory(dir);
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory; the rename is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The mode bits of an existing file, to keep them when it is replaced. */
export function fileMode(file: string, fallback: number): number {
  try {
    return statSync(file).mode & 0o7777;
  } catch {
    return fallback;
  }
}

/** Generate an identity and write it to a new 0600 file (never replacing one: a lost key is lost vaults). */
export async function writeNewIdentityFile(path: string): Promise<string> {
  const { text, recipient } = await newIdentity();
  writeFileAtomic(path, text, { mode: 0o600, exclusive: true });
  return recipient;
}
