import type { Drill } from './types.js';

const drills = new Map<string, Drill>();

export function registerDrill(drill: Drill): void {
  if (drills.has(drill.name)) throw new Error(`drill ${drill.name} registered twice`);
  drills.set(drill.name, drill);
}

export function getDrill(name: string): Drill | undefined {
  return drills.get(name);
}

export function drillNames(): string[] {
  return [...drills.keys()].sort();
}
