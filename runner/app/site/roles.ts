/**
 * A site's own role wins over cairn's built-in role of the same name (the playbook's roles/ folder and
 * cairn.cfg's roles_path are searched first), and says so once per run on stderr: a site that forked
 * `haproxy` must not be surprised by it, nor silently miss the built-in role's fixes.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Playbook } from '../../core/playbook/types.js';

const announced = new Set<string>();

/** The roles of a playbook found outside `builtinDir` that shadow a built-in role of the same name. */
export function shadowedRoles(playbook: Playbook, builtinDir: string): Array<{ name: string; dir: string }> {
  const out = new Map<string, string>();
  for (const play of playbook.plays) {
    for (const role of play.roles) {
      const builtin = join(builtinDir, role.name);
      if (role.dir !== builtin && existsSync(join(builtin, 'tasks.yaml'))) out.set(role.name, role.dir);
    }
  }
  return [...out].map(([name, dir]) => ({ name, dir }));
}

export function announceShadowedRoles(
  playbook: Playbook,
  builtinDir: string,
  stream: NodeJS.WritableStream = process.stderr,
): void {
  for (const { name, dir } of shadowedRoles(playbook, builtinDir)) {
    if (announced.has(dir)) continue;
    announced.add(dir);
    const shown = relative(process.cwd(), dir) || dir;
    stream.write(
      `NOTE: role ${name}: using the site's ${shown.startsWith('..') ? dir : shown}, not cairn's built-in role\n`,
    );
  }
}
