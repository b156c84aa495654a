/** Playbook loading for the commands (play, verify, drills' plays, rollout steps): the roles path and the loader. */
import { resolve } from 'node:path';
import { PlaybookLoader } from '../core/playbook/load.js';
import type { Playbook } from '../core/playbook/types.js';
import { builtinRolesDir } from '../core/util/paths.js';
import { siteConfig } from './site/config.js';
import { announceShadowedRoles } from './site/roles.js';

/**
 * Where roles are looked up after the playbook's own roles/: CAIRN_ROLES_PATH (colon-separated), the site's
 * cairn.cfg roles_path, then cairn's.
 */
function rolesPath(): string[] {
  const extra = (process.env.CAIRN_ROLES_PATH ?? '')
    .split(':')
    .filter(Boolean)
    .map((p) => resolve(p));
  return [...extra, ...(siteConfig()?.rolesPath ?? []), builtinRolesDir()];
}

export function loadPlaybookFile(path: string): Playbook {
  const playbook = new PlaybookLoader({ rolesPath: rolesPath() }).loadPlaybook(path);
  announceShadowedRoles(playbook, builtinRolesDir());
  return playbook;
}
