/**
 * file: a path's state (file, directory, absent, touch, link) and attributes, as Ansible's file module.
 * With recurse, attributes are compared for every entry under a directory and only the entries that differ
 * are changed, so the actions say exactly what moves.
 */
import { isUtf8 } from 'node:buffer';
import { posix } from 'node:path';
import { argv, quote } from '../transport/quote.js';
import {
  argError,
  attributeSchema,
  namesWanted,
  parseModeArg,
  planAttributes,
  targetMode,
  validateAttributeArgs,
  type AttributeArgs,
} from './attributes.js';
import {
  failureText,
  fileProbeScript,
  parseFileProbe,
  parseKeyValues,
  parseSectionBytes,
  probedMode,
  probedNumber,
  ProbeError,
  runScript,
  section,
  type FileProbe,
} from './remote.js';
import type { FileDiff, Module, ModuleContext, ModuleResult, Planned } from './types.js';

export interface FileArgs extends AttributeArgs {
  path: string;
  state?: 'file' | 'directory' | 'absent' | 'touch' | 'link';
  src?: string;
  recurse?: boolean;
  force?: boolean;
  follow?: boolean;
  /**
   * Ansible's times: `preserve` (the default except for touch) or `now` (touch's default). A given
   * timestamp is not implemented: refused when the task runs, naming it.
   */
  modification_time?: string;
  access_time?: string;
  modification_time_format?: string;
  access_time_format?: string;
}

/** One entry under a directory, as the recurse probe lists it. */
export interface TreeEntry {
  path: string;
  mode: string;
  uid: number;
  gid: number;
  owner: string;
  group: string;
  isDir: boolean;
  isLink: boolean;
}

/** Entries past this many under one directory are refused rather than planned one by one. */
export const MAX_RECURSE_ENTRIES = 100_000;

export interface FilePlan {
  path: string;
  /** The state-changing step, if any. */
  step?: 'remove' | 'mkdir' | 'touch' | 'link';
  /** touch -a or -m: one of the times is preserved. */
  touchOnly?: '-a' | '-m';
  linkSrc?: string;
  owner?: string;
  group?: string;
  mode?: string;
  /** Recursive attribute changes: exact entries, grouped by what is set. */
  treeOwner: string[];
  treeGroup: string[];
  treeModes: Record<string, string[]>;
  wantOwner?: string;
  wantGroup?: string;
  /** The path ends up a symlink: chown -h. */
  isLink: boolean;
}

/**
 * The recurse probe prints NUL-terminated records: mode, uid, gid, owner, group, type letter, path. A file
 * name may hold newlines, tabs and cairn's own section marker: the path is the record's last field, records
 * end with NUL (which no name can hold), and the section is base64-framed, so no name can end a record or a
 * section early.
 */
export function treeProbeScript(path: string): string {
  return section(
    'tree',
    `if [ -d ${quote(path)} ]; then`,
    `find ${quote(path)} -mindepth 1 -printf '%m\\t%U\\t%G\\t%u\\t%g\\t%y\\t%p\\0' | head -z -n ${MAX_RECURSE_ENTRIES + 1}`,
    'fi',
  );
}

const FIND_TYPES = new Set(['f', 'd', 'l', 'b', 'c', 'p', 's', 'D']);

/**
 * The records of the recurse probe, validated: every field must be what find prints (octal mode, numeric
 * ids, a known type letter) and every path must lie strictly inside `root`, or the whole probe is refused.
 */
export function parseTree(text: string, root: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const records = text.split('\0');
  // The text ends with a NUL, so the last piece is empty; anything else there is a record cut short.
  const last = records.pop();
  if (last !== undefined && last !== '')
    throw new ProbeError(`the listing of ${root} ends with an unterminated record`);
  for (const record of records) {
    const fields = record.split('\t');
    if (fields.length < 7) throw new ProbeError(`the listing of ${root} holds a malformed record`);
    const [mode, uid, gid, owner, group, type] = fields as [string, string, string, string, string, string];
    const path = fields.slice(6).join('\t');
    if (!FIND_TYPES.has(type))
      throw new ProbeError(`the listing of ${root} holds an unknown file type ${JSON.stringify(type)}`);
    const segments = path.slice(prefix.length).split('/');
    if (!path.startsWith(prefix) || segments.some((segment) => segment === '' || segment === '.' || segment === '..')) {
      throw new ProbeError(`the listing of ${root} holds a path outside it: ${JSON.stringify(path.slice(0, 120))}`);
    }
    entries.push({
      path,
      mode: probedMode(`the mode of ${JSON.stringify(path)}`, mode),
      uid: probedNumber(`the uid of ${JSON.stringify(path)}`, uid) ?? 0,
      gid: probedNumber(`the gid of ${JSON.stringify(path)}`, gid) ?? 0,
      owner,
      group,
      isDir: type === 'd',
      isLink: type === 'l',
    });
  }
  return entries;
}

function entryAsProbe(entry: TreeEntry, umask: number): FileProbe {
  return {
    path: entry.path,
    type: entry.isLink ? 'link' : entry.isDir ? 'directory' : 'file',
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    owner: entry.owner,
    group: entry.group,
    umask,
  };
}

function failed(message: string): Planned<FilePlan> {
  return { changed: false, actions: [], failed: message };
}

/** Plan the file module from its probes (pure; table-tested). */
export function planFile(
  args: FileArgs,
  probe: FileProbe,
  extra: { srcExists?: boolean; tree?: TreeEntry[] },
): Planned<FilePlan> {
  const state =
    args.state ??
    (probe.type === 'absent'
      ? 'file'
      : probe.type === 'directory'
        ? 'directory'
        : probe.type === 'link'
          ? 'link'
          : 'file');
  const path = args.path;
  const plan: FilePlan = { path, treeOwner: [], treeGroup: [], treeModes: {}, isLink: state === 'link' };
  const actions: string[] = [];
  const attributeWords: string[] = [];
  const diff: FileDiff = { path, before: '', after: '' };
  const exists = probe.type !== 'absent';
  let stateWord: string | undefined;
  for (const [key, value] of [
    ['modification_time', args.modification_time],
    ['access_time', args.access_time],
  ] as const) {
    const fine = value === undefined || value === 'preserve' || (value === 'now' && state === 'touch');
    if (!fine)
      return failed(`file: ${key}=${value} is not implemented by cairn (it keeps times, or touch sets them now)`);
  }
  const keepMtime = args.modification_time === 'preserve';
  const keepAtime = args.access_time === 'preserve';

  if (state === 'absent') {
    if (!exists) return { changed: false, actions: [], state: plan, data: { path, state: 'absent' } };
    plan.step = 'remove';
    actions.push(probe.type === 'directory' ? `remove directory ${path} and everything in it` : `remove ${path}`);
    return {
      changed: true,
      actions,
      state: plan,
      diffs: [{ path, before: '', after: '', afterMissing: true, attributes: [`state ${probe.type} -> absent`] }],
      data: { path, state: 'absent' },
    };
  }

  if (state === 'file') {
    if (!exists) return failed(`file (${path}) is absent, cannot continue`);
    if (probe.type !== 'file') return failed(`file (${path}) is ${probe.type}, cannot continue`);
  } else if (state === 'directory') {
    if (exists && probe.type !== 'directory')
      return failed(`${path} already exists as a ${probe.type}; it is not a directory`);
    if (!exists) {
      plan.step = 'mkdir';
      stateWord = 'state absent -> directory';
      actions.push(`create directory ${path}`);
    }
  } else if (state === 'touch') {
    if (probe.type === 'directory') {
      plan.step = 'touch';
      actions.push(`update the times of ${path}`);
    } else if (!exists) {
      plan.step = 'touch';
      actions.push(`create ${path} (touch)`);
      stateWord = 'state absent -> file';
    } else if (!(keepMtime && keepAtime)) {
      // As Ansible: both times preserved leaves an existing file's times alone (and the task idempotent).
      plan.step = 'touch';
      if (keepMtime || keepAtime) plan.touchOnly = keepMtime ? '-a' : '-m';
      actions.push(`update the ${keepMtime ? 'access time' : keepAtime ? 'modification time' : 'times'} of ${path}`);
    }
  } else if (state === 'link') {
    if (args.src === undefined) return failed('state=link needs src');
    if (probe.type === 'link') {
      if (probe.linkTarget !== args.src) {
        plan.step = 'link';
        plan.linkSrc = args.src;
        actions.push(`point ${path} at ${args.src} (was ${probe.linkTarget})`);
        stateWord = `link ${probe.linkTarget} -> ${args.src}`;
      }
    } else if (probe.type === 'directory') {
      return failed(`refusing to replace the directory ${path} with a symlink`);
    } else if (exists && !args.force) {
      return failed(`refusing to convert from ${probe.type} to symlink for ${path}; use force: true`);
    } else {
      if (!extra.srcExists && !args.force)
        return failed(`src file ${args.src} does not exist; use force: true if you really want to create the link`);
      plan.step = 'link';
      plan.linkSrc = args.src;
      actions.push(`link ${path} -> ${args.src}`);
      stateWord = `state ${probe.type} -> link`;
    }
  }

  const isDir = state === 'directory' || probe.type === 'directory';
  // A path that is created by this step is compared with nothing: every given attribute is planned.
  const created = plan.step === 'mkdir' || plan.step === 'link' || (plan.step === 'touch' && !exists);
  const attrs = planAttributes(
    created ? undefined : probe,
    state === 'link' ? { owner: args.owner, group: args.group } : args,
    isDir,
    probe.umask,
  );
  if (attrs.owner !== undefined) plan.owner = attrs.owner;
  if (attrs.group !== undefined) plan.group = attrs.group;
  if (attrs.mode !== undefined) plan.mode = attrs.mode;
  if (attrs.words.length > 0) {
    attributeWords.push(...attrs.words);
    actions.push(`set ${attrs.words.join(', ')} on ${path}`);
  }

  if (args.recurse && state === 'directory') {
    const tree = extra.tree ?? [];
    if (tree.length > MAX_RECURSE_ENTRIES)
      return failed(`${path} holds more than ${MAX_RECURSE_ENTRIES} entries; cairn does not recurse that far`);
    const modeSpec = args.mode !== undefined ? parseModeArg(args.mode) : undefined;
    for (const entry of tree) {
      const entryProbe = entryAsProbe(entry, probe.umask);
      const entryAttrs = planAttributes(entryProbe, { owner: args.owner, group: args.group }, entry.isDir, probe.umask);
      if (entryAttrs.owner !== undefined) plan.treeOwner.push(entry.path);
      if (entryAttrs.group !== undefined) plan.treeGroup.push(entry.path);
      // chmod on a symlink would change its target: links inside the tree keep their mode, as chmod -R does.
      if (modeSpec && !entry.isLink) {
        const mode = targetMode(modeSpec, entry.mode, entry.isDir, probe.umask);
        if (mode !== entry.mode) (plan.treeModes[mode] ??= []).push(entry.path);
      }
    }
    if (plan.treeOwner.length > 0)
      actions.push(`set owner ${args.owner} on ${plan.treeOwner.length} entries under ${path}`);
    if (plan.treeGroup.length > 0)
      actions.push(`set group ${args.group} on ${plan.treeGroup.length} entries under ${path}`);
    for (const [mode, paths] of Object.entries(plan.treeModes))
      actions.push(`set mode ${mode} on ${paths.length} entries under ${path}`);
    const changedEntries = new Set([...plan.treeOwner, ...plan.treeGroup, ...Object.values(plan.treeModes).flat()]);
    if (changedEntries.size > 0)
      attributeWords.push(`${changedEntries.size} entries under ${path} change owner, group or mode`);
  }
  if (args.owner !== undefined) plan.wantOwner = args.owner;
  if (args.group !== undefined) plan.wantGroup = args.group;

  const changed = actions.length > 0;
  const finalState = state === 'touch' ? (probe.type === 'directory' ? 'directory' : 'file') : state;
  if (!changed) return { changed: false, actions: [], state: plan, data: { path, state: finalState } };
  if (!exists) diff.beforeMissing = true;
  diff.attributes = [...(stateWord ? [stateWord] : []), ...attributeWords];
  return { changed: true, actions, state: plan, diffs: [diff], data: { path, state: finalState } };
}

/**
 * Shell lines that run `command` (its options) then `--`, `operand` (an owner, group or mode) and `paths` in
 * chunks, so no command line grows without bound. Options end before the operand: an owner such as
 * `--reference=/etc/shadow` can never be read as an option.
 */
function chunked(command: string[], operand: string, paths: string[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < paths.length; i += 200)
    lines.push(`${argv(...command, '--', operand, ...paths.slice(i, i + 200))} || exit 1`);
  return lines;
}

/** The apply script for a FilePlan (pure; table-tested). */
export function fileApplyScript(plan: FilePlan): string {
  const lines: string[] = [];
  const p = plan.path;
  if (plan.step === 'remove') lines.push(`rm -rf -- ${quote(p)} || exit 1`);
  if (plan.step === 'mkdir') lines.push(`mkdir -p -- ${quote(p)} || exit 1`);
  if (plan.step === 'touch') lines.push(`touch ${plan.touchOnly ? `${plan.touchOnly} ` : ''}-- ${quote(p)} || exit 1`);
  if (plan.step === 'link' && plan.linkSrc !== undefined) {
    // Made under an unpredictable name beside the path, then renamed over it: the path never goes missing.
    // `ln -sT` makes the link itself (symlink(2) fails on any existing name, never writes into a directory
    // someone planted there), and nothing is removed first: a name that exists is someone else's.
    lines.push(
      `tmp=$(mktemp -u ${quote(`${posix.dirname(p)}/.cairn-link.`)}XXXXXXXXXXXX) || exit 1`,
      `ln -sT -- ${quote(plan.linkSrc)} "$tmp" || exit 1`,
      `mv -fT -- "$tmp" ${quote(p)} || { rm -f -- "$tmp"; exit 1; }`,
    );
  }
  const h = plan.isLink ? ['-h'] : [];
  if (plan.owner !== undefined) lines.push(`${argv('chown', ...h, '--', plan.owner, p)} || exit 1`);
  if (plan.group !== undefined) lines.push(`${argv('chgrp', ...h, '--', plan.group, p)} || exit 1`);
  if (plan.mode !== undefined) lines.push(`${argv('chmod', '--', plan.mode, p)} || exit 1`);
  if (plan.wantOwner !== undefined) lines.push(...chunked(['chown', '-h'], plan.wantOwner, plan.treeOwner));
  if (plan.wantGroup !== undefined) lines.push(...chunked(['chgrp', '-h'], plan.wantGroup, plan.treeGroup));
  for (const [mode, paths] of Object.entries(plan.treeModes)) lines.push(...chunked(['chmod'], mode, paths));
  return lines.join('\n');
}

async function probe(
  ctx: ModuleContext,
  args: FileArgs,
): Promise<{ probe: FileProbe; srcExists?: boolean; tree?: TreeEntry[] } | { failed: string }> {
  const state = args.state;
  // Ansible follows symlinks for file/directory/touch by default; link and absent look at the link itself.
  const follow = state === 'link' || state === 'absent' ? false : (args.follow ?? true);
  const parts = [fileProbeScript('file', args.path, { follow, checksum: false, names: namesWanted(args) })];
  if (state === 'link' && args.src !== undefined) {
    const base = posix.isAbsolute(args.src) ? args.src : posix.join(posix.dirname(args.path), args.src);
    parts.push(section('src', `if [ -e ${quote(base)} ]; then echo exists=1; else echo exists=0; fi`));
  }
  if (args.recurse && state === 'directory') parts.push(treeProbeScript(args.path));
  const res = await runScript(ctx, parts.join('\n'));
  if (res.code !== 0) return { failed: `cannot inspect ${args.path}: ${failureText(res)}` };
  try {
    const sections = parseSectionBytes(res.stdout);
    const fileProbe = parseFileProbe(args.path, sections.get('file')?.toString('utf8'));
    const out: { probe: FileProbe; srcExists?: boolean; tree?: TreeEntry[] } = { probe: fileProbe };
    const src = sections.get('src');
    if (src !== undefined) out.srcExists = parseKeyValues(src.toString('utf8')).get('exists') === '1';
    const tree = sections.get('tree');
    if (tree !== undefined) {
      // A name that is not UTF-8 would come back as a different name: refuse rather than chown the wrong path.
      if (!isUtf8(tree)) return { failed: `cannot inspect ${args.path}: some names under it are not valid UTF-8` };
      out.tree = parseTree(tree.toString('utf8'), args.path);
    }
    return out;
  } catch (err) {
    if (err instanceof ProbeError) return { failed: `cannot inspect ${args.path}: ${err.message}` };
    throw err;
  }
}

export const fileModule: Module<FileArgs, FilePlan> = {
  name: 'file',
  // Ansible's aliases (ansible.builtin.file's documentation).
  argAliases: { dest: 'path', name: 'path' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', minLength: 1 },
      state: { enum: ['file', 'directory', 'absent', 'touch', 'link'] },
      src: { type: 'string', minLength: 1 },
      recurse: { type: 'boolean' },
      force: { type: 'boolean' },
      follow: { type: 'boolean' },
      modification_time: { type: 'string' },
      access_time: { type: 'string' },
      modification_time_format: { type: 'string' },
      access_time_format: { type: 'string' },
      ...attributeSchema,
    },
  },

  async check(ctx, args) {
    validateAttributeArgs(ctx, args);
    if (args.state === 'link' && args.src === undefined) throw argError(ctx, 'file with state=link needs src');
    if (args.state === 'link' && args.mode !== undefined)
      throw argError(ctx, 'file cannot set the mode of a symlink (state=link); set it on the target');
    if (args.src !== undefined && args.state !== 'link') throw argError(ctx, 'file src is only used with state=link');
    if (args.recurse && args.state !== 'directory') throw argError(ctx, 'file recurse needs state=directory');
    const probed = await probe(ctx, args);
    if ('failed' in probed) return { changed: false, actions: [], failed: probed.failed };
    return planFile(args, probed.probe, probed);
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = plan.data ?? {};
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
    const res = await runScript(ctx, fileApplyScript(state));
    if (res.code !== 0)
      return {
        changed: false,
        failed: true,
        msg: `changing ${state.path} failed: ${failureText(res)}`,
        diffs: plan.diffs,
        data,
      };
    return { changed: true, diffs: plan.diffs, data };
  },
};
