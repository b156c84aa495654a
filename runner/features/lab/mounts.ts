/**
 * Mounts the lab made on this machine, read from /proc/self/mountinfo, so `down` can clean what exists even
 * when the state file is missing or stale (a crash between mounting and recording).
 */
import { readFileSync } from 'node:fs';
import { runChecked, run } from './exec.js';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parse /proc/PID/mountinfo text (see proc(5): "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw"). */
export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    entries.push({
      mountPoint: unescapeMountField(fields[4]!),
      fsType: fields[sep + 1]!,
      source: unescapeMountField(fields[sep + 2]!),
    });
  }
  return entries;
}

export function currentMounts(): MountEntry[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function isUnder(path: string, dir: string): boolean {
  const base = dir.endsWith('/') ? dir : dir + '/';
  return path === dir || path.startsWith(base);
}

export function mountsUnder(dir: string, mounts = currentMounts()): MountEntry[] {
  return mounts.filter((m) => isUnder(m.mountPoint, dir));
}

export function isMountPoint(path: string, mounts = currentMounts()): boolean {
  return mounts.some((m) => m.mountPoint === path);
}

/** Unmount everything at or below `dir`, deepest first; a busy mount is detached lazily as a last resort. */
export async function unmountAllUnder(dir: string): Promise<string[]> {
  const done: string[] = [];
  // A path can be mounted over more than once; repeat until nothing is left (bounded).
  for (let round = 0; round < 8; round++) {
    const found = mountsUnder(dir).sort((a, b) => b.mountPoint.length - a.mountPoint.length);
    if (found.length === 0) break;
    for (const m of found) {
      const plain = await run('umount', [m.mountPoint]);
      if (plain.code !== 0) await runChecked('umount', ['--lazy', m.mountPoint], `unmounting ${m.mountPoint}`);
      done.push(m.mountPoint);
    }
  }
  return done;
}
