/** Playbook loading for the commands (play, verify, drills' plays, rollout steps): the roles path and the loader. */
import { resolve } from 'node:path';
import { PlaybookLoader } from '../core/playbook/load.js';
import type { Playbook } from '../core/playbook/types.js';
import { builtinRolesDir } from '../core/util/paths.js';
import { loadAnsibleCfg } from './ansible-cfg.js';

/**
 * The roles path: CAIRN_ROLES_PATH, then ANSIBLE_ROLES_PATH (colon-separated), then cairn's built-in roles,
 * always last (the loader puts the playbook's roles/ first and the playbook's folder before the built-ins).
 */
function rolesPath(): string[] {
  const fromEnv = (name: string) => (process.env[name] ?? '').split(':').filter(Boolean).map((p) => resolve(p));
  return [...fromEnv('CAIRN_ROLES_PATH'), ...fromEnv('ANSIBLE_ROLES_PATH'), ...(loadAnsibleCfg()?.rolesPath ?? []), builtinRolesDir()];
}

export function loadPlaybookFile(path: string): Playbook {
  return new PlaybookLoader({ rolesPath: rolesPath() }).loadPlaybook(path);
}
