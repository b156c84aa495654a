/**
 * Where a relative file name given to a task is looked for: the one rule for template and copy sources,
 * include_vars, the `with_first_found`/`with_fileglob` loops and the file/template/first_found lookups.
 *
 * It is Ansible's: the task's search path (ansible/ansible lib/ansible/playbook/base.py `get_search_path`: the
 * paths of the task's role and the roles that depend on it, then the folder of the file the task is written in)
 * walked by `DataLoader.path_dwim_relative_stack` (lib/ansible/parsing/dataloader.py), with the playbook's
 * folder (the loader's basedir) as the last resort. Which subfolder is searched depends on who asks: the
 * template action and a `with_*` loop on a task whose action names "template" search `templates/`, include_vars
 * and a loop on a task whose action names "var" search `vars/`, everything else `files/`
 * (lib/ansible/executor/task_executor.py `_get_loop_items`, lib/ansible/plugins/action/__init__.py `_find_needle`).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** A task's search path: its role folders (innermost first), then the folder its file is in. */
export interface SearchPath {
  /** `get_search_path()`: role folders of the dependency chain, then the task file's folder. */
  stack: string[];
  /** The playbook's folder, searched last whatever the stack holds. */
  basedir: string;
  /** The task is in a role (Ansible: `role_path` is defined), which adds the role folder above a tasks/ folder. */
  inRole: boolean;
}

/** The subfolder a `with_X` lookup searches for a task running `action` (Ansible's `_subdir`). */
export function loopSubdir(action: string): 'templates' | 'vars' | 'files' {
  if (action.includes('template')) return 'templates';
  if (action.includes('var')) return 'vars';
  return 'files';
}

function isRoleFolder(path: string): boolean {
  return ['tasks/main.yml', 'tasks/main.yaml', 'tasks/main', 'meta/main.yml', 'meta/main.yaml', 'meta/main'].some(
    (f) => existsSync(join(path, f)) || existsSync(join(dirname(path), f)),
  );
}

/** Every place `source` is looked for, in order (`path_dwim_relative_stack`'s list). */
export function searchCandidates(path: SearchPath, subdir: string, source: string): string[] {
  if (source.startsWith('~')) return [join(homedir(), source.slice(1))];
  if (isAbsolute(source)) return [resolve(source)];
  // "don't add dirname if user already is using it in source"
  const withSubdir = source.split('/')[0] !== subdir;
  const out: string[] = [];
  for (const entry of path.stack) {
    const folder = resolve(entry);
    const parent = dirname(folder);
    // A task file in a folder under a role's tasks/ (role/tasks/sub/x.yml): the role's own subdir too.
    if ((path.inRole || isRoleFolder(folder)) && parent.endsWith('/tasks')) {
      out.push(join(dirname(parent), subdir, source), join(parent, source));
    }
    if (withSubdir) out.push(join(folder, subdir, source));
    out.push(join(folder, source));
  }
  const base = resolve(path.basedir);
  if (withSubdir) out.push(join(base, subdir, source));
  out.push(join(base, source));
  return out.filter((p, i, all) => all.indexOf(p) === i);
}

/** The first existing candidate (`test` decides what counts: a file, a folder, anything that exists). */
export function findInSearchPath(
  path: SearchPath,
  subdir: string,
  source: string,
  test: (candidate: string) => boolean = existsSync,
): string | undefined {
  return searchCandidates(path, subdir, source).find(test);
}
