/**
 * A `cairn play` run as a real child process on real sshd hosts, for the tests that signal it
 * (test/integration/interrupt.test.ts, signals.test.ts): the hosts and the playbook, the child with its
 * output collected, and waiting for a condition with a deadline.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll } from 'vitest';
import { cairnBin, repoRoot } from './cli.js';
import { startSshHosts, type TestSshLab } from './sshd.js';

/** Poll `ok` every 50 ms; an error naming `what` once `ms` have passed. */
export async function waitUntil(what: string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface PlayChild {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** The exit code, or the name of the signal that ended it. */
  done: Promise<number | string>;
  /** stdout and stderr, interleaved as they arrived. */
  output(): string;
  /** Wait until the output matches `re` (an error quoting the output after `ms`). */
  waitFor(re: RegExp, ms?: number): Promise<void>;
}

/** `cairn ARGS` as a child (NO_COLOR, `env` added), from the repository's folder. */
export function startCairn(args: string[], env: Record<string, string>): PlayChild {
  const child = spawn(process.execPath, [cairnBin, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const done = new Promise<number | string>((resolveDone) =>
    child.on('close', (code, signal) => resolveDone(code ?? String(signal))),
  );
  const waitFor = async (re: RegExp, ms = 20_000) => {
    await waitUntil(`${re}`, () => re.test(output), ms).catch((err: Error) => {
      throw new Error(`${err.message} in:\n${output}`);
    });
  };
  return { child, done, output: () => output, waitFor };
}

export interface TwoHostPlay {
  lab: TestSshLab;
  inventory: string;
  playbook: string;
}

/**
 * Two real sshd hosts named `names`, each with `host_dir` (its own folder), and a playbook FILE on all hosts
 * with the task lines given (indented under `tasks:`), for the describe block this is called in: filled in
 * its beforeAll, stopped in its afterAll.
 */
export function useTwoHostPlay(names: [string, string], file: string, taskLines: string[]): TwoHostPlay {
  const setup = {} as TwoHostPlay;
  beforeAll(async () => {
    setup.lab = await startSshHosts(2, { names });
    setup.inventory = setup.lab.writeInventory(
      {},
      Object.fromEntries(setup.lab.hosts.map((h) => [h.name, { host_dir: h.dir }])),
    );
    setup.playbook = join(setup.lab.dir, file);
    const play = ['- hosts: all', '  gather_facts: false', '  tasks:', ...taskLines.map((l) => `    ${l}`), ''];
    writeFileSync(setup.playbook, play.join('\n'));
  });
  afterAll(async () => {
    await setup.lab?.stop();
  });
  return setup;
}
