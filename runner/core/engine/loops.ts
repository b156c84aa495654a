/**
 * A task's loop items from its rendered loop value, one function per Ansible lookup behind `with_X`
 * (ansible/ansible lib/ansible/plugins/lookup/{items,list,dict,together,nested,subelements,indexed_items,
 * sequence,first_found,fileglob,flattened}.py). `loop:` takes a list as it is.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { LoopKind } from '../playbook/types.js';
import { inputError, type SourceLocation } from '../util/errors.js';
import { searchCandidates, type SearchPath } from '../util/search-path.js';
import { isPlainObject } from '../util/vars.js';

export interface LoopFiles {
  /** The task's search path (util/search-path.ts): where relative file names are looked up. */
  searchPath: SearchPath;
  /** The subfolder first_found searches: Ansible's `_subdir`, from the task's action (loopSubdir). */
  subdir: string;
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [value];
}

function flattenDeep(value: unknown): unknown[] {
  return Array.isArray(value) ? value.flatMap(flattenDeep) : [value];
}

function listOfLists(kind: string, value: unknown, where: SourceLocation): unknown[][] {
  if (!Array.isArray(value)) throw inputError(`with_${kind} takes a list of lists`, where);
  return value.map((v) => asList(v));
}

/** Ansible's sequence lookup: "start=1 end=10 stride=2 format=web%02d", "count=4", or the "1-10/2:fmt" form. */
export function sequenceItems(spec: unknown, where: SourceLocation): string[] {
  let start = 1;
  let end: number | undefined;
  let count: number | undefined;
  let stride = 1;
  let format = '%d';
  const num = (k: string, v: unknown): number => {
    const n = typeof v === 'number' ? v : /^-?(0x[0-9a-f]+|0o?[0-7]+|\d+)$/i.test(String(v)) ? Number(v) : NaN;
    if (!Number.isInteger(n)) throw inputError(`with_sequence: ${k} must be a whole number, got ${String(v)}`, where);
    return n;
  };
  const apply = (k: string, v: unknown) => {
    if (k === 'start') start = num(k, v);
    else if (k === 'end') end = num(k, v);
    else if (k === 'count') count = num(k, v);
    else if (k === 'stride') stride = num(k, v);
    else if (k === 'format') format = String(v);
    else throw inputError(`with_sequence: unknown argument "${k}" (expected start, end, count, stride, format)`, where);
  };
  if (isPlainObject(spec)) for (const [k, v] of Object.entries(spec)) apply(k, v);
  else {
    const text = String(spec).trim();
    const short = /^(?:(-?\d+)-)?(-?\d+)(?:\/(-?\d+))?(?::(.+))?$/.exec(text);
    if (short && !text.includes('=')) {
      if (short[1] !== undefined) start = Number(short[1]);
      end = Number(short[2]);
      if (short[3] !== undefined) stride = Number(short[3]);
      if (short[4] !== undefined) format = short[4];
    } else {
      for (const m of text.matchAll(/(\w+)=(\S+)/g)) apply(m[1]!, m[2]);
    }
  }
  if (count !== undefined) {
    if (end !== undefined) throw inputError('with_sequence: give count or end, not both', where);
    end = count === 0 ? start - stride : start + (count - 1) * stride;
    if (count === 0) return [];
  }
  if (end === undefined) throw inputError('with_sequence: end or count is required', where);
  if (stride === 0) throw inputError('with_sequence: stride must not be 0', where);
  if ((stride > 0 && end < start) || (stride < 0 && end > start))
    throw inputError(
      `with_sequence: to count from ${start} to ${end} the stride must be ${stride > 0 ? '<' : '>'} 0`,
      where,
    );
  const out: string[] = [];
  for (let i = start; stride > 0 ? i <= end : i >= end; i += stride) out.push(formatOne(format, i, where));
  if (out.length > 100_000) throw inputError('with_sequence: more than 100000 items', where);
  return out;
}

/** Python's `format % n` for the one integer conversions a sequence format uses (%d, %02d, %x, %o, %s). */
function formatOne(format: string, n: number, where: SourceLocation): string {
  let used = false;
  const out = format.replace(/%(-?0?)(\d*)([dixXos%])/g, (_m, flags: string, width: string, conv: string) => {
    if (conv === '%') return '%';
    used = true;
    let text =
      conv === 'x'
        ? n.toString(16)
        : conv === 'X'
          ? n.toString(16).toUpperCase()
          : conv === 'o'
            ? n.toString(8)
            : String(n);
    const w = Number(width || 0);
    if (flags.includes('-')) text = text.padEnd(w);
    else
      text = flags.includes('0')
        ? n < 0
          ? '-' + text.slice(1).padStart(w - 1, '0')
          : text.padStart(w, '0')
        : text.padStart(w);
    return text;
  });
  if (!used) throw inputError(`with_sequence: format "${format}" has no %d-style conversion`, where);
  return out;
}

/** Python fnmatch for one path segment: *, ?, [...]. */
function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) re += '\\[';
      else {
        const body = glob
          .slice(i + 1, close)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * fileglob: files (not folders) matching each pattern, non-recursive (lib/ansible/plugins/lookup/fileglob.py):
 * a pattern with a folder globs in the first place that folder is found (searched under files/); a bare
 * pattern globs in files/ and then the folder itself of each entry of the search path, the first with matches.
 */
function fileglobItems(terms: unknown[], files: LoopFiles): string[] {
  const out: string[] = [];
  for (const term of terms.map(String)) {
    const folder = dirname(term);
    let dirs: string[];
    if (isAbsolute(term)) dirs = [folder];
    else if (folder !== '.') dirs = searchCandidates(files.searchPath, 'files', folder).filter(isDir).slice(0, 1);
    else dirs = files.searchPath.stack.flatMap((d) => [join(d, 'files'), d]);
    const pattern = globToRegExp(basename(term));
    for (const dir of dirs) {
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch {
        continue;
      }
      const found = names.map((n) => join(dir, n)).filter((p) => pattern.test(basename(p)) && isFile(p));
      if (found.length) {
        out.push(...found);
        break;
      }
    }
  }
  return out;
}

/** first_found: the first of the files that exists, as a one-item list (none: an error, or nothing with skip). */
function firstFoundItems(terms: unknown[], files: LoopFiles, where: SourceLocation): string[] {
  let names: string[] = [];
  let paths: string[] = [];
  let skip = false;
  for (const term of terms) {
    if (isPlainObject(term)) {
      names.push(...asList(term.files ?? []).flatMap((f) => String(f).split(/[,;]/)));
      paths.push(...asList(term.paths ?? []).flatMap((p) => String(p).split(/[,;:]/)));
      skip ||= term.skip === true;
    } else names.push(...asList(term).map(String));
  }
  names = names.map((n) => n.trim()).filter(Boolean);
  paths = paths.map((p) => p.trim()).filter(Boolean);
  // Each name in each of `paths` (paths first, as Ansible's _process_terms nests them), each searched for
  // along the task's search path under the action's subfolder.
  const wanted = paths.length ? paths.flatMap((p) => names.map((n) => join(p, n))) : names;
  const candidates = wanted.flatMap((name) => searchCandidates(files.searchPath, files.subdir, name));
  const found = candidates.find(isFile);
  if (found) return [found];
  if (skip) return [];
  throw inputError(
    `with_first_found: none of ${JSON.stringify(names)} was found (looked for ${candidates.join(', ')})`,
    where,
  );
}

function subelementsItems(value: unknown, where: SourceLocation): unknown[] {
  if (!Array.isArray(value) || value.length < 2 || value.length > 3)
    throw inputError('with_subelements takes [LIST, "key"] or [LIST, "key", {skip_missing: true}]', where);
  const [list, key, flags] = value as [unknown, unknown, unknown];
  const skipMissing = isPlainObject(flags) && flags.skip_missing === true;
  const elements = isPlainObject(list) ? Object.values(list) : asList(list);
  const path = String(key).split('.');
  const out: unknown[] = [];
  for (const element of elements) {
    if (!isPlainObject(element)) throw inputError('with_subelements: the list must hold mappings', where);
    if (element.skipped === true) continue;
    let sub: unknown = element;
    for (const part of path) {
      sub = isPlainObject(sub) ? sub[part] : undefined;
      if (sub === undefined) break;
    }
    if (sub === undefined) {
      if (skipMissing) continue;
      throw inputError(
        `with_subelements: an element has no "${String(key)}" (add {skip_missing: true} to skip it)`,
        where,
      );
    }
    if (!Array.isArray(sub)) throw inputError(`with_subelements: "${String(key)}" of an element is not a list`, where);
    for (const s of sub) out.push([element, s]);
  }
  return out;
}

function cartesian(lists: unknown[][]): unknown[][] {
  return lists.reduce<unknown[][]>((acc, list) => acc.flatMap((prefix) => list.map((x) => [...prefix, x])), [[]]);
}

/** The items a rendered loop value stands for. */
export function loopItems(kind: LoopKind, value: unknown, files: LoopFiles, where: SourceLocation): unknown[] {
  switch (kind) {
    case 'loop':
      if (!Array.isArray(value))
        throw inputError(`loop must be a list, got ${value === null ? 'null' : typeof value}`, where);
      return value;
    case 'items':
      return asList(value).flatMap((v) => (Array.isArray(v) ? v : [v]));
    case 'list':
      return asList(value);
    case 'flattened':
      return flattenDeep(value);
    case 'indexed_items':
      return asList(value)
        .flatMap((v) => (Array.isArray(v) ? v : [v]))
        .map((v, i) => [i, v]);
    case 'dict':
      if (!isPlainObject(value))
        throw inputError(`with_dict takes a mapping, got ${Array.isArray(value) ? 'a list' : typeof value}`, where);
      return Object.entries(value).map(([key, v]) => ({ key, value: v }));
    case 'together': {
      const lists = listOfLists(kind, value, where);
      const length = Math.max(0, ...lists.map((l) => l.length));
      return Array.from({ length }, (_, i) => lists.map((l) => (i < l.length ? l[i] : null)));
    }
    case 'nested':
    case 'cartesian':
      return cartesian(listOfLists(kind, value, where));
    case 'subelements':
      return subelementsItems(value, where);
    case 'sequence':
      return asList(value).flatMap((spec) => sequenceItems(spec, where));
    case 'first_found':
      return firstFoundItems(asList(value), files, where);
    case 'fileglob':
      return fileglobItems(
        asList(value).flatMap((v) => String(v).split(',')),
        files,
      );
  }
}

/** Ansible's loop_control.extended: ansible_loop for item i of items. */
export function extendedLoopVars(items: unknown[], index: number): Record<string, unknown> {
  const length = items.length;
  return {
    allitems: items,
    index: index + 1,
    index0: index,
    revindex: length - index,
    revindex0: length - index - 1,
    first: index === 0,
    last: index === length - 1,
    length,
    previtem: index > 0 ? items[index - 1] : undefined,
    nextitem: index < length - 1 ? items[index + 1] : undefined,
  };
}
