/**
 * Pieces every module shares for talking to a host: running one script with the task's become, a
 * section-marked output format so one round trip can carry several probes, the file probe, and the atomic
 * write script (temp file in the destination's directory, validate, rename).
 */
import { posix } from 'node:path';
import type { ExecResult } from '../transport/types.js';
import { quote } from '../transport/quote.js';
import type { ModuleContext } from './types.js';
import { shlexSplit } from './shlex.js';

/** Marks the start of a named section in a probe's output. Probed file contents are base64, so never collide. */
export const SECTION_MARK = '::cairn-section::';

/** Shell that prints the start marker of section `name`. */
export function sectionStart(name: string): string {
  return `printf '%s\\n' ${quote(`${SECTION_MARK} ${name}`)}`;
}

/** Split a script's output into its sections, by name; text before the first marker is under ''. */
export function parseSections(stdout: string): Map<string, string> {
  const sections = new Map<string, string>();
  let current = '';
  let lines: string[] = [];
  const flush = (): void => {
    sections.set(current, lines.join('\n'));
  };
  for (const line of stdout.split('\n')) {
    if (line.startsWith(`${SECTION_MARK} `)) {
      flush();
      current = line.slice(SECTION_MARK.length + 1);
      lines = [];
    } else {
      lines.push(line);
    }
  }
  flush();
  return sections;
}

/** `key=value` lines into a map (the value is everything after the first `=`). */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** Run one script on the task's host with the task's become settings. */
export function runScript(ctx: ModuleContext, script: string, opts: { stdin?: string | Buffer; timeoutMs?: number } = {}): Promise<ExecResult> {
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
}

/**
 * A script fragment printing one section `name` that describes `path`: type, mode, owner, group, size,
 * mtime, sha256 and (optionally) the content in base64. Parsed by parseFileProbe.
 */
export function fileProbeScript(name: string, path: string, opts: FileProbeOptions = {}): string {
  const follow = opts.follow ?? false;
  const statFlag = follow ? '-L ' : '';
  const existsTest = follow ? '[ -e "$p" ]' : '{ [ -L "$p" ] || [ -e "$p" ]; }';
  const typeOf = follow
    ? 'if [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; else t=other; fi'
    : 'if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; else t=other; fi';
  const lines = [
    sectionStart(name),
    `p=${quote(path)}`,
    `printf 'umask=%s\\n' "$(umask)"`,
    `if ${existsTest}; then`,
    `  ${typeOf}`,
    `  printf 'type=%s\\n' "$t"`,
    `  if [ -L "$p" ]; then printf 'islink=1\\ntarget_b64='; readlink -- "$p" | tr -d '\\n' | base64 -w0; printf '\\nresolved_b64='; readlink -f -- "$p" | tr -d '\\n' | base64 -w0; echo; fi`,
    `  stat ${statFlag}--printf 'mode=%a\\nuid=%u\\ngid=%g\\nowner=%U\\ngroup=%G\\nsize=%s\\nmtime=%Y\\n' -- "$p"`,
    `  if [ "$t" = file ]; then`,
    `    if [ ! -r "$p" ]; then echo omitted=unreadable`,
    `    else :`,
  ];
  if (opts.checksum ?? true) lines.push(`      printf 'sha256=%s\\n' "$(sha256sum < "$p" | cut -c1-64)"`);
  if (opts.content) {
    lines.push(
      `      if [ "$(stat ${statFlag}-c %s -- "$p")" -le ${MAX_PROBED_CONTENT} ]; then printf 'content_b64='; base64 -w0 < "$p"; echo; else echo omitted=too-large; fi`,
    );
  }
  lines.push(
    `    fi`,
    `  fi`,
    `else`,
    `  echo type=absent`,
    `  if [ -d ${quote(posix.dirname(path))} ]; then echo parent=1; else echo parent=0; fi`,
    `fi`,
  );
  return lines.join('\n');
}

function decodeBase64(value: string | undefined): string | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
}

function numberOf(value: string | undefined): number | undefined {
  return value === undefined || value === '' || !/^-?\d+$/.test(value) ? undefined : Number(value);
}

/** Parse the section printed by fileProbeScript. */
export function parseFileProbe(path: string, text: string | undefined): FileProbe {
  if (text === undefined) throw new Error(`the probe of ${path} printed nothing`);
  const kv = parseKeyValues(text);
  const type = (kv.get('type') ?? 'absent') as FileType;
  const umask = parseInt(kv.get('umask') ?? '0022', 8);
  const probe: FileProbe = { path, type, umask: Number.isNaN(umask) ? 0o022 : umask };
  if (type === 'absent') {
    probe.parentExists = kv.get('parent') === '1';
    return probe;
  }
  const mode = kv.get('mode');
  if (mode !== undefined) probe.mode = mode.padStart(4, '0');
  probe.uid = numberOf(kv.get('uid'));
  probe.gid = numberOf(kv.get('gid'));
  probe.owner = kv.get('owner');
  probe.group = kv.get('group');
  probe.size = numberOf(kv.get('size'));
  probe.mtime = numberOf(kv.get('mtime'));
  if (kv.has('sha256')) probe.sha256 = kv.get('sha256');
  if (kv.has('content_b64')) probe.content = Buffer.from(kv.get('content_b64') ?? '', 'base64');
  const omitted = kv.get('omitted');
  if (omitted === 'too-large' || omitted === 'unreadable') probe.contentOmitted = omitted;
  if (kv.get('islink') === '1') {
    probe.isLink = true;
    probe.linkTarget = decodeBase64(kv.get('target_b64'));
    const resolved = decodeBase64(kv.get('resolved_b64'));
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
  if (!validate.includes('%s')) throw new Error(`validate must contain %s (the file to check), got ${JSON.stringify(validate)}`);
  return words.map((word) => word.split('%s').map((piece) => (piece === '' ? '' : quote(piece))).join('"$tmp"')).join(' ');
}

/**
 * The script that replaces `dest` with its standard input atomically: mktemp in the same directory, write,
 * owner/mode, validate, backup, `mv -f`. A trap removes the temp file on every failure, so a failed
 * validation leaves the live file as it was and no temp file behind.
 */
export function atomicWriteScript(opts: AtomicWriteOptions): string {
  const dir = posix.dirname(opts.dest);
  const lines = [
    `dest=${quote(opts.dest)}`,
    `tmp=$(mktemp ${quote(`${dir}/.cairn-tmp.`)}XXXXXXXX) || exit ${WriteExit.tempFile}`,
    // dash runs the EXIT trap on `exit`; signals are turned into exits so it runs for them too.
    `trap 'rm -f -- "$tmp"' EXIT`,
    `trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM`,
    `cat > "$tmp" || exit ${WriteExit.write}`,
    ...(opts.expectedBytes !== undefined ? [`[ "$(wc -c < "$tmp")" -eq ${opts.expectedBytes} ] || exit ${WriteExit.truncated}`] : []),
    `if [ -e "$dest" ]; then`,
    `  chown --reference="$dest" -- "$tmp" 2>/dev/null`,
    `  chmod --reference="$dest" -- "$tmp" || exit ${WriteExit.mode}`,
    `else`,
    `  chmod "$(printf '%o' $(( 0666 & ~0$(umask) )))" -- "$tmp" || exit ${WriteExit.mode}`,
    `fi`,
  ];
  if (opts.owner !== undefined) lines.push(`chown ${quote(opts.owner)} -- "$tmp" || exit ${WriteExit.owner}`);
  if (opts.group !== undefined) lines.push(`chgrp ${quote(opts.group)} -- "$tmp" || exit ${WriteExit.owner}`);
  if (opts.mode !== undefined) lines.push(`chmod ${quote(opts.mode)} -- "$tmp" || exit ${WriteExit.mode}`);
  if (opts.validate !== undefined) {
    lines.push(
      `out=$( ${validateCommandLine(opts.validate)} 2>&1 ); rc=$?`,
      `if [ "$rc" -ne 0 ]; then ${sectionStart('validate')}; printf 'rc=%s\\n' "$rc"; printf '%s\\n' "$out"; exit ${WriteExit.validate}; fi`,
    );
  }
  if (opts.backup) {
    lines.push(
      `if [ -e "$dest" ]; then`,
      `  backup="$dest.$(date +%Y-%m-%d@%H:%M:%S)~"`,
      `  cp -p -- "$dest" "$backup" || exit ${WriteExit.backup}`,
      `  ${sectionStart('backup')}; printf '%s\\n' "$backup"`,
      `fi`,
    );
  }
  lines.push(`mv -f -- "$tmp" "$dest" || exit ${WriteExit.rename}`, `trap - EXIT`);
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
  const backup = sections.get('backup')?.trim();
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
