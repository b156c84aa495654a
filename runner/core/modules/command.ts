/**
 * command: run one program with arguments, no shell. The free-form string is split shlex-style into words
 * and each word is quoted, so `$(...)`, `;`, `|`, globs and redirections are plain characters, as in
 * Ansible's command module. `creates`/`removes` make it idempotent: check probes them.
 */
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseKeyValues, runScript, splitLines, stripEnds } from './remote.js';
import { ShlexError, shlexSplit } from './shlex.js';
import type { Module, ModuleContext, ModuleResult, Planned } from './types.js';

export interface CommandArgs {
  cmd?: string;
  argv?: string[];
  chdir?: string;
  creates?: string;
  removes?: string;
  stdin?: string;
  stdin_add_newline?: boolean;
}

export interface ShellArgs {
  cmd: string;
  chdir?: string;
  creates?: string;
  removes?: string;
  executable?: string;
  stdin?: string;
  stdin_add_newline?: boolean;
}

/** What command and shell share: how to run, and the idempotence guards. */
export interface RunSpec {
  /** The shell line that runs the program (already quoted). */
  commandLine: string;
  /** `cmd` as registered: the word list for command, the string for shell (as Ansible). */
  registeredCmd: string | string[];
  /** For messages: "would run ...". */
  display: string;
  chdir?: string;
  creates?: string;
  removes?: string;
  stdin?: string;
  stdinAddNewline: boolean;
}

/**
 * A glob pattern for the shell: `*` and `?` stay active (Ansible's creates/removes accept globs), every
 * other character is quoted.
 */
export function quoteGlob(pattern: string): string {
  return pattern
    .split(/([*?])/)
    .filter((piece) => piece !== '')
    .map((piece) => (piece === '*' || piece === '?' ? piece : quote(piece)))
    .join('');
}

const CHDIR_FAILED = 'cairn: cannot change directory';

function cdLine(chdir: string | undefined): string[] {
  // A fixed message on stderr tells a failed cd apart from the program's own exit status 97.
  return chdir === undefined
    ? []
    : [`cd -- ${quote(chdir)} 2>/dev/null || { echo ${quote(CHDIR_FAILED)} >&2; exit 97; }`];
}

/** The probe of creates/removes: prints creates=1 / removes=1 when a matching path exists. */
export function guardProbeScript(spec: Pick<RunSpec, 'chdir' | 'creates' | 'removes'>): string {
  const lines = [...cdLine(spec.chdir)];
  for (const [key, pattern] of [
    ['creates', spec.creates],
    ['removes', spec.removes],
  ] as const) {
    if (pattern === undefined) continue;
    lines.push(`for f in ${quoteGlob(pattern)}; do if [ -e "$f" ] || [ -L "$f" ]; then echo ${key}=1; break; fi; done`);
  }
  return lines.join('\n');
}

function skippedData(spec: RunSpec, msg: string): Record<string, unknown> {
  return { cmd: spec.registeredCmd, rc: 0, stdout: msg, stderr: '', stdout_lines: [msg], stderr_lines: [], msg };
}

/** check for command and shell: changed ("would run") unless creates/removes says it is already done. */
export async function checkRun(ctx: ModuleContext, spec: RunSpec): Promise<Planned<RunSpec>> {
  const planned: Planned<RunSpec> = { changed: true, actions: [`run ${spec.display}`], state: spec };
  if (spec.creates === undefined && spec.removes === undefined) return planned;
  const res = await runScript(ctx, guardProbeScript(spec));
  if (res.code === 97 && res.stderr.includes(CHDIR_FAILED))
    return { changed: false, actions: [], failed: `cannot change directory to ${spec.chdir}` };
  if (res.code !== 0)
    return { changed: false, actions: [], failed: `checking creates/removes failed: ${failureText(res)}` };
  const found = parseKeyValues(res.stdout);
  if (spec.creates !== undefined && found.get('creates') === '1') {
    return { changed: false, actions: [], data: skippedData(spec, `skipped, since ${spec.creates} exists`) };
  }
  if (spec.removes !== undefined && found.get('removes') !== '1') {
    return { changed: false, actions: [], data: skippedData(spec, `skipped, since ${spec.removes} does not exist`) };
  }
  return planned;
}

/** apply for command and shell: run it once; a non-zero exit status fails the task. */
export async function applyRun(ctx: ModuleContext, plan: Planned<RunSpec>): Promise<ModuleResult> {
  const spec = plan.state;
  if (!spec) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data: {} };
  const script = [...cdLine(spec.chdir), `exec ${spec.commandLine}`].join('\n');
  const stdin = spec.stdin === undefined ? undefined : spec.stdinAddNewline ? `${spec.stdin}\n` : spec.stdin;
  const started = Date.now();
  const res = await runScript(ctx, script, stdin === undefined ? {} : { stdin });
  const stdout = stripEnds(res.stdout);
  const stderr = stripEnds(res.stderr);
  const data: Record<string, unknown> = {
    cmd: spec.registeredCmd,
    rc: res.code,
    stdout,
    stderr,
    stdout_lines: splitLines(stdout),
    stderr_lines: splitLines(stderr),
    delta_ms: Date.now() - started,
  };
  if (res.code === 97 && stderr === CHDIR_FAILED) {
    return { changed: false, failed: true, msg: `cannot change directory to ${spec.chdir}`, data };
  }
  if (res.code !== 0) {
    const detail = stderr ? `: ${stderr.split('\n').slice(-3).join('\n')}` : '';
    const msg = res.timedOut ? `${spec.display} timed out` : `non-zero return code ${res.code}${detail}`;
    return { changed: true, failed: true, msg, data: { ...data, msg } };
  }
  return { changed: true, data };
}

export const commandModule: Module<CommandArgs, RunSpec> = {
  name: 'command',
  freeFormArg: 'cmd',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      cmd: { type: 'string', minLength: 1 },
      argv: { type: 'array', items: { type: 'string' }, minItems: 1 },
      chdir: { type: 'string', minLength: 1 },
      creates: { type: 'string', minLength: 1 },
      removes: { type: 'string', minLength: 1 },
      stdin: { type: 'string' },
      stdin_add_newline: { type: 'boolean' },
    },
  },

  async check(ctx, args) {
    if ((args.cmd === undefined) === (args.argv === undefined))
      throw argError(ctx, 'command takes exactly one of cmd (free form) or argv');
    let words: string[];
    try {
      words = args.argv ?? shlexSplit(args.cmd ?? '');
    } catch (err) {
      if (err instanceof ShlexError) throw argError(ctx, `command: ${err.message}`);
      throw err;
    }
    if (words.length === 0) throw argError(ctx, 'command has nothing to run');
    return checkRun(ctx, {
      commandLine: words.map(quote).join(' '),
      registeredCmd: words,
      display: words.map(quote).join(' '),
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
