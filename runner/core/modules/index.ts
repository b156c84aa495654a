/** The module registry: every module the playbooks may name. */
import type { AnyModule } from './types.js';

const modules = new Map<string, AnyModule>();

export function registerModule(module: AnyModule, ...aliases: string[]): void {
  modules.set(module.name, module);
  for (const alias of aliases) modules.set(alias, module);
}

export function getModule(name: string): AnyModule | undefined {
  return modules.get(name);
}

export function moduleNames(): string[] {
  return [...modules.keys()].sort();
}
