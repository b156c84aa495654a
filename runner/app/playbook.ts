/** Playbook loading for the commands (play, verify, drills' plays, rollout steps): the roles path and the loader. */
import { resolve } from 'node:path';
import { PlaybookLoader } from '../core/playbook/load.js';
import type { Playbook } from '../core/playbook/types.js';
import { builtinRolesDir } from '../core/util/paths.js';

/** Where roles are looked up after the playbook's own roles/: CAIRN_ROLES_PATH (colon-separated), then cairn's. */
function rolesPath(): string[] {
  const extra = (process.env.CAIRN_ROLES_PATH ?? '')
    .split(':')
    .filter(Boolean)
    .map((p) => resolve(p));
  return [...extra, builtinRolesDir()];
}

export function loadPlaybookFile(path: string): Playbook {
  return new PlaybookLoader({ rolesPath: rolesPath() }).loadPlaybook(path);
}
