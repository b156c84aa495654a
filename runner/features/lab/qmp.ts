/**
 * A minimal QMP client (QEMU Machine Protocol, JSON lines over the VM's unix socket): connect, leave
 * negotiation mode, run one command, close. The lab's fault operations on VMs (power button, pulling and
 * plugging disks) go through it. QMP is line-delimited JSON; asynchronous events ({"event": ...}) may arrive
 * between a command and its answer and are skipped.
 */
import { connect } from 'node:net';
import { CairnError } from '../../core/util/errors.js';

export type QmpArguments = Record<string, unknown>;

interface QmpMessage {
  QMP?: unknown;
  return?: unknown;
  error?: { class?: string; desc?: string };
  event?: string;
}

/** Run `commands` in order on one connection; resolves to each command's `return` value. */
export function qmpRun(
  socketPath: string,
  commands: ReadonlyArray<{ execute: string; arguments?: QmpArguments }>,
  timeoutMs = 10_000,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    const results: unknown[] = [];
    // Step -1: waiting for the greeting; 0: qmp_capabilities sent; then one step per command.
    let step = -1;
    let buffer = '';
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(results);
    };
    const timer = setTimeout(
      () => finish(new CairnError(`QMP ${socketPath}: no answer within ${timeoutMs} ms`, { kind: 'runtime' })),
      timeoutMs,
    );
    const send = (execute: string, args?: QmpArguments) =>
      socket.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + '\n');
    socket.on('error', (err) => finish(new CairnError(`QMP ${socketPath}: ${err.message}`, { kind: 'runtime' })));
    socket.on('close', () =>
      finish(
        step <= commands.length
          ? new CairnError(`QMP ${socketPath}: the connection closed early`, { kind: 'runtime' })
          : undefined,
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        let message: QmpMessage;
        try {
          message = JSON.parse(line) as QmpMessage;
        } catch {
          finish(new CairnError(`QMP ${socketPath}: not JSON: ${line.slice(0, 200)}`, { kind: 'runtime' }));
          return;
        }
        if (message.event !== undefined) continue;
        if (step === -1) {
          if (message.QMP === undefined)
            return finish(new CairnError(`QMP ${socketPath}: no greeting`, { kind: 'runtime' }));
          step = 0;
          send('qmp_capabilities');
          continue;
        }
        if (message.error) {
          const what = step === 0 ? 'qmp_capabilities' : commands[step - 1]!.execute;
          return finish(
            new CairnError(`QMP ${what}: ${message.error.desc ?? message.error.class ?? 'error'}`, { kind: 'runtime' }),
          );
        }
        if (step > 0) results.push(message.return);
        if (step === commands.length) {
          step++;
          return finish();
        }
        const next = commands[step]!;
        step++;
        send(next.execute, next.arguments);
      }
    });
  });
}

export async function qmp(
  socketPath: string,
  execute: string,
  args?: QmpArguments,
  timeoutMs?: number,
): Promise<unknown> {
  const [result] = await qmpRun(socketPath, [{ execute, ...(args ? { arguments: args } : {}) }], timeoutMs);
  return result;
}
