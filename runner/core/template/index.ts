/** cairn's templating: Handlebars for files and task arguments, a safe evaluator for conditions. */
export { createTemplater } from './handlebars.js';
export { evaluate, evaluateCondition, evaluateAll, EXPRESSION_FILTERS, EXPRESSION_TESTS } from './expr.js';
export { HELPER_NAMES } from './helpers.js';
export type { Templater } from './types.js';
