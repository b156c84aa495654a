/**
 * Reading key and passphrase files, apart from the age library (./keys.ts): a command that is given a vault
 * password file for Ansible Vault values reads it without loading age (issue 17: nothing loaded that a command
 * does not use).
 */
import { readFileSync } from 'node:fs';
import { inputError } from '../util/errors.js';
import { describeFsError } from '../util/yaml-source.js';
import type { PassphraseKey } from './age.js';

/** Key files are small; anything bigger is the wrong file. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

export function readKeyFile(path: string, what: string): string {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw inputError(`cannot read ${what}: ${describeFsError(err)}`, { file: path });
  }
  if (data.length > MAX_KEY_FILE_BYTES)
    throw inputError(`${what} is ${data.length} bytes; expected a small text file`, { file: path });
  if (data.includes(0)) throw inputError(`${what} is binary; expected text`, { file: path });
  return data.toString('utf8');
}

/** A passphrase file: the passphrase on one line; the final line break is not part of it. */
export function readPasswordFile(path: string, origin = `passphrase file ${path}`): PassphraseKey {
  const passphrase = readKeyFile(path, 'vault passphrase file').replace(/\r?\n$/, '');
  if (passphrase === '') throw inputError('the vault passphrase file is empty', { file: path });
  if (/[\r\n]/.test(passphrase))
    throw inputError('the vault passphrase file must hold the passphrase on a single line', { file: path });
  return { kind: 'passphrase', passphrase, origin };
}
