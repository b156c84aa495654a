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

export interface InventoryVarLayer {
  layer: 'inventory group vars' | 'inventory host vars' | 'inventory magic vars';
  vars: Vars;
  origins: Map<string, SourceLocation>;
}

/** What an add_host or group_by did to the in-memory inventory. */
export interface InventoryUpdate {
  /** Something was added (Ansible reports such a task changed). */
  changed: boolean;
  /** Values of encrypted vars files read for a new host or group: to be masked like the inventory's own. */
  secrets: string[];
}

/** How a pattern is read. */
export interface SelectOptions {
  /**
   * A name that matches nothing selects nothing instead of being an error (Ansible's warning): for a play
   * whose hosts or groups add_host or group_by may create during the run.
   */
  allowUnknown?: boolean;
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
  /**
   * The host's inventory variables as separate layers, lowest precedence first: each group's (`all` first,
   * parents before children, then by name; inline vars before group_vars files), the host's own, and the
   * magic variables. For the variable manager (runner/core/engine/variables.ts) and `cairn vars`.
   */
  varLayers(host: string): InventoryVarLayer[];
  /**
   * Hosts matching an Ansible-style pattern, in inventory order. Throws a CairnError on a bad pattern, and
   * on a name that matches nothing unless `allowUnknown`.
   */
  select(pattern: string, opts?: SelectOptions): string[];
  /** Every string value read from an encrypted vault file, longest first: the session masks them in all output. */
  secretValues(): string[];
  /**
   * Counts the changes add_host and group_by made: a reader that keeps a host's layers reads them again when
   * it moved (a new group brings its variables, and `groups`/`group_names` change).
   */
  readonly revision: number;
  /**
   * Ansible's add_host (lib/ansible/inventory/manager.py add_dynamic_host): the host (created in `all` if
   * new, its group_vars/host_vars files read as Ansible's vars plugin would), `vars` combined into its own
   * variables, and the host put into each of `groups` (created if new). Throws on a name that is already a
   * group, or a group name that is already a host.
   */
  addHost(name: string, groups: readonly string[], vars: Vars, origin: SourceLocation): InventoryUpdate;
  /** Ansible's group_by (add_dynamic_group): `host` put into `group`, created under `parents` if new. */
  addHostToGroup(host: string, group: string, parents: readonly string[], origin: SourceLocation): InventoryUpdate;
}
