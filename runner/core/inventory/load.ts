/**
 * Loading an inventory: the YAML file (Ansible's shape), then group_vars/ and host_vars/ beside it, into
 * hosts, groups and per-host layered variables that remember where every value came from.
 *
 * Precedence inside the inventory (docs/variables.md has the whole chain): groups by depth (`all` = 0,
 * a child one deeper than its deepest parent), same depth by name; for each group its inline vars, then its
 * group_vars files; then the host's inline vars, then its host_vars files. Later wins; mappings replace.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { existsSync } from 'node:fs';
import { isAnsibleVaultText } from '../util/ansible-vault.js';
import { expandHostRange, hostListInventory, parseIniInventory } from './ini.js';
import { CairnError, inputError, type SourceLocation } from '../util/errors.js';
import { isPlainObject, layerVars, type Vars } from '../util/vars.js';
import { checkExpressions } from '../template/yaml-expressions.js';
import {
  describeFsError,
  errorAt,
  loadYamlFile,
  MAX_YAML_BYTES,
  parseYaml,
  sourceSnippet,
  type LoadedYaml,
  type YamlParseOptions,
  type YamlPath,
} from '../util/yaml-source.js';
import { closestNames, quotedAlternatives, selectHosts } from './patterns.js';
import { inventorySchema, validateShape, varsFileSchema } from './schema.js';
import type {
  Inventory,
  InventoryGroup,
  InventoryHost,
  InventoryUpdate,
  InventoryVarLayer,
  SelectOptions,
} from './types.js';

/** Turns an encrypted vault file into its YAML text; `cairn vault` plugs one in. */
export type VaultDecryptor = (file: string, data: Buffer) => string;

let vaultDecryptor: VaultDecryptor | undefined;

/** Install (or, with undefined, remove) the decryptor used for age-encrypted inventory and vars files. */
export function setVaultDecryptor(fn: VaultDecryptor | undefined): void {
  vaultDecryptor = fn;
}

/** Binary and ASCII-armoured age files. */
const VAULT_HEADERS = ['age-encryption.org/v1', '-----BEGIN AGE ENCRYPTED FILE-----'];

/** Names looked for when the inventory path is a directory. */
export const INVENTORY_FILE_NAMES = ['hosts.yaml', 'hosts.yml', 'inventory.yaml', 'inventory.yml'];

/** One set of variables from one place, with the location of each key for `varOrigin`. */
interface VarLayer {
  vars: Vars;
  origins: Map<string, SourceLocation>;
  /** Read from a group_vars/ or host_vars/ file (these win over the inventory file's and add_host's vars). */
  fromVarsDir?: boolean;
}

/** A group_vars/ or host_vars/ entry named after no group or host (yet): read if add_host or group_by adds it. */
interface PendingVarsEntry {
  path: string;
  folder: boolean;
}

interface VarsSource {
  loaded: LoadedYaml;
  /** Came out of an encrypted vault file: every value in it is a secret. */
  secret: boolean;
}

function isVaultFile(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(64);
    const read = readSync(fd, head, 0, head.length, 0);
    const text = head.subarray(0, read).toString('latin1');
    return VAULT_HEADERS.some((h) => text.startsWith(h));
  } catch {
    return false; // unreadable: loadYamlFile reports it properly
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * A key written twice in a `hosts:` mapping is a host listed twice in one group: say so. (A host listed
 * under two groups is legal, as in Ansible, and never reaches here.)
 */
const inventoryYamlOptions: YamlParseOptions = {
  describeDuplicateKey(key, mappingPath) {
    const last = mappingPath.length - 1;
    if (mappingPath[last] === 'hosts' && last >= 1)
      return `host "${key}" is listed twice in the hosts of group "${String(mappingPath[last - 1])}"`;
    if (mappingPath[last] === 'children' && last >= 1)
      return `group "${key}" is listed twice in the children of group "${String(mappingPath[last - 1])}"`;
    if (mappingPath.length === 0) return `group "${key}" is defined twice at the top level`;
    return undefined;
  },
};

function readVarsSource(file: string, what: string): VarsSource {
  const source = readVarsSourceUnchecked(file, what);
  // Expressions in inventory values are parsed now: a typo is an error at its file:line:col, not at run time.
  checkExpressions(source.loaded);
  return source;
}

function readVarsSourceUnchecked(file: string, what: string): VarsSource {
  if (!isVaultFile(file)) return { loaded: loadYamlFile(file, what, inventoryYamlOptions), secret: false };
  if (!vaultDecryptor) {
    throw inputError('encrypted vault files need `cairn vault` support, which this version does not have', { file });
  }
  let data: Buffer;
  try {
    if (statSync(file).size > 2 * MAX_YAML_BYTES) throw inputError(`${what} is too large to be a vault file`, { file });
    data = readFileSync(file);
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw inputError(`cannot read ${what}: ${describeFsError(err, file)}`, { file });
  }
  let text: unknown;
  try {
    text = vaultDecryptor(file, data);
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw inputError(`cannot decrypt vault file: ${err instanceof Error ? err.message : String(err)}`, { file });
  }
  if (typeof text !== 'string') throw inputError('cannot decrypt vault file: the decryptor returned no text', { file });
  return { loaded: parseYaml(text, file, inventoryYamlOptions), secret: true };
}

/** Every string inside a value (mapping keys excluded): what a vault file holds that must be masked. */
/**
 * Every scalar secret of a vault file, as text: strings, and numbers too (`api_pin: 4711936` is a secret;
 * numbers of one or two digits are not registered, since masking every `1` would hide the whole output while
 * protecting at most a hundred guesses). Booleans and null are not secrets.
 */
function collectStrings(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') {
    if (value !== '') into.add(value);
  } else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'bigint') {
    const text = String(value);
    if (text.replace(/^-/, '').length >= 3) into.add(text);
  } else if (Array.isArray(value)) {
    for (const item of value) collectStrings(item, into);
  } else if (isPlainObject(value)) {
    for (const item of Object.values(value)) collectStrings(item, into);
  }
}

class InventoryBuilder {
  readonly hosts = new Map<string, { name: string; location: SourceLocation; layers: VarLayer[] }>();
  readonly groups = new Map<
    string,
    {
      name: string;
      location: SourceLocation;
      hosts: string[];
      /** The same names as `hosts`, for membership tests that stay fast with thousands of hosts. */
      hostSet: Set<string>;
      children: string[];
      parents: string[];
      /** Where each child was listed, to point at the edge that closes a cycle. */
      childLocations: Map<string, SourceLocation>;
      layers: VarLayer[];
    }
  >();
  readonly secrets = new Set<string>();
  /**
   * group_vars/ and host_vars/ entries for names the inventory does not have: Ansible's vars plugin reads them
   * for a group or host that add_host or group_by creates during the run (lib/ansible/plugins/vars/
   * host_group_vars.py runs on whatever groups a host has when its variables are asked for).
   */
  readonly pendingVars = {
    group_vars: new Map<string, PendingVarsEntry[]>(),
    host_vars: new Map<string, PendingVarsEntry[]>(),
  };
  /** The inventory file's text, for carets under errors found after parsing. */
  sourceText: string | undefined;

  constructor(readonly file: string) {}

  layerFrom(source: VarsSource, value: unknown, path: YamlPath): VarLayer {
    const vars: Vars = isPlainObject(value) ? { ...value } : {};
    const origins = new Map<string, SourceLocation>();
    for (const key of Object.keys(vars)) origins.set(key, source.loaded.locate([...path, key], 'key'));
    if (source.secret) collectStrings(vars, this.secrets);
    return { vars, origins };
  }

  group(name: string, location: SourceLocation) {
    let group = this.groups.get(name);
    if (!group) {
      group = {
        name,
        location,
        hosts: [],
        hostSet: new Set(),
        children: [],
        parents: [],
        childLocations: new Map(),
        layers: [],
      };
      this.groups.set(name, group);
    }
    return group;
  }

  link(parent: string, child: string, location: SourceLocation): void {
    const p = this.groups.get(parent)!;
    const c = this.groups.get(child)!;
    if (!p.children.includes(child)) {
      p.children.push(child);
      p.childLocations.set(child, location);
    }
    if (!c.parents.includes(parent)) c.parents.push(parent);
  }

  /** Walk one group of the file in document order, so hosts are numbered as they first appear. */
  walkGroup(source: VarsSource, name: string, value: unknown, path: YamlPath, parent: string | undefined): void {
    const location = source.loaded.locate(path, 'key');
    const group = this.group(name, location);
    if (parent !== undefined) this.link(parent, name, location);
    if (!isPlainObject(value)) return;
    for (const [key, section] of Object.entries(value)) {
      if (key === 'vars') group.layers.push(this.layerFrom(source, section, [...path, 'vars']));
      else if (key === 'hosts' && isPlainObject(section)) {
        for (const [hostEntry, entryVars] of Object.entries(section)) {
          const hostPath = [...path, 'hosts', hostEntry];
          // As Ansible's yaml plugin: a host key may be a range (web[01:20]) and may end in :PORT.
          const portMatch = /^([^:[\]]+(?:\[[^\]]+\][^:[\]]*)*):(\d+)$/.exec(hostEntry);
          const names = expandHostRange(portMatch ? portMatch[1]! : hostEntry, () =>
            source.loaded.locate(hostPath, 'key'),
          );
          const hostVars = portMatch
            ? { ...(isPlainObject(entryVars) ? entryVars : {}), ansible_port: Number(portMatch[2]) }
            : entryVars;
          for (const hostName of names) {
            let host = this.hosts.get(hostName);
            if (!host) {
              host = { name: hostName, location: source.loaded.locate(hostPath, 'key'), layers: [] };
              this.hosts.set(hostName, host);
            }
            if (!group.hostSet.has(hostName)) {
              group.hostSet.add(hostName);
              group.hosts.push(hostName);
            }
            if (isPlainObject(hostVars)) host.layers.push(this.layerFrom(source, hostVars, hostPath));
          }
        }
      } else if (key === 'children' && isPlainObject(section)) {
        for (const [childName, childValue] of Object.entries(section)) {
          if (childName === 'all') {
            throw errorAt(
              source.loaded,
              [...path, 'children', childName],
              '"all" holds every group; it cannot be the child of another group',
              'key',
            );
          }
          this.walkGroup(source, childName, childValue, [...path, 'children', childName], name);
        }
      }
    }
  }

  checkNameClashes(): void {
    for (const host of this.hosts.values()) {
      const group = this.groups.get(host.name);
      if (!group) continue;
      const why =
        group.location.line === undefined
          ? `"${host.name}" is the name of a group every inventory has; rename the host`
          : `"${host.name}" is both a host and a group (the group is at ${locationText(group.location)}); host patterns could not tell them apart, so rename one`;
      throw this.errorAtLocation(why, host.location);
    }
  }

  /** An error at a location in the inventory file, with the source line and a caret. */
  errorAtLocation(message: string, location: SourceLocation): CairnError {
    const detail =
      location.line !== undefined && this.sourceText !== undefined
        ? sourceSnippet(this.sourceText, location.line, location.col)
        : undefined;
    return inputError(message, location, detail || undefined);
  }

  /** A group that is its own ancestor would make depth and membership endless. */
  checkCycles(): void {
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const visit = (name: string): void => {
      state.set(name, 'open');
      stack.push(name);
      const group = this.groups.get(name)!;
      for (const child of group.children) {
        const seen = state.get(child);
        if (seen === 'open') {
          const cycle = [...stack.slice(stack.indexOf(child)), child];
          throw this.errorAtLocation(
            `group "${child}" is its own ancestor: ${cycle.join(' -> ')}`,
            group.childLocations.get(child)!,
          );
        }
        if (seen === undefined) visit(child);
      }
      stack.pop();
      state.set(name, 'done');
    };
    for (const name of this.groups.keys()) if (!state.has(name)) visit(name);
  }

  /** As Ansible: groups with no parent belong to `all`; hosts in no other group belong to `ungrouped`. */
  attachToAll(): void {
    const fileLocation: SourceLocation = { file: this.file };
    this.group('all', fileLocation);
    this.group('ungrouped', fileLocation);
    for (const group of this.groups.values()) {
      if (group.name !== 'all' && group.parents.length === 0) this.link('all', group.name, group.location);
    }
    const directGroups = new Map<string, string[]>();
    for (const group of this.groups.values()) {
      for (const host of group.hosts) {
        if (group.name === 'all' || group.name === 'ungrouped') continue;
        directGroups.set(host, [...(directGroups.get(host) ?? []), group.name]);
      }
    }
    const ungrouped = this.groups.get('ungrouped')!;
    ungrouped.hosts = [...this.hosts.keys()].filter((host) => !directGroups.has(host));
    ungrouped.hostSet = new Set(ungrouped.hosts);
  }

  /** group_vars/NAME{,.yaml,.yml,/} and host_vars/ the same way, beside the inventory file. */
  loadVarsDir(baseDir: string, kind: 'group_vars' | 'host_vars'): void {
    const dir = join(baseDir, kind);
    if (!isDirectory(dir, kind)) return;
    const known = kind === 'group_vars' ? this.groups : this.hosts;
    const noun = kind === 'group_vars' ? 'group' : 'host';
    for (const entry of listEntries(dir)) {
      const full = join(dir, entry);
      const folder = isDirectory(full, `${kind}/${entry}`);
      const stripped = entry.replace(/\.ya?ml$/, '');
      const name = folder ? entry : [stripped, entry].find((candidate) => known.has(candidate));
      const target = name === undefined ? undefined : known.get(name);
      if (!target) {
        const wanted = folder ? entry : stripped;
        const suggestions = closestNames(wanted, known.keys());
        // Ansible ignores vars for hosts and groups it does not know; so does cairn (the lab may run without
        // its pve nodes, whose host_vars stay committed) — unless the name is a near miss of a real one,
        // which is almost certainly a typo that would silently drop variables. Kept unread for add_host and
        // group_by, which may create the name during the run.
        if (!suggestions.length) {
          const pending = this.pendingVars[kind];
          pending.set(wanted, [...(pending.get(wanted) ?? []), { path: full, folder }]);
          continue;
        }
        const hint = suggestions.length ? `; did you mean ${quotedAlternatives(suggestions)}?` : '';
        throw inputError(
          `${kind} ${folder ? 'folder' : 'file'} for ${noun} "${wanted}", which is not in the inventory${hint} (${kind} entries must be named after a ${noun}: NAME.yaml, NAME.yml, NAME or a NAME/ folder)`,
          { file: full },
        );
      }
      this.readVarsEntry(kind, { path: full, folder }, target.layers);
    }
  }

  /** One group_vars/ or host_vars/ entry (a file, or a folder of them) read into `layers`. */
  readVarsEntry(kind: 'group_vars' | 'host_vars', entry: PendingVarsEntry, layers: VarLayer[]): void {
    const files = entry.folder ? listYamlFilesDeep(entry.path) : [entry.path];
    for (const file of files) {
      const source = readVarsSource(file, `${kind} file`);
      validateShape(source.loaded, varsFileSchema, `${kind} file`);
      layers.push({ ...this.layerFrom(source, source.loaded.value, []), fromVarsDir: true });
    }
  }

  /** The group_vars/ or host_vars/ entries kept for `name`, read now that add_host or group_by created it. */
  readPendingVars(kind: 'group_vars' | 'host_vars', name: string, layers: VarLayer[]): void {
    const entries = this.pendingVars[kind].get(name);
    if (!entries) return;
    this.pendingVars[kind].delete(name);
    for (const entry of entries) this.readVarsEntry(kind, entry, layers);
  }

  /**
   * Hosts, groups and each group's members as the Inventory shows them, from what was read (and added since).
   * A host's groups are its direct groups and their ancestors, in precedence order.
   */
  derive(): {
    hosts: Map<string, InventoryHost>;
    groups: Map<string, InventoryGroup>;
    members: Readonly<Record<string, readonly string[]>>;
  } {
    const groups = new Map<string, InventoryGroup>();
    for (const g of this.groups.values()) {
      groups.set(g.name, {
        name: g.name,
        vars: layerVars(...g.layers.map((l) => l.vars)),
        hosts: g.hosts,
        children: g.children,
        parents: g.parents,
        location: g.location,
      });
    }
    // Ancestors of each group (itself included), to turn a host's direct groups into all of its groups.
    const ancestors = new Map<string, Set<string>>();
    const ancestorsOf = (name: string): Set<string> => {
      let set = ancestors.get(name);
      if (!set) {
        set = new Set([name]);
        for (const parent of groups.get(name)!.parents) for (const a of ancestorsOf(parent)) set.add(a);
        ancestors.set(name, set);
      }
      return set;
    };
    const directGroups = new Map<string, Set<string>>();
    for (const g of groups.values()) {
      for (const host of g.hosts) {
        const set = directGroups.get(host) ?? new Set<string>();
        for (const a of ancestorsOf(g.name)) set.add(a);
        directGroups.set(host, set);
      }
    }
    const hosts = new Map<string, InventoryHost>();
    const members: Record<string, string[]> = {};
    for (const name of groups.keys()) members[name] = [];
    for (const h of this.hosts.values()) {
      const hostGroups = hostGroupsDepthOrder({ groups }, ['all', ...(directGroups.get(h.name) ?? [])]);
      hosts.set(h.name, {
        name: h.name,
        vars: layerVars(...h.layers.map((l) => l.vars)),
        groups: hostGroups,
        location: h.location,
      });
      for (const g of hostGroups) members[g]!.push(h.name);
    }
    for (const list of Object.values(members)) Object.freeze(list);
    return { hosts, groups, members: Object.freeze(members) };
  }
}

function locationText(loc: SourceLocation): string {
  return loc.line === undefined ? loc.file : `${loc.file}:${loc.line}${loc.col === undefined ? '' : `:${loc.col}`}`;
}

function isDirectory(path: string, what: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw inputError(`cannot read ${what}: ${describeFsError(err, path)}`, { file: path });
  }
}

/** Directory entries in name order (code-point order, the same on every machine), hidden ones skipped. */
function listEntries(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw inputError(`cannot list folder: ${describeFsError(err)}`, { file: dir });
  }
  return names.filter((n) => !n.startsWith('.')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Every *.yaml/*.yml under a vars folder, subfolders included (as Ansible reads them), in path order. Any
 * other file is an error rather than silently ignored: a `vars.yaml.bak` holding the only copy of a change
 * should not look applied.
 */
function listYamlFilesDeep(dir: string): string[] {
  const files: string[] = [];
  for (const entry of listEntries(dir)) {
    const full = join(dir, entry);
    if (isDirectory(full, 'vars folder')) files.push(...listYamlFilesDeep(full));
    else if (/\.ya?ml$/.test(entry)) files.push(full);
    else
      throw inputError('files in a vars folder must end in .yaml or .yml; rename or remove this one', { file: full });
  }
  return files;
}

/**
 * The files an inventory path stands for. A file is itself. A folder holding one of cairn's names
 * (hosts.yaml, ...) is that file, as before; any other folder is read as Ansible reads an inventory folder:
 * every file in it (not hidden, not in group_vars/ or host_vars/, not ending in Ansible's ignored extensions
 * .orig .ini .cfg .retry ~), merged, in name order.
 */
function resolveInventoryFiles(path: string): string[] {
  if (!isDirectory(path, 'inventory')) {
    try {
      statSync(path);
    } catch (err) {
      throw inputError(`cannot read inventory: ${describeFsError(err, path)}`, { file: path });
    }
    return [path];
  }
  const found = INVENTORY_FILE_NAMES.filter((name) => {
    try {
      return statSync(join(path, name)).isFile();
    } catch {
      return false;
    }
  });
  if (found.length > 1)
    throw inputError(`several inventory files in this folder (${found.join(', ')}); keep one`, { file: path });
  if (found.length === 1) return [join(path, found[0]!)];
  const files = listEntries(path).filter((name) => {
    if (/(\.orig|\.ini|\.cfg|\.retry|~|\.md|\.key|\.pub)$/.test(name)) return false;
    try {
      return statSync(join(path, name)).isFile();
    } catch {
      return false;
    }
  });
  if (files.length === 0) {
    throw inputError(
      `no inventory file in this folder (expected one of ${INVENTORY_FILE_NAMES.join(', ')}, or Ansible inventory files)`,
      { file: path },
    );
  }
  return files.map((name) => join(path, name));
}

/** Ansible's default inventory format is INI; say so instead of reporting a puzzling YAML error. */
function iniHeaderLine(source: string): number | undefined {
  const lines = source.split(/\r?\n/);
  const index = lines.findIndex((l) => l.trim() !== '' && !/^\s*[#;]/.test(l));
  return index >= 0 && /^\[[^\]]+\]\s*$/.test(lines[index]!) ? index + 1 : undefined;
}

/**
 * Which plugin reads a file, as Ansible chooses: .yml/.yaml/.json are YAML; .ini is INI; anything else is
 * YAML when it reads as a YAML inventory (a mapping of groups), else INI.
 */
function looksLikeIni(file: string, text: string): boolean {
  // A [section] first line is INI whatever the name says (Ansible falls back to its ini plugin the same way).
  if (iniHeaderLine(text) !== undefined) return true;
  if (/\.(ya?ml|json)$/i.test(file)) return false;
  if (/\.ini$/i.test(file)) return true;
  try {
    const value = parseYaml(text, file).value;
    return !(isPlainObject(value) && Object.values(value).every((v) => v === null || isPlainObject(v)));
  } catch {
    return true;
  }
}

function readInventorySource(file: string): VarsSource {
  if (!isVaultFile(file)) {
    let text: string | undefined;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      text = undefined; // readVarsSource reports it
    }
    if (text !== undefined && !text.includes('\0') && !isAnsibleVaultText(text) && looksLikeIni(file, text)) {
      return { loaded: parseIniInventory(text, file), secret: false };
    }
  }
  const source = readVarsSource(file, 'inventory');
  validateShape(source.loaded, inventorySchema, 'inventory');
  return source;
}

/** The returned inventory: the Inventory contract plus what later features need. */
export class LoadedInventory implements Inventory {
  readonly hosts = new Map<string, InventoryHost>();
  readonly groups = new Map<string, InventoryGroup>();
  /** `groups` as templates see it; shared by every host, so frozen (a new object after each change). */
  private groupMembers: Readonly<Record<string, readonly string[]>> = {};
  private readonly secrets: string[];
  private changes = 0;

  constructor(
    readonly path: string,
    /** The YAML file actually read (inside `path` when that is a folder). */
    readonly file: string,
    /** What was read: kept, so add_host and group_by can add to it and the views be derived again. */
    private readonly builder: InventoryBuilder,
  ) {
    this.secrets = [...builder.secrets];
    this.sortSecrets();
    this.rederive();
  }

  get revision(): number {
    return this.changes;
  }

  private sortSecrets(): void {
    this.secrets.sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  }

  /** The public maps refilled in place (callers may hold them) from the builder's records. */
  private rederive(): void {
    const derived = this.builder.derive();
    this.hosts.clear();
    for (const [name, host] of derived.hosts) this.hosts.set(name, host);
    this.groups.clear();
    for (const [name, group] of derived.groups) this.groups.set(name, group);
    this.groupMembers = derived.members;
  }

  /** After a change: `all`/`ungrouped` membership reconciled (Ansible's reconcile_inventory), views derived. */
  private changed(secretsBefore: number): InventoryUpdate {
    this.builder.attachToAll();
    this.rederive();
    this.changes++;
    const added = [...this.builder.secrets].slice(secretsBefore);
    if (added.length) {
      this.secrets.push(...added);
      this.sortSecrets();
    }
    return { changed: true, secrets: added };
  }

  /** A new group (its group_vars/ read now, as Ansible's vars plugin would), or the one of that name. */
  private ensureGroup(name: string, origin: SourceLocation): boolean {
    if (this.builder.groups.has(name)) return false;
    if (this.builder.hosts.has(name))
      throw inputError(`"${name}" is a host of the inventory; it cannot also be a group`, origin);
    const group = this.builder.group(name, origin);
    this.builder.readPendingVars('group_vars', name, group.layers);
    return true;
  }

  private addToGroup(group: string, host: string): boolean {
    const record = this.builder.groups.get(group)!;
    if (record.hostSet.has(host)) return false;
    record.hostSet.add(host);
    record.hosts.push(host);
    return true;
  }

  addHost(name: string, groups: readonly string[], vars: Vars, origin: SourceLocation): InventoryUpdate {
    const secretsBefore = this.builder.secrets.size;
    let changed = false;
    let host = this.builder.hosts.get(name);
    if (!host) {
      if (this.builder.groups.has(name))
        throw inputError(`"${name}" is a group of the inventory; it cannot also be a host`, origin);
      host = { name, location: origin, layers: [] };
      this.builder.hosts.set(name, host);
      this.builder.readPendingVars('host_vars', name, host.layers);
      changed = true;
    }
    // Ansible's add_dynamic_host: the values are combined into the host's own vars (which its host_vars/
    // files still win over), and count as a change only if they change something.
    const own = layerVars(...host.layers.filter((l) => !l.fromVarsDir).map((l) => l.vars));
    if (Object.entries(vars).some(([k, v]) => !isDeepStrictEqual(own[k], v))) {
      const at = host.layers.findIndex((l) => l.fromVarsDir);
      const layer: VarLayer = { vars: { ...vars }, origins: new Map(Object.keys(vars).map((k) => [k, origin])) };
      host.layers.splice(at < 0 ? host.layers.length : at, 0, layer);
      changed = true;
    }
    for (const group of groups) {
      if (this.ensureGroup(group, origin)) changed = true;
      if (this.addToGroup(group, name)) changed = true;
    }
    return changed ? this.changed(secretsBefore) : { changed: false, secrets: [] };
  }

  addHostToGroup(host: string, group: string, parents: readonly string[], origin: SourceLocation): InventoryUpdate {
    this.hostOrThrow(host);
    const secretsBefore = this.builder.secrets.size;
    let changed = this.ensureGroup(group, origin);
    for (const parent of parents) {
      if (parent === group) throw inputError(`group "${group}" cannot be its own parent`, origin);
      if (this.ensureGroup(parent, origin)) changed = true;
      const before = this.builder.groups.get(parent)!.children.length;
      this.builder.link(parent, group, origin);
      if (this.builder.groups.get(parent)!.children.length !== before) {
        changed = true;
        this.builder.checkCycles();
      }
    }
    if (this.addToGroup(group, host)) changed = true;
    return changed ? this.changed(secretsBefore) : { changed: false, secrets: [] };
  }

  private hostOrThrow(name: string): InventoryHost {
    const host = this.hosts.get(name);
    if (!host) throw new CairnError(`no host "${name}" in the inventory ${this.path}`, { kind: 'runtime' });
    return host;
  }

  /** The host's layers, lowest precedence first. */
  private layersOf(host: InventoryHost): VarLayer[] {
    return [
      ...host.groups.flatMap((g) => this.builder.groups.get(g)?.layers ?? []),
      ...(this.builder.hosts.get(host.name)?.layers ?? []),
    ];
  }

  hostVars(name: string): Vars {
    const host = this.hostOrThrow(name);
    // A deep copy: the engine may set facts on the result, and no host may see another's changes.
    const layered = structuredClone(layerVars(...this.layersOf(host).map((l) => l.vars)));
    return this.hostVarsWithMagic(host, layered);
  }

  /** `vars` with the magic variables on top (a `vars` key of its own is not expected: names are identifiers). */
  private hostVarsWithMagic(host: InventoryHost, vars: Vars): Vars {
    return {
      ...vars,
      inventory_hostname: host.name,
      inventory_hostname_short: host.name.split('.')[0]!,
      inventory_file: this.file,
      inventory_dir: dirname(this.file),
      group_names: host.groups.filter((g) => g !== 'all').sort(),
      groups: this.groupMembers,
    };
  }

  varLayers(name: string): InventoryVarLayer[] {
    const host = this.hostOrThrow(name);
    const magic = this.hostVarsWithMagic(host, {});
    // Deep copies, as hostVars: whoever merges them may not change the inventory (or another host) through them.
    const copy = (l: VarLayer) => ({ vars: structuredClone(l.vars), origins: l.origins });
    return [
      ...host.groups.flatMap((g) =>
        (this.builder.groups.get(g)?.layers ?? []).map((l) => ({ layer: 'inventory group vars' as const, ...copy(l) })),
      ),
      ...(this.builder.hosts.get(host.name)?.layers ?? []).map((l) => ({
        layer: 'inventory host vars' as const,
        ...copy(l),
      })),
      {
        layer: 'inventory magic vars',
        vars: magic,
        origins: new Map(Object.keys(magic).map((k) => [k, host.location])),
      },
    ];
  }

  varOrigin(name: string, variable: string): SourceLocation | undefined {
    const host = this.hostOrThrow(name);
    if (
      [
        'inventory_hostname',
        'inventory_hostname_short',
        'group_names',
        'groups',
        'inventory_file',
        'inventory_dir',
      ].includes(variable)
    ) {
      return host.location;
    }
    const layers = this.layersOf(host);
    for (let i = layers.length - 1; i >= 0; i--) {
      const origin = layers[i]!.origins.get(variable);
      if (origin) return origin;
    }
    return undefined;
  }

  select(pattern: string, opts?: SelectOptions): string[] {
    return selectHosts(this, pattern, opts);
  }

  /** Every string value read from an encrypted vault file, longest first (mask longer secrets first). */
  secretValues(): string[] {
    return [...this.secrets];
  }
}

/**
 * Group names of a host in precedence order: `all` first, then by depth (the longest path from `all`),
 * then by name. Parents always come before their children.
 */
export function hostGroupsDepthOrder(inventory: Pick<Inventory, 'groups'>, groupNames: Iterable<string>): string[] {
  const depths = new Map<string, number>();
  const depthOf = (name: string): number => {
    const known = depths.get(name);
    if (known !== undefined) return known;
    const parents = inventory.groups.get(name)?.parents ?? [];
    const depth = name === 'all' || parents.length === 0 ? 0 : 1 + Math.max(...parents.map(depthOf));
    depths.set(name, depth);
    return depth;
  };
  // Ansible sorts a host's groups by (depth, ansible_group_priority, name); the priority defaults to 1.
  const priorityOf = (name: string): number => {
    const p = Number((inventory.groups.get(name) as { vars?: Vars } | undefined)?.vars?.ansible_group_priority ?? 1);
    return Number.isFinite(p) ? p : 1;
  };
  return [...new Set(groupNames)].sort(
    (a, b) => depthOf(a) - depthOf(b) || priorityOf(a) - priorityOf(b) || (a < b ? -1 : a > b ? 1 : 0),
  );
}

/** Load an inventory file, or a folder holding hosts.yaml (or hosts.yml, inventory.yaml, inventory.yml). */
export function loadInventory(path: string): LoadedInventory {
  // Ansible's `-i host1,host2,`: a list of hosts, not a file.
  const hostList = path.includes(',') && !existsSync(path);
  const files = hostList ? [] : resolveInventoryFiles(path);
  const file = hostList ? path : files[0]!;
  const baseDir = hostList ? process.cwd() : isDirectory(path, 'inventory') ? path : dirname(file);
  const builder = new InventoryBuilder(file);
  const sources = hostList
    ? [{ loaded: hostListInventory(basename(path)), secret: false }]
    : files.map(readInventorySource);
  for (const source of sources) {
    builder.sourceText = source.loaded.source;
    if (isPlainObject(source.loaded.value)) {
      for (const [name, value] of Object.entries(source.loaded.value))
        builder.walkGroup(source, name, value, [name], undefined);
    }
  }
  builder.checkCycles();
  builder.attachToAll();
  builder.checkNameClashes();
  builder.loadVarsDir(baseDir, 'group_vars');
  builder.loadVarsDir(baseDir, 'host_vars');

  return new LoadedInventory(path, file, builder);
}
