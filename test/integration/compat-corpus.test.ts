/**
 * Issue 12's acceptance corpus (test/compat/, sources in test/compat/SOURCES.md): real public Ansible
 * playbooks, roles and inventories. Prints the pass rates. Inventories must match what ansible-inventory
 * printed for them (recorded in test/compat/expected/); every playbook must either load (--syntax-check's
 * work) or fail with a clear error at file:line:col that names what cairn does not have, never a crash.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import '../../runner/core/modules/all.js';
import { inventoryList } from '../../runner/commands/inventory.js';
import { CairnError } from '../../runner/core/util/errors.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import { PlaybookLoader } from '../../runner/core/playbook/load.js';
import { builtinRolesDir, packageRoot } from '../../runner/core/util/paths.js';
import { parseYaml } from '../../runner/core/util/yaml-source.js';

const corpus = join(packageRoot(), 'test', 'compat');
const expectedDir = join(corpus, 'expected');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

/** YAML files whose top level is a list of plays. */
function playbooks(): string[] {
  return filesUnder(corpus)
    .filter((f) => /\.ya?ml$/.test(f) && !f.includes(`${join(corpus, 'roles')}/`))
    .filter((f) => {
      try {
        const value = parseYaml(readFileSync(f, 'utf8'), f).value;
        return (
          Array.isArray(value) &&
          value.some((p) => p !== null && typeof p === 'object' && ('hosts' in p || 'import_playbook' in p))
        );
      } catch {
        return false;
      }
    })
    .sort();
}

describe('compat corpus (issue 12)', () => {
  it('has at least 120 files of real Ansible material, each source cited', () => {
    const files = filesUnder(corpus).filter((f) => !f.startsWith(expectedDir) && !/(SOURCES\.md|LICENSE)$/.test(f));
    console.log(`compat corpus: ${files.length} files`);
    expect(files.length).toBeGreaterThanOrEqual(120);
    expect(readFileSync(join(corpus, 'SOURCES.md'), 'utf8')).toMatch(/MIT/);
  });

  it('every inventory loads with the groups, hosts and variables ansible-inventory --list shows', () => {
    const expectedFiles = readdirSync(expectedDir)
      .filter((f) => f.endsWith('.list.json'))
      .sort();
    let same = 0;
    const differing: string[] = [];
    for (const name of expectedFiles) {
      const source = join(corpus, name.replace(/\.list\.json$/, '').replace(/--/g, '/'));
      const expected = JSON.parse(readFileSync(join(expectedDir, name), 'utf8')) as unknown;
      const ours = inventoryList(loadInventory(source));
      if (JSON.stringify(ours) === JSON.stringify(expected)) same++;
      else differing.push(relative(corpus, source));
    }
    console.log(
      `inventories matching ansible-inventory --list: ${same}/${expectedFiles.length} (${((100 * same) / expectedFiles.length).toFixed(1)} %)`,
    );
    expect(differing).toEqual([]);
    expect(expectedFiles.length).toBeGreaterThanOrEqual(10);
  });

  it('every playbook loads, or fails with a clear error at file:line:col; prints the pass rate', () => {
    const rolesPath = [join(corpus, 'roles'), builtinRolesDir()];
    const list = playbooks();
    let passed = 0;
    const reasons = new Map<string, number>();
    const blockers: string[] = [];
    for (const file of list) {
      try {
        new PlaybookLoader({ rolesPath }).loadPlaybook(file);
        passed++;
      } catch (err) {
        // Not a crash: cairn's own error, located, in words.
        expect(err, `${relative(corpus, file)}: ${String(err)}`).toBeInstanceOf(CairnError);
        const located = (err as CairnError).location;
        expect(located?.file, relative(corpus, file)).toBeTruthy();
        const reason = (err as CairnError).message
          .replace(/\(.*$/, '')
          .replace(/"[^"]*"/, '"…"')
          .trim();
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        blockers.push(`${relative(corpus, file)}: ${(err as CairnError).message}`);
      }
    }
    const rate = (100 * passed) / list.length;
    console.log(`playbooks passing --syntax-check's loading: ${passed}/${list.length} (${rate.toFixed(1)} %)`);
    for (const [reason, n] of [...reasons].sort((a, b) => b[1] - a[1])) console.log(`  ${n} x ${reason}`);
    // Each failing playbook with its whole message: the work list for whoever raises the rate.
    for (const line of blockers) console.log(`  blocker ${line}`);
    expect(list.length).toBeGreaterThanOrEqual(50);
    // Issue 12's floor: at least 95 % load. The three that stay refused use a custom Jinja test plugin (`is
    // blue`, from the playbook's test_plugins/ or a collection: Python cairn cannot run), named at load time.
    expect(rate).toBeGreaterThanOrEqual(95);
  });
});
