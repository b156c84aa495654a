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

/**
 * `--roles` (or a rollout step's roles) names only roles the playbook's plays list: the names that are not,
 * said as one phrase ("web2 is not a role of site.yaml (roles: web, db)"), or undefined when all are.
 */
export function unknownRolesProblem(
  playbook: Playbook,
  roles: readonly string[],
  asWritten: string,
): string | undefined {
  const known = new Set(playbook.plays.flatMap((p) => p.roles.map((r) => r.name)));
  const unknown = roles.filter((r) => !known.has(r));
  if (!unknown.length) return undefined;
  const verb = unknown.length === 1 ? 'is' : 'are';
  return `${unknown.join(', ')} ${verb} not a role of ${asWritten} (roles: ${[...known].join(', ') || 'none'})`;
}

/** A comma-separated `--roles` value as names. */
export function roleNames(option: string): string[] {
  return option
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean);
}
