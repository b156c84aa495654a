/**
 * copy: put content (inline `content`, or a local file found with findLocalFile('files', src)) at `dest`
 * with the given owner/group/mode, atomically, optionally validated and backed up. As Ansible's copy for a
 * single file; copying directories is not supported.
 */
import { readFileSync, statSync } from 'node:fs';
import { attributeSchema, argError, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import { applyFileWrite, planFileWrite, sha256Of, type FileWritePlan } from './file-write.js';
import { probeFile, ProbeError } from './remote.js';
import type { Module, ModuleContext, Planned } from './types.js';

export interface CopyArgs extends AttributeArgs {
  dest: string;
  content?: unknown;
  src?: string;
  backup?: boolean;
  validate?: string;
  force?: boolean;
}

/** Ansible writes non-string content (a mapping from `{{ var }}`) as JSON. */
function contentBytes(content: unknown): Buffer {
  if (typeof content === 'string') return Buffer.from(content, 'utf8');
  if (typeof content === 'number' || typeof content === 'boolean') return Buffer.from(String(content), 'utf8');
  return Buffer.from(JSON.stringify(content), 'utf8');
}

function sourceBytes(ctx: ModuleContext, args: CopyArgs): Buffer {
  if (args.content !== undefined && args.src !== undefined) throw argError(ctx, 'copy takes either content or src, not both');
  if (args.content !== undefined) return contentBytes(args.content);
  if (args.src === undefined) throw argError(ctx, 'copy needs src (a file under files/) or content');
  const path = ctx.findLocalFile('files', args.src);
  if (statSync(path).isDirectory()) throw argError(ctx, `copy src ${args.src} is a directory; cairn copies single files`);
  return readFileSync(path);
}

export const copyModule: Module<CopyArgs, FileWritePlan> = {
  name: 'copy',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['dest'],
    properties: {
      dest: { type: 'string', minLength: 1 },
      content: {},
      src: { type: 'string', minLength: 1 },
      backup: { type: 'boolean' },
      validate: { type: 'string', pattern: '%s' },
      force: { type: 'boolean' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<FileWritePlan>> {
    validateAttributeArgs(ctx, args);
    const content = sourceBytes(ctx, args);
    let probe;
    try {
      probe = await probeFile(ctx, args.dest, { content: true });
    } catch (err) {
      if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
      throw err;
    }
    if (probe.type === 'directory') return { changed: false, actions: [], failed: `dest ${args.dest} is a directory; give the full path of the file` };
    // A missing directory is not a failure of the plan: in check mode an earlier task may be about to
    // create it. The plan carries a note, and apply fails clearly if the directory is still missing.
    const missingDirNote = probe.type === 'absent' && !probe.parentExists ? [`${args.dest} will be created in a directory that does not exist yet (an earlier task must create it, or apply fails)`] : [];
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
    plan.data = { dest: args.dest, checksum: sha256Of(content), size: content.length };
    plan.actions.push(...missingDirNote);
    return plan;
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
