/**
 * Ansible's `environment` keyword for one task: a connection whose scripts start by exporting the task's
 * variables. The exports travel inside the script, which is carried on the command's standard input
 * (./carrier.ts), so a value (a proxy password, a token) never appears in an argv; and they are set in the
 * shell that runs after sudo, so they reach the module's commands under become as well (Ansible sets them
 * in the module's own environment, after become).
 */
import { quote } from './quote.js';
import type { Connection, ExecOptions, ExecResult } from './types.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The export lines for `environment`; a name a shell cannot hold is an error naming it. */
export function environmentExports(environment: Readonly<Record<string, string>>): string {
  return Object.entries(environment)
    .map(([name, value]) => {
      if (!NAME.test(name))
        throw new Error(`environment: ${JSON.stringify(name)} is not a valid environment variable name`);
      if (value.includes('\0')) throw new Error(`environment: the value of ${name} contains a NUL byte`);
      return `export ${name}=${quote(value)}`;
    })
    .join('\n');
}

/** `conn`, with every script it runs preceded by the exports of `environment`. */
export function withEnvironment(conn: Connection, environment: Readonly<Record<string, string>>): Connection {
  const exports = environmentExports(environment);
  if (exports === '') return conn;
  return {
    host: conn.host,
    user: conn.user,
    exec: (script: string, opts?: ExecOptions): Promise<ExecResult> => conn.exec(`${exports}\n${script}`, opts),
    // The task does not own the connection: the run closes it once, at its end.
    close: () => Promise.resolve(),
  };
}
