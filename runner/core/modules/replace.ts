/**
 * replace: replace every match of a Python regular expression in a file, as Ansible's replace (MULTILINE;
 * `after`/`before` limit the edit to a section, matched with DOTALL). The new text is computed here from the
 * probed text by `replaceInText` (pure), so check and apply share one decision; the write is the atomic
 * script. Reference: ansible/modules/replace.py.
 */
import { attributeSchema, argError, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import { applyFileWrite, planFileEdit, type FileWritePlan, type TextEdit } from './file-write.js';
import { expandBackrefs, pythonRegex } from './pyregex.js';
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

/** A Python pattern compiled with extra flags (the translation stays pyregex.ts's). */
function compile(pattern: string, flags: string, what: string): RegExp {
  return new RegExp(pythonRegex(pattern, what).source, flags);
}

/** Python's re.subn(pattern, template, text) with MULTILINE: the new text and the number of replacements. */
export function substitute(text: string, regexp: string, template: string): { text: string; count: number } {
  const re = compile(regexp, 'gm', 'regexp');
  let out = '';
  let last = 0;
  let count = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out += text.slice(last, m.index) + expandBackrefs(template, m);
    last = m.index + m[0].length;
    count++;
    if (m[0].length === 0) re.lastIndex++;
  }
  return { text: out + text.slice(last), count };
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
    const m = compile(sectionPattern, 'sd', 'after/before').exec(contents);
    const span = m?.indices?.groups?.subsection;
    if (!m || !span) {
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
    try {
      compile(args.regexp, 'gm', 'regexp');
    } catch (err) {
      throw argError(ctx, err instanceof Error ? err.message : String(err));
    }
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
