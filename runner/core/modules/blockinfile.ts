/**
 * blockinfile: keep a block of lines between two marker lines, as Ansible's blockinfile. The new text is
 * computed by `editBlockInFile` (pure) from the probed text; check and apply share it.
 */
import { attributeSchema, argError, validateAttributeArgs, type AttributeArgs } from './attributes.js';
import { applyFileWrite, planFileEdit, type FileWritePlan, type TextEdit } from './file-write.js';
import { checkRegexArgs, pythonRegex } from './pyregex.js';
import type { Module, Planned } from './types.js';

export const DEFAULT_BLOCK_MARKER = '# {mark} CAIRN MANAGED BLOCK';

export interface BlockInFileArgs extends AttributeArgs {
  path: string;
  block?: string;
  marker?: string;
  marker_begin?: string;
  marker_end?: string;
  state?: 'present' | 'absent';
  insertafter?: string;
  insertbefore?: string;
  create?: boolean;
  backup?: boolean;
  validate?: string;
}

export type BlockEditArgs = Pick<
  BlockInFileArgs,
  'block' | 'marker' | 'marker_begin' | 'marker_end' | 'state' | 'insertafter' | 'insertbefore'
>;

/** Python's bytes.splitlines(True): lines keep their ending (\n, \r\n or \r). */
export function splitLinesKeepEnds(text: string): string[] {
  return text.match(/[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$/g) ?? [];
}

/** Ansible's blockinfile on the text of the file (`undefined` when it does not exist). */
export function editBlockInFile(original: string | undefined, args: BlockEditArgs): TextEdit {
  const marker = args.marker ?? DEFAULT_BLOCK_MARKER;
  const beginMarker = `${marker.replace(/\{mark\}/g, args.marker_begin ?? 'BEGIN')}\n`;
  const endMarker = `${marker.replace(/\{mark\}/g, args.marker_end ?? 'END')}\n`;
  const present = (args.state ?? 'present') === 'present';
  const lines = splitLinesKeepEnds(original ?? '');
  let block = args.block ?? '';
  let blockLines: string[] = [];
  if (present && block !== '') {
    if (!block.endsWith('\n') && !block.endsWith('\r')) block += '\n';
    blockLines = [beginMarker, ...splitLinesKeepEnds(block), endMarker];
  }
  let begin: number | undefined;
  let end: number | undefined;
  lines.forEach((line, i) => {
    if (line === beginMarker) begin = i;
    if (line === endMarker) end = i;
  });

  let at: number;
  if (begin === undefined || end === undefined) {
    const insertAfter = args.insertafter;
    const insertBefore = args.insertbefore;
    if (insertAfter !== undefined && insertAfter !== 'EOF') {
      const re = pythonRegex(insertAfter, 'insertafter');
      let found = -1;
      lines.forEach((line, i) => {
        if (re.test(line.replace(/\n$/, ''))) found = i;
      });
      at = found === -1 ? lines.length : found + 1;
    } else if (insertBefore !== undefined && insertBefore !== 'BOF') {
      const re = pythonRegex(insertBefore, 'insertbefore');
      let found = -1;
      lines.forEach((line, i) => {
        if (re.test(line.replace(/\n$/, ''))) found = i;
      });
      at = found === -1 ? lines.length : found;
    } else if (insertBefore === 'BOF') {
      at = 0;
    } else {
      at = lines.length;
    }
  } else if (begin < end) {
    lines.splice(begin, end - begin + 1);
    at = begin;
  } else {
    lines.splice(end, begin - end + 1);
    at = end;
  }
  // Make sure the line before the block ends with a newline.
  if (at > 0 && !lines[at - 1]!.endsWith('\n')) lines[at - 1] += '\n';
  lines.splice(at, 0, ...blockLines);
  const text = lines.join('');
  if (text === (original ?? '') && original !== undefined) return { text, changed: false, msg: '' };
  if (original === undefined) {
    return blockLines.length > 0 ? { text, changed: true, msg: 'File created' } : { text: '', changed: false, msg: '' };
  }
  return { text, changed: true, msg: blockLines.length === 0 ? 'Block removed' : 'Block inserted' };
}

export const blockinfileModule: Module<BlockInFileArgs, FileWritePlan> = {
  name: 'blockinfile',
  // Ansible's aliases (ansible.builtin.blockinfile's documentation).
  argAliases: { dest: 'path', destfile: 'path', name: 'path' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path'],
    properties: {
      path: { type: 'string', minLength: 1 },
      block: { type: 'string' },
      marker: { type: 'string', pattern: '\\{mark\\}' },
      marker_begin: { type: 'string' },
      marker_end: { type: 'string' },
      state: { enum: ['present', 'absent'] },
      insertafter: { type: 'string' },
      insertbefore: { type: 'string' },
      create: { type: 'boolean' },
      backup: { type: 'boolean' },
      validate: { type: 'string', pattern: '%s' },
      ...attributeSchema,
    },
  },

  async check(ctx, args): Promise<Planned<FileWritePlan>> {
    validateAttributeArgs(ctx, args);
    if (args.insertafter !== undefined && args.insertbefore !== undefined)
      throw argError(ctx, 'blockinfile takes insertafter or insertbefore, not both');
    checkRegexArgs(
      'blockinfile',
      {
        insertafter: args.insertafter === 'EOF' ? undefined : args.insertafter,
        insertbefore: args.insertbefore === 'BOF' ? undefined : args.insertbefore,
      },
      (message) => argError(ctx, message),
    );
    return planFileEdit(ctx, args, `Path ${args.path} does not exist !`, (text) => editBlockInFile(text, args));
  },

  apply(ctx, _args, plan) {
    return applyFileWrite(ctx, plan, plan.data ?? {});
  },
};
