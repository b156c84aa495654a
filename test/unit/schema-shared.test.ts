/**
 * One JSON Schema validator: the inventory's schemas (core/inventory/schema.ts) compile on the shared ajv
 * instance of core/util/schema.ts (it had its own, configured separately), and its errors keep the inventory's
 * own words at file:line:col.
 */
import { describe, expect, it, vi } from 'vitest';
import { inventorySchema, validateShape } from '../../runner/core/inventory/schema.js';
import { ajv } from '../../runner/core/util/schema.js';
import { parseYaml } from '../../runner/core/util/yaml-source.js';

describe('inventory schema validation', () => {
  it('compiles on the shared ajv instance', () => {
    const compile = vi.spyOn(ajv(), 'compile');
    try {
      // A schema never seen before (not even at build time, test/build/gen-schemas.ts), so nothing is cached for it.
      const schema = { ...inventorySchema, description: 'an inventory edited since cairn was built' };
      const loaded = parseYaml('all:\n  hosts: {}\n', '/inv/hosts.yaml');
      validateShape(loaded, schema, 'inventory');
      expect(compile).toHaveBeenCalledWith(schema);
    } finally {
      compile.mockRestore();
    }
  });

  it("keeps the inventory's words for a bad name and a node's description, at file:line:col", () => {
    const bad = parseYaml('all:\n  children:\n    "web servers":\n      hosts: {}\n', '/inv/hosts.yaml');
    expect(() => validateShape(bad, inventorySchema, 'inventory')).toThrow(
      /^inventory: invalid group name "web servers"/,
    );
    const hosts = parseYaml('all:\n  hosts: 3\n', '/inv/hosts.yaml');
    try {
      validateShape(hosts, inventorySchema, 'inventory');
      expect.unreachable();
    } catch (err) {
      expect((err as { render(): string }).render().split('\n')[0]).toBe(
        '/inv/hosts.yaml:2:10: inventory: "hosts" must be a mapping of host names to their variables (not a list), got number 3',
      );
    }
  });
});
