/**
 * The floor the bench compares cairn with: a plain node-ssh client, one open connection per host, each
 * command one exec round trip, at most `forks` hosts at once (as cairn's -f). TCP_NODELAY is set on the
 * socket we hand to ssh2 (see /work/shared/perf-notes.md: Nagle adds ~40 ms per round trip otherwise).
 * Run as its own node process so that its CPU and RSS are measured like cairn's:
 *   node dist/test/bench/floor.js <hosts.json> <commands> <forks>
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { NodeSSH } from 'node-ssh';

interface FloorHosts {
  user: string;
  privateKeyPath: string;
  hosts: { address: string; port: number }[];
}

const [hostsFile, commandsArg, forksArg] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(hostsFile as string, 'utf8')) as FloorHosts;
const commands = Number(commandsArg);
const forks = Number(forksArg);
const privateKey = readFileSync(spec.privateKeyPath, 'utf8');

async function oneHost(host: { address: string; port: number }): Promise<void> {
  const sock = connect({ host: host.address, port: host.port, noDelay: true });
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const ssh = new NodeSSH();
  await ssh.connect({ sock, username: spec.user, privateKey, readyTimeout: 60_000 });
  for (let i = 0; i < commands; i++) {
    const result = await ssh.execCommand('/bin/true');
    if (result.code !== 0) throw new Error(`${host.address}: /bin/true exited ${result.code}`);
  }
  ssh.dispose();
}

let next = 0;
await Promise.all(
  Array.from({ length: Math.min(forks, spec.hosts.length) }, async () => {
    while (next < spec.hosts.length) await oneHost(spec.hosts[next++]!);
  }),
);
