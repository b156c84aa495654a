import type { SourceLocation } from '../util/errors.js';
import type { Vars } from '../util/vars.js';
import type { ValueOrigin } from './expr.js';

export interface Templater {
  /**
   * Render a task argument (strings, lists and mappings, recursively) in Ansible's expression language
   * (expr.ts). A string that is exactly one `{{ expr }}` yields the value itself, so lists and numbers keep
   * their type, as Ansible's native rendering does. `origin` is where the value was written, for errors: one
   * location, or a function giving each string's own (a task's arguments are located one by one).
   */
  renderValue(value: unknown, vars: Vars, origin: ValueOrigin): unknown;
  /** Render one string in Ansible's expression language; errors name `origin` and the failing part. */
  renderString(text: string, vars: Vars, origin: SourceLocation): string;
  /** Render Handlebars text given inline (what a template file holds): for tests and converted templates. */
  renderHandlebars(text: string, vars: Vars, origin: SourceLocation): string;
  /** Render a template file; errors name the template file, line and variable. */
  renderFile(path: string, vars: Vars): string;
}
