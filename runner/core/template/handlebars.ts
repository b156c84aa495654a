/**
 * cairn's Handlebars templater: one isolated environment per templater, strict (an undefined variable is an
 * error naming the template file, line, column and variable), no HTML escaping (these are config files),
 * shared partials from `templates/` folders, and native values for task arguments that are one `{{ path }}`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import Handlebars from 'handlebars';
import { CairnError, caretSnippet, formatLocation, inputError, type SourceLocation } from '../util/errors.js';
import { describeFsError } from '../util/yaml-source.js';
import { type Vars } from '../util/vars.js';
import type { Templater } from './types.js';
import { renderJinjaFile, renderTemplateString, renderValue, type ValueOrigin } from './expr.js';
import { FILTERS, UndefinedValue } from './filters.js';
import { callFilter, callTest } from './expr.js';
import {
  TEMPLATE_ONLY_HELPERS,
  ValueTypeError,
  TemplateFault,
  UndefinedVariableError,
  describeAvailable,
  lookupKey,
  registerHelpers,
  type Lookup,
  type HelperEnvironment,
  type HelperSpec,
  type TemplatePosition,
} from './helpers.js';

/**
 * Every filter of the one table as a helper with the same meaning: `{{join xs ","}}` is `xs | join(",")`,
 * hash arguments are keyword arguments (`{{regex_replace x "a" "b" ignorecase=true}}`).
 */
const FILTER_HELPERS: Record<string, HelperSpec> = Object.fromEntries([
  // is VALUE "TEST" ARGS...: a test of the table (`{{#if (is v "version" "8.0" ">=")}}`).
  [
    'is',
    {
      acceptsUndefined: true,
      minArgs: 2,
      run: ([value, test, ...args]: unknown[], hash: Record<string, unknown>) => {
        const subject = value === undefined ? new UndefinedValue('the value', 'the value', 'it is not defined') : value;
        return callTest(String(test), subject, args, hash);
      },
    },
  ],
  ...Object.entries(FILTERS).map(([name, spec]) => [
    name,
    {
      acceptsUndefined: spec.acceptsUndefined,
      minArgs: name === 'default' ? 2 : 1,
      run: ([value, ...args]: unknown[], hash: Record<string, unknown>) => {
        const subject = value === undefined ? new UndefinedValue('the value', 'the value', 'it is not defined') : value;
        const result = callFilter(name, subject, args, hash);
        if (result instanceof UndefinedValue) throw new ValueTypeError(result.describe());
        return result;
      },
    },
  ]),
]);

/** Names of the helpers templates can call (Handlebars' block helpers come on top). */
export const HELPER_NAMES: readonly string[] = [
  ...new Set([...Object.keys(FILTER_HELPERS), ...TEMPLATE_ONLY_HELPERS]),
].sort();

/** Templates larger than this are refused: a config template this big is a mistake (a binary, a log). */
export const MAX_TEMPLATE_BYTES = 4 * 1024 * 1024;
/** Compiled templates kept; past this the cache starts over (task strings are many but mostly repeat). */
const COMPILED_CACHE_LIMIT = 2000;

type HandlebarsEnv = typeof Handlebars;
type CompiledTemplate = (context: unknown, options?: Handlebars.RuntimeOptions) => string;

const COMPILE_OPTIONS: CompileOptionsWithIds = { strict: true, noEscape: true, trackIds: true };
/** Prototype members never resolve, and saying so explicitly keeps Handlebars from logging each attempt. */
const RUNTIME_OPTIONS: Handlebars.RuntimeOptions = {
  allowProtoMethodsByDefault: false,
  allowProtoPropertiesByDefault: false,
};

/** `trackIds` is a documented compile option the bundled types omit; helpers then see parameter paths. */
type CompileOptionsWithIds = CompileOptions & { trackIds: boolean };

/** Where a template came from, for errors: a file, or a string written in a task. */
type Origin = { kind: 'file'; file: string } | { kind: 'inline'; origin: SourceLocation; text: string };

/** What an error picked up on its way out: the innermost file it happened in and each block's context. */
interface Trail {
  file?: string;
  source?: string;
  /** Innermost first; the contexts of `each`/`with` blocks and of the partial the error happened in. */
  scopes: unknown[];
}

export function createTemplater(opts: { partialsDirs: string[] }): Templater {
  return new HandlebarsTemplater(opts.partialsDirs);
}

class HandlebarsTemplater implements Templater {
  private handlebars: HandlebarsEnv | undefined;
  private readonly compiled = new Map<string, CompiledTemplate>();
  /** Partial name -> file, later folders overriding earlier ones. */
  private readonly partialFiles = new Map<string, string>();
  private readonly trails = new WeakMap<object, Trail>();

  constructor(private readonly partialsDirs: readonly string[]) {
    // Listed now, so an unreadable partials folder is an error at start as before.
    for (const dir of partialsDirs) {
      for (const file of listPartials(dir)) this.partialFiles.set(basename(file, '.hbs'), file);
    }
  }

  /**
   * The Handlebars environment, made at the first `.hbs` render: task values are rendered by expr.ts, so a play
   * without a Handlebars template never needs it, and making it (create, the safe lookups, every helper and
   * partial) was ~7 ms of every play's start (issue 17).
   */
  private get env(): HandlebarsEnv {
    if (this.handlebars) return this.handlebars;
    const env = Handlebars.create();
    installSafeLookups(env);
    registerHelpers(
      env as unknown as HelperEnvironment,
      (error, context) => this.noteScope(error, context),
      FILTER_HELPERS,
    );
    for (const [name, file] of this.partialFiles) env.registerPartial(name, this.partial(file));
    this.handlebars = env;
    return env;
  }

  /** YAML values speak Ansible's expression language (expr.ts); only `.hbs` template files are Handlebars. */
  renderValue(value: unknown, vars: Vars, origin: ValueOrigin): unknown {
    return renderValue(value, vars, origin);
  }

  renderString(text: string, vars: Vars, origin: SourceLocation): string {
    return renderTemplateString(text, vars, origin);
  }

  renderHandlebars(text: string, vars: Vars, origin: SourceLocation): string {
    return this.render(text, vars, { kind: 'inline', origin, text });
  }

  /**
   * A template file is Handlebars when its name ends in `.hbs` (cairn's own roles); any other file (`.j2`,
   * Ansible material) is Jinja, rendered natively by expr.ts with the same evaluator and filter table.
   */
  renderFile(path: string, vars: Vars): string {
    const source = readTemplate(path);
    if (!isHandlebarsFile(path)) return renderJinjaFile(source, vars, path);
    const statement = source.indexOf('{%');
    if (statement !== -1) {
      const before = source.slice(0, statement);
      const line = before.split('\n').length;
      const col = statement - before.lastIndexOf('\n');
      throw inputError(
        `this .hbs file contains a Jinja statement ("{%"); .hbs files are Handlebars: rename it to ` +
          `${path.replace(/\.hbs$/, '')}.j2 to render it as Jinja, or write the Handlebars block instead`,
        { file: path, line, col },
        caretSnippet(source, line, col) || undefined,
      );
    }
    return this.render(source, vars, { kind: 'file', file: path });
  }

  private render(source: string, vars: Vars, origin: Origin): string {
    try {
      return String(this.compile(source)(vars, RUNTIME_OPTIONS));
    } catch (err) {
      throw this.toCairnError(err, source, vars, origin);
    }
  }

  private compile(source: string): CompiledTemplate {
    let template = this.compiled.get(source);
    if (!template) {
      // Compilation is lazy (at first render), so syntax errors surface in render's catch with the rest.
      template = this.env.compile(source, COMPILE_OPTIONS) as CompiledTemplate;
      if (this.compiled.size >= COMPILED_CACHE_LIMIT) this.compiled.clear();
      this.compiled.set(source, template);
    }
    return template;
  }

  /** A partial as Handlebars calls it; errors inside are marked with the partial's own file. */
  private partial(file: string): CompiledTemplate {
    let source: string | undefined;
    return (context, options) => {
      source ??= readTemplate(file);
      try {
        return this.compile(source)(context, options);
      } catch (err) {
        this.noteScope(err, context);
        this.noteFile(err, file, source);
        throw err;
      }
    };
  }

  private trailOf(error: unknown): Trail | undefined {
    if (error === null || typeof error !== 'object' || error instanceof CairnError) return undefined;
    let trail = this.trails.get(error);
    if (!trail) {
      trail = { scopes: [] };
      this.trails.set(error, trail);
    }
    return trail;
  }

  /** Scopes only count inside the file the error happened in: outer files' blocks are other levels. */
  private noteScope(error: unknown, context: unknown): void {
    const trail = this.trailOf(error);
    if (trail && trail.file === undefined) trail.scopes.push(context);
  }

  private noteFile(error: unknown, file: string, source: string): void {
    const trail = this.trailOf(error);
    if (trail && trail.file === undefined) {
      trail.file = file;
      trail.source = source;
    }
  }

  private toCairnError(error: unknown, topSource: string, vars: Vars, origin: Origin): CairnError {
    if (error instanceof CairnError) return error;
    const trail = this.trailOf(error) ?? { scopes: [] };
    const inPartial = trail.file !== undefined;
    const source = inPartial ? trail.source! : topSource;
    const scopes = inPartial ? trail.scopes : [...trail.scopes, vars];
    const problem = this.describe(error, source, scopes, vars);

    if (inPartial || origin.kind === 'file') {
      const file = inPartial ? trail.file! : (origin as { file: string }).file;
      const via = !inPartial
        ? ''
        : origin.kind === 'file'
          ? ` (included from ${origin.file})`
          : ` (included from ${formatLocation(origin.origin)}, in "${shorten(origin.text)}")`;
      const location: SourceLocation =
        problem.line === undefined ? { file } : { file, line: problem.line, col: problem.col };
      const detail =
        problem.detail ?? (problem.line !== undefined ? caretSnippet(source, problem.line, problem.col) : undefined);
      return templateError(problem, `${problem.message}${via}`, location, detail || undefined);
    }
    const where = problem.line === undefined ? '' : source.includes('\n') ? ` at line ${problem.line}` : '';
    const detail =
      problem.detail ?? (problem.line !== undefined ? caretSnippet(source, problem.line, problem.col) : undefined);
    return templateError(
      problem,
      `${problem.message} in "${shorten(origin.text)}"${where}`,
      origin.origin,
      detail || undefined,
    );
  }

  /** What went wrong and where in `source` (1-based line and column). */
  private describe(error: unknown, source: string, scopes: unknown[], vars: Vars): Problem {
    if (error instanceof TemplateFault) {
      const line = error.position?.line;
      if (error.kind === 'undefined') {
        const variable = error.variable ?? 'a variable';
        const col = error.position && columnOf(source, error.position, variable);
        // Handlebars names a block parameter's argument by its data path from the root (`xs.0.name`), which
        // is then not text of the template: explain that one from the root.
        const asWritten = line === undefined || lineOf(source, line).includes(variable);
        const explanation = error.available
          ? { available: error.available }
          : !asWritten
            ? explainMissing(variable, [vars], vars)
            : blockParameters(source).has(pathSegments(variable)[0] ?? '')
              ? undefined
              : explainMissing(variable, scopes, vars);
        return { message: undefinedMessage(variable, explanation), line, col, undefinedVariable: true };
      }
      return { message: error.message, line, col: error.position && error.position.column + 1 };
    }
    const message = error instanceof Error ? error.message : String(error);
    const position = handlebarsPosition(error);

    const notDefined = /^"(.*)" not defined(?: in |$)/.exec(message);
    if (notDefined && position) {
      const path = pathAt(source, position) ?? notDefined[1]!;
      if (isHelperCall(source, position)) {
        return {
          message: `unknown helper "${path}" (helpers: ${[...HELPER_NAMES, 'if', 'unless', 'each', 'with', 'lookup'].join(', ')})`,
          line: position.line,
          col: position.column + 1,
        };
      }
      const explanation = blockParameters(source).has(pathSegments(path)[0] ?? '')
        ? undefined
        : explainMissing(path, scopes, vars);
      return {
        message: undefinedMessage(path, explanation),
        line: position.line,
        col: position.column + 1,
        undefinedVariable: true,
      };
    }

    const parse = /^Parse error on line (\d+):\n([\s\S]*)$/.exec(message);
    if (parse) {
      const lines = parse[2]!.split('\n');
      return {
        message: `template syntax error: ${parseExpectation(lines.slice(2).join(' '))}`,
        line: Number(parse[1]),
        detail: lines.slice(0, 2).join('\n'),
      };
    }

    const missingPartial = /^The partial (.+) could not be found$/.exec(message);
    if (missingPartial) {
      const name = missingPartial[1]!;
      const at = findPartialCall(source, name);
      const known = [...this.partialFiles.keys()].sort();
      const dirs = this.partialsDirs.length ? this.partialsDirs.join(', ') : 'no partials folders';
      return {
        message: `partial "${name}" not found (known partials: ${known.join(', ') || 'none'}; looked in ${dirs})`,
        line: at?.line,
        col: at && at.column + 1,
      };
    }

    if (position) {
      return {
        message: `template error: ${message.replace(/ - \d+:\d+$/, '')}`,
        line: position.line,
        col: position.column + 1,
      };
    }
    return { message: `template error: ${message}` };
  }
}

function templateError(
  problem: Problem,
  message: string,
  location: SourceLocation,
  detail: string | undefined,
): CairnError {
  return problem.undefinedVariable
    ? new UndefinedVariableError(message, { kind: 'input', location, detail })
    : inputError(message, location, detail);
}

/** Jison's "Expecting 'A', 'B', ... got 'X'" in fewer words. */
function parseExpectation(text: string): string {
  const parsed = /^Expecting (.*), got '([^']*)'$/.exec(text.trim());
  if (!parsed) return text.trim() || 'cannot parse';
  if (parsed[2] === 'EOF') return 'unexpected end of the template (is a {{#block}} left open?)';
  const expected = parsed[1]!.split(', ').map((name) => name.replace(/'/g, '').toLowerCase());
  const shown = expected.length > 6 ? `${expected.slice(0, 6).join(', ')}, …` : expected.join(', ');
  return `unexpected ${parsed[2]!.toLowerCase()} (expected ${shown})`;
}

interface Problem {
  message: string;
  /** An undefined variable (rather than a helper refusing, a syntax error...). */
  undefinedVariable?: boolean;
  line?: number;
  col?: number;
  /** Replaces the caret snippet (a parse error brings its own excerpt). */
  detail?: string;
}

/**
 * Strict mode's own check (`container.strict`) tests `name in obj`: it finds `constructor`, `toString` and
 * the other prototype members (rendering "" instead of failing) and throws a TypeError, without position,
 * when the context is a string or number (`{{#each names}}{{nmae}}{{/each}}`). This replacement is emitted
 * into the compiled template: a name must be own data (a scope chain of plain objects is walked, built-in
 * prototypes never are) and hold a value, else it throws an error carrying the path's position, which
 * `describe` reads like Handlebars' own.
 */
const STRICT_LOOKUP_SOURCE = `(function (obj, name, loc) {
  var level = obj != null && typeof obj !== "object" ? Object(obj) : obj;
  for (; level != null && level !== Object.prototype && level !== Array.prototype && level !== String.prototype
      && level !== Number.prototype && level !== Boolean.prototype && level !== Function.prototype;
      level = Object.getPrototypeOf(level)) {
    if (Object.prototype.hasOwnProperty.call(level, name)) {
      var value = container.lookupProperty(obj, name);
      if (value !== undefined) return value;
      break;
    }
  }
  var error = new Error('"' + name + '" not defined');
  if (loc) { error.lineNumber = loc.start.line; error.column = loc.start.column; }
  throw error;
})`;

/**
 * How a value becomes text in the output. Handlebars with `noEscape` appends raw values, so a template of
 * only mustaches compiles to `return (a) + (b)`: two numbers would be added, not joined, and `{{port}}` alone
 * would return a number. Every appended value goes through this instead; lists and mappings render as JSON
 * (not "[object Object]"), null as nothing.
 */
const TO_TEXT_SOURCE = `(function (value) {
  return value == null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
})`;

/**
 * Handlebars compiles `a.b.c` to nested property reads; when `a` is missing, the read of `b` would throw a
 * TypeError before any helper runs, so `{{default a.b "x"}}` could never work. This subclass (Handlebars'
 * documented extension point) reads through `Object(parent)`, making a missing parent an undefined value:
 * a plain `{{a.b}}` still fails in strict mode, and `default`/`defined` see undefined. It also swaps in
 * STRICT_LOOKUP_SOURCE for `container.strict` and sends output through TO_TEXT_SOURCE.
 */
function installSafeLookups(env: HandlebarsEnv): void {
  // Handlebars never applies strict mode to block parameters (`{{#each xs as |x|}}{{x.nmae}}` renders
  // nothing). The AST compiler knows whether a path is strict but drops that for block parameters: pass it
  // on as an extra argument of the opcode, which lookupBlockParam below reads.
  interface AstCompiler {
    PathExpression(path: { strict?: boolean }): void;
    opcodes: Array<{ opcode: string; args: unknown[] }>;
    compiler: unknown;
  }
  type AstCompilerClass = { new (): AstCompiler; prototype: AstCompiler };
  const astHolder = env as unknown as { Compiler: AstCompilerClass };
  const AstBase = astHolder.Compiler;
  const SafeAst = function CairnAstCompiler(this: AstCompiler) {} as unknown as AstCompilerClass;
  SafeAst.prototype = Object.create(AstBase.prototype) as AstCompiler;
  SafeAst.prototype.PathExpression = function (this: AstCompiler, path: { strict?: boolean }): void {
    AstBase.prototype.PathExpression.call(this, path);
    const last = this.opcodes[this.opcodes.length - 1];
    if (last?.opcode === 'lookupBlockParam') last.args.push(path.strict === true);
  };
  SafeAst.prototype.compiler = SafeAst;
  astHolder.Compiler = SafeAst;

  interface Compiler {
    nameLookup(parent: unknown, name: string, type: string): unknown;
    internalNameLookup(parent: unknown, name: string): unknown;
    aliasable(name: string): unknown;
    appendToBuffer(source: unknown, location: unknown, explicit: unknown): unknown;
    lookupBlockParam(blockParamId: [number, number], parts: string[], strict?: boolean): void;
    resolvePath(type: string, parts: string[], startPartIndex: number, falsy: boolean, strict: boolean): void;
    push(expression: unknown): unknown;
    useBlockParams: boolean;
    compiler: unknown;
  }
  type CompilerClass = { new (): Compiler; prototype: Compiler };
  const holder = env as unknown as { JavaScriptCompiler: CompilerClass };
  const Base = holder.JavaScriptCompiler;
  const Safe = function CairnCompiler(this: Compiler) {} as unknown as CompilerClass;
  Safe.prototype = Object.create(Base.prototype) as Compiler;
  Safe.prototype.nameLookup = function (this: Compiler, parent: unknown, name: string, type: string): unknown {
    if (type === 'context' || type === 'data') return this.internalNameLookup(['Object(', parent, ')'], name);
    return Base.prototype.nameLookup.call(this, parent, name, type);
  };
  Safe.prototype.appendToBuffer = function (
    this: Compiler,
    source: unknown,
    location: unknown,
    explicit: unknown,
  ): unknown {
    const parts = Array.isArray(source) ? source : [source];
    return Base.prototype.appendToBuffer.call(
      this,
      [this.aliasable(TO_TEXT_SOURCE), '(', ...parts, ')'],
      location,
      explicit,
    );
  };
  Safe.prototype.lookupBlockParam = function (
    this: Compiler,
    blockParamId: [number, number],
    parts: string[],
    strict?: boolean,
  ): void {
    // `{{x}}` alone is the parameter itself: only a path into it (`{{x.name}}`) has a terminal to check.
    if (!strict || parts.length < 2) return Base.prototype.lookupBlockParam.call(this, blockParamId, parts);
    this.useBlockParams = true;
    this.push(['blockParams[', blockParamId[0], '][', blockParamId[1], ']']);
    this.resolvePath('context', parts, 1, false, true);
  };
  Safe.prototype.aliasable = function (this: Compiler, name: string): unknown {
    return Base.prototype.aliasable.call(this, name === 'container.strict' ? STRICT_LOOKUP_SOURCE : name);
  };
  // Block bodies are compiled by `new this.compiler()`: without this they would use the base class.
  Safe.prototype.compiler = Safe;
  holder.JavaScriptCompiler = Safe;
}

/**
 * One step of a Handlebars path outside Handlebars (native task arguments, error explanations): variables
 * as `lookupKey` finds them, plus the own `length` and indexes of lists and text that Handlebars reads too.
 */
function templateLookup(container: unknown, segment: string): Lookup {
  if ((Array.isArray(container) || typeof container === 'string') && segment === 'length')
    return { found: true, value: container.length };
  if (typeof container === 'string' && /^(0|[1-9][0-9]*)$/.test(segment) && Number(segment) < container.length)
    return { found: true, value: container[Number(segment)] };
  return lookupKey(container, segment);
}

/** Names a template binds with `as |a b|`: paths starting with them are not in any scope's variables. */
function blockParameters(source: string): Set<string> {
  const names = new Set<string>();
  for (const match of source.matchAll(/\bas\s+\|([^|]*)\|/g))
    for (const name of match[1]!.trim().split(/\s+/)) names.add(name);
  return names;
}

function pathSegments(path: string): string[] {
  return path
    .split(/[./]/)
    .filter((segment) => segment !== '')
    .map((segment) => segment.replace(/^\[(.*)\]$/, '$1'));
}

/** Which part of a path was missing, and what its level held. */
interface MissingInfo {
  missing?: string;
  available: string;
}

/** Follow `path` (as written in the template) through the block scopes to the part that is missing. */
function explainMissing(path: string, scopes: unknown[], root: unknown): MissingInfo | undefined {
  let rest = path;
  let base: unknown;
  if (rest.startsWith('@root')) {
    base = root;
    rest = rest.slice('@root'.length);
  } else if (rest.startsWith('@')) {
    return undefined;
  } else {
    let depth = 0;
    while (rest.startsWith('../')) {
      depth += 1;
      rest = rest.slice(3);
    }
    rest = rest.replace(/^this(?=[./]|$)|^\.\//, '');
    base = scopes[Math.min(depth, scopes.length - 1)];
  }
  const segments = pathSegments(rest);
  let value = base;
  for (let i = 0; i < segments.length; i++) {
    const found = templateLookup(value, segments[i]!);
    if (!found.found)
      return { missing: segments.slice(0, i + 1).join('.'), available: describeAvailable(value, segments[i]!) };
    value = found.value;
  }
  return undefined;
}

function undefinedMessage(path: string, info: MissingInfo | undefined): string {
  if (!info) return `undefined variable "${path}"`;
  const plainPath = pathSegments(path.replace(/^(@root|this)(?=[./]|$)|^(\.\.\/)+|^\.\//g, '')).join('.');
  if (info.missing === undefined || info.missing === plainPath)
    return `undefined variable "${path}" (${info.available})`;
  return `undefined variable "${path}": "${info.missing}" is not defined (${info.available})`;
}

/** Handlebars' own position for an error: properties on its Exception, else the " - line:col" suffix. */
function handlebarsPosition(error: unknown): TemplatePosition | undefined {
  const props = error as { lineNumber?: unknown; column?: unknown; message?: unknown };
  if (typeof props.lineNumber === 'number' && typeof props.column === 'number')
    return { line: props.lineNumber, column: props.column };
  const suffix = typeof props.message === 'string' ? / - (\d+):(\d+)$/.exec(props.message) : null;
  return suffix ? { line: Number(suffix[1]), column: Number(suffix[2]) } : undefined;
}

function lineOf(source: string, line: number): string {
  return source.split(/\r?\n/)[line - 1] ?? '';
}

/** The path expression starting at a strict-mode error's position, as written. */
function pathAt(source: string, position: TemplatePosition): string | undefined {
  const match = /^(?:@root[./]|\.\.\/|this[./]|\.\/)*[^\s{}()~=|]+/.exec(
    lineOf(source, position.line).slice(position.column),
  );
  return match ? match[0] : undefined;
}

/** True when the name at `position` is followed by parameters: then it was meant as a helper. */
function isHelperCall(source: string, position: TemplatePosition): boolean {
  const rest = lineOf(source, position.line)
    .slice(position.column)
    .replace(/^[^\s{}()~]+/, '');
  return !/^\s*~?\}\}/.test(rest) && rest.trim() !== '';
}

/** The column of `variable` inside the mustache at `position` (0-based in, 1-based out). */
function columnOf(source: string, position: TemplatePosition, variable: string): number {
  const text = lineOf(source, position.line);
  const escaped = variable.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`(?<![\\w.@/$-])(?:this[./])?${escaped}(?![\\w$-])`, 'g');
  pattern.lastIndex = position.column;
  const match = pattern.exec(text);
  return (match ? match.index : position.column) + 1;
}

function findPartialCall(source: string, name: string): TemplatePosition | undefined {
  const lines = source.split(/\r?\n/);
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`\\{\\{~?#?>\\s*${escaped}(?![\\w-])`);
  for (let i = 0; i < lines.length; i++) {
    const match = pattern.exec(lines[i]!);
    if (match) return { line: i + 1, column: match.index };
  }
  return undefined;
}

function shorten(text: string): string {
  const oneLine = text.replace(/\s*\n\s*/g, ' ⏎ ');
  return oneLine.length > 120 ? `${oneLine.slice(0, 119)}…` : oneLine;
}

/** Every `*.hbs` file directly in `dir`, sorted; a folder that does not exist has none. */
function listPartials(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw inputError(`cannot read the partials folder: ${describeFsError(err)}`, { file: dir });
  }
  return entries
    .filter((entry) => entry.name.endsWith('.hbs') && (entry.isFile() || entry.isSymbolicLink()))
    .map((entry) => join(dir, entry.name))
    .sort();
}

/** A template's text: a readable UTF-8 file of sane size, else a CairnError naming the path. */
/** The one rule for which template files are Handlebars: the `.hbs` extension. */
export function isHandlebarsFile(path: string): boolean {
  return path.endsWith('.hbs');
}

function readTemplate(path: string): string {
  let buffer: Buffer;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw inputError('expected a template file, found a directory', { file: path });
    if (stat.size > MAX_TEMPLATE_BYTES) {
      throw inputError(
        `template is ${Math.round(stat.size / 1024)} KiB; cairn renders at most ${MAX_TEMPLATE_BYTES / 1024 / 1024} MiB`,
        { file: path },
      );
    }
    buffer = readFileSync(path);
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw inputError(`cannot read template: ${describeFsError(err)}`, { file: path });
  }
  if (buffer.includes(0))
    throw inputError('template is binary (it contains NUL bytes); expected UTF-8 text', { file: path });
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buffer);
  } catch {
    throw inputError('template is not valid UTF-8 text', { file: path });
  }
}
