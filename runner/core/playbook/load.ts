/**
 * Loading playbooks and roles: YAML -> validated Play/Role/Task objects. Every error names file:line:col and
 * what was expected. Module names and their arguments are checked here, before any host is contacted.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import { CairnError, inputError, type SourceLocation } from '../util/errors.js';
import { getModule, moduleNames } from '../modules/index.js';
import { ajv, compileSchema, describeAjvErrors, validateAt } from '../util/schema.js';
import { parseHostPattern } from '../inventory/patterns.js';
import { isPlainObject, type Vars } from '../util/vars.js';
import { checkExpressions } from '../template/yaml-expressions.js';
import { describeFsError, errorAt, loadYamlFile, parseYaml, snippetAt, sourceSnippet, type LoadedYaml, type YamlPath } from '../util/yaml-source.js';
import { closestNames } from '../util/suggest.js';
import { TASK_KEYWORDS, defaultsSchema, metaSchema, playSchema, playbookSchema, taskKeywordSchemas, taskListSchema } from './schema.js';
import type { Play, Playbook, Role, Task } from './types.js';

export interface LoadOptions {
  /** Folders searched for roles, in order (the playbook's own `roles/` is searched first). */
  rolesPath: string[];
}

const ROLE_FILES = ['tasks', 'defaults', 'handlers', 'verify', 'meta'] as const;

function findYaml(dir: string, base: string): string | undefined {
  for (const ext of ['.yaml', '.yml']) {
    const p = join(dir, base + ext);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function asStringList(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

function asBool(value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value === 'boolean') return value;
  return /^(yes|true|on|1)$/i.test(String(value).trim());
}

function asConditions(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.map((v) => (typeof v === 'boolean' ? String(v) : String(v)));
}

/**
 * Ansible's `key=value key2="quoted value"` argument strings. An unquoted value may hold `{{ ... }}` with
 * spaces inside, as Ansible's splitter allows.
 */
export function parseKeyValueArgs(text: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)=("((?:[^"\\]|\\.)*)"|'([^']*)'|((?:\{\{.*?\}\}|[^\s])*))/y;
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
    else if (types.includes('boolean') && /^(yes|true|on|1|no|false|off|0)$/i.test(value)) out[key] = /^(yes|true|on|1)$/i.test(value);
    else if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(value)) out[key] = Number(value);
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
    for (const s of segs) cur = isPlainObject(cur) || Array.isArray(cur) ? (cur as Record<string, unknown>)[s] : undefined;
    return !(typeof cur === 'string' && cur.includes('{{'));
  });
}

export class PlaybookLoader {
  private readonly roles = new Map<string, Role>();
  private readonly rolesPath: string[];

  constructor(opts: LoadOptions) {
    this.rolesPath = opts.rolesPath;
  }

  loadPlaybook(path: string): Playbook {
    const file = resolve(path);
    const dir = dirname(file);
    return { path: file, dir, plays: this.loadPlays(file, []) };
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
        plays.push(this.parsePlay(loaded, raw, i, dir));
        return;
      }
      const extra = Object.keys(raw).filter((k) => k !== 'import_playbook' && k !== 'name');
      if (extra.length) throw errorAt(loaded, [i, extra[0]!], `unknown key "${extra[0]}" beside import_playbook (expected only name)`, 'key');
      if (typeof raw.import_playbook !== 'string') throw errorAt(loaded, [i, 'import_playbook'], 'import_playbook must be the path of a playbook file');
      const target = resolve(dir, raw.import_playbook);
      if (target === file || importing.includes(target)) {
        throw errorAt(loaded, [i, 'import_playbook'], `playbook import cycle: ${[...importing, file, target].map((f) => f.replace(dir + '/', '')).join(' -> ')}`);
      }
      if (!existsSync(target)) throw errorAt(loaded, [i, 'import_playbook'], `imported playbook ${target} does not exist`);
      plays.push(...this.loadPlays(target, [...importing, file]));
    });
    return plays;
  }

  private searchPath(playbookDir: string): string[] {
    return [join(playbookDir, 'roles'), ...this.rolesPath];
  }

  private parsePlay(loaded: LoadedYaml, raw: Record<string, unknown>, index: number, dir: string): Play {
    validateAt(loaded, playSchema, 'play', raw, [index]);
    checkHostPattern(loaded, String(raw.hosts), [index, 'hosts']);
    const location = loaded.locate([index]);
    const playTags = asStringList(raw.tags);
    const roles: Role[] = [];
    const listed = new Map<string, SourceLocation>();
    const rawRoles = (raw.roles as unknown[] | undefined) ?? [];
    rawRoles.forEach((ref, i) => {
      const name = typeof ref === 'string' ? ref : String((ref as { role: string }).role);
      const refVars = typeof ref === 'string' ? {} : (((ref as { vars?: Vars }).vars ?? {}) as Vars);
      const refTags = typeof ref === 'string' ? [] : asStringList((ref as { tags?: unknown }).tags);
      const where = loaded.locate([index, 'roles', i]);
      if (listed.has(name)) throw errorAt(loaded, [index, 'roles', i], `role "${name}" is listed twice in this play (first at line ${listed.get(name)!.line})`);
      listed.set(name, where);
      for (const role of this.resolveRoleWithDeps(name, this.searchPath(dir), [], where)) {
        const earlier = roles.findIndex((r) => r.name === role.name);
        if (earlier >= 0) {
          // Already here as a dependency of a role listed before: it runs once, where it first came, as
          // Ansible does; listed itself, it takes the vars and tags given with it.
          if (role.name === name) roles[earlier] = { ...roles[earlier]!, vars: refVars, tags: [...playTags, ...refTags] };
          continue;
        }
        roles.push(role.name === name ? { ...role, vars: refVars, tags: [...playTags, ...refTags] } : { ...role, tags: [...playTags, ...refTags] });
      }
    });
    const taskSections = ['pre_tasks', 'tasks', 'post_tasks'] as const;
    const tasks: Task[] = [];
    for (const section of taskSections) {
      if (raw[section]) tasks.push(...this.parseTaskList(loaded, raw[section], [index, section], '', playTags, false));
    }
    const handlers = raw.handlers ? this.parseTaskList(loaded, raw.handlers, [index, 'handlers'], '', playTags, true) : [];
    const serial = raw.serial === undefined ? [] : Array.isArray(raw.serial) ? (raw.serial as Array<number | string>) : [raw.serial as number | string];
    let vars: Vars = isPlainObject(raw.vars) ? (raw.vars as Vars) : {};
    for (const [k, vf] of ((raw.vars_files as string[] | undefined) ?? []).entries()) {
      const p = resolve(dir, vf);
      if (!existsSync(p)) throw errorAt(loaded, [index, 'vars_files', k], `vars file "${vf}" not found (looked for ${p})`);
      const vl = loadYamlFile(p, 'vars file');
      validateAt(vl, defaultsSchema, 'vars file');
      checkExpressions(vl);
      vars = { ...vars, ...((vl.value as Vars | null) ?? {}) };
    }
    return {
      name: typeof raw.name === 'string' ? raw.name : String(raw.hosts),
      hosts: String(raw.hosts),
      roles,
      tasks,
      handlers,
      vars,
      serial,
      maxFailPercentage: raw.max_fail_percentage as number | undefined,
      anyErrorsFatal: raw.any_errors_fatal === true,
      strategy: (raw.strategy as 'free' | 'linear' | undefined) ?? 'free',
      gatherFacts: raw.gather_facts !== false,
      become: raw.become as boolean | undefined,
      becomeUser: raw.become_user as string | undefined,
      tags: playTags,
      location,
      hostsLocation: loaded.locate([index, 'hosts'], 'value'),
    };
  }

  /** The role and its dependencies, dependencies first, each once. Cycles are an error naming the chain. */
  private resolveRoleWithDeps(name: string, search: string[], stack: string[], where: SourceLocation): Role[] {
    if (stack.includes(name)) {
      const chain = [...stack.slice(stack.indexOf(name)), name].join(' -> ');
      throw inputError(`cyclic role dependency: ${chain} (a role cannot depend on itself, directly or through other roles)`, where, snippetAt(where));
    }
    const role = this.loadRole(name, search, where);
    const out: Role[] = [];
    const metaFile = findYaml(role.dir, 'meta');
    const meta = metaFile && role.dependencies.length ? loadYamlFile(metaFile, 'role meta') : undefined;
    role.dependencies.forEach((dep, i) => {
      const depWhere = meta ? meta.locate(['dependencies', i]) : where;
      for (const r of this.resolveRoleWithDeps(dep, search, [...stack, name], depWhere)) {
        if (!out.some((o) => o.name === r.name)) out.push(r);
      }
    });
    out.push(role);
    return out;
  }

  private findRoleDir(name: string, search: string[]): string | undefined {
    for (const base of search) {
      const dir = join(base, name);
      try {
        if (statSync(dir).isDirectory()) return dir;
      } catch {
        // not in this folder; try the next
      }
    }
    return undefined;
  }

  loadRole(name: string, search: string[], where: SourceLocation): Role {
    const cached = this.roles.get(name);
    if (cached) return cached;
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || /^\.+$/.test(name)) {
      throw inputError(`invalid role name ${JSON.stringify(name)} (expected letters, digits, "_", "." and "-": the name of a folder under roles/)`, where, snippetAt(where));
    }
    const dir = this.findRoleDir(name, search);
    if (!dir) {
      const known = search.flatMap((base) => listFolders(base));
      const near = closestNames(name, known);
      const hint = near.length ? `; did you mean ${near.map((n) => `"${n}"`).join(' or ')}?` : '';
      throw inputError(`role "${name}" not found${hint} (looked in: ${search.join(', ')})`, where, snippetAt(where));
    }
    const files: Partial<Record<(typeof ROLE_FILES)[number], LoadedYaml>> = {};
    for (const base of ROLE_FILES) {
      const p = findYaml(dir, base);
      if (p) files[base] = loadYamlFile(p, `role ${base} file`);
      if (p && base !== 'meta') checkExpressions(files[base]!);
    }
    if (!files.tasks) {
      throw inputError(`role "${name}" has no tasks.yaml (nor tasks.yml): every role needs one, even if it holds only \`[]\``, { file: dir });
    }
    let dependencies: string[] = [];
    if (files.meta) {
      validateAt(files.meta, metaSchema, 'role meta');
      const deps = ((files.meta.value as { dependencies?: unknown[] } | null)?.dependencies ?? []) as unknown[];
      dependencies = deps.map((d) => (typeof d === 'string' ? d : String((d as { role: string }).role)));
    }
    let defaults: Vars = {};
    if (files.defaults) {
      validateAt(files.defaults, defaultsSchema, 'role defaults');
      defaults = (files.defaults.value as Vars | null) ?? {};
    }
    let schema: object | undefined;
    const schemaFile = join(dir, 'schema.json');
    if (existsSync(schemaFile)) schema = loadRoleSchema(schemaFile);
    const tasks = this.parseTaskList(files.tasks, files.tasks.value, [], name, [], false);
    const handlers = files.handlers ? this.parseTaskList(files.handlers, files.handlers.value, [], name, [], true) : [];
    const verify = files.verify ? this.parseTaskList(files.verify, files.verify.value, [], name, [], false) : [];
    const role: Role = { name, dir, defaults, tasks, handlers, verify, dependencies, schema, tags: [], vars: {} };
    this.roles.set(name, role);
    return role;
  }

  parseTaskList(loaded: LoadedYaml, value: unknown, prefix: YamlPath, role: string, inheritedTags: string[], handlers: boolean): Task[] {
    validateAt(loaded, taskListSchema, handlers ? 'handler list' : 'task list', value, prefix);
    const list = (value as Array<Record<string, unknown>> | null) ?? [];
    return list.map((raw, i) => this.parseTask(loaded, raw, [...prefix, i], role, inheritedTags, handlers));
  }

  private parseTask(loaded: LoadedYaml, raw: Record<string, unknown>, path: YamlPath, role: string, inheritedTags: string[], handler: boolean): Task {
    const location = loaded.locate(path);
    const what = handler ? 'handler' : 'task';
    const moduleKeys = Object.keys(raw).filter((k) => !TASK_KEYWORDS.has(k));
    if (moduleKeys.length === 0) {
      throw errorAt(loaded, path, `${what} names no module (expected one of: ${moduleNames().join(', ')})`);
    }
    if (moduleKeys.length > 1) {
      const isModule = (k: string) => Boolean(getModule(k)) || k === 'set_fact';
      const unknown = moduleKeys.filter((k) => !isModule(k));
      if (unknown.length === 0) {
        throw errorAt(loaded, [...path, moduleKeys[1]!], `${what} names two modules, "${moduleKeys[0]}" and "${moduleKeys[1]}"; a ${what} runs exactly one module (split it in two)`, 'key');
      }
      const key = unknown[0]!;
      const keywordHint = closestNames(key, TASK_KEYWORDS);
      const hint = keywordHint.length
        ? ` (did you mean ${keywordHint.map((n) => `"${n}"`).join(' or ')}?)`
        : `${suggestion(key, moduleNames())}; a ${what} has one module (here "${moduleKeys.find(isModule) ?? moduleKeys[0]}") and keywords from: ${[...TASK_KEYWORDS].join(', ')}`;
      throw errorAt(loaded, [...path, key], `unknown ${what} keyword "${key}"${hint}`, 'key');
    }
    const moduleName = moduleKeys[0]!;
    for (const [key, schema] of Object.entries(taskKeywordSchemas)) {
      if (raw[key] !== undefined) validateAt(loaded, schema, `${what} keyword "${key}"`, raw[key], [...path, key]);
    }
    let args: Record<string, unknown>;
    const rawArgs = raw[moduleName];
    if (moduleName === 'set_fact') {
      if (!isPlainObject(rawArgs)) throw errorAt(loaded, [...path, moduleName], 'set_fact expects a mapping of variable names to values');
      args = rawArgs;
    } else {
      const module = getModule(moduleName);
      if (!module) {
        const near = suggestion(moduleName, [...moduleNames(), ...TASK_KEYWORDS]);
        throw errorAt(loaded, [...path, moduleName], `unknown module "${moduleName}"${near || ` (cairn's modules: ${moduleNames().join(', ')})`}`, 'key');
      }
      if (rawArgs === null || rawArgs === undefined) args = {};
      else if (typeof rawArgs === 'string') {
        if (module.freeFormArg) args = { [module.freeFormArg]: rawArgs };
        else {
          const kv = parseKeyValueArgs(rawArgs);
          if (!kv) throw errorAt(loaded, [...path, moduleName], `module "${moduleName}" takes a mapping of arguments (or key=value pairs), got ${JSON.stringify(rawArgs)}`);
          args = coerceKeyValueArgs(module.argsSchema, kv);
        }
      } else if (isPlainObject(rawArgs)) args = { ...rawArgs };
      else throw errorAt(loaded, [...path, moduleName], `arguments of module "${moduleName}" must be a mapping, got ${Array.isArray(rawArgs) ? 'a list' : typeof rawArgs}`);
      if (isPlainObject(raw.args)) args = { ...(raw.args as Record<string, unknown>), ...args };
      const errors = moduleArgErrors(module.argsSchema, args);
      if (errors.length) {
        const argPath: YamlPath = [...path, moduleName];
        const d = describeAjvErrors(errors, args, `module "${moduleName}"`, typeof rawArgs === 'string' ? [] : argPath);
        const errPath = typeof rawArgs === 'string' ? argPath : d.path;
        throw errorAt(loaded, errPath, `module "${moduleName}": ${d.message}`, typeof rawArgs === 'string' ? 'value' : d.which);
      }
    }
    const loopValue = raw.loop ?? raw.with_items;
    const loopControl = (raw.loop_control as { loop_var?: string } | undefined) ?? {};
    const changedWhen = raw.changed_when === undefined ? undefined : typeof raw.changed_when === 'boolean' ? raw.changed_when : asConditions(raw.changed_when);
    const failedWhen = raw.failed_when === undefined ? undefined : typeof raw.failed_when === 'boolean' ? raw.failed_when : asConditions(raw.failed_when);
    const retries = raw.retries === undefined ? undefined : Number(raw.retries);
    if (retries !== undefined && (!Number.isInteger(retries) || retries < 0)) throw errorAt(loaded, [...path, 'retries'], 'retries must be a whole number ≥ 0');
    const delay = raw.delay === undefined ? undefined : Number(raw.delay);
    if (delay !== undefined && (!Number.isFinite(delay) || delay < 0)) throw errorAt(loaded, [...path, 'delay'], 'delay must be a number of seconds ≥ 0');
    const name = typeof raw.name === 'string' ? raw.name : `${moduleName}${typeof rawArgs === 'string' ? ' ' + rawArgs : ''}`;
    const vars = isPlainObject(raw.vars) ? (raw.vars as Vars) : undefined;
    if (vars) args = { ...args };
    const task: Task = {
      name,
      module: moduleName,
      args,
      when: asConditions(raw.when),
      loop: loopValue,
      loopVar: loopControl.loop_var ?? 'item',
      register: raw.register as string | undefined,
      changedWhen,
      failedWhen,
      retries: retries ?? (raw.until !== undefined ? 3 : undefined),
      until: raw.until === undefined ? undefined : asConditions(raw.until),
      delay: delay ?? (raw.until !== undefined ? 5 : undefined),
      notify: asStringList(raw.notify),
      tags: [...inheritedTags, ...asStringList(raw.tags)],
      become: raw.become === undefined ? undefined : asBool(raw.become, false),
      becomeUser: raw.become_user as string | undefined,
      runOnce: asBool(raw.run_once, false),
      delegateTo: raw.delegate_to as string | undefined,
      ignoreErrors: asBool(raw.ignore_errors, false),
      noLog: asBool(raw.no_log, false),
      checkMode: raw.check_mode === undefined ? undefined : asBool(raw.check_mode, false),
      role,
      location,
      listen: asStringList(raw.listen),
      vars,
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
    throw errorAt(loaded, [], `playbook must be a list of plays, got a mapping${playLike ? ' (write the play as a list item: "- hosts: ...", with its keys indented under it)' : ''}`);
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
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
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
      const trailingComma = /,\s*$/.test(before) && /^[}\]]/.test(text.slice(offset)) ? ' (JSON allows no comma after the last entry)' : '';
      throw inputError(`role schema is not valid JSON: ${reason}${trailingComma}`, { file: schemaFile, line, col }, sourceSnippet(text, line, col));
    }
    throw inputError(`role schema is not valid JSON: ${reason}`, { file: schemaFile });
  }
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw inputError('role schema must be a JSON object (a JSON Schema such as {"type": "object", "properties": {...}})', { file: schemaFile, line: 1, col: 1 });
  }
  if (!ajv.validateSchema(schema)) {
    let located: LoadedYaml | undefined;
    try {
      located = parseYaml(text, schemaFile);
    } catch {
      located = undefined;
    }
    const d = describeAjvErrors(ajv.errors ?? [], schema, 'schema');
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
