/**
 * reboot: reboot the host, wait for it to come back, and prove it did, with Ansible's semantics
 * (lib/ansible/plugins/action/reboot.py):
 * 1. read the boot id with `boot_time_command` (default `cat /proc/sys/kernel/random/boot_id`);
 * 2. run `reboot_command` (default `shutdown -r <pre_reboot_delay in minutes> "<msg>"`); a connection that
 *    drops while it runs is the reboot happening, not a failure;
 * 3. wait `post_reboot_delay`, then until `reboot_timeout`: re-establish cairn's connection to the host
 *    (`connect_timeout` for each handshake) and read the boot id again, until it is there and different;
 * 4. until `reboot_timeout` again: run `test_command` (default `whoami`) until it succeeds.
 * Reports `rebooted` and `elapsed` (seconds from the reboot command). Retries back off as Ansible's do
 * (2^n s plus up to 1 s, at most 12 s), never past the deadline. Check mode plans the reboot and touches
 * nothing (Ansible returns changed and rebooted without connecting). A local connection is refused: it would
 * reboot the control node.
 *
 * test/integration/reboot.test.ts drives the whole cycle on a real sshd whose "reboot" is a restart. The
 * default path (shutdown -r on a real kernel) can only be proven on the VM tier; that lab test is still to be
 * written (test/lab/72-reboot.test.ts, gated by CAIRN_LAB_VM=1 like 70-vm; docs/ansible-compat.md).
 */
import { quote } from '../transport/quote.js';
import { UnreachableError, type Connection } from '../transport/types.js';
import { errorMessage, runScript } from './remote.js';
import type { Module, ModuleContext, ModuleResult, Planned } from './types.js';
import { freshConnection, pause } from './wait-for-connection.js';

export interface RebootArgs {
  reboot_timeout?: number;
  pre_reboot_delay?: number;
  post_reboot_delay?: number;
  connect_timeout?: number;
  test_command?: string;
  reboot_command?: string;
  boot_time_command?: string;
  msg?: string;
}

export const DEFAULT_BOOT_TIME_COMMAND = 'cat /proc/sys/kernel/random/boot_id';
const DEFAULT_MESSAGE = 'Reboot initiated by Ansible';
/** How long the reboot command may run before cairn takes its silence for the host going down. */
const REBOOT_COMMAND_TIMEOUT_MS = 60_000;

/** The reboot command as Ansible builds it for Linux: `shutdown -r <minutes> "<message>"` (pure; tested). */
export function rebootCommand(args: RebootArgs): string {
  if (args.reboot_command !== undefined) return args.reboot_command;
  const delayMinutes = Math.floor(Math.max(0, args.pre_reboot_delay ?? 0) / 60);
  return `shutdown -r ${delayMinutes} ${quote(args.msg ?? DEFAULT_MESSAGE)}`;
}

/** Ansible's retry pause: 2^n seconds plus a random fraction, capped at 12 s. */
function backoffMs(failures: number): number {
  const jitter = Math.random() * 1000;
  return Math.min(2 ** failures * 1000, 12_000) + jitter;
}

/** Run `attempt` until it resolves or the deadline passes; the error says what was waited for and last failed. */
async function untilSuccess(
  ctx: ModuleContext,
  what: string,
  timeoutS: number,
  attempt: () => Promise<void>,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutS * 1000;
  let failures = 0;
  let lastError = '';
  while (Date.now() < deadline && !ctx.signal?.aborted) {
    try {
      await attempt();
      return undefined;
    } catch (err) {
      lastError = errorMessage(err);
      failures++;
    }
    await pause(Math.min(backoffMs(failures), Math.max(0, deadline - Date.now())), ctx.signal);
  }
  if (ctx.signal?.aborted) return `interrupted while waiting for ${what}`;
  return `Timed out waiting for ${what} (timeout=${timeoutS})${lastError ? `: last error: ${lastError}` : ''}`;
}

export const rebootModule: Module<RebootArgs> = {
  name: 'reboot',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      reboot_timeout: { type: 'number', exclusiveMinimum: 0 },
      pre_reboot_delay: { type: 'number' },
      post_reboot_delay: { type: 'number' },
      connect_timeout: { type: 'number', exclusiveMinimum: 0 },
      test_command: { type: 'string', minLength: 1 },
      reboot_command: { type: 'string', minLength: 1 },
      boot_time_command: { type: 'string', minLength: 1 },
      msg: { type: 'string' },
    },
  },

  check(ctx, args): Promise<Planned> {
    if (ctx.local)
      return Promise.resolve({
        changed: false,
        actions: [],
        failed: 'Running reboot with local connection would reboot the control node.',
        data: { rebooted: false, elapsed: 0 },
      });
    return Promise.resolve({
      changed: true,
      actions: [`reboot ${ctx.host} (${rebootCommand(args)})`],
      data: { rebooted: true, elapsed: 0 },
    });
  },

  async apply(ctx, args): Promise<ModuleResult> {
    const timeoutS = args.reboot_timeout ?? 600;
    const bootTimeCommand = args.boot_time_command ?? DEFAULT_BOOT_TIME_COMMAND;
    const before = await runScript(ctx, bootTimeCommand);
    if (before.code !== 0) {
      const msg = `reboot: failed to get host boot time info, rc: ${before.code}, stdout: ${before.stdout.trim()}, stderr: ${before.stderr.trim()}`;
      return { changed: false, failed: true, msg, data: { rebooted: false, elapsed: 0 } };
    }
    const previousBoot = before.stdout.trim();

    let rebootRes;
    try {
      rebootRes = await runScript(ctx, rebootCommand(args), { timeoutMs: REBOOT_COMMAND_TIMEOUT_MS });
    } catch (err) {
      // The host went down under the command: the reboot is under way (Ansible: AnsibleConnectionFailure).
      if (!(err instanceof UnreachableError)) throw err;
    }
    const start = Date.now();
    const elapsed = (): number => Math.floor((Date.now() - start) / 1000);
    if (rebootRes && rebootRes.code !== 0 && !rebootRes.timedOut) {
      const msg = `Reboot command failed. Error was: '${rebootRes.stdout.trim()}, ${rebootRes.stderr.trim()}'`;
      return { changed: false, failed: true, msg, data: { rebooted: false, elapsed: elapsed() } };
    }
    if (args.post_reboot_delay && args.post_reboot_delay > 0) await pause(args.post_reboot_delay * 1000, ctx.signal);

    const connectTimeoutMs = args.connect_timeout !== undefined ? args.connect_timeout * 1000 : undefined;
    const become = { become: ctx.become, becomeUser: ctx.becomeUser };
    // The connection that saw the new boot; the test command runs over it first.
    let current: Connection | undefined;
    const bootChanged = await untilSuccess(ctx, 'last boot time check', timeoutS, async () => {
      const conn = await freshConnection(ctx, connectTimeoutMs);
      current = conn;
      const res = await conn.exec(bootTimeCommand, { ...become, timeoutMs: 30_000 });
      if (res.code !== 0) throw new Error(`boot time command failed, rc: ${res.code}: ${res.stderr.trim()}`);
      const now = res.stdout.trim();
      if (now === '' || now === previousBoot) throw new Error('boot time has not changed');
    });
    if (bootChanged !== undefined)
      return { changed: true, failed: true, msg: bootChanged, data: { rebooted: true, elapsed: elapsed() } };

    const testCommand = args.test_command ?? 'whoami';
    const tested = await untilSuccess(ctx, 'post-reboot test command', timeoutS, async () => {
      // After a failure, a new connection: the host may have rebooted again (as Ansible resets it).
      const conn = current ?? (await freshConnection(ctx, connectTimeoutMs));
      current = undefined;
      const res = await conn.exec(testCommand, { ...become, timeoutMs: 60_000 });
      if (res.code !== 0) throw new Error(`Test command failed: ${res.stderr.trim()} ${res.stdout.trim()}`);
    });
    if (tested !== undefined)
      return { changed: true, failed: true, msg: tested, data: { rebooted: true, elapsed: elapsed() } };
    return { changed: true, data: { rebooted: true, elapsed: elapsed() } };
  },
};
