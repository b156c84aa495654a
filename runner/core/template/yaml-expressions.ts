/**
 * Every expression of a loaded YAML document parsed (never evaluated) when it is loaded, so a typo inside
 * `{{ }}` or a `when:` is an error at the file:line:col of the YAML value before anything runs, and
 * `--syntax-check` covers expressions too. Conditions (`when`, `changed_when`, `failed_when`, `until`,
 * `assert: that`) are bare expressions; every other string with `{{`, `{%` or `{#` is a template.
 */
import { parseExpression, parseTemplateText, hasTemplateMarkup } from './expr.js';
import { isPlainObject } from '../util/vars.js';
import type { LoadedYaml, YamlPath } from '../util/yaml-source.js';

const CONDITION_KEYS = new Set(['when', 'changed_when', 'failed_when', 'until']);

function checkCondition(loaded: LoadedYaml, value: unknown, path: YamlPath): void {
  if (typeof value === 'string') parseExpression(value, loaded.locate(path));
  else if (Array.isArray(value)) value.forEach((item, i) => checkCondition(loaded, item, [...path, i]));
}

function walk(loaded: LoadedYaml, value: unknown, path: YamlPath, depth: number): void {
  if (depth > 100) return;
  if (typeof value === 'string') {
    if (hasTemplateMarkup(value)) parseTemplateText(value, loaded.locate(path));
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => walk(loaded, item, [...path, i], depth + 1));
    return;
  }
  if (!isPlainObject(value)) return;
  for (const [key, item] of Object.entries(value)) {
    const at = [...path, key];
    if (CONDITION_KEYS.has(key) && typeof item !== 'boolean') checkCondition(loaded, item, at);
    else if ((key === 'assert' || key === 'ansible.builtin.assert') && isPlainObject(item)) {
      for (const [argument, argValue] of Object.entries(item)) {
        if (argument === 'that') checkCondition(loaded, argValue, [...at, argument]);
        else walk(loaded, argValue, [...at, argument], depth + 2);
      }
    } else walk(loaded, item, at, depth + 1);
  }
}

/** Parse every expression and template in the document; the first syntax error is thrown at its value. */
export function checkExpressions(loaded: LoadedYaml): void {
  walk(loaded, loaded.value, [], 0);
}
