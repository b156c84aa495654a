/** cairn's inventory: loading (with group_vars/host_vars), layered host variables and host patterns. */
export type { Inventory, InventoryGroup, InventoryHost, InventoryUpdate, SelectOptions } from './types.js';
export {
  hostGroupsDepthOrder,
  INVENTORY_FILE_NAMES,
  loadInventory,
  LoadedInventory,
  setVaultDecryptor,
  type VaultDecryptor,
} from './load.js';
export {
  closestNames,
  levenshtein,
  parseHostPattern,
  readLimitFile,
  selectHosts,
  type PatternInventory,
  type PatternTerm,
} from './patterns.js';
export { CONNECTION_VARIABLE_SCHEMAS, inventorySchema, MAGIC_VARIABLES, varsFileSchema } from './schema.js';
