/**
 * wait_for: wait until a TCP port opens or closes, or a file appears, disappears or contains a pattern.
 * Read-only, and ONE round trip: the polling loop runs on the host until the deadline (bash's /dev/tcp for
 * ports), instead of one SSH round trip per poll.
 */
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseKeyValues, runScript } from './remote.js';
import type { Module, Planned } from './types.js';

export interface WaitForArgs {
  host?: string;
  port?: number;
  path?: string;
  state?: 'started' | 'stopped' | 'present' | 'absent';
  search_regex?: string;
  timeout?: number;
  delay?: number;
  sleep?: number;
  connect_timeout?: number;
  msg?: string;
}

/** Exit codes of the wait script. */
const TIMED_OUT = 3;
const NO_BASH = 4;

/** The whole wait as one POSIX sh script (pure; table-tested). */
export function waitForScript(args: WaitForArgs): string {
  const state = args.state ?? 'started';
  const wantPresent = state === 'started' || state === 'present';
  const host = args.host ?? '127.0.0.1';
  const connectTimeout = args.connect_timeout ?? 2;
  const lines = [
    `timeout_s=${quote(args.timeout ?? 300)}`,
    `delay_s=${quote(args.delay ?? 0)}`,
    `sleep_s=${quote(args.sleep ?? 1)}`,
    'start=$(date +%s)',
    // As Ansible: the delay counts against the timeout.
    'deadline=$((start + timeout_s))',
    'if echo x | grep -Pq x 2>/dev/null; then grep_re() { grep -Pq -- "$@"; }; else grep_re() { grep -Eq -- "$@"; }; fi',
  ];
  let probe: string;
  if (args.port !== undefined) {
    lines.push(
      `command -v bash >/dev/null 2>&1 || { echo 'wait_for needs bash on the host (for /dev/tcp)' >&2; exit ${NO_BASH}; }`,
    );
    const connect = `timeout ${quote(connectTimeout)} bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ ${quote(host)} ${quote(args.port)} 2>/dev/null`;
    if (args.search_regex !== undefined && wantPresent) {
      const read = `timeout ${quote(connectTimeout + 1)} bash -c 'exec 3<>"/dev/tcp/$1/$2" && timeout "$3" cat <&3' _ ${quote(host)} ${quote(args.port)} ${quote(connectTimeout)} 2>/dev/null`;
      probe = `${read} | grep_re ${quote(args.search_regex)}`;
    } else {
      probe = wantPresent ? connect : `! ${connect}`;
    }
  } else if (args.path !== undefined) {
    const path = quote(args.path);
    if (args.search_regex !== undefined && wantPresent)
      probe = `[ -r ${path} ] && grep_re ${quote(args.search_regex)} ${path} 2>/dev/null`;
    else probe = wantPresent ? `[ -e ${path} ]` : `[ ! -e ${path} ]`;
  } else {
    // Neither port nor path: wait out the timeout, as Ansible does.
    probe = 'false';
  }
  lines.push(
    'if [ "$delay_s" != 0 ]; then sleep "$delay_s"; fi',
    `probe() { ${probe}; }`,
    'while :; do',
    '  if probe; then echo result=ok; echo "elapsed=$(($(date +%s) - start))"; exit 0; fi',
    `  if [ "$(date +%s)" -ge "$deadline" ]; then echo result=timeout; echo "elapsed=$(($(date +%s) - start))"; exit ${TIMED_OUT}; fi`,
    '  sleep "$sleep_s"',
    'done',
  );
  return lines.join('\n');
}

/** Ansible's wording of what was waited for. */
export function waitTarget(args: WaitForArgs): string {
  const state = args.state ?? 'started';
  const stopping = state === 'stopped' || state === 'absent';
  if (args.port !== undefined) {
    const where = `${args.host ?? '127.0.0.1'}:${args.port}`;
    if (args.search_regex !== undefined && !stopping)
      return `search string ${JSON.stringify(args.search_regex)} on ${where}`;
    return stopping ? `${where} to stop` : where;
  }
  if (args.path !== undefined) {
    if (args.search_regex !== undefined && !stopping)
      return `search string ${JSON.stringify(args.search_regex)} in ${args.path}`;
    return stopping ? `file ${args.path} to be absent` : `file ${args.path}`;
  }
  return `${args.timeout ?? 300} seconds`;
}

export const waitForModule: Module<WaitForArgs> = {
  name: 'wait_for',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      host: { type: 'string', minLength: 1 },
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      path: { type: 'string', minLength: 1 },
      state: { enum: ['started', 'stopped', 'present', 'absent'] },
      search_regex: { type: 'string' },
      timeout: { type: 'integer', minimum: 0 },
      delay: { type: 'number', minimum: 0 },
      sleep: { type: 'number', exclusiveMinimum: 0 },
      connect_timeout: { type: 'number', exclusiveMinimum: 0 },
      msg: { type: 'string' },
    },
  },

  async check(ctx, args): Promise<Planned> {
    if (args.port !== undefined && args.path !== undefined)
      throw argError(ctx, 'wait_for takes port or path, not both');
    const timeout = args.timeout ?? 300;
    const res = await runScript(ctx, waitForScript(args), {
      timeoutMs: (timeout + (args.connect_timeout ?? 2) + 15) * 1000,
    });
    const result = parseKeyValues(res.stdout);
    const elapsed = Number(result.get('elapsed') ?? '0');
    const data: Record<string, unknown> = { elapsed, state: args.state ?? 'started' };
    if (args.port !== undefined) data.port = args.port;
    if (args.path !== undefined) data.path = args.path;
    if (res.code === 0 && result.get('result') === 'ok') return { changed: false, actions: [], data };
    let msg: string;
    if (result.get('result') === 'timeout')
      msg = args.msg ?? `Timeout when waiting for ${waitTarget(args)} (waited ${elapsed} s)`;
    else if (res.code === NO_BASH) msg = failureText(res);
    else if (res.timedOut)
      msg = `Timeout when waiting for ${waitTarget(args)}: the host did not answer within ${timeout} s`;
    else msg = `wait_for failed: ${failureText(res)}`;
    return { changed: false, actions: [], failed: msg, data: { ...data, msg } };
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
