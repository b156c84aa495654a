/**
 * wait_for_connection: wait until the host answers over a new connection, as Ansible's action plugin
 * (lib/ansible/plugins/action/wait_for_connection.py): after `delay`, every `sleep` seconds until `timeout`,
 * the connection is re-established (cairn's one connection per host is replaced, with `connect_timeout` for
 * the handshake) and a ping runs over it. Reports `elapsed` seconds.
 *
 * Read-only, so it does its whole job in check: Ansible skips it in check mode, cairn waits there too (a host
 * that is up answers at once; nothing on it changes either way).
 */
import type { Connection } from '../transport/types.js';
import { errorMessage } from './remote.js';
import type { Module, ModuleContext, Planned } from './types.js';

export interface WaitForConnectionArgs {
  delay?: number;
  sleep?: number;
  timeout?: number;
  connect_timeout?: number;
}

/** Sleep `ms`, ending early when the run is interrupted (callers then look at `signal.aborted`). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done(): void {
      signal?.removeEventListener('abort', done);
      clearTimeout(timer);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A new connection to the task's host (or the task's own one where no reconnect is possible: unit tests). */
export async function freshConnection(ctx: ModuleContext, connectTimeoutMs?: number): Promise<Connection> {
  if (!ctx.reconnect) return ctx.conn;
  return ctx.reconnect(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {});
}

/** The end-to-end test Ansible runs with its ping module: a fixed word echoed back over the connection. */
export async function pingOver(conn: Connection, timeoutMs: number): Promise<void> {
  const res = await conn.exec('echo cairn-pong', { timeoutMs });
  if (res.code !== 0 || res.stdout.trim() !== 'cairn-pong') throw new Error('ping test failed');
}

export const waitForConnectionModule: Module<WaitForConnectionArgs> = {
  name: 'wait_for_connection',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      delay: { type: 'number', minimum: 0 },
      sleep: { type: 'number', minimum: 0 },
      timeout: { type: 'number', minimum: 0 },
      connect_timeout: { type: 'number', exclusiveMinimum: 0 },
    },
  },

  async check(ctx, args): Promise<Planned> {
    const connectTimeoutMs = (args.connect_timeout ?? 5) * 1000;
    const start = Date.now();
    if (args.delay) await pause(args.delay * 1000, ctx.signal);
    const deadline = Date.now() + (args.timeout ?? 600) * 1000;
    let lastError = 'no attempt was made';
    while (Date.now() < deadline && !ctx.signal?.aborted) {
      try {
        await pingOver(await freshConnection(ctx, connectTimeoutMs), connectTimeoutMs);
        return { changed: false, actions: [], data: { elapsed: Math.floor((Date.now() - start) / 1000) } };
      } catch (err) {
        lastError = errorMessage(err);
      }
      await pause(Math.min((args.sleep ?? 1) * 1000, Math.max(0, deadline - Date.now())), ctx.signal);
    }
    const elapsed = Math.floor((Date.now() - start) / 1000);
    const msg = `timed out waiting for ping module test: ${lastError}`;
    return { changed: false, actions: [], failed: msg, data: { elapsed, msg } };
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
