/**
 * cairn's Handlebars templater: native values for task arguments, every helper, partials from real
 * folders, and errors that name file:line:col and the variable. Templates are real files in a temp dir.
 */
import fc from 'fast-check';
import Handlebars from 'handlebars';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CairnError, type SourceLocation } from '../../runner/core/util/errors.js';
import { lazyVars } from '../../runner/core/engine/lazy-vars.js';
import { createTemplater, evaluate, type Templater } from '../../runner/core/template/index.js';
import { builtinRolesDir } from '../../runner/core/util/paths.js';
import { renderRoleHaproxyCfg } from '../helpers/haproxy.js';

const ROLES_DIR = builtinRolesDir();

const SHARED_TEMPLATES = fileURLToPath(new URL('../../templates', import.meta.url));
const origin: SourceLocation = { file: 'roles/haproxy/tasks/main.yml', line: 14, col: 7 };

const vars = {
  inventory_hostname: 'web1',
  groups: { web: ['web1', 'web2'], db: ['db1'] },
  haproxy: {
    port: 8080,
    backends: [
      { name: 'web1', address: '10.0.0.11/24' },
      { name: 'web2', address: '10.0.0.12/24' },
    ],
  },
  item: 3,
  enabled: true,
  nothing: null,
  empty_list: [] as unknown[],
  text: 'line1\nline2',
  gappy: 'a\n\nb',
  path: '/etc/haproxy/haproxy.cfg',
  cfg: { a: 1, b: [true, null] },
  motd: "it's <ok> & fine",
  port_text: '8443',
  version: '2.8.5',
};

let dir: string;
let templater: Templater;

function failure(run: () => unknown): CairnError {
  try {
    run();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw new Error(`expected a CairnError, got ${err instanceof Error ? err.stack : String(err)}`, { cause: err });
  }
  throw new Error('expected a CairnError, nothing was thrown');
}

/** Write a file under the temp dir and return its path. */
function file(relative: string, content: string | Buffer): string {
  const path = join(dir, relative);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  return path;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-template-'));
  templater = createTemplater({ partialsDirs: [SHARED_TEMPLATES] });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('renderValue (Ansible expressions in YAML values)', () => {
  const native: Array<[string, (v: typeof vars) => unknown]> = [
    ['{{ groups.web }}', (v) => v.groups.web],
    ['{{item}}', (v) => v.item],
    ['{{ haproxy }}', (v) => v.haproxy],
    ['{{ enabled }}', (v) => v.enabled],
    ['{{ nothing }}', () => null],
    ["{{ groups['web'][1] }}", () => 'web2'],
    ['{{ groups.web | length }}', () => 2],
    ['{{ haproxy.backends }}', (v) => v.haproxy.backends],
    ['{{ item + 1 }}', () => 4],
  ];
  it.each(native)('%s keeps the value itself', (text, pick) => {
    expect(templater.renderValue(text, vars, origin)).toEqual(pick(vars));
  });

  const rendered: Array<[string, string]> = [
    ['port {{ haproxy.port }}', 'port 8080'],
    ['{{ item }} ', '3 '],
    ['{{ item }}{{ item }}', '33'],
    ['{{ cfg | to_json }}', '{"a": 1, "b": [true, null]}'],
    ['{{ groups.web }}-x', "['web1', 'web2']-x"],
    ['cfg={{ cfg }}', "cfg={'a': 1, 'b': [True, None]}"],
    // Ansible's finalize prints None as nothing (checked: `ansible -m debug -a 'msg="{{ nothing }}|{{ item }}"'`).
    ['{{ nothing }}|{{ item }}', '|3'],
    ['no mustache', 'no mustache'],
    ['{# a comment #}', ''],
    ['{{ inventory_hostname | upper }}', 'WEB1'],
    ["{{ '' if enabled else 'kube_node' }}", ''],
    ['{% for h in groups.web %}{{ h }}{% if not loop.last %},{% endif %}{% endfor %}', 'web1,web2'],
  ];
  it.each(rendered)('%s renders to text', (text, expected) => {
    expect(templater.renderString(text, vars, origin)).toBe(expected);
  });

  it('passes non-strings through and recurses into lists and mappings without touching the input', () => {
    const args = {
      list: ['{{ item }}', 'n{{ item }}', 5, false, null],
      nested: { hosts: '{{ groups.web }}', port: 80 },
    };
    const before = JSON.stringify(args);
    expect(templater.renderValue(args, vars, origin)).toEqual({
      list: [3, 'n3', 5, false, null],
      nested: { hosts: ['web1', 'web2'], port: 80 },
    });
    expect(JSON.stringify(args)).toBe(before);
    for (const scalar of [7, true, null, undefined]) expect(templater.renderValue(scalar, vars, origin)).toBe(scalar);
  });

  it('fails on a missing path, naming it, its level and the failing part', () => {
    const error = failure(() => templater.renderValue('{{ groups.nope }}', vars, origin));
    expect(error.location).toEqual(origin);
    expect(error.message).toBe(
      'undefined variable "groups.nope" in template "{{ groups.nope }}" (at col 4: "groups.nope") (available at this level: web, db)',
    );
    expect(error.detail).toBe('1 | {{ groups.nope }}\n       ^');
  });
});

describe('helpers', () => {
  const cases: Array<[string, string]> = [
    ['{{join groups.web ", "}}', 'web1, web2'],
    // One default separator for join, Jinja's: the empty string.
    ['{{join groups.web}}', 'web1web2'],
    ['{{join (range 3) ""}}', '012'],
    ['{{default missing "x"}}', 'x'],
    ['{{default missing.deep.er 7}}', '7'],
    ['{{default item 7}}', '3'],
    ['{{default nothing "x"}}', ''],
    ['{{default empty_list "none" true}}', 'none'],
    ['{{#if (defined missing)}}y{{else}}n{{/if}}', 'n'],
    ['{{defined nothing}}', 'true'],
    ['{{defined haproxy.port}}', 'true'],
    ['{{defined haproxy.nope.deeper}}', 'false'],
    ['{{indent text 2}}', 'line1\n  line2'],
    ['{{indent text 2 first=true}}', '  line1\n  line2'],
    ['{{indent text}}', 'line1\n    line2'],
    ['{{indent gappy 2}}', 'a\n\n  b'],
    ['{{indent gappy 2 blank=true}}', 'a\n  \n  b'],
    ['{{json cfg}}', '{"a":1,"b":[true,null]}'],
    ['{{json cfg 2}}', '{\n  "a": 1,\n  "b": [\n    true,\n    null\n  ]\n}'],
    ['{{yaml cfg}}', 'a: 1\nb:\n  - true\n  - null'],
    ['{{#if (eq item 3)}}y{{/if}}', 'y'],
    ['{{eq port_text 8443}}', 'false'],
    ['{{eq groups.web (split "web1 web2")}}', 'true'],
    ['{{ne item 4}}', 'true'],
    ['{{lt item 4}}', 'true'],
    ['{{le item 3}}', 'true'],
    ['{{gt item 4}}', 'false'],
    ['{{ge item 4}}', 'false'],
    ['{{and enabled item}}', '3'],
    ['{{#if (and enabled empty_list)}}y{{else}}n{{/if}}', 'n'],
    ['{{or nothing "fallback"}}', 'fallback'],
    ['{{or item "fallback"}}', '3'],
    ['{{not empty_list}}', 'true'],
    ['{{not item}}', 'false'],
    ['{{upper inventory_hostname}}', 'WEB1'],
    ['{{lower "AbC"}}', 'abc'],
    ['{{trim "  x "}}', 'x'],
    // Python's shlex.quote, as Ansible's quote filter.
    ['{{quote motd}}', `'it'"'"'s <ok> & fine'`],
    ['{{quote path}}', '/etc/haproxy/haproxy.cfg'],
    ['{{quote "a b"}}', `'a b'`],
    ['{{quote ""}}', `''`],
    ['{{replace path "/" ":"}}', ':etc:haproxy:haproxy.cfg'],
    ['{{join (split "a,b,c" ",") "|"}}', 'a|b|c'],
    ['{{length (split "  a  b ")}}', '2'],
    ['{{first groups.web}}', 'web1'],
    ['{{last groups.web}}', 'web2'],
    ['{{first "abc"}}', 'a'],
    ['{{length groups.web}}', '2'],
    ['{{length haproxy}}', '2'],
    ['{{length inventory_hostname}}', '4'],
    ['{{join (keys groups) ","}}', 'web,db'],
    ['{{#each (range 3)}}{{this}}{{/each}}', '012'],
    ['{{join (range 1 7 2) ","}}', '1,3,5'],
    ['{{join (range 3 0 -1) ","}}', '3,2,1'],
    ['{{contains groups.web "web2"}}', 'true'],
    ['{{contains groups.web "web3"}}', 'false'],
    ['{{contains path "haproxy"}}', 'true'],
    ['{{contains groups "db"}}', 'true'],
    [String.raw`{{regex_replace version "^(\d+)\.(\d+).*$" "\1-\2"}}`, '2-8'],
    [String.raw`{{regex_replace version "(?P<major>\d+)\..*" "v\g<major>"}}`, 'v2'],
    ['{{regex_replace "ABC" "b" "x" ignorecase=true}}', 'AxC'],
    ['{{regex_replace "a.a" "a" "$1"}}', '$1.$1'],
    ['{{to_int port_text}}', '8443'],
    ['{{#if (gt (to_int port_text) 1024)}}high{{/if}}', 'high'],
    ['{{basename path}}', 'haproxy.cfg'],
    ['{{dirname path}}', '/etc/haproxy'],
    ['{{#each haproxy.backends}}{{cidr_address address}} {{/each}}', '10.0.0.11 10.0.0.12 '],
    ['{{cidr_address "fe80::1/64"}}', 'fe80::1'],
    ['{{cidr_address "192.168.1.1"}}', '192.168.1.1'],
    ['{{lookup groups "db"}}', '["db1"]'],
    ['{{lookup haproxy "port"}}', '8080'],
    ['{{lookup groups.web 1}}', 'web2'],
    ['{{lookup haproxy "weight" "none"}}', 'none'],
    ['{{lookup haproxy "port" 1}}', '8080'],
    ['{{#each groups.web}}{{@index}}={{this}};{{/each}}', '0=web1;1=web2;'],
    ['{{#each groups}}{{@key}}:{{length this}} {{/each}}', 'web:2 db:1 '],
    ['{{#each haproxy.backends as |backend|}}{{backend.name}}@{{../haproxy.port}} {{/each}}', 'web1@8080 web2@8080 '],
    [
      '{{#each haproxy.backends as |b|}}{{default b.weight 1}}{{b}}{{/each}}',
      '1{"name":"web1","address":"10.0.0.11/24"}1{"name":"web2","address":"10.0.0.12/24"}',
    ],
    ['{{#with haproxy}}{{port}}{{/with}}', '8080'],
    ['{{#unless enabled}}off{{else}}on{{/unless}}', 'on'],
    ['{{#each empty_list}}x{{else}}none{{/each}}', 'none'],
    ['{{motd}}', "it's <ok> & fine"],
  ];
  it.each(cases)('%s', (template, expected) => {
    expect(templater.renderHandlebars(template, vars, origin)).toBe(expected);
  });

  const refusals: Array<[string, string]> = [
    ['{{join item ","}}', 'join needs a list, got a number (3)'],
    ['{{to_int "abc"}}', 'to_int: expected a whole number, got a string ("abc")'],
    ['{{cidr_address "nope"}}', 'cidr_address: expected an IP address with an optional /prefix, got a string ("nope")'],
    [
      '{{cidr_address "10.0.0.1/33"}}',
      'cidr_address: expected an IP address with an optional /prefix, got a string ("10.0.0.1/33")',
    ],
    ['{{lt item "4"}}', 'lt: cannot compare a number (3) with a string ("4") (convert the text to a number first)'],
    [
      '{{regex_replace "a" "(" "x"}}',
      'regex_replace: invalid regular expression "(": error parsing regexp: missing closing ): `(`',
    ],
    ['{{length}}', 'length takes an argument, got none'],
    ['{{eq item}}', 'eq takes 2 arguments, got 1'],
    ['{{lookup haproxy "port" 1 2}}', 'lookup takes an object, a key and an optional fallback, got 4 argument(s)'],
    ['{{range 1000000}}', 'range of 1000000 numbers is too long (at most 100000)'],
    ['{{first empty_list}}', 'first: undefined variable "first of an empty list"'],
    ['{{replace cfg "a" "b"}}', 'replace needs text, got a mapping (keys: a, b)'],
    ['{{keys groups.web}}', 'keys needs a mapping, got a list of 2 items'],
    ['{{quote groups.web}}', 'quote needs text, got a list of 2 items'],
  ];
  it.each(refusals)('%s is refused', (template, message) => {
    const error = failure(() => templater.renderHandlebars(template, vars, origin));
    expect(error.location).toEqual(origin);
    expect(error.message).toBe(`${message} in "${template}"`);
    expect(error.detail).toBe(`1 | ${template}\n    ^`);
  });
});

describe('errors in template files name file:line:col and the variable', () => {
  it('names the undefined variable and what its level held', () => {
    const lines = Array.from({ length: 11 }, (_, i) => `# line ${i + 1}`);
    lines.push('   {{ haproxy_backends }}');
    const path = file('templates/haproxy.cfg.hbs', `${lines.join('\n')}\n`);
    const error = failure(() => templater.renderFile(path, { haproxy_backend: [], haproxy_port: 80 }));
    expect(error.location).toEqual({ file: path, line: 12, col: 7 });
    expect(error.render()).toBe(
      `${path}:12:7: undefined variable "haproxy_backends" (available at this level: haproxy_backend, haproxy_port)\n` +
        '12 |    {{ haproxy_backends }}\n' +
        '           ^',
    );
  });

  const cases: Array<[string, string, number, number, string]> = [
    [
      'nested',
      'global\n  port {{ haproxy.nope.x }}\n',
      2,
      11,
      'undefined variable "haproxy.nope.x": "haproxy.nope" is not defined (available at this level: port, backends)',
    ],
    [
      'in an each block',
      '{{#each haproxy.backends}}\n{{ name }} {{ weight }}\n{{/each}}\n',
      2,
      15,
      'undefined variable "weight" (available at this level: name, address)',
    ],
    ['a parent level', '{{#each haproxy.backends}}\n  {{ ../nope }}\n{{/each}}', 2, 6, 'undefined variable "../nope"'],
    ['a helper argument', 'x\n{{join missing_list ","}}', 2, 8, 'undefined variable "missing_list"'],
    ['a hash argument', '{{indent text first=nope}}', 1, 21, 'undefined variable "nope"'],
    ['an if block', '{{#if nope}}x{{/if}}', 1, 7, 'undefined variable "nope"'],
    ['an each block', 'a\nb {{#each nope}}x{{/each}}', 2, 11, 'undefined variable "nope"'],
    [
      'a with block',
      '{{#with haproxy}}{{ prot }}{{/with}}',
      1,
      21,
      'undefined variable "prot" (available at this level: port, backends)',
    ],
    [
      'a primitive item',
      '{{#each groups.web}}{{ nmae }}{{/each}}',
      1,
      24,
      'undefined variable "nmae" (the value there is a string ("web1"), not a mapping)',
    ],
    ['@root', '{{#each groups.web}}{{ @root.nope }}{{/each}}', 1, 24, 'undefined variable "@root.nope"'],
    ['lookup', '{{lookup groups "www"}}', 1, 1, 'undefined variable "groups.www" (available at this level: web, db)'],
    ['an unknown helper', '\n{{ frobnicate haproxy }}', 2, 4, 'unknown helper "frobnicate"'],
    ['a helper refusing', 'a\n  {{join item ","}}', 2, 3, 'join needs a list, got a number (3)'],
    ['a prototype member', '{{ haproxy.constructor }}', 1, 4, 'undefined variable "haproxy.constructor"'],
    [
      'a block parameter path',
      '{{#each haproxy.backends as |backend|}}\n  {{ backend.nmae }}\n{{/each}}',
      2,
      6,
      'undefined variable "backend.nmae"',
    ],
    [
      'a block parameter argument',
      '{{#each haproxy.backends as |b|}}{{upper b.nmae}}{{/each}}',
      1,
      34,
      'undefined variable "haproxy.backends.0.nmae" (available at this level: name, address)',
    ],
    ['the log helper', '{{log "debug"}}', 1, 1, 'the log helper is not available'],
  ];
  it.each(cases)('%s', (name, content, line, col, message) => {
    const path = file(`templates/${name.replace(/\W+/g, '-')}.hbs`, content);
    const error = failure(() => templater.renderFile(path, vars));
    expect(error.location).toEqual({ file: path, line, col });
    expect(error.message).toContain(message);
    if (!message.includes('"../nope"') && !message.includes('@root'))
      expect(error.message.startsWith(message)).toBe(true);
    expect(error.detail).toContain(`${line} | `);
  });

  const syntax: Array<[string, string, number, string]> = [
    [
      'unclosed block',
      'a\n{{#if enabled}}\nb\n',
      4,
      'template syntax error: unexpected end of the template (is a {{#block}} left open?)',
    ],
    ['unclosed mustache', 'line one\n{{ foo', 2, 'template syntax error: unexpected invalid'],
    ['numeric segment', '{{ groups.web.0 }}', 1, 'template syntax error: unexpected number (expected id)'],
  ];
  it.each(syntax)('a syntax error names file:line (%s)', (name, content, line, message) => {
    const path = file(`templates/syntax-${name.replace(/\W+/g, '-')}.hbs`, content);
    const error = failure(() => templater.renderFile(path, vars));
    expect(error.location).toEqual({ file: path, line });
    expect(error.message).toContain(message);
    expect(error.detail).toMatch(/\^$/);
  });

  it('names a mismatched block close at its line and column', () => {
    const path = file('templates/mismatch.hbs', 'x\n  {{#if enabled}}\n{{/each}}\n');
    const error = failure(() => templater.renderFile(path, vars));
    expect(error.location).toEqual({ file: path, line: 2, col: 6 });
    expect(error.message).toBe("template error: if doesn't match each");
  });

  it('refuses files it cannot read, naming the path', () => {
    const missing = join(dir, 'templates/absent.hbs');
    expect(failure(() => templater.renderFile(missing, vars)).render()).toBe(
      `${missing}: cannot read template: no such file`,
    );
    const folder = join(dir, 'templates');
    expect(failure(() => templater.renderFile(folder, vars)).render()).toBe(
      `${folder}: expected a template file, found a directory`,
    );
    const binary = file('templates/binary.hbs', Buffer.from([0x7b, 0x7b, 0x00, 0x7d]));
    expect(failure(() => templater.renderFile(binary, vars)).message).toContain('binary (it contains NUL bytes)');
    const latin1 = file('templates/latin1.hbs', Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    expect(failure(() => templater.renderFile(latin1, vars)).message).toBe('template is not valid UTF-8 text');
  });

  it('renders a template file', () => {
    const path = file(
      'templates/ok.cfg.hbs',
      'frontend main\n  bind *:{{ haproxy.port }}\n{{#each haproxy.backends}}\n  server {{ name }} {{ cidr_address address }}:80\n{{/each}}\n',
    );
    expect(templater.renderFile(path, vars)).toBe(
      'frontend main\n  bind *:8080\n  server web1 10.0.0.11:80\n  server web2 10.0.0.12:80\n',
    );
  });
});

describe('errors in strings written in tasks name the task and quote the string', () => {
  it('names the origin and quotes the string with a caret', () => {
    const error = failure(() => templater.renderString('port {{ nope }}', vars, origin));
    expect(error.location).toEqual(origin);
    expect(error.message).toBe(
      `undefined variable "nope" in template "port {{ nope }}" (at col 9: "nope") (available at this level: ${Object.keys(vars).join(', ')})`,
    );
    expect(error.detail).toBe('1 | port {{ nope }}\n            ^');
  });

  it('says which line of a multi-line string', () => {
    const error = failure(() => templater.renderString('a\n{{ nope }}', { a: 1 }, origin));
    expect(error.message).toBe(
      'undefined variable "nope" in template "a {{ nope }}" (at line 2, col 4: "nope") (available at this level: a)',
    );
    expect(error.detail).toBe('2 | {{ nope }}\n       ^');
  });

  it('reports a syntax error in a string', () => {
    const error = failure(() => templater.renderValue({ dest: '{{ x | }}' }, vars, origin));
    expect(error.location).toEqual(origin);
    expect(error.message).toBe(
      'invalid template "{{ x | }}": expected a filter name after "|", found the end (at col 8)',
    );
  });
});

describe('partials', () => {
  let first: string;
  let second: string;
  beforeAll(() => {
    first = join(dir, 'partials-a');
    second = join(dir, 'partials-b');
    file('partials-a/header.hbs', 'A-header');
    file('partials-a/footer.hbs', 'A-footer {{item}}');
    file('partials-a/broken.hbs', 'ok\n  {{ missing_in_partial }}\n');
    file('partials-b/header.hbs', 'B-header');
    file('partials-b/readme.txt', 'not a partial');
    file('partials-b/sub/nested.hbs', 'not registered: only the folder itself');
  });

  it('registers every .hbs by name, later folders overriding earlier ones, missing folders ignored', () => {
    const ab = createTemplater({ partialsDirs: [first, second, join(dir, 'no-such-folder')] });
    expect(ab.renderHandlebars('{{> header}}|{{> footer}}', vars, origin)).toBe('B-header|A-footer 3');
    const ba = createTemplater({ partialsDirs: [second, first] });
    expect(ba.renderHandlebars('{{> header}}|{{> footer}}', vars, origin)).toBe('A-header|A-footer 3');
  });

  it('does not register other files or sub-folders, and says what it knows', () => {
    const ab = createTemplater({ partialsDirs: [first, second] });
    for (const name of ['readme', 'nested', 'sub/nested']) {
      const error = failure(() => ab.renderHandlebars(`x {{> ${name}}}`, vars, origin));
      expect(error.message).toContain(
        `partial "${name}" not found (known partials: broken, footer, header; looked in ${first}, ${second})`,
      );
    }
  });

  it('reports an error inside a partial at the partial file, and where it was included from', () => {
    const ab = createTemplater({ partialsDirs: [first] });
    const main = file('templates/uses-broken.hbs', 'top\n{{> broken}}\n');
    const error = failure(() => ab.renderFile(main, vars));
    expect(error.location).toEqual({ file: join(first, 'broken.hbs'), line: 2, col: 6 });
    expect(error.message).toContain(`undefined variable "missing_in_partial"`);
    expect(error.message).toContain(`(included from ${main})`);
    const inline = failure(() => ab.renderHandlebars('{{> broken}}', vars, origin));
    expect(inline.location).toEqual({ file: join(first, 'broken.hbs'), line: 2, col: 6 });
    expect(inline.message).toContain('(included from roles/haproxy/tasks/main.yml:14:7, in "{{> broken}}")');
  });

  it('fails at the call when a partial is missing from a file', () => {
    const path = file('templates/missing-partial.hbs', 'a\n  {{> nope}}\n');
    const error = failure(() => templater.renderFile(path, vars));
    expect(error.location).toEqual({ file: path, line: 2, col: 3 });
    expect(error.message).toMatch(/^partial "nope" not found \(known partials: .*cairn-header/);
  });

  it('ships cairn-header: a do-not-edit comment with a comment marker that defaults to #', () => {
    const shipped = readFileSync(join(SHARED_TEMPLATES, 'cairn-header.hbs'), 'utf8');
    expect(shipped).toContain('{{default comment "#"}}');
    const hash = templater.renderHandlebars('{{> cairn-header}}', vars, origin);
    expect(hash).toMatch(/^# Managed by cairn\. Do not edit by hand/);
    expect(hash.endsWith('\n')).toBe(true);
    expect(templater.renderHandlebars('{{> cairn-header comment="//"}}', vars, origin)).toMatch(
      /^\/\/ Managed by cairn\./,
    );
    // Standalone on its own indented line it keeps the indentation and adds no blank line.
    const config = file('templates/with-header.cfg.hbs', '  {{> cairn-header comment=";"}}\nglobal\n');
    expect(templater.renderFile(config, vars)).toBe(`  ; ${hash.slice(2)}global\n`);
  });

  it('keeps each templater isolated and the global Handlebars untouched', () => {
    const bare = createTemplater({ partialsDirs: [] });
    expect(failure(() => bare.renderHandlebars('{{> header}}', vars, origin)).message).toContain(
      'partial "header" not found (known partials: none; looked in no partials folders)',
    );
    expect(Object.keys(Handlebars.helpers)).not.toContain('join');
    expect(Object.keys(Handlebars.partials)).not.toContain('cairn-header');
    expect(Handlebars.compile('{{x}}')({})).toBe('');
  });

  it('refuses a partials path that is not a folder', () => {
    const notFolder = file('plain-file.txt', 'x');
    expect(failure(() => createTemplater({ partialsDirs: [notFolder] })).render()).toMatch(
      new RegExp(`^${notFolder.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read the partials folder`),
    );
  });
});

describe("on the engine's lazy variable view", () => {
  // The engine hands templates a Proxy that renders variables holding templates when they are read.
  const view = () =>
    lazyVars(
      {
        vip_address: '10.0.0.5',
        vip_url: 'http://{{ vip_address }}/',
        vip_port: 8443,
        ports: [80, '{{ vip_port }}'],
        broken: '{{ nowhere }}',
      },
      (template, context) => templater.renderValue(template, context, origin),
    );

  it('renders and evaluates through it', () => {
    expect(templater.renderString('{{ vip_url }}:{{ vip_port }}', view(), origin)).toBe('http://10.0.0.5/:8443');
    expect(templater.renderValue('{{ ports }}', view(), origin)).toEqual([80, 8443]);
    expect(evaluate(`vip_url == 'http://10.0.0.5/' and ports[1] == 8443`, view(), origin)).toBe(true);
  });

  it('takes a variable whose own template meets an undefined name as undefined, as Ansible does', () => {
    expect(evaluate('broken is defined', view(), origin)).toBe(false);
    expect(evaluate(`broken | default('fallback')`, view(), origin)).toBe('fallback');
    const error = failure(() => evaluate('broken == 1', view(), origin));
    expect(error.message).toContain(
      'undefined variable "broken" in expression "broken == 1" (at col 1: "broken") (its template failed: roles/haproxy/tasks/main.yml:14:7: undefined variable "nowhere"',
    );
  });

  it('lists the names of a level without rendering them (one is broken)', () => {
    const inTemplate = failure(() => templater.renderString('{{ vip_adress }}', view(), origin));
    expect(inTemplate.message).toContain('available at this level: vip_address, vip_url, vip_port, ports, broken');
    const inExpression = failure(() => evaluate('vip_adress == 1', view(), origin));
    expect(inExpression.message).toContain('undefined variable "vip_adress"');
    expect(inExpression.message).toContain('vip_address');
  });

  it("names a variable whose own template failed, and that template's error", () => {
    const message = failure(() => templater.renderString('x {{ broken }}', view(), origin)).message;
    expect(message).toMatch(/^undefined variable "broken"/);
    expect(message).toContain('undefined variable "nowhere"');
  });
});

describe('compiled templates are cached by content, never by values', () => {
  it('renders the same text with different variables', () => {
    expect(templater.renderString('{{ a }}-{{ b }}', { a: 1, b: 2 }, origin)).toBe('1-2');
    expect(templater.renderString('{{ a }}-{{ b }}', { a: 'x', b: 'y' }, origin)).toBe('x-y');
    expect(failure(() => templater.renderString('{{ a }}-{{ b }}', { a: 1 }, origin)).message).toContain(
      'undefined variable "b"',
    );
  });
});

describe('injection attempts reach nothing', () => {
  const payload = [
    '{{#with "s" as |string|}}',
    '  {{#with "e"}}',
    '    {{#with split as |conslist|}}',
    '      {{this.pop}}',
    '      {{this.push (lookup string.sub "constructor")}}',
    '      {{this.pop}}',
    '      {{#with string.split as |codelist|}}',
    '        {{this.pop}}',
    '        {{this.push "return globalThis.cairnPwned = true;"}}',
    '        {{this.pop}}',
    '        {{#each conslist}}',
    '          {{#with (string.sub.apply 0 codelist)}}{{this}}{{/with}}',
    '        {{/each}}',
    '      {{/with}}',
    '    {{/with}}',
    '  {{/with}}',
    '{{/with}}',
  ].join('\n');

  const attempts = [
    '{{constructor}}',
    '{{constructor.constructor}}',
    '{{__proto__}}',
    '{{haproxy.__proto__}}',
    '{{toString}}',
    '{{lookup this "constructor"}}',
    '{{lookup this "__proto__"}}',
    '{{lookup (lookup this "constructor") "constructor"}}',
    '{{#with (lookup this "__proto__")}}{{/with}}',
    '{{groups.web.constructor}}',
    '{{inventory_hostname.constructor.constructor}}',
    '{{groups.web.map}}',
    '{{inventory_hostname.toString}}',
    '{{#with inventory_hostname}}{{constructor}}{{/with}}',
    payload,
  ];
  it.each(attempts)('%s', (template) => {
    const error = failure(() => templater.renderHandlebars(template, vars, origin));
    expect(error.message).toMatch(/undefined variable|takes an argument|needs/);
    expect((globalThis as Record<string, unknown>)['cairnPwned']).toBeUndefined();
  });

  it('never escapes as anything but text or a CairnError', () => {
    const piece = fc.constantFrom(
      '{{',
      '}}',
      '{{#if',
      '{{/if}}',
      '{{#each',
      '{{/each}}',
      '{{else}}',
      '{{>',
      ' ',
      'item',
      'groups.web',
      'nope',
      '.',
      '..',
      '/',
      '@root',
      'this',
      '(',
      ')',
      '"s"',
      '1',
      'join',
      'default',
      'eq',
      'constructor',
      '__proto__',
      '=',
      'x',
      '~',
      '!',
      '[0]',
      '{{{',
      '}}}',
      '\n',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        try {
          return typeof templater.renderHandlebars(pieces.join(''), vars, origin) === 'string';
        } catch (err) {
          return err instanceof CairnError;
        }
      }),
      { numRuns: 1500 },
    );
    expect((globalThis as Record<string, unknown>)['cairnPwned']).toBeUndefined();
  });
});

describe("the haproxy and keepalived roles' backend address: service_address, else ansible_host", () => {
  // Found by `cairn init` + `--check` on the lab: `default (lookup h "service_address") …` threw before
  // `default` ran, for every inventory without service_address (the example's included).
  const lowerLayer = { service_address: '10.0.1.22' };
  const hostvars = {
    web1: { ansible_host: '192.0.2.21' },
    // service_address from a lower variable layer (the layers are a prototype chain): it must still win.
    web2: Object.assign(Object.create(lowerLayer) as Record<string, unknown>, { ansible_host: '192.0.2.22' }),
  };

  it('haproxy.cfg: web1 by its ansible_host, web2 by its service_address', () => {
    const cfg = renderRoleHaproxyCfg({
      haproxy_vip: '127.0.0.1',
      haproxy_stats_socket: '/run/haproxy/admin.sock',
      haproxy_stats_bind_address: '127.0.0.1',
      haproxy_stats_port: 8404,
      haproxy_frontends: [{ name: 'http', port: 80, backend: 'web' }],
      haproxy_backends: [{ name: 'web', port: 80, hosts: ['web1', 'web2'] }],
      hostvars,
    });
    expect(cfg).toContain('    server web1 192.0.2.21:80 check');
    expect(cfg).toContain('    server web2 10.0.1.22:80 check');
  });

  it('keepalived.conf: the unicast peers the same way', () => {
    const line =
      '{{#each hosts}}{{ lookup (lookup @root.hostvars this) "service_address" (lookup (lookup @root.hostvars this) "ansible_host") }} {{/each}}';
    const conf = readFileSync(join(ROLES_DIR, 'keepalived', 'templates', 'keepalived.conf.hbs'), 'utf8');
    expect(conf).toContain(line.slice(line.indexOf('{{ lookup'), line.indexOf(' {{/each}}')));
    expect(templater.renderHandlebars(line, { hosts: ['web1', 'web2'], hostvars }, origin)).toBe(
      '192.0.2.21 10.0.1.22 ',
    );
  });
});
