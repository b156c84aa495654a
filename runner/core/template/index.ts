/**
 * cairn's templating: Ansible's expression language (expr.ts) for YAML values, conditions and Jinja template
 * files (any name not ending in `.hbs`), Handlebars for `.hbs` template files (handlebars.ts), one filter
 * table for both (filters.ts). See README.md here.
 */
export { createTemplater } from './handlebars.js';
export {
  evaluate,
  evaluateCondition,
  evaluateAll,
  parseExpression,
  parseTemplateText,
  renderValue,
  renderTemplateString,
  renderJinjaFile,
  checkSyntax,
  hasTemplateMarkup,
  isTruthy,
  EXPRESSION_FILTERS,
  EXPRESSION_TESTS,
} from './expr.js';
export { HELPER_NAMES, isHandlebarsFile } from './handlebars.js';
export type { Templater } from './types.js';
export type { ValueOrigin } from './expr.js';
