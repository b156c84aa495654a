/**
 * template: render a Handlebars file (found with findLocalFile('templates', src)) with the task's variables
 * and write it to `dest` like copy: atomically, with owner/group/mode, optional validate and backup.
 */
import { attributeSchema, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import { applyFileWrite, planFileWrite, sha256Of, type FileWritePlan } from './file-write.js';
import { probeFile, ProbeError } from './remote.js';
import type { Module, Planned } from './types.js';

export interface TemplateArgs extends AttributeArgs {
  src: string;
  dest: string;
  backup?: boolean;
  validate?: string;
  force?: boolean;
}

export const templateModule: Module<TemplateArgs, FileWritePlan> = {
  name: 'template',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['src', 'dest'],
    properties: {
      src: { type: 'string', minLength: 1 },
      dest: { type: 'string', minLength: 1 },
      backup: { type: 'boolean' },
      validate: { type: 'string', pattern: '%s' },
      force: { type: 'boolean' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<FileWritePlan>> {
    validateAttributeArgs(ctx, args);
    // Rendering errors are CairnErrors naming the template file, line and variable: they propagate as such.
    const rendered = Buffer.from(ctx.renderTemplateFile(ctx.findLocalFile('templates', args.src), ctx.vars), 'utf8');
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
      content: keepContent ? undefined : rendered,
      owner: args.owner,
      group: args.group,
      mode: args.mode,
      backup: args.backup,
      validate: args.validate,
    });
    plan.data = { dest: args.dest, src: args.src, checksum: sha256Of(rendered), size: rendered.length };
    plan.actions.push(...missingDirNote);
    return plan;
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
