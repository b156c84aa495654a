/**
 * shell: run a command line through a shell (/bin/sh, or `executable`), by design: pipes, variables and
 * redirections work. The line is passed as one quoted argument to `sh -c`, so it is the only thing the
 * shell interprets.
 */
import { quote } from '../transport/quote.js';
import { applyRun, checkRun, type RunSpec, type ShellArgs } from './command.js';
import type { Module } from './types.js';

export const shellModule: Module<ShellArgs, RunSpec> = {
  name: 'shell',
  freeFormArg: 'cmd',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['cmd'],
    properties: {
      cmd: { type: 'string', minLength: 1 },
      chdir: { type: 'string', minLength: 1 },
      creates: { type: 'string', minLength: 1 },
      removes: { type: 'string', minLength: 1 },
      executable: { type: 'string', minLength: 1 },
      stdin: { type: 'string' },
      stdin_add_newline: { type: 'boolean' },
    },
  },

  check(ctx, args) {
    const shell = args.executable ?? '/bin/sh';
    return checkRun(ctx, {
      commandLine: `${quote(shell)} -c ${quote(args.cmd)}`,
      registeredCmd: args.cmd,
      display: args.cmd,
      chdir: args.chdir,
      creates: args.creates,
      removes: args.removes,
      stdin: args.stdin,
      stdinAddNewline: args.stdin_add_newline ?? true,
    });
  },

  apply(ctx, _args, plan) {
    return applyRun(ctx, plan);
  },
};
