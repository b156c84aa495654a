/**
 * async_status: the state of a job a task started with `async: N` and `poll: 0` (Ansible's async_status,
 * lib/ansible/modules/async_status.py). `jid` is the `ansible_job_id` that task registered: the job's private
 * folder on the host (runner/core/engine/async-job.ts). Status is a read: it never changes the host and
 * answers the same in check mode; `mode: cleanup` removes the folder. The job's output travels base64-framed,
 * so nothing it printed can pose as the status.
 */
import { quote } from '../transport/quote.js';
import { failureText, parseKeyValues, runScript } from './remote.js';
import type { Module, ModuleResult, Planned } from './types.js';

export interface AsyncStatusArgs {
  jid: string;
  mode?: 'status' | 'cleanup';
}

/** A job folder as async-job.ts makes them: <home>/.cairn_async/job.XXXXXXXXXX, nothing else. */
const JOB_ID = /^\/(?:[^/\0]+\/)*\.cairn_async\/job\.[A-Za-z0-9]{10}$/;

/** The status script (pure): whether the job ended, then its status and output as base64 (never removed). */
export function asyncStatusScript(jid: string): string {
  return [
    `d=${quote(jid)}`,
    'if [ ! -d "$d" ] || [ -L "$d" ]; then echo found=0; exit 0; fi',
    'echo found=1',
    'if [ ! -e "$d/rc" ]; then echo finished=0; exit 0; fi',
    'echo finished=1',
    'printf "rc=%s\\n" "$(head -c 16 "$d/rc")"',
    'printf "stdout_b64="; head -c 1048576 "$d/stdout" | base64 -w0; echo',
    'printf "stderr_b64="; head -c 1048576 "$d/stderr" | base64 -w0; echo',
  ].join('\n');
}

function lines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

export const asyncStatusModule: Module<AsyncStatusArgs> = {
  name: 'async_status',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['jid'],
    properties: { jid: { type: 'string', minLength: 1 }, mode: { enum: ['status', 'cleanup'] } },
  },

  async check(ctx, args): Promise<Planned> {
    if (!JOB_ID.test(args.jid) || args.jid.split('/').includes('..'))
      return {
        changed: false,
        actions: [],
        failed: `async_status: ${JSON.stringify(args.jid)} is not a job id (register the task with async/poll 0 and pass its ansible_job_id)`,
      };
    if (args.mode === 'cleanup') {
      // Ansible reports cleanup unchanged; cairn counts removing a folder that is there as a change, so that
      // check predicts it and apply (which runs only for a change) removes it.
      const found = await runScript(ctx, `if [ -e ${quote(args.jid)} ]; then echo found=1; else echo found=0; fi`);
      if (found.code !== 0)
        return {
          changed: false,
          actions: [],
          failed: `async_status: cannot read job ${args.jid}: ${failureText(found)}`,
        };
      const there = parseKeyValues(found.stdout).get('found') === '1';
      return {
        changed: there,
        actions: there ? [`remove job ${args.jid}`] : [],
        data: { ansible_job_id: args.jid, erased: args.jid },
      };
    }
    const res = await runScript(ctx, asyncStatusScript(args.jid));
    const kv = parseKeyValues(res.stdout);
    if (res.code !== 0 || !kv.has('found'))
      return { changed: false, actions: [], failed: `async_status: cannot read job ${args.jid}: ${failureText(res)}` };
    if (kv.get('found') !== '1')
      return {
        changed: false,
        actions: [],
        failed: `could not find job (${args.jid})`,
        data: { ansible_job_id: args.jid, started: 1, finished: 1 },
      };
    const data: Record<string, unknown> = { ansible_job_id: args.jid, started: 1, finished: 0 };
    if (kv.get('finished') !== '1') return { changed: false, actions: [], data };
    const rc = Number(kv.get('rc'));
    const stdout = Buffer.from(kv.get('stdout_b64') ?? '', 'base64').toString('utf8');
    const stderr = Buffer.from(kv.get('stderr_b64') ?? '', 'base64').toString('utf8');
    Object.assign(data, {
      finished: 1,
      rc: Number.isInteger(rc) ? rc : 1,
      stdout,
      stderr,
      stdout_lines: lines(stdout),
      stderr_lines: lines(stderr),
    });
    // 124/137: timeout(1) ended the job at its `async` limit (async-job.ts).
    if (rc === 124 || rc === 137)
      return { changed: false, actions: [], data, failed: 'async task did not complete within the requested time' };
    if (rc !== 0) return { changed: false, actions: [], data, failed: `non-zero return code ${String(rc)}` };
    return { changed: false, actions: [], data };
  },

  async apply(ctx, args, plan): Promise<ModuleResult> {
    const data = plan.data ?? {};
    if (args.mode !== 'cleanup') return { changed: false, data };
    const res = await runScript(ctx, `rm -rf -- ${quote(args.jid)}`);
    if (res.code !== 0) return { changed: false, failed: true, msg: `async_status cleanup: ${failureText(res)}`, data };
    return { changed: true, data };
  },
};
