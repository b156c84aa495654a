/**
 * apt_repository: add or remove one-line APT sources, as Ansible's ansible.builtin.apt_repository
 * (lib/ansible/modules/apt_repository.py; docs: docs.ansible.com/ansible/latest/collections/ansible/builtin/
 * apt_repository_module.html). Ansible's rules, read from its SourcesList:
 * - every sources file is read: Dir::Etc::sourcelist and Dir::Etc::sourceparts/*.list, as apt-config names them
 *   (so APT_CONFIG, e.g. from the task's `environment`, is honoured as Ansible's apt_pkg honours it);
 * - a line is `[# ]deb|deb-src ... [# comment]`; sources compare with their whitespace collapsed;
 * - present: a line with the same source anywhere (even commented out) is enabled; otherwise the line goes to
 *   sources.list.d/<filename>.list (filename defaults to a name made from the URL, as _suggest_filename), which
 *   gets `mode` (default 0644);
 * - absent: every enabled line with that source is removed; a file left empty is deleted;
 * - a file that changes is written as Ansible dumps it (`# ` before disabled lines, ` # ` before comments);
 * - update_cache (default true): `apt-get update` after a change; when it fails, the sources are put back.
 * Unlike Ansible, cairn rewrites only the files whose sources change (Ansible rewrites every sources file it
 * read, normalising their comments), so check names exactly the files apply writes.
 * PPA lines (`ppa:user/name`) need Launchpad and Ubuntu: refused at the task.
 */
import { posix } from 'node:path';
import { argv, quote } from '../transport/quote.js';
import { argError, formatMode, parseModeArg } from './attributes.js';
import {
  atomicWriteScript,
  decodeBase64Value,
  diffText,
  failureText,
  parseSectionBytes,
  parseWriteResult,
  ProbeError,
  runScript,
  section,
} from './remote.js';
import type { FileDiff, Module, ModuleResult, Planned } from './types.js';

export interface AptRepositoryArgs {
  repo: string;
  state?: 'present' | 'absent';
  mode?: string | number;
  update_cache?: boolean;
  update_cache_retries?: number;
  update_cache_retry_max_delay?: number;
  validate_certs?: boolean;
  filename?: string;
  codename?: string;
  install_python_apt?: boolean;
}

/** One line of a sources file as Ansible's SourcesList._parse reads it. */
export interface SourceLine {
  valid: boolean;
  enabled: boolean;
  source: string;
  comment: string;
}

const VALID_SOURCE_TYPES = ['deb', 'deb-src'];

export function parseSourceLine(raw: string): SourceLine {
  let line = raw.trim();
  let enabled = true;
  let comment = '';
  if (line.startsWith('#')) {
    enabled = false;
    line = line.slice(1);
  }
  const hash = line.indexOf('#');
  if (hash > 0) {
    comment = line.slice(hash + 1).trim();
    line = line.slice(0, hash);
  }
  let source = line.trim();
  let valid = false;
  if (source) {
    const chunks = source.split(/\s+/);
    if (VALID_SOURCE_TYPES.includes(chunks[0]!)) {
      valid = true;
      source = chunks.join(' ');
    }
  }
  return { valid, enabled, source, comment };
}

/** A file's lines back to text, as Ansible's SourcesList.dump writes them. */
export function dumpSources(lines: SourceLine[]): string {
  return lines.map((l) => `${l.enabled ? '' : '# '}${l.source}${l.comment ? ` # ${l.comment}` : ''}\n`).join('');
}

/** Ansible's _suggest_filename: the repository's host and path, non-alphanumerics as '_', plus .list. */
export function suggestFilename(source: string): string {
  let line = source.replace(/\[[^\]]+\]/g, '').replace(/\w+:\/\//g, '');
  const parts = line.split(/\s+/).filter((p) => p !== '' && !VALID_SOURCE_TYPES.includes(p));
  let first = parts[0] ?? '';
  if (first.includes('@')) first = first.slice(first.indexOf('@') + 1);
  line = first.replace(/[^a-zA-Z0-9]/g, ' ');
  return `${line.split(/\s+/).filter(Boolean).join('_')}.list`;
}

export interface SourcesFile {
  path: string;
  content: Buffer;
  mode: string;
  isLink: boolean;
}

export interface SourcesChange {
  path: string;
  /** undefined: the file is deleted. */
  after?: string;
  before?: Buffer;
  /** Set for a file a new line was appended to (Ansible's new_repos). */
  mode?: string;
}

/**
 * What `state` does to the sources (pure; table-tested): the files whose dump changes, with their new text.
 * `parts` is the sources.list.d folder.
 */
export function planSources(
  files: SourcesFile[],
  repo: string,
  state: 'present' | 'absent',
  parts: string,
  filename: string | undefined,
  mode: string,
): SourcesChange[] {
  const parsed = new Map(files.map((f) => [f.path, splitLines(f.content.toString('utf8')).map(parseSourceLine)]));
  const wanted = parseSourceLine(repo);
  if (!wanted.valid || !wanted.enabled) throw new Error(`Invalid repository string: ${repo}`);
  const changedPaths = new Set<string>();
  const newRepos = new Set<string>();
  if (state === 'present') {
    let found = false;
    for (const [path, lines] of parsed)
      lines.forEach((line, i) => {
        if (line.valid && line.source === wanted.source) {
          found = true;
          if (!line.enabled) {
            lines[i] = { ...line, enabled: true };
            changedPaths.add(path);
          }
        }
      });
    if (!found) {
      const name = `${filename ?? suggestFilename(wanted.source).replace(/\.list$/, '')}.list`;
      const path = name.includes('/') ? name : posix.join(parts, name);
      const lines = parsed.get(path) ?? [];
      lines.push({ valid: true, enabled: true, source: wanted.source, comment: '' });
      parsed.set(path, lines);
      changedPaths.add(path);
      newRepos.add(path);
    }
  } else {
    for (const [path, lines] of parsed) {
      const kept = lines.filter((l) => !(l.valid && l.enabled && l.source === wanted.source));
      if (kept.length !== lines.length) {
        parsed.set(path, kept);
        changedPaths.add(path);
      }
    }
  }
  const byPath = new Map(files.map((f) => [f.path, f]));
  const changes: SourcesChange[] = [];
  for (const path of changedPaths) {
    const lines = parsed.get(path)!;
    const before = byPath.get(path);
    const after = lines.length ? dumpSources(lines) : undefined;
    const beforeDump = before
      ? dumpSources(splitLines(before.content.toString('utf8')).map(parseSourceLine))
      : undefined;
    if (after === beforeDump && !newRepos.has(path)) continue;
    changes.push({
      path,
      ...(after !== undefined ? { after } : {}),
      ...(before ? { before: before.content } : {}),
      ...(newRepos.has(path) ? { mode } : {}),
    });
  }
  return changes;
}

function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** The probe: where apt reads sources (apt-config), and each sources file's type, mode and content. */
function probeScript(): string {
  return [
    'command -v apt-config >/dev/null 2>&1 || { echo "apt_repository needs apt (apt-config) on the host" >&2; exit 3; }',
    `eval "$(apt-config shell S Dir::Etc::sourcelist/f D Dir::Etc::sourceparts/d)"`,
    section('where', `printf '%s\\0%s\\0' "$S" "\${D%/}"`),
    section(
      'files',
      `for f in "$S" "\${D%/}"/*.list; do`,
      '  if [ -L "$f" ]; then t=link; elif [ -f "$f" ]; then t=file; else continue; fi',
      `  printf '%s\\0%s\\0%s\\0' "$f" "$t" "$(stat -L -c %a -- "$f")"; base64 -w0 < "$f"; printf '\\0'`,
      'done',
    ),
  ].join('\n');
}

export function parseSourcesFiles(bytes: Buffer | undefined): SourcesFile[] {
  if (bytes === undefined) throw new ProbeError('the host did not list its sources files');
  if (bytes.length === 0) return [];
  const fields = bytes.toString('utf8').split('\0');
  if (fields.pop() !== '' || fields.length % 4 !== 0)
    throw new ProbeError("the host's list of sources files is malformed");
  const files: SourcesFile[] = [];
  for (let i = 0; i < fields.length; i += 4) {
    const [path, type, mode, content] = fields.slice(i, i + 4) as [string, string, string, string];
    if (!path.startsWith('/') || (type !== 'file' && type !== 'link') || !/^[0-7]{1,4}$/.test(mode))
      throw new ProbeError(`the host reported a malformed sources file entry ${JSON.stringify(path.slice(0, 80))}`);
    files.push({
      path,
      isLink: type === 'link',
      mode: mode.padStart(4, '0'),
      content: decodeBase64Value(`the content of ${path}`, content),
    });
  }
  return files;
}

export interface AptRepositoryState {
  changes: SourcesChange[];
  updateCache: boolean;
}

function failed(msg: string): Planned<AptRepositoryState> {
  return { changed: false, actions: [], failed: msg };
}

/** Put one sources file as `content` (atomic), or delete it. */
async function putFile(
  ctx: Parameters<Module['apply']>[0],
  path: string,
  content: Buffer | undefined,
  mode: string | undefined,
): Promise<string | undefined> {
  if (content === undefined) {
    const res = await runScript(ctx, argv('rm', '-f', '--', path));
    return res.code === 0 ? undefined : `cannot remove ${path}: ${failureText(res)}`;
  }
  const script = [
    `mkdir -p -- ${quote(posix.dirname(path))} || exit 70`,
    atomicWriteScript({ dest: path, ...(mode ? { mode } : {}), expectedBytes: content.length }),
  ].join('\n');
  const res = await runScript(ctx, script, { stdin: content });
  const outcome = parseWriteResult(res, path, content.toString('utf8'));
  return outcome.ok ? undefined : outcome.error;
}

export const aptRepositoryModule: Module<AptRepositoryArgs, AptRepositoryState> = {
  name: 'apt_repository',
  argAliases: { 'update-cache': 'update_cache' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['repo'],
    properties: {
      repo: { type: 'string', minLength: 1 },
      state: { enum: ['present', 'absent'] },
      mode: { type: ['string', 'integer'] },
      update_cache: { type: 'boolean' },
      update_cache_retries: { type: 'integer', minimum: 1 },
      update_cache_retry_max_delay: { type: 'integer', minimum: 0 },
      validate_certs: { type: 'boolean' },
      filename: { type: 'string', minLength: 1 },
      codename: { type: 'string' },
      install_python_apt: { type: 'boolean' },
    },
  },

  async check(ctx, args): Promise<Planned<AptRepositoryState>> {
    const state = args.state ?? 'present';
    if (args.repo.trim().startsWith('ppa:'))
      throw argError(
        ctx,
        `apt_repository ${JSON.stringify(args.repo)}: PPAs are Ubuntu's Launchpad repositories; give the deb line`,
      );
    const wanted = parseSourceLine(args.repo);
    if (!wanted.valid || !wanted.enabled) throw argError(ctx, `Invalid repository string: ${args.repo}`);
    if (args.filename !== undefined && (/[\0\n]/.test(args.filename) || args.filename.split('/').includes('..')))
      throw argError(ctx, `apt_repository filename ${JSON.stringify(args.filename)} is not a plain file name`);
    let mode: string;
    try {
      const spec = parseModeArg(args.mode ?? '0644');
      if (spec.kind !== 'octal') throw new Error(`mode ${JSON.stringify(args.mode)} must be octal (Ansible's is)`);
      mode = formatMode(spec.bits);
    } catch (err) {
      throw argError(ctx, err instanceof Error ? err.message : String(err));
    }
    try {
      const res = await runScript(ctx, probeScript());
      if (res.code !== 0) return failed(failureText(res));
      const s = parseSectionBytes(res.stdout);
      const where = (s.get('where')?.toString('utf8') ?? '').split('\0');
      const parts = where[1];
      if (where.length !== 3 || !where[0]?.startsWith('/') || !parts?.startsWith('/'))
        throw new ProbeError('apt-config did not name the sources files');
      const files = parseSourcesFiles(s.get('files'));
      const changes = planSources(files, args.repo, state, parts, args.filename, mode);
      const data = {
        repo: args.repo,
        state,
        sources_added: changes.filter((c) => c.before === undefined).map((c) => c.path),
        sources_removed: changes.filter((c) => c.after === undefined).map((c) => c.path),
      };
      if (changes.length === 0) return { changed: false, actions: [], data };
      for (const change of changes)
        if (files.find((f) => f.path === change.path)?.isLink)
          return failed(`${change.path} is a symlink; cairn does not write sources through a link`);
      const actions = changes.map((c) =>
        c.after === undefined ? `remove ${c.path}` : c.before === undefined ? `create ${c.path}` : `update ${c.path}`,
      );
      const updateCache = args.update_cache ?? true;
      if (updateCache) actions.push('apt-get update');
      const diffs: FileDiff[] = changes.map((c) => ({
        path: c.path,
        before: c.before ? diffText(c.before) : '',
        after: c.after ?? '',
        ...(c.before ? {} : { beforeMissing: true }),
        ...(c.after === undefined ? { afterMissing: true } : {}),
        ...(c.mode && c.before === undefined ? { attributes: [`mode ${c.mode}`] } : {}),
      }));
      return { changed: true, actions, diffs, state: { changes, updateCache }, data };
    } catch (err) {
      if (err instanceof ProbeError) return failed(err.message);
      if (err instanceof Error && err.message.startsWith('Invalid repository')) return failed(err.message);
      throw err;
    }
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!plan.changed || !state) return { changed: false, data };
    const done: SourcesChange[] = [];
    const revert = async (): Promise<void> => {
      for (const change of done.reverse()) await putFile(ctx, change.path, change.before, undefined);
    };
    for (const change of state.changes) {
      const error = await putFile(
        ctx,
        change.path,
        change.after !== undefined ? Buffer.from(change.after, 'utf8') : undefined,
        change.mode,
      );
      if (error) {
        await revert();
        return { changed: false, failed: true, msg: error, data };
      }
      done.push(change);
    }
    if (state.updateCache) {
      const res = await runScript(ctx, 'DEBIAN_FRONTEND=noninteractive apt-get -q update 2>&1');
      // apt-get update exits 0 even when a source fails to download; its "E:"/"W: Failed" lines say so.
      if (res.code !== 0 || /^(E:|W: Failed to fetch)/m.test(res.stdout)) {
        await revert();
        return {
          changed: false,
          failed: true,
          msg: `Failed to update apt cache: ${failureText(res)}; the sources were put back`,
          data,
        };
      }
    }
    return { changed: true, diffs: plan.diffs, data };
  },
};
