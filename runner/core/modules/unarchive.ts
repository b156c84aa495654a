/**
 * unarchive: unpack a tar (plain, gz, bz2, xz, zst: GNU tar reads the compression from the file) or zip
 * archive into an existing directory, as Ansible's ansible.builtin.unarchive (lib/ansible/modules/unarchive.py
 * and its action plugin; docs: docs.ansible.com/ansible/latest/collections/ansible/builtin/unarchive_module.html).
 * The archive comes from the controller (`src` found like copy's, uploaded) or is already on the host
 * (`remote_src: true`).
 *
 * Whether anything would change is Ansible's question ("is the archive's content already at dest?": tar
 * --diff for tar, a per-member zipinfo comparison for zip), answered here one way for every format, so that
 * check predicts apply exactly: check unpacks the archive, with the very options apply will use (extra_opts,
 * exclude, include), into a private staging directory on the host and compares each unpacked entry with
 * dest: missing, another type, other content (cmp), another mtime (regular files), another link target, and
 * (like Ansible) the archive's mode unless `mode` is given and the archive's owner/group when running as root
 * unless `owner`/`group` are given. Entries in dest that are not in the archive are neither touched nor
 * compared (Ansible's notes say the same). If any entry differs, apply unpacks into dest and then sets every
 * unpacked entry to the attributes check planned, so a second run finds nothing to do. If none differs but
 * `owner`/`group`/`mode` do, apply sets only those (Ansible's set_fs_attributes_if_different on each file).
 *
 * The host's answers (entry names, types, modes) travel in framed sections and are validated; names with a
 * `..` component or an absolute path are refused. An uploaded archive goes to a mktemp file (0600) that the
 * script's trap removes, in check as in apply; the staging directory is removed the same way.
 *
 * Not supported (refused at the task): `src` as a URL with remote_src (Ansible downloads it; use get_url
 * first), `keep_newer`, and `decrypt` of vault-encrypted archives.
 */
import { readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { quote } from '../transport/quote.js';
import {
  argError,
  attributeSchema,
  parseModeArg,
  targetMode,
  validateAttributeArgs,
  type AttributeArgs,
} from './attributes.js';
import {
  failureText,
  fileProbeScript,
  parseFileProbe,
  parseSectionBytes,
  ProbeError,
  runScript,
  section,
  type FileProbe,
} from './remote.js';
import type { Module, ModuleContext, ModuleResult, Planned } from './types.js';

export interface UnarchiveArgs extends AttributeArgs {
  src: string;
  dest: string;
  remote_src?: boolean;
  /** Deprecated inverse of remote_src (Ansible keeps it; mutually exclusive with remote_src). */
  copy?: boolean;
  creates?: string;
  list_files?: boolean;
  exclude?: string[];
  include?: string[];
  extra_opts?: string[];
  /** Accepted for Ansible's sake: cmp reads in its own buffer size. */
  io_buffer_size?: number;
  /** Only for a URL src, which cairn refuses; accepted so roles that set it load. */
  validate_certs?: boolean;
}

export type ArchiveKind = 'zip' | 'tar';

/** One entry of an unpacked tree, as `find -printf` reports it (in staging or in dest). */
export interface TreeEntry {
  /** Relative to the tree's top, without "./". */
  path: string;
  /** find's %y: f, d, l, p, s, b, c. */
  type: string;
  mode: string;
  uid: number;
  gid: number;
  owner: string;
  group: string;
  mtime: string;
  linkTarget: string;
}

export interface UnarchiveState {
  kind: ArchiveKind;
  dest: string;
  /** The archive on the host (remote_src), or undefined when it is uploaded from `upload`. */
  remoteSrc?: string;
  upload?: Buffer;
  extract: boolean;
  /** After unpacking (or instead of it): each entry's final owner/group/mode, where one is to be set. */
  chown: Array<{ owner: string; paths: string[] }>;
  chmod: Array<{ mode: string; paths: string[] }>;
  args: UnarchiveArgs;
}

const FIELDS_PER_ENTRY = 9;
/** find -printf format: path, type, mode, uid, gid, owner, group, mtime (seconds), link target; NUL after each. */
const FIND_FORMAT = '%p\\0%y\\0%m\\0%U\\0%G\\0%u\\0%g\\0%Ts\\0%l\\0';

/** A relative member path the host reported: refused when it could leave the tree. */
function safeRelative(what: string, path: string): string {
  if (!path.startsWith('./')) throw new ProbeError(`the host reported ${what} ${JSON.stringify(path)}`);
  const rel = path.slice(2);
  if (rel === '' || rel.startsWith('/') || rel.split('/').some((part) => part === '..' || part === ''))
    throw new ProbeError(`the host reported an entry ${JSON.stringify(rel)} that is not a path inside the archive`);
  return rel;
}

/** Parse `find -printf FIND_FORMAT` output (validated: a field that is not what find prints is refused). */
export function parseTree(what: string, bytes: Buffer | undefined): Map<string, TreeEntry> {
  const entries = new Map<string, TreeEntry>();
  if (bytes === undefined || bytes.length === 0) return entries;
  const fields = bytes.toString('utf8').split('\0');
  if (fields.pop() !== '' || fields.length % FIELDS_PER_ENTRY !== 0)
    throw new ProbeError(`the host's listing of ${what} is malformed; refusing to read it`);
  for (let i = 0; i < fields.length; i += FIELDS_PER_ENTRY) {
    const [path, type, mode, uid, gid, owner, group, mtime, linkTarget] = fields.slice(i, i + FIELDS_PER_ENTRY) as [
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const rel = safeRelative(`an entry of ${what}`, path);
    if (
      !/^[fdlpsbcD]$/.test(type) ||
      !/^[0-7]{1,4}$/.test(mode) ||
      !/^\d{1,10}$/.test(uid) ||
      !/^\d{1,10}$/.test(gid) ||
      !/^-?\d{1,15}$/.test(mtime)
    )
      throw new ProbeError(`the host's listing of ${what} has a malformed entry for ${JSON.stringify(rel)}`);
    if (entries.has(rel)) throw new ProbeError(`the host's listing of ${what} names ${JSON.stringify(rel)} twice`);
    entries.set(rel, {
      path: rel,
      type,
      mode: mode.padStart(4, '0'),
      uid: Number(uid),
      gid: Number(gid),
      owner,
      group,
      mtime,
      linkTarget,
    });
  }
  return entries;
}

/** NUL-terminated relative paths ("./a\0./b\0"), as the content comparison prints them. */
export function parsePathList(what: string, bytes: Buffer | undefined): Set<string> {
  const out = new Set<string>();
  if (bytes === undefined || bytes.length === 0) return out;
  const parts = bytes.toString('utf8').split('\0');
  if (parts.pop() !== '') throw new ProbeError(`the host's list of ${what} is malformed`);
  for (const part of parts) out.add(safeRelative(what, part));
  return out;
}

/** GNU tar's --quoting-style=escape names back to text (\\, \n, \t, \ooo...), as Ansible's escape_decode. */
export function decodeTarName(name: string): string {
  const simple: Record<string, string> = {
    '\\': '\\',
    n: '\n',
    t: '\t',
    r: '\r',
    a: '\x07',
    b: '\b',
    f: '\f',
    v: '\v',
  };
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    if (ch === '\\' && i + 1 < name.length) {
      const octal = /^[0-7]{3}/.exec(name.slice(i + 1));
      if (octal) {
        bytes.push(parseInt(octal[0], 8));
        i += 3;
        continue;
      }
      const esc = simple[name[i + 1]!];
      if (esc !== undefined) {
        bytes.push(...Buffer.from(esc));
        i += 1;
        continue;
      }
    }
    bytes.push(...Buffer.from(ch));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The shell command (words quoted) that unpacks "$t" into the directory held by shell variable `dir`. */
export function extractCommand(kind: ArchiveKind, args: UnarchiveArgs, dir: string): string {
  const opts = (args.extra_opts ?? []).map(quote);
  if (kind === 'tar') {
    // As Ansible: tar --extract -C dest [--show-transformed-names opts] [--exclude=..] -f src [members].
    const words = ['tar', '--extract', '-C', dir];
    if (opts.length) words.push('--show-transformed-names', ...opts);
    for (const pattern of args.exclude ?? []) words.push(quote(`--exclude=${pattern.replace(/\/+$/, '')}`));
    words.push('-f', '"$t"');
    if (args.include?.length) words.push('--', ...args.include.map(quote));
    return words.join(' ');
  }
  // As Ansible: unzip -o [opts] src [-x excludes] [includes] -d dest. "$t" is an absolute path (mktemp, or
  // remote src, which the schema requires absolute), so it can never read as an option; unzip has no `--`.
  const words = ['unzip', '-o', ...opts, '"$t"'];
  if (args.include?.length) words.push(...args.include.map(quote));
  if (args.exclude?.length) words.push('-x', ...args.exclude.map(quote));
  words.push('-d', dir);
  return words.join(' ');
}

/** Ansible's listing for `files`: tar --list (transformed names) or the zip's member names. */
function listCommand(kind: ArchiveKind, args: UnarchiveArgs): string {
  const opts = (args.extra_opts ?? []).map(quote);
  if (kind === 'tar') {
    const words = ['tar', '--list', '--quoting-style=escape'];
    if (opts.length) words.push('--show-transformed-names', ...opts);
    for (const pattern of args.exclude ?? []) words.push(quote(`--exclude=${pattern.replace(/\/+$/, '')}`));
    words.push('-f', '"$t"');
    if (args.include?.length) words.push('--', ...args.include.map(quote));
    return words.join(' ');
  }
  const words = ['unzip', '-Z1', '"$t"'];
  if (args.include?.length) words.push(...args.include.map(quote));
  if (args.exclude?.length) words.push('-x', ...args.exclude.map(quote));
  return words.join(' ');
}

/** Shell that puts the archive at "$t": a mktemp file filled from stdin (checked for length), or the host's src. */
function archiveSource(remoteSrc: string | undefined, uploadBytes: number | undefined): string[] {
  const lines = [
    `t=''; s=''; up=''`,
    `trap 'if [ -n "$up" ]; then rm -f -- "$up"; fi; if [ -n "$s" ]; then rm -rf -- "$s"; fi' EXIT`,
    `trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`,
  ];
  if (remoteSrc !== undefined) {
    lines.push(
      `t=${quote(remoteSrc)}`,
      `if [ ! -e "$t" ]; then printf '%s\\n' ${quote(`Source '${remoteSrc}' does not exist`)} >&2; exit 3; fi`,
      `if [ ! -r "$t" ]; then printf '%s\\n' ${quote(`Source '${remoteSrc}' not readable`)} >&2; exit 3; fi`,
      `if [ ! -s "$t" ]; then printf '%s\\n' ${quote(`Invalid archive '${remoteSrc}', the file is 0 bytes`)} >&2; exit 3; fi`,
    );
  } else {
    // mktemp creates the file 0600 and exclusively; the archive arrives on stdin and must arrive whole.
    lines.push(
      `up=$(mktemp) || exit 3`,
      `t=$up`,
      `cat > "$t" || exit 3`,
      `if [ "$(wc -c < "$t")" -ne ${uploadBytes ?? 0} ]; then echo 'the archive arrived incomplete' >&2; exit 3; fi`,
    );
  }
  return lines;
}

const HANDLER_NAMES: Record<string, string> = {
  zip: 'ZipArchive',
  gzip: 'TgzArchive',
  bzip2: 'TarBzipArchive',
  xz: 'TarXzArchive',
  zstd: 'TarZstdArchive',
  tar: 'TarArchive',
};

/** Ansible's handler class name from the archive's first bytes (for the `handler` return value). */
export function handlerName(kind: ArchiveKind, magic: Buffer): string {
  if (kind === 'zip') return HANDLER_NAMES.zip!;
  if (magic[0] === 0x1f && magic[1] === 0x8b) return HANDLER_NAMES.gzip!;
  if (magic.subarray(0, 3).toString('latin1') === 'BZh') return HANDLER_NAMES.bzip2!;
  if (magic.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return HANDLER_NAMES.xz!;
  if (magic.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return HANDLER_NAMES.zstd!;
  return HANDLER_NAMES.tar!;
}

/** The check script: archive in place, handler, staging unpack, both trees, content differences, dest. */
function checkScript(args: UnarchiveArgs, remoteSrc: string | undefined, uploadBytes: number | undefined): string {
  const dest = args.dest;
  const reasons = `Failed to find handler for "${remoteSrc ?? args.src}". Make sure the required command to extract the file is installed.`;
  const lines = [
    ...archiveSource(remoteSrc, uploadBytes),
    // Ansible tries unzip first, then GNU tar (which reads gz/bz2/xz/zst itself, given the tool).
    `k=''`,
    `if command -v unzip >/dev/null 2>&1 && unzip -l "$t" >/dev/null 2>&1; then k=zip`,
    `elif tar --version 2>/dev/null | head -n1 | grep -q GNU && tar --list -f "$t" >/dev/null 2>/dev/null; then k=tar`,
    `else printf '%s\\n' ${quote(reasons)} >&2; tar --list -f "$t" 2>&1 >/dev/null | tail -n 3 >&2; exit 4; fi`,
    section('kind', 'printf %s "$k"'),
    section('magic', 'head -c 6 -- "$t"'),
    section('uid', 'id -u'),
    `s=$(mktemp -d) || exit 3`,
    `if [ "$k" = zip ]; then ${extractCommand('zip', args, '"$s"')} >/dev/null || exit 5`,
    `else ${extractCommand('tar', args, '"$s"')} >/dev/null || exit 5; fi`,
    section('staged', `cd "$s" && find . -mindepth 1 -printf '${FIND_FORMAT}'`),
    // dest may be a link to a folder (Ansible's os.path.isdir follows it).
    fileProbeScript('dest', dest, { checksum: false, follow: true }),
    `if [ -d ${quote(dest)} ]; then`,
    section(
      'present',
      `cd "$s" && find . -mindepth 1 -print0 | (cd ${quote(dest)} && xargs -0r sh -c 'find "$@" -maxdepth 0 -printf "$0"' '${FIND_FORMAT}' 2>/dev/null)`,
    ),
    section(
      'differ',
      `cd "$s" && find . -type f -exec sh -c 'for f; do cmp -s -- "$f" "$0/$f" || printf "%s\\0" "$f"; done' ${quote(dest)} {} +`,
    ),
    'fi',
  ];
  if (args.list_files) {
    lines.push(
      `if [ "$k" = zip ]; then`,
      section('files', listCommand('zip', args)),
      'else',
      section('files', listCommand('tar', args)),
      'fi',
    );
  }
  return lines.join('\n');
}

interface EntryPlan {
  /** Why the archive must be unpacked again, per entry ("missing", "content differs", ...). */
  reasons: Array<{ path: string; why: string }>;
  chown: Map<string, string[]>;
  chmod: Map<string, string[]>;
  /** Entries whose owner/group/mode alone change (no unpack). */
  attributeEntries: string[];
  attributeWords: Set<string>;
}

/** Compare the staged tree with dest and plan the unpack and the attributes (pure; table-tested). */
export function planEntries(
  staged: Map<string, TreeEntry>,
  present: Map<string, TreeEntry>,
  contentDiffers: Set<string>,
  args: Pick<UnarchiveArgs, 'owner' | 'group' | 'mode'>,
  root: boolean,
  umask: number,
): EntryPlan {
  const reasons: EntryPlan['reasons'] = [];
  // In path order (bytewise), so actions name entries the same way whatever order the archive holds them in.
  const ordered = [...staged.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const entry of ordered) {
    const there = present.get(entry.path);
    let why: string | undefined;
    if (!there) why = 'missing';
    else if (there.type !== entry.type) why = 'another type';
    else if (entry.type === 'f' && contentDiffers.has(entry.path)) why = 'content differs';
    else if (entry.type === 'f' && there.mtime !== entry.mtime) why = 'mtime differs';
    else if (entry.type === 'l' && there.linkTarget !== entry.linkTarget) why = 'symlink differs';
    else if (args.mode === undefined && entry.type !== 'l' && there.mode !== entry.mode) why = 'mode differs';
    else if (root && args.owner === undefined && there.uid !== entry.uid) why = 'owner differs';
    else if (root && args.group === undefined && there.gid !== entry.gid) why = 'group differs';
    if (why) reasons.push({ path: entry.path, why });
  }
  const extract = reasons.length > 0;
  const modeSpec = args.mode !== undefined ? parseModeArg(args.mode) : undefined;
  const chown = new Map<string, string[]>();
  const chmod = new Map<string, string[]>();
  const attributeEntries: string[] = [];
  const attributeWords = new Set<string>();
  const add = (map: Map<string, string[]>, key: string, path: string): void => {
    const list = map.get(key) ?? [];
    list.push(path);
    map.set(key, list);
  };
  for (const entry of ordered) {
    // After an unpack the entry is what staging shows; without one it is what dest holds (same content).
    const now = extract ? entry : present.get(entry.path)!;
    let ownerTo: string | undefined;
    let groupTo: string | undefined;
    let modeTo: string | undefined;
    if (extract) {
      // Every unpacked entry is set to its planned final attributes: unzip does not reset an existing
      // directory's mode, tar does not chown as a user; this makes the second run find dest as planned.
      ownerTo = args.owner ?? (root ? String(entry.uid) : undefined);
      groupTo = args.group ?? (root ? String(entry.gid) : undefined);
      if (entry.type !== 'l')
        modeTo = modeSpec ? targetMode(modeSpec, entry.mode, entry.type === 'd', umask) : entry.mode;
    } else {
      const sameId = (wanted: string, name: string, id: number): boolean =>
        wanted === name || (/^\d+$/.test(wanted) && Number(wanted) === id);
      if (args.owner !== undefined && !sameId(args.owner, now.owner, now.uid)) {
        ownerTo = args.owner;
        attributeWords.add(`owner ${args.owner}`);
      }
      if (args.group !== undefined && !sameId(args.group, now.group, now.gid)) {
        groupTo = args.group;
        attributeWords.add(`group ${args.group}`);
      }
      if (modeSpec && entry.type !== 'l') {
        const wanted = targetMode(modeSpec, now.mode, entry.type === 'd', umask);
        if (wanted !== now.mode) {
          modeTo = wanted;
          attributeWords.add(`mode ${wanted}`);
        }
      }
      if (ownerTo !== undefined || groupTo !== undefined || modeTo !== undefined) attributeEntries.push(entry.path);
    }
    // "owner:" alone would also set the owner's login group: only name the parts that are set.
    if (ownerTo !== undefined || groupTo !== undefined)
      add(chown, groupTo === undefined ? ownerTo! : `${ownerTo ?? ''}:${groupTo}`, entry.path);
    if (modeTo !== undefined) add(chmod, modeTo, entry.path);
  }
  return { reasons, chown, chmod, attributeEntries, attributeWords };
}

function namesText(paths: string[]): string {
  const shown = paths.slice(0, 8).join(', ');
  return paths.length > 8 ? `${shown} and ${paths.length - 8} more` : shown;
}

function failed(msg: string): Planned<UnarchiveState> {
  return { changed: false, actions: [], failed: msg };
}

/** Commands setting owner/group/mode on entries under dest, in chunks that stay far below ARG_MAX. */
function attributeCommands(dest: string, state: Pick<UnarchiveState, 'chown' | 'chmod'>): string[] {
  const commands: string[] = [];
  const chunks = (paths: string[]): string[][] => {
    const out: string[][] = [];
    for (let i = 0; i < paths.length; i += 200) out.push(paths.slice(i, i + 200));
    return out;
  };
  for (const { owner, paths } of state.chown)
    for (const chunk of chunks(paths))
      commands.push(`chown -h -- ${quote(owner)} ${chunk.map((p) => quote(posix.join(dest, p))).join(' ')}`);
  for (const { mode, paths } of state.chmod)
    for (const chunk of chunks(paths))
      commands.push(`chmod -- ${quote(mode)} ${chunk.map((p) => quote(posix.join(dest, p))).join(' ')}`);
  return commands;
}

function localArchive(ctx: ModuleContext, src: string): Buffer {
  const path = ctx.findLocalFile('files', src);
  if (statSync(path).isDirectory()) throw argError(ctx, `unarchive src ${src} is a directory, not an archive`);
  const bytes = readFileSync(path);
  if (bytes.length === 0) throw argError(ctx, `Invalid archive '${src}', the file is 0 bytes`);
  return bytes;
}

export const unarchiveModule: Module<UnarchiveArgs, UnarchiveState> = {
  name: 'unarchive',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['src', 'dest'],
    properties: {
      src: { type: 'string', minLength: 1 },
      dest: { type: 'string', pattern: '^/' },
      remote_src: { type: 'boolean' },
      copy: { type: 'boolean' },
      creates: { type: 'string', pattern: '^/' },
      list_files: { type: 'boolean' },
      exclude: { type: 'array', items: { type: 'string', minLength: 1 } },
      include: { type: 'array', items: { type: 'string', minLength: 1 } },
      extra_opts: { type: 'array', items: { type: 'string' } },
      io_buffer_size: { type: 'integer', minimum: 1 },
      validate_certs: { type: 'boolean' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<UnarchiveState>> {
    validateAttributeArgs(ctx, args);
    if (args.remote_src !== undefined && args.copy !== undefined)
      throw argError(ctx, 'unarchive: remote_src and copy are mutually exclusive (copy is the deprecated name)');
    if (args.include?.length && args.exclude?.length)
      throw argError(ctx, 'unarchive: include and exclude are mutually exclusive');
    const remote = args.remote_src ?? (args.copy !== undefined ? !args.copy : false);
    if (remote && args.src.includes('://'))
      throw argError(
        ctx,
        `unarchive src ${JSON.stringify(args.src)} is a URL: cairn does not download in unarchive; ` +
          'fetch it with get_url (checksum, atomic) and unarchive it with remote_src: true',
      );
    if (remote && !args.src.startsWith('/'))
      throw argError(
        ctx,
        `unarchive src ${JSON.stringify(args.src)} must be an absolute path on the host (remote_src)`,
      );
    try {
      if (args.creates !== undefined) {
        // Ansible's action plugin skips the whole task when `creates` exists, before any upload.
        const probe = await runScript(ctx, `if [ -e ${quote(args.creates)} ]; then echo yes; else echo no; fi`);
        if (createsAnswer(probe) === 'yes')
          return { changed: false, actions: [], skipped: `skipped, since ${args.creates} exists` };
      }
      const upload = remote ? undefined : localArchive(ctx, args.src);
      const remoteSrc = remote ? args.src : undefined;
      const out = await runScript(ctx, checkScript(args, remoteSrc, upload?.length), upload ? { stdin: upload } : {});
      if (out.code !== 0) {
        if (out.code === 5)
          return failed(`failed to unpack ${args.src} (into a staging directory): ${failureText(out)}`);
        return failed(failureText(out));
      }
      const s = parseSectionBytes(out.stdout);
      const kindText = s.get('kind')?.toString('utf8');
      if (kindText !== 'zip' && kindText !== 'tar') throw new ProbeError('the host did not say which archive handler');
      const kind: ArchiveKind = kindText;
      const uid = s.get('uid')?.toString('utf8').trim() ?? '';
      if (!/^\d+$/.test(uid)) throw new ProbeError('the host reported a uid that is not a number');
      const destProbe: FileProbe = parseFileProbe(args.dest, s.get('dest')?.toString('utf8'));
      if (destProbe.type !== 'directory' && destProbe.type !== 'absent')
        return failed(`Destination '${args.dest}' is not a directory`);
      const staged = parseTree('the unpacked archive', s.get('staged'));
      if (staged.size === 0)
        return failed(`Command found no files in archive ${args.src}. Empty archive files are not supported.`);
      const present = parseTree(args.dest, s.get('present'));
      for (const path of present.keys())
        if (!staged.has(path)) throw new ProbeError(`the host listed ${path} in dest, which the archive does not hold`);
      const differ = parsePathList('differing files', s.get('differ'));
      const entries = planEntries(staged, present, differ, args, uid === '0', destProbe.umask);
      const extract = entries.reasons.length > 0;
      const files =
        args.list_files && s.get('files') !== undefined
          ? s
              .get('files')!
              .toString('utf8')
              .split('\n')
              .filter((line) => line !== '')
              .map((line) => (kind === 'tar' ? decodeTarName(line) : line))
              .map((name) => name.replace(/^\/+/, ''))
          : undefined;
      const data: Record<string, unknown> = {
        dest: args.dest,
        src: args.src,
        handler: handlerName(kind, s.get('magic') ?? Buffer.alloc(0)),
        state: 'directory',
        ...(destProbe.type === 'directory'
          ? {
              mode: destProbe.mode,
              uid: destProbe.uid,
              gid: destProbe.gid,
              owner: destProbe.owner,
              group: destProbe.group,
              size: destProbe.size,
            }
          : {}),
        ...(files ? { files } : {}),
      };
      const state: UnarchiveState = {
        kind,
        dest: args.dest,
        ...(remoteSrc !== undefined ? { remoteSrc } : {}),
        ...(upload ? { upload } : {}),
        extract,
        chown: [...entries.chown].map(([owner, paths]) => ({ owner, paths })),
        chmod: [...entries.chmod].map(([mode, paths]) => ({ mode, paths })),
        args,
      };
      const actions: string[] = [];
      if (extract) {
        const why = entries.reasons.map((r) => `${r.path} (${r.why})`);
        const note =
          destProbe.type === 'absent' ? ` (${args.dest} does not exist yet: an earlier task may create it)` : '';
        actions.push(
          `unpack ${args.src} into ${args.dest}${note}: ${entries.reasons.length} of ${staged.size} entries differ: ${namesText(why)}`,
        );
        const given = [
          args.owner !== undefined ? `owner ${args.owner}` : '',
          args.group !== undefined ? `group ${args.group}` : '',
          args.mode !== undefined ? `mode ${String(args.mode)}` : '',
        ].filter(Boolean);
        if (given.length) actions.push(`set ${given.join(', ')} on the ${staged.size} unpacked entries`);
      } else if (entries.attributeEntries.length > 0) {
        actions.push(
          `set ${[...entries.attributeWords].join(', ')} on ${entries.attributeEntries.length} entries under ` +
            `${args.dest}: ${namesText(entries.attributeEntries)}`,
        );
      }
      if (actions.length === 0) return { changed: false, actions: [], data };
      return { changed: true, actions, state, data };
    } catch (err) {
      if (err instanceof ProbeError) return failed(err.message);
      throw err;
    }
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!plan.changed || !state) return { changed: false, data };
    const lines = [...archiveSource(state.remoteSrc, state.upload?.length)];
    const dest = quote(state.dest);
    lines.push(
      `if [ ! -d ${dest} ]; then printf '%s\\n' ${quote(`Destination '${state.dest}' is not a directory`)} >&2; exit 3; fi`,
    );
    if (state.extract) lines.push(`${extractCommand(state.kind, state.args, dest)} >/dev/null || exit 5`);
    lines.push('set -e', ...attributeCommands(state.dest, state));
    const out = await runScript(ctx, lines.join('\n'), state.upload ? { stdin: state.upload } : {});
    if (out.code !== 0) {
      const what = out.code === 5 ? `failed to unpack ${state.args.src} to ${state.dest}: ` : '';
      return { changed: false, failed: true, msg: `${what}${failureText(out)}`, data };
    }
    return { changed: true, data };
  },
};

function createsAnswer(out: { code: number; stdout: string; stderr: string }): string {
  if (out.code !== 0) throw new ProbeError(`cannot test creates: ${failureText(out)}`);
  return out.stdout.trim();
}
