/**
 * `cairn template convert FILE.j2 [-o FILE.hbs]`: a Jinja template as a cairn (Handlebars) template that
 * renders the same bytes; what cannot be converted is named by line and the command exits 5.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { inputError } from '../core/util/errors.js';
import { convertJinja } from '../core/template/convert.js';
import { readTextFile } from '../core/util/yaml-source.js';

export function registerTemplateCommands(program: Command): void {
  const template = program
    .command('template')
    .description('template files: convert Jinja (.j2) to cairn templates (.hbs)');
  template
    .command('convert')
    .description('convert a Jinja template to a cairn Handlebars template (if/elif/else, for, set, filters, comments)')
    .argument('<file>', 'the Jinja template (.j2)')
    .option('-o, --output <file>', 'where to write the converted template (default: standard output)')
    .action((file: string, opts: { output?: string }) => {
      const { handlebars, problems } = convertJinja(readTextFile(file, 'Jinja template'));
      if (problems.length > 0) {
        throw inputError(
          `cannot convert ${problems.length} construct${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${file}: ${p}`).join('\n')}`,
          { file },
        );
      }
      if (opts.output) writeFileSync(opts.output, handlebars);
      else process.stdout.write(handlebars);
    });
}
