/**
 * `--diff` output: a unified diff (jsdiff's createTwoFilesPatch, 3 lines of context) of a file's content,
 * then its attribute changes in words. A file whose content holds a secret on either side is never shown:
 * only the fact that it changed, so `--diff` cannot leak a vault value through a rendered config file.
 */
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from 'diff';
import type { ChalkInstance } from 'chalk';
import type { FileDiff } from '../../core/modules/types.js';
import type { SecretMasker } from './mask.js';
import { terminalSafe } from './terminal.js';

const CONTEXT_LINES = 3;

/** How each kind of diff line is drawn; identity for plain output. */
export interface DiffStyle {
  header(line: string): string;
  hunk(line: string): string;
  added(line: string): string;
  removed(line: string): string;
  context(line: string): string;
  note(line: string): string;
}

const plainStyle: DiffStyle = {
  header: (line) => line,
  hunk: (line) => line,
  added: (line) => line,
  removed: (line) => line,
  context: (line) => line,
  note: (line) => line,
};

/** Colours as `git diff`: bold headers, cyan hunk marks, green additions, red removals. */
export function colorDiffStyle(chalk: ChalkInstance): DiffStyle {
  return {
    header: (line) => chalk.bold(line),
    hunk: (line) => chalk.cyan(line),
    added: (line) => chalk.green(line),
    removed: (line) => chalk.red(line),
    context: (line) => line,
    note: (line) => chalk.yellow(line),
  };
}

export function secretHiddenNote(path: string): string {
  return `${path}: content changed (contains secret values; diff hidden)`;
}

/** Whether the content (or the file's existence) differs, as opposed to attributes only. */
export function contentChanged(diff: FileDiff): boolean {
  return diff.before !== diff.after || Boolean(diff.beforeMissing) !== Boolean(diff.afterMissing);
}

/**
 * The diff as lines (no trailing newline), every line masked. Empty when nothing changed at all.
 */
export function fileDiffLines(diff: FileDiff, masker: SecretMasker, style: DiffStyle = plainStyle): string[] {
  // A file's path and content come from the host: shown with control characters escaped (./terminal.ts).
  const path = terminalSafe(masker.mask(diff.path));
  const lines: string[] = [];
  if (contentChanged(diff)) {
    if (masker.hasSecret(diff.before) || masker.hasSecret(diff.after)) {
      lines.push(style.note(secretHiddenNote(path)));
    } else {
      lines.push(...patchLines(diff, path, masker, style));
      if (diff.beforeMissing && !diff.afterMissing) lines.push(style.note(`${path}: absent -> present`));
      if (diff.afterMissing && !diff.beforeMissing) lines.push(style.note(`${path}: present -> absent`));
    }
  }
  for (const attribute of diff.attributes ?? [])
    lines.push(style.note(`${path}: ${terminalSafe(masker.mask(attribute))}`));
  return lines;
}

/** Plain text, one string with newlines; '' when nothing changed. */
export function renderFileDiff(diff: FileDiff, masker: SecretMasker): string {
  return fileDiffLines(diff, masker).join('\n');
}

/** The same with terminal colours. */
export function renderFileDiffColored(diff: FileDiff, masker: SecretMasker, chalk: ChalkInstance): string {
  return fileDiffLines(diff, masker, colorDiffStyle(chalk)).join('\n');
}

function patchLines(diff: FileDiff, maskedPath: string, masker: SecretMasker, style: DiffStyle): string[] {
  const patch = createTwoFilesPatch(
    `before: ${maskedPath}`,
    `after: ${maskedPath}`,
    diff.beforeMissing ? '' : diff.before,
    diff.afterMissing ? '' : diff.after,
    undefined,
    undefined,
    { context: CONTEXT_LINES, headerOptions: FILE_HEADERS_ONLY },
  );
  const raw = patch.endsWith('\n') ? patch.slice(0, -1) : patch;
  return raw.split('\n').map((rawLine) => {
    // Already checked secret-free as a whole; masking per line is the belt to that pair of braces.
    const line = terminalSafe(masker.mask(rawLine));
    if (line.startsWith('--- ') || line.startsWith('+++ ')) return style.header(line);
    if (line.startsWith('@@')) return style.hunk(line);
    if (line.startsWith('+')) return style.added(line);
    if (line.startsWith('-')) return style.removed(line);
    if (line.startsWith('\\')) return style.note(line);
    return style.context(line);
  });
}
