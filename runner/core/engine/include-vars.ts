/**
 * Ansible's include_vars (lib/ansible/plugins/action/include_vars.py), run on the controller: one YAML/JSON
 * file, or every matching file of a folder (sorted, `depth`, `files_matching`, `ignore_files`, `extensions`),
 * optionally under one variable (`name`). Relative names are looked up along the task's search path under
 * vars/, as Ansible's `_find_needle('vars', ...)` does (util/search-path.ts). The variables land at set_fact's precedence.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import type { Task } from '../playbook/types.js';
import type { Templater } from '../template/types.js';
import { inputError } from '../util/errors.js';
import { searchCandidates, type SearchPath } from '../util/search-path.js';
import { isPlainObject, type Vars } from '../util/vars.js';
import { loadYamlFile } from '../util/yaml-source.js';
import { materialise } from './lazy-vars.js';

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

function readVarsFile(file: string, task: Task): Vars {
  const loaded = loadYamlFile(file, 'vars file');
  const value = loaded.value;
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value))
    throw inputError(`include_vars: ${file} must hold a mapping of variable names to values`, task.location);
  return value as Vars;
}

/** Files of a folder for include_vars dir:, in Ansible's order (sorted per folder, walking depth-first). */
function filesUnder(dir: string, depth: number, level = 1): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = join(dir, name);
    if (isDir(full)) {
      if (depth === 0 || level < depth) out.push(...filesUnder(full, depth, level + 1));
    } else out.push(full);
  }
  return out;
}

export function includeVars(
  task: Task,
  vars: Vars,
  templater: Templater,
  searchPath: SearchPath,
): { vars: Vars; files: string[] } {
  const args = materialise(templater.renderValue(task.args, vars, task.location)) as Record<string, unknown>;
  const find = (name: string, test: (p: string) => boolean): string => {
    const candidates = searchCandidates(searchPath, 'vars', name);
    const found = candidates.find(test);
    if (found) return found;
    throw inputError(
      `include_vars: ${JSON.stringify(name)} not found (looked in: ${candidates.join(', ')})`,
      task.location,
    );
  };
  let files: string[];
  if (args.file !== undefined) files = [find(String(args.file), isFile)];
  else {
    const dir = find(String(args.dir), isDir);
    const extensions = Array.isArray(args.extensions) ? args.extensions.map(String) : ['yaml', 'yml', 'json'];
    const matching = args.files_matching === undefined ? undefined : new RegExp(String(args.files_matching));
    const ignored = Array.isArray(args.ignore_files) ? args.ignore_files.map(String) : [];
    files = filesUnder(dir, Number(args.depth ?? 0)).filter((f) => {
      const base = relative(dir, f).split('/').pop()!;
      if (!extensions.includes(extname(f).slice(1))) return false;
      if (matching && !matching.test(base)) return false;
      return !ignored.some((pattern) =>
        new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(base),
      );
    });
  }
  let values: Vars = {};
  for (const f of files) values = { ...values, ...readVarsFile(f, task) };
  if (args.name !== undefined) values = { [String(args.name)]: values };
  return { vars: values, files: files.filter(existsSync) };
}
