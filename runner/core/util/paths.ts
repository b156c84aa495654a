/** Where cairn's own files are (built-in roles, shared template partials), wherever it runs from. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The repository / package root: the nearest folder above this file with cairn's package.json. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'cairn') return (cached = dir);
      } catch {
        // not ours; keep climbing
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find cairn package root');
    dir = up;
  }
}

export const builtinRolesDir = (): string => join(packageRoot(), 'roles');
export const sharedTemplatesDir = (): string => join(packageRoot(), 'templates');
