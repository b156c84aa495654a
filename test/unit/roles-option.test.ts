/** The one rule for `--roles` (play, verify, drift) and a rollout step's roles: only roles the plays list. */
import { describe, expect, it } from 'vitest';
import { roleNames, unknownRolesProblem } from '../../runner/app/playbook.js';
import type { Playbook } from '../../runner/core/playbook/types.js';

// Only the plays' role names are read; the rest of a loaded playbook does not matter to the rule.
const playbook = {
  path: '/srv/site.yaml',
  dir: '/srv',
  plays: [{ roles: [{ name: 'common' }, { name: 'web' }] }, { roles: [{ name: 'db' }] }],
} as unknown as Playbook;

describe('unknownRolesProblem', () => {
  it('is undefined when every name is a role of some play', () => {
    expect(unknownRolesProblem(playbook, ['web', 'db'], 'site.yaml')).toBeUndefined();
  });

  it('names the unknown ones, with the roles there are', () => {
    expect(unknownRolesProblem(playbook, ['webb', 'db'], 'site.yaml')).toBe(
      'webb is not a role of site.yaml (roles: common, web, db)',
    );
    expect(unknownRolesProblem(playbook, roleNames(' webb, dbb ,,'), 'site.yaml')).toBe(
      'webb, dbb are not a role of site.yaml (roles: common, web, db)',
    );
  });
});
