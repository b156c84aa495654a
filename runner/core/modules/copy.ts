/**
 * copy: put content (inline `content`, or a local file found with findLocalFile('files', src)) at `dest`
 * with the given owner/group/mode, atomically, optionally validated and backed up. As Ansible's copy for a
 * single file; copying directories is not supported.
 */
import { readFileSync, statSync } from 'node:fs';
import { attributeSchema, argError, validateAttributeArgs } from './attributes.js';
import { applyFileWrite, planContentWrite, type ContentWriteArgs, type FileWritePlan } from './file-write.js';
import type { Module, ModuleContext, Planned } from './types.js';

export interface CopyArgs extends ContentWriteArgs {
  content?: unknown;
  src?: string;
}

/** Ansible writes non-string content (a mapping from `{{ var }}`) as JSON. */
function contentBytes(content: unknown): Buffer {
  if (typeof content === 'string') return Buffer.from(content, 'utf8');
  if (typeof content === 'number' || typeof content === 'boolean') return Buffer.from(String(content), 'utf8');
  return Buffer.from(JSON.stringify(content), 'utf8');
}

function sourceBytes(ctx: ModuleContext, args: CopyArgs): Buffer {
  if (args.content !== undefined && args.src !== undefined)
    throw argError(ctx, 'copy takes either content or src, not both');
  if (args.content !== undefined) return contentBytes(args.content);
  if (args.src === undefined) throw argError(ctx, 'copy needs src (a file under files/) or content');
  const path = ctx.findLocalFile('files', args.src);
  if (statSync(path).isDirectory())
    throw argError(ctx, `copy src ${args.src} is a directory; cairn copies single files`);
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
    return planContentWrite(ctx, args, sourceBytes(ctx, args));
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
