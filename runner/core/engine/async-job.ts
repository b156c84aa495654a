/**
 * `async: N` with `poll: P` (Ansible's async_wrapper and its poll loop, lib/ansible/modules/async_wrapper.py
 * and lib/ansible/executor/task_executor.py `_poll_async_result`): a task's apply runs detached on the host,
 * and cairn asks every P seconds, each time over a new channel of the host's one connection, whether it has
 * ended. So a command may outlive any one channel (and the channel limits of sshd) while the run waits for
 * it. The job is killed after N seconds and the task fails with Ansible's message.
 *
 * The wrapper is a Connection: a module's apply runs unchanged, and every script it sends becomes one job
 * (its script and stdin written to a private job folder on the host, mode 0700, then started under setsid).
 * check runs as usual, so check mode stays exact.
 */
import { quote } from '../transport/quote.js';
import type { Connection, ExecOptions, ExecResult } from '../transport/types.js';
import { parseKeyValues } from '../modules/remote.js';

/** The job outlived `async` seconds (Ansible: "async task did not complete within the requested time"). */
export class AsyncTimeoutError extends Error {
  constructor(seconds: number) {
    super(`async task did not complete within the requested time - ${seconds}s`);
    this.name = 'AsyncTimeoutError';
  }
}

/**
 * The start script: a private job folder under ~/.cairn_async, the script (base64, so no content can end
 * the here-document) and stdin written into it, then the job started in its own session, killed after
 * `seconds`. Prints `jid=<folder>` (pure; tested).
 */
export function asyncStartScript(script: string, seconds: number): string {
  const encoded = Buffer.from(script, 'utf8')
    .toString('base64')
    .replace(/.{1,76}/g, '$&\n');
  return [
    'umask 077',
    'base="${HOME:-/root}/.cairn_async"',
    'mkdir -p -m 0700 -- "$base" || exit 70',
    'jid=$(mktemp -d "$base/job.XXXXXXXXXX") || exit 70',
    'base64 -d > "$jid/script" <<\'CAIRN_ASYNC_SCRIPT\' || exit 70',
    `${encoded.trimEnd()}`,
    'CAIRN_ASYNC_SCRIPT',
    'cat > "$jid/stdin" || exit 70',
    // The job: its own session (so the run's channel ending does not end it), its output in the folder, its
    // status written last and renamed into place, so a reader never sees half of it.
    `setsid -f sh -c 'echo $$ > "$2/pid"; cd / && timeout -k 5 "$1" sh "$2/script" < "$2/stdin" > "$2/stdout" 2> "$2/stderr"; ` +
      `echo $? > "$2/rc.tmp" && mv -f -- "$2/rc.tmp" "$2/rc"' cairn-async ${quote(seconds)} "$jid" ` +
      '< /dev/null > /dev/null 2>&1 || exit 70',
    'echo "jid=$jid"',
  ].join('\n');
}

/** The poll script: whether the job ended, and if so its status and output (base64), then the folder goes. */
export function asyncPollScript(jid: string): string {
  const dir = quote(jid);
  return [
    `d=${dir}`,
    'if [ ! -e "$d/rc" ]; then echo finished=0; exit 0; fi',
    'echo finished=1',
    'printf "rc=%s\\n" "$(cat "$d/rc")"',
    'printf "stdout_b64="; base64 -w0 < "$d/stdout"; echo',
    'printf "stderr_b64="; base64 -w0 < "$d/stderr"; echo',
    'rm -rf -- "$d"',
  ].join('\n');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A Connection whose every exec runs as a detached job on `inner`'s host, polled every `pollSeconds`. */
export function asyncConnection(
  inner: Connection,
  opts: { seconds: number; pollSeconds: number; signal?: AbortSignal },
): Connection {
  return {
    host: inner.host,
    user: inner.user,
    close: () => inner.close(),
    async exec(script: string, execOpts: ExecOptions = {}): Promise<ExecResult> {
      const { timeoutMs: _ignored, ...rest } = execOpts;
      const started = await inner.exec(asyncStartScript(script, opts.seconds), {
        ...rest,
        stdin: execOpts.stdin ?? '',
        timeoutMs: 60_000,
      });
      const jid = parseKeyValues(started.stdout).get('jid');
      if (started.code !== 0 || !jid?.includes('/.cairn_async/job.'))
        return { ...started, code: started.code || 1, stderr: `starting the async job failed: ${started.stderr}` };
      const deadline = Date.now() + opts.seconds * 1000;
      for (;;) {
        await sleep(Math.min(opts.pollSeconds * 1000, Math.max(0, deadline - Date.now())), opts.signal);
        const polled = await inner.exec(asyncPollScript(jid), { ...rest, timeoutMs: 60_000 });
        const kv = parseKeyValues(polled.stdout);
        if (polled.code === 0 && kv.get('finished') === '1') {
          const rc = Number(kv.get('rc'));
          // 124/137: timeout(1) ended the job at the limit.
          if (rc === 124 || rc === 137) throw new AsyncTimeoutError(opts.seconds);
          return {
            code: Number.isInteger(rc) ? rc : 1,
            stdout: Buffer.from(kv.get('stdout_b64') ?? '', 'base64').toString('utf8'),
            stderr: Buffer.from(kv.get('stderr_b64') ?? '', 'base64').toString('utf8'),
          };
        }
        if (polled.code !== 0) return { ...polled, stderr: `polling the async job failed: ${polled.stderr}` };
        if (opts.signal?.aborted || Date.now() >= deadline + 10_000) {
          // Interrupted, or timeout(1) did not end it: stop the job's whole session, then say so.
          await inner.exec(
            `d=${quote(jid)}; if [ -s "$d/pid" ]; then kill -KILL -- "-$(cat "$d/pid")" 2>/dev/null; fi; rm -rf -- "$d"`,
            rest,
          );
          if (opts.signal?.aborted) return { code: 130, stdout: '', stderr: 'interrupted; the async job was killed' };
          throw new AsyncTimeoutError(opts.seconds);
        }
      }
    },
  };
}

/**
 * `poll: 0` (fire and forget): the module's one script starts as a detached job and the task goes on at once;
 * `jid` is then the job's folder, the `ansible_job_id` async_status reads. A module whose apply sends a second
 * script cannot run this way (its later steps would run before the first ended): that script fails the task.
 */
export class FireAndForgetConnection implements Connection {
  jid: string | undefined;
  constructor(
    private readonly inner: Connection,
    private readonly seconds: number,
  ) {}
  get host(): string {
    return this.inner.host;
  }
  get user(): string {
    return this.inner.user;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
  async exec(script: string, execOpts: ExecOptions = {}): Promise<ExecResult> {
    if (this.jid !== undefined)
      return {
        code: 1,
        stdout: '',
        stderr: 'poll: 0 runs a module that sends one script; this one sends more (use poll > 0)',
      };
    const { timeoutMs: _ignored, ...rest } = execOpts;
    const started = await this.inner.exec(asyncStartScript(script, this.seconds), {
      ...rest,
      stdin: execOpts.stdin ?? '',
      timeoutMs: 60_000,
    });
    const jid = parseKeyValues(started.stdout).get('jid');
    if (started.code !== 0 || !jid?.includes('/.cairn_async/job.'))
      return { ...started, code: started.code || 1, stderr: `starting the async job failed: ${started.stderr}` };
    this.jid = jid;
    return { code: 0, stdout: '', stderr: '' };
  }
}
