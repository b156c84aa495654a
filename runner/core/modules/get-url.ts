/**
 * get_url: download a file over HTTP(S)/FTP on the host itself, as Ansible's get_url. check downloads the
 * body through a pipe into `<algo>sum` (nothing is written on the host) and compares it with the file at
 * dest, so it predicts exactly whether apply changes the file; apply downloads into a temp file in dest's
 * directory (the atomic write script: created exclusively, owner and mode set before any content), verifies
 * the checksum check saw (or the `checksum` argument) before the rename, and never leaves a partial file.
 *
 * Everything about the request (URL, headers, credentials) reaches curl as a config file on standard input
 * (`curl -K -`), never in an argv. Reference: ansible/modules/get_url.py.
 */
import { posix } from 'node:path';
import { argv, quote } from '../transport/quote.js';
import { argError, attributeSchema, planAttributes, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import {
  atomicWriteScript,
  failureText,
  fileProbeScript,
  parseFileProbe,
  parseSections,
  parseWriteResult,
  ProbeError,
  runScript,
  section,
  type FileProbe,
} from './remote.js';
import type { FileDiff, Module, ModuleContext, Planned } from './types.js';

export interface GetUrlArgs extends AttributeArgs {
  url: string;
  dest: string;
  checksum?: string;
  force?: boolean;
  backup?: boolean;
  timeout?: number;
  headers?: Record<string, string | number>;
  url_username?: string;
  url_password?: string;
  force_basic_auth?: boolean;
  validate_certs?: boolean;
  http_agent?: string;
  use_proxy?: boolean;
}

const ALGORITHMS = ['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as const;
type Algorithm = (typeof ALGORITHMS)[number];
const HEX_LENGTH: Record<Algorithm, number> = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 };

/** `algo:hex` or `algo:URL` (a checksum file to read the hex from), as Ansible's checksum argument. */
export function parseChecksumArg(value: string): { algorithm: Algorithm; hex?: string; url?: string } {
  const colon = value.indexOf(':');
  const algorithm = value.slice(0, colon).toLowerCase();
  const rest = value.slice(colon + 1);
  if (colon <= 0 || !(ALGORITHMS as readonly string[]).includes(algorithm))
    throw new Error(
      `checksum ${JSON.stringify(value)} must be <algorithm>:<checksum|url> with one of ${ALGORITHMS.join(', ')}`,
    );
  const algo = algorithm as Algorithm;
  if (/^(https?|ftp|file):\/\//.test(rest)) return { algorithm: algo, url: rest };
  const hex = rest.replace(/\W+/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex) || hex.length !== HEX_LENGTH[algo]) throw new Error('The checksum format is invalid');
  return { algorithm: algo, hex };
}

/** Ansible's url_filename: the URL path's last part, or index.html. */
export function urlFilename(url: string): string {
  let path = url;
  try {
    path = new URL(url).pathname;
  } catch {
    // not a URL the WHATWG parser reads: fall back to the text after the last '/'
  }
  const name = decodeURIComponent(path.split('/').pop() ?? '');
  return name === '' || name === '.' || name === '..' ? 'index.html' : name;
}

/** Find `filename`'s checksum in a checksum file (sha256sum output, or one bare checksum), as Ansible does. */
export function checksumFromFile(text: string, filename: string): string | undefined {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const nonEmpty = lines.filter((l) => l.trim() !== '');
  if (nonEmpty.length === 1 && nonEmpty[0]!.trim().split(/\s+/).length === 1) return nonEmpty[0]!.trim().toLowerCase();
  for (const line of lines) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    let name = line.slice(space + 1);
    if (name.startsWith(' ') || name.startsWith('*')) name = name.slice(1);
    name = name.replace(/^[./]+/, '');
    if (name === filename) return line.slice(0, space).replace(/\W+/g, '').toLowerCase();
  }
  return undefined;
}

/** A value in a curl config file: double-quoted, with \ and " escaped; a line break could start a new option. */
function curlString(what: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new Error(`${what} must not contain a line break`);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The curl config (read from stdin with -K -) for one request. Holds any secret: it never goes in an argv. */
export function curlConfig(args: GetUrlArgs, url: string, ifModifiedSince?: number): string {
  const lines = [
    `url = ${curlString('url', url)}`,
    'location',
    'fail',
    'silent',
    'show-error',
    // The URL names the protocol; a redirect may not switch to another one (file://, scp://...).
    'proto = "=http,https,ftp"',
    'proto-redir = "=http,https,ftp"',
    `max-time = ${args.timeout ?? 10}`,
  ];
  if (args.validate_certs === false) lines.push('insecure');
  if (args.use_proxy === false) lines.push('noproxy = "*"');
  lines.push(`user-agent = ${curlString('http_agent', args.http_agent ?? 'ansible-httpget')}`);
  for (const [name, value] of Object.entries(args.headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
      throw new Error(`header name ${JSON.stringify(name)} is not valid`);
    lines.push(`header = ${curlString(`header ${name}`, `${name}: ${value}`)}`);
  }
  if (args.url_username !== undefined) {
    lines.push(`user = ${curlString('url_username', `${args.url_username}:${args.url_password ?? ''}`)}`);
    lines.push('basic');
  }
  if (ifModifiedSince !== undefined)
    lines.push(`time-cond = ${curlString('time', new Date(ifModifiedSince * 1000).toUTCString())}`);
  return `${lines.join('\n')}\n`;
}

/** Shell: run curl with the config held in "$cfg" (saved from stdin), its body on stdout. */
const curlFromConfig = 'printf \'%s\\n\' "$cfg" | curl -K -';

export interface GetUrlPlan {
  dest: string;
  url: string;
  algorithm: Algorithm;
  /** The body's checksum apply must see before it renames (what check saw, or the checksum argument). */
  expected: string;
  download: boolean;
  created: boolean;
  owner?: string;
  group?: string;
  mode?: string;
  backup: boolean;
  config: string;
}

/** The download as check sees it: the body's checksum, the HTTP code, curl's exit status and message. */
export function parseDownload(text: string): { hex?: string; code: number; exit: number; error: string } {
  let hex: string | undefined;
  let code = 0;
  let exit = -1;
  const errors: string[] = [];
  for (const line of text.split('\n')) {
    const status = /^cairn-http=(\d{3}) cairn-exit=(\d+)$/.exec(line);
    if (status) {
      code = Number(status[1]);
      exit = Number(status[2]);
    } else if (/^[0-9a-f]{32,128}$/.test(line)) hex = line;
    else if (line.trim() !== '') errors.push(line.trim());
  }
  if (exit === -1) throw new ProbeError('the download printed no status (curl too old? get_url needs curl >= 7.75)');
  return { ...(hex ? { hex } : {}), code, exit, error: errors.join('; ') };
}

function probeScript(args: GetUrlArgs, algorithm: Algorithm, dest: string): string {
  const filename = urlFilename(args.url);
  const sum = `${algorithm}sum`;
  return [
    'command -v curl >/dev/null 2>&1 || { echo "get_url needs curl on the host (Debian package curl)" >&2; exit 3; }',
    fileProbeScript('dest', dest, { checksum: true }),
    fileProbeScript('in-dir', posix.join(dest, filename), { checksum: true }),
    section('algo', `if [ -f ${quote(dest)} ]; then ${argv(sum, '--', dest)} | cut -d' ' -f1; fi`),
    section(
      'algo-in-dir',
      `if [ -f ${quote(posix.join(dest, filename))} ]; then ${argv(sum, '--', posix.join(dest, filename))} | cut -d' ' -f1; fi`,
    ),
  ].join('\n');
}

function failed(msg: string): Planned<GetUrlPlan> {
  return { changed: false, actions: [], failed: msg };
}

async function fetchChecksum(ctx: ModuleContext, args: GetUrlArgs, url: string, algorithm: Algorithm): Promise<string> {
  const res = await runScript(ctx, 'curl -K - 2>&1', { stdin: curlConfig(args, url) });
  if (res.code !== 0) throw new ProbeError(`cannot download the checksum file ${url}: ${failureText(res)}`);
  const hex = checksumFromFile(res.stdout, urlFilename(args.url));
  if (hex === undefined)
    throw new ProbeError(`Unable to find a checksum for file '${urlFilename(args.url)}' in '${url}'`);
  if (!/^[0-9a-f]+$/.test(hex) || hex.length !== HEX_LENGTH[algorithm])
    throw new ProbeError('The checksum format is invalid');
  return hex;
}

export const getUrlModule: Module<GetUrlArgs, GetUrlPlan> = {
  name: 'get_url',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url', 'dest'],
    properties: {
      url: { type: 'string', pattern: '^(https?|ftp)://' },
      dest: { type: 'string', pattern: '^/' },
      checksum: { type: 'string' },
      force: { type: 'boolean' },
      backup: { type: 'boolean' },
      timeout: { type: 'integer', minimum: 1 },
      headers: { type: 'object', additionalProperties: { type: ['string', 'number'] } },
      url_username: { type: 'string' },
      url_password: { type: 'string' },
      force_basic_auth: { type: 'boolean' },
      validate_certs: { type: 'boolean' },
      http_agent: { type: 'string' },
      use_proxy: { type: 'boolean' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<GetUrlPlan>> {
    validateAttributeArgs(ctx, args);
    let checksum: ReturnType<typeof parseChecksumArg> | undefined;
    let config: string;
    try {
      checksum = args.checksum ? parseChecksumArg(args.checksum) : undefined;
      config = curlConfig(args, args.url);
    } catch (err) {
      throw argError(ctx, err instanceof Error ? err.message : String(err));
    }
    const algorithm = checksum?.algorithm ?? 'sha256';
    try {
      const wanted = checksum?.url ? await fetchChecksum(ctx, args, checksum.url, algorithm) : checksum?.hex;
      // One round trip for the destination (a file, or a directory to put the URL's file name in).
      const res = await runScript(ctx, probeScript(args, algorithm, args.dest));
      if (res.code !== 0) return failed(failureText(res));
      const s = parseSections(res.stdout);
      const destProbe = parseFileProbe(args.dest, s.get('dest'));
      const isDir = destProbe.type === 'directory';
      const dest = isDir ? posix.join(args.dest, urlFilename(args.url)) : args.dest;
      const probe: FileProbe = isDir ? parseFileProbe(dest, s.get('in-dir')) : destProbe;
      if (probe.type !== 'absent' && probe.type !== 'file') return failed(`${dest} is not a regular file`);
      if (probe.type === 'absent' && !isDir && !probe.parentExists)
        return failed(`Destination ${posix.dirname(dest)} does not exist`);
      const present = (isDir ? s.get('algo-in-dir') : s.get('algo'))?.trim() ?? '';
      const current = probe.type === 'file' ? present : undefined;
      if (current !== undefined && !/^[0-9a-f]+$/.test(current))
        throw new ProbeError(`the host reported a checksum of ${dest} that is not hex`);
      const attrs = planAttributes(probe.type === 'file' ? probe : undefined, args, false, probe.umask);
      const base = { dest, url: args.url, algorithm, backup: Boolean(args.backup), config };
      const keep = (msg: string): Planned<GetUrlPlan> => attributesOnly(base, attrs, msg, current ?? '');

      // As Ansible: an existing file whose checksum matches (force off) is not downloaded again.
      if (current !== undefined && !args.force && wanted !== undefined && current === wanted)
        return keep('file already exists');
      // Without a checksum and force off, the download is conditional on the file's mtime (If-Modified-Since).
      const conditional = current !== undefined && !args.force && wanted === undefined ? probe.mtime : undefined;
      const download = await runScript(
        ctx,
        [
          'cfg=$(cat)',
          section(
            'download',
            `{ ${curlFromConfig} -w '%{stderr}cairn-http=%{http_code} cairn-exit=%{exitcode}\\n' | ${algorithm}sum | cut -d' ' -f1; } 2>&1`,
          ),
        ].join('\n'),
        { stdin: curlConfig(args, args.url, conditional) },
      );
      if (download.code !== 0) return failed(`Request failed: ${failureText(download)}`);
      const got = parseDownload(parseSections(download.stdout).get('download') ?? '');
      if (got.exit !== 0) return failed(`Request failed: ${got.error || `curl exit ${got.exit}`} (HTTP ${got.code})`);
      if (got.code === 304) return keep('HTTP Error 304: Not Modified');
      if (!got.hex) throw new ProbeError('the host printed no checksum of the download');
      if (wanted !== undefined && got.hex !== wanted)
        return failed(`The checksum for ${dest} did not match ${wanted}; it was ${got.hex}.`);
      if (current === got.hex) return keep('OK');
      const state: GetUrlPlan = {
        ...base,
        expected: got.hex,
        download: true,
        created: probe.type === 'absent',
        ...(attrs.owner !== undefined ? { owner: attrs.owner } : {}),
        ...(attrs.group !== undefined ? { group: attrs.group } : {}),
        ...(attrs.mode !== undefined ? { mode: attrs.mode } : {}),
      };
      const diff: FileDiff = {
        path: dest,
        before: current !== undefined ? `(${algorithm} ${current})\n` : '',
        after: `(${algorithm} ${got.hex}, downloaded from ${args.url})\n`,
        ...(probe.type === 'absent' ? { beforeMissing: true } : {}),
        ...(attrs.words.length ? { attributes: attrs.words } : {}),
      };
      const actions = [`download ${args.url} to ${dest}`];
      if (attrs.words.length) actions.push(`set ${attrs.words.join(', ')} on ${dest}`);
      return { changed: true, actions, diffs: [diff], state, data: { dest, url: args.url, checksum_src: got.hex } };
    } catch (err) {
      if (err instanceof ProbeError) return failed(err.message);
      throw err;
    }
  },

  async apply(ctx, _args, plan) {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!plan.changed || !state) return { changed: false, data };
    if (!state.download) {
      const commands: string[] = [];
      if (state.owner !== undefined) commands.push(argv('chown', '--', state.owner, state.dest));
      if (state.group !== undefined) commands.push(argv('chgrp', '--', state.group, state.dest));
      if (state.mode !== undefined) commands.push(argv('chmod', '--', state.mode, state.dest));
      const res = await runScript(ctx, `set -e\n${commands.join('\n')}`);
      if (res.code !== 0) return { changed: false, failed: true, msg: failureText(res), data };
      return { changed: true, diffs: plan.diffs, data };
    }
    // The temp file is checked against the checksum check saw before it replaces dest: a body that changed
    // since, or a transfer cut short (curl's exit status is lost in the pipe), never reaches dest.
    const verify = `sh -c '[ "$(${state.algorithm}sum < "$1" | cut -d" " -f1)" = ${state.expected} ]' sh %s`;
    const write = atomicWriteScript({
      dest: state.dest,
      ...(state.owner !== undefined ? { owner: state.owner } : {}),
      ...(state.group !== undefined ? { group: state.group } : {}),
      ...(state.mode !== undefined ? { mode: state.mode } : {}),
      validate: verify,
      backup: state.backup,
    });
    const script = ['cfg=$(cat)', `${curlFromConfig} | {`, write, '}'].join('\n');
    const res = await runScript(ctx, script, { stdin: state.config });
    const outcome = parseWriteResult(res, state.dest, '');
    if (!outcome.ok) {
      const msg = /validation of/.test(outcome.error ?? '')
        ? `The checksum for ${state.dest} did not match ${state.expected} (the download changed or was cut short); ${state.dest} was left unchanged`
        : (outcome.error ?? 'download failed');
      return { changed: false, failed: true, msg, data };
    }
    return {
      changed: true,
      diffs: plan.diffs,
      data: { ...data, ...(outcome.backupFile ? { backup_file: outcome.backupFile } : {}) },
    };
  },
};

function attributesOnly(
  base: Pick<GetUrlPlan, 'dest' | 'url' | 'algorithm' | 'backup' | 'config'>,
  attrs: ReturnType<typeof planAttributes>,
  msg: string,
  current: string,
): Planned<GetUrlPlan> {
  const data = { dest: base.dest, url: base.url, msg };
  if (attrs.words.length === 0) return { changed: false, actions: [], data };
  const state: GetUrlPlan = {
    ...base,
    expected: current,
    download: false,
    created: false,
    ...(attrs.owner !== undefined ? { owner: attrs.owner } : {}),
    ...(attrs.group !== undefined ? { group: attrs.group } : {}),
    ...(attrs.mode !== undefined ? { mode: attrs.mode } : {}),
  };
  const text = `(${base.algorithm} ${current})\n`;
  return {
    changed: true,
    actions: [`set ${attrs.words.join(', ')} on ${base.dest}`],
    diffs: [{ path: base.dest, before: text, after: text, attributes: attrs.words }],
    state,
    data: { ...data, msg: 'file already exists but file attributes changed' },
  };
}
