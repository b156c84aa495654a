/**
 * raw: hand a command line to the host's shell as it is (or to `executable`), as Ansible's raw. Like
 * command without creates/removes it is always a change: check plans the run, apply runs it once, and a
 * non-zero exit fails with Ansible's "non-zero return code". Ansible skips raw in check mode; cairn's check
 * never runs it either, it only says it would. Reference: ansible/plugins/action/raw.py.
 */
import { quote } from '../transport/quote.js';
import { runScript, splitLines, stripEnds } from './remote.js';
import type { Module, Planned } from './types.js';

export interface RawArgs {
  cmd: string;
  executable?: string;
}

export const rawModule: Module<RawArgs, RawArgs> = {
  name: 'raw',
  freeFormArg: 'cmd',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['cmd'],
    properties: { cmd: { type: 'string', minLength: 1 }, executable: { type: 'string', minLength: 1 } },
  },

  check(_ctx, args): Promise<Planned<RawArgs>> {
    return Promise.resolve({ changed: true, actions: [`run raw ${args.cmd}`], state: args });
  },

  async apply(ctx, args) {
    // Without executable the line is the script itself (the login shell reads it, as Ansible's raw does);
    // with one, it is one quoted argument to `executable -c`.
    const script = args.executable ? `exec ${quote(args.executable)} -c ${quote(args.cmd)}` : args.cmd;
    const res = await runScript(ctx, script);
    const stdout = stripEnds(res.stdout);
    const stderr = stripEnds(res.stderr);
    const data: Record<string, unknown> = {
      rc: res.code,
      stdout,
      stderr,
      stdout_lines: splitLines(stdout),
      stderr_lines: splitLines(stderr),
    };
    if (res.code !== 0) return { changed: true, failed: true, msg: 'non-zero return code', data };
    return { changed: true, data };
  },
};
