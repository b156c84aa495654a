/**
 * lineinfile: make sure one line is in a file (or not), as Ansible's lineinfile. The new text is computed
 * locally from the probed text by `editLineInFile` (pure), so check and apply share one decision; the write
 * is the atomic script.
 */
import { attributeSchema, argError, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import { applyFileWrite, planFileEdit, type FileWritePlan, type TextEdit } from './file-write.js';
import { checkRegexArgs, expandBackrefs, pythonRegex } from './pyregex.js';
import type { Module, Planned } from './types.js';

export interface LineInFileArgs extends AttributeArgs {
  path: string;
  line?: string;
  regexp?: string;
  search_string?: string;
  state?: 'present' | 'absent';
  insertafter?: string;
  insertbefore?: string;
  create?: boolean;
  backrefs?: boolean;
  firstmatch?: boolean;
  backup?: boolean;
  validate?: string;
}

export type LineEditArgs = Pick<
  LineInFileArgs,
  'line' | 'regexp' | 'search_string' | 'state' | 'insertafter' | 'insertbefore' | 'backrefs' | 'firstmatch'
>;

/** Lines with their endings, as Python's readlines() (split after each \n). */
export function readLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\n') {
      lines.push(text.slice(start, i + 1));
      start = i + 1;
    }
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

const stripEol = (line: string): string => line.replace(/[\r\n]+$/, '');
/** Python's `$` also matches before a final newline; RE2's does not, so search without it. */
const searchable = (line: string): string => (line.endsWith('\n') ? line.slice(0, -1) : line);

/**
 * Ansible's lineinfile `present`/`absent` on the text of the file (`undefined` when the file does not
 * exist; the caller decides about `create`).
 */
export function editLineInFile(original: string | undefined, args: LineEditArgs): TextEdit {
  const lines = readLines(original ?? '');
  const state = args.state ?? 'present';
  const regexp = args.regexp !== undefined ? pythonRegex(args.regexp) : undefined;
  const line = args.line;
  const matches = (cur: string): RegExpExecArray | boolean => {
    if (regexp) return regexp.exec(searchable(cur)) ?? false;
    if (args.search_string !== undefined) return cur.includes(args.search_string);
    return line !== undefined && stripEol(cur) === line;
  };
  const unchanged = (msg: string): TextEdit => ({ text: original ?? '', changed: false, msg });

  if (state === 'absent') {
    const kept = lines.filter((cur) => !matches(cur));
    const removed = lines.length - kept.length;
    return removed > 0 ? { text: kept.join(''), changed: true, msg: `${removed} line(s) removed` } : unchanged('');
  }

  if (line === undefined) throw new Error('line is required with state=present');
  const insertAfter = args.insertafter;
  const insertBefore = args.insertbefore;
  const insertRegex =
    insertAfter !== undefined && insertAfter !== 'BOF' && insertAfter !== 'EOF'
      ? pythonRegex(insertAfter, 'insertafter')
      : insertBefore !== undefined && insertBefore !== 'BOF'
        ? pythonRegex(insertBefore, 'insertbefore')
        : undefined;

  // index of the line matched by regexp/search_string (or the exact line), and the insertion point.
  let matchIndex = -1;
  let insertIndex = -1;
  let match: RegExpExecArray | boolean = false;
  if (regexp || args.search_string !== undefined) {
    for (let i = 0; i < lines.length; i++) {
      const found = matches(lines[i]!);
      if (found) {
        matchIndex = i;
        match = found;
        if (args.firstmatch) break;
      }
    }
  }
  if (!match) {
    for (let i = 0; i < lines.length; i++) {
      const cur = lines[i]!;
      if (stripEol(cur) === line) {
        matchIndex = i;
      } else if (insertRegex && insertRegex.test(searchable(cur))) {
        if (insertAfter !== undefined) {
          insertIndex = i + 1;
          if (args.firstmatch) break;
        }
        if (insertBefore !== undefined) {
          insertIndex = i;
          if (args.firstmatch) break;
        }
      }
    }
  }

  const added = (): TextEdit => ({ text: lines.join(''), changed: true, msg: 'line added' });
  if (matchIndex !== -1) {
    let newLine = args.backrefs && typeof match === 'object' && match ? expandBackrefs(line, match) : line;
    if (!newLine.endsWith('\n')) newLine += '\n';
    if (lines[matchIndex] === newLine) return unchanged('');
    lines[matchIndex] = newLine;
    return { text: lines.join(''), changed: true, msg: 'line replaced' };
  }
  // Without a match the backreferences cannot be filled: do nothing, as Ansible.
  if (args.backrefs) return unchanged('');
  if (insertBefore === 'BOF' || insertAfter === 'BOF') {
    lines.unshift(`${line}\n`);
    return added();
  }
  if (insertAfter === 'EOF' || insertIndex === -1) {
    if (lines.length > 0 && !/[\n\r]$/.test(lines[lines.length - 1]!)) lines.push('\n');
    lines.push(`${line}\n`);
    return added();
  }
  if (insertAfter !== undefined) {
    if (insertIndex === lines.length) {
      if (!/[\n\r]$/.test(lines[lines.length - 1]!)) lines[lines.length - 1] += '\n';
      if (stripEol(lines[insertIndex - 1]!) === line) return unchanged('');
      lines.push(`${line}\n`);
      return added();
    }
    if (stripEol(lines[insertIndex]!) === line) return unchanged('');
    lines.splice(insertIndex, 0, `${line}\n`);
    return added();
  }
  lines.splice(insertIndex, 0, `${line}\n`);
  return added();
}

export const lineinfileModule: Module<LineInFileArgs, FileWritePlan> = {
  name: 'lineinfile',
  // Ansible's aliases (ansible.builtin.lineinfile's documentation).
  argAliases: { dest: 'path', destfile: 'path', name: 'path', regex: 'regexp' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', minLength: 1 },
      line: { type: 'string' },
      regexp: { type: 'string' },
      search_string: { type: 'string' },
      state: { enum: ['present', 'absent'] },
      insertafter: { type: 'string' },
      insertbefore: { type: 'string' },
      create: { type: 'boolean' },
      backrefs: { type: 'boolean' },
      firstmatch: { type: 'boolean' },
      backup: { type: 'boolean' },
      validate: { type: 'string', pattern: '%s' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<FileWritePlan>> {
    validateAttributeArgs(ctx, args);
    const state = args.state ?? 'present';
    if (state === 'present' && args.line === undefined) throw argError(ctx, 'lineinfile needs line with state=present');
    if (
      state === 'absent' &&
      args.line === undefined &&
      args.regexp === undefined &&
      args.search_string === undefined
    ) {
      throw argError(ctx, 'lineinfile needs one of line, regexp or search_string with state=absent');
    }
    if (args.regexp !== undefined && args.search_string !== undefined)
      throw argError(ctx, 'lineinfile takes regexp or search_string, not both');
    if (args.insertafter !== undefined && args.insertbefore !== undefined)
      throw argError(ctx, 'lineinfile takes insertafter or insertbefore, not both');
    if (args.backrefs && args.regexp === undefined) throw argError(ctx, 'lineinfile backrefs needs regexp');
    const position = (value: string | undefined, ends: string[]) => (value && ends.includes(value) ? undefined : value);
    checkRegexArgs(
      'lineinfile',
      {
        regexp: args.regexp,
        insertafter: position(args.insertafter, ['BOF', 'EOF']),
        insertbefore: position(args.insertbefore, ['BOF']),
      },
      (message) => argError(ctx, message),
      args.backrefs && args.line !== undefined
        ? { from: 'regexp', template: args.line, templateArg: 'line' }
        : undefined,
    );
    return planFileEdit(ctx, args, `Destination ${args.path} does not exist !`, (text) => editLineInFile(text, args));
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
