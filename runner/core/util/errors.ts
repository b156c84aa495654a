/**
 * Errors that reach the user. Every error cairn reports on purpose is a CairnError: it carries where the
 * problem is (file:line:col, or host and task) and what was expected, and maps to an exit code. Anything
 * else escaping to the CLI is a bug and is still reported without a stack trace unless -vvv.
 */

export interface SourceLocation {
  file: string;
  /** 1-based; absent when the whole file is meant (unreadable, binary...). */
  line?: number;
  /** 1-based. */
  col?: number;
}

export function formatLocation(loc: SourceLocation): string {
  if (loc.line === undefined) return loc.file;
  return loc.col === undefined ? `${loc.file}:${loc.line}` : `${loc.file}:${loc.line}:${loc.col}`;
}

export type ErrorKind = 'input' | 'options' | 'runtime' | 'lock';

export class CairnError extends Error {
  readonly kind: ErrorKind;
  readonly location?: SourceLocation;
  /** Extra lines shown under the message (for example the offending source line with a caret). */
  readonly detail?: string;

  constructor(message: string, opts: { kind?: ErrorKind; location?: SourceLocation; detail?: string } = {}) {
    super(message);
    this.name = 'CairnError';
    this.kind = opts.kind ?? 'input';
    this.location = opts.location;
    this.detail = opts.detail;
  }

  /** One paragraph: "file:line:col: message", then the detail. */
  render(): string {
    const head = this.location ? `${formatLocation(this.location)}: ${this.message}` : this.message;
    return this.detail ? `${head}\n${this.detail}` : head;
  }
}

/** Bad playbook, inventory, role, template or variable input: exit code 5. */
export function inputError(message: string, location?: SourceLocation, detail?: string): CairnError {
  return new CairnError(message, { kind: 'input', location, detail });
}

/** Bad command-line options: exit code 5. */
export function optionsError(message: string): CairnError {
  return new CairnError(message, { kind: 'options' });
}

/** Exit codes as Ansible's. */
export const ExitCode = {
  ok: 0,
  hostFailed: 2,
  changesPending: 3,
  hostUnreachable: 4,
  badInput: 5,
  interrupted: 99,
  internal: 250,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Show a source line with a caret under the column, for error details. */
export function caretSnippet(source: string, line: number, col: number | undefined): string {
  const lines = source.split(/\r?\n/);
  const text = lines[line - 1];
  if (text === undefined) return '';
  const gutter = `${line} | `;
  const caret = col !== undefined && col > 0 ? `\n${' '.repeat(gutter.length + col - 1)}^` : '';
  return `${gutter}${text.length > 200 ? text.slice(0, 200) + '…' : text}${caret}`;
}
