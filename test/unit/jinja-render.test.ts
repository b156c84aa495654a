/**
 * Jinja template files rendered natively (issue 14 item 4, issue 12): the template module's `.j2` sources
 * go through cairn's one evaluator and filter table (expr.ts), not through Handlebars.
 *
 * - test/fixtures/jinja-templates: real public templates (cited in sources.json) must render byte for byte
 *   what Ansible's template module rendered for the same variables (recorded by generate.py there).
 * - test/fixtures/jinja-statements: one case per statement and whitespace rule; expected.json is what
 *   ansible-core 2.14's own template module (Jinja2 3.1.2) rendered for each, recorded by generate.py there.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CairnError } from '../../runner/core/util/errors.js';
import { createTemplater } from '../../runner/core/template/index.js';
import { renderJinjaFile, MAX_OUTPUT_CHARS } from '../../runner/core/template/expr.js';

const realDir = fileURLToPath(new URL('../fixtures/jinja-templates/', import.meta.url));
const statementsDir = fileURLToPath(new URL('../fixtures/jinja-statements/', import.meta.url));
const sources = JSON.parse(readFileSync(join(realDir, 'sources.json'), 'utf8')) as Record<string, string>;
const cases = JSON.parse(readFileSync(join(statementsDir, 'expected.json'), 'utf8')) as Record<
  string,
  { template: string; vars: Record<string, unknown>; rendered: string }
>;
const templater = createTemplater({ partialsDirs: [] });
const tmp = mkdtempSync(join(tmpdir(), 'cairn-jinja-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function failure(body: () => unknown): CairnError {
  try {
    body();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw err;
  }
  throw new Error('expected a CairnError');
}

function templateFile(name: string, content: string): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}

describe('real Jinja templates render natively what Ansible renders, byte for byte', () => {
  it('covers at least five real templates', () => {
    expect(Object.keys(sources).length).toBeGreaterThanOrEqual(5);
  });

  it.each(Object.entries(sources))('%s (%s)', (name) => {
    const vars = JSON.parse(readFileSync(join(realDir, `${name}.vars.json`), 'utf8')) as Record<string, unknown>;
    // Through the templater's file entry point, as the template module calls it.
    const rendered = templater.renderFile(join(realDir, `${name}.j2`), vars);
    expect(Buffer.from(rendered, 'utf8').equals(readFileSync(join(realDir, `${name}.expected`)))).toBe(true);
    expect(rendered).toBe(readFileSync(join(realDir, `${name}.expected`), 'utf8'));
  });
});

describe('statements and whitespace rules render as Ansible renders them', () => {
  it('has the recorded cases', () => {
    expect(Object.keys(cases).length).toBeGreaterThanOrEqual(30);
  });

  it.each(Object.entries(cases))('%s', (name, { template, vars, rendered }) => {
    expect(renderJinjaFile(template, vars, `${name}.j2`)).toBe(rendered);
  });
});

describe('which template files are Jinja', () => {
  it('renders a .j2 file with {% %} natively and a .hbs file with Handlebars', () => {
    const j2 = templateFile('app.conf.j2', 'port = {{ port }}\n{% if tls %}\ntls = on\n{% endif %}\n');
    expect(templater.renderFile(j2, { port: 1, tls: true })).toBe('port = 1\ntls = on\n');
    const hbs = templateFile('app.conf.hbs', 'port = {{ port }}\n{{#if tls}}\ntls = on\n{{/if}}\n');
    expect(templater.renderFile(hbs, { port: 1, tls: true })).toBe('port = 1\ntls = on\n');
  });

  it('treats any file without .hbs as Jinja (Ansible material names templates freely)', () => {
    const plain = templateFile('motd', 'Welcome to {{ name | upper }}{% if x %}!{% endif %}\n');
    expect(templater.renderFile(plain, { name: 'web', x: true })).toBe('Welcome to WEB!\n');
  });

  it('refuses {% in a .hbs file, pointing at the line and the rename', () => {
    const hbs = templateFile('mixed.hbs', 'a\n  {% if x %}b{% endif %}\n');
    const error = failure(() => templater.renderFile(hbs, { x: true }));
    expect(error.location).toEqual({ file: hbs, line: 2, col: 3 });
    expect(error.message).toContain(`rename it to ${join(tmp, 'mixed')}.j2`);
  });
});

describe('errors name file:line:col of the template', () => {
  const unsupported: Array<[string, string, number, number]> = [
    ['macro', 'a\n{% macro m(x) %}{{ x }}{% endmacro %}\n', 2, 4],
    ['include', 'a\nb\n  {% include "other.j2" %}\n', 3, 6],
    ['import', '{% import "m.j2" as m %}\n', 1, 4],
    ['extends', '{% extends "base.j2" %}\n', 1, 4],
    ['call', 'x\n{% call m() %}y{% endcall %}\n', 2, 4],
    ['filter', '{% filter upper %}y{% endfilter %}\n', 1, 4],
  ];
  it.each(unsupported)('an unsupported statement is named: %s', (name, content, line, col) => {
    const path = templateFile(`unsupported-${name}.j2`, content);
    const error = failure(() => templater.renderFile(path, {}));
    expect(error.location).toEqual({ file: path, line, col });
    expect(error.message).toContain(`the statement "{% ${name} %}" is not supported`);
    expect(error.detail).toContain(`${line} | `);
  });

  it('an undefined variable names its line and column and is an input error', () => {
    const path = templateFile('undefined.j2', 'a\n{% for h in hosts %}\n  {{ h.nmae }}\n{% endfor %}\n');
    const error = failure(() => templater.renderFile(path, { hosts: [{ name: 'x' }] }));
    expect(error.location).toEqual({ file: path, line: 3, col: 6 });
    expect(error.message).toContain('h.nmae');
    expect(error.detail).toBe('3 |   {{ h.nmae }}\n         ^');
  });

  it('a syntax error and an unclosed block name where they are', () => {
    const broken = templateFile('broken.j2', 'x\n{{ a + }}\n');
    expect(failure(() => templater.renderFile(broken, { a: 1 })).location).toEqual({ file: broken, line: 2, col: 8 });
    const open = templateFile('open.j2', 'x\n{% if a %}\ny\n');
    const error = failure(() => templater.renderFile(open, { a: 1 }));
    expect(error.message).toContain('expected one of "{% elif %}", "{% else %}", "{% endif %}"');
    expect(error.location?.file).toBe(open);
  });

  it('line numbers count the #jinja2: header line', () => {
    const path = templateFile('header-error.j2', '#jinja2: lstrip_blocks: True\nok\n{{ nope }}\n');
    expect(failure(() => templater.renderFile(path, {})).location).toEqual({ file: path, line: 3, col: 4 });
  });

  it('a header option cairn does not support is named', () => {
    const path = templateFile('header-bad.j2', '#jinja2: variable_start_string: "[["\n[[ x ]]\n');
    const error = failure(() => templater.renderFile(path, { x: 1 }));
    expect(error.message).toContain('the #jinja2: header option "variable_start_string" is not supported');
    expect(error.location).toEqual({ file: path, line: 1, col: 10 });
  });

  it('output is bounded', () => {
    const path = templateFile('huge.j2', '{% for i in range(100000) %}{{ "x" * 1000 }}{% endfor %}\n');
    const error = failure(() => templater.renderFile(path, {}));
    expect(error.message).toContain(`the template's output passed ${MAX_OUTPUT_CHARS / 1024 / 1024} MiB`);
    expect(error.location?.file).toBe(path);
  });

  it('nesting is bounded at parse time', () => {
    const deep = `${'{% if true %}'.repeat(70)}x${'{% endif %}'.repeat(70)}\n`;
    const path = templateFile('deep.j2', deep);
    expect(failure(() => templater.renderFile(path, {})).message).toContain('nested too deeply');
  });
});
