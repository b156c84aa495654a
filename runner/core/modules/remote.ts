/**
 * Pieces every module shares for talking to a host: running one script with the task's become, a
 * section-marked output format so one round trip can carry several probes, the file probe, and the atomic
 * write script (temp file in the destination's directory, validate, rename).
 */
import { createHash, randomInt } from 'node:crypto';
import { posix } from 'node:path';
import type { ExecResult } from '../transport/types.js';
import { quote } from '../transport/quote.js';
import type { ModuleContext } from './types.js';
import { shlexSplit } from './shlex.js';

/**
 * Marks a section in a probe's output. A section is ONE line: the mark, the section's name and its stdout in
 * base64. Whatever a host prints (a file name with a newline and this very mark in it, a config line, a
 * command's output) stays inside the base64 payload, so content can never start, end or replace a section.
 */
export const SECTION_MARK = '::cairn-section::';

/** Section names are fixed words chosen by cairn (a letter, then letters, digits, '-' or '_'). */
const SECTION_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * Set (a shell variable) by the probe batch for each probe it runs: where `section` writes a section's bytes,
 * as this prefix and the section's name. It then prints SECTION_FILE_MARK and the name instead of the section,
 * and the batch's reader puts the section back in its place (probe-batch.ts), so the probe's caller gets
 * exactly the output it would have got alone.
 */
export const SECTION_FILE_PREFIX_VAR = 'cairn_section_prefix';
export const SECTION_FILE_MARK = '::cairn-section-file::';

/**
 * Shell that runs `body` and prints its standard output as the framed section `name`. The body runs in a
 * pipeline (a subshell): it cannot set variables for later lines or `exit` the script, and its exit status is
 * not the script's; a body whose status matters prints it (e.g. `echo rc=$?`).
 */
export function section(name: string, ...body: string[]): string {
  if (!SECTION_NAME.test(name)) throw new Error(`internal error: bad section name ${JSON.stringify(name)}`);
  // In a probe batch (engine/probe-batch.ts) the body's bytes go to a file of the batch, which frames them with
  // everything else in one base64: a subshell and no pipeline or base64 process of its own.
  return (
    `if [ -n "\${${SECTION_FILE_PREFIX_VAR}-}" ]; then ( :\n${body.join('\n')}\n) >"\${${SECTION_FILE_PREFIX_VAR}}${name}"; ` +
    `printf '%s\\n' ${quote(`${SECTION_FILE_MARK} ${name}`)}\n` +
    `else printf '%s ' ${quote(`${SECTION_MARK} ${name}`)}\n{ :\n${body.join('\n')}\n} | base64 -w0; echo; fi`
  );
}

/**
 * Shell that prints the bytes of `file` (a shell word, e.g. "$dir/o") as the framed section `name`, as
 * `section` would: one base64 process when the file holds something, none for an empty file (printf is a
 * builtin). The batch scripts frame each step's output files this way.
 */
export function fileSection(name: string, file: string): string {
  if (!SECTION_NAME.test(name)) throw new Error(`internal error: bad section name ${JSON.stringify(name)}`);
  const mark = quote(SECTION_MARK);
  return (
    `if [ -s ${file} ]; then printf '%s ${name} ' ${mark}; base64 -w0 <${file}; echo; ` +
    `else printf '%s ${name} \\n' ${mark}; fi`
  );
}

/** The framed output of one section, as `section` prints it (for fakes and fixtures). */
export function formatSection(name: string, content: string | Buffer): string {
  if (!SECTION_NAME.test(name)) throw new Error(`bad section name ${JSON.stringify(name)}`);
  return `${SECTION_MARK} ${name} ${Buffer.from(content).toString('base64')}\n`;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The sections of a script's output as raw bytes, by name; stdout outside any section (which cairn's scripts
 * do not print on purpose) is kept under '' for messages. A marker line that is not exactly "mark name
 * base64", or a section printed twice, means the output was not what cairn's script prints: refused, never
 * guessed at.
 */
export function parseSectionBytes(stdout: string): Map<string, Buffer> {
  const sections = new Map<string, Buffer>();
  const unframed: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(SECTION_MARK)) {
      unframed.push(line);
      continue;
    }
    const words = line.slice(SECTION_MARK.length).split(' ');
    const [blank, name, payload, ...rest] = words;
    if (
      blank !== '' ||
      name === undefined ||
      !SECTION_NAME.test(name) ||
      payload === undefined ||
      rest.length > 0 ||
      !BASE64.test(payload) ||
      payload.length % 4 !== 0
    ) {
      throw new ProbeError(
        `the host's output has a malformed section line (${JSON.stringify(line.slice(0, 80))}); refusing to read it`,
      );
    }
    if (sections.has(name))
      throw new ProbeError(`the host's output holds section "${name}" twice; refusing to read it`);
    sections.set(name, Buffer.from(payload, 'base64'));
  }
  const rest = unframed.join('\n');
  if (rest.trim() !== '') sections.set('', Buffer.from(rest));
  return sections;
}

/** The sections of a script's output as text (UTF-8), by name; see parseSectionBytes. */
export function parseSections(stdout: string): Map<string, string> {
  const text = new Map<string, string>();
  for (const [name, bytes] of parseSectionBytes(stdout)) text.set(name, bytes.toString('utf8'));
  return text;
}

/**
 * `key=value` lines into a map (the value is everything after the first `=`). A key given twice is refused:
 * a value that smuggled a newline and a second `key=` line must not override (or precede) the real one. Values
 * that may hold arbitrary text must be sent encoded (base64) by the script.
 */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    if (out.has(key)) throw new ProbeError(`the host's output repeats "${key}="; refusing to read it`);
    out.set(key, line.slice(eq + 1));
  }
  return out;
}

/** Run one script on the task's host with the task's become settings. */
export function runScript(
  ctx: ModuleContext,
  script: string,
  opts: { stdin?: string | Buffer; timeoutMs?: number } = {},
): Promise<ExecResult> {
  return ctx.conn.exec(script, { become: ctx.become, becomeUser: ctx.becomeUser, ...opts });
}

/** The last non-empty lines of a failed script's stderr (or stdout), for a message. */
export function failureText(res: ExecResult): string {
  const text = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-5).join('\n');
  return text || `exit code ${res.code}`;
}

/** Ansible strips trailing newlines from stdout/stderr (strip_empty_ends). */
export function stripEnds(text: string): string {
  return text.replace(/[\r\n]+$/, '');
}

export function splitLines(text: string): string[] {
  return text === '' ? [] : text.split(/\r?\n/);
}

// ---------------------------------------------------------------------------------------------------------
// File probe

/** Files larger than this are compared by checksum only: their content is not fetched for diffs or edits. */
export const MAX_PROBED_CONTENT = 2 * 1024 * 1024;

export type FileType = 'absent' | 'file' | 'directory' | 'link' | 'other';

export interface FileProbe {
  path: string;
  type: FileType;
  /** Four octal digits, e.g. "0644". */
  mode?: string;
  uid?: number;
  gid?: number;
  owner?: string;
  group?: string;
  size?: number;
  /** Seconds since the epoch. */
  mtime?: number;
  sha256?: string;
  /** Regular files no larger than MAX_PROBED_CONTENT that the remote user could read. */
  content?: Buffer;
  /** A regular file whose content was not fetched (too large or unreadable). */
  contentOmitted?: 'too-large' | 'unreadable';
  /** For links: what the link says (readlink) and where it resolves (realpath, if it does). */
  linkTarget?: string;
  linkResolved?: string;
  /** The path is a symlink (set also when `follow` reported the target's attributes). */
  isLink?: boolean;
  /** Absent paths: whether the parent directory exists. */
  parentExists?: boolean;
  /** The remote umask, as a number, for predicting the mode of files that do not exist yet. */
  umask: number;
}

export interface FileProbeOptions {
  /** Report the link's target instead of the link (stat -L). */
  follow?: boolean;
  /** Fetch the content of regular files (base64) for diffs and line edits. */
  content?: boolean;
  /** Compute sha256 of regular files. */
  checksum?: boolean;
  /**
   * Report the owner and group names (default true). A module that compares no owner or group (none asked)
   * leaves them out: one stat process fewer on the host per probe.
   */
  names?: boolean;
}

/**
 * A script fragment printing one section `name` that describes `path`: type, mode, owner, group, size,
 * mtime, sha256 and (optionally) the content in base64. Parsed (and validated) by parseFileProbe.
 *
 * Every process it starts is a cost on every host for every file task (issue 17: this machine forks a
 * process in ~2 ms), so it starts few: the umask and the tests are builtins; ONE stat gives the numbers
 * (captured, so the size decides about the content without a second stat); the owner and group names come
 * last, straight from a second stat, NUL-terminated (a name may hold any byte but NUL, so it can neither end
 * early nor add a line: nothing is read after it); a fetched content's sha256 is computed by the controller
 * from the bytes it got, and only a file whose content is not fetched is hashed on the host.
 */
export function fileProbeScript(name: string, path: string, opts: FileProbeOptions = {}): string {
  const follow = opts.follow ?? false;
  const statFlag = follow ? '-L ' : '';
  const existsTest = follow ? '[ -e "$p" ]' : '{ [ -L "$p" ] || [ -e "$p" ]; }';
  const typeOf = follow
    ? 'if [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; else t=other; fi'
    : 'if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; else t=other; fi';
  const hash = `printf 'sha256='; sha256sum < "$p"`;
  const lines = [
    `p=${quote(path)}`,
    `printf 'umask='; umask`,
    `if ${existsTest}; then`,
    `  ${typeOf}`,
    `  printf 'type=%s\\n' "$t"`,
    // Link targets may hold any byte but NUL: they travel in base64 (links are rare: two processes each).
    `  if [ -L "$p" ]; then printf 'islink=1\\ntarget_b64='; readlink -n -- "$p" | base64 -w0; printf '\\nresolved_b64='; readlink -n -f -- "$p" | base64 -w0; echo; fi`,
    `  if st=$(stat ${statFlag}--printf '%a %u %g %s %Y' -- "$p"); then set -- $st`,
    `    printf 'mode=%s\\nuid=%s\\ngid=%s\\nsize=%s\\nmtime=%s\\n' "$1" "$2" "$3" "$4" "$5"`,
    `    if [ "$t" = file ]; then`,
    `      if [ ! -r "$p" ]; then echo omitted=unreadable`,
  ];
  if (opts.content) {
    lines.push(
      `      elif [ "$4" -le ${MAX_PROBED_CONTENT} ]; then printf 'content_b64='; base64 -w0 < "$p"; echo`,
      `      else echo omitted=too-large${(opts.checksum ?? true) ? `; ${hash}` : ''}`,
    );
  } else if (opts.checksum ?? true) {
    lines.push(`      else ${hash}`);
  }
  lines.push(
    `      fi`,
    `    fi`,
    `  fi`,
    ...((opts.names ?? true) ? [`  stat ${statFlag}--printf 'names=%U\\0%G\\0' -- "$p"`] : []),
    `else`,
    `  echo type=absent`,
    `  if [ -d ${quote(posix.dirname(path))} ]; then echo parent=1; else echo parent=0; fi`,
    `fi`,
  );
  return section(name, lines.join('\n'));
}

/** Decode a base64 value a probe sent, refusing anything that is not base64. */
export function decodeBase64Value(what: string, value: string): Buffer {
  if (!BASE64.test(value) || value.length % 4 !== 0) throw new ProbeError(`the host sent ${what} that is not base64`);
  return Buffer.from(value, 'base64');
}

function decodeBase64(what: string, value: string | undefined): string | undefined {
  return value === undefined ? undefined : decodeBase64Value(what, value).toString('utf8');
}

/** A non-negative decimal the host reported, or undefined when absent; anything else is refused. */
export function probedNumber(what: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value))
    throw new ProbeError(`the host reported ${what} ${JSON.stringify(value.slice(0, 40))}, not a number`);
  return Number(value);
}

/** A file mode the host reported (stat %a: up to four octal digits), as four digits; anything else is refused. */
export function probedMode(what: string, value: string): string {
  if (!/^[0-7]{1,4}$/.test(value))
    throw new ProbeError(`the host reported ${what} ${JSON.stringify(value.slice(0, 40))}, not an octal mode`);
  return value.padStart(4, '0');
}

const FILE_TYPES: readonly FileType[] = ['absent', 'file', 'directory', 'link', 'other'];

/** Parse and validate the section printed by fileProbeScript: a value that is not what stat prints is refused. */
export function parseFileProbe(path: string, text: string | undefined): FileProbe {
  if (text === undefined) throw new ProbeError(`the probe of ${path} printed nothing`);
  // The names come last (see fileProbeScript): every value before them is a number, a word or base64, so the
  // first line that starts with `names=` is theirs, and everything after it is the two NUL-terminated names.
  const namesAt = text.startsWith('names=') ? 0 : text.indexOf('\nnames=');
  const names = namesAt === -1 ? undefined : text.slice(namesAt + (namesAt === 0 ? 6 : 7));
  const kv = parseKeyValues(namesAt === -1 ? text : text.slice(0, namesAt));
  const typeText = kv.get('type') ?? 'absent';
  if (!(FILE_TYPES as readonly string[]).includes(typeText))
    throw new ProbeError(`the host reported type ${JSON.stringify(typeText.slice(0, 40))} for ${path}`);
  const type = typeText as FileType;
  const umask = parseInt(probedMode(`the umask for ${path}`, kv.get('umask') ?? '0022'), 8);
  const probe: FileProbe = { path, type, umask };
  if (type === 'absent') {
    probe.parentExists = kv.get('parent') === '1';
    return probe;
  }
  const mode = kv.get('mode');
  if (mode !== undefined) probe.mode = probedMode(`the mode of ${path}`, mode);
  probe.uid = probedNumber(`the uid of ${path}`, kv.get('uid'));
  probe.gid = probedNumber(`the gid of ${path}`, kv.get('gid'));
  if (names !== undefined) {
    const [owner, group, ...extra] = names.split('\0');
    if (group === undefined || extra.length !== 1 || extra[0] !== '')
      throw new ProbeError(`the host reported a malformed owner and group for ${path}`);
    probe.owner = owner;
    probe.group = group;
  }
  probe.size = probedNumber(`the size of ${path}`, kv.get('size'));
  probe.mtime = probedNumber(`the mtime of ${path}`, kv.get('mtime'));
  // sha256sum prints the digest, two spaces and "-" (its input was stdin).
  const sha256 = kv.get('sha256')?.replace(/ {2}-$/, '');
  if (sha256 !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(sha256))
      throw new ProbeError(`the host reported a checksum of ${path} that is not sha256`);
    probe.sha256 = sha256;
  }
  const contentB64 = kv.get('content_b64');
  if (contentB64 !== undefined) {
    probe.content = decodeBase64Value(`the content of ${path}`, contentB64);
    // The checksum of exactly the bytes fetched (the host hashes only what it does not send).
    probe.sha256 ??= createHash('sha256').update(probe.content).digest('hex');
  }
  const omitted = kv.get('omitted');
  if (omitted === 'too-large' || omitted === 'unreadable') probe.contentOmitted = omitted;
  if (kv.get('islink') === '1') {
    probe.isLink = true;
    probe.linkTarget = decodeBase64(`the link target of ${path}`, kv.get('target_b64'));
    const resolved = decodeBase64(`where ${path} resolves`, kv.get('resolved_b64'));
    if (resolved) probe.linkResolved = resolved;
  }
  return probe;
}

/** Text for a diff: the content itself when it is UTF-8 text, otherwise a one-line summary. */
export function diffText(content: Buffer | undefined, sha256?: string): string {
  if (content === undefined) return sha256 ? `(content not shown; sha256 ${sha256})\n` : '';
  if (content.includes(0)) return `(binary content, ${content.length} bytes)\n`;
  const text = content.toString('utf8');
  if (text.includes('\uFFFD')) return `(binary content, ${content.length} bytes)\n`;
  return text;
}

// ---------------------------------------------------------------------------------------------------------
// Atomic write

export interface AtomicWriteOptions {
  dest: string;
  /** Set after the content is written; when unset an existing file's owner/group/mode are kept. */
  owner?: string;
  group?: string;
  /** Four octal digits. When unset: the existing file's mode, or 0666 minus the umask for a new file. */
  mode?: string;
  /** Shell-free command line with %s for the temp file (shlex-split, each word quoted, as Ansible). */
  validate?: string;
  /** Keep `dest.<timestamp>~` before replacing an existing file. */
  backup?: boolean;
  /**
   * How many bytes stdin carries. A connection cut mid-transfer closes stdin early and `cat` ends with
   * success on a truncated file: without this check the partial file would be renamed over the live one.
   */
  expectedBytes?: number;
  /**
   * The content itself, carried in the script (see `inlineContent`) instead of on stdin: written by printf, a
   * builtin (no process, nothing in argv). A script cut short by a dropped connection is a syntax error and
   * runs nothing (transport/carrier.ts), so no size check is needed.
   */
  content?: string;
}

/** Content up to this size that is UTF-8 text without NUL travels in the write script itself. */
export const INLINE_CONTENT_LIMIT = 64 * 1024;

/**
 * `content` as text the write script may carry (a shell word holds any byte but NUL; the script is text), or
 * undefined when it must go on stdin: binary, not UTF-8, or large.
 */
export function inlineContent(content: Buffer): string | undefined {
  if (content.length > INLINE_CONTENT_LIMIT || content.includes(0)) return undefined;
  const text = content.toString('utf8');
  return Buffer.byteLength(text) === content.length && Buffer.from(text, 'utf8').equals(content) ? text : undefined;
}

/** Exit codes of the atomic write script, so the caller can say which step failed. */
export const WriteExit = {
  tempFile: 70,
  write: 71,
  owner: 72,
  mode: 73,
  validate: 74,
  rename: 75,
  backup: 76,
  truncated: 77,
} as const;

/**
 * Shell words for a validate command: %s becomes "$tmp" (the temp file, quoted by the shell at run time),
 * every other piece is quoted here.
 */
export function validateCommandLine(validate: string): string {
  const words = shlexSplit(validate);
  if (!validate.includes('%s'))
    throw new Error(`validate must contain %s (the file to check), got ${JSON.stringify(validate)}`);
  return words
    .map((word) =>
      word
        .split('%s')
        .map((piece) => (piece === '' ? '' : quote(piece)))
        .join('"$tmp"'),
    )
    .join(' ');
}

/**
 * Shell that creates `path` (a shell word, e.g. "$tmp") exclusively and opens it as file descriptor `fd`:
 * with noclobber the shell opens with O_CREAT|O_EXCL, so a name planted meanwhile (a symlink, a file, a
 * directory) is refused and never followed. `command` keeps a failed `exec` redirection from ending the
 * script before `onFail` runs.
 */
function exclusiveOpen(path: string, fd: number, onFail: string): string {
  return `command exec ${fd}>${path} || ${onFail}`;
}

const NAME_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` letters and digits from the CSPRNG, as mktemp's XXXXXXXXXXXX (62^12: ~71 bits). */
export function randomName(length: number): string {
  let name = '';
  for (let i = 0; i < length; i++) name += NAME_CHARS[randomInt(NAME_CHARS.length)];
  return name;
}

/**
 * The script that replaces `dest` with its standard input atomically. Every step is safe against other users
 * of the destination's directory (see docs/security.md):
 * - the temp file gets an unpredictable name (mktemp) and is created exclusively (noclobber: O_EXCL), so a
 *   planted symlink is never followed; it stays open as fd 3, and every later step on it goes through
 *   /proc/self/fd/3, the open file itself, so renaming or replacing the name meanwhile changes nothing;
 * - owner, group and mode are set on the still EMPTY file (created 0600 by umask 077) before a byte of the
 *   content is written, so a secret is never readable by anyone the final mode would not allow;
 * - the backup is made the same way (unique name, exclusive, attributes before content, read from one open
 *   descriptor of the live file so mode and content come from the same file);
 * - traps are set before anything is created and turn HUP/INT/PIPE/TERM into exits, so a killed run (the
 *   connection gone: the next write raises SIGPIPE) still removes the temp file; a failed validation leaves
 *   the live file as it was.
 */
export function atomicWriteScript(opts: AtomicWriteOptions): string {
  const dir = posix.dirname(opts.dest);
  const fd3 = '/proc/self/fd/3';
  const given = opts.owner !== undefined || opts.group !== undefined;
  // A new file that no chown follows may be CREATED with its final mode (umask = what the mode leaves out):
  // the open that creates it sets the mode, so it is never more open than it ends up, and no chmod runs.
  // Only for modes within 0666 (open never sets x or set-id bits), and only when dest does not exist (an
  // existing dest's owner is copied by chown, which must come before the mode).
  const createMode =
    opts.mode === undefined ? 'umask' : (parseInt(opts.mode, 8) & ~0o666) === 0 ? opts.mode : undefined;
  const lines = [
    `dest=${quote(opts.dest)}`,
    `tmp=''; backup=''; done=''`,
    // dash runs the EXIT trap on `exit`; signals are turned into exits so it runs for them too.
    `trap 'if [ -n "$tmp" ]; then rm -f -- "$tmp"; fi; if [ -n "$backup" ] && [ -z "$done" ]; then rm -f -- "$backup"; fi' EXIT`,
    `trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`,
    // The unpredictable name comes from the controller's CSPRNG (as mktemp's would from the host's): no process.
    `set -C; t=${quote(`${dir}/.cairn-tmp.${randomName(12)}`)}`,
  ];
  const open3 = exclusiveOpen('"$t"', 3, `exit ${WriteExit.tempFile}`);
  // Without a mode, a file that is not made with the umask as it is gets 0666 minus it from chmod: kept first.
  const keepUmask = opts.mode === undefined ? 'cairn_um=$(umask); ' : '';
  if (createMode !== undefined && !given) {
    // umask as it is: the new file gets 0666 minus it, what the chmod below would set.
    const mask =
      createMode === 'umask' ? '' : `umask ${(0o777 & ~parseInt(createMode, 8)).toString(8).padStart(3, '0')}; `;
    lines.push(
      `if [ -e "$dest" ]; then ${keepUmask}umask 077; ${open3}; cairn_made=0`,
      `else ${mask}${open3}; umask 077; cairn_made=1; fi`,
    );
  } else {
    lines.push(`${keepUmask}umask 077; ${open3}; cairn_made=0`);
  }
  lines.push(`tmp=$t`);
  // Owner and group first (chown clears set-id bits), then ONE chmod to the final mode: the file is never more
  // open than it will end up, even for a moment (a reader that opens it then keeps its descriptor).
  if (given) {
    // One chown to the final owner and group: what is given, the rest from the live file.
    lines.push(`o=''; g=''; if [ -e "$dest" ]; then o=$(stat -L -c %u -- "$dest"); g=$(stat -L -c %g -- "$dest"); fi`);
    if (opts.owner !== undefined) lines.push(`o=${quote(opts.owner)}`);
    if (opts.group !== undefined) lines.push(`g=${quote(opts.group)}`);
    lines.push(
      `if [ -n "$o" ] && [ -n "$g" ]; then chown -- "$o:$g" ${fd3} || exit ${WriteExit.owner}`,
      `elif [ -n "$o" ]; then chown -- "$o" ${fd3} || exit ${WriteExit.owner}`,
      `elif [ -n "$g" ]; then chgrp -- "$g" ${fd3} || exit ${WriteExit.owner}; fi`,
    );
  } else {
    // The live file's owner and group, in one chown (keeping them may be impossible without root: as before,
    // that is not an error).
    lines.push(`if [ -e "$dest" ]; then chown --reference="$dest" -- ${fd3} 2>/dev/null; fi`);
  }
  if (opts.mode !== undefined) {
    const chmod = `chmod -- ${quote(opts.mode)} ${fd3} || exit ${WriteExit.mode}`;
    lines.push(createMode !== undefined && !given ? `[ "$cairn_made" = 1 ] || ${chmod}` : chmod);
  } else {
    lines.push(
      `if [ -e "$dest" ]; then chmod --reference="$dest" -- ${fd3} || exit ${WriteExit.mode}`,
      `elif [ "$cairn_made" != 1 ]; then chmod -- "$(printf '%o' $(( 0666 & ~0$cairn_um )))" ${fd3} || exit ${WriteExit.mode}; fi`,
    );
  }
  if (opts.content !== undefined) lines.push(`printf '%s' ${quote(opts.content)} >&3 || exit ${WriteExit.write}`);
  else {
    lines.push(`cat >&3 || exit ${WriteExit.write}`);
    if (opts.expectedBytes !== undefined)
      lines.push(`[ "$(wc -c < ${fd3})" -eq ${opts.expectedBytes} ] || exit ${WriteExit.truncated}`);
  }
  lines.push('exec 3>&-');
  if (opts.validate !== undefined) {
    lines.push(
      `out=$( ${validateCommandLine(opts.validate)} 2>&1 ); rc=$?`,
      `if [ "$rc" -ne 0 ]; then`,
      section('validate', `printf 'rc=%s\n' "$rc"; printf '%s\n' "$out"`),
      `exit ${WriteExit.validate}; fi`,
    );
  }
  if (opts.backup) {
    lines.push(
      // Regular files only: opening a FIFO planted at dest would block the run.
      `if [ -f "$dest" ]; then`,
      `  b=$(mktemp -u --suffix='~' "$dest.$(date +%Y-%m-%d@%H:%M:%S).XXXXXX") || exit ${WriteExit.backup}`,
      `  ${exclusiveOpen('"$b"', 4, `exit ${WriteExit.backup}`)}`,
      `  backup=$b`,
      `  command exec 5<"$dest" || exit ${WriteExit.backup}`,
      `  chown --reference=/proc/self/fd/5 -- /proc/self/fd/4 2>/dev/null`,
      `  chmod --reference=/proc/self/fd/5 -- /proc/self/fd/4 || exit ${WriteExit.backup}`,
      `  cat <&5 >&4 || exit ${WriteExit.backup}`,
      `  touch -r /proc/self/fd/5 -- /proc/self/fd/4 || exit ${WriteExit.backup}`,
      `  exec 4>&- 5<&-`,
      `fi`,
    );
  }
  // -T: a directory put at dest meanwhile is not moved into; the rename fails instead.
  lines.push(`mv -fT -- "$tmp" "$dest" || exit ${WriteExit.rename}`, `tmp=''; done=1`);
  if (opts.backup) lines.push(`if [ -n "$backup" ]; then`, section('backup', `printf '%s' "$backup"`), 'fi');
  // No `exit` here: modules compose steps after the write (sysctl's live value, ...), which must still run.
  lines.push('trap - EXIT');
  return lines.join('\n');
}

export interface WriteOutcome {
  ok: boolean;
  backupFile?: string;
  /** Why the write failed, in words (with the validator's output and the line it names). */
  error?: string;
}

/** Read the atomic write script's result. `content` is what was written, to quote the line a validator names. */
export function parseWriteResult(res: ExecResult, dest: string, content: string): WriteOutcome {
  const sections = parseSections(res.stdout);
  const backup = sections.get('backup');
  if (res.code === 0) return { ok: true, ...(backup ? { backupFile: backup } : {}) };
  if (res.code === WriteExit.validate) {
    const body = sections.get('validate') ?? '';
    const rcLine = body.split('\n')[0] ?? '';
    const output = body.split('\n').slice(1).join('\n').trim();
    return { ok: false, error: describeValidationFailure(dest, rcLine.replace(/^rc=/, ''), output, content) };
  }
  const step: Record<number, string> = {
    [WriteExit.tempFile]: `cannot create a temporary file in ${posix.dirname(dest)}`,
    [WriteExit.write]: 'cannot write the temporary file',
    [WriteExit.truncated]: 'the content arrived incomplete (connection cut?); the live file was left unchanged',
    [WriteExit.owner]: 'cannot set the owner/group',
    [WriteExit.mode]: 'cannot set the mode',
    [WriteExit.rename]: `cannot move the new file over ${dest}`,
    [WriteExit.backup]: `cannot back up ${dest}`,
  };
  return { ok: false, error: `${step[res.code] ?? `writing ${dest} failed (exit ${res.code})`}: ${failureText(res)}` };
}

/**
 * "validation of X failed (exit 1): <output>", and when the output names a line number, that line of the
 * rendered content, so the user sees what the validator saw.
 */
export function describeValidationFailure(dest: string, rc: string, output: string, content: string): string {
  let message = `validation of ${dest} failed (exit ${rc}); the live file was left unchanged`;
  if (output) message += `:\n${output}`;
  // `line 12`, `file:12:` (most checkers) or `[file:12]` (haproxy's `parsing [/etc/haproxy/x.cfg:12]`).
  const lineMatch = /\bline[: ]+(\d+)\b/i.exec(output) ?? /:(\d+):/.exec(output) ?? /:(\d+)\]/.exec(output);
  if (lineMatch) {
    const lineNo = Number(lineMatch[1]);
    const renderedLine = content.split('\n')[lineNo - 1];
    if (renderedLine !== undefined) message += `\nrendered line ${lineNo}: ${renderedLine}`;
  }
  return message;
}

/** Probe one path in one round trip. A failing probe script (not an absent file) is reported as an error. */
export async function probeFile(ctx: ModuleContext, path: string, opts: FileProbeOptions = {}): Promise<FileProbe> {
  const res = await runScript(ctx, fileProbeScript('file', path, opts));
  if (res.code !== 0) throw new ProbeError(`cannot inspect ${path}: ${failureText(res)}`);
  return parseFileProbe(path, parseSections(res.stdout).get('file'));
}

/** A probe script failed on the host (permission denied, missing tool): the task fails with this message. */
export class ProbeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProbeError';
  }
}

/** A message for any error a module's check hits, without a stack trace. */
export function errorMessage(err: unknown): string {
  if (err && typeof err === 'object' && 'render' in err && typeof (err as { render: unknown }).render === 'function') {
    return (err as { render(): string }).render();
  }
  return err instanceof Error ? err.message : String(err);
}
