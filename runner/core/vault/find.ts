/**
 * Which files of an inventory are age-encrypted, found without loading the age library: a command loads the
 * vault code (./index.ts, age-encryption) only when this finds one or a key is given (issue 17).
 */
import { closeSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { INVENTORY_FILE_NAMES } from '../inventory/index.js';

/** age's armoured and binary headers (the same test the inventory loader makes). */
export const ARMOR_BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----';
export const BINARY_MAGIC = 'age-encryption.org/v1';

/** A file's first bytes say whether it is age (armoured or binary). */
export function isAgeEncrypted(data: Uint8Array): boolean {
  const head = Buffer.from(data.subarray(0, 64)).toString('latin1');
  return head.startsWith(ARMOR_BEGIN) || head.startsWith(BINARY_MAGIC);
}

/** A file's real path (symlinks resolved), or its absolute path when it cannot be resolved. */
export function realPathOf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return resolve(file);
  }
}

/**
 * The age-encrypted files the inventory loader may read for this inventory path: the inventory file itself
 * and any file under group_vars/ and host_vars/ beside it. Missing or odd paths yield nothing: the loader
 * reports them with its own messages.
 */
export function findInventoryVaultFiles(inventoryPath: string): string[] {
  const candidates: string[] = [];
  let baseDir: string;
  if (isDirectory(inventoryPath)) {
    baseDir = inventoryPath;
    candidates.push(...INVENTORY_FILE_NAMES.map((n) => join(inventoryPath, n)).filter(isFile));
  } else if (isFile(inventoryPath)) {
    baseDir = dirname(inventoryPath);
    candidates.push(inventoryPath);
  } else {
    return [];
  }
  const seen = new Set<string>();
  for (const kind of ['group_vars', 'host_vars']) {
    const dir = join(baseDir, kind);
    if (isDirectory(dir)) filesUnder(dir, seen, candidates);
  }
  return candidates.filter(startsWithAgeHeader);
}

function startsWithAgeHeader(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(64);
    return isAgeEncrypted(head.subarray(0, readSync(fd, head, 0, head.length, 0)));
  } catch {
    return false; // unreadable: the loader reports it with its own message
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Every regular file under a folder (symlinks followed once, hidden names skipped as the loader skips them). */
function filesUnder(dir: string, seen: Set<string>, into: string[]): void {
  const real = realPathOf(dir);
  if (seen.has(real)) return;
  seen.add(real);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names.filter((n) => !n.startsWith('.')).sort()) {
    const full = join(dir, name);
    if (isDirectory(full)) filesUnder(full, seen, into);
    else if (isFile(full)) into.push(full);
  }
}
