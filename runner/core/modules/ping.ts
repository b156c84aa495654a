/**
 * ping: proves cairn can log in to the host and run a command there, as Ansible's ping module (which proves
 * the same with Python). One round trip; `data` comes back as `ping`, and `data: crash` fails, as in Ansible.
 * Reference: ansible/modules/ping.py.
 */
import { failureText, runScript } from './remote.js';
import type { Module, Planned } from './types.js';

export interface PingArgs {
  data?: string;
}

export const pingModule: Module<PingArgs> = {
  name: 'ping',
  readOnly: true,
  argsSchema: { type: 'object', additionalProperties: false, properties: { data: { type: 'string' } } },

  async check(ctx, args): Promise<Planned> {
    const data = args.data ?? 'pong';
    if (data === 'crash') return { changed: false, actions: [], failed: 'boom (ping was asked to crash)' };
    // A fixed word, not the user's data: nothing the user wrote is run on the host.
    const res = await runScript(ctx, 'echo cairn-pong');
    if (res.code !== 0 || res.stdout.trim() !== 'cairn-pong')
      return { changed: false, actions: [], failed: `ping failed: ${failureText(res)}` };
    return { changed: false, actions: [], data: { ping: data } };
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
