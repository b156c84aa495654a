/** Variables as the engine passes them around: plain JSON-like data. */
export type VarValue = string | number | boolean | null | VarValue[] | { [key: string]: VarValue } | undefined;
export type Vars = Record<string, unknown>;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Layer variable sets: later layers win. Like Ansible's default `hash_behaviour = replace`, a mapping in a
 * later layer replaces the earlier mapping whole; it is not merged key by key.
 */
export function layerVars(...layers: Array<Vars | undefined>): Vars {
  const out: Vars = {};
  for (const layer of layers) if (layer) Object.assign(out, layer);
  return out;
}
