/**
 * Loading YAML so that every later error can point at file:line:col. Inventory, playbooks, roles, vars
 * files and the rollout checklist all come through here; schema errors are mapped back to the node they
 * are about with `locate`.
 *
 * Hostile input is refused here, before it can cost memory or stack: files over MAX_YAML_BYTES, nesting
 * deeper than MAX_YAML_DEPTH (checked with the streaming lexer before the parser builds anything, because
 * the parser needs ~800 bytes of heap per `[` and overflows its stack near 800 levels), aliases that
 * expand past MAX_ALIAS_EXPANSION values or into themselves.
 */
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import {
  CST,
  Document,
  Lexer,
  LineCounter,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  type Node,
  type Pair,
  type ScalarTag,
} from 'yaml';
import { CairnError, caretSnippet, inputError, type SourceLocation } from './errors.js';
import { isAnsibleVaultText, openAnsibleVault, rememberSecretValues } from './ansible-vault.js';

/** Larger inputs are refused: no playbook or inventory is legitimately this big. */
export const MAX_YAML_BYTES = 4 * 1024 * 1024;
/** Aliases expanding past this many nodes are refused (the "billion laughs" shape); the yaml library's own check. */
export const MAX_ALIAS_COUNT = 1000;
/** Values that aliases may add to a document in all (each alias adds the size of what it names). */
export const MAX_ALIAS_EXPANSION = 10_000;
/** Nesting levels (mappings, lists, flow collections) a document may have; real ones use fewer than 20. */
export const MAX_YAML_DEPTH = 100;

export type YamlPath = ReadonlyArray<string | number>;

export interface LoadedYaml {
  file: string;
  source: string;
  /** The plain JavaScript value of the document (null for an empty file). */
  value: unknown;
  /** Where the node at `path` is; `which: 'key'` points at the key of a mapping entry instead. */
  locate(path: YamlPath, which?: 'key' | 'value'): SourceLocation;
}

export interface YamlParseOptions {
  /**
   * Words for a key written twice in one mapping, given the key and the path of the mapping (the inventory
   * says "host X is listed twice in group Y"); undefined keeps the generic wording.
   */
  describeDuplicateKey?: (key: string, mappingPath: YamlPath) => string | undefined;
}

export function readTextFile(file: string, what = 'file'): string {
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw inputError(`expected a ${what}, found a directory`, { file });
    size = st.size;
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw inputError(`cannot read ${what}: ${describeFsError(err, file)}`, { file });
  }
  if (size > MAX_YAML_BYTES) {
    throw inputError(
      `${what} is ${Math.round(size / 1024)} KiB; cairn reads at most ${MAX_YAML_BYTES / 1024 / 1024} MiB of YAML`,
      { file },
    );
  }
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw inputError(`cannot read ${what}: ${describeFsError(err, file)}`, { file });
  }
  if (buf.includes(0))
    throw inputError(`${what} is binary (it contains NUL bytes); expected UTF-8 YAML text`, { file });
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    // Point at the first byte that is not UTF-8 (a Latin-1 "é" from an old editor, say).
    const text = buf.toString('utf8');
    const loc = positionOf(text, text.indexOf('\uFFFD'), file);
    throw inputError(`${what} is not valid UTF-8 text (save it as UTF-8)`, loc);
  }
}

/** Why a file could not be read, in words; with `file`, a dangling symbolic link says where it points. */
export function describeFsError(err: unknown, file?: string): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT': {
      const target = file === undefined ? undefined : symlinkTarget(file);
      return target === undefined ? 'no such file' : `it is a symbolic link to ${target}, which does not exist`;
    }
    case 'ELOOP':
      return 'too many levels of symbolic links (a link that points back at itself)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a part of the path is a file, not a folder';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

function symlinkTarget(file: string): string | undefined {
  try {
    return lstatSync(file).isSymbolicLink() ? readlinkSync(file) : undefined;
  } catch {
    return undefined;
  }
}

export function loadYamlFile(file: string, what = 'YAML file', options: YamlParseOptions = {}): LoadedYaml {
  const text = readTextFile(file, what);
  if (!isAnsibleVaultText(text)) return parseYaml(text, file, options);
  // A whole file encrypted with ansible-vault: opened in memory, and every string in it masked in output.
  let plain: string;
  try {
    plain = openAnsibleVault(text);
  } catch (err) {
    throw inputError(`cannot open this Ansible Vault file: ${err instanceof Error ? err.message : String(err)}`, {
      file,
      line: 1,
      col: 1,
    });
  }
  const loaded = parseYaml(plain, file, options);
  rememberSecretValues(loaded.value);
  return loaded;
}

/**
 * A source line with a caret under the column, as errors.ts's caretSnippet, but a very long line (100 000
 * `[` on one line) is shown as a window around the column instead of a screenful of spaces.
 */
/** The source line under a location read from its file again (for locations kept from an earlier parse). */
export function snippetAt(where: SourceLocation): string | undefined {
  if (where.line === undefined) return undefined;
  try {
    return sourceSnippet(readFileSync(where.file, 'utf8'), where.line, where.col) || undefined;
  } catch {
    return undefined;
  }
}

export function sourceSnippet(source: string, line: number, col: number | undefined): string {
  const WIDTH = 120;
  const text = source.split(/\r?\n/, line)[line - 1];
  if (text === undefined || col === undefined || text.length <= WIDTH) return caretSnippet(source, line, col);
  const start = Math.max(0, Math.min(col - 1 - WIDTH / 2, text.length - WIDTH));
  const shown = `${start > 0 ? '…' : ''}${text.slice(start, start + WIDTH)}${start + WIDTH < text.length ? '…' : ''}`;
  const gutter = `${line} | `;
  const caretAt = col - start + (start > 0 ? 1 : 0);
  return `${gutter}${shown}\n${' '.repeat(gutter.length + caretAt - 1)}^`;
}

function positionOf(source: string, offset: number, file: string): SourceLocation {
  let line = 1;
  let lineStart = 0;
  for (let i = source.indexOf('\n'); i >= 0 && i < offset; i = source.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { file, line, col: offset - lineStart + 1 };
}

function errorAtOffset(source: string, file: string, offset: number, message: string): CairnError {
  const loc = positionOf(source, offset, file);
  return inputError(message, loc, sourceSnippet(source, loc.line!, loc.col));
}

/** One lexer token with where it starts; `content` marks a scalar's text (which the lexer's type may misname). */
interface Token {
  text: string;
  type: string | null;
  offset: number;
  content: boolean;
}

/** The lexer's tokens with their offsets. Markers the lexer inserts (document, scalar, flow end) take no source. */
function* tokens(source: string): Generator<Token> {
  let offset = 0;
  let nextIsContent = false;
  for (const text of new Lexer().lex(source)) {
    if (text === CST.SCALAR) {
      nextIsContent = true;
      continue;
    }
    const marker = text === CST.DOCUMENT || text === CST.FLOW_END;
    yield { text, type: CST.tokenType(text), offset, content: nextIsContent };
    nextIsContent = false;
    if (!marker) offset += text.length;
  }
}

/**
 * Refuse nesting deeper than MAX_YAML_DEPTH before the parser sees it. Block depth is tracked as YAML does,
 * with a stack of the columns of open block nodes (a line pops the nodes it is not indented under); flow
 * collections count one level per `[`/`{`. Linear time, constant memory beyond the stack.
 */
function checkNesting(source: string, file: string): void {
  const block: number[] = [];
  let flow = 0;
  let lineStart = 0;
  let firstOnLine = true;
  let afterIndicator = false;
  const open = (col: number, at: number) => {
    while (block.length && block[block.length - 1]! >= col) block.pop();
    block.push(col);
    deeper(at);
  };
  const deeper = (at: number) => {
    if (block.length + flow > MAX_YAML_DEPTH) {
      throw errorAtOffset(
        source,
        file,
        at,
        `YAML nests more than ${MAX_YAML_DEPTH} levels deep here; cairn refuses it (no playbook or inventory needs that many, and the parser would run out of memory)`,
      );
    }
  };
  for (const tok of tokens(source)) {
    const col = tok.offset - lineStart;
    const type = tok.content ? 'content' : tok.type;
    switch (type) {
      case 'doc-mode':
      case 'doc-start':
      case 'doc-end':
        block.length = 0;
        flow = 0;
        break;
      case 'flow-seq-start':
      case 'flow-map-start':
        if (flow === 0 && (firstOnLine || afterIndicator)) open(col, tok.offset);
        flow++;
        deeper(tok.offset);
        afterIndicator = false;
        break;
      case 'flow-seq-end':
      case 'flow-map-end':
        flow = Math.max(0, flow - 1);
        break;
      case 'flow-error-end':
        flow = 0;
        break;
      case 'seq-item-ind':
      case 'explicit-key-ind':
        if (flow === 0) {
          open(col, tok.offset);
          afterIndicator = true;
        }
        break;
      case 'space':
      case 'newline':
      case 'comment':
      case 'directive-line':
      case 'byte-order-mark':
        break;
      default:
        if (flow === 0 && (firstOnLine || afterIndicator)) open(col, tok.offset);
        afterIndicator = false;
    }
    const newline = tok.text.lastIndexOf('\n');
    if (newline >= 0) lineStart = tok.offset + newline + 1;
    if (type === 'newline' || tok.text.endsWith('\n')) {
      firstOnLine = true;
      afterIndicator = false;
    } else if (type !== 'space' && type !== 'doc-mode' && type !== 'byte-order-mark') {
      firstOnLine = false;
    }
  }
}

function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? text.slice(0, 60) + '…' : text);
}

/** ` in all.hosts`, ` in [0].vars`; nothing for the top level or a path of list positions only. */
function inPath(path: YamlPath): string {
  if (!path.some((p) => typeof p === 'string')) return '';
  return ` in ${path
    .map((p) => (typeof p === 'number' ? `[${p}]` : p))
    .join('.')
    .replace(/\.\[/g, '[')}`;
}

/**
 * The first mapping (breadth first) that holds a key twice. Keys are compared as JavaScript will hold them
 * (1 and "1" are the same key there), in one pass per mapping.
 */
function findDuplicateKey(contents: unknown): { key: string; first: Node; second: Node; path: YamlPath } | undefined {
  const pending: Array<{ node: unknown; path: YamlPath }> = [{ node: contents, path: [] }];
  for (let next = 0; next < pending.length; next++) {
    const { node, path } = pending[next]!;
    if (isMap(node)) {
      const seen = new Map<string, Node>();
      for (const pair of node.items as Pair[]) {
        if (isScalar(pair.key)) {
          const key = String(pair.key.value);
          const first = seen.get(key);
          if (first) return { key, first, second: pair.key as Node, path };
          seen.set(key, pair.key as Node);
          pending.push({ node: pair.value, path: [...path, key] });
        }
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => pending.push({ node: item, path: [...path, i] }));
    }
  }
  return undefined;
}

/** The `[` or `{` still open at `offset`, the innermost one. */
function unclosedFlowBefore(source: string, offset: number): number | undefined {
  const openers: number[] = [];
  for (const tok of tokens(source)) {
    if (tok.offset >= offset) break;
    if (tok.content) continue;
    if (tok.type === 'flow-seq-start' || tok.type === 'flow-map-start') openers.push(tok.offset);
    else if (tok.type === 'flow-seq-end' || tok.type === 'flow-map-end') openers.pop();
    else if (tok.type === 'doc-start') openers.length = 0;
  }
  return openers.pop();
}

/** Where the quoted string that runs to `offset` without its closing quote starts. */
function unclosedQuoteBefore(source: string, offset: number): number | undefined {
  let start: number | undefined;
  for (const tok of tokens(source)) {
    if (tok.offset > offset) break;
    if (tok.type === 'double-quoted-scalar' || tok.type === 'single-quoted-scalar') start = tok.offset;
  }
  return start;
}

/** Parser errors that usually mean a line is indented wrongly. */
const INDENT_CODES = new Set<string>([
  'BAD_INDENT',
  'BLOCK_AS_IMPLICIT_KEY',
  'MULTILINE_IMPLICIT_KEY',
  'UNEXPECTED_TOKEN',
  'MISSING_CHAR',
]);

/**
 * The parser reports a misindented line where it gives up, in its own words ("A block sequence may not be
 * used as an implicit map key"). Find the line at or after the error that is indented to no column any open
 * line above it uses, and say that instead. Lines inside block scalars or flow collections may make this
 * guess wrong, in which case no line misfits and the parser's words stand.
 */
function misindentedLine(
  source: string,
  offset: number,
): { offset: number; indent: number; above: number[] } | undefined {
  const lines = source.split('\n');
  const errorLine = source.slice(0, offset).split('\n').length - 1;
  const open: number[] = [];
  let lineStart = 0;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.replace(/\r$/, '');
    const content = text.trimStart();
    const indent = text.length - content.length;
    if (content !== '' && !content.startsWith('#')) {
      if (i >= errorLine && text[indent - 1] !== '\t') {
        if (open.length && !open.includes(indent) && indent <= open[open.length - 1]!)
          return { offset: lineStart + indent, indent, above: [...open] };
        if (i > errorLine) return undefined;
      }
      while (open.length && open[open.length - 1]! > indent) open.pop();
      if (open[open.length - 1] !== indent) open.push(indent);
    }
    lineStart += lines[i]!.length + 1;
  }
  return undefined;
}

/** A key written twice in one mapping, as an error at the second one naming where the first is. */
function duplicateKeyError(
  source: string,
  file: string,
  doc: Document.Parsed,
  lineCounter: LineCounter,
  options: YamlParseOptions,
): CairnError | undefined {
  const dup = findDuplicateKey(doc.contents);
  if (!dup) return undefined;
  const first = lineCounter.linePos(dup.first.range?.[0] ?? 0);
  const words = options.describeDuplicateKey?.(dup.key, dup.path);
  const message = words
    ? `${words} (first at line ${first.line}, column ${first.col})`
    : `duplicate key ${quote(dup.key)}${inPath(dup.path)} (first at line ${first.line}, column ${first.col}); a mapping holds each key once`;
  return errorAtOffset(source, file, dup.second.range?.[0] ?? 0, message);
}

function parseError(source: string, file: string, doc: Document.Parsed): CairnError {
  const error = doc.errors[0]!;
  const offset = Math.min(error.pos[0], source.length);
  const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  const closing = /end with an? ([\]}])/.exec(message);
  if (closing) {
    const opener = unclosedFlowBefore(source, offset);
    if (opener !== undefined) {
      const end = positionOf(source, offset, file);
      return errorAtOffset(
        source,
        file,
        opener,
        `invalid YAML: this "${source[opener]}" is never closed (expected "${closing[1]}" before line ${end.line}, column ${end.col})`,
      );
    }
  }
  if (error.code === 'MISSING_CHAR' && /closing "?quote|closing ['"]/i.test(message)) {
    const opener = unclosedQuoteBefore(source, offset);
    if (opener !== undefined) {
      return errorAtOffset(
        source,
        file,
        opener,
        `invalid YAML: the string quoted with ${source[opener]} here is never closed`,
      );
    }
  }
  if (error.code === 'MULTIPLE_DOCS') {
    return errorAtOffset(
      source,
      file,
      offset,
      'invalid YAML: a second YAML document starts here ("---"); cairn reads one document per file, so put everything in the first',
    );
  }
  if (INDENT_CODES.has(error.code)) {
    const misfit = misindentedLine(source, offset);
    if (misfit) {
      const others = misfit.above.join(', ');
      return errorAtOffset(
        source,
        file,
        misfit.offset,
        `invalid YAML: bad indentation: this line is indented ${misfit.indent} space${misfit.indent === 1 ? '' : 's'}, which lines up with no line above it (those are indented ${others}); indent it like the entries it belongs with`,
      );
    }
  }
  if (/call stack/i.test(message)) {
    return errorAtOffset(source, file, offset, 'YAML is nested too deeply to read');
  }
  if (message.startsWith('cannot open this !vault value')) return errorAtOffset(source, file, offset, message);
  const hint = error.code === 'TAB_AS_INDENT' ? ' (indent with spaces)' : '';
  return errorAtOffset(source, file, offset, `invalid YAML: ${message}${hint}`);
}

interface Extent {
  /** Values in the node once its aliases are expanded. */
  size: number;
  /** Levels below the node once its aliases are expanded. */
  depth: number;
}

/**
 * Mapping keys that are lists or mappings (JavaScript objects cannot hold them; the yaml library would turn
 * them into strings with a warning on stderr), the key `__proto__`, and aliases that name no anchor, name the node they sit in (a structure that contains itself), or expand the
 * document past MAX_ALIAS_EXPANSION values or MAX_YAML_DEPTH levels: each an error at the alias. The walk
 * recurses, which is safe: checkNesting has bounded the depth.
 */
function checkAliases(source: string, file: string, doc: Document.Parsed, lineCounter: LineCounter): void {
  const anchors = new Map<string, Node>();
  const extents = new Map<Node, Extent>();
  const open = new Set<Node>();
  let expansion = 0;
  const at = (node: Node, message: string) => errorAtOffset(source, file, node.range?.[0] ?? 0, message);
  const visit = (node: unknown, level: number): Extent => {
    if (node === null || typeof node !== 'object') return { size: 0, depth: 0 };
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (!target)
        throw at(node, `invalid YAML: alias *${node.source} names no anchor (an &${node.source} must come before it)`);
      if (open.has(target)) {
        // The anchor (&name) is written before the node's own range starts.
        const anchorAt = source.lastIndexOf(`&${node.source}`, target.range?.[0] ?? 0);
        const where =
          anchorAt >= 0
            ? lineCounter.linePos(anchorAt)
            : target.range
              ? lineCounter.linePos(target.range[0])
              : undefined;
        throw at(
          node,
          `YAML alias *${node.source} sits inside the value it names${where ? ` (anchored at line ${where.line}, column ${where.col})` : ''}; it would expand without end`,
        );
      }
      const extent = extents.get(target)!;
      expansion += extent.size;
      if (expansion > MAX_ALIAS_EXPANSION) {
        throw at(
          node,
          `YAML aliases expand too far: with *${node.source} here the document grows past ${MAX_ALIAS_EXPANSION} values; refusing a document that grows without bound`,
        );
      }
      if (level + extent.depth > MAX_YAML_DEPTH) {
        throw at(node, `YAML alias *${node.source} makes the document nest more than ${MAX_YAML_DEPTH} levels deep`);
      }
      return extent;
    }
    const n = node as Node;
    if ((n as { anchor?: string }).anchor) anchors.set((n as { anchor: string }).anchor, n);
    open.add(n);
    let size = 1;
    let depth = 0;
    const children: unknown[] = [];
    if (isMap(n) || isSeq(n)) {
      for (const item of n.items) {
        if (isPair(item)) {
          const key = isAlias(item.key) ? anchors.get(item.key.source) : item.key;
          if (isMap(key) || isSeq(key)) {
            throw at(
              item.key as Node,
              `invalid YAML: a mapping key must be a plain value (a name or a number), not a ${isMap(key) ? 'mapping' : 'list'}`,
            );
          }
          if (isScalar(key) && String(key.value) === '__proto__') {
            // Object.assign would make the value the prototype of the variables it is merged into, so
            // names it holds would resolve as variables nobody defined.
            throw at(item.key as Node, 'the key "__proto__" is not allowed: JavaScript gives it a special meaning');
          }
          children.push(item.key, item.value);
        } else children.push(item);
      }
    }
    for (const child of children) {
      const extent = visit(child, level + 1);
      size += extent.size;
      depth = Math.max(depth, extent.depth + 1);
    }
    open.delete(n);
    const extent = { size, depth };
    extents.set(n, extent);
    return extent;
  };
  visit(doc.contents, 0);
}

/**
 * Ansible reads YAML with PyYAML, whose YAML 1.1 resolver makes yes/no/on/off (in the three spellings
 * yes, Yes, YES) booleans, beside true/false. cairn reads the same documents, so the same words are booleans
 * here in every file (plays, tasks, module arguments, variables): `enable_thing: no` is false in a `when`, as
 * in Ansible. (PyYAML does not take y/n; neither does this.) Everything else stays YAML 1.2's core schema.
 */
const pyYamlBool: ScalarTag = {
  tag: 'tag:yaml.org,2002:bool',
  default: true,
  test: /^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$/,
  resolve: (text: string) => /^(?:yes|on)$/i.test(text),
};

/**
 * Ansible's inline `!vault |` value: opened with the Ansible Vault passwords given on the command line (and
 * remembered for masking), or refused at the value. It never loads as its ciphertext.
 */
const vaultTag: ScalarTag = {
  tag: '!vault',
  resolve(text: string, onError: (message: string) => void): string {
    try {
      return openAnsibleVault(text);
    } catch (err) {
      onError(`cannot open this !vault value: ${err instanceof Error ? err.message : String(err)}`);
      return '';
    }
  },
};

/** Ansible's `!unsafe` marks a string its templating must not render; cairn reads it as the plain string. */
const unsafeTag: ScalarTag = { tag: '!unsafe', resolve: (text: string) => text };

export function parseYaml(source: string, file: string, options: YamlParseOptions = {}): LoadedYaml {
  checkNesting(source, file);
  const lineCounter = new LineCounter();
  let doc: Document.Parsed;
  try {
    // logLevel error: the library's own warnings would go to stderr; what they are about is refused below
    // instead. uniqueKeys false: the library compares every key of a mapping with every other (47 000 hosts
    // in one group took a minute); duplicates are found below in one pass.
    doc = parseDocument(source, {
      lineCounter,
      prettyErrors: false,
      uniqueKeys: false,
      strict: true,
      logLevel: 'error',
      customTags: (tags) => [...tags, pyYamlBool, vaultTag, unsafeTag],
    });
  } catch (err) {
    if (err instanceof RangeError) throw inputError('YAML is nested too deeply to read', { file });
    throw err;
  }
  const posOf = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, col };
  };
  if (doc.errors.length) throw parseError(source, file, doc);
  const duplicate = duplicateKeyError(source, file, doc, lineCounter, options);
  if (duplicate) throw duplicate;
  checkAliases(source, file, doc, lineCounter);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof RangeError) throw inputError('YAML is nested too deeply to read', { file });
    const message = err instanceof Error ? err.message : String(err);
    if (/alias/i.test(message)) {
      throw inputError(
        `YAML aliases expand too far (more than ${MAX_ALIAS_COUNT} nodes); refusing a document that grows without bound`,
        { file },
      );
    }
    throw inputError(`invalid YAML: ${message}`, { file });
  }
  // Each mapping's keys, indexed on first use: the inventory locates every host and variable, and a linear
  // search per lookup made a 40 000-host group quadratic.
  const keyIndex = new WeakMap<object, Map<string, Pair>>();
  const pairFor = (map: { items: Pair[] }, step: string): Pair | undefined => {
    let index = keyIndex.get(map);
    if (!index) {
      index = new Map();
      for (const p of map.items) {
        const key = isScalar(p.key) ? String(p.key.value) : String(p.key);
        if (!index.has(key)) index.set(key, p);
      }
      keyIndex.set(map, index);
    }
    return index.get(step);
  };
  const locate = (path: YamlPath, which: 'key' | 'value' = 'value'): SourceLocation => {
    let node: unknown = doc.contents;
    let best: SourceLocation =
      node && (node as Node).range ? posOf((node as Node).range![0]) : { file, line: 1, col: 1 };
    for (let i = 0; i < path.length; i++) {
      const step = path[i]!;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = pairFor(node as { items: Pair[] }, String(step));
        if (!pair) return best;
        const keyNode = pair.key as Node | null;
        if (last && which === 'key' && keyNode?.range) return posOf(keyNode.range[0]);
        node = pair.value;
        const target = (node as Node | null)?.range ? (node as Node) : keyNode;
        if (target?.range) best = posOf(target.range[0]);
      } else if (isSeq(node)) {
        const idx = typeof step === 'number' ? step : Number(step);
        node = node.items[idx];
        if ((node as Node | undefined)?.range) best = posOf((node as Node).range![0]);
        else return best;
      } else if (isPair(node)) {
        node = node.value;
      } else {
        return best;
      }
    }
    return best;
  };
  return { file, source, value, locate };
}

/** An error at a path of a loaded document, with the source line and a caret. */
export function errorAt(
  loaded: LoadedYaml,
  path: YamlPath,
  message: string,
  which: 'key' | 'value' = 'value',
): CairnError {
  const loc = loaded.locate(path, which);
  return inputError(message, loc, loc.line ? sourceSnippet(loaded.source, loc.line, loc.col) : undefined);
}
