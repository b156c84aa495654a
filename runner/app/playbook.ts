/** Playbook loading for the commands (play, verify, drills' plays, rollout steps): the roles path and the loader. */
import { resolve } from 'node:path';
import { PlaybookLoader } from '../core/playbook/load.js';
import type { Playbook } from '../core/playbook/types.js';
import { builtinRolesDir } from '../core/util/paths.js';
import { loadConfig } from './config.js';
import { announceShadowedRoles } from './site/roles.js';

/**
 * The roles path after the playbook's own roles/: CAIRN_ROLES_PATH, then ANSIBLE_ROLES_PATH (colon-separated),
 * the settings file's roles_path (cairn.cfg or ansible.cfg: app/config.ts), then cairn's built-in roles, always last.
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
    ...(loadConfig()?.rolesPath ?? []),
    builtinRolesDir(),
  ];
}

export function loadPlaybookFile(path: string): Playbook {
  const playbook = new PlaybookLoader({ rolesPath: rolesPath() }).loadPlaybook(path);
  announceShadowedRoles(playbook, builtinRolesDir());
  return playbook;
}
