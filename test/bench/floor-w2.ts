/**
 * The floor of workload W2 (test/bench/peers.ts: the 20-task config play) for `npm run bench:peers`: the same
 * twenty tasks' work done by a plain node-ssh client, one open connection per host (TCP_NODELAY set), at most
 * `forks` hosts at once. Run as its own node process, so its CPU and RSS are measured like cairn's:
 *   node dist/test/bench/floor-w2.js <hosts.json> <first|probe> <sequential|batched> <forks> <root>
 *
 * - `first`: each task's write, one command per task (mkdir, the file's bytes on stdin, an append when the
 *   line or block is missing, the stat, the cat): what reaching the state costs with no probe before it.
 * - `probe`: each task's read, one command per task (the directory's type and mode, a file's mode and
 *   checksum, an edited file's text, the stat, the cat), compared here with what the play wants: what a
 *   no-change rerun or a --check costs at least. A host that differs fails the floor (it must not measure an
 *   empty tree).
 * - `sequential`: one exec round trip per command, one after the other on each host (the issue's
 *   per-command floor). `batched`: the host's twenty commands joined into one script, one round trip per host
 *   (what batching could reach at best; each command still runs on the host).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { NodeSSH } from 'node-ssh';
import { quote } from '../../runner/core/transport/quote.js';

interface FloorHosts {
  user: string;
  privateKeyPath: string;
  hosts: { name: string; address: string; port: number }[];
}

interface Command {
  command: string;
  stdin?: string;
  /** For `probe`: what the command prints when the host is as the play wants. */
  expect?: string;
}

const [hostsFile, modeArg, shapeArg, forksArg, rootArg] = process.argv.slice(2);
if ((modeArg !== 'first' && modeArg !== 'probe') || (shapeArg !== 'sequential' && shapeArg !== 'batched'))
  throw new Error('usage: floor-w2.js <hosts.json> <first|probe> <sequential|batched> <forks> <root>');
const spec = JSON.parse(readFileSync(hostsFile as string, 'utf8')) as FloorHosts;
const forks = Number(forksArg);
const privateKey = readFileSync(spec.privateKeyPath, 'utf8');

/** The rendered template of peers.ts for one host (its only variables: inventory_hostname and app_port). */
export function w2Template(host: string): string {
  return `# managed\nhost = ${host}\nport = 8080\n`;
}

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The twenty tasks of W2 for one host, as one command each. */
function commands(host: string, mode: 'first' | 'probe'): Command[] {
  const base = `${rootArg}/${host}`;
  const out: Command[] = [];
  const file = (path: string, content: string): Command =>
    mode === 'first'
      ? { command: `umask 022; cat > ${quote(path)}`, stdin: content }
      : { command: `stat -c %a -- ${quote(path)} && sha256sum < ${quote(path)}`, expect: `644\n${sha(content)}  -\n` };
  for (let i = 1; i <= 4; i++) {
    const dir = `${base}/d${i}`;
    out.push(
      mode === 'first'
        ? { command: `mkdir -p -m 0755 -- ${quote(dir)}` }
        : { command: `stat -c '%F %a' -- ${quote(dir)}`, expect: 'directory 755\n' },
    );
  }
  for (let i = 1; i <= 4; i++) out.push(file(`${base}/d${i}/static.conf`, `static ${i}\n`));
  for (let i = 1; i <= 4; i++) out.push(file(`${base}/d${i}/app.conf`, w2Template(host)));
  for (let i = 1; i <= 4; i++) {
    const path = quote(`${base}/d${i}/lines.conf`);
    out.push(
      mode === 'first'
        ? { command: `grep -q '^key${i}=' ${path} 2>/dev/null || echo 'key${i}=v${i}' >> ${path}` }
        : { command: `cat -- ${path}`, expect: `key${i}=v${i}\n` },
    );
  }
  for (let i = 1; i <= 2; i++) {
    const path = quote(`${base}/d${i}/block.conf`);
    const block = `# BEGIN ANSIBLE MANAGED BLOCK\nblock ${i} line a\nblock ${i} line b\n# END ANSIBLE MANAGED BLOCK\n`;
    out.push(
      mode === 'first'
        ? { command: `grep -q '^# BEGIN ANSIBLE MANAGED BLOCK$' ${path} 2>/dev/null || cat >> ${path}`, stdin: block }
        : { command: `cat -- ${path}`, expect: block },
    );
  }
  out.push({ command: `stat -- ${quote(`${base}/d1/app.conf`)}` });
  out.push({ command: `cat -- ${quote(`${base}/d2/static.conf`)}`, expect: 'static 2\n' });
  return out;
}

/** One script running every command in order, each one's stdin inlined as a here-document. */
function joined(list: Command[]): string {
  return list
    .map((c, i) =>
      c.stdin === undefined ? c.command : `${c.command} <<'CAIRN_FLOOR_${i}'\n${c.stdin}CAIRN_FLOOR_${i}`,
    )
    .concat('echo floor-done')
    .join('\n');
}

async function oneHost(host: { name: string; address: string; port: number }): Promise<void> {
  const sock = connect({ host: host.address, port: host.port, noDelay: true });
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const ssh = new NodeSSH();
  await ssh.connect({ sock, username: spec.user, privateKey, readyTimeout: 60_000 });
  const list = commands(host.name, modeArg as 'first' | 'probe');
  if (shapeArg === 'batched') {
    const result = await ssh.execCommand(joined(list));
    if (result.code !== 0 || !result.stdout.endsWith('floor-done'))
      throw new Error(`${host.name}: the batched commands failed (${result.code}): ${result.stderr}`);
    // Every probe before the stat has an expected output: they lead the batch's output, in order.
    const expected = list
      .slice(0, 18)
      .map((c) => c.expect ?? '')
      .join('');
    if (modeArg === 'probe' && !result.stdout.startsWith(expected))
      throw new Error(`${host.name}: the batched probes did not print the play's state`);
  } else {
    for (const c of list) {
      const result = await ssh.execCommand(c.command, c.stdin === undefined ? {} : { stdin: c.stdin });
      if (result.code !== 0) throw new Error(`${host.name}: ${c.command} exited ${result.code}: ${result.stderr}`);
      // node-ssh trims the output; compare trimmed.
      if (c.expect !== undefined && result.stdout !== c.expect.trim())
        throw new Error(`${host.name}: ${c.command} printed ${JSON.stringify(result.stdout)}, not the play's state`);
    }
  }
  ssh.dispose();
}

let next = 0;
await Promise.all(
  Array.from({ length: Math.min(forks, spec.hosts.length) }, async () => {
    while (next < spec.hosts.length) await oneHost(spec.hosts[next++]!);
  }),
);
