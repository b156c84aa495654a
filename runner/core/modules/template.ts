/**
 * template: render a template file (found with findLocalFile('templates', src)) with the task's variables
 * and write it to `dest` like copy: atomically, with owner/group/mode, optional validate and backup.
 * A `.hbs` file is Handlebars (cairn's own roles); any other file (`.j2`, Ansible material) is Jinja,
 * rendered by cairn's one expression evaluator with Ansible's template defaults (see the template README).
 */
import { statSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { isHandlebarsFile } from '../template/index.js';
import { overlayVars, type Vars } from '../util/vars.js';
import { attributeSchema, validateAttributeArgs } from './attributes.js';
import { applyFileWrite, planContentWrite, type ContentWriteArgs, type FileWritePlan } from './file-write.js';
import type { Module, Planned } from './types.js';

export interface TemplateArgs extends ContentWriteArgs {
  src: string;
}

/**
 * The names Ansible's template action adds for Jinja templates (template/__init__.py
 * generate_ansible_template_vars). `template_run_date` and `template_mtime` (Python datetimes) are left
 * out: a run date would make every run a change. `ansible_managed` is Ansible's default string, "Ansible
 * managed" (its `{host}`/`{uid}`/`{file}` and strftime codes apply to an ansible.cfg value cairn does not read).
 */
function templateVars(src: string, path: string, dest: string): Vars {
  const fullpath = resolve(path);
  const vars: Vars = {
    template_host: hostname(),
    template_path: src,
    template_fullpath: fullpath,
    template_destpath: dest,
    ansible_managed: 'Ansible managed',
  };
  // The owner's name as Ansible's pwd lookup gives it, or the number; an unreadable file is reported by the
  // renderer, which reads it next.
  try {
    const uid = statSync(fullpath).uid;
    let me: { uid: number; username: string } | undefined;
    try {
      me = userInfo();
    } catch {
      me = undefined;
    }
    vars.template_uid = me && uid === me.uid ? me.username : String(uid);
  } catch {
    // no template_uid
  }
  return vars;
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
    const path = ctx.findLocalFile('templates', args.src);
    const vars = isHandlebarsFile(path) ? ctx.vars : overlayVars(ctx.vars, templateVars(args.src, path, args.dest));
    // Rendering errors are CairnErrors naming the template file, line and variable: they propagate as such.
    const rendered = Buffer.from(ctx.renderTemplateFile(path, vars), 'utf8');
    return planContentWrite(ctx, args, rendered, { src: args.src });
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
