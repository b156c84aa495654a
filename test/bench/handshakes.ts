/**
 * `node dist/test/bench/handshakes.js [--hosts N] [--concurrency C]`: where an SSH connection's time goes when
 * many are opened at once against the bench hosts (test/bench/hosts.ts). For each connection: the TCP connect,
 * the server's identification line (banner), the key exchange, and user authentication, in ms since the
 * connect started; printed as percentiles per phase. A diagnostic for the bench (why hosts time out under a
 * burst of handshakes), never part of `npm test`.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import ssh2 from 'ssh2';
import { startBenchHosts, type BenchHost } from './hosts.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

const HOSTS = Number(option('hosts', '100'));
const CONCURRENCY = Number(option('concurrency', String(HOSTS)));

interface Phases {
  tcp: number;
  banner: number;
  kex: number;
  ready: number;
  error?: string;
}

function openOne(host: BenchHost, user: string, privateKey: Buffer): Promise<Phases> {
  const started = performance.now();
  const at = (): number => Math.round(performance.now() - started);
  const phases: Phases = { tcp: NaN, banner: NaN, kex: NaN, ready: NaN };
  return new Promise((resolve) => {
    const sock = connect({ host: host.address, port: host.port, noDelay: true });
    sock.once('error', (error) => resolve({ ...phases, error: error.message }));
    sock.once('connect', () => {
      phases.tcp = at();
      const client = new ssh2.Client();
      client.on('error', (error) => resolve({ ...phases, error: error.message }));
      client.on('handshake', () => (phases.kex = at()));
      client.on('ready', () => {
        phases.ready = at();
        client.end();
        resolve(phases);
      });
      client.connect({ sock, username: user, privateKey, readyTimeout: 300_000 });
      // ssh2 keeps the server's identification line in a private field: watched only here, for the figure.
      const raw = client as unknown as { _remoteVer?: string };
      let remoteVer: string | undefined;
      Object.defineProperty(raw, '_remoteVer', {
        get: () => remoteVer,
        set: (value: string) => {
          remoteVer = value;
          phases.banner = at();
        },
      });
    });
  });
}

function percentiles(values: number[]): string {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return 'none';
  const pick = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  return `p50 ${pick(50)} ms, p90 ${pick(90)} ms, max ${sorted[sorted.length - 1]} ms`;
}

async function main(): Promise<void> {
  const lab = await startBenchHosts(HOSTS);
  try {
    const privateKey = readFileSync(lab.clientKeyPath);
    const results: Phases[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, HOSTS) }, async () => {
        while (next < HOSTS) results.push(await openOne(lab.hosts[next++]!, lab.user, privateKey));
      }),
    );
    console.log(`${HOSTS} connections, ${CONCURRENCY} at once (ms from the start of each connect):`);
    console.log(`  TCP connected:      ${percentiles(results.map((r) => r.tcp))}`);
    console.log(`  server banner read: ${percentiles(results.map((r) => r.banner))}`);
    console.log(`  key exchange done:  ${percentiles(results.map((r) => r.kex))}`);
    console.log(`  authenticated:      ${percentiles(results.map((r) => r.ready))}`);
    const errors = results.filter((r) => r.error !== undefined);
    if (errors.length > 0) console.log(`  failed: ${errors.length} (${errors[0]!.error})`);
  } finally {
    await lab.stop();
  }
}

await main();
