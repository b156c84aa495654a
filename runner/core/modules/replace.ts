/**
 * replace: replace every match of a Python regular expression in a file, as Ansible's replace (MULTILINE;
 * `after`/`before` limit the edit to a section, matched with DOTALL). The new text is computed here from the
 * probed text by `replaceInText` (pure), so check and apply share one decision; the write is the atomic
 * script. Reference: ansible/modules/replace.py.
 */
import { attributeSchema, argError, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import { applyFileWrite, planFileEdit, type FileWritePlan, type TextEdit } from './file-write.js';
import { compileRegex } from '../template/regex.js';
import { checkRegexArgs, pythonRegex } from './pyregex.js';
import type { Module, Planned } from './types.js';

export interface ReplaceArgs extends AttributeArgs {
  path: string;
  regexp: string;
  replace?: string;
  after?: string;
  before?: string;
  backup?: boolean;
  validate?: string;
  encoding?: string;
}

/**
 * Python's re.subn(pattern, template, text) with MULTILINE: the new text and the number of replacements. The
 * pattern runs on the linear-time engine (pyregex.ts): the text comes from a host and is not trusted.
 */
export function substitute(text: string, regexp: string, template: string): { text: string; count: number } {
  return pythonRegex(regexp, 'regexp', { multiline: true }).sub(text, template);
}

/** Ansible's replace on the text of a file. */
export function replaceInText(contents: string, args: Pick<ReplaceArgs, 'regexp' | 'replace' | 'after' | 'before'>) {
  let sectionPattern = '';
  if (args.after && args.before) sectionPattern = `${args.after}(?P<subsection>.*?)${args.before}`;
  else if (args.after) sectionPattern = `${args.after}(?P<subsection>.*)`;
  else if (args.before) sectionPattern = `(?P<subsection>.*)${args.before}`;
  let start = 0;
  let end = contents.length;
  if (sectionPattern) {
    // The section's own span (Ansible takes match.start/end('subsection')), on the same linear-time engine.
    const matcher = compileRegex(sectionPattern, { dotall: true }).matcher(contents);
    const span: [number, number] | undefined = matcher.find()
      ? [matcher.start('subsection'), matcher.end('subsection')]
      : undefined;
    if (!span || span[0] < 0) {
      const msg = `Pattern for before/after params did not match the given file: ${sectionPattern}`;
      return { text: contents, changed: false, msg };
    }
    [start, end] = span;
  }
  const section = contents.slice(start, end);
  const result = substitute(section, args.regexp, args.replace ?? '');
  if (result.count === 0 || result.text === section) return { text: contents, changed: false, msg: '' };
  return {
    text: contents.slice(0, start) + result.text + contents.slice(end),
    changed: true,
    msg: `${result.count} replacements made`,
  } satisfies TextEdit;
}

export const replaceModule: Module<ReplaceArgs, FileWritePlan> = {
  name: 'replace',
  // Ansible's aliases (ansible.builtin.replace's documentation).
  argAliases: { dest: 'path', destfile: 'path', name: 'path' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path', 'regexp'],
    properties: {
      path: { type: 'string', minLength: 1 },
      regexp: { type: 'string' },
      replace: { type: 'string' },
      after: { type: 'string' },
      before: { type: 'string' },
      backup: { type: 'boolean' },
      validate: { type: 'string', pattern: '%s' },
      encoding: { enum: ['utf-8', 'utf8', 'UTF-8'] },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<FileWritePlan>> {
    validateAttributeArgs(ctx, args);
    // Every pattern is compiled before anything runs on the host: a bad one is this task's error.
    checkRegexArgs(
      'replace',
      {
        regexp: args.regexp,
        ...(args.after !== undefined ? { after: args.after } : {}),
        ...(args.before !== undefined ? { before: args.before } : {}),
      },
      (message) => argError(ctx, message),
    );
    const plan = await planFileEdit(
      ctx,
      { path: args.path, state: 'present', create: false, ...pickWrite(args) },
      `Path ${args.path} does not exist !`,
      (text) => replaceInText(text ?? '', args),
    );
    return plan;
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};

function pickWrite(args: ReplaceArgs) {
  return {
    ...(args.owner !== undefined ? { owner: args.owner } : {}),
    ...(args.group !== undefined ? { group: args.group } : {}),
    ...(args.mode !== undefined ? { mode: args.mode } : {}),
    ...(args.backup !== undefined ? { backup: args.backup } : {}),
    ...(args.validate !== undefined ? { validate: args.validate } : {}),
  };
}
