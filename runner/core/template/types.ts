import type { SourceLocation } from '../util/errors.js';
import type { Vars } from '../util/vars.js';

export interface Templater {
  /**
   * Render a task argument (strings, lists and mappings, recursively). A string that is exactly one
   * `{{ path }}` (no helper) yields the value itself, so lists and numbers keep their type, as Ansible's
   * native rendering does. `origin` is where the value was written (the task), for errors.
   */
  renderValue(value: unknown, vars: Vars, origin: SourceLocation): unknown;
  /** Render one string; errors name `origin` and the undefined variable. */
  renderString(text: string, vars: Vars, origin: SourceLocation): string;
  /** Render a template file; errors name the template file, line and variable. */
  renderFile(path: string, vars: Vars): string;
}
