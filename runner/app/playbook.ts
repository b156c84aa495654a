/** Playbook loading for the commands (play, verify, drills' plays, rollout steps): the roles path and the loader. */
import { resolve } from 'node:path';
import { PlaybookLoader } from '../core/playbook/load.js';
import type { Playbook } from '../core/playbook/types.js';
import { builtinRolesDir } from '../core/util/paths.js';
import { loadAnsibleCfg } from './ansible-cfg.js';
import { siteConfig } from './site/config.js';
import { announceShadowedRoles } from './site/roles.js';

/**
 * The roles path after the playbook's own roles/: CAIRN_ROLES_PATH, then ANSIBLE_ROLES_PATH (colon-separated),
 * the site's cairn.cfg roles_path, ansible.cfg's roles_path, then cairn's built-in roles, always last.
 */
function rolesPath(): string[] {
  const fromEnv = (name: string) =>
    (process.env[name] ?? '')
      .split(':')
      .filter(Boolean)
      .map((p) => resolve(p));
  return [
    ...fromEnv('CAIRN_ROLES_PATH'),
    ...fromEnv('ANSIBLE_ROLES_PATH'),
    ...(siteConfig()?.rolesPath ?? []),
    ...(loadAnsibleCfg()?.rolesPath ?? []),
    builtinRolesDir(),
  ];
}

export function loadPlaybookFile(path: string): Playbook {
  const playbook = new PlaybookLoader({ rolesPath: rolesPath() }).loadPlaybook(path);
  announceShadowedRoles(playbook, builtinRolesDir());
  return playbook;
}
