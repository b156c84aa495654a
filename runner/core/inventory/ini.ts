/**
 * Ansible's INI inventory format, read as ansible-core's `ini` inventory plugin reads it (its documentation
 * and plugins/inventory/ini.py were the reference): `[group]` host lines (`name[:port] key=value ...`, split
 * like a shell line), `[group:vars]` lines `key=value`, `[group:children]` group names, `#` and `;`
 * comments, host ranges `[01:20]`, `[a:f]` and `[0:10:2]`. Values go through Python's literal rules as
 * Ansible's `ast.literal_eval` does (`3` is a number, `True` a boolean, `'x'` a string; anything it cannot
 * read stays the text as written).
 *
 * The result is the shape of a YAML inventory (`all: {hosts, vars, children}`), with a locate() that maps
 * each path back to its INI line, so every later check reports file:line:col as for YAML.
 */
import { inputError, type SourceLocation } from '../util/errors.js';
import { sourceSnippet, type LoadedYaml, type YamlPath } from '../util/yaml-source.js';
import type { Vars } from '../util/vars.js';

interface IniGroup {
  hosts: Record<string, Vars>;
  vars: Vars;
  children: Record<string, null>;
}

/** `web[01:03].x` -> web01.x, web02.x, web03.x; letters `[a:c]`; an optional stride `[0:10:2]`. */
export function expandHostRange(pattern: string, where: () => SourceLocation): string[] {
  const m = /^(.*?)\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::(\d+))?\](.*)$/.exec(pattern);
  if (!m) return [pattern];
  const [, head, beg, end, strideText, tail] = m as unknown as [
    string,
    string,
    string,
    string,
    string | undefined,
    string,
  ];
  const stride = strideText === undefined ? 1 : Number(strideText);
  if (!(stride >= 1)) throw inputError(`host range "${pattern}": the step must be at least 1`, where());
  const rest = expandHostRange(tail, where);
  const out: string[] = [];
  if (/^\d+$/.test(beg) && /^\d+$/.test(end)) {
    const width = beg.length > 1 && beg.startsWith('0') ? beg.length : 0;
    const from = Number(beg);
    const to = Number(end);
    if (from > to) throw inputError(`host range "${pattern}": the start is after the end`, where());
    for (let i = from; i <= to; i += stride)
      for (const r of rest) out.push(`${head}${String(i).padStart(width, '0')}${r}`);
  } else if (/^[a-zA-Z]$/.test(beg) && /^[a-zA-Z]$/.test(end)) {
    const from = beg.charCodeAt(0);
    const to = end.charCodeAt(0);
    if (from > to) throw inputError(`host range "${pattern}": the start is after the end`, where());
    for (let c = from; c <= to; c += stride) for (const r of rest) out.push(`${head}${String.fromCharCode(c)}${r}`);
  } else {
    throw inputError(`host range "${pattern}": expected [NUMBER:NUMBER] or [LETTER:LETTER]`, where());
  }
  return out;
}

/** Python's ast.literal_eval for the values an inventory holds; the text itself when it is not a literal. */
export function pythonLiteral(text: string): unknown {
  const t = text.trim();
  if (/^[-+]?\d+$/.test(t)) return Number(t);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(t)) return Number(t);
  if (t === 'True') return true;
  if (t === 'False') return false;
  if (t === 'None') return null;
  const quoted = /^'((?:[^'\\]|\\.)*)'$|^"((?:[^"\\]|\\.)*)"$/.exec(t);
  if (quoted) return (quoted[1] ?? quoted[2]!).replace(/\\(.)/g, '$1');
  if ((t.startsWith('[') && t.endsWith(']')) || (t.startsWith('{') && t.endsWith('}'))) {
    // Lists and dicts of simple literals: Python's spelling turned into JSON's.
    const json = t
      .replace(/'((?:[^'\\]|\\.)*)'/g, (_m, s: string) => JSON.stringify(s.replace(/\\(.)/g, '$1')))
      .replace(/\bTrue\b/g, 'true')
      .replace(/\bFalse\b/g, 'false')
      .replace(/\bNone\b/g, 'null');
    try {
      return JSON.parse(json) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/** Split a host line as Python's shlex.split(line, comments=True) does. */
function shellSplit(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) cur += line[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inToken = true;
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i];
      inToken = true;
    } else if (/\s/.test(c)) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
    } else if (c === '#' && !inToken) {
      break;
    } else {
      cur += c;
      inToken = true;
    }
  }
  if (quote) throw new Error(`no closing quotation (${quote})`);
  if (inToken) out.push(cur);
  return out;
}

/** Parse INI inventory text into a YAML-inventory-shaped LoadedYaml. */
export function parseIniInventory(source: string, file: string): LoadedYaml {
  const groups = new Map<string, IniGroup>();
  const locations = new Map<string, SourceLocation>();
  const at = (path: YamlPath, loc: SourceLocation) => {
    const key = JSON.stringify(path);
    if (!locations.has(key)) locations.set(key, loc);
  };
  const group = (name: string, loc: SourceLocation): IniGroup => {
    let g = groups.get(name);
    if (!g) {
      g = { hosts: {}, vars: {}, children: {} };
      groups.set(name, g);
      at([name], loc);
    }
    return g;
  };
  const lines = source.split(/\r?\n/);
  let section = 'ungrouped';
  let kind: 'hosts' | 'vars' | 'children' = 'hosts';
  const fail = (message: string, line: number, col = 1) =>
    inputError(message, { file, line, col }, sourceSnippet(source, line, col) || undefined);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!;
    const line = raw.trim();
    const col = raw.length - raw.trimStart().length + 1;
    const loc: SourceLocation = { file, line: lineNo, col };
    if (line === '' || line.startsWith(';') || line.startsWith('#')) continue;
    if (line.startsWith('[')) {
      const m = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$/.exec(line);
      if (!m)
        throw fail(
          `INI inventory: bad section header ${JSON.stringify(line)} (expected [group], [group:vars] or [group:children])`,
          lineNo,
          col,
        );
      section = m[1]!;
      const suffix = m[2];
      if (suffix !== undefined && suffix !== 'vars' && suffix !== 'children') {
        throw fail(
          `INI inventory: section [${section}:${suffix}]: expected :vars or :children after the group name`,
          lineNo,
          col,
        );
      }
      kind = suffix === 'vars' ? 'vars' : suffix === 'children' ? 'children' : 'hosts';
      group(section, loc);
      continue;
    }
    if (kind === 'vars') {
      const eq = line.indexOf('=');
      if (eq <= 0)
        throw fail(`INI inventory: [${section}:vars] takes key=value lines, got ${JSON.stringify(line)}`, lineNo, col);
      const key = line.slice(0, eq).trim();
      group(section, loc).vars[key] = pythonLiteral(line.slice(eq + 1).trim());
      at([section, 'vars', key], loc);
      continue;
    }
    if (kind === 'children') {
      const child = line.split(/\s+/)[0]!.replace(/[#;].*$/, '');
      if (child === 'all') throw fail('"all" holds every group; it cannot be the child of another group', lineNo, col);
      group(section, loc).children[child] = null;
      group(child, loc);
      at([section, 'children', child], loc);
      continue;
    }
    let tokens: string[];
    try {
      tokens = shellSplit(line);
    } catch (err) {
      throw fail(`INI inventory: ${(err as Error).message}`, lineNo, col);
    }
    if (!tokens.length) continue;
    const [pattern, ...assignments] = tokens as [string, ...string[]];
    const vars: Vars = {};
    for (const a of assignments) {
      const eq = a.indexOf('=');
      if (eq <= 0)
        throw fail(
          `INI inventory: expected key=value after the host name, got ${JSON.stringify(a)}`,
          lineNo,
          col + raw.trim().indexOf(a),
        );
      vars[a.slice(0, eq)] = pythonLiteral(a.slice(eq + 1));
    }
    // name:port (a bare IPv6 address has more than one colon and no port).
    let hostPattern = pattern;
    const port = /^([^:]+|\[[^\]]+\]):(\d+)$/.exec(pattern);
    if (port && (pattern.match(/:/g) ?? []).length === 1) {
      hostPattern = port[1]!;
      vars.ansible_port = Number(port[2]);
    }
    const g = group(section, loc);
    for (const host of expandHostRange(hostPattern, () => loc)) {
      g.hosts[host] = { ...(g.hosts[host] ?? {}), ...vars };
      at([section, 'hosts', host], loc);
      for (const key of Object.keys(vars)) at([section, 'hosts', host, key], loc);
    }
  }
  const value: Record<string, unknown> = {};
  for (const [name, g] of groups) {
    const entry: Record<string, unknown> = {};
    if (Object.keys(g.hosts).length) entry.hosts = g.hosts;
    if (Object.keys(g.vars).length) entry.vars = g.vars;
    if (Object.keys(g.children).length) entry.children = g.children;
    value[name] = entry;
  }
  const locate = (path: YamlPath): SourceLocation => {
    for (let n = path.length; n > 0; n--) {
      const found = locations.get(JSON.stringify(path.slice(0, n)));
      if (found) return found;
    }
    return { file, line: 1, col: 1 };
  };
  return { file, source, value, locate };
}

/** `-i host1,host2,` (Ansible's host list): an inventory of those hosts, in no group. */
export function hostListInventory(text: string): LoadedYaml {
  const hosts = text
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const value = { ungrouped: { hosts: Object.fromEntries(hosts.map((h) => [h, null])) } };
  return { file: '<host list>', source: text, value, locate: () => ({ file: '<host list>' }) };
}
