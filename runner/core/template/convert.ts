/**
 * `cairn template convert FILE.j2`: a Jinja template rewritten as a cairn Handlebars template that renders
 * the same bytes (with Ansible's template defaults: trim_blocks on, lstrip_blocks off). Supported: `{% if /
 * elif / else %}`, `{% for x in y %}` (also `for k, v in d.items()`) with loop.index/index0/first/last,
 * `{% set x = literal %}`, filters of the one table, comparisons, `and`/`or`/`not`, `is defined`, `in`,
 * `{# comments #}`, whitespace control (`{%-`, `-%}`), `{{ ansible_managed }}`. Anything else is named by
 * line in `problems`, and the output holds `{{!-- cairn convert: … --}}` there.
 *
 * Whitespace: the parser (jinja-syntax.ts) has already applied trim_blocks and the `-` markers to the text
 * between tags, so text is written as it is. Handlebars would also strip "standalone" block lines; an empty
 * comment `{{!}}` next to each block tag keeps it from doing so, and the output is byte for byte Jinja's.
 */
import { parseTemplate, SyntaxFault, trailingNewlines, type Expr, type TemplateNode } from './jinja-syntax.js';
import { FILTERS, TESTS } from './filters.js';

export interface Conversion {
  handlebars: string;
  /** "line N: what could not be converted". */
  problems: string[];
}

class Unconvertible extends Error {}

interface Scope {
  /** Names bound by enclosing loops and sets (Handlebars block parameters). */
  locals: Map<string, string>;
  /** Inside any block that changes the context: globals are read from @root. */
  nested: boolean;
  /** The loop variable's `@index` owner, for loop.* inside the innermost loop. */
  inLoop: boolean;
}

const COMPARISON_HELPERS: Record<string, string> = {
  '==': 'eq',
  '!=': 'ne',
  '<': 'lt',
  '<=': 'le',
  '>': 'gt',
  '>=': 'ge',
};

function literal(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  throw new Unconvertible(`the literal ${JSON.stringify(value)}`);
}

function pathSegment(name: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? name : `[${name}]`;
}

/** A Jinja expression as a Handlebars parameter: a path, a literal or a (helper …) subexpression. */
function param(node: Expr, scope: Scope): string {
  switch (node.kind) {
    case 'literal':
      return literal(node.value);
    case 'name': {
      if (node.name === 'loop') throw new Unconvertible('"loop" on its own');
      const local = scope.locals.get(node.name);
      if (local !== undefined) return local;
      return scope.nested ? `@root.${pathSegment(node.name)}` : pathSegment(node.name);
    }
    case 'attr': {
      if (node.object.kind === 'name' && node.object.name === 'loop' && !scope.locals.has('loop')) {
        if (!scope.inLoop) throw new Unconvertible('loop.* outside a loop');
        const map: Record<string, string> = {
          index0: '@index',
          first: '@first',
          last: '@last',
          index: '(add @index 1)',
        };
        if (!(node.name in map)) throw new Unconvertible(`loop.${node.name}`);
        return map[node.name]!;
      }
      const base = param(node.object, scope);
      return base.startsWith('(')
        ? `(lookup ${base} ${JSON.stringify(node.name)})`
        : `${base}.${pathSegment(node.name)}`;
    }
    case 'index': {
      const base = param(node.object, scope);
      if (
        node.key.kind === 'literal' &&
        (typeof node.key.value === 'string' || typeof node.key.value === 'number') &&
        !base.startsWith('(')
      ) {
        return `${base}.[${String(node.key.value)}]`;
      }
      return `(lookup ${base} ${param(node.key, scope)})`;
    }
    case 'filter': {
      if (!Object.prototype.hasOwnProperty.call(FILTERS, node.name))
        throw new Unconvertible(`the filter "${node.name}"`);
      const args = [
        param(node.operand, scope),
        ...node.args.map((a) => param(a, scope)),
        ...node.kwargs.map(([k, v]) => `${k}=${param(v, scope)}`),
      ];
      return `(${node.name} ${args.join(' ')})`;
    }
    case 'test': {
      const operand = param(node.operand, scope);
      let helper: string;
      if (node.name === 'defined' || node.name === 'undefined') {
        helper = `(defined ${operand})`;
        if (node.name === 'undefined') return node.negate ? helper : `(not ${helper})`;
      } else if (node.name === 'none') {
        helper = `(eq ${operand} null)`;
      } else if (node.name === 'in') {
        helper = `(contains ${param(node.args[0]!, scope)} ${operand})`;
      } else if (Object.prototype.hasOwnProperty.call(TESTS, node.name)) {
        const args = [
          ...node.args.map((a) => param(a, scope)),
          ...node.kwargs.map(([k, v]) => `${k}=${param(v, scope)}`),
        ];
        helper = `(is ${operand} ${JSON.stringify(node.name)}${args.length ? ` ${args.join(' ')}` : ''})`;
      } else {
        throw new Unconvertible(`the test "is ${node.name}"`);
      }
      return node.negate ? `(not ${helper})` : helper;
    }
    case 'compare': {
      const parts: string[] = [];
      let left = node.first;
      for (const { op, operand } of node.rest) {
        const a = param(left, scope);
        const b = param(operand, scope);
        if (op === 'in') parts.push(`(contains ${b} ${a})`);
        else if (op === 'not in') parts.push(`(not (contains ${b} ${a}))`);
        else parts.push(`(${COMPARISON_HELPERS[op]} ${a} ${b})`);
        left = operand;
      }
      return parts.length === 1 ? parts[0]! : `(and ${parts.join(' ')})`;
    }
    case 'and':
    case 'or':
      return `(${node.kind} ${param(node.left, scope)} ${param(node.right, scope)})`;
    case 'not':
      return `(not ${param(node.operand, scope)})`;
    case 'binary':
      if (node.op === '+') return `(add ${param(node.left, scope)} ${param(node.right, scope)})`;
      throw new Unconvertible(`the operator "${node.op}"`);
    default:
      throw new Unconvertible(describeNode(node));
  }
}

function describeNode(node: Expr): string {
  const names: Record<string, string> = {
    cond: 'an inline "a if c else b"',
    call: 'a function or method call',
    slice: 'a slice',
    list: 'a list literal',
    tuple: 'a tuple',
    dict: 'a mapping literal',
    neg: 'a sign',
  };
  return names[node.kind] ?? `the construct ${node.kind}`;
}

/** A condition with Jinja's truthiness (Handlebars' own `if` takes `{}` for true). */
function condition(node: Expr, scope: Scope): string {
  const p = param(node, scope);
  return p.startsWith('(') ? p : `(is ${p} "truthy")`;
}

/** `{{ expr }}` as a mustache: a bare path stays `{{ path }}`, anything else is a helper call. */
function mustache(node: Expr, scope: Scope): string {
  if (node.kind === 'cond') {
    const otherwise = node.otherwise ? `{{else}}${mustache(node.otherwise, scope)}` : '';
    return `{{#if ${param(node.test, scope)}}}${mustache(node.then, scope)}${otherwise}{{/if}}`;
  }
  if (node.kind === 'binary' && node.op === '~') return mustache(node.left, scope) + mustache(node.right, scope);
  // Through `string` (Python's str()): Jinja prints True, None and lists as Python does.
  return `{{string ${param(node, scope)}}}`;
}

function lineOf(source: string, pos: number): number {
  return source.slice(0, pos).split('\n').length;
}

/** Convert a Jinja template; syntax errors and unsupported constructs are listed by line. */
export function convertJinja(source: string): Conversion {
  const problems: string[] = [];
  let nodes: TemplateNode[];
  try {
    nodes = parseTemplate(source, { trimBlocks: true });
  } catch (err) {
    if (err instanceof SyntaxFault)
      return { handlebars: '', problems: [`line ${lineOf(source, err.pos)}: ${err.message}`] };
    throw err;
  }
  const fail = (pos: number, err: unknown): string => {
    if (!(err instanceof Unconvertible)) throw err;
    problems.push(`line ${lineOf(source, pos)}: cannot convert ${err.message}`);
    return `{{!-- cairn convert: line ${lineOf(source, pos)}: ${err.message.replace(/--/g, '- -')} --}}`;
  };

  const body = (list: TemplateNode[], scope: Scope): string => {
    let out = '';
    for (let i = 0; i < list.length; i++) {
      const node = list[i]!;
      switch (node.kind) {
        case 'text':
          // A literal "{{" in the text would be a mustache in Handlebars: escape it.
          out += node.text.replace(/\{\{/g, '\\{{');
          break;
        case 'output':
          try {
            out += mustache(node.expr, scope);
          } catch (err) {
            out += fail(node.pos, err);
          }
          break;
        case 'if':
          try {
            let text = '';
            node.branches.forEach((branch, b) => {
              text +=
                b === 0
                  ? `{{!}}{{#if ${condition(branch.test, scope)}}}{{!}}`
                  : `{{!}}{{else if ${condition(branch.test, scope)}}}{{!}}`;
              text += body(branch.body, scope);
            });
            if (node.otherwise) text += `{{!}}{{else}}{{!}}${body(node.otherwise, scope)}`;
            out += `${text}{{!}}{{/if}}{{!}}`;
          } catch (err) {
            out += fail(node.pos, err);
          }
          break;
        case 'for':
          try {
            if (node.filter) throw new Unconvertible('a loop with "if"');
            const inner: Scope = { locals: new Map(scope.locals), nested: true, inLoop: true };
            let head: string;
            const iterable = node.iterable;
            if (
              node.targets.length === 2 &&
              iterable.kind === 'call' &&
              iterable.callee.kind === 'attr' &&
              iterable.callee.name === 'items' &&
              iterable.args.length === 0
            ) {
              const [key, value] = node.targets as [string, string];
              inner.locals.set(key, '@key');
              inner.locals.set(value, value);
              head = `{{!}}{{#each ${param(iterable.callee.object, scope)} as |${value}|}}{{!}}`;
            } else if (node.targets.length === 1) {
              inner.locals.set(node.targets[0]!, node.targets[0]!);
              head = `{{!}}{{#each ${param(iterable, scope)} as |${node.targets[0]}|}}{{!}}`;
            } else {
              throw new Unconvertible('unpacking several loop variables (other than "k, v in d.items()")');
            }
            const otherwise = node.otherwise ? `{{!}}{{else}}{{!}}${body(node.otherwise, scope)}` : '';
            out += `${head}${body(node.body, inner)}${otherwise}{{!}}{{/each}}{{!}}`;
          } catch (err) {
            out += fail(node.pos, err);
          }
          break;
        case 'set':
          try {
            if (node.targets.length !== 1 || node.value.kind !== 'literal' || !node.value.value) {
              throw new Unconvertible('"{% set %}" of anything but one non-empty literal');
            }
            const name = node.targets[0]!;
            const inner: Scope = { locals: new Map(scope.locals), nested: true, inLoop: scope.inLoop };
            inner.locals.set(name, name);
            out += `{{!}}{{#with ${literal(node.value.value)} as |${name}|}}{{!}}${body(list.slice(i + 1), inner)}{{!}}{{/with}}{{!}}`;
            return out;
          } catch (err) {
            out += fail(node.pos, err);
          }
          break;
      }
    }
    return out;
  };
  const converted = body(nodes, { locals: new Map(), nested: false, inLoop: false });
  // Ansible's preserve_trailing_newlines, which depends on what the template rendered.
  const newlines = trailingNewlines(source);
  const handlebars = newlines === 0 ? converted : `{{#ensure_newlines ${newlines}}}${converted}{{/ensure_newlines}}`;
  return { handlebars, problems };
}
