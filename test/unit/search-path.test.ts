/**
 * The one search rule for relative file names (runner/core/util/search-path.ts), against Ansible's
 * DataLoader.path_dwim_relative_stack (lib/ansible/parsing/dataloader.py) and the executor's `_subdir` choice
 * (lib/ansible/executor/task_executor.py `_get_loop_items`).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findInSearchPath, loopSubdir, searchCandidates, type SearchPath } from '../../runner/core/util/search-path.js';

describe('search path', () => {
  let root: string;
  let role: string;
  let inRole: SearchPath;

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'cairn-search-path-'));
    role = join(root, 'roles', 'ntp');
    for (const d of ['tasks/sub', 'vars', 'files', 'templates']) mkdirSync(join(role, d), { recursive: true });
    mkdirSync(join(root, 'vars'));
    writeFileSync(join(role, 'tasks', 'main.yml'), '---\n');
    writeFileSync(join(role, 'vars', 'Debian.yml'), 'a: 1\n');
    writeFileSync(join(root, 'vars', 'Debian.yml'), 'a: 2\n');
    writeFileSync(join(root, 'vars', 'RedHat.yml'), 'a: 3\n');
    inRole = { stack: [role, join(role, 'tasks'), root], basedir: root, inRole: true };
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("a role task looks in its role's subfolder first, then its own folder, then the playbook's", () => {
    expect(searchCandidates(inRole, 'vars', 'Debian.yml')).toEqual([
      join(role, 'vars', 'Debian.yml'),
      join(role, 'Debian.yml'),
      join(role, 'tasks', 'vars', 'Debian.yml'),
      join(role, 'tasks', 'Debian.yml'),
      join(root, 'vars', 'Debian.yml'),
      join(root, 'Debian.yml'),
    ]);
    expect(findInSearchPath(inRole, 'vars', 'Debian.yml')).toBe(join(role, 'vars', 'Debian.yml'));
    // Not in the role: the playbook's vars/ answers.
    expect(findInSearchPath(inRole, 'vars', 'RedHat.yml')).toBe(join(root, 'vars', 'RedHat.yml'));
  });

  it('does not add the subfolder twice when the name already starts with it', () => {
    expect(searchCandidates(inRole, 'vars', 'vars/Debian.yml')).not.toContain(join(role, 'vars', 'vars', 'Debian.yml'));
    expect(findInSearchPath(inRole, 'vars', 'vars/Debian.yml')).toBe(join(role, 'vars', 'Debian.yml'));
  });

  it("a task file under tasks/sub/ also searches the role's subfolder", () => {
    const nested: SearchPath = { stack: [join(role, 'tasks', 'sub'), root], basedir: root, inRole: true };
    expect(searchCandidates(nested, 'vars', 'x.yml').slice(0, 2)).toEqual([
      join(role, 'vars', 'x.yml'),
      join(role, 'tasks', 'x.yml'),
    ]);
  });

  it('absolute names are taken as they are', () => {
    expect(searchCandidates(inRole, 'files', '/etc/hosts')).toEqual(['/etc/hosts']);
  });

  it("a with_ loop's subfolder follows the task's action", () => {
    expect(loopSubdir('include_vars')).toBe('vars');
    expect(loopSubdir('ansible.builtin.include_vars')).toBe('vars');
    expect(loopSubdir('template')).toBe('templates');
    expect(loopSubdir('copy')).toBe('files');
    expect(loopSubdir('include_tasks')).toBe('files');
  });
});
