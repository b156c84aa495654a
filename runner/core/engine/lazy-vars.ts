/**
 * Variables whose values are themselves templates (`vip_url: "http://{{ vip_address }}/"`) are rendered
 * when they are read, as Ansible does, so a variable nobody uses can never fail a task. The view is a Proxy
 * over the layered variables; each value is rendered once per view.
 */
import { inputError } from '../util/errors.js';
import type { Vars } from '../util/vars.js';
import { hasTemplateMarkup } from '../template/jinja-syntax.js';

export type RenderFn = (template: string, context: Vars, variable: string) => unknown;

/**
 * A Proxy must return a read-only, non-configurable property's own value (frozen data such as the
 * inventory's `groups` lists): such values are returned as they are, never wrapped.
 */
function isFrozenProperty(target: object, key: string): boolean {
  const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
  return descriptor !== undefined && descriptor.configurable === false && descriptor.writable === false;
}

export function lazyVars(layered: Vars, render: RenderFn): Vars {
  const resolving = new Set<string>();
  const cache = new Map<string, unknown>();

  const wrap = (value: unknown, path: string): unknown => {
    if (typeof value === 'string') {
      if (!hasTemplateMarkup(value)) return value;
      if (cache.has(path)) return cache.get(path);
      if (resolving.has(path)) throw inputError(`variable "${path}" refers to itself through its own template`);
      resolving.add(path);
      try {
        const rendered = render(value, root, path);
        cache.set(path, rendered);
        return rendered;
      } finally {
        resolving.delete(path);
      }
    }
    if (value !== null && typeof value === 'object') {
      if (cache.has(path)) return cache.get(path);
      const proxy = new Proxy(value as object, {
        get(target, key, receiver) {
          const v = Reflect.get(target, key, receiver);
          if (typeof key === 'symbol' || typeof v === 'function' || isFrozenProperty(target, key)) return v;
          return wrap(v, `${path}.${key}`);
        },
      });
      cache.set(path, proxy);
      return proxy;
    }
    return value;
  };

  const root: Vars = new Proxy(layered, {
    get(target, key, receiver) {
      const v = Reflect.get(target, key, receiver);
      if (typeof key === 'symbol' || typeof v === 'function' || isFrozenProperty(target, key)) return v;
      return wrap(v, key);
    },
  }) as Vars;
  return root;
}

/** A plain deep copy of a (possibly lazy) value, rendering what it touches: for registering and events. */
export function materialise(value: unknown, depth = 0): unknown {
  if (depth > 50) return '[too deep]';
  if (Array.isArray(value)) return value.map((v) => materialise(v, depth + 1));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) out[key] = materialise((value as Record<string, unknown>)[key], depth + 1);
    return out;
  }
  return value;
}
