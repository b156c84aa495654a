/**
 * SSH for the lab: its own key pair, the hosts' real host keys collected into a known_hosts file (so cairn
 * checks host keys for real), waiting for sshd's banner, and ssh(1) command lines with strict checking.
 */
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { CairnError } from '../../core/util/errors.js';
import { argv } from '../../core/transport/quote.js';
import { runChecked } from './exec.js';
import type { GeneratedPaths } from './paths.js';
import { sleep } from './proc.js';

export async function ensureKeyPair(paths: GeneratedPaths): Promise<{ created: boolean; publicKey: string }> {
  // Only generated/ itself is private (it holds the key); its parents keep their usual mode.
  mkdirSync(dirname(paths.dir), { recursive: true });
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  let created = false;
  if (!existsSync(paths.privateKey) || !existsSync(paths.publicKey)) {
    for (const f of [paths.privateKey, paths.publicKey]) if (existsSync(f)) renameSync(f, `${f}.old`);
    await runChecked(
      'ssh-keygen',
      ['-q', '-t', 'ed25519', '-N', '', '-C', 'cairn-lab', '-f', paths.privateKey],
      'making the lab SSH key pair',
    );
    created = true;
  }
  // ssh ignores a private key that others can read; keep it 0600 whatever happened to it since.
  chmodSync(paths.privateKey, 0o600);
  return { created, publicKey: readFileSync(paths.publicKey, 'utf8').trim() };
}

/** "type base64" lines of every ssh_host_*_key.pub under a host's /etc/ssh. */
export function readHostKeys(etcSshDir: string): string[] {
  if (!existsSync(etcSshDir)) return [];
  return readdirSync(etcSshDir)
    .filter((f) => /^ssh_host_[a-z0-9]+_key\.pub$/.test(f))
    .sort()
    .map((f) => readFileSync(join(etcSshDir, f), 'utf8').trim().split(/\s+/).slice(0, 2).join(' '))
    .filter((line) => /^(ssh-|ecdsa-)\S+ [A-Za-z0-9+/=]+$/.test(line));
}

export interface KnownHostEntry {
  name: string;
  address: string;
  /** The host's other addresses (its service address when cairn connects on the management one). */
  otherAddresses?: string[];
  keys: string[];
}

/** known_hosts lines: each key under the address (what cairn connects to), the other addresses and the name. */
export function knownHostsText(entries: readonly KnownHostEntry[]): string {
  const lines = ["# Written by `cairn lab up`: the lab hosts' own SSH host keys, read from their disks."];
  for (const e of entries)
    for (const key of e.keys) lines.push(`${[e.address, ...(e.otherAddresses ?? []), e.name].join(',')} ${key}`);
  return lines.join('\n') + '\n';
}

export function writeFileAtomic(path: string, text: string, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, path);
}

/** Connect and read sshd's identification line ("SSH-2.0-..."); resolves to it, or undefined on failure. */
export function readBanner(address: string, port = 22, timeoutMs = 1000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    let data = '';
    const finish = (value: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const line = data.split('\n')[0];
      if (data.includes('\n') && line !== undefined) finish(line.startsWith('SSH-') ? line.trim() : undefined);
    });
    socket.on('error', () => finish(undefined));
    socket.on('close', () => finish(undefined));
  });
}

/** Poll until sshd answers with its banner; ms it took. */
export async function waitForBanner(
  name: string,
  address: string,
  timeoutMs: number,
  isStillRunning: () => boolean = () => true,
  consoleLog = 'its console log',
  /**
   * How long one attempt waits for the banner. A slow guest (a VM under TCG) forks an sshd for every
   * connection: short attempts, abandoned and repeated, pile those up and starve it.
   */
  attemptMs = 1000,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await readBanner(address, 22, attemptMs)) return Date.now() - started;
    if (!isStillRunning())
      throw new CairnError(`lab host ${name} stopped while booting; see ${consoleLog}`, { kind: 'runtime' });
    if (Date.now() - started > timeoutMs) {
      throw new CairnError(
        `lab host ${name} (${address}) did not answer SSH within ${Math.round(timeoutMs / 1000)} s; see ${consoleLog}`,
        { kind: 'runtime' },
      );
    }
    await sleep(100);
  }
}

export interface SshTarget {
  address: string;
  privateKey: string;
  knownHosts: string;
}

/**
 * ssh(1) arguments for root@host with strict host-key checking against the lab's known_hosts. `remote` is
 * either an argv (each word quoted, so it arrives as given) or a script the caller built with quote().
 */
export function sshArgs(
  target: SshTarget,
  remote: { argv: readonly string[] } | { script: string } | undefined,
  extra: readonly string[] = [],
): string[] {
  const args = [
    '-i',
    target.privateKey,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${target.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
    '-o',
    'LogLevel=ERROR',
    ...extra,
    `root@${target.address}`,
  ];
  // ssh joins its arguments into one remote shell line, so it gets exactly one, already quoted.
  if (remote && 'argv' in remote && remote.argv.length) args.push(argv(...remote.argv));
  if (remote && 'script' in remote) args.push(remote.script);
  return args;
}
