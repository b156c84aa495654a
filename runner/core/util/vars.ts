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

/**
 * A variable view with a few extra (already concrete) values on top, e.g. the registered result or the
 * template module's `template_*` names. A Proxy, so a lazy view underneath stays lazy (nothing is rendered
 * that no one reads).
 */
export function overlayVars(vars: Vars, extra: Vars): Vars {
  return new Proxy(vars, {
    get(target, key, receiver) {
      if (typeof key === 'string' && Object.prototype.hasOwnProperty.call(extra, key)) return extra[key];
      return Reflect.get(target, key, receiver);
    },
    has(target, key) {
      return (typeof key === 'string' && Object.prototype.hasOwnProperty.call(extra, key)) || Reflect.has(target, key);
    },
    getOwnPropertyDescriptor(target, key) {
      if (typeof key === 'string' && Object.prototype.hasOwnProperty.call(extra, key))
        return { value: extra[key], enumerable: true, configurable: true, writable: true };
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
  });
}
