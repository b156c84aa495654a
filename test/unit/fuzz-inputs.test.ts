/**
 * Property-based tests: random inventories and playbooks (random YAML text, random structures, and
 * valid-looking shapes with random values and text mutations in every position) must be either accepted or
 * refused with a CairnError; never another exception, never a hang.
 *
 *   - In process: loadInventory (then every host's variables and random host patterns), PlaybookLoader and
 *     parseYaml run in a worker thread of this process, on the compiled code in dist/ (as the CLI runs it;
 *     `npm test` builds it first, and a stale dist/ fails the suite rather than test old code). The thread
 *     is what bounds a run: a synchronous loop cannot be interrupted from inside, so each input gets
 *     IN_PROCESS_LIMIT_MS and the worker is terminated if it takes longer, which fails the property with
 *     the input. The worker also has a heap limit, so a memory blow-up fails the property instead of the
 *     test process. Each property also checks that its generator reached both outcomes: a generator whose
 *     every input is refused at the first YAML error would test nothing deeper.
 *   - Nesting: random shapes up to 90 levels deep, block or flow, are read; from 110 levels they are refused
 *     at a line:col (the depth limit works on lexer tokens and must not misjudge real documents).
 *   - Through the CLI (fewer runs, each spawns node): `play --syntax-check` and `play --list-hosts` exit 0
 *     or 5, print no stack trace, and finish within CLI_LIMIT_MS.
 *
 * Seeds are fixed (CAIRN_FUZZ_SEED overrides the base seed; CAIRN_FUZZ_SCALE multiplies the run counts;
 * CAIRN_FUZZ_STATS=1 prints what was accepted and refused), so a failure reproduces: fast-check's message
 * carries the seed and the counterexample path.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { repoRoot, runCairn } from '../helpers/cli.js';

const BASE_SEED = Number(process.env.CAIRN_FUZZ_SEED ?? 20261121);
const SCALE = Number(process.env.CAIRN_FUZZ_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const IN_PROCESS_LIMIT_MS = 10_000;
const CLI_LIMIT_MS = 30_000;
/** Whole properties (vitest's own limit), generous for a loaded machine; the per-input bounds are above. */
const PROPERTY_LIMIT_MS = 240_000 * Math.max(1, SCALE);

// ---------------------------------------------------------------------------------------------------------
// Generators. Three kinds of input, from wild to tame: raw text of YAML punctuation; random values of any
// shape; and valid inventories and playbooks with 0-2 structural mutations (a node replaced, removed,
// wrapped in a list or given a stray key) and sometimes one text edit (a character inserted or deleted, a
// line duplicated, indented or tabbed, the text cut short). The tame kind reaches the deeper checks.

/** Strings that mean something to YAML, templates, host patterns or shells. */
const trickyString = fc.constantFrom(
  '',
  ' ',
  '~',
  'null',
  'true',
  'yes',
  'no',
  '0',
  '-1',
  '0x1F',
  '1e3',
  '.inf',
  '{{',
  '}}',
  '{{ x }}',
  '{{ undefined_thing }}',
  '{% if %}',
  '*',
  '&a',
  '*a',
  '!!binary',
  '!tag',
  ':',
  ': ',
  '- ',
  '? ',
  '#',
  '|',
  '>',
  '%',
  '@',
  '`',
  '"',
  "'",
  '\\',
  '\t',
  '\n',
  '\r\n',
  '[',
  ']',
  '{',
  '}',
  ',',
  'all',
  'all:!web',
  'web[0]',
  'web[1:',
  '~^w',
  '__proto__',
  'constructor',
  'toString',
  '../../etc/passwd',
  '$(reboot)',
  'a'.repeat(300),
  '\u00e9',
  '\u202e',
  '\ud83d\ude00',
  '\u0000',
);
const anyString = fc.oneof(
  { weight: 3, arbitrary: trickyString },
  { weight: 2, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 8 }) },
);
const identifier = fc.stringMatching(/^[a-z_][a-z0-9_]{0,7}$/);

/** Any YAML-representable value, a few levels deep. */
const { value: anyValue } = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    anyString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(identifier, anyString), tie('value'), { maxKeys: 4 }),
  ),
}));

// Valid shapes. Names come from small pools so that group_vars files, patterns and roles often match.
const hostName = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('web1', 'web2', 'db1', 'box', '10.0.0.1', 'h.example.org') },
  { weight: 1, arbitrary: identifier },
);
const groupName = fc.constantFrom('all', 'web', 'db', 'lb', 'prod');
const plainValue = fc.oneof(
  identifier,
  fc.integer({ min: -5, max: 100 }),
  fc.boolean(),
  fc.constant('{{ inventory_hostname }}'),
);
const validVars = fc.oneof(
  fc.dictionary(identifier, fc.oneof(plainValue, fc.array(plainValue, { maxLength: 3 })), { maxKeys: 3 }),
  fc.record(
    {
      ansible_host: fc.constantFrom('10.0.0.1', 'h.example.org'),
      ansible_port: fc.integer({ min: 1, max: 65535 }),
      ansible_user: fc.constantFrom('root', 'deploy'),
      ansible_connection: fc.constantFrom('local', 'ssh'),
      ansible_become: fc.boolean(),
      cairn_jump: fc.constantFrom('jump@10.0.0.9:22', 'jump'),
      web_port: fc.integer({ min: 1, max: 65535 }),
    },
    { requiredKeys: [] },
  ),
);
/** Groups three levels deep, each level naming its groups from its own pool, so that no group is its own ancestor. */
function groupAt(childNames: string[][]): fc.Arbitrary<unknown> {
  const [names, ...deeper] = childNames;
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(null) },
    {
      weight: 4,
      arbitrary: fc.record(
        {
          hosts: fc.dictionary(hostName, fc.oneof(fc.constant(null), validVars), { maxKeys: 3 }),
          vars: validVars,
          ...(names ? { children: fc.dictionary(fc.constantFrom(...names), groupAt(deeper), { maxKeys: 2 }) } : {}),
        },
        { requiredKeys: [] },
      ),
    },
  );
}
const validInventory = fc.dictionary(
  fc.constantFrom('all', 'all', 'ops'),
  groupAt([['web', 'db', 'lb'], ['prod', 'stage'], ['edge']]),
  { minKeys: 1, maxKeys: 2 },
);

const hostPattern = fc.oneof(
  fc
    .array(
      fc.tuple(
        fc.constantFrom('', '', '&', '!', '~'),
        fc.oneof(hostName, groupName, fc.constantFrom('w*', 'db?', 'nosuch')),
        fc.constantFrom('', '', '[0]', '[-1]', '[0:1]', '[1:]', '[5]'),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .chain((terms) =>
      fc.constantFrom(':', ',').map((sep) => terms.map(([op, name, sub]) => `${op}${name}${sub}`).join(sep)),
    ),
  { weight: 1, arbitrary: anyString },
);
const validPattern = fc.oneof(
  fc.constantFrom('all', 'web', 'db', 'web:db', 'all:!db', 'web:&prod', 'web1', 'web[0]', 'w*'),
  groupName,
);

const validTask = fc
  .tuple(
    fc.oneof(
      fc.record({ command: fc.constantFrom('true', 'echo {{ inventory_hostname }}', 'ls -l /') }),
      fc.record({ debug: fc.record({ msg: fc.oneof(identifier, fc.constant('{{ x }}')) }) }),
      fc.record({ copy: fc.record({ dest: fc.constantFrom('/tmp/x', '/etc/app.conf'), content: identifier }) }),
      fc.record({
        file: fc.record({ path: fc.constant('/tmp/d'), state: fc.constantFrom('directory', 'absent', 'touch') }),
      }),
      fc.record({ set_fact: fc.dictionary(identifier, plainValue, { minKeys: 1, maxKeys: 2 }) }),
      fc.record({
        assert: fc.record({
          that: fc.array(fc.constantFrom('x == 1', 'inventory_hostname'), { minLength: 1, maxLength: 2 }),
        }),
      }),
      fc.record({ template: fc.record({ src: fc.constant('app.conf.hbs'), dest: fc.constant('/etc/app.conf') }) }),
    ),
    fc.record(
      {
        name: identifier,
        when: fc.constantFrom('x == 1', 'inventory_hostname == "web1"', 'true'),
        tags: fc.array(identifier, { maxLength: 2 }),
        register: identifier,
        loop: fc.array(plainValue, { maxLength: 3 }),
        notify: identifier,
        become: fc.boolean(),
        ignore_errors: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
  )
  .map(([module, keywords]) => ({ ...keywords, ...module }));
const validTasks = fc.array(validTask, { maxLength: 3 });
const roleName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('common', 'web', 'fz') },
  { weight: 1, arbitrary: fc.constantFrom('cyc_a', 'notasks', 'missing') },
);
const validPlay = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record(
      {
        hosts: validPattern,
        name: identifier,
        gather_facts: fc.boolean(),
        serial: fc.oneof(
          fc.integer({ min: 1, max: 3 }),
          fc.constantFrom('50%'),
          fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }),
        ),
        vars: validVars,
        vars_files: fc.constant(['vars.yaml']),
        roles: fc
          .uniqueArray(roleName, { maxLength: 2 })
          .chain((names) =>
            fc.tuple(
              ...names.map((name) =>
                fc.oneof(
                  fc.constant(name),
                  fc.record(
                    { role: fc.constant(name), vars: validVars, tags: fc.array(identifier, { maxLength: 1 }) },
                    { requiredKeys: ['role'] },
                  ),
                ),
              ),
            ),
          ),
        pre_tasks: validTasks,
        tasks: validTasks,
        handlers: validTasks,
      },
      { requiredKeys: ['hosts'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({ import_playbook: fc.constantFrom('other.yaml', 'other.yaml', 'site.yaml', 'missing.yaml') }),
  },
);
const validPlaybook = fc.array(validPlay, { minLength: 1, maxLength: 3 });

/** One structural change at one node of a value (counted in walk order). */
type Mutation = {
  at: number;
  how: 'replace' | 'delete' | 'add-key' | 'wrap-in-list' | 'to-string';
  key: string;
  value: unknown;
};
const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  how: fc.constantFrom('replace', 'replace', 'delete', 'add-key', 'wrap-in-list', 'to-string'),
  key: fc.oneof(
    anyString,
    fc.constantFrom('hosts', 'vars', 'children', 'tasks', 'when', 'whne', 'roles', 'name', 'loop', 'serial'),
  ),
  value: anyValue,
});
type Slot = { parent: Record<string, unknown> | unknown[]; key: string | number };
function slots(value: unknown, into: Slot[] = []): Slot[] {
  if (Array.isArray(value))
    value.forEach((child, i) => {
      into.push({ parent: value, key: i });
      slots(child, into);
    });
  else if (value !== null && typeof value === 'object') {
    for (const [k, child] of Object.entries(value)) {
      into.push({ parent: value as Record<string, unknown>, key: k });
      slots(child, into);
    }
  }
  return into;
}
function mutate(original: unknown, mutations: Mutation[]): unknown {
  const root = { value: structuredClone(original) };
  for (const m of mutations) {
    const all = slots(root);
    const slot = all[m.at % all.length]!;
    const target = (slot.parent as Record<string | number, unknown>)[slot.key];
    switch (m.how) {
      case 'replace':
        (slot.parent as Record<string | number, unknown>)[slot.key] = m.value;
        break;
      case 'delete':
        if (Array.isArray(slot.parent)) slot.parent.splice(slot.key as number, 1);
        else if (slot.parent !== root) delete slot.parent[slot.key as string];
        break;
      case 'add-key':
        if (Array.isArray(target)) target.push(m.value);
        else if (target !== null && typeof target === 'object') (target as Record<string, unknown>)[m.key] = m.value;
        else (slot.parent as Record<string | number, unknown>)[slot.key] = { [m.key]: m.value };
        break;
      case 'wrap-in-list':
        (slot.parent as Record<string | number, unknown>)[slot.key] = [target];
        break;
      case 'to-string':
        (slot.parent as Record<string | number, unknown>)[slot.key] = JSON.stringify(target) ?? 'undefined';
        break;
    }
  }
  return root.value;
}
/** A valid value with no, one or two mutations. */
function mutated(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      valid,
      fc.oneof(
        { weight: 1, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 2 }) },
      ),
    )
    .map(([v, ms]) => mutate(v, [...ms]));
}

type Edit = {
  op: 'none' | 'insert' | 'delete' | 'duplicate-line' | 'indent-line' | 'tab-line' | 'truncate';
  at: number;
  text: string;
};
const edit: fc.Arbitrary<Edit> = fc.record({
  op: fc.oneof(
    { weight: 12, arbitrary: fc.constant('none' as const) },
    {
      weight: 6,
      arbitrary: fc.constantFrom('insert', 'delete', 'duplicate-line', 'indent-line', 'tab-line', 'truncate'),
    },
  ),
  at: fc.nat(),
  text: fc.constantFrom(
    ':',
    '- ',
    '[',
    ']',
    '{',
    '}',
    '&a ',
    '*a',
    '!!str ',
    '|',
    '>',
    '#',
    '"',
    "'",
    ',',
    '\n',
    ' ',
    '\t',
    '---\n',
    '? ',
    '<<: *a\n',
  ),
});
function applyEdit(text: string, e: Edit): string {
  if (text.length === 0) return e.op === 'insert' ? e.text : text;
  const at = e.at % text.length;
  const lines = text.split('\n');
  const line = e.at % lines.length;
  switch (e.op) {
    case 'none':
      return text;
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + 1 + (e.at % 3));
    case 'duplicate-line':
      lines.splice(line, 0, lines[line]!);
      return lines.join('\n');
    case 'indent-line':
      lines[line] = ' ' + lines[line]!;
      return lines.join('\n');
    case 'tab-line':
      lines[line] = '\t' + lines[line]!;
      return lines.join('\n');
    case 'truncate':
      return text.slice(0, at);
  }
}
/** YAML text of a value, in block or flow style, sometimes damaged by one edit. */
function yamlText(value: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.tuple(value, fc.constantFrom('block', 'block', 'flow', 'any'), edit).map(([v, style, e]) => {
    let text: string;
    try {
      text = stringify(v, { collectionStyle: style as 'block' | 'flow' | 'any' });
    } catch {
      text = String(v);
    }
    return applyEdit(text, e);
  });
}
/** Raw text from YAML's punctuation and a few words: mostly broken YAML, sometimes a small valid document. */
const rawYaml = fc.string({
  unit: fc.constantFrom(
    'a',
    'b',
    'all',
    'hosts',
    'vars',
    'children',
    'tasks',
    '-',
    ' ',
    ' ',
    '  ',
    '\n',
    '\n',
    ':',
    ': ',
    '[',
    ']',
    '{',
    '}',
    ',',
    '&x',
    '*x',
    '!',
    '|',
    '>',
    '#',
    '"',
    "'",
    '?',
    '%',
    '@',
    '`',
    '\t',
    '\\',
    '0',
    '1.5',
    '~',
    '\u00e9',
  ),
  maxLength: 120,
});
function documentText(valid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 8, arbitrary: yamlText(mutated(valid)) },
    { weight: 1, arbitrary: yamlText(anyValue) },
    { weight: 1, arbitrary: rawYaml },
  );
}
/** For the files around the one under test: mostly intact, so that the main file's problems are reached. */
function supportText(valid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 6, arbitrary: valid.map((v) => stringify(v)) },
    { weight: 1, arbitrary: documentText(valid) },
  );
}
const inventoryText = documentText(validInventory);
const playbookText = documentText(validPlaybook);
const varsText = supportText(validVars);
const tasksText = supportText(validTasks);

/** `arbitrary` in `percent` of the cases, else null (no such file). */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(null) }, { weight: percent, arbitrary });
}

/** Files around a playbook: a role `fz` with random files, a vars file, an imported playbook. */
const playbookFiles = fc.record({
  'site.yaml': playbookText,
  'other.yaml': sometimes(supportText(validPlaybook), 30),
  'vars.yaml': sometimes(varsText, 90),
  'roles/fz/tasks.yaml': sometimes(tasksText, 90),
  'roles/fz/handlers.yaml': sometimes(tasksText, 30),
  'roles/fz/verify.yaml': sometimes(tasksText, 30),
  'roles/fz/defaults.yaml': sometimes(varsText, 30),
  'roles/fz/meta.yaml': sometimes(supportText(fc.record({ dependencies: fc.array(roleName, { maxLength: 2 }) })), 30),
  'roles/fz/schema.json': sometimes(
    fc.oneof(fc.json(), rawYaml, fc.constant('{"type": "object", "properties": {"x": {"type": "integer"}}}')),
    30,
  ),
});
/** An inventory with sometimes a group_vars and a host_vars file (named after a likely group or host). */
const inventoryFiles = fc.record({
  'hosts.yaml': inventoryText,
  groupVars: sometimes(
    fc.tuple(
      fc.constantFrom('all', 'all', 'web', 'db', 'nosuch'),
      fc.constantFrom('.yaml', '.yaml', '.yml', '', '/main.yaml', '.txt'),
      varsText,
    ),
    30,
  ),
  hostVars: sometimes(
    fc.tuple(fc.constantFrom('web1', 'web1', 'box', 'nosuch'), fc.constantFrom('.yaml', '/x.yaml'), varsText),
    30,
  ),
});
type InventoryFiles = {
  'hosts.yaml': string;
  groupVars: [string, string, string] | null;
  hostVars: [string, string, string] | null;
};

// ---------------------------------------------------------------------------------------------------------
// Files

let scratch: string;
let staticRoles: string;
let counter = 0;

function writeTree(files: Record<string, string | null>): string {
  const dir = join(scratch, `run-${counter++}`);
  for (const [rel, content] of Object.entries(files)) {
    if (content === null) continue;
    const path = join(dir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, content);
  }
  return dir;
}

function writeInventory(files: InventoryFiles): string {
  const tree: Record<string, string> = { 'hosts.yaml': files['hosts.yaml'] };
  if (files.groupVars) tree[`group_vars/${files.groupVars[0]}${files.groupVars[1]}`] = files.groupVars[2];
  if (files.hostVars) tree[`host_vars/${files.hostVars[0]}${files.hostVars[1]}`] = files.hostVars[2];
  return writeTree(tree);
}

/** Roles every generated playbook may name: a plain one, one with a schema, a dependency cycle, one without tasks. */
function writeStaticRoles(dir: string): void {
  const files: Record<string, string> = {
    'common/tasks.yaml': '- name: hello\n  debug:\n    msg: hello\n',
    'web/tasks.yaml': '- name: port\n  debug:\n    msg: "{{ web_port }}"\n',
    'web/defaults.yaml': 'web_port: 80\n',
    'web/schema.json': '{"type": "object", "properties": {"web_port": {"type": "integer"}}}\n',
    'web/meta.yaml': 'dependencies: [common]\n',
    'cyc_a/tasks.yaml': '[]\n',
    'cyc_a/meta.yaml': 'dependencies: [cyc_b]\n',
    'cyc_b/tasks.yaml': '[]\n',
    'cyc_b/meta.yaml': 'dependencies: [cyc_a]\n',
    'notasks/defaults.yaml': 'x: 1\n',
  };
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The in-process harness: a worker thread running the compiled loaders

type Job =
  | { kind: 'yaml'; text: string }
  // For checking the harness itself: a job that never returns and one that throws a TypeError.
  | { kind: 'spin' }
  | { kind: 'throw' }
  | { kind: 'inventory'; path: string; patterns: string[] }
  | { kind: 'playbook'; path: string; rolesPath: string[] };

type Outcome =
  | { result: 'accepted'; detail: string }
  | { result: 'refused'; kind: string; rendered: string; file?: string; line?: number; col?: number }
  | { result: 'crashed'; error: string };

// Runs as CommonJS inside the worker; loads the same modules the CLI loads.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { pathToFileURL } = require('node:url');
const { join } = require('node:path');
const load = (rel) => import(pathToFileURL(join(workerData.dist, rel)).href);
(async () => {
  await load('runner/core/modules/all.js');
  const { CairnError } = await load('runner/core/util/errors.js');
  const { parseYaml } = await load('runner/core/util/yaml-source.js');
  const { loadInventory } = await load('runner/core/inventory/index.js');
  const { PlaybookLoader } = await load('runner/core/playbook/load.js');
  const refused = (err) => ({ result: 'refused', kind: err.kind, rendered: err.render(), file: err.location && err.location.file, line: err.location && err.location.line, col: err.location && err.location.col });
  const crashed = (err) => ({ result: 'crashed', error: err instanceof Error ? (err.stack || err.message) : 'thrown non-Error: ' + String(err) });
  parentPort.on('message', ({ id, job }) => {
    let outcome;
    try {
      if (job.kind === 'spin') {
        for (;;) {}
      } else if (job.kind === 'throw') {
        null.property;
      } else if (job.kind === 'yaml') {
        const loaded = parseYaml(job.text, 'fuzz.yaml');
        loaded.locate([0, 'a', 1]);
        loaded.locate(['all', 'hosts'], 'key');
        outcome = { result: 'accepted', detail: typeof loaded.value };
      } else if (job.kind === 'inventory') {
        const inventory = loadInventory(job.path);
        for (const host of inventory.hosts.keys()) {
          inventory.hostVars(host);
          inventory.varOrigin(host, 'ansible_host');
        }
        const selected = [];
        for (const pattern of job.patterns) {
          try {
            selected.push(inventory.select(pattern).length);
          } catch (err) {
            if (!(err instanceof CairnError)) throw err;
            selected.push(refused(err).rendered);
          }
        }
        outcome = { result: 'accepted', detail: inventory.hosts.size + ' hosts; patterns: ' + JSON.stringify(selected) };
      } else {
        const playbook = new PlaybookLoader({ rolesPath: job.rolesPath }).loadPlaybook(job.path);
        outcome = { result: 'accepted', detail: playbook.plays.length + ' plays' };
      }
    } catch (err) {
      outcome = err instanceof CairnError ? refused(err) : crashed(err);
      if (outcome.result === 'refused' && typeof outcome.rendered !== 'string') outcome = crashed(new Error('render() gave no text'));
    }
    parentPort.postMessage({ id, outcome });
  });
  parentPort.postMessage({ ready: true });
})().catch((err) => parentPort.postMessage({ startup: String(err && err.stack || err) }));
`;

class LoaderWorker {
  private worker!: Worker;
  private ready!: Promise<void>;
  private nextId = 0;
  private pending = new Map<number, (o: Outcome) => void>();

  constructor(private readonly dist: string) {
    this.start();
  }

  private start(): void {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { dist: this.dist },
      resourceLimits: { maxOldGenerationSizeMb: 512, stackSizeMb: 4 },
    });
    this.ready = new Promise((resolveReady, reject) => {
      const onMessage = (msg: { ready?: boolean; startup?: string; id?: number; outcome?: Outcome }) => {
        if (msg.ready) resolveReady();
        else if (msg.startup) reject(new Error(`worker did not start: ${msg.startup}`));
        else if (msg.id !== undefined && msg.outcome) {
          this.pending.get(msg.id)?.(msg.outcome);
          this.pending.delete(msg.id);
        }
      };
      this.worker.on('message', onMessage);
      this.worker.on('error', (err) => {
        reject(err);
        for (const settle of this.pending.values()) settle({ result: 'crashed', error: `worker died: ${err.message}` });
        this.pending.clear();
      });
    });
  }

  /** Run one job; a job still running after `limitMs` is a hang: the worker is replaced and the job fails. */
  async run(job: Job, limitMs = IN_PROCESS_LIMIT_MS): Promise<Outcome> {
    await this.ready;
    const id = this.nextId++;
    return new Promise<Outcome>((resolveJob) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        void this.worker.terminate();
        this.start();
        resolveJob({ result: 'crashed', error: `no answer after ${limitMs} ms: the loader hangs (worker terminated)` });
      }, limitMs);
      this.pending.set(id, (outcome) => {
        clearTimeout(timer);
        resolveJob(outcome);
      });
      this.worker.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

/** The dist/ files the worker loads must be built from the current sources, or this tests old code. */
function staleDistFiles(): string[] {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts')) {
        const built = join(repoRoot, 'dist', relative(repoRoot, full)).replace(/\.ts$/, '.js');
        if (!existsSync(built) || statSync(built).mtimeMs < statSync(full).mtimeMs)
          stale.push(relative(repoRoot, full));
      }
    }
  };
  for (const dir of ['inventory', 'playbook', 'modules', 'template', 'util'])
    walk(join(repoRoot, 'runner', 'core', dir));
  return stale;
}

/** How many inputs each property saw accepted and refused: a generator that only ever reaches one is no test. */
const tally = { accepted: 0, refused: 0, messages: new Map<string, number>() };
function resetTally(): void {
  tally.accepted = 0;
  tally.refused = 0;
  tally.messages.clear();
}
function expectBothOutcomes(numRuns: number, minAcceptedShare: number): void {
  const minAccepted = Math.floor(numRuns * minAcceptedShare);
  if (process.env.CAIRN_FUZZ_STATS)
    console.log(
      `${tally.accepted} accepted, ${tally.refused} refused\n${[...tally.messages]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 40)
        .map(([m, n]) => `${n}\t${m}`)
        .join('\n')}`,
    );
  expect(tally.accepted, 'inputs accepted').toBeGreaterThanOrEqual(minAccepted);
  expect(tally.refused, 'inputs refused').toBeGreaterThan(0);
}

/** A refusal must read as one: kind input/options, a file, a real line and column, no stringified objects. */
function checkOutcome(outcome: Outcome, input: unknown): void {
  if (outcome.result === 'accepted') tally.accepted++;
  if (outcome.result === 'refused') {
    tally.refused++;
    const gist = outcome.rendered
      .split('\n')[0]!
      .replace(/^.*?: /, '')
      .replace(/"[^"]*"/g, '"…"')
      .slice(0, 60);
    tally.messages.set(gist, (tally.messages.get(gist) ?? 0) + 1);
  }
  if (outcome.result === 'crashed') {
    throw new Error(`not a CairnError: ${outcome.error}\ninput: ${JSON.stringify(input).slice(0, 2000)}`);
  }
  if (outcome.result === 'refused') {
    const problems: string[] = [];
    if (outcome.kind !== 'input' && outcome.kind !== 'options') problems.push(`kind ${outcome.kind}`);
    if (outcome.line !== undefined && !(Number.isInteger(outcome.line) && outcome.line >= 1))
      problems.push(`line ${outcome.line}`);
    if (outcome.col !== undefined && !(Number.isInteger(outcome.col) && outcome.col >= 1))
      problems.push(`col ${outcome.col}`);
    if (/\[object Object\]|\bNaN\b|:undefined:/.test(outcome.rendered))
      problems.push('a value printed as [object Object], NaN or undefined');
    if (outcome.rendered.length > 8000) problems.push(`a message of ${outcome.rendered.length} characters`);
    if (problems.length)
      throw new Error(
        `poor error (${problems.join('; ')}):\n${outcome.rendered}\ninput: ${JSON.stringify(input).slice(0, 2000)}`,
      );
  }
}

let worker: LoaderWorker;

beforeAll(() => {
  const stale = staleDistFiles();
  if (stale.length)
    throw new Error(
      `dist/ is older than ${stale.slice(0, 5).join(', ')}${stale.length > 5 ? '…' : ''}: run \`npx tsc -p .\` first`,
    );
  scratch = mkdtempSync(join(tmpdir(), 'cairn-fuzz-'));
  staticRoles = join(scratch, 'roles');
  writeStaticRoles(staticRoles);
  worker = new LoaderWorker(join(repoRoot, 'dist'));
});

afterAll(async () => {
  await worker?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Fixed seeds, one per property, so a failure reproduces; fast-check's message then names seed and path. */
const seedFor = (offset: number) => BASE_SEED + offset;

describe('in process: the loaders accept or refuse with a CairnError, and always answer', () => {
  it('the harness tells refusals, crashes and hangs apart, and recovers from a hang', async () => {
    const refused = await worker.run({ kind: 'playbook', path: scratch, rolesPath: [] });
    expect(refused).toMatchObject({ result: 'refused', kind: 'input', file: scratch });
    const crashed = await worker.run({ kind: 'throw' });
    expect(crashed.result).toBe('crashed');
    expect(() => checkOutcome(crashed, 'throw')).toThrow(/not a CairnError: TypeError/);
    const hung = await worker.run({ kind: 'spin' }, 1000);
    expect(hung).toMatchObject({ result: 'crashed', error: expect.stringMatching(/no answer after 1000 ms/) });
    expect(await worker.run({ kind: 'yaml', text: 'a: [1, 2]' })).toMatchObject({
      result: 'accepted',
      detail: 'object',
    });
  });

  it(
    'random YAML text through parseYaml',
    async () => {
      resetTally();
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(rawYaml, yamlText(anyValue), fc.string({ unit: 'binary', maxLength: 60 })),
          async (text) => {
            checkOutcome(await worker.run({ kind: 'yaml', text }), text);
          },
        ),
        { seed: seedFor(1), numRuns: runs(500) },
      );
      expectBothOutcomes(runs(500), 0.5);
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'nesting: any mix of block and flow styles is read up to 90 levels and refused from 110, at a line:col',
    async () => {
      // The depth limit is checked on the lexer's tokens before parsing; it must not misjudge real shapes.
      const level = fc.tuple(fc.constantFrom('map', 'seq'), fc.option(fc.oneof(identifier, fc.integer()), { freq: 2 }));
      const nested = fc
        .tuple(
          fc.oneof(fc.integer({ min: 1, max: 90 }), fc.integer({ min: 110, max: 160 })),
          level,
          fc.constantFrom('block', 'flow', 'any'),
          fc.constantFrom(2, 4),
        )
        .chain(([depth, , style, indent]) =>
          fc.tuple(
            fc.constant(depth),
            fc.array(level, { minLength: depth, maxLength: depth }),
            fc.constant(style),
            fc.constant(indent),
          ),
        );
      await fc.assert(
        fc.asyncProperty(nested, async ([depth, levels, style, indent]) => {
          let value: unknown = 'leaf';
          for (const [kind, sibling] of levels) {
            if (kind === 'seq') value = sibling === null ? [value] : [sibling, value];
            else value = sibling === null ? { k: value } : { s: sibling, k: value };
          }
          const text = stringify(value, { collectionStyle: style, indent });
          const outcome = await worker.run({ kind: 'yaml', text });
          checkOutcome(outcome, text);
          if (depth <= 90) expect(outcome.result, text).toBe('accepted');
          else {
            expect(outcome).toMatchObject({
              result: 'refused',
              rendered: expect.stringContaining('nests more than 100 levels deep'),
            });
            expect((outcome as { line?: number }).line).toBeLessThanOrEqual(text.split('\n').length);
          }
        }),
        { seed: seedFor(5), numRuns: runs(150) },
      );
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'random inventories through loadInventory, host variables and host patterns',
    async () => {
      resetTally();
      await fc.assert(
        fc.asyncProperty(
          inventoryFiles,
          fc.array(hostPattern, { minLength: 1, maxLength: 3 }),
          async (files, patterns) => {
            const dir = writeInventory(files as InventoryFiles);
            try {
              checkOutcome(await worker.run({ kind: 'inventory', path: join(dir, 'hosts.yaml'), patterns }), {
                files,
                patterns,
              });
            } finally {
              rmSync(dir, { recursive: true, force: true });
            }
          },
        ),
        { seed: seedFor(2), numRuns: runs(400) },
      );
      expectBothOutcomes(runs(400), 0.1);
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'random playbooks and roles through PlaybookLoader',
    async () => {
      resetTally();
      await fc.assert(
        fc.asyncProperty(playbookFiles, async (files) => {
          const dir = writeTree(files as Record<string, string | null>);
          try {
            checkOutcome(
              await worker.run({ kind: 'playbook', path: join(dir, 'site.yaml'), rolesPath: [staticRoles] }),
              files,
            );
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        }),
        { seed: seedFor(3), numRuns: runs(400) },
      );
      expectBothOutcomes(runs(400), 0.1);
    },
    PROPERTY_LIMIT_MS,
  );
});

describe('through the CLI: exit 0 or 5, no stack trace, always finishes', () => {
  it(
    'play --syntax-check and play --list-hosts on random playbooks and inventories',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          playbookFiles,
          inventoryFiles,
          sometimes(hostPattern, 30),
          async (pbFiles, invFiles, limit) => {
            const dir = writeTree(pbFiles as Record<string, string | null>);
            const invDir = writeInventory(invFiles as InventoryFiles);
            try {
              const common = [join(dir, 'site.yaml'), '-i', join(invDir, 'hosts.yaml')];
              const env = { CAIRN_STATE_DIR: join(dir, '.state'), CAIRN_ROLES_PATH: staticRoles };
              const results = await Promise.all([
                runCairn(['play', ...common, '--syntax-check'], { cwd: dir, env, timeoutMs: CLI_LIMIT_MS }),
                runCairn(['play', ...common, '--list-hosts', ...(limit === null ? [] : ['-l', limit])], {
                  cwd: dir,
                  env,
                  timeoutMs: CLI_LIMIT_MS,
                }),
              ]);
              for (const res of results) {
                const shown = `exit ${res.code}\n--- stdout\n${res.stdout.slice(0, 3000)}\n--- stderr\n${res.stderr.slice(0, 3000)}\ninputs: ${JSON.stringify({ pbFiles, invFiles, limit }).slice(0, 3000)}`;
                if (![0, 5].includes(res.code))
                  throw new Error(
                    `exit code ${res.code === -1 ? `-1 (killed after ${CLI_LIMIT_MS} ms)` : res.code}\n${shown}`,
                  );
                if (/^\s+at /m.test(res.stdout + res.stderr)) throw new Error(`stack trace printed\n${shown}`);
                if (/unexpected internal error/.test(res.stderr)) throw new Error(`internal error\n${shown}`);
                if (res.code === 5 && !res.stderr.startsWith('ERROR! '))
                  throw new Error(`exit 5 without an ERROR! paragraph\n${shown}`);
              }
            } finally {
              rmSync(dir, { recursive: true, force: true });
              rmSync(invDir, { recursive: true, force: true });
            }
          },
        ),
        // Each run spawns two processes: stop at the first failure rather than shrink for minutes.
        { seed: seedFor(4), numRuns: runs(12), endOnFailure: true },
      );
    },
    PROPERTY_LIMIT_MS,
  );
});
