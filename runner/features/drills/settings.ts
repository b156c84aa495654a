/**
 * A host's variables as a drill needs them: rendered the way a task would see them, optionally with a
 * built-in role's defaults underneath (so a drill reads the same prometheus_* or backup_* value the role
 * used, whether the inventory sets it or not). One templater and one defaults cache for every drill.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lazyVars } from '../../core/engine/lazy-vars.js';
import { mergeLayers, type VarLayer } from '../../core/engine/variables.js';
import { builtinRolesDir } from '../../core/util/paths.js';
import { createTemplater } from '../../core/template/index.js';
import { isPlainObject, type Vars } from '../../core/util/vars.js';
import { loadYamlFile } from '../../core/util/yaml-source.js';
import type { SettingsContext } from './types.js';

const templater = createTemplater({ partialsDirs: [] });
const defaultsByRole = new Map<string, Vars>();

function roleDefaults(role: string): Vars {
  const known = defaultsByRole.get(role);
  if (known) return known;
  const file = join(builtinRolesDir(), role, 'defaults.yaml');
  const value = existsSync(file) ? loadYamlFile(file, 'role defaults').value : {};
  const defaults = isPlainObject(value) ? value : {};
  defaultsByRole.set(role, defaults);
  return defaults;
}

/** The host's variables (with `role`'s defaults under them when given), each rendered when read. */
export function hostSettings(ctx: Pick<SettingsContext, 'hostVars'>, host: string, role?: string): Vars {
  // Layered by the variable manager: the role's defaults under the host's variables (inventory and -e).
  const layers: VarLayer[] = [{ layer: 'inventory vars and extra vars', vars: ctx.hostVars(host) }];
  if (role !== undefined)
    layers.unshift({
      layer: 'role defaults',
      vars: roleDefaults(role),
      origin: () => ({ file: join(builtinRolesDir(), role, 'defaults.yaml') }),
    });
  const vars = mergeLayers(layers);
  return lazyVars(vars, (template, context, variable) =>
    templater.renderValue(template, context, { file: `variable ${variable} of host ${host}` }),
  );
}

/** One host variable rendered as a task would see it (`ceph_osd_hosts: "{{ groups.pve }}"`), or undefined. */
export function hostValue(ctx: Pick<SettingsContext, 'hostVars'>, host: string, name: string): unknown {
  return hostSettings(ctx, host)[name];
}
