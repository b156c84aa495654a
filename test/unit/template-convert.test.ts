/**
 * `cairn template convert`: real Jinja templates (test/fixtures/jinja-templates, cited in sources.json)
 * converted to Handlebars render byte for byte what Ansible's template module rendered for the same
 * variables (recorded once with ansible-core 2.14 by generate.py); unsupported constructs are named by line,
 * and the template module renders a .j2 file natively.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { convertJinja } from '../../runner/core/template/convert.js';
import { createTemplater } from '../../runner/core/template/index.js';

const dir = fileURLToPath(new URL('../fixtures/jinja-templates/', import.meta.url));
const sources = JSON.parse(readFileSync(join(dir, 'sources.json'), 'utf8')) as Record<string, string>;
const templater = createTemplater({ partialsDirs: [] });

describe('converted real Jinja templates render what Ansible renders', () => {
  it('covers at least five real templates', () => {
    expect(Object.keys(sources).length).toBeGreaterThanOrEqual(5);
  });

  it.each(Object.entries(sources))('%s (%s)', (name) => {
    const { handlebars, problems } = convertJinja(readFileSync(join(dir, `${name}.j2`), 'utf8'));
    expect(problems).toEqual([]);
    const vars = JSON.parse(readFileSync(join(dir, `${name}.vars.json`), 'utf8')) as Record<string, unknown>;
    const rendered = templater.renderHandlebars(handlebars, vars, { file: `${name}.hbs` });
    expect(rendered).toBe(readFileSync(join(dir, `${name}.expected`), 'utf8'));
  });
});

describe('what cannot be converted is named by line', () => {
  it('names template inheritance, list literals and macros', () => {
    const { problems } = convertJinja('a\n{% if x %}{{ [1, 2] | join }}{% endif %}\n{{ f(x) }}\n');
    expect(problems).toEqual([
      'line 2: cannot convert a list literal',
      'line 3: cannot convert a function or method call',
    ]);
    expect(convertJinja('{% extends "base.j2" %}\n').problems).toEqual([
      'line 1: the statement "{% extends %}" is not supported (supported: if/elif/else, for, set, raw, block)',
    ]);
  });
});

describe('the template module renders a Jinja file natively (no conversion needed)', () => {
  it('renders {% %} statements of a .j2 file', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'cairn-j2-'));
    try {
      const file = join(tmp, 'app.conf.j2');
      writeFileSync(file, 'port = {{ port }}\n{% if tls %}\ntls = on\n{% endif %}\n');
      expect(templater.renderFile(file, { port: 1, tls: true })).toBe('port = 1\ntls = on\n');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
