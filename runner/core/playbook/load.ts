/**
 * Loading playbooks and roles: YAML -> validated Play/Role/Task objects. Every error names file:line:col and
 * what was expected. Module names and their arguments are checked here, before any host is contacted.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute as isAbsoluteName, join, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import { CairnError, formatLocation, inputError, type SourceLocation } from '../util/errors.js';
import { builtinRolesDir } from '../util/paths.js';
import { ansibleBool, isQualifiedName, PLAY_KEYWORDS_WARNED, shortModuleName } from './ansible-keywords.js';
import { getModule, moduleNames } from '../modules/index.js';
import { unknownModuleMessage } from '../modules/unknown.js';
import { foreignModule, isForeignModule } from '../modules/foreign.js';
import { ajv, compileSchema, describeAjvErrors, precompiledValidator, validateAt } from '../util/schema.js';
import { parseHostPattern } from '../inventory/patterns.js';
import { isPlainObject, type Vars } from '../util/vars.js';
import { checkExpressions } from '../template/yaml-expressions.js';
import {
  describeFsError,
  errorAt,
  loadYamlFile,
  parseYaml,
  snippetAt,
  sourceSnippet,
  type LoadedYaml,
  type YamlPath,
} from '../util/yaml-source.js';
import { closestNames } from '../util/suggest.js';
import {
  TASK_KEYWORDS,
  TASK_KEYWORDS_UNSUPPORTED,
  defaultsSchema,
  metaSchema,
  playSchema,
  playbookSchema,
  taskKeywordSchemas,
  taskListSchema,
} from './schema.js';
import type { BlockSpec, IncludeSpec, LoopKind, Play, Playbook, Role, Task, ValueLocator } from './types.js';

export interface LoadOptions {
  /** Folders searched for roles, in order (the playbook's own `roles/` is searched first). */
  rolesPath: string[];
}

const ROLE_FILES = ['tasks', 'defaults', 'vars', 'handlers', 'verify', 'meta'] as const;

/** Keys of a role entry that are keywords; any other key beside `role:` is a role parameter (a variable). */
const ROLE_ENTRY_KEYWORDS = new Set([
  'role',
  'vars',
  'tags',
  'when',
  'become',
  'become_user',
  'delegate_to',
  'ignore_errors',
  'no_log',
  'environment',
  'collections',
]);

/** Actions the engine runs itself rather than a module: they change what the run does, not a host. */
const ENGINE_ACTIONS = new Set(['set_fact', 'include_vars', 'meta']);

/** Keys a block may carry: its lists, and the keywords its tasks inherit. */
const BLOCK_KEYWORDS = new Set([
  'block',
  'rescue',
  'always',
  'name',
  'when',
  'tags',
  'vars',
  'become',
  'become_user',
  'ignore_errors',
  'ignore_unreachable',
  'no_log',
  'check_mode',
  'run_once',
  'delegate_to',
  'collections',
  'environment',
  // Ansible's Block is Notifiable: a task inside without its own notify notifies the block's handlers.
  'notify',
]);

/** Block keywords of Ansible cairn refuses by name, with what to do instead. */
const BLOCK_UNSUPPORTED: Record<string, string> = {
  ...TASK_KEYWORDS_UNSUPPORTED,
  any_errors_fatal: 'set any_errors_fatal on the play',
  async: 'put async and poll on the tasks inside the block',
  poll: 'put async and poll on the tasks inside the block',
  loop: 'a block cannot loop in Ansible either; put the tasks in a file and use include_tasks with the loop',
};

/** Ansible's meta actions, and what cairn does about each one it does not run (lib/ansible/plugins/action/meta). */
const META_ACTIONS = new Set([
  'flush_handlers',
  'end_play',
  'end_host',
  'end_batch',
  'noop',
  'clear_host_errors',
  'reset_connection',
  'clear_facts',
]);
const META_UNSUPPORTED: Record<string, string> = {
  refresh_inventory:
    'cairn reads the inventory once per run; split the playbook in two runs, the second after the inventory changed',
  end_role: 'put a when: on the rest of the role tasks (or use meta: end_host)',
  role_complete: 'put a when: on the rest of the role tasks',
};

/** `with_X` words cairn runs (each is Ansible's lookup X); any other is refused by name. */
const WITH_LOOPS: Record<string, LoopKind> = {
  with_items: 'items',
  with_list: 'list',
  with_dict: 'dict',
  with_together: 'together',
  with_first_found: 'first_found',
  with_fileglob: 'fileglob',
  with_sequence: 'sequence',
  with_nested: 'nested',
  with_cartesian: 'cartesian',
  with_subelements: 'subelements',
  with_indexed_items: 'indexed_items',
  with_flattened: 'flattened',
};

/** A task's loop: its value and which of Ansible's lookups turns that value into items. */
function loopOf(
  loaded: LoadedYaml,
  raw: Record<string, unknown>,
  path: YamlPath,
): { loopValue: unknown; loopKind?: LoopKind } {
  const withKeys = Object.keys(raw).filter((k) => k.startsWith('with_'));
  const all = [...(raw.loop !== undefined ? ['loop'] : []), ...withKeys];
  if (all.length > 1)
    throw errorAt(loaded, [...path, all[1]!], `a task has one loop; "${all[0]}" and "${all[1]}" both given`, 'key');
  if (raw.loop !== undefined) return { loopValue: raw.loop, loopKind: 'loop' };
  const key = withKeys[0];
  if (key === undefined) return { loopValue: undefined };
  const kind = WITH_LOOPS[key];
  if (!kind)
    throw errorAt(
      loaded,
      [...path, key],
      `"${key}" (Ansible's ${key.slice(5)} lookup) is not supported by cairn; write loop: with a list instead ` +
        `(cairn runs ${Object.keys(WITH_LOOPS).join(', ')})`,
      'key',
    );
  if (kind === 'sequence' && typeof raw[key] !== 'string' && !isPlainObject(raw[key]))
    throw errorAt(loaded, [...path, key], 'with_sequence takes "start=1 end=10 stride=1 format=..." or "count=N"');
  return { loopValue: raw[key], loopKind: kind };
}

/**
 * Ansible's older spellings of a task's module: `action: copy src=a dest=b` (or a mapping with `module:`)
 * and `local_action: ...` (the same, delegated to localhost), read as the module written as a key.
 */
function actionForm(loaded: LoadedYaml, raw: Record<string, unknown>, path: YamlPath): Record<string, unknown> {
  const key = 'action' in raw ? 'action' : 'local_action' in raw ? 'local_action' : undefined;
  if (key === undefined) return raw;
  const value = raw[key];
  let module: string | undefined;
  let args: unknown;
  if (typeof value === 'string') {
    const m = /^\s*([A-Za-z0-9_.]+)(?:\s+([\s\S]*))?$/.exec(value);
    module = m?.[1];
    args = m?.[2]?.trim() || null;
  } else if (isPlainObject(value) && typeof value.module === 'string') {
    const { module: name, ...rest } = value;
    module = name as string;
    args = rest;
  }
  if (module === undefined)
    throw errorAt(loaded, [...path, key], `${key} takes "MODULE ARGS" or a mapping with module: and the arguments`);
  if (key === 'local_action' && raw.delegate_to !== undefined)
    throw errorAt(loaded, [...path, 'delegate_to'], 'local_action already runs on localhost; drop delegate_to', 'key');
  const rest = Object.fromEntries(Object.entries(raw).filter(([k]) => k !== key));
  if (module in rest)
    throw errorAt(loaded, [...path, key], `${key} names module "${module}", which the task also has as a key`);
  return { ...rest, [module]: args, ...(key === 'local_action' ? { delegate_to: 'localhost' } : {}) };
}

/** include_vars' arguments: a file name, or file/dir/name/depth/files_matching/ignore_files/extensions. */
function includeVarsArgs(loaded: LoadedYaml, rawArgs: unknown, at: YamlPath): Record<string, unknown> {
  let args: Record<string, unknown>;
  if (typeof rawArgs === 'string') {
    const kv = /^\s*[A-Za-z_]+=/.test(rawArgs) ? parseKeyValueArgs(rawArgs) : undefined;
    args = kv ?? { file: rawArgs.trim() };
  } else if (isPlainObject(rawArgs)) args = { ...rawArgs };
  else throw errorAt(loaded, at, 'include_vars takes a file name, or a mapping with file: or dir:');
  if (typeof args._raw_params === 'string') {
    args.file = args._raw_params;
    delete args._raw_params;
  }
  if (typeof args.free_form === 'string') {
    args.file = args.free_form;
    delete args.free_form;
  }
  const known = ['file', 'dir', 'name', 'depth', 'files_matching', 'ignore_files', 'extensions'];
  const ignored = ['ignore_unknown_extensions', 'hash_behaviour'];
  for (const k of Object.keys(args))
    if (!known.includes(k) && !ignored.includes(k))
      throw errorAt(
        loaded,
        [...at, k],
        `include_vars: unknown argument "${k}" (expected one of: ${known.join(', ')})`,
        'key',
      );
  if ((args.file === undefined) === (args.dir === undefined))
    throw errorAt(loaded, at, 'include_vars needs exactly one of file: and dir:');
  return args;
}

/** meta's action, checked when the playbook loads. */
function metaAction(loaded: LoadedYaml, rawArgs: unknown, at: YamlPath): string {
  const action = typeof rawArgs === 'string' ? rawArgs.trim() : undefined;
  if (action === undefined) throw errorAt(loaded, at, `meta takes one action: ${[...META_ACTIONS].join(', ')}`);
  const why = META_UNSUPPORTED[action];
  if (why) throw errorAt(loaded, at, `meta: ${action} is not supported by cairn: ${why}`);
  if (!META_ACTIONS.has(action))
    throw errorAt(loaded, at, `unknown meta action "${action}" (expected one of: ${[...META_ACTIONS].join(', ')})`);
  return action;
}

/** A file of a role's folder of one kind (tasks_from: x finds tasks/x, tasks/x.yml, tasks/x.yaml). */
function findRoleSubfile(roleDir: string, kind: string, name: string): string | undefined {
  return [name, `${name}.yml`, `${name}.yaml`]
    .map((n) => join(roleDir, kind, n))
    .find((p) => existsSync(p) && statSync(p).isFile());
}

interface RoleSearchDir {
  dir: string;
  /** In words, for -v: "the playbook's roles/", "roles_path", "built-in". */
  origin: string;
}

/** A `when` list with where each of its conditions is written (same index). */
interface Conditions {
  when: string[];
  whenOrigins: SourceLocation[];
}

interface RoleEntry extends Conditions {
  name: string;
  vars: Vars;
  origins: Map<string, SourceLocation>;
  tags: string[];
  /** The entry's `environment` layers, outermost first (a dependency's after its dependent's). */
  environment?: unknown[];
}

interface ExpandedRole extends Conditions {
  role: Role;
  vars: Vars;
  origins: Map<string, SourceLocation>;
  tags: string[];
  environment?: unknown[];
}

const NO_CONDITIONS: Conditions = { when: [], whenOrigins: [] };
const pickConditions = ({ when, whenOrigins }: Conditions): Conditions => ({ when, whenOrigins });

/** The `when` at `path` (one condition or a list), each condition located at its own value. */
function conditionsAt(loaded: LoadedYaml, path: YamlPath, value: unknown): Conditions {
  const when = asConditions(value);
  // locate([...path, i]) on a single condition (not a list) stops at the scalar itself.
  return { when, whenOrigins: when.map((_, i) => loaded.locate([...path, i])) };
}

/** `outer`'s conditions in front of the task's own, each keeping its location (Ansible merges them so). */
function withConditions(outer: Conditions, task: Task): Conditions {
  const own = task.whenOrigins ?? task.when.map(() => task.location);
  return { when: [...outer.when, ...task.when], whenOrigins: [...outer.whenOrigins, ...own] };
}

/** What a play sets for all of its tasks (Ansible's play keywords inherited by tasks). */
interface TaskDefaults {
  environment?: unknown;
  ignoreErrors?: boolean;
  ignoreUnreachable?: boolean;
  noLog?: boolean;
  checkMode?: boolean;
  runOnce?: boolean;
}

function findYaml(dir: string, base: string): string | undefined {
  for (const ext of ['.yaml', '.yml']) {
    const p = join(dir, base + ext);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * A role's file of one kind, in either layout: Ansible's KIND/main.yml (or .yaml, or no extension) or cairn's
 * flat KIND.yaml (or .yml). Both at once is ambiguous and refused.
 */
function roleFile(dir: string, kind: string): string | undefined {
  const flat = findYaml(dir, kind);
  const nested = ['main.yml', 'main.yaml', 'main']
    .map((n) => join(dir, kind, n))
    .find((p) => existsSync(p) && statSync(p).isFile());
  if (flat && nested)
    throw inputError(`role has both ${basename(flat)} and ${kind}/${basename(nested)}; keep one`, { file: dir });
  return flat ?? nested;
}

/** A folder that holds a role (in either layout), not just any folder of that name. */
function looksLikeRole(dir: string): boolean {
  return ['tasks', 'meta', 'handlers', 'defaults', 'vars'].some((k) => roleFile(dir, k) !== undefined);
}

/** A keyword's boolean as Ansible reads it, or an error at its file:line:col. */
function boolKeyword(loaded: LoadedYaml, value: unknown, path: YamlPath): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  const b = ansibleBool(value);
  if (b === undefined) {
    throw errorAt(loaded, path, `expected a boolean (true/false, yes/no, on/off, 1/0), got ${JSON.stringify(value)}`);
  }
  return b;
}

/** Where each key of the mapping `vars` (at `path` in `loaded`) is written: its key's file:line:col. */
function keyOrigins(loaded: LoadedYaml, path: YamlPath, vars: Vars): Map<string, SourceLocation> {
  return new Map(Object.keys(vars).map((key) => [key, loaded.locate([...path, key], 'key')]));
}

/** The play's defaults on a task that does not set them itself. */
function withDefaults(task: Task, d: TaskDefaults): Task {
  return {
    ...task,
    ignoreErrors: task.keywords?.includes('ignore_errors') ? task.ignoreErrors : (d.ignoreErrors ?? task.ignoreErrors),
    ignoreUnreachable: task.ignoreUnreachable ?? d.ignoreUnreachable,
    noLog: task.keywords?.includes('no_log') ? task.noLog : (d.noLog ?? task.noLog),
    checkMode: task.checkMode ?? d.checkMode,
    runOnce: task.keywords?.includes('run_once') ? task.runOnce : (d.runOnce ?? task.runOnce),
    environment: withEnvironment(d.environment, task.environment),
  };
}

/** An outer `environment` (play, block, include) before a task's own layers. */
function withEnvironment(outer: unknown, layers: unknown[] | undefined): unknown[] | undefined {
  return outer === undefined || outer === null ? layers : [outer, ...(layers ?? [])];
}

/** One use of a role in a play: its own copy of the tasks, carrying the role's parameters, tags and `when`. */
function roleInstance(expanded: ExpandedRole, tags: string[], defaults: TaskDefaults): Role {
  const { role, vars } = expanded;
  const instance: Role = { ...role, vars, varOrigins: expanded.origins, tags };
  const adapt = (t: Task): Task => {
    const own = withDefaults(
      { ...t, environment: [...(expanded.environment ?? []), ...(t.environment ?? [])] },
      defaults,
    );
    return {
      ...own,
      environment: own.environment?.length ? own.environment : undefined,
      ...withConditions(expanded, t),
      roleRef: instance,
    };
  };
  instance.tasks = role.tasks.map(adapt);
  instance.handlers = role.handlers.map(adapt);
  instance.verify = role.verify.map(adapt);
  return instance;
}

function asStringList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

function asConditions(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (typeof v === 'boolean' ? String(v) : String(v)));
}

/** The options Ansible takes out of a free-form command line (lib/ansible/parsing/splitter.py `parse_kv`). */
const RAW_PARAM_OPTIONS = new Set([
  'creates',
  'removes',
  'chdir',
  'executable',
  'warn',
  'stdin',
  'stdin_add_newline',
  'strip_empty_ends',
]);

/**
 * A free-form module's string (`command: iptables -F creates=/etc/x`): as Ansible's parse_kv with check_raw,
 * each whitespace-separated word (quotes and `{{ }}` kept whole) that is `option=value` for one of
 * RAW_PARAM_OPTIONS the module takes becomes that argument, wherever it stands; the rest is the command line,
 * as written.
 */
export function freeFormArgs(argName: string, schema: object, text: string): Record<string, unknown> {
  const props = (schema as { properties?: Record<string, unknown> }).properties ?? {};
  const words: Array<{ start: number; end: number }> = [];
  let start = -1;
  let quote = '';
  let jinja = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    if (c === undefined || (!quote && jinja === 0 && /\s/.test(c))) {
      if (start !== -1) words.push({ start, end: i });
      start = -1;
      continue;
    }
    if (start === -1) start = i;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '{' && (text[i + 1] === '{' || text[i + 1] === '%')) {
      jinja++;
      i++;
    } else if (jinja > 0 && (c === '}' || c === '%') && text[i + 1] === '}') {
      jinja--;
      i++;
    } else if (c === '"' || c === "'") quote = c;
  }
  const options: Record<string, string> = {};
  let rest = text;
  for (const word of [...words].reverse()) {
    const m = /^([a-z_]+)=([\s\S]*)$/.exec(text.slice(word.start, word.end));
    if (!m || !RAW_PARAM_OPTIONS.has(m[1]!) || !(m[1]! in props)) continue;
    const value = m[2]!;
    const quoted = value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]!);
    options[m[1]!] = quoted ? value.slice(1, -1) : value;
    let from = word.start;
    while (from > 0 && /[ \t]/.test(rest[from - 1]!)) from--;
    rest = rest.slice(0, from) + rest.slice(word.end);
  }
  return { [argName]: rest.trim() === '' ? rest : rest.replace(/^\s+/, ''), ...coerceKeyValueArgs(schema, options) };
}

/**
 * Ansible's `key=value key2="quoted value"` argument strings. An unquoted value may hold `{{ ... }}` with
 * spaces inside, as Ansible's splitter allows.
 */
export function parseKeyValueArgs(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  // A key may hold '-': Ansible's hyphenated aliases (systemd's daemon-reload) are written this way.
  const re = /\s*([A-Za-z_][A-Za-z0-9_-]*)=("((?:[^"\\]|\\.)*)"|'([^']*)'|((?:\{\{.*?\}\}|[^\s])*))/y;
  let pos = 0;
  while (pos < text.length) {
    if (/^\s*$/.test(text.slice(pos))) break;
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    out[m[1]!] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[4] !== undefined ? m[4] : m[5]!;
    pos = re.lastIndex;
  }
  return out;
}

/**
 * Strings from `key=value` arguments take the type the module's schema asks for (`update_cache=yes` is a
 * boolean, `timeout=5` a number), as Ansible converts by its argument spec.
 */
export function coerceKeyValueArgs(schema: object, args: Record<string, string>): Record<string, unknown> {
  const props = (schema as { properties?: Record<string, { type?: string | string[] }> }).properties ?? {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    const type = props[key]?.type;
    const types = Array.isArray(type) ? type : type ? [type] : [];
    if (value.includes('{{') || types.includes('string') || types.length === 0) out[key] = value;
    else if (types.includes('boolean') && /^(yes|true|on|1|no|false|off|0)$/i.test(value))
      out[key] = /^(yes|true|on|1)$/i.test(value);
    else if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(value))
      out[key] = Number(value);
    else out[key] = value;
  }
  return out;
}

/** ajv errors for a module's arguments, ignoring values that are still templates (checked after rendering). */
function moduleArgErrors(schema: object, args: Record<string, unknown>): ErrorObject[] {
  const validate = compileSchema(schema);
  if (validate(args)) return [];
  return (validate.errors ?? []).filter((err) => {
    const segs = err.instancePath.split('/').slice(1);
    let cur: unknown = args;
    for (const s of segs)
      cur = isPlainObject(cur) || Array.isArray(cur) ? (cur as Record<string, unknown>)[s] : undefined;
    return !(typeof cur === 'string' && cur.includes('{{'));
  });
}

export class PlaybookLoader {
  /** Roles loaded, by folder. */
  private readonly roles = new Map<string, Role>();
  private readonly rolesPath: string[];
  /** Ansible constructs read but not acted on ("file:line:col: ..."), for the command to print. */
  readonly warnings: string[] = [];
  private includeDepth = 0;
  /** The folder of the playbook being loaded (roles named by include_role are looked up from it). */
  private playbookDir = process.cwd();

  constructor(opts: LoadOptions) {
    this.rolesPath = opts.rolesPath;
  }

  loadPlaybook(path: string): Playbook {
    const file = resolve(path);
    const dir = dirname(file);
    return { path: file, dir, plays: this.loadPlays(file, []), warnings: this.warnings };
  }

  /** The plays of a playbook file, with `- import_playbook: other.yaml` entries replaced by that file's plays. */
  private loadPlays(file: string, importing: string[]): Play[] {
    const loaded = loadYamlFile(file, 'playbook');
    checkPlaybookShape(loaded);
    checkExpressions(loaded);
    validateAt(loaded, playbookSchema, 'playbook');
    const dir = dirname(file);
    const rawPlays = loaded.value as Array<Record<string, unknown>>;
    const plays: Play[] = [];
    rawPlays.forEach((raw, i) => {
      if (raw.import_playbook === undefined) {
        this.playbookDir = dir;
        plays.push(this.parsePlay(loaded, raw, i, dir));
        return;
      }
      const extra = Object.keys(raw).filter((k) => !['import_playbook', 'name', 'vars', 'tags'].includes(k));
      if (extra.length)
        throw errorAt(
          loaded,
          [i, extra[0]!],
          `unknown key "${extra[0]}" beside import_playbook (expected name, vars or tags)`,
          'key',
        );
      if (typeof raw.import_playbook !== 'string')
        throw errorAt(loaded, [i, 'import_playbook'], 'import_playbook must be the path of a playbook file');
      const target = resolve(dir, raw.import_playbook);
      if (target === file || importing.includes(target)) {
        throw errorAt(
          loaded,
          [i, 'import_playbook'],
          `playbook import cycle: ${[...importing, file, target].map((f) => f.replace(dir + '/', '')).join(' -> ')}`,
        );
      }
      if (!existsSync(target))
        throw errorAt(loaded, [i, 'import_playbook'], `imported playbook ${target} does not exist`);
      // vars and tags given with the import apply to every imported play (the play's own vars win).
      const importVars = isPlainObject(raw.vars) ? (raw.vars as Vars) : {};
      const importTags = asStringList(raw.tags);
      const importOrigins = keyOrigins(loaded, [i, 'vars'], importVars);
      plays.push(
        ...this.loadPlays(target, [...importing, file]).map((p) => ({
          ...p,
          vars: { ...importVars, ...p.vars },
          varOrigins: new Map([...importOrigins, ...(p.varOrigins ?? [])]),
          tags: [...importTags, ...p.tags],
        })),
      );
    });
    return plays;
  }

  /**
   * Where roles are looked for, in Ansible's order, then cairn's built-in roles last, so a user's role of the
   * same name always wins: the playbook's roles/, the roles path (ansible.cfg roles_path, ANSIBLE_ROLES_PATH,
   * CAIRN_ROLES_PATH), the playbook's own folder, then the built-in roles.
   */
  private searchPath(playbookDir: string): RoleSearchDir[] {
    const builtin = resolve(builtinRolesDir());
    const configured = this.rolesPath
      .filter((d) => resolve(d) !== builtin)
      .map((dir) => ({ dir, origin: 'roles_path' }));
    return [
      { dir: join(playbookDir, 'roles'), origin: "the playbook's roles/" },
      ...configured,
      { dir: playbookDir, origin: "the playbook's folder" },
      ...(this.rolesPath.some((d) => resolve(d) === builtin) ? [{ dir: builtin, origin: 'built-in' }] : []),
    ];
  }

  private parsePlay(loaded: LoadedYaml, raw: Record<string, unknown>, index: number, dir: string): Play {
    validateAt(loaded, playSchema, 'play', raw, [index]);
    const hostsPattern = Array.isArray(raw.hosts) ? (raw.hosts as string[]).join(',') : String(raw.hosts);
    checkHostPattern(loaded, hostsPattern, [index, 'hosts']);
    const location = loaded.locate([index]);
    const playBool = (key: string): boolean | undefined => boolKeyword(loaded, raw[key], [index, key]);
    for (const key of Object.keys(raw)) {
      const why = PLAY_KEYWORDS_WARNED[key];
      if (why !== undefined)
        this.warn(
          `play keyword "${key}" is not implemented by cairn and has no effect (${why})`,
          loaded.locate([index, key], 'key'),
        );
    }
    if (raw.become_method !== undefined && raw.become_method !== 'sudo') {
      throw errorAt(
        loaded,
        [index, 'become_method'],
        `become_method "${String(raw.become_method)}" is not supported: cairn becomes with sudo only (use become_method: sudo, or leave it out)`,
      );
    }
    if (raw.connection !== undefined && !['ssh', 'local', 'smart', 'paramiko'].includes(String(raw.connection))) {
      throw errorAt(
        loaded,
        [index, 'connection'],
        `connection "${String(raw.connection)}" is not supported: cairn connects with ssh or local`,
      );
    }
    const playTags = asStringList(raw.tags);
    const inherit: TaskDefaults = {
      environment: raw.environment,
      ignoreErrors: playBool('ignore_errors'),
      ignoreUnreachable: playBool('ignore_unreachable'),
      noLog: playBool('no_log'),
      checkMode: playBool('check_mode'),
      runOnce: playBool('run_once'),
    };
    const roles: Role[] = [];
    const dependencyInstances = new Set<Role>();
    const last = <T>(list: T[]): T | undefined => list[list.length - 1];
    const rawRoles = (raw.roles as unknown[] | undefined) ?? [];
    rawRoles.forEach((ref, i) => {
      const entry = this.roleEntry(loaded, ref, [index, 'roles', i]);
      const expandedList = this.expandRole(entry, this.searchPath(dir), [], loaded.locate([index, 'roles', i]), dir);
      for (const expanded of expandedList) {
        const tags = [...playTags, ...expanded.tags];
        const key = `${expanded.role.dir}\0${JSON.stringify(expanded.vars)}`;
        const earlier = roles.find((r) => r.dir === expanded.role.dir && `${r.dir}\0${JSON.stringify(r.vars)}` === key);
        // As Ansible: a role already in the play with the same parameters runs once (unless its meta says
        // allow_duplicates); with other parameters it runs again.
        if (earlier && !expanded.role.allowDuplicates) continue;
        // Listed itself after it already came in as a parameterless dependency of a role before it: it runs
        // once, where it first came, with the parameters given where it is listed (cairn's rule, kept).
        const isListed = expanded === last(expandedList);
        const asDependency = roles.findIndex(
          (r) => r.dir === expanded.role.dir && dependencyInstances.has(r) && !Object.keys(r.vars).length,
        );
        if (isListed && asDependency >= 0) {
          roles[asDependency] = roleInstance(expanded, tags, inherit);
          continue;
        }
        const instance = roleInstance(expanded, tags, inherit);
        if (!isListed) dependencyInstances.add(instance);
        roles.push(instance);
      }
    });
    const taskSections = ['pre_tasks', 'tasks', 'post_tasks'] as const;
    const tasks: Task[] = [];
    for (const section of taskSections) {
      if (raw[section])
        tasks.push(
          ...this.parseTaskList(loaded, raw[section], [index, section], '', playTags, false).map((t) =>
            withDefaults(t, inherit),
          ),
        );
    }
    const handlers = raw.handlers
      ? this.parseTaskList(loaded, raw.handlers, [index, 'handlers'], '', playTags, true).map((t) =>
          withDefaults(t, inherit),
        )
      : [];
    const serial =
      raw.serial === undefined
        ? []
        : Array.isArray(raw.serial)
          ? (raw.serial as Array<number | string>)
          : [raw.serial as number | string];
    let vars: Vars = isPlainObject(raw.vars) ? (raw.vars as Vars) : {};
    const varOrigins = keyOrigins(loaded, [index, 'vars'], vars);
    const varsFiles =
      raw.vars_files === undefined
        ? []
        : Array.isArray(raw.vars_files)
          ? (raw.vars_files as Array<string | string[]>)
          : [raw.vars_files as string];
    for (const [k, entry] of varsFiles.entries()) {
      // A list inside vars_files is Ansible's "first of these that exists".
      const candidates = Array.isArray(entry) ? entry : [entry];
      const templated = candidates.filter((c) => c.includes('{{'));
      if (templated.length === candidates.length) {
        this.warn(
          `vars_files entry ${JSON.stringify(entry)} is templated; cairn reads vars_files before any host is known, so it is not read`,
          loaded.locate([index, 'vars_files', k]),
        );
        continue;
      }
      const p = candidates
        .filter((c) => !c.includes('{{'))
        .map((c) => resolve(dir, c))
        .find((c) => existsSync(c));
      if (!p)
        throw errorAt(
          loaded,
          [index, 'vars_files', k],
          `vars file ${JSON.stringify(entry)} not found (looked for ${candidates.map((c) => resolve(dir, c)).join(', ')})`,
        );
      const vl = loadYamlFile(p, 'vars file');
      validateAt(vl, defaultsSchema, 'vars file');
      checkExpressions(vl);
      const fileVars = (vl.value as Vars | null) ?? {};
      vars = { ...vars, ...fileVars };
      for (const [key, where] of keyOrigins(vl, [], fileVars)) varOrigins.set(key, where);
    }
    const prompts = ((raw.vars_prompt as Array<Record<string, unknown>> | undefined) ?? []).map((p, k) => ({
      name: String(p.name),
      prompt: typeof p.prompt === 'string' ? p.prompt : String(p.name),
      default: p.default,
      private: boolKeyword(loaded, p.private, [index, 'vars_prompt', k, 'private']) ?? true,
    }));
    const port = raw.port === undefined ? undefined : Number(raw.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
      throw errorAt(loaded, [index, 'port'], 'port must be 1..65535');
    return {
      name: typeof raw.name === 'string' ? raw.name : hostsPattern,
      hosts: hostsPattern,
      roles,
      tasks,
      handlers,
      vars,
      varOrigins,
      serial,
      maxFailPercentage: raw.max_fail_percentage as number | undefined,
      anyErrorsFatal: playBool('any_errors_fatal') === true,
      strategy: raw.strategy === 'linear' ? 'linear' : raw.strategy === undefined ? 'free' : 'free',
      gatherFacts: playBool('gather_facts') !== false,
      become: playBool('become'),
      becomeUser: raw.become_user as string | undefined,
      remoteUser: raw.remote_user as string | undefined,
      connection: raw.connection as string | undefined,
      port,
      varsPrompt: prompts.length ? prompts : undefined,
      tags: playTags,
      location,
      hostsLocation: loaded.locate([index, 'hosts'], 'value'),
    };
  }

  private warn(message: string, where: SourceLocation): void {
    const text = `${formatLocation(where)}: ${message}`;
    if (!this.warnings.includes(text)) this.warnings.push(text);
  }

  /** A role entry of a play or of a meta dependency list, with its parameters. */
  private roleEntry(loaded: LoadedYaml, ref: unknown, path: YamlPath): RoleEntry {
    if (typeof ref === 'string') return { name: ref, vars: {}, origins: new Map(), tags: [], ...NO_CONDITIONS };
    const raw = ref as Record<string, unknown>;
    if (typeof raw.role !== 'string' && typeof raw.name !== 'string') {
      const near = closestNames(Object.keys(raw)[0] ?? '', ['role', 'name']);
      const hint = near.length ? ` (is "${Object.keys(raw)[0]}" a misspelt "${near[0]}"?)` : '';
      throw errorAt(
        loaded,
        path,
        `role entry names no role: expected "role: NAME" (or "name: NAME") beside its parameters${hint}`,
      );
    }
    const name = String(raw.role ?? raw.name);
    const params: Vars = {};
    for (const [key, value] of Object.entries(raw)) {
      if (ROLE_ENTRY_KEYWORDS.has(key)) continue;
      if (key === 'name' && raw.role === undefined) continue;
      params[key] = value;
    }
    const entryVars = isPlainObject(raw.vars) ? (raw.vars as Vars) : {};
    const vars: Vars = { ...entryVars, ...params };
    const origins = keyOrigins(loaded, [...path, 'vars'], entryVars);
    for (const [key, where] of keyOrigins(loaded, path, params)) origins.set(key, where);
    const environment =
      raw.environment === undefined || raw.environment === null ? {} : { environment: [raw.environment] };
    return {
      name,
      vars,
      origins,
      tags: asStringList(raw.tags),
      ...conditionsAt(loaded, [...path, 'when'], raw.when),
      ...environment,
    };
  }

  /** The role and its dependencies (with their parameters), dependencies first. Cycles are an error naming the chain. */
  private expandRole(
    entry: RoleEntry,
    search: RoleSearchDir[],
    stack: string[],
    where: SourceLocation,
    playbookDir: string,
  ): ExpandedRole[] {
    const role = this.loadRole(entry.name, search, where, playbookDir);
    if (stack.includes(role.dir)) {
      const names = [...stack, role.dir].map((d) => basename(d));
      const chain = names.slice(names.indexOf(basename(role.dir))).join(' -> ');
      throw inputError(
        `cyclic role dependency: ${chain} (a role cannot depend on itself, directly or through other roles)`,
        where,
        snippetAt(where),
      );
    }
    const out: ExpandedRole[] = [];
    const metaFile = roleFile(role.dir, 'meta');
    const meta = metaFile && role.dependencies.length ? loadYamlFile(metaFile, 'role meta') : undefined;
    const rawDeps = ((meta?.value as { dependencies?: unknown[] } | null)?.dependencies ?? []) as unknown[];
    rawDeps.forEach((dep, i) => {
      const depEntry = meta
        ? this.roleEntry(meta, dep, ['dependencies', i])
        : { name: String(dep), vars: {}, origins: new Map(), tags: [], ...NO_CONDITIONS };
      const depWhere = meta ? meta.locate(['dependencies', i]) : where;
      for (const r of this.expandRole(depEntry, search, [...stack, role.dir], depWhere, playbookDir)) {
        const tagged = {
          ...r,
          tags: [...entry.tags, ...r.tags],
          when: [...entry.when, ...r.when],
          whenOrigins: [...entry.whenOrigins, ...r.whenOrigins],
          environment: [...(entry.environment ?? []), ...(r.environment ?? [])],
        };
        if (!out.some((o) => o.role.dir === r.role.dir && JSON.stringify(o.vars) === JSON.stringify(r.vars)))
          out.push(tagged);
      }
    });
    out.push({
      role,
      vars: entry.vars,
      origins: entry.origins,
      tags: entry.tags,
      ...pickConditions(entry),
      environment: entry.environment ?? [],
    });
    return out;
  }

  private findRoleDir(name: string, search: RoleSearchDir[]): RoleSearchDir | undefined {
    for (const base of search) {
      const dir = join(base.dir, name);
      try {
        if (statSync(dir).isDirectory() && looksLikeRole(dir)) return { dir, origin: base.origin };
      } catch {
        // not in this folder; try the next
      }
    }
    return undefined;
  }

  loadRole(name: string, search: RoleSearchDir[] | string[], where: SourceLocation, playbookDir?: string): Role {
    const dirs: RoleSearchDir[] = search.map((s) => (typeof s === 'string' ? { dir: s, origin: 'roles_path' } : s));
    let found: RoleSearchDir | undefined;
    if (name.includes('/')) {
      // Ansible takes a path as a role name: relative to the playbook's folder.
      const dir = resolve(playbookDir ?? process.cwd(), name);
      if (!existsSync(dir) || !statSync(dir).isDirectory())
        throw inputError(`role "${name}" not found (no folder ${dir})`, where, snippetAt(where));
      found = { dir, origin: 'a path' };
    } else {
      if (!/^[A-Za-z0-9_.-]+$/.test(name) || /^\.+$/.test(name)) {
        throw inputError(
          `invalid role name ${JSON.stringify(name)} (expected letters, digits, "_", "." and "-": the name of a folder under roles/)`,
          where,
          snippetAt(where),
        );
      }
      if (isQualifiedName(name)) {
        throw inputError(
          `role "${name}" is a collection role; cairn does not install Ansible collections (copy the role into the playbook's roles/ folder and name it "${name.split('.').pop()}")`,
          where,
          snippetAt(where),
        );
      }
      found = this.findRoleDir(name, dirs);
    }
    if (!found) {
      const known = dirs.flatMap((base) => listFolders(base.dir));
      const near = closestNames(name, known);
      const hint = near.length ? `; did you mean ${near.map((n) => `"${n}"`).join(' or ')}?` : '';
      throw inputError(
        `role "${name}" not found${hint} (looked in: ${dirs.map((d) => d.dir).join(', ')})`,
        where,
        snippetAt(where),
      );
    }
    const dir = found.dir;
    const cached = this.roles.get(dir);
    if (cached) return cached;
    const roleName = basename(dir);
    const files: Partial<Record<(typeof ROLE_FILES)[number], LoadedYaml>> = {};
    for (const base of ROLE_FILES) {
      const p = roleFile(dir, base);
      if (p) files[base] = loadYamlFile(p, `role ${base} file`);
      if (p && base !== 'meta') checkExpressions(files[base]!);
    }
    if (!files.tasks && !files.meta) {
      throw inputError(
        `role "${roleName}" has no tasks (looked for tasks/main.yml, tasks/main.yaml, tasks.yaml, tasks.yml)`,
        { file: dir },
      );
    }
    let dependencies: string[] = [];
    let allowDuplicates = false;
    if (files.meta) {
      validateAt(files.meta, metaSchema, 'role meta');
      const metaValue = (files.meta.value as { dependencies?: unknown[]; allow_duplicates?: unknown } | null) ?? {};
      const deps = (metaValue.dependencies ?? []) as unknown[];
      dependencies = deps.map((d) =>
        typeof d === 'string'
          ? d
          : String((d as { role?: string; name?: string }).role ?? (d as { name?: string }).name),
      );
      allowDuplicates = boolKeyword(files.meta, metaValue.allow_duplicates, ['allow_duplicates']) ?? false;
    }
    let defaults: Vars = {};
    if (files.defaults) {
      validateAt(files.defaults, defaultsSchema, 'role defaults');
      defaults = (files.defaults.value as Vars | null) ?? {};
    }
    let roleVars: Vars = {};
    if (files.vars) {
      validateAt(files.vars, defaultsSchema, 'role vars');
      roleVars = (files.vars.value as Vars | null) ?? {};
    }
    const defaultOrigins = files.defaults ? keyOrigins(files.defaults, [], defaults) : undefined;
    const roleVarOrigins = files.vars ? keyOrigins(files.vars, [], roleVars) : undefined;
    let schema: object | undefined;
    const schemaFile = join(dir, 'schema.json');
    if (existsSync(schemaFile)) schema = loadRoleSchema(schemaFile);
    const tasks = files.tasks ? this.parseTaskList(files.tasks, files.tasks.value, [], roleName, [], false) : [];
    const handlers = files.handlers
      ? this.parseTaskList(files.handlers, files.handlers.value, [], roleName, [], true)
      : [];
    const verify = files.verify ? this.parseTaskList(files.verify, files.verify.value, [], roleName, [], false) : [];
    const role: Role = {
      name: roleName,
      dir,
      defaults,
      roleVars,
      defaultOrigins,
      roleVarOrigins,
      tasks,
      handlers,
      verify,
      dependencies,
      schema,
      tags: [],
      vars: {},
      origin: found.origin,
      allowDuplicates,
    };
    this.roles.set(dir, role);
    return role;
  }

  parseTaskList(
    loaded: LoadedYaml,
    value: unknown,
    prefix: YamlPath,
    role: string,
    inheritedTags: string[],
    handlers: boolean,
  ): Task[] {
    validateAt(loaded, taskListSchema, handlers ? 'handler list' : 'task list', value, prefix);
    const list = (value as Array<Record<string, unknown>> | null) ?? [];
    return list.flatMap((raw, i) => this.parseTaskOrStatic(loaded, raw, [...prefix, i], role, inheritedTags, handlers));
  }

  /**
   * Ansible's constructs that stand for a list of tasks. A `block` without rescue/always is its tasks with the
   * block's keywords on each; with them it is a block task the engine runs (Ansible's error handling).
   * import_tasks and include_tasks of a file named without `{{ }}` and without a loop are that file's tasks
   * with the include's keywords; an include_tasks in a loop or with a templated name is an include task run
   * per host. import_role/include_role likewise; include_vars and meta are tasks the engine runs itself.
   */
  private parseTaskOrStatic(
    loaded: LoadedYaml,
    raw: Record<string, unknown>,
    path: YamlPath,
    role: string,
    inheritedTags: string[],
    handlers: boolean,
  ): Task[] {
    if (!isPlainObject(raw)) return [this.parseTask(loaded, raw, path, role, inheritedTags, handlers)];
    raw = actionForm(loaded, raw, path);
    const inheritFrom = (tasks: Task[], keys: Record<string, unknown>, at: YamlPath): Task[] => {
      const conditions = conditionsAt(loaded, [...at, 'when'], keys.when);
      const vars = isPlainObject(keys.vars) ? (keys.vars as Vars) : undefined;
      const varOrigins = vars && keyOrigins(loaded, [...at, 'vars'], vars);
      const bool = (k: string) => (keys[k] === undefined ? undefined : boolKeyword(loaded, keys[k], [...at, k]));
      const become = bool('become');
      const ignoreErrors = bool('ignore_errors');
      const noLog = bool('no_log');
      const checkMode = bool('check_mode');
      const ignoreUnreachable = bool('ignore_unreachable');
      const runOnce = bool('run_once');
      const apply = (t: Task): Task => ({
        ...t,
        block: t.block && {
          block: t.block.block.map(apply),
          rescue: t.block.rescue.map(apply),
          always: t.block.always.map(apply),
        },
        ...(t.block ? NO_CONDITIONS : withConditions(conditions, t)),
        vars: vars ? { ...vars, ...(t.vars ?? {}) } : t.vars,
        varOrigins: varOrigins ? new Map([...varOrigins, ...(t.varOrigins ?? [])]) : t.varOrigins,
        become: t.become ?? become,
        becomeUser: t.becomeUser ?? (keys.become_user as string | undefined),
        ignoreErrors: t.keywords?.includes('ignore_errors') ? t.ignoreErrors : (ignoreErrors ?? t.ignoreErrors),
        noLog: t.keywords?.includes('no_log') ? t.noLog : (noLog ?? t.noLog),
        checkMode: t.checkMode ?? checkMode,
        ignoreUnreachable: t.ignoreUnreachable ?? ignoreUnreachable,
        runOnce: t.keywords?.includes('run_once') ? t.runOnce : (runOnce ?? t.runOnce),
        delegateTo: t.delegateTo ?? (keys.delegate_to as string | undefined),
        environment: withEnvironment(keys.environment, t.environment),
        notify: t.notify.length || keys.notify === undefined ? t.notify : asStringList(keys.notify),
      });
      return tasks.map(apply);
    };
    if ('block' in raw) return this.parseBlock(loaded, raw, path, role, inheritedTags, handlers, inheritFrom);
    const key = (names: string[]) => names.flatMap((n) => [n, `ansible.builtin.${n}`]).find((k) => k in raw);
    const roleKey = key(['import_role', 'include_role']);
    if (roleKey !== undefined) return this.parseRoleInclude(loaded, raw, path, roleKey, inheritedTags, inheritFrom);
    const includeKey = key(['import_tasks', 'include_tasks', 'include']);
    if (includeKey === undefined) return [this.parseTask(loaded, raw, path, role, inheritedTags, handlers)];
    const spec = raw[includeKey];
    const fileName =
      typeof spec === 'string' ? spec : isPlainObject(spec) && typeof spec.file === 'string' ? spec.file : undefined;
    if (fileName === undefined)
      throw errorAt(loaded, [...path, includeKey], `${includeKey} takes the name of a task file`);
    const isImport = includeKey.endsWith('import_tasks');
    const looped = raw.loop !== undefined || Object.keys(raw).some((k) => k.startsWith('with_'));
    const templated = fileName.includes('{{');
    if (isImport && (templated || looped)) {
      throw errorAt(
        loaded,
        [...path, includeKey],
        `import_tasks is read when the playbook loads, so its file name cannot be templated and it cannot loop (use include_tasks for that)`,
      );
    }
    const here = dirname(loaded.file);
    const tags = [...inheritedTags, ...asStringList(raw.tags)];
    const loadFile = (): Task[] => {
      const candidates = [join(here, fileName), join(dirname(here), 'tasks', fileName), join(dirname(here), fileName)];
      const file = candidates.find((c) => existsSync(c) && statSync(c).isFile());
      if (!file)
        throw errorAt(
          loaded,
          [...path, includeKey],
          `task file "${fileName}" not found (looked for ${candidates.join(', ')})`,
        );
      return this.loadTaskFile(file, role, isImport || !looped ? tags : [], handlers, () =>
        errorAt(loaded, [...path, includeKey], `task files include each other more than 32 deep (an include cycle?)`),
      );
    };
    if (!looped && !templated) return inheritFrom(loadFile(), raw, path);
    // Run time: the include is a task of its own (its when, loop and tags decide whether and how often the
    // file's tasks run), as Ansible's include_tasks.
    const include: IncludeSpec = {
      kind: 'tasks',
      file: fileName,
      baseDir: here,
      playbookDir: this.playbookDir,
      tags: [],
      tasks: templated ? undefined : loadFile(),
    };
    const task = this.parseTask(loaded, { ...raw, [includeKey]: null }, path, role, inheritedTags, handlers, {
      module: 'include_tasks',
      args: { file: fileName },
      include,
    });
    return [task];
  }

  /**
   * include_tasks with a templated file name, at run time: the rendered name found beside the including file
   * (or in the role's tasks/), loaded and checked like any task file; errors are the task's failure.
   */
  loadIncludedTasks(fileName: string, spec: IncludeSpec, role: string, where: SourceLocation): Task[] {
    this.playbookDir = spec.playbookDir;
    const here = spec.baseDir;
    const candidates = isAbsoluteName(fileName)
      ? [fileName]
      : [join(here, fileName), join(dirname(here), 'tasks', fileName), join(dirname(here), fileName)];
    const file = candidates.find((c) => existsSync(c) && statSync(c).isFile());
    if (!file)
      throw inputError(`include_tasks: task file "${fileName}" not found (looked for ${candidates.join(', ')})`, where);
    return this.loadTaskFile(file, role, [], false, () =>
      inputError('task files include each other more than 32 deep (an include cycle?)', where),
    );
  }

  /** The tasks of one task file, parsed as if written where the include is (cycles end at 32 deep). */
  private loadTaskFile(file: string, role: string, tags: string[], handlers: boolean, tooDeep: () => Error): Task[] {
    this.includeDepth++;
    try {
      if (this.includeDepth > 32) throw tooDeep();
      const included = loadYamlFile(file, 'task file');
      checkExpressions(included);
      return this.parseTaskList(included, included.value, [], role, tags, handlers);
    } finally {
      this.includeDepth--;
    }
  }

  /** block/rescue/always: a plain block is its tasks; with rescue or always, a block task for the engine. */
  private parseBlock(
    loaded: LoadedYaml,
    raw: Record<string, unknown>,
    path: YamlPath,
    role: string,
    inheritedTags: string[],
    handlers: boolean,
    inheritFrom: (tasks: Task[], keys: Record<string, unknown>, at: YamlPath) => Task[],
  ): Task[] {
    const unknown = Object.keys(raw).find((k) => !BLOCK_KEYWORDS.has(k));
    if (unknown !== undefined) {
      const near = closestNames(unknown, [...BLOCK_KEYWORDS]);
      const words = BLOCK_UNSUPPORTED[unknown];
      throw errorAt(
        loaded,
        [...path, unknown],
        words
          ? `block keyword "${unknown}" is not supported by cairn (${words})`
          : `unknown block keyword "${unknown}"${near.length ? ` (did you mean "${near[0]}"?)` : ''}; a block has block, rescue, always and the keywords its tasks inherit`,
        'key',
      );
    }
    if (handlers && (raw.rescue !== undefined || raw.always !== undefined))
      throw errorAt(loaded, [...path, 'block'], 'a handler cannot be a block with rescue or always', 'key');
    const tags = [...inheritedTags, ...asStringList(raw.tags)];
    const list = (k: 'block' | 'rescue' | 'always') =>
      raw[k] === undefined || raw[k] === null
        ? []
        : inheritFrom(this.parseTaskList(loaded, raw[k], [...path, k], role, tags, handlers), raw, path);
    const inner = list('block');
    if (raw.rescue === undefined && raw.always === undefined) return inner;
    const block: BlockSpec = { block: inner, rescue: list('rescue'), always: list('always') };
    const location = loaded.locate(path);
    const task: Task = {
      name: typeof raw.name === 'string' ? raw.name : 'block',
      module: 'block',
      args: {},
      when: [],
      loopVar: 'item',
      notify: [],
      tags,
      runOnce: false,
      ignoreErrors: false,
      noLog: false,
      role,
      location,
      listen: [],
      block,
      keywords: Object.keys(raw),
    };
    return [task];
  }

  /**
   * import_role and include_role (tasks_from, vars_from, defaults_from, handlers_from, apply's keywords). A role
   * named without `{{ }}` is loaded now (its errors are the playbook's errors); include_role in a loop runs its
   * tasks once per item, like include_tasks.
   */
  private parseRoleInclude(
    loaded: LoadedYaml,
    raw: Record<string, unknown>,
    path: YamlPath,
    roleKey: string,
    inheritedTags: string[],
    inheritFrom: (tasks: Task[], keys: Record<string, unknown>, at: YamlPath) => Task[],
  ): Task[] {
    const at: YamlPath = [...path, roleKey];
    const spec = raw[roleKey];
    if (!isPlainObject(spec) || typeof spec.name !== 'string')
      throw errorAt(loaded, at, `${roleKey} takes a mapping with the role's name (name: ROLE, tasks_from: FILE, ...)`);
    const allowed = ['name', 'tasks_from', 'vars_from', 'defaults_from', 'handlers_from', 'apply', 'public'];
    const ignoredArgs = ['allow_duplicates', 'rolespec_validate'];
    for (const k of Object.keys(spec)) {
      if (ignoredArgs.includes(k)) continue;
      if (!allowed.includes(k))
        throw errorAt(
          loaded,
          [...at, k],
          `${roleKey}: unknown argument "${k}" (expected one of: ${[...allowed, ...ignoredArgs].join(', ')})`,
          'key',
        );
    }
    const isImport = roleKey.endsWith('import_role');
    const looped = raw.loop !== undefined || Object.keys(raw).some((k) => k.startsWith('with_'));
    const name = spec.name;
    const fromArg = (k: string) => {
      const v = spec[k];
      if (v !== undefined && (typeof v !== 'string' || v.includes('{{')))
        throw errorAt(loaded, [...at, k], `${roleKey}: ${k} must be a file name without {{ }} in cairn`);
      return v as string | undefined;
    };
    const tasksFrom = fromArg('tasks_from');
    const varsFrom = fromArg('vars_from');
    const defaultsFrom = fromArg('defaults_from');
    const handlersFrom = fromArg('handlers_from');
    if (name.includes('{{'))
      throw errorAt(
        loaded,
        [...at, 'name'],
        `${roleKey} with a templated role name is not supported: cairn loads every role before the run (name the role, and put a when: on the include)`,
      );
    if (isImport && looped)
      throw errorAt(loaded, at, 'import_role is read when the playbook loads, so it cannot loop (use include_role)');
    const where = loaded.locate(at);
    const base = this.loadRole(name, this.searchPath(this.playbookDir), where, this.playbookDir);
    const roleVarsFile = (kind: 'vars' | 'defaults', file: string | undefined): Vars | undefined => {
      if (file === undefined) return undefined;
      const p = findRoleSubfile(base.dir, kind, file);
      if (!p) throw errorAt(loaded, [...at, `${kind}_from`], `role "${name}" has no ${kind}/${file}`);
      const vl = loadYamlFile(p, `role ${kind} file`);
      validateAt(vl, defaultsSchema, `role ${kind} file`);
      checkExpressions(vl);
      return (vl.value as Vars | null) ?? {};
    };
    const taskFile = (kind: 'tasks' | 'handlers', file: string | undefined, fallback: Task[]): Task[] => {
      if (file === undefined) return fallback;
      const p = findRoleSubfile(base.dir, kind, file);
      if (!p) throw errorAt(loaded, [...at, `${kind}_from`], `role "${name}" has no ${kind}/${file}`);
      return this.loadTaskFile(p, base.name, [], kind === 'handlers', () =>
        errorAt(loaded, at, 'task files include each other more than 32 deep (an include cycle?)'),
      );
    };
    const tags = [...inheritedTags, ...asStringList(raw.tags)];
    const instance: Role = {
      ...base,
      defaults: { ...base.defaults, ...(roleVarsFile('defaults', defaultsFrom) ?? {}) },
      roleVars: { ...base.roleVars, ...(roleVarsFile('vars', varsFrom) ?? {}) },
      vars: {},
      tags: [],
      verify: [],
    };
    // apply: keywords for every task of the role (include_role only, as in Ansible).
    const apply = isPlainObject(spec.apply) ? spec.apply : {};
    const adapt = (t: Task): Task => ({
      ...t,
      roleRef: instance,
      tags: [...tags, ...asStringList(apply.tags), ...t.tags],
    });
    instance.tasks = inheritFrom(taskFile('tasks', tasksFrom, base.tasks), apply, [...at, 'apply']).map(adapt);
    instance.handlers = taskFile('handlers', handlersFrom, base.handlers).map((t) => ({ ...t, roleRef: instance }));
    if (!looped) return inheritFrom(instance.tasks, raw, path);
    const include: IncludeSpec = {
      kind: 'role',
      file: name,
      tasksFrom,
      varsFrom,
      defaultsFrom,
      baseDir: dirname(loaded.file),
      playbookDir: this.playbookDir,
      tags: [],
      tasks: instance.tasks,
      role: instance,
    };
    return [
      this.parseTask(loaded, { ...raw, [roleKey]: null }, path, base.name, inheritedTags, false, {
        module: 'include_role',
        args: { name },
        include,
      }),
    ];
  }

  private parseTask(
    loaded: LoadedYaml,
    raw: Record<string, unknown>,
    path: YamlPath,
    role: string,
    inheritedTags: string[],
    handler: boolean,
    special?: { module: string; args: Record<string, unknown>; include?: IncludeSpec },
  ): Task {
    const location = loaded.locate(path);
    const what = handler ? 'handler' : 'task';
    const moduleKeys = special ? [] : Object.keys(raw).filter((k) => !TASK_KEYWORDS.has(k) && !k.startsWith('with_'));
    const unsupportedKey = Object.keys(raw).find((k) => TASK_KEYWORDS_UNSUPPORTED[k] !== undefined);
    if (unsupportedKey !== undefined)
      throw errorAt(
        loaded,
        [...path, unsupportedKey],
        `task keyword "${unsupportedKey}" is not supported by cairn: ${TASK_KEYWORDS_UNSUPPORTED[unsupportedKey]}`,
        'key',
      );
    if (special) {
      // The include's own keywords (when, loop, tags, vars...) are read below like any task's.
    } else if (moduleKeys.length === 0) {
      throw errorAt(loaded, path, `${what} names no module (expected one of: ${moduleNames().join(', ')})`);
    }
    if (moduleKeys.length > 1) {
      const isModule = (k: string) =>
        Boolean(getModule(shortModuleName(k))) ||
        ENGINE_ACTIONS.has(shortModuleName(k)) ||
        isForeignModule(k, shortModuleName(k));
      const unknown = moduleKeys.filter((k) => !isModule(k));
      if (unknown.length === 0) {
        throw errorAt(
          loaded,
          [...path, moduleKeys[1]!],
          `${what} names two modules, "${moduleKeys[0]}" and "${moduleKeys[1]}"; a ${what} runs exactly one module (split it in two)`,
          'key',
        );
      }
      const key = unknown[0]!;
      const keywordHint = closestNames(key, TASK_KEYWORDS);
      const hint = keywordHint.length
        ? ` (did you mean ${keywordHint.map((n) => `"${n}"`).join(' or ')}?)`
        : `${suggestion(key, moduleNames())}; a ${what} has one module (here "${moduleKeys.find(isModule) ?? moduleKeys[0]}") and keywords from: ${[...TASK_KEYWORDS].join(', ')}`;
      throw errorAt(loaded, [...path, key], `unknown ${what} keyword "${key}"${hint}`, 'key');
    }
    const moduleKey = special ? special.module : moduleKeys[0]!;
    const moduleName = special ? special.module : shortModuleName(moduleKey);
    for (const [key, schema] of Object.entries(taskKeywordSchemas)) {
      if (raw[key] !== undefined) validateAt(loaded, schema, `${what} keyword "${key}"`, raw[key], [...path, key]);
    }
    let args: Record<string, unknown>;
    let include = special?.include;
    const rawArgs = special ? undefined : raw[moduleKey];
    if (special) {
      args = special.args;
    } else if (moduleName === 'include_vars') {
      args = includeVarsArgs(loaded, rawArgs, [...path, moduleKey]);
      include = {
        kind: 'vars',
        file: String(args.file ?? args.dir ?? ''),
        baseDir: dirname(loaded.file),
        playbookDir: this.playbookDir,
        tags: [],
      };
    } else if (moduleName === 'meta') {
      args = { action: metaAction(loaded, rawArgs, [...path, moduleKey]) };
    } else if (moduleName === 'set_fact') {
      if (!isPlainObject(rawArgs))
        throw errorAt(loaded, [...path, moduleKey], 'set_fact expects a mapping of variable names to values');
      args = rawArgs;
    } else {
      const module =
        getModule(moduleName) ?? (isForeignModule(moduleKey, moduleName) ? foreignModule(moduleName) : undefined);
      if (module?.foreign) this.warn(module.foreign, location);
      if (!module) {
        const keyword = closestNames(moduleName, TASK_KEYWORDS);
        const message = keyword.length
          ? `unknown module "${moduleKey}"${suggestion(moduleName, [...TASK_KEYWORDS])}`
          : unknownModuleMessage(moduleKey, moduleName, moduleNames());
        throw errorAt(loaded, [...path, moduleKey], message, 'key');
      }
      if (rawArgs === null || rawArgs === undefined) args = {};
      else if (typeof rawArgs === 'string') {
        if (module.freeFormArg) args = freeFormArgs(module.freeFormArg, module.argsSchema, rawArgs);
        else {
          const kv = parseKeyValueArgs(rawArgs);
          if (!kv)
            throw errorAt(
              loaded,
              [...path, moduleKey],
              `module "${moduleName}" takes a mapping of arguments (or key=value pairs), got ${JSON.stringify(rawArgs)}`,
            );
          args = coerceKeyValueArgs(module.argsSchema, kv);
        }
      } else if (isPlainObject(rawArgs)) args = { ...rawArgs };
      else
        throw errorAt(
          loaded,
          [...path, moduleKey],
          `arguments of module "${moduleName}" must be a mapping, got ${Array.isArray(rawArgs) ? 'a list' : typeof rawArgs}`,
        );
      if (isPlainObject(raw.args)) args = { ...(raw.args as Record<string, unknown>), ...args };
      for (const [alias, name] of Object.entries(module.argAliases ?? {})) {
        if (!(alias in args)) continue;
        // The alias's own key when it is written in the module's mapping, else the module key.
        const at: YamlPath =
          isPlainObject(rawArgs) && alias in rawArgs ? [...path, moduleKey, alias] : [...path, moduleKey];
        const twice = [
          name,
          ...Object.keys(module.argAliases ?? {}).filter((a) => a !== alias && module.argAliases![a] === name),
        ].filter((k) => k in args);
        if (twice.length)
          throw errorAt(
            loaded,
            at,
            `module "${moduleName}": "${alias}" is Ansible's alias of "${name}", and "${twice[0]}" is given too; keep one`,
            'key',
          );
        args[name] = args[alias];
        delete args[alias];
      }
      // Ansible converts by the argument spec whatever the YAML type ("yes" is a boolean, "5" an integer);
      // after the aliases, so `daemon-reload=true` converts as daemon_reload.
      const strings = Object.fromEntries(
        Object.entries(args).filter((e): e is [string, string] => typeof e[1] === 'string'),
      );
      args = { ...args, ...coerceKeyValueArgs(module.argsSchema, strings) };
      const errors = moduleArgErrors(module.argsSchema, args);
      if (errors.length) {
        const argPath: YamlPath = [...path, moduleKey];
        const d = describeAjvErrors(errors, args, `module "${moduleName}"`, typeof rawArgs === 'string' ? [] : argPath);
        const errPath = typeof rawArgs === 'string' ? argPath : d.path;
        throw errorAt(
          loaded,
          errPath,
          `module "${moduleName}": ${d.message}`,
          typeof rawArgs === 'string' ? 'value' : d.which,
        );
      }
    }
    const { loopValue, loopKind } = loopOf(loaded, raw, path);
    const loopControl =
      (raw.loop_control as
        { loop_var?: string; index_var?: string; label?: string; pause?: number; extended?: boolean } | undefined) ??
      {};
    const changedWhen =
      raw.changed_when === undefined
        ? undefined
        : typeof raw.changed_when === 'boolean'
          ? raw.changed_when
          : asConditions(raw.changed_when);
    const failedWhen =
      raw.failed_when === undefined
        ? undefined
        : typeof raw.failed_when === 'boolean'
          ? raw.failed_when
          : asConditions(raw.failed_when);
    // A templated retries ("{{ n }}") is rendered when the task runs (Ansible templates it then too).
    const retriesTemplate = typeof raw.retries === 'string' && raw.retries.includes('{{') ? raw.retries : undefined;
    const retries = raw.retries === undefined || retriesTemplate ? undefined : Number(raw.retries);
    if (retries !== undefined && (!Number.isInteger(retries) || retries < 0))
      throw errorAt(loaded, [...path, 'retries'], 'retries must be a whole number ≥ 0');
    const delayTemplate = typeof raw.delay === 'string' && raw.delay.includes('{{') ? raw.delay : undefined;
    const delay = raw.delay === undefined || delayTemplate ? undefined : Number(raw.delay);
    if (delay !== undefined && (!Number.isFinite(delay) || delay < 0))
      throw errorAt(loaded, [...path, 'delay'], 'delay must be a number of seconds ≥ 0');
    // async/poll (Ansible's defaults: no async; poll 15 s). poll 0 is fire-and-forget: the task registers the
    // job's ansible_job_id and async_status reads it later.
    const asyncSeconds = raw.async === undefined ? undefined : Number(raw.async);
    if (asyncSeconds !== undefined && (!Number.isInteger(asyncSeconds) || asyncSeconds < 0))
      throw errorAt(loaded, [...path, 'async'], 'async must be a whole number of seconds ≥ 0');
    const poll = raw.poll === undefined ? undefined : Number(raw.poll);
    if (poll !== undefined && (!Number.isInteger(poll) || poll < 0))
      throw errorAt(loaded, [...path, 'poll'], 'poll must be a whole number of seconds ≥ 0');
    const name =
      typeof raw.name === 'string' ? raw.name : `${moduleName}${typeof rawArgs === 'string' ? ' ' + rawArgs : ''}`;
    // A templated boolean keyword ("{{ debug_mode }}") cannot be known before the run; cairn decides these
    // before it, so it says so rather than guessing.
    const boolOrTemplate = (value: unknown, key: string): boolean | undefined => {
      if (typeof value === 'string' && value.includes('{{')) {
        throw errorAt(
          loaded,
          [...path, key],
          `${key}: a templated value is not supported here; cairn needs true or false when it reads the playbook`,
        );
      }
      return boolKeyword(loaded, value, [...path, key]);
    };
    const vars = isPlainObject(raw.vars) ? (raw.vars as Vars) : undefined;
    const varOrigins = vars && keyOrigins(loaded, [...path, 'vars'], vars);
    if (vars) args = { ...args };
    const locate: ValueLocator = (sub) => loaded.locate([...path, ...sub]);
    const locateArg: ValueLocator = (argPath) => {
      const top = argPath[0];
      // A free-form string ("command: echo {{ x }}") is one value, whatever argument it became.
      if (!isPlainObject(rawArgs) || top === undefined) return locate([moduleKey]);
      if (Object.hasOwn(rawArgs, top)) return locate([moduleKey, ...argPath]);
      if (isPlainObject(raw.args) && Object.hasOwn(raw.args, top)) return locate(['args', ...argPath]);
      return locate([moduleKey]);
    };
    const task: Task = {
      name,
      module: moduleName,
      args,
      ...conditionsAt(loaded, [...path, 'when'], raw.when),
      loop: loopValue,
      loopKind,
      loopControl:
        loopValue === undefined
          ? undefined
          : {
              indexVar: loopControl.index_var,
              label: loopControl.label,
              pause: loopControl.pause,
              extended: loopControl.extended === undefined ? undefined : Boolean(ansibleBool(loopControl.extended)),
            },
      include,
      loopVar: loopControl.loop_var ?? 'item',
      register: raw.register as string | undefined,
      changedWhen,
      failedWhen,
      retries: retries ?? (raw.until !== undefined ? 3 : undefined),
      ...(retriesTemplate ? { retriesTemplate } : {}),
      ...(delayTemplate ? { delayTemplate } : {}),
      until: raw.until === undefined ? undefined : asConditions(raw.until),
      delay: delay ?? (raw.until !== undefined ? 5 : undefined),
      ...(asyncSeconds ? { async: { seconds: asyncSeconds, pollSeconds: poll ?? 15 } } : {}),
      notify: asStringList(raw.notify),
      tags: [...inheritedTags, ...asStringList(raw.tags)],
      become: raw.become === undefined ? undefined : boolOrTemplate(raw.become, 'become'),
      becomeUser: raw.become_user as string | undefined,
      runOnce: boolOrTemplate(raw.run_once, 'run_once') ?? false,
      delegateTo: raw.delegate_to as string | undefined,
      ...(raw.delegate_facts !== undefined && raw.delegate_to !== undefined
        ? { delegateFacts: boolOrTemplate(raw.delegate_facts, 'delegate_facts') ?? false }
        : {}),
      ...(typeof raw.ignore_errors === 'string' && raw.ignore_errors.includes('{{')
        ? { ignoreErrors: false, ignoreErrorsTemplate: raw.ignore_errors }
        : { ignoreErrors: boolOrTemplate(raw.ignore_errors, 'ignore_errors') ?? false }),
      ...(typeof raw.no_log === 'string' && raw.no_log.includes('{{')
        ? { noLog: true, noLogTemplate: raw.no_log }
        : { noLog: boolOrTemplate(raw.no_log, 'no_log') ?? false }),
      checkMode: boolOrTemplate(raw.check_mode, 'check_mode'),
      ignoreUnreachable: boolOrTemplate(raw.ignore_unreachable, 'ignore_unreachable'),
      ...(raw.environment !== undefined && raw.environment !== null ? { environment: [raw.environment] } : {}),
      keywords: Object.keys(raw),
      role,
      location,
      locate,
      locateArg,
      listen: asStringList(raw.listen),
      vars,
      varOrigins,
    };
    return task;
  }
}

/**
 * An empty file and a single play written as a mapping are the two usual ways a playbook is not a list of
 * plays; each gets its own words.
 */
function checkPlaybookShape(loaded: LoadedYaml): void {
  if (loaded.value === null || loaded.value === undefined) {
    throw inputError('playbook is empty; expected a list of plays (- hosts: PATTERN ...)', { file: loaded.file });
  }
  if (isPlainObject(loaded.value)) {
    const playLike = 'hosts' in loaded.value || 'tasks' in loaded.value || 'roles' in loaded.value;
    throw errorAt(
      loaded,
      [],
      `playbook must be a list of plays, got a mapping${playLike ? ' (write the play as a list item: "- hosts: ...", with its keys indented under it)' : ''}`,
    );
  }
  if (Array.isArray(loaded.value) && loaded.value.length === 0) {
    throw errorAt(loaded, [], 'playbook is an empty list; expected at least one play (- hosts: PATTERN ...)');
  }
}

/** A play's `hosts:` must at least be a well-formed pattern; whether it names known hosts is for the inventory. */
function checkHostPattern(loaded: LoadedYaml, pattern: string, path: YamlPath): void {
  try {
    parseHostPattern(pattern);
  } catch (err) {
    if (err instanceof CairnError) throw errorAt(loaded, path, `play "hosts": ${err.message}`);
    throw err;
  }
}

function listFolders(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

/**
 * A role's schema.json: JSON (errors at line:col), then a JSON Schema ajv accepts (errors at the offending
 * keyword's line:col, found by reading the JSON as YAML, of which it is a subset).
 */
function loadRoleSchema(schemaFile: string): object {
  let text: string;
  try {
    text = readFileSync(schemaFile, 'utf8');
  } catch (err) {
    throw inputError(`cannot read role schema: ${describeFsError(err, schemaFile)}`, { file: schemaFile });
  }
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (err) {
    const message = (err as Error).message;
    const at = /at position (\d+)/.exec(message);
    const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '');
    if (at) {
      const offset = Number(at[1]);
      const before = text.slice(0, offset);
      const line = before.split('\n').length;
      const col = offset - before.lastIndexOf('\n');
      const trailingComma =
        /,\s*$/.test(before) && /^[}\]]/.test(text.slice(offset)) ? ' (JSON allows no comma after the last entry)' : '';
      throw inputError(
        `role schema is not valid JSON: ${reason}${trailingComma}`,
        { file: schemaFile, line, col },
        sourceSnippet(text, line, col),
      );
    }
    throw inputError(`role schema is not valid JSON: ${reason}`, { file: schemaFile });
  }
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw inputError(
      'role schema must be a JSON object (a JSON Schema such as {"type": "object", "properties": {...}})',
      { file: schemaFile, line: 1, col: 1 },
    );
  }
  // A schema compiled when cairn was built was a valid one then: its JSON is the same (the key is its hash).
  if (precompiledValidator(schema) === undefined && !ajv().validateSchema(schema)) {
    let located: LoadedYaml | undefined;
    try {
      located = parseYaml(text, schemaFile);
    } catch {
      located = undefined;
    }
    const d = describeAjvErrors(ajv().errors ?? [], schema, 'schema');
    const message = `role schema is not a valid JSON Schema: ${d.message}`;
    throw located ? errorAt(located, d.path, message, d.which) : inputError(message, { file: schemaFile });
  }
  try {
    compileSchema(schema);
  } catch (err) {
    throw inputError(`role schema is not a valid JSON Schema: ${(err as Error).message}`, { file: schemaFile });
  }
  return schema;
}

function suggestion(name: string, candidates: string[]): string {
  const near = closestNames(name, candidates);
  return near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(' or ')}?)` : '';
}
