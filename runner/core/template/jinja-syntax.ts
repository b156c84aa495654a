/**
 * The syntax of Ansible's expression language (Jinja2's expressions and the statements `if`, `for`, `set`,
 * `raw` and comments), parsed into a small tree that expr.ts evaluates. Nothing here runs user code; a
 * tree holds only literals, names and the operators below.
 *
 * Precedence follows Jinja2's parser (jinja2/parser.py): `a if c else b` < or < and < not < comparisons
 * (`==`, `in`, `not in`, ...) < `+ -` < `~` < `* / // %` < `**` < unary sign < filters and tests
 * (`| f`, `is t`) < attribute, subscript and call. Nesting is bounded at parse time (MAX_NESTING).
 */

/** Deepest nesting of brackets, operators and statements an expression or template may have. */
export const MAX_NESTING = 64;

export type Expr =
  | { kind: 'literal'; value: unknown; pos: number }
  | { kind: 'name'; name: string; pos: number }
  | { kind: 'attr'; object: Expr; name: string; pos: number }
  | { kind: 'index'; object: Expr; key: Expr; pos: number }
  | { kind: 'slice'; object: Expr; start?: Expr; stop?: Expr; step?: Expr; pos: number }
  | { kind: 'list'; items: Expr[]; pos: number }
  | { kind: 'tuple'; items: Expr[]; pos: number }
  | { kind: 'dict'; entries: Array<[Expr, Expr]>; pos: number }
  | { kind: 'not'; operand: Expr; pos: number }
  | { kind: 'neg'; operand: Expr; sign: '-' | '+'; pos: number }
  | { kind: 'and' | 'or'; left: Expr; right: Expr; pos: number }
  | { kind: 'binary'; op: string; left: Expr; right: Expr; pos: number }
  | { kind: 'compare'; first: Expr; rest: Array<{ op: string; operand: Expr }>; pos: number }
  | { kind: 'filter'; operand: Expr; name: string; args: Expr[]; kwargs: Array<[string, Expr]>; pos: number }
  | {
      kind: 'test';
      operand: Expr;
      name: string;
      args: Expr[];
      kwargs: Array<[string, Expr]>;
      negate: boolean;
      pos: number;
    }
  | { kind: 'cond'; test: Expr; then: Expr; otherwise?: Expr; pos: number }
  | { kind: 'call'; callee: Expr; args: Expr[]; kwargs: Array<[string, Expr]>; pos: number };

/** A template: text and `{{ }}` outputs, with the statements Ansible's YAML values and templates use. */
export type TemplateNode =
  | { kind: 'text'; text: string; pos: number }
  | { kind: 'output'; expr: Expr; pos: number; end: number }
  | { kind: 'if'; branches: Array<{ test: Expr; body: TemplateNode[] }>; otherwise?: TemplateNode[]; pos: number }
  | {
      kind: 'for';
      targets: string[];
      iterable: Expr;
      filter?: Expr;
      body: TemplateNode[];
      otherwise?: TemplateNode[];
      pos: number;
    }
  | { kind: 'set'; targets: string[]; value: Expr; pos: number };

/** A syntax error at an offset of the source. */
export class SyntaxFault extends Error {
  constructor(
    message: string,
    readonly pos: number,
  ) {
    super(message);
    this.name = 'SyntaxFault';
  }
}

interface Token {
  kind: 'name' | 'string' | 'number' | 'op' | 'end';
  text: string;
  value?: unknown;
  pos: number;
}

const OPERATORS = [
  '**',
  '//',
  '==',
  '!=',
  '<=',
  '>=',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '~',
  '|',
  '.',
  ',',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ':',
  '=',
];
const STRING_ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '0': '\0',
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
};
const CLOSERS: Record<string, string> = { '(': ')', '[': ']', '{': '}' };

function own(record: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(record, key);
}

/**
 * Tokens from `start` up to the end of `src`, or (when `stop` is given) up to `stop` outside any bracket,
 * as Jinja's lexer balances brackets so `{{ {'a': {'b': 1}} }}` ends at the last `}}`.
 */
function lex(src: string, start: number, stop?: string): { tokens: Token[]; end: number } {
  const tokens: Token[] = [];
  const open: string[] = [];
  let i = start;
  for (;;) {
    while (i < src.length && /\s/.test(src[i]!)) i += 1;
    if (stop !== undefined && open.length === 0) {
      const trimmed = (src[i] === '-' || src[i] === '+') && src.startsWith(stop, i + 1);
      if (src.startsWith(stop, i) || trimmed) {
        tokens.push({ kind: 'end', text: '', pos: i });
        return { tokens, end: i };
      }
    }
    if (i >= src.length) {
      if (stop !== undefined) throw new SyntaxFault(`expected "${stop}" to end the tag, found the end of the text`, i);
      tokens.push({ kind: 'end', text: '', pos: i });
      return { tokens, end: i };
    }
    const ch = src[i]!;
    const raw = (ch === 'r' || ch === 'R') && (src[i + 1] === "'" || src[i + 1] === '"');
    if (ch === "'" || ch === '"' || raw) {
      const begin = i;
      const quote = raw ? src[i + 1]! : ch;
      i += raw ? 2 : 1;
      let value = '';
      for (;;) {
        if (i >= src.length) throw new SyntaxFault('unterminated string (no closing quote)', begin);
        const c = src[i]!;
        if (c === quote) break;
        if (c === '\\' && i + 1 < src.length) {
          const next = src[i + 1]!;
          const hex = /^(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})/.exec(src.slice(i + 1, i + 6));
          if (raw) value += `\\${next}`;
          else if (hex) value += String.fromCharCode(parseInt(hex[0].slice(1), 16));
          else value += own(STRING_ESCAPES, next) ? STRING_ESCAPES[next] : next === '\n' ? '' : `\\${next}`;
          i += hex && !raw ? 1 + hex[0].length : 2;
          continue;
        }
        value += c;
        i += 1;
      }
      i += 1;
      tokens.push({ kind: 'string', text: src.slice(begin, i), value, pos: begin });
      continue;
    }
    if (/[0-9]/.test(ch)) {
      const afterDot = tokens[tokens.length - 1]?.text === '.';
      const match = (afterDot ? /^[0-9]+/ : /^[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9]+)?/).exec(src.slice(i))!;
      if (/^[A-Za-z_]/.test(src.slice(i + match[0].length))) {
        throw new SyntaxFault(`invalid number "${/^[0-9A-Za-z_.]+/.exec(src.slice(i))![0]}"`, i);
      }
      const isFloat = match[1] !== undefined || match[2] !== undefined;
      tokens.push({
        kind: 'number',
        text: match[0],
        value: Number(match[0].replace(/_/g, '')),
        pos: i,
        ...(isFloat ? {} : {}),
      });
      i += match[0].length;
      continue;
    }
    if (/[A-Za-z_]/.test(ch)) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      tokens.push({ kind: 'name', text: match[0], pos: i });
      i += match[0].length;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '&&') throw new SyntaxFault('use "and" instead of "&&"', i);
    if (two === '||') throw new SyntaxFault('use "or" instead of "||"', i);
    const op = OPERATORS.find((candidate) => src.startsWith(candidate, i));
    if (!op) {
      const hints: Record<string, string> = {
        $: '"$" cannot appear in an expression',
        '!': 'use "not" instead of "!"',
        '&': 'use "and" instead of "&"',
        '?': 'the "?:" operator does not exist here; write "a if c else b"',
      };
      throw new SyntaxFault(own(hints, ch) ? hints[ch]! : `unexpected character "${ch}"`, i);
    }
    if (op === '(' || op === '[' || op === '{') open.push(op);
    if (op === ')' || op === ']' || op === '}') {
      const last = open.pop();
      if (last === undefined || CLOSERS[last] !== op) {
        throw new SyntaxFault(
          last === undefined ? `unexpected "${op}" (nothing to close)` : `expected "${CLOSERS[last]}", found "${op}"`,
          i,
        );
      }
    }
    tokens.push({ kind: 'op', text: op, pos: i });
    i += op.length;
  }
}

const LITERAL_WORDS: Record<string, unknown> = {
  true: true,
  True: true,
  false: false,
  False: false,
  none: null,
  None: null,
};
const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);

/** The recursive-descent parser over one token list (an expression, or one tag's contents). */
class Parser {
  private i = 0;
  private depth = 0;

  constructor(
    readonly tokens: Token[],
    private readonly baseDepth = 0,
  ) {}

  get index(): number {
    return this.i;
  }

  get token(): Token {
    return this.tokens[this.i]!;
  }

  peek(offset = 1): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)]!;
  }

  is(text: string, kind?: Token['kind']): boolean {
    return this.token.text === text && (kind === undefined ? this.token.kind !== 'string' : this.token.kind === kind);
  }

  isName(text: string): boolean {
    return this.token.kind === 'name' && this.token.text === text;
  }

  next(): Token {
    const token = this.token;
    if (token.kind !== 'end') this.i += 1;
    return token;
  }

  expect(text: string, opener?: Token): Token {
    if (!this.is(text)) {
      if (opener && this.atEnd())
        throw new SyntaxFault(`"${opener.text}" at col ${opener.pos + 1} is never closed`, opener.pos);
      const closing = opener ? ` to close the "${opener.text}" at col ${opener.pos + 1}` : '';
      throw new SyntaxFault(`expected "${text}"${closing}, found ${show(this.token)}`, this.token.pos);
    }
    return this.next();
  }

  expectName(what: string): Token {
    if (this.token.kind !== 'name')
      throw new SyntaxFault(`expected ${what}, found ${show(this.token)}`, this.token.pos);
    return this.next();
  }

  atEnd(): boolean {
    return this.token.kind === 'end';
  }

  /** Bounded recursion: a 20,000-deep expression is refused at once, not after gigabytes of stack. */
  private nest<T>(pos: number, parse: () => T): T {
    this.depth += 1;
    if (this.depth + this.baseDepth > MAX_NESTING) {
      throw new SyntaxFault(
        `nested too deeply (more than ${MAX_NESTING} levels of brackets, operators or blocks)`,
        pos,
      );
    }
    try {
      return parse();
    } finally {
      this.depth -= 1;
    }
  }

  /** A whole expression, possibly an unparenthesised tuple (`a, b`), which Jinja allows at the top. */
  parseTop(): Expr {
    const first = this.parseExpression();
    if (!this.is(',')) return first;
    const items = [first];
    while (this.is(',')) {
      this.next();
      if (this.atEnd()) break;
      items.push(this.parseExpression());
    }
    return { kind: 'tuple', items, pos: first.pos };
  }

  parseExpression(withCondition = true): Expr {
    return this.nest(this.token.pos, () => {
      const value = this.parseOr();
      if (!withCondition || !this.isName('if')) return value;
      const pos = this.next().pos;
      const test = this.parseOr();
      let otherwise: Expr | undefined;
      if (this.isName('else')) {
        this.next();
        otherwise = this.parseExpression();
      }
      return { kind: 'cond', test, then: value, otherwise, pos };
    });
  }

  private parseOr(): Expr {
    let left = this.parseAnd();
    while (this.isName('or')) {
      const pos = this.next().pos;
      left = { kind: 'or', left, right: this.parseAnd(), pos };
    }
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseNot();
    while (this.isName('and')) {
      const pos = this.next().pos;
      left = { kind: 'and', left, right: this.parseNot(), pos };
    }
    return left;
  }

  private parseNot(): Expr {
    if (this.isName('not')) {
      const pos = this.next().pos;
      return this.nest(pos, () => ({ kind: 'not', operand: this.parseNot(), pos }));
    }
    return this.parseCompare();
  }

  private parseCompare(): Expr {
    const first = this.parseMath1();
    const rest: Array<{ op: string; operand: Expr }> = [];
    for (;;) {
      if (this.token.kind === 'op' && COMPARISONS.has(this.token.text)) {
        const op = this.next().text;
        rest.push({ op, operand: this.parseMath1() });
      } else if (this.isName('in')) {
        this.next();
        rest.push({ op: 'in', operand: this.parseMath1() });
      } else if (this.isName('not') && this.peek().kind === 'name' && this.peek().text === 'in') {
        this.next();
        this.next();
        rest.push({ op: 'not in', operand: this.parseMath1() });
      } else {
        break;
      }
    }
    return rest.length === 0 ? first : { kind: 'compare', first, rest, pos: first.pos };
  }

  private parseBinary(ops: string[], operand: () => Expr): Expr {
    let left = operand();
    while (this.token.kind === 'op' && ops.includes(this.token.text)) {
      const token = this.next();
      left = { kind: 'binary', op: token.text, left, right: operand(), pos: token.pos };
    }
    return left;
  }

  private parseMath1(): Expr {
    return this.parseBinary(['+', '-'], () => this.parseConcat());
  }

  private parseConcat(): Expr {
    return this.parseBinary(['~'], () => this.parseMath2());
  }

  private parseMath2(): Expr {
    return this.parseBinary(['*', '/', '//', '%'], () => this.parsePow());
  }

  private parsePow(): Expr {
    return this.parseBinary(['**'], () => this.parseUnary(true));
  }

  private parseUnary(withFilter: boolean): Expr {
    let node: Expr;
    if (this.is('-') || this.is('+')) {
      const token = this.next();
      node = this.nest(token.pos, () => ({
        kind: 'neg',
        sign: token.text as '-' | '+',
        operand: this.parseUnary(false),
        pos: token.pos,
      }));
    } else {
      node = this.parsePostfix(this.parsePrimary());
    }
    return withFilter ? this.parseFilterExpression(node) : node;
  }

  private parsePrimary(): Expr {
    const token = this.token;
    if (token.kind === 'name') {
      if (own(LITERAL_WORDS, token.text)) {
        this.next();
        return { kind: 'literal', value: LITERAL_WORDS[token.text], pos: token.pos };
      }
      if (['and', 'or', 'not', 'in', 'is', 'if', 'else'].includes(token.text)) {
        const previous = this.tokens[this.i - 1];
        throw new SyntaxFault(
          `expected a value${previous ? ` after "${previous.text}"` : ''}, found "${token.text}"`,
          token.pos,
        );
      }
      this.next();
      return { kind: 'name', name: token.text, pos: token.pos };
    }
    if (token.kind === 'string') {
      // Adjacent strings are one, as in Python: 'a' 'b' == 'ab'.
      let value = '';
      while (this.token.kind === 'string') value += String(this.next().value);
      return { kind: 'literal', value, pos: token.pos };
    }
    if (token.kind === 'number') {
      this.next();
      return { kind: 'literal', value: token.value, pos: token.pos };
    }
    if (token.text === '(') return this.nest(token.pos, () => this.parseParenthesised());
    if (token.text === '[') return this.nest(token.pos, () => this.parseList());
    if (token.text === '{') return this.nest(token.pos, () => this.parseDict());
    const previous = this.tokens[this.i - 1];
    const after = previous ? ` after "${previous.text}"` : '';
    throw new SyntaxFault(`expected a value${after}, found ${show(token)}`, token.pos);
  }

  private parseParenthesised(): Expr {
    const opener = this.token;
    const pos = this.expect('(').pos;
    if (this.is(')')) {
      this.next();
      return { kind: 'tuple', items: [], pos };
    }
    const first = this.parseExpression();
    if (this.is(')')) {
      this.next();
      return first;
    }
    const items = [first];
    while (this.is(',')) {
      this.next();
      if (this.is(')')) break;
      items.push(this.parseExpression());
    }
    this.expect(')', opener);
    return { kind: 'tuple', items, pos };
  }

  private parseList(): Expr {
    const opener = this.token;
    const pos = this.expect('[').pos;
    const items: Expr[] = [];
    while (!this.is(']')) {
      if (items.length > 0) {
        this.expect(',', this.atEnd() ? opener : undefined);
        if (this.is(']')) break;
      }
      items.push(this.parseExpression());
    }
    this.expect(']', opener);
    return { kind: 'list', items, pos };
  }

  private parseDict(): Expr {
    const pos = this.expect('{').pos;
    const entries: Array<[Expr, Expr]> = [];
    while (!this.is('}')) {
      if (entries.length > 0) {
        this.expect(',');
        if (this.is('}')) break;
      }
      const key = this.parseExpression();
      this.expect(':');
      entries.push([key, this.parseExpression()]);
    }
    this.expect('}');
    return { kind: 'dict', entries, pos };
  }

  private parsePostfix(start: Expr): Expr {
    let node = start;
    for (;;) {
      if (this.is('.')) {
        const dot = this.next();
        const name = this.token;
        if (name.kind === 'name') {
          this.next();
          node = { kind: 'attr', object: node, name: name.text, pos: name.pos };
        } else if (name.kind === 'number' && /^[0-9]+$/.test(name.text)) {
          this.next();
          node = {
            kind: 'index',
            object: node,
            key: { kind: 'literal', value: name.value, pos: name.pos },
            pos: dot.pos,
          };
        } else {
          throw new SyntaxFault(`expected a name after ".", found ${show(name)}`, name.pos);
        }
      } else if (this.is('[')) {
        node = this.nest(this.token.pos, () => this.parseSubscript(node));
      } else if (this.is('(')) {
        node = this.nest(this.token.pos, () => this.parseCall(node));
      } else {
        return node;
      }
    }
  }

  private parseSubscript(object: Expr): Expr {
    const pos = this.expect('[').pos;
    const parts: Array<Expr | undefined> = [];
    let isSlice = false;
    let current: Expr | undefined;
    while (!this.is(']')) {
      if (this.is(':')) {
        this.next();
        isSlice = true;
        parts.push(current);
        current = undefined;
        continue;
      }
      if (current !== undefined)
        throw new SyntaxFault(`expected "]" or ":", found ${show(this.token)}`, this.token.pos);
      current = this.parseExpression();
    }
    this.expect(']');
    if (!isSlice) {
      if (current === undefined) throw new SyntaxFault('expected an index inside "[]"', pos + 1);
      return { kind: 'index', object, key: current, pos };
    }
    parts.push(current);
    if (parts.length > 3) throw new SyntaxFault('a slice has at most three parts ([start:stop:step])', pos);
    return { kind: 'slice', object, start: parts[0], stop: parts[1], step: parts[2], pos };
  }

  /** `(args, name=value)`, after the callee or a filter/test name. */
  private parseArguments(): { args: Expr[]; kwargs: Array<[string, Expr]> } {
    this.expect('(');
    const args: Expr[] = [];
    const kwargs: Array<[string, Expr]> = [];
    while (!this.is(')')) {
      if (args.length + kwargs.length > 0) {
        this.expect(',');
        if (this.is(')')) break;
      }
      if (this.token.kind === 'name' && this.peek().text === '=' && this.peek().kind === 'op') {
        const name = this.next().text;
        this.next();
        kwargs.push([name, this.parseExpression()]);
      } else {
        if (kwargs.length > 0)
          throw new SyntaxFault('a positional argument cannot follow a keyword argument', this.token.pos);
        args.push(this.parseExpression());
      }
    }
    this.expect(')');
    return { args, kwargs };
  }

  private parseCall(callee: Expr): Expr {
    const pos = this.token.pos;
    const { args, kwargs } = this.parseArguments();
    return { kind: 'call', callee, args, kwargs, pos };
  }

  private parseFilterExpression(start: Expr): Expr {
    let node = start;
    for (;;) {
      if (this.is('|')) {
        this.next();
        const name = this.expectName('a filter name after "|"');
        let args: Expr[] = [];
        let kwargs: Array<[string, Expr]> = [];
        if (this.is('(')) ({ args, kwargs } = this.nest(this.token.pos, () => this.parseArguments()));
        node = { kind: 'filter', operand: node, name: qualified(name.text, this), args, kwargs, pos: name.pos };
      } else if (this.isName('is')) {
        this.next();
        const negate = this.isName('not');
        if (negate) this.next();
        const nameToken = this.token;
        if (nameToken.kind !== 'name')
          throw new SyntaxFault(
            `expected a test name after "is${negate ? ' not' : ''}", found ${show(nameToken)}`,
            nameToken.pos,
          );
        this.next();
        const name = own(LITERAL_WORDS, nameToken.text)
          ? String(LITERAL_WORDS[nameToken.text]).replace('null', 'none')
          : qualified(nameToken.text, this);
        let args: Expr[] = [];
        let kwargs: Array<[string, Expr]> = [];
        if (this.is('(')) {
          ({ args, kwargs } = this.nest(this.token.pos, () => this.parseArguments()));
        } else if (
          (['name', 'string', 'number'].includes(this.token.kind) || this.is('[') || this.is('{')) &&
          !['else', 'or', 'and', 'if', 'is', 'in', 'not'].includes(this.token.text)
        ) {
          // Jinja's one-argument form without parentheses: `x is divisibleby 3`, `x is sameas false`.
          args = [this.parsePostfix(this.parsePrimary())];
        }
        node = { kind: 'test', operand: node, name, args, kwargs, negate, pos: nameToken.pos };
      } else if (this.is('(')) {
        node = this.nest(this.token.pos, () => this.parseCall(node));
      } else {
        return node;
      }
    }
  }
}

/** `ansible.builtin.to_json` / `community.general.x`: the last part names the filter or test. */
function qualified(first: string, parser: Parser): string {
  let name = first;
  while (parser.is('.') && parser.peek().kind === 'name') {
    parser.next();
    name = parser.next().text;
  }
  return name;
}

function show(token: Token): string {
  return token.kind === 'end' ? 'the end' : `"${token.text}"`;
}

/** Parse one expression (no `{{ }}`); `offset` places its positions in a larger text. */
export function parseExpressionAt(
  source: string,
  offset = 0,
  stop?: string,
  baseDepth = 0,
): { expr: Expr; end: number } {
  const { tokens, end } = lex(source, offset, stop);
  if (tokens.length === 1) throw new SyntaxFault('the expression is empty', tokens[0]!.pos);
  const parser = new Parser(tokens, baseDepth);
  const expr = parser.parseTop();
  if (!parser.atEnd()) {
    const token = parser.token;
    const previous = parser.tokens[parser.index - 1];
    if (token.kind === 'name' && token.text === 'not')
      throw new SyntaxFault(`expected "in" after "not" here, found ${show(parser.peek())}`, token.pos);
    const hint =
      token.text === '='
        ? ' (use "==" to compare)'
        : token.text === '{' && source[token.pos + 1] === '{'
          ? ' ("{{ }}" cannot appear inside an expression)'
          : '';
    throw new SyntaxFault(
      `expected an operator or the end${previous ? ` after "${previous.text}"` : ''}, found ${show(token)}${hint}`,
      token.pos,
    );
  }
  return { expr, end };
}

// ---------------------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------------------

export interface TemplateOptions {
  /** Remove the first newline after a block or comment tag (Ansible's default `trim_blocks: true`). */
  trimBlocks: boolean;
  /** Strip spaces and tabs before a block or comment tag alone on its line (Jinja's `lstrip_blocks`, off). */
  lstripBlocks?: boolean;
  /** Keep the source's last newline (Jinja's `keep_trailing_newline`, off: Ansible pads with padNewlines). */
  keepTrailingNewline?: boolean;
}

type Tag =
  | { kind: 'text'; text: string; pos: number }
  | { kind: 'output'; start: number; end: number; tokensAt: number }
  | { kind: 'statement'; name: string; parser: Parser; pos: number };

/** True when the text has any Jinja markup ({{ }}, {% %} or {# #}). */
export function hasTemplateMarkup(text: string): boolean {
  return text.includes('{{') || text.includes('{%') || text.includes('{#');
}

/**
 * Parse a template into nodes; errors are SyntaxFaults at an offset of `source`. As Jinja does, one
 * trailing newline of the source is dropped; renderers put newlines back with `padNewlines`, as Ansible.
 */
export function parseTemplate(source: string, options: TemplateOptions = { trimBlocks: true }): TemplateNode[] {
  if (source.endsWith('\n') && !options.keepTrailingNewline)
    return parseTemplateBody(source.endsWith('\r\n') ? source.slice(0, -2) : source.slice(0, -1), options);
  return parseTemplateBody(source, options);
}

/** How many newlines end a text (Ansible's _count_newlines_from_end). */
export function trailingNewlines(text: string): number {
  let count = 0;
  for (let i = text.length - 1; i >= 0 && text[i] === '\n'; i--) count += 1;
  return count;
}

/**
 * Ansible's preserve_trailing_newlines: the rendered text ends with at least as many newlines as the
 * template did (Jinja dropped the last one of the source; a false `{% if %}` at the end may drop more).
 */
export function padNewlines(rendered: string, source: string): string {
  const missing = trailingNewlines(source) - trailingNewlines(rendered);
  return missing > 0 ? rendered + '\n'.repeat(missing) : rendered;
}

function parseTemplateBody(source: string, options: TemplateOptions): TemplateNode[] {
  const pieces: Array<{ tag: Tag; node?: TemplateNode }> = [];
  let i = 0;
  let text = '';
  let textPos = 0;
  let trimNext = false;
  // Jinja's lexer (jinja2/lexer.py, OptionalLStrip): `{%-`/`{#-`/`{{-` strip all whitespace before the tag;
  // with lstrip_blocks a plain `{%`/`{#` strips the spaces and tabs between the line start and the tag.
  const flushText = (trimRight: boolean, lstrip = false) => {
    let value = text;
    if (trimNext) value = value.replace(/^\s+/, '');
    if (trimRight) value = value.replace(/\s+$/, '');
    else if (lstrip && options.lstripBlocks) {
      const lineStart = value.lastIndexOf('\n') + 1;
      const lineStarting = lineStart > 0 || textPos === 0 || source[textPos - 1] === '\n' || value === '';
      if (lineStarting && /^[^\S\n]*$/.test(value.slice(lineStart))) value = value.slice(0, lineStart);
    }
    trimNext = false;
    if (value !== '') pieces.push({ tag: { kind: 'text', text: value, pos: textPos } });
    text = '';
  };
  // trim_blocks: the first newline after a block or comment tag goes (not after `-%}`, which took all, or `+%}`).
  const afterTag = (close: number, trimRight: boolean, keepNewline: boolean): number => {
    if (!options.trimBlocks || trimRight || keepNewline) return close;
    if (source[close] === '\n') return close + 1;
    if (source.startsWith('\r\n', close)) return close + 2;
    return close;
  };
  while (i < source.length) {
    const open = source.slice(i, i + 2);
    if (open !== '{{' && open !== '{%' && open !== '{#') {
      if (text === '') textPos = i;
      text += source[i];
      i += 1;
      continue;
    }
    if (text === '') textPos = i;
    const trimLeft = source[i + 2] === '-';
    const keepLeft = source[i + 2] === '+';
    const bodyStart = i + 2 + (trimLeft || keepLeft ? 1 : 0);
    if (open === '{#') {
      const close = source.indexOf('#}', bodyStart);
      if (close === -1) throw new SyntaxFault('comment "{#" is never closed with "#}"', i);
      flushText(trimLeft, !keepLeft);
      trimNext = source[close - 1] === '-';
      i = afterTag(close + 2, trimNext, source[close - 1] === '+');
      continue;
    }
    if (open === '{{') {
      flushText(trimLeft);
      const { end } = lex(source, bodyStart, '}}');
      const trimRight = source[end] === '-';
      const close = end + (trimRight ? 1 : 0) + 2;
      pieces.push({ tag: { kind: 'output', start: bodyStart, end, tokensAt: i } });
      trimNext = trimRight;
      i = close;
      continue;
    }
    // {% statement %}
    const { tokens, end } = lex(source, bodyStart, '%}');
    const trimRight = source[end] === '-';
    // `+%}` keeps the newline that trim_blocks would remove.
    const keepNewline = source[end] === '+';
    let close = end + (trimRight || keepNewline ? 1 : 0) + 2;
    const nameToken = tokens[0]!;
    if (nameToken.kind !== 'name')
      throw new SyntaxFault(`expected a statement name after "{%", found ${show(nameToken)}`, nameToken.pos);
    flushText(trimLeft, !keepLeft);
    if (nameToken.text === 'raw') {
      // As Jinja's raw rule: no trim_blocks after `{% raw %}`, `-%}` strips; `{%- endraw` strips the content's end.
      const endRaw = /\{%([-+]?)\s*endraw\s*([-+]?)%\}/.exec(source.slice(close));
      if (!endRaw) throw new SyntaxFault('"{% raw %}" is never closed with "{% endraw %}"', i);
      let content = source.slice(close, close + endRaw.index);
      if (trimRight) content = content.replace(/^\s+/, '');
      if (endRaw[1] === '-') content = content.replace(/\s+$/, '');
      if (content !== '') pieces.push({ tag: { kind: 'text', text: content, pos: close } });
      close += endRaw.index + endRaw[0].length;
      trimNext = endRaw[2] === '-';
      i = afterTag(close, trimNext, endRaw[2] === '+');
      continue;
    }
    const parser = new Parser(tokens);
    parser.next();
    pieces.push({ tag: { kind: 'statement', name: nameToken.text, parser, pos: nameToken.pos } });
    trimNext = trimRight;
    i = afterTag(close, trimRight, keepNewline);
  }
  flushText(false);

  let at = 0;
  const parseBody = (
    depth: number,
    enders: string[],
  ): { nodes: TemplateNode[]; ender?: Tag & { kind: 'statement' } } => {
    if (depth > MAX_NESTING)
      throw new SyntaxFault(
        `blocks nested too deeply (more than ${MAX_NESTING} levels)`,
        pieces[at]?.tag.kind === 'statement' ? (pieces[at]!.tag as { pos: number }).pos : 0,
      );
    const nodes: TemplateNode[] = [];
    while (at < pieces.length) {
      const { tag } = pieces[at]!;
      at += 1;
      if (tag.kind === 'text') {
        nodes.push({ kind: 'text', text: tag.text, pos: tag.pos });
      } else if (tag.kind === 'output') {
        const { expr } = parseExpressionAt(source, tag.start, '}}', depth);
        nodes.push({ kind: 'output', expr, pos: tag.tokensAt, end: tag.end });
      } else if (enders.includes(tag.name)) {
        return { nodes, ender: tag };
      } else {
        nodes.push(parseStatement(tag, depth));
      }
    }
    if (enders.length > 0)
      throw new SyntaxFault(
        `expected one of ${enders.map((e) => `"{% ${e} %}"`).join(', ')} before the end of the text`,
        source.length,
      );
    return { nodes };
  };
  const finish = (tag: Tag & { kind: 'statement' }) => {
    if (!tag.parser.atEnd())
      throw new SyntaxFault(`unexpected ${show(tag.parser.token)} in "{% ${tag.name} %}"`, tag.parser.token.pos);
  };
  const parseStatement = (tag: Tag & { kind: 'statement' }, depth: number): TemplateNode => {
    const p = tag.parser;
    if (tag.name === 'if') {
      const branches: Array<{ test: Expr; body: TemplateNode[] }> = [];
      let test = p.parseExpression();
      finish(tag);
      for (;;) {
        const { nodes, ender } = parseBody(depth + 1, ['elif', 'else', 'endif']);
        branches.push({ test, body: nodes });
        if (ender!.name === 'elif') {
          test = ender!.parser.parseExpression();
          finish(ender!);
          continue;
        }
        finish(ender!);
        if (ender!.name === 'else') {
          const rest = parseBody(depth + 1, ['endif']);
          finish(rest.ender!);
          return { kind: 'if', branches, otherwise: rest.nodes, pos: tag.pos };
        }
        return { kind: 'if', branches, pos: tag.pos };
      }
    }
    if (tag.name === 'for') {
      const targets = [p.expectName('a loop variable after "for"').text];
      while (p.is(',')) {
        p.next();
        targets.push(p.expectName('a loop variable').text);
      }
      if (!p.isName('in'))
        throw new SyntaxFault(`expected "in" after the loop variable, found ${show(p.token)}`, p.token.pos);
      p.next();
      const iterable = p.parseExpression(false);
      let filter: Expr | undefined;
      if (p.isName('if')) {
        p.next();
        filter = p.parseExpression(false);
      }
      if (p.isName('recursive')) throw new SyntaxFault('recursive loops are not supported', p.token.pos);
      finish(tag);
      const { nodes, ender } = parseBody(depth + 1, ['else', 'endfor']);
      finish(ender!);
      if (ender!.name === 'else') {
        const rest = parseBody(depth + 1, ['endfor']);
        finish(rest.ender!);
        return { kind: 'for', targets, iterable, filter, body: nodes, otherwise: rest.nodes, pos: tag.pos };
      }
      return { kind: 'for', targets, iterable, filter, body: nodes, pos: tag.pos };
    }
    if (tag.name === 'set') {
      const targets = [p.expectName('a variable name after "set"').text];
      while (p.is(',')) {
        p.next();
        targets.push(p.expectName('a variable name').text);
      }
      if (!p.is('='))
        throw new SyntaxFault(
          'block "{% set %}…{% endset %}" is not supported; write {% set x = value %}',
          p.token.pos,
        );
      p.next();
      const value = p.parseTop();
      finish(tag);
      return { kind: 'set', targets, value, pos: tag.pos };
    }
    if (tag.name === 'block') {
      // Without `extends` (not supported) a block renders where it stands, as Jinja renders a root template's
      // blocks (geerlingguy.nginx's nginx.conf.j2 is built of them). Unlike Jinja, a `set` inside one is not
      // local to it.
      const name = p.expectName('a block name after "block"').text;
      while (p.isName('scoped') || p.isName('required')) p.next();
      finish(tag);
      const { nodes, ender } = parseBody(depth + 1, ['endblock']);
      if (!ender!.parser.atEnd() && ender!.parser.isName(name)) ender!.parser.next();
      finish(ender!);
      return {
        kind: 'if',
        branches: [{ test: { kind: 'literal', value: true, pos: tag.pos }, body: nodes }],
        pos: tag.pos,
      };
    }
    const known = ['elif', 'else', 'endif', 'endfor', 'endraw', 'endset', 'endblock'];
    if (known.includes(tag.name))
      throw new SyntaxFault(`"{% ${tag.name} %}" without a matching opening statement`, tag.pos);
    throw new SyntaxFault(
      `the statement "{% ${tag.name} %}" is not supported (supported: if/elif/else, for, set, raw, block)`,
      tag.pos,
    );
  };
  return parseBody(0, []).nodes;
}
