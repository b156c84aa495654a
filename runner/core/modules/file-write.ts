/**
 * Planning and applying "this file should have this content and these attributes", shared by copy,
 * template, lineinfile, blockinfile and sysctl. check builds a FileWritePlan from the probe; apply carries
 * out exactly that plan: the atomic write script when the content changes, chown/chgrp/chmod alone when
 * only attributes do.
 */
import { createHash } from 'node:crypto';
import { argv, quote } from '../transport/quote.js';
import { argError, namesWanted, planAttributes, type AttributeArgs } from './attributes.js';
import {
  atomicWriteScript,
  diffText,
  failureText,
  inlineContent,
  parseWriteResult,
  probeFile,
  ProbeError,
  runScript,
  type FileProbe,
} from './remote.js';
import type { FileDiff, ModuleContext, ModuleResult, Planned } from './types.js';

export interface FileWriteSpec extends AttributeArgs {
  path: string;
  /** The wanted content; undefined when only attributes are managed (force: false on an existing file). */
  content: Buffer | undefined;
  backup?: boolean;
  validate?: string;
}

export interface FileWritePlan {
  path: string;
  /** Write `content` (atomic script); otherwise only `attributes` are set on the existing file. */
  writeContent: boolean;
  content?: Buffer;
  owner?: string;
  group?: string;
  mode?: string;
  backup: boolean;
  validate?: string;
  created: boolean;
}

export function sha256Of(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * The plan for one file: changed when the content's checksum or any wanted attribute differs. The diff
 * carries before/after text and the attribute changes in words.
 */
export function planFileWrite(
  probe: FileProbe,
  spec: FileWriteSpec,
): Planned<FileWritePlan> & { state: FileWritePlan } {
  const exists = probe.type !== 'absent';
  const wantSha = spec.content !== undefined ? sha256Of(spec.content) : undefined;
  const contentChanges = spec.content !== undefined && (!exists || probe.sha256 !== wantSha);
  // A file written anew gets the wanted attributes on the temp file; an existing one keeps its own unless given.
  const attrs = planAttributes(exists ? probe : undefined, spec, false, probe.umask);
  const state: FileWritePlan = {
    path: spec.path,
    writeContent: contentChanges,
    backup: Boolean(spec.backup),
    created: !exists,
    ...(contentChanges ? { content: spec.content } : {}),
    ...(attrs.owner !== undefined ? { owner: attrs.owner } : {}),
    ...(attrs.group !== undefined ? { group: attrs.group } : {}),
    ...(attrs.mode !== undefined ? { mode: attrs.mode } : {}),
    ...(spec.validate !== undefined ? { validate: spec.validate } : {}),
  };
  const actions: string[] = [];
  if (contentChanges) actions.push(exists ? `update ${spec.path}` : `create ${spec.path}`);
  if (attrs.words.length > 0) actions.push(`set ${attrs.words.join(', ')} on ${spec.path}`);
  const changed = actions.length > 0;
  const diffs: FileDiff[] = [];
  if (changed) {
    const before = exists ? diffText(probe.content, probe.sha256) : '';
    const after = contentChanges ? diffText(spec.content) : before;
    const diff: FileDiff = { path: spec.path, before, after };
    if (!exists) diff.beforeMissing = true;
    if (attrs.words.length > 0) diff.attributes = attrs.words;
    diffs.push(diff);
  }
  return { changed, actions, diffs, state };
}

/** Carry out a FileWritePlan in one round trip. */
/** What copy and template have in common: the wanted bytes and how to put them at `dest`. */
export interface ContentWriteArgs extends AttributeArgs {
  dest: string;
  backup?: boolean;
  validate?: string;
  /** false: an existing file keeps its content (only attributes are managed), as Ansible's force: no. */
  force?: boolean;
}

/**
 * The check of copy and template: probe `dest`, refuse a directory, and plan the write of `content`. The
 * plan's data says what was written (dest, checksum, size, plus `data`) for the result.
 */
export async function planContentWrite(
  ctx: ModuleContext,
  args: ContentWriteArgs,
  content: Buffer,
  data: Record<string, unknown> = {},
): Promise<Planned<FileWritePlan>> {
  let probe;
  try {
    probe = await probeFile(ctx, args.dest, { content: true, names: namesWanted(args) });
  } catch (err) {
    if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
    throw err;
  }
  if (probe.type === 'directory')
    return { changed: false, actions: [], failed: `dest ${args.dest} is a directory; give the full path of the file` };
  // A missing directory is not a failure of the plan: in check mode an earlier task may be about to
  // create it. The plan carries a note, and apply fails clearly if the directory is still missing.
  const missingDirNote =
    probe.type === 'absent' && !probe.parentExists
      ? [
          `${args.dest} will be created in a directory that does not exist yet (an earlier task must create it, or apply fails)`,
        ]
      : [];
  const keepContent = args.force === false && probe.type !== 'absent';
  const plan = planFileWrite(probe, {
    path: args.dest,
    content: keepContent ? undefined : content,
    owner: args.owner,
    group: args.group,
    mode: args.mode,
    backup: args.backup,
    validate: args.validate,
  });
  plan.data = { dest: args.dest, ...data, checksum: sha256Of(content), size: content.length };
  plan.actions.push(...missingDirNote);
  return plan;
}

export async function applyFileWrite(
  ctx: ModuleContext,
  plan: Planned<FileWritePlan>,
  data: Record<string, unknown> = {},
): Promise<ModuleResult> {
  const state = plan.state;
  if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
  const result: ModuleResult = {
    changed: plan.changed,
    diffs: plan.diffs,
    data: { ...data, path: state.path, changed: plan.changed },
  };
  if (!plan.changed) return result;
  if (state.writeContent && state.content !== undefined) {
    // Small text travels in the script (printf, no cat or wc on the host); anything else on stdin.
    const inline = inlineContent(state.content);
    const script = atomicWriteScript({
      dest: state.path,
      ...(state.owner !== undefined ? { owner: state.owner } : {}),
      ...(state.group !== undefined ? { group: state.group } : {}),
      ...(state.mode !== undefined ? { mode: state.mode } : {}),
      ...(state.validate !== undefined ? { validate: state.validate } : {}),
      backup: state.backup,
      ...(inline !== undefined ? { content: inline } : { expectedBytes: state.content.length }),
    });
    const res = await runScript(ctx, script, inline !== undefined ? {} : { stdin: state.content });
    const outcome = parseWriteResult(res, state.path, state.content.toString('utf8'));
    if (!outcome.ok) return { ...result, changed: false, failed: true, msg: outcome.error };
    if (outcome.backupFile) result.data.backup_file = outcome.backupFile;
    return result;
  }
  const commands: string[] = [];
  if (state.owner !== undefined) commands.push(`${argv('chown', '--', state.owner, state.path)}`);
  if (state.group !== undefined) commands.push(`${argv('chgrp', '--', state.group, state.path)}`);
  if (state.mode !== undefined) commands.push(`${argv('chmod', '--', state.mode, state.path)}`);
  const res = await runScript(ctx, `set -e\n${commands.join('\n')}`);
  if (res.code !== 0)
    return {
      ...result,
      changed: false,
      failed: true,
      msg: `setting attributes of ${quote(state.path)} failed: ${failureText(res)}`,
    };
  return result;
}

/** What an edit function (lineinfile, blockinfile, sysctl) decided about a file's text. */
export interface TextEdit {
  /** The new text; equal to the old one when nothing changes. */
  text: string;
  changed: boolean;
  /** Ansible's message: "line added", "Block inserted"... */
  msg: string;
}

/**
 * Plan an edit computed from the probed text: content when the edit changed it, attributes in any case. A
 * file that is missing and stays missing plans nothing.
 */
export function planTextEdit(
  probe: FileProbe,
  edit: TextEdit,
  spec: AttributeArgs & { path: string; backup?: boolean; validate?: string },
): Planned<FileWritePlan> {
  if (probe.type === 'absent' && !edit.changed) return { changed: false, actions: [], data: { msg: edit.msg } };
  const plan = planFileWrite(probe, {
    path: spec.path,
    content: edit.changed ? Buffer.from(edit.text, 'utf8') : undefined,
    owner: spec.owner,
    group: spec.group,
    mode: spec.mode,
    backup: spec.backup,
    validate: spec.validate,
  });
  if (edit.changed && plan.actions[0]) plan.actions[0] = `${plan.actions[0]}: ${edit.msg}`;
  plan.data = { msg: edit.changed ? edit.msg : plan.changed ? 'attributes changed' : edit.msg };
  return plan;
}

/** The probed text of a file an edit module works on, or why it cannot be edited. */
export function probedText(probe: FileProbe): { text?: string; failed?: string } {
  if (probe.type === 'absent') return {};
  if (probe.type === 'directory') return { failed: `${probe.path} is a directory` };
  if (probe.type !== 'file') return { failed: `${probe.path} is not a regular file` };
  if (probe.contentOmitted === 'too-large')
    return { failed: `${probe.path} is larger than cairn edits line by line (${probe.size} bytes)` };
  if (probe.contentOmitted === 'unreadable') return { failed: `${probe.path} is not readable (use become)` };
  return { text: (probe.content ?? Buffer.alloc(0)).toString('utf8') };
}

/** The arguments lineinfile and blockinfile share: the file, whether it should hold the text, and how to write. */
export interface FileEditArgs extends AttributeArgs {
  path: string;
  state?: 'present' | 'absent';
  create?: boolean;
  backup?: boolean;
  validate?: string;
}

/**
 * The check of lineinfile and blockinfile: probe the file (following a link to its target), refuse what is
 * not a readable regular file, handle a missing one (nothing to remove; `create` or fail with Ansible's
 * message), then plan the edit that `edit` computes from the text. An error from `edit` (a bad regexp) is
 * an argument error of the task.
 */
export async function planFileEdit(
  ctx: ModuleContext,
  args: FileEditArgs,
  missingMessage: string,
  edit: (text: string | undefined) => TextEdit,
): Promise<Planned<FileWritePlan>> {
  let probe;
  try {
    probe = await probeFile(ctx, args.path, { content: true, follow: true, names: namesWanted(args) });
  } catch (err) {
    if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
    throw err;
  }
  const probed = probedText(probe);
  if (probed.failed) return { changed: false, actions: [], failed: probed.failed };
  if (probe.type === 'absent') {
    if ((args.state ?? 'present') === 'absent')
      return { changed: false, actions: [], data: { msg: 'file not present' } };
    if (!args.create) return { changed: false, actions: [], failed: missingMessage };
  }
  let planned: TextEdit;
  try {
    planned = edit(probed.text);
  } catch (err) {
    throw argError(ctx, err instanceof Error ? err.message : String(err));
  }
  return planTextEdit(probe, planned, { ...args, path: probe.linkResolved ?? args.path });
}
