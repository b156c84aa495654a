/**
 * Loading playbooks and roles: YAML -> validated Play/Role/Task objects. Every error names file:line:col and
 * what was expected. Module names and their arguments are checked here, before any host is contacted.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ErrorObject } from 'ajv';
import { CairnError, inputError, type SourceLocation } from '../errors.js';
import { getModule, moduleNames } from '../modules/index.js';
import { compileSchema, describeAjvError, validateAt } from '../schema.js';
import { isPlainObject, type Vars } from '../vars.js';
import { describeFsError, errorAt, loadYamlFile, type LoadedYaml, type YamlPath } from '../yaml-source.js';
import { closestNames } from './suggest.js';
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
    const location = loaded.locate([index]);
    const playTags = asStringList(raw.tags);
    const roles: Role[] = [];
    const seen = new Set<string>();
    const rawRoles = (raw.roles as unknown[] | undefined) ?? [];
    rawRoles.forEach((ref, i) => {
      const name = typeof ref === 'string' ? ref : String((ref as { role: string }).role);
      const refVars = typeof ref === 'string' ? {} : (((ref as { vars?: Vars }).vars ?? {}) as Vars);
      const refTags = typeof ref === 'string' ? [] : asStringList((ref as { tags?: unknown }).tags);
      const where = loaded.locate([index, 'roles', i]);
      for (const role of this.resolveRoleWithDeps(name, this.searchPath(dir), [], where)) {
        if (seen.has(role.name) && role.name !== name) continue;
        if (seen.has(role.name) && role.name === name) {
          throw errorAt(loaded, [index, 'roles', i], `role "${name}" is listed twice in this play`);
        }
        seen.add(role.name);
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
    for (const vf of (raw.vars_files as string[] | undefined) ?? []) {
      const p = resolve(dir, vf);
      const vl = loadYamlFile(p, 'vars file');
      validateAt(vl, defaultsSchema, 'vars file');
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
    };
  }

  /** The role and its dependencies, dependencies first, each once. Cycles are an error naming the chain. */
  private resolveRoleWithDeps(name: string, search: string[], stack: string[], where: SourceLocation): Role[] {
    if (stack.includes(name)) {
      const chain = [...stack.slice(stack.indexOf(name)), name].join(' -> ');
      throw inputError(`cyclic role dependency: ${chain}`, where);
    }
    const role = this.loadRole(name, search, where);
    const out: Role[] = [];
    const metaFile = findYaml(role.dir, 'meta');
    role.dependencies.forEach((dep, i) => {
      const depWhere = metaFile ? loadYamlFile(metaFile, 'role meta').locate(['dependencies', i]) : where;
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
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw inputError(`invalid role name "${name}"`, where);
    const dir = this.findRoleDir(name, search);
    if (!dir) {
      throw inputError(`role "${name}" not found (looked in: ${search.join(', ')})`, where);
    }
    const files: Partial<Record<(typeof ROLE_FILES)[number], LoadedYaml>> = {};
    for (const base of ROLE_FILES) {
      const p = findYaml(dir, base);
      if (p) files[base] = loadYamlFile(p, `role ${base} file`);
    }
    if (!files.tasks) throw inputError(`role "${name}" has no tasks.yaml`, { file: dir });
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
    if (existsSync(schemaFile)) {
      let text: string;
      try {
        text = readFileSync(schemaFile, 'utf8');
      } catch (err) {
        throw inputError(`cannot read role schema: ${describeFsError(err)}`, { file: schemaFile });
      }
      try {
        schema = JSON.parse(text) as object;
      } catch (err) {
        throw inputError(`role schema is not valid JSON: ${(err as Error).message}`, { file: schemaFile });
      }
      try {
        compileSchema(schema);
      } catch (err) {
        throw inputError(`role schema is not a valid JSON Schema: ${(err as Error).message}`, { file: schemaFile });
      }
    }
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
      const unknown = moduleKeys.filter((k) => !getModule(k) && k !== 'set_fact');
      const key = unknown[0] ?? moduleKeys[1]!;
      const hint = unknown.length ? suggestion(key, [...TASK_KEYWORDS, ...moduleNames()]) : ' (a task runs exactly one module)';
      throw errorAt(loaded, [...path, key], `${what} has more than one module or an unknown keyword "${key}"${hint}`, 'key');
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
        throw errorAt(loaded, [...path, moduleName], `unknown module "${moduleName}"${suggestion(moduleName, moduleNames())}`, 'key');
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
        const err = errors.sort((a, b) => (b.keyword === 'additionalProperties' ? 1 : 0) - (a.keyword === 'additionalProperties' ? 1 : 0))[0]!;
        const argPath: YamlPath = typeof rawArgs === 'string' ? [...path, moduleName] : [...path, moduleName];
        const d = describeAjvError(err, args, `module "${moduleName}"`, typeof rawArgs === 'string' ? [] : argPath);
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

function suggestion(name: string, candidates: string[]): string {
  const near = closestNames(name, candidates);
  return near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(' or ')}?)` : '';
}

export function isCairnError(err: unknown): err is CairnError {
  return err instanceof CairnError;
}
