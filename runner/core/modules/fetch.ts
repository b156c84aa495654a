/**
 * fetch: copy one file from the host to the controller, as Ansible's ansible.builtin.fetch (its action plugin,
 * lib/ansible/plugins/action/fetch.py; docs: docs.ansible.com/ansible/latest/collections/ansible/builtin/
 * fetch_module.html). The file lands at `<dest>/<inventory_hostname>/<src>` or, with `flat`, at dest itself
 * (`dest/` + the file's name when dest ends with '/'); a relative dest is the playbook's folder's, as Ansible's
 * path_dwim. The comparison is Ansible's: the host file's sha1 against the controller file's; the same sha1
 * is no change. Ansible skips fetch in check mode; cairn predicts it (the comparison needs no write).
 *
 * The host is hostile, so:
 * - its answers travel in framed sections; the probe's sha1 and size are validated;
 * - the content comes in base64 chunks of CHUNK_BYTES (one framed section each, below the transport's output
 *   cap), at most MAX_FETCH_BYTES in all, and with `validate_checksum` (the default) it must hash to the sha1
 *   check saw, otherwise nothing is written;
 * - the controller path never leaves dest: `..` in src (or in the host's name) is refused, and no symlink under
 *   dest is followed (a link where a folder or the file would be fails the task);
 * - the controller file is written atomically: a temp file beside it, created exclusively (O_EXCL), its mode
 *   set before any content, fsync'd, then renamed over the old one; a failure removes it.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import {
  failureText,
  parseKeyValues,
  parseSectionBytes,
  parseSections,
  ProbeError,
  probedNumber,
  runScript,
  section,
} from './remote.js';
import type { Module, ModuleContext, ModuleResult, Planned } from './types.js';

export interface FetchArgs {
  src: string;
  dest: string;
  flat?: boolean;
  fail_on_missing?: boolean;
  validate_checksum?: boolean;
}

/** Bytes per round trip: base64 of this stays well below the transport's 12 MiB output head. */
export const CHUNK_BYTES = 4 * 1024 * 1024;
/** The largest file fetch copies: the content passes through the controller's memory one chunk at a time. */
export const MAX_FETCH_BYTES = 1024 * 1024 * 1024;

export interface FetchState {
  local: string;
  /** Folders under dest to create, top first. */
  mkdirs: string[];
  size: number;
  sha1: string;
  /** The mode the new controller file gets: the old file's, or 0666 minus the controller's umask. */
  mode: number;
}

/** How the host answers for src: absent, a folder, unreadable, or a file with its size and sha1. */
export interface RemoteFile {
  type: 'absent' | 'directory' | 'unreadable' | 'file';
  size?: number;
  sha1?: string;
}

export function probeScript(src: string): string {
  // fetch follows symlinks on the host, as Ansible's (its stat is called with follow=True).
  return section(
    'src',
    `p=${quote(src)}`,
    'if [ ! -e "$p" ]; then echo type=absent',
    'elif [ -d "$p" ]; then echo type=directory',
    'elif [ ! -r "$p" ]; then echo type=unreadable',
    `else echo type=file; printf 'size=%s\\n' "$(stat -L -c %s -- "$p")"; printf 'sha1=%s\\n' "$(sha1sum < "$p" | cut -c1-40)"; fi`,
  );
}

export function parseRemoteFile(text: string | undefined): RemoteFile {
  if (text === undefined) throw new ProbeError('the probe of src printed nothing');
  const kv = parseKeyValues(text);
  const type = kv.get('type');
  if (type === 'absent' || type === 'directory' || type === 'unreadable') return { type };
  if (type !== 'file') throw new ProbeError(`the host reported type ${JSON.stringify(type?.slice(0, 40))} for src`);
  const size = probedNumber('the size of src', kv.get('size'));
  const sha1 = kv.get('sha1');
  if (size === undefined || sha1 === undefined || !/^[0-9a-f]{40}$/.test(sha1))
    throw new ProbeError('the host reported no valid size and sha1 for src');
  return { type, size, sha1 };
}

/**
 * The controller path for a fetched file and the part of it under dest that fetch creates (Ansible's
 * layout). Throws (an argument error) when src or the host's name would leave dest.
 */
export function localPath(
  args: Pick<FetchArgs, 'src' | 'dest' | 'flat'>,
  host: string,
  playbookDir: string,
): { base: string; rest: string[] } {
  const parts = (what: string, path: string): string[] => {
    const list = path.split('/').filter((p) => p !== '' && p !== '.');
    if (list.some((p) => p === '..'))
      throw new Error(`${what} ${JSON.stringify(path)} has a '..' component: the fetched file would leave dest`);
    return list;
  };
  // resolve() also drops a trailing '/' and '.' parts; flat's trailing '/' is read from args.dest.
  const destAbs = resolve(isAbsolute(args.dest) ? args.dest : join(playbookDir, args.dest));
  if (args.flat) {
    if (!args.dest.endsWith('/')) return { base: posix.dirname(destAbs), rest: [posix.basename(destAbs)] };
    const name = parts('src', args.src).pop();
    if (name === undefined) throw new Error(`src ${JSON.stringify(args.src)} names no file`);
    return { base: destAbs, rest: [name] };
  }
  const hostParts = parts('the inventory hostname', host);
  if (hostParts.length !== 1) throw new Error(`the inventory hostname ${JSON.stringify(host)} cannot be a folder name`);
  const srcParts = parts('src', args.src);
  if (srcParts.length === 0) throw new Error(`src ${JSON.stringify(args.src)} names no file`);
  return { base: destAbs, rest: [...hostParts, ...srcParts] };
}

/**
 * Walk the controller path below `base` without following links: which folders are missing, and the file's
 * current content (undefined when absent). A link, or a non-folder where a folder must be, is an error.
 */
function inspectLocal(base: string, rest: string[]): { mkdirs: string[]; current?: Buffer; mode?: number } {
  const mkdirs: string[] = [];
  let path = base;
  const stat = (p: string) => {
    try {
      return lstatSync(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  const top = stat(base);
  if (top !== undefined && !top.isDirectory() && !top.isSymbolicLink())
    throw new Error(`dest ${base} is not a directory`);
  if (top === undefined) {
    // dest itself is missing: Ansible creates it with its parents (makedirs_safe).
    for (let up = base; stat(up) === undefined && up !== dirname(up); up = dirname(up)) mkdirs.unshift(up);
  }
  for (let i = 0; i < rest.length; i++) {
    path = join(path, rest[i]!);
    const last = i === rest.length - 1;
    const st = mkdirs.length > 0 ? undefined : stat(path); // below a missing folder nothing exists
    if (st === undefined) {
      if (!last) mkdirs.push(path);
      continue;
    }
    if (st.isSymbolicLink())
      throw new Error(`${path} on the controller is a symlink: fetch does not follow links under dest`);
    if (!last && !st.isDirectory()) throw new Error(`${path} on the controller is not a directory`);
    if (last && st.isDirectory())
      throw new Error(
        `calculated dest '${path}' is an existing directory, use another path that does not point to an existing directory`,
      );
    if (last && !st.isFile()) throw new Error(`${path} on the controller is not a regular file`);
    if (last) return { mkdirs, current: readFileSync(path), mode: st.mode & 0o7777 };
  }
  return { mkdirs };
}

function isDirectory(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

const sha1Of = (bytes: Buffer): string => createHash('sha1').update(bytes).digest('hex');
const md5Of = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

function failed(msg: string, data: Record<string, unknown> = {}): Planned<FetchState> {
  return { changed: false, actions: [], failed: msg, data };
}

/** Read the host file in framed chunks into the open controller file `fd`; returns its sha1 and md5. */
async function transfer(ctx: ModuleContext, src: string, fd: number): Promise<{ sha1: string; md5: string }> {
  const sha1 = createHash('sha1');
  const md5 = createHash('md5');
  for (let offset = 0; ; offset += CHUNK_BYTES) {
    const script = [
      `p=${quote(src)}`,
      `[ -r "$p" ] || { echo "cannot read $p" >&2; exit 3; }`,
      section('chunk', `tail -c +${offset + 1} -- "$p" | head -c ${CHUNK_BYTES}`),
    ].join('\n');
    const res = await runScript(ctx, script);
    if (res.code !== 0) throw new ProbeError(`cannot read ${src}: ${failureText(res)}`);
    if (res.cut) throw new ProbeError(`the host's output for ${src} was cut (more than a chunk)`);
    const chunk = parseSectionBytes(res.stdout).get('chunk');
    if (chunk === undefined) throw new ProbeError(`the host sent no content for ${src}`);
    if (chunk.length > CHUNK_BYTES) throw new ProbeError(`the host sent more than was asked for ${src}`);
    if (offset + chunk.length > MAX_FETCH_BYTES)
      throw new ProbeError(`${src} is larger than fetch's limit of ${MAX_FETCH_BYTES} bytes`);
    writeSync(fd, chunk);
    sha1.update(chunk);
    md5.update(chunk);
    if (chunk.length < CHUNK_BYTES) break;
  }
  return { sha1: sha1.digest('hex'), md5: md5.digest('hex') };
}

export const fetchModule: Module<FetchArgs, FetchState> = {
  name: 'fetch',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['src', 'dest'],
    properties: {
      src: { type: 'string', minLength: 1 },
      dest: { type: 'string', minLength: 1 },
      flat: { type: 'boolean' },
      fail_on_missing: { type: 'boolean' },
      // Ansible's older name for fail_on_missing.
      fail_when_missing: { type: 'boolean' },
      validate_checksum: { type: 'boolean' },
      validate_md5: { type: 'boolean' },
    },
  },
  argAliases: { fail_when_missing: 'fail_on_missing', validate_md5: 'validate_checksum' },

  async check(ctx, args): Promise<Planned<FetchState>> {
    let where: { base: string; rest: string[] };
    try {
      where = localPath(args, ctx.host, ctx.playbookDir ?? process.cwd());
    } catch (err) {
      throw argError(ctx, err instanceof Error ? err.message : String(err));
    }
    const failOnMissing = args.fail_on_missing ?? true;
    try {
      const res = await runScript(ctx, probeScript(args.src));
      if (res.code !== 0) return failed(`cannot inspect ${args.src}: ${failureText(res)}`);
      const remote = parseRemoteFile(parseSections(res.stdout).get('src'));
      if (remote.type === 'directory')
        return failOnMissing
          ? failed('remote file is a directory, fetch cannot work on directories', { file: args.src })
          : {
              changed: false,
              actions: [],
              data: {
                file: args.src,
                msg: 'remote file is a directory, fetch cannot work on directories, not transferring, ignored',
              },
            };
      if (remote.type === 'absent' || remote.type === 'unreadable') {
        const msg = remote.type === 'absent' ? 'the remote file does not exist' : 'the remote file is not readable';
        return failOnMissing
          ? failed(`${msg}, not transferring`, { file: args.src })
          : { changed: false, actions: [], data: { file: args.src, msg: `${msg}, not transferring, ignored` } };
      }
      if (remote.size! > MAX_FETCH_BYTES)
        return failed(`${args.src} is ${remote.size} bytes, larger than fetch's limit of ${MAX_FETCH_BYTES} bytes`);
      const local = join(where.base, ...where.rest);
      if (args.flat && !args.dest.endsWith('/') && isDirectory(local))
        return failed(
          'dest is an existing directory, use a trailing slash if you want to fetch src into that directory',
        );
      let found: ReturnType<typeof inspectLocal>;
      try {
        found = inspectLocal(where.base, where.rest);
      } catch (err) {
        return failed(err instanceof Error ? err.message : String(err));
      }
      const localSha1 = found.current ? sha1Of(found.current) : undefined;
      if (localSha1 === remote.sha1)
        return {
          changed: false,
          actions: [],
          data: { file: args.src, dest: local, checksum: localSha1, md5sum: md5Of(found.current!) },
        };
      const umask = process.umask();
      const state: FetchState = {
        local,
        mkdirs: found.mkdirs,
        size: remote.size!,
        sha1: remote.sha1!,
        mode: found.mode ?? 0o666 & ~umask,
      };
      return {
        changed: true,
        actions: [`fetch ${ctx.host}:${args.src} (${remote.size} bytes) to ${local}`],
        diffs: [
          {
            path: local,
            before: localSha1 ? `(sha1 ${localSha1})\n` : '',
            after: `(sha1 ${remote.sha1}, fetched from ${ctx.host}:${args.src})\n`,
            ...(localSha1 ? {} : { beforeMissing: true }),
          },
        ],
        state,
        data: { file: args.src, dest: local, remote_checksum: remote.sha1, remote_md5sum: null },
      };
    } catch (err) {
      if (err instanceof ProbeError) return failed(err.message);
      throw err;
    }
  },

  async apply(ctx, args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!plan.changed || !state) return { changed: false, data };
    const validate = args.validate_checksum ?? true;
    let tmp: string | undefined;
    try {
      for (const dir of state.mkdirs) {
        try {
          mkdirSync(dir);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        // Made by us or meanwhile by someone else: it must be a real folder, never a link.
        if (!lstatSync(dir).isDirectory()) throw new Error(`${dir} on the controller is not a directory`);
      }
      const dir = posix.dirname(state.local);
      tmp = join(dir, `.cairn-fetch.${randomBytes(6).toString('hex')}`);
      // 'wx': O_CREAT|O_EXCL, so a name planted meanwhile (a link) is refused, never followed.
      const fd = openSync(tmp, 'wx', 0o600);
      let sums: { sha1: string; md5: string };
      try {
        fchmodSync(fd, state.mode);
        sums = await transfer(ctx, args.src, fd);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (validate && sums.sha1 !== state.sha1) {
        return {
          changed: false,
          failed: true,
          msg: 'checksum mismatch',
          data: { ...data, checksum: sums.sha1, md5sum: sums.md5, remote_checksum: state.sha1 },
        };
      }
      const now = (() => {
        try {
          return lstatSync(state.local);
        } catch {
          return undefined;
        }
      })();
      if (now?.isSymbolicLink() || now?.isDirectory())
        throw new Error(`${state.local} on the controller became a ${now.isDirectory() ? 'directory' : 'symlink'}`);
      renameSync(tmp, state.local);
      tmp = undefined;
      return { changed: true, diffs: plan.diffs, data: { ...data, checksum: sums.sha1, md5sum: sums.md5 } };
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      return { changed: false, failed: true, msg: `Failed to fetch the file: ${msg}`, data };
    } finally {
      if (tmp !== undefined) rmSync(tmp, { force: true });
    }
  },
};
