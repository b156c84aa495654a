import type { SourceLocation } from '../util/errors.js';
import type { Vars } from '../util/vars.js';

export interface InventoryHost {
  name: string;
  /** Variables set on the host itself (inventory file, then host_vars/NAME.yaml). */
  vars: Vars;
  /** Every group the host belongs to, `all` first, ancestors before descendants. */
  groups: string[];
  location: SourceLocation;
}

export interface InventoryGroup {
  name: string;
  vars: Vars;
  /** Hosts listed directly under this group. */
  hosts: string[];
  children: string[];
  parents: string[];
  location: SourceLocation;
}

export interface Inventory {
  /** The inventory file (or directory) it was loaded from. */
  path: string;
  /** Hosts in the order they first appear. */
  hosts: Map<string, InventoryHost>;
  groups: Map<string, InventoryGroup>;
  /**
   * The host's inventory variables, layered: group vars (`all` first, then parents before children, then by
   * name), then host vars. Also sets `inventory_hostname`, `group_names` and `groups`.
   */
  hostVars(host: string): Vars;
  /** Which file (and line) set the winning value of `variable` for `host`, for error messages. */
  varOrigin(host: string, variable: string): SourceLocation | undefined;
  /** Hosts matching an Ansible-style pattern, in inventory order. Throws a CairnError on a bad pattern. */
  select(pattern: string): string[];
  /** Every string value read from an encrypted vault file, longest first: the session masks them in all output. */
  secretValues(): string[];
}
