#!/usr/bin/env node
// One-off migration of the roles' YAML from Handlebars `{{ }}` to Ansible's expression language (issue 14).
// Reads a YAML file as text, parses it with Handlebars' own parser, and writes the same text with every
// mustache and block rewritten in Jinja; text outside the tags is kept byte for byte.
// Usage: node scripts/hbs-to-jinja.mjs FILE...   (rewrites in place; prints what it cannot convert)
import { readFileSync, writeFileSync } from 'node:fs';
import Handlebars from 'handlebars';

let counter = 0;

function str(value) {
  return `'${String(value).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function convertFile(file) {
  const source = readFileSync(file, 'utf8');
  const ast = Handlebars.parseWithoutProcessing(source);
  const problems = [];
  // scopes: innermost last; each { kind: 'root'|'each'|'with', var, key }
  const out = program(ast, [{ kind: 'root' }], problems, file);
  if (problems.length) for (const p of problems) console.error(`${file}: ${p}`);
  writeFileSync(file, keepNewlines(out));
}

// Handlebars drops the newline after a block tag only when the tag stands alone on its line; Jinja's
// trim_blocks (Ansible's default) drops it after every block tag. `+%}` keeps it where Handlebars did.
function keepNewlines(text) {
  return text.replace(/%\}(?=\r?\n)/g, (match, offset) => {
    const lineStart = text.lastIndexOf('\n', offset) + 1;
    const line = text.slice(lineStart, offset + 2);
    return /^\s*\{%[^%]*%\}$/.test(line) ? match : '+%}';
  });
}

function program(node, scopes, problems, file) {
  return node.body.map((statement) => stmt(statement, scopes, problems, file)).join('');
}

function path(node, scopes) {
  if (node.type === 'StringLiteral') return str(node.value);
  if (node.type === 'NumberLiteral') return String(node.value);
  if (node.type === 'BooleanLiteral') return node.value ? 'true' : 'false';
  if (node.type === 'SubExpression') return call(node, scopes);
  if (node.type !== 'PathExpression') throw new Error(`unsupported ${node.type}`);
  const parts = [...node.parts];
  if (node.data) {
    const head = node.original.replace(/^@/, '');
    if (head.startsWith('root')) return join(parts.slice(1).length ? parts.slice(1) : parts, null) || 'vars';
    const scope = [...scopes].reverse().find((s) => s.kind === 'each');
    if (head === 'key') return scope.key;
    if (head === 'index') return 'loop.index0';
    if (head === 'first') return 'loop.first';
    if (head === 'last') return 'loop.last';
    throw new Error(`unsupported data ${node.original}`);
  }
  // Block params (`as |mon|`) are names in their own right.
  for (const s of scopes) if (s.params && s.params.includes(parts[0])) return join(parts, null);
  const level = scopes.length - 1 - node.depth;
  const scope = scopes[Math.max(0, level)];
  const base = scope.kind === 'root' ? null : scope.var;
  return join(parts, base);
}

function join(parts, base) {
  let out = base;
  for (const part of parts) {
    if (/^[0-9]+$/.test(part)) out = `${out}[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(part)) out = out === null ? part : `${out}.${part}`;
    else out = out === null ? part : `${out}[${str(part)}]`;
  }
  return out ?? 'this';
}

function paren(text) {
  return /^[\w.[\]'"]+$/.test(text) ? text : `(${text})`;
}

function call(node, scopes) {
  const name = node.path.original;
  const args = node.params.map((p) => path(p, scopes));
  const hash = node.hash ? node.hash.pairs.map((pair) => `${pair.key}=${path(pair.value, scopes)}`) : [];
  if (args.length === 0 && hash.length === 0) return path(node.path, scopes);
  const a = args.map(paren);
  switch (name) {
    case 'quote':
    case 'first':
    case 'last':
    case 'length':
    case 'trim':
    case 'upper':
    case 'lower':
    case 'dirname':
    case 'basename':
      return `${a[0]} | ${name}`;
    case 'to_int':
      return `${a[0]} | int`;
    case 'split':
      return args.length === 1 ? `${a[0]} | split` : `${a[0]} | split(${args[1]})`;
    case 'join':
      return `${a[0]} | join(${args[1] ?? "''"})`;
    case 'default':
      return `${a[0]} | default(${args.slice(1).join(', ')})`;
    case 'replace':
      return `${a[0]} | replace(${args[1]}, ${args[2]})`;
    case 'regex_replace':
      return `${a[0]} | regex_replace(${[args[1], args[2], ...hash].join(', ')})`;
    case 'lookup':
      return `${a[0]}[${args[1]}]`;
    case 'eq':
      return `${a[0]} == ${a[1]}`;
    case 'ne':
      return `${a[0]} != ${a[1]}`;
    case 'lt':
      return `${a[0]} < ${a[1]}`;
    case 'le':
      return `${a[0]} <= ${a[1]}`;
    case 'gt':
      return `${a[0]} > ${a[1]}`;
    case 'ge':
      return `${a[0]} >= ${a[1]}`;
    case 'and':
      return a.join(' and ');
    case 'or':
      return a.join(' or ');
    case 'not':
      return `not ${a[0]}`;
    case 'contains':
      return `${a[1]} in ${a[0]}`;
    case 'defined':
      return `${a[0]} is defined`;
    case 'json':
      return `${a[0]} | to_json`;
    case 'range':
      return `range(${args.join(', ')})`;
    case 'keys':
      return `${a[0]} | list`;
    default:
      throw new Error(`unsupported helper ${name}`);
  }
}

function stmt(node, scopes, problems, file) {
  switch (node.type) {
    case 'ContentStatement':
      return node.original;
    case 'CommentStatement':
      return `{# ${node.value.trim()} #}`;
    case 'MustacheStatement': {
      try {
        const expr = node.params.length || node.hash ? call(node, scopes) : path(node.path, scopes);
        return `{{ ${expr} }}`;
      } catch (err) {
        problems.push(`line ${node.loc.start.line}: ${err.message}`);
        return '{{ UNCONVERTED }}';
      }
    }
    case 'BlockStatement': {
      const name = node.path.original;
      const line = node.loc.start.line;
      try {
        if (name === 'if' || name === 'unless') {
          const cond = path(node.params[0], scopes);
          const test = name === 'if' ? cond : `not ${paren(cond)}`;
          let text = `{% if ${test} %}${program(node.program, scopes, problems, file)}`;
          let inverse = node.inverse;
          while (inverse) {
            const chained =
              inverse.chained &&
              inverse.body.length === 1 &&
              inverse.body[0].type === 'BlockStatement' &&
              inverse.body[0].path.original === 'if';
            if (chained) {
              const inner = inverse.body[0];
              text += `{% elif ${path(inner.params[0], scopes)} %}${program(inner.program, scopes, problems, file)}`;
              inverse = inner.inverse;
            } else {
              text += `{% else %}${program(inverse, scopes, problems, file)}`;
              inverse = undefined;
            }
          }
          return `${text}{% endif %}`;
        }
        if (name === 'each') {
          counter += 1;
          const params = node.program.blockParams;
          const item = params?.[0] ?? `item${counter}`;
          const key = params?.[1] ?? `key${counter}`;
          const collection = path(node.params[0], scopes);
          const scope = { kind: 'each', var: item, key, params };
          const body = program(node.program, [...scopes, scope], problems, file);
          const usesKey = body.includes(key);
          const head = usesKey
            ? `{% for ${key}, ${item} in ${paren(collection)}.items() %}`
            : `{% for ${item} in ${collection} %}`;
          const otherwise = node.inverse ? `{% else %}${program(node.inverse, scopes, problems, file)}` : '';
          return `${head}${body}${otherwise}{% endfor %}`;
        }
        if (name === 'with') {
          const params = node.program.blockParams;
          counter += 1;
          const item = params?.[0] ?? `with${counter}`;
          const value = path(node.params[0], scopes);
          const scope = { kind: 'with', var: item, params };
          return `{% for ${item} in [${value}] %}${program(node.program, [...scopes, scope], problems, file)}{% endfor %}`;
        }
        throw new Error(`unsupported block ${name}`);
      } catch (err) {
        problems.push(`line ${line}: ${err.message}`);
        return '{{ UNCONVERTED }}';
      }
    }
    default:
      problems.push(`unsupported ${node.type}`);
      return '';
  }
}

for (const file of process.argv.slice(2)) convertFile(file);
