/**
 * How a script reaches the remote shell. It never travels as an argument: an argument is limited to 128 KiB
 * (MAX_ARG_STRLEN, "Argument list too long"), a big SSH exec request makes sshd drop the connection ("Bad
 * packet length"), a NUL byte in it ends the connection, and an argv is visible to every user of the host in
 * `ps`. The remote command line is a fixed loader; the script follows on standard input, then the command's
 * own input.
 *
 * Without input, the remote command is `/bin/sh -s`: the shell reads the script from stdin itself, with no
 * extra process. With input, a loader reads exactly the script's bytes (GNU head -c reads no further than
 * asked, so the input stays on stdin for the script) and evals it: the shell alone would buffer past the
 * script and swallow the start of the input. Either way the script is wrapped in `{ ... }`: the shell parses
 * a group whole before running any of it, so a script cut short by a dropped connection is a syntax error and
 * runs nothing, instead of running its first half; and it has read the whole group before any command in it
 * can read stdin.
 */

/** A script holds a NUL byte: no shell can carry one, so it is refused before anything runs. */
export class NulByteError extends Error {
  constructor(what: string) {
    super(`${what} contains a NUL byte, which no shell command can carry`);
    this.name = 'NulByteError';
  }
}

export interface CarriedScript {
  /** The arguments of /bin/sh: `-s`, or `-c` and a loader small, fixed in shape and free of any value. */
  shellArgs: string[];
  /** What the remote command reads: the script, then the caller's stdin. */
  input: Buffer;
}

export function carryScript(script: string, stdin?: string | Buffer): CarriedScript {
  if (script.includes('\0')) throw new NulByteError('the remote script');
  const body = Buffer.from(`{\n${script}\n}\n`, 'utf8');
  const rest = stdin === undefined ? Buffer.alloc(0) : Buffer.isBuffer(stdin) ? stdin : Buffer.from(stdin, 'utf8');
  if (rest.length === 0) return { shellArgs: ['-s'], input: body };
  const loader = `cairn_script=$(head -c ${body.length}) && eval "$cairn_script"`;
  return { shellArgs: ['-c', loader], input: Buffer.concat([body, rest]) };
}
