/**
 * template: render a Handlebars file (found with findLocalFile('templates', src)) with the task's variables
 * and write it to `dest` like copy: atomically, with owner/group/mode, optional validate and backup.
 */
import { attributeSchema, validateAttributeArgs } from './attributes.js';
import { applyFileWrite, planContentWrite, type ContentWriteArgs, type FileWritePlan } from './file-write.js';
import type { Module, Planned } from './types.js';

export interface TemplateArgs extends ContentWriteArgs {
  src: string;
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
    return planContentWrite(ctx, args, rendered, { src: args.src });
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
