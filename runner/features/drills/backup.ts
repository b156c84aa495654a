/**
 * The backup area's drill, document 004's backup acceptance ("back up, delete, restore, and the restored
 * system works"), timed against document 001's RTO (≤ 15 min):
 *
 * - restore: on one backup client, write a marker tree (files of random content and size, nested folders,
 *   names with spaces and non-ASCII letters, an empty file, a symlink, several modes) into the role's drill
 *   folder (always among the backed-up folders), back it up with `borgmatic create`, delete it, restore it
 *   with `borgmatic extract` from that archive (checked to be the newest), and compare a manifest of the
 *   tree before and after: path, type, mode, size, SHA-256 of every file, symlink targets. The restored tree
 *   must match byte for byte. The tree is removed at the end (the archive stays, and is pruned as usual).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { posix } from 'node:path';
import { CairnError, inputError } from '../../core/util/errors.js';
import { argv, quote } from '../../core/transport/quote.js';
import { isPlainObject, type Vars } from '../../core/util/vars.js';
import { registerDrill } from './registry.js';
import type { DrillContext, DrillOutcome } from './types.js';
import { hostSettings as roleSettings } from './settings.js';

// ---------------------------------------------------------------------------------------------------------
// The manifest: what "the same tree" means (pure parts table-tested in test/unit/backup-drill.test.ts)
// ---------------------------------------------------------------------------------------------------------

/** One entry of a tree: a file (with its SHA-256), a folder or a symlink (with its target). */
export interface ManifestEntry {
  path: string;
  type: 'file' | 'dir' | 'link' | 'other';
  mode: string;
  size: number;
  sha256?: string;
  target?: string;
}

/**
 * The manifest program, run with python3 on the host (borgmatic needs python3, so it is there): walks the
 * tree given as argv[1] without following symlinks and prints one JSON object per entry, sorted by path
 * (relative to the tree's parent, so the tree's own name is part of every path).
 */
export const MANIFEST_PROGRAM = String.raw`
import hashlib, json, os, stat, sys
root = sys.argv[1]
base = os.path.dirname(root.rstrip('/'))
out = []
def entry(path):
    st = os.lstat(path)
    rel = os.path.relpath(path, base)
    e = {'path': rel, 'mode': '%04o' % stat.S_IMODE(st.st_mode), 'size': st.st_size}
    if stat.S_ISLNK(st.st_mode):
        e.update(type='link', target=os.readlink(path), size=0)
    elif stat.S_ISDIR(st.st_mode):
        e.update(type='dir', size=0)
    elif stat.S_ISREG(st.st_mode):
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                h.update(block)
        e.update(type='file', sha256=h.hexdigest())
    else:
        e.update(type='other')
    out.append(e)
if not os.path.lexists(root):
    sys.exit(3)
entry(root)
for d, dirs, files in os.walk(root):
    for name in dirs + files:
        entry(os.path.join(d, name))
for e in sorted(out, key=lambda e: e['path']):
    print(json.dumps(e, ensure_ascii=False, sort_keys=True))
`;

/** The manifest program's output. Throws an Error on a line that is not a manifest entry. */
export function parseManifest(text: string): ManifestEntry[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((line, i) => {
      let data: unknown;
      try {
        data = JSON.parse(line);
      } catch {
        throw new Error(`manifest line ${i + 1} is not JSON: ${JSON.stringify(line.slice(0, 120))}`);
      }
      if (
        !isPlainObject(data) ||
        typeof data.path !== 'string' ||
        typeof data.type !== 'string' ||
        typeof data.mode !== 'string' ||
        typeof data.size !== 'number'
      ) {
        throw new Error(`manifest line ${i + 1} is not an entry (path, type, mode, size): ${line.slice(0, 120)}`);
      }
      const type = ['file', 'dir', 'link'].includes(data.type) ? (data.type as ManifestEntry['type']) : 'other';
      const e: ManifestEntry = { path: data.path, type, mode: data.mode, size: data.size };
      if (typeof data.sha256 === 'string') e.sha256 = data.sha256;
      if (typeof data.target === 'string') e.target = data.target;
      return e;
    });
}

/** Every difference between two manifests, in words ("missing: a/b", "a/c: sha256 1f2e… -> 9a8b…"). */
export function compareManifests(before: ManifestEntry[], after: ManifestEntry[]): string[] {
  const differences: string[] = [];
  const afterByPath = new Map(after.map((e) => [e.path, e]));
  const beforePaths = new Set(before.map((e) => e.path));
  for (const b of before) {
    const a = afterByPath.get(b.path);
    if (!a) {
      differences.push(`missing: ${b.path}`);
      continue;
    }
    for (const key of ['type', 'mode', 'size', 'sha256', 'target'] as const) {
      if (b[key] !== a[key]) differences.push(`${b.path}: ${key} ${String(b[key] ?? '-')} -> ${String(a[key] ?? '-')}`);
    }
  }
  for (const a of after) if (!beforePaths.has(a.path)) differences.push(`unexpected: ${a.path}`);
  return differences;
}

/** A marker file: where (relative to the tree), how many random bytes, which mode. */
export interface MarkerFile {
  path: string;
  bytes: number;
  mode: string;
}

/**
 * A marker tree of `count` files (at least the fixed edge cases) with random sizes up to `maxBytes`:
 * nested folders, a name with spaces, one with non-ASCII letters, an empty file, a one-byte file, modes
 * 0600/0640/0644/0755. Randomness comes from `pick(n)` (0..n-1), so tests can make it predictable.
 */
export function planMarkerTree(count: number, maxBytes: number, pick: (n: number) => number): MarkerFile[] {
  const folders = ['', 'etc', 'etc/conf.d', 'data', 'data/with space', 'data/ünïcødé', 'data/deep/er/still'];
  const modes = ['0644', '0600', '0640', '0755'];
  const files: MarkerFile[] = [
    { path: 'empty', bytes: 0, mode: '0644' },
    { path: 'one-byte', bytes: 1, mode: '0600' },
    { path: 'data/with space/name with spaces.txt', bytes: 1 + pick(maxBytes), mode: '0640' },
    { path: 'data/ünïcødé/fïlé.bin', bytes: 1 + pick(maxBytes), mode: '0644' },
  ];
  for (let i = files.length; i < count; i++) {
    const folder = folders[pick(folders.length)]!;
    files.push({
      path: posix.join(folder, `file-${i}.bin`),
      bytes: pick(maxBytes + 1),
      mode: modes[pick(modes.length)]!,
    });
  }
  return files;
}

/** The shell script that writes the tree under `root` (which must not exist yet) from /dev/urandom. */
export function markerTreeScript(root: string, files: MarkerFile[]): string {
  const lines = ['set -e', 'umask 022', `test ! -e ${quote(root)}`, `mkdir -p ${quote(root)}`];
  const dirs = new Set<string>();
  for (const f of files) {
    const dir = posix.dirname(f.path);
    if (dir !== '.' && !dirs.has(dir)) {
      dirs.add(dir);
      lines.push(`mkdir -p ${quote(posix.join(root, dir))}`);
    }
  }
  for (const f of files) {
    const path = posix.join(root, f.path);
    lines.push(`head -c ${f.bytes} /dev/urandom > ${quote(path)}`, `chmod ${f.mode} ${quote(path)}`);
  }
  // A symlink (restored as a symlink, not as a copy of its target) and a private folder.
  lines.push(`ln -s ${quote('data/ünïcødé/fïlé.bin')} ${quote(posix.join(root, 'link-to-unicode'))}`);
  lines.push(`chmod 0700 ${quote(posix.join(root, 'etc'))}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Settings: the backup role's defaults under the inventory's values
// ---------------------------------------------------------------------------------------------------------

function hostSettings(ctx: DrillContext, host: string): Vars {
  return roleSettings(ctx, host, 'backup');
}

function positiveInt(ctx: DrillContext, name: string, fallback: number, max: number): number {
  const text = ctx.options[name];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw inputError(`--set ${name}=${text}: expected a whole number from 1 to ${max}`);
  return value;
}

async function run(
  ctx: DrillContext,
  host: string,
  what: string,
  script: string,
  opts: { stdin?: string; timeoutMs?: number } = {},
): Promise<string> {
  const res = await ctx.exec(host, script, {
    timeoutMs: opts.timeoutMs ?? 15 * 60_000,
    ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
  });
  if (res.code !== 0) {
    const output = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-15).join('\n');
    throw new CairnError(
      `host ${host}: ${what} failed (exit ${res.code}${res.timedOut ? ', timed out' : ''}): ${output}`,
      { kind: 'runtime' },
    );
  }
  return res.stdout;
}

async function manifestOf(ctx: DrillContext, host: string, tree: string): Promise<ManifestEntry[]> {
  return parseManifest(
    await run(ctx, host, `reading the manifest of ${tree}`, argv('python3', '-', tree), {
      stdin: MANIFEST_PROGRAM,
      timeoutMs: 5 * 60_000,
    }),
  );
}

/** `borgmatic create --json`'s archive name (borgmatic 1.7 prints Borg's JSON, one object per repository). */
export function createdArchiveName(stdout: string): string {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch {
    throw new Error(`borgmatic create --json did not print JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  const first: unknown = Array.isArray(data) ? data[0] : data;
  const archive = isPlainObject(first) && isPlainObject(first.archive) ? first.archive : undefined;
  if (!archive || typeof archive.name !== 'string') throw new Error('borgmatic create --json printed no archive name');
  return archive.name;
}

const RTO_S = 15 * 60;

registerDrill({
  name: 'restore',
  summary:
    'back up a marker tree of random files on a backup client, delete it, restore it from the newest archive, compare every byte',
  options: {
    host: 'the backup client (default: the first host with backup_client: true)',
    files: 'how many marker files (default 40, at most 5000)',
    max_kib: 'largest marker file in KiB (default 512)',
    keep: '"yes" leaves the restored tree in place for inspection',
  },
  async run(ctx): Promise<DrillOutcome> {
    const clients = [...ctx.inventory.hosts.keys()].filter((h) => hostSettings(ctx, h).backup_client === true);
    const host = ctx.options.host ?? clients[0];
    if (host === undefined)
      throw inputError('no host has backup_client: true; apply playbooks/backup.yaml, or pass --set host=NAME');
    if (!ctx.inventory.hosts.has(host)) throw inputError(`--set host=${host}: no such host in the inventory`);
    if (!clients.includes(host))
      throw inputError(`--set host=${host}: not a backup client (backup_client is not true)`);
    const drillDir = String(hostSettings(ctx, host).backup_drill_directory);
    if (!/^\/[^\s'"\\]+$/.test(drillDir) || drillDir === '/')
      throw inputError(
        `host ${host}: backup_drill_directory must be an absolute path, got ${JSON.stringify(drillDir)}`,
      );
    const count = Math.max(4, positiveInt(ctx, 'files', 40, 5000));
    const maxBytes = positiveInt(ctx, 'max_kib', 512, 1024 * 1024) * 1024;
    const keep = ctx.options.keep === 'yes';

    const id = `drill-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(3).toString('hex')}`;
    const tree = posix.join(drillDir, id);
    const target = `restored tree identical to the backed-up one (path, type, mode, size, SHA-256 of every file, symlink targets), restored from the newest archive; backup + restore ≤ ${RTO_S / 60} min (document 001: RTO ≤ 15 min)`;
    const measured: Record<string, number | string> = { host, tree };

    await run(
      ctx,
      host,
      'checking borgmatic and the drill folder',
      `command -v borgmatic >/dev/null && test -d ${quote(drillDir)} || { echo "borgmatic or ${drillDir} is missing: apply playbooks/backup.yaml first" >&2; exit 1; }`,
    );
    const files = planMarkerTree(count, maxBytes, (n) => randomInt(n));
    let created = false;
    try {
      ctx.log(`writing ${files.length} marker files under ${tree} on ${host}`);
      created = true;
      await run(ctx, host, 'writing the marker tree', markerTreeScript(tree, files));
      const before = await manifestOf(ctx, host, tree);
      measured.entries = before.length;
      measured.bytes = before.reduce((sum, e) => sum + (e.type === 'file' ? e.size : 0), 0);

      const started = performance.now();
      ctx.log('backing up (borgmatic create)');
      const archive = createdArchiveName(await run(ctx, host, 'borgmatic create', 'borgmatic create --json'));
      const backupS = (performance.now() - started) / 1000;
      measured.archive = archive;
      measured.backup_s = Math.round(backupS * 10) / 10;

      ctx.log(`deleting ${tree}`);
      await run(ctx, host, 'deleting the marker tree', `rm -rf -- ${quote(tree)} && test ! -e ${quote(tree)}`);

      const newest =
        /^newest=(.*)$/m.exec(
          await run(ctx, host, 'finding the newest archive', '/usr/local/lib/cairn/cairn-backup-status.py'),
        )?.[1] ?? '';
      measured.newest_archive = newest;
      if (newest !== archive)
        return {
          passed: false,
          measured,
          target,
          msg: `the newest archive is ${newest || 'none'}, not the drill's ${archive}: something else backed up in between; run the drill again`,
        };

      const restoreStarted = performance.now();
      ctx.log(`restoring ${tree} from ${archive} (borgmatic extract)`);
      await run(
        ctx,
        host,
        'borgmatic extract',
        argv('borgmatic', 'extract', '--archive', archive, '--path', tree.replace(/^\/+/, ''), '--destination', '/'),
      );
      const restoreS = (performance.now() - restoreStarted) / 1000;
      measured.restore_s = Math.round(restoreS * 10) / 10;

      const after = await manifestOf(ctx, host, tree);
      const differences = compareManifests(before, after);
      measured.differences = differences.length;
      measured.total_s = Math.round((backupS + restoreS) * 10) / 10;
      if (differences.length)
        return {
          passed: false,
          measured,
          target,
          msg: `the restored tree differs: ${differences.slice(0, 10).join('; ')}${differences.length > 10 ? `; … (${differences.length} in all)` : ''}`,
        };
      if (backupS + restoreS > RTO_S)
        return {
          passed: false,
          measured,
          target,
          msg: `backup and restore took ${measured.total_s} s, over ${RTO_S} s`,
        };
      return {
        passed: true,
        measured,
        target,
        msg: `${before.length} entries (${measured.bytes} bytes) backed up in ${measured.backup_s} s, deleted, restored from ${archive} in ${measured.restore_s} s: identical`,
      };
    } finally {
      if (created && !keep) {
        const res = await ctx.exec(host, `rm -rf -- ${quote(tree)}`, { timeoutMs: 120_000 });
        if (res.code !== 0) ctx.log(`could not remove ${tree}: ${res.stderr.trim()}`);
      }
    }
  },
});
