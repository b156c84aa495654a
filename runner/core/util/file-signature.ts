import { statSync } from 'node:fs';

/**
 * What identifies one version of a file for a cache kept by path: device, inode, size and both change times
 * in nanoseconds. A file replaced (renamed over), rewritten in place or touched gets a new signature, so a
 * parse kept under the old one is never used again; an unchanged file costs one stat per use.
 * Undefined when nothing is at `path`; other stat errors (EACCES, ELOOP, ...) are thrown for the caller to word.
 */
export function fileSignature(path: string): string | undefined {
  const stat = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (stat === undefined) return undefined;
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeNs}:${stat.ctimeNs}`;
}
