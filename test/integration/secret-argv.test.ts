/**
 * No secret in a remote argv (issue 13, item 4): every user of a managed host can read every process's
 * command line. The http module's URL, headers and body reach curl by a private file and stdin. The hosts are
 * real sshd on loopback, so their processes are this machine's: a poller reads /proc/<pid>/cmdline of every
 * process all through the run, as an unprivileged `ps` on the host would.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { sshdAvailable, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

const available = sshdAvailable();

/** Every command line on the machine, polled until stopped: what `ps -ef` shows any user. */
function startPsPoller(): { stop(): Promise<string[]> } {
  const seen = new Set<string>();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
          if (cmdline) seen.add(cmdline.replace(/\0/g, ' '));
        } catch {
          // Ended meanwhile.
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return [...seen];
    },
  };
}

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe.skipIf(!available.ok)(
  `secrets never in a remote argv${available.ok ? '' : ` (skipped: ${available.reason})`}`,
  () => {
    let lab: TestSshLab;
    let server: Server;
    let port: number;
    const requests: Seen[] = [];

    beforeAll(async () => {
      lab = await startSshHosts(1, { names: ['api-client'] });
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (chunk: Buffer) => chunks.push(chunk));
        req.on('end', () => {
          requests.push({
            method: req.method ?? '',
            url: req.url ?? '',
            headers: req.headers,
            body: Buffer.concat(chunks).toString(),
          });
          // Slow on purpose: curl stays alive long enough for the poller to read its command line many times.
          setTimeout(() => {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end('{"ok":true}');
          }, 700);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server?.close(() => resolve()));
      await lab?.stop();
    });

    it('http: URL token, header values and body never appear in any process argv, in check mode or apply', async () => {
      // Made at run time, never written in a source file (see test/unit/vault.test.ts).
      const secrets = {
        api_token: `tok${randomBytes(12).toString('hex')}`,
        api_bearer: `bear${randomBytes(12).toString('hex')}`,
        api_key: `key${randomBytes(12).toString('hex')}`,
        api_body: `body${randomBytes(12).toString('hex')}`,
      };
      const inventory = lab.writeInventory({}, { 'api-client': secrets });
      const playbook = join(lab.dir, 'http-secrets.yaml');
      writeFileSync(
        playbook,
        stringify([
          {
            name: 'talk to an API',
            hosts: 'all',
            gather_facts: false,
            tasks: [
              {
                name: 'Read with a token',
                http: {
                  url: `http://127.0.0.1:${port}/status?token={{ api_token }}`,
                  headers: { Authorization: 'Bearer {{ api_bearer }}' },
                },
              },
              {
                name: 'Post with a key',
                http: {
                  url: `http://127.0.0.1:${port}/drain`,
                  method: 'POST',
                  headers: { 'X-Api-Key': '{{ api_key }}' },
                  body: '{{ api_body }}',
                },
              },
            ],
          },
        ]),
      );
      const env = { CAIRN_STATE_DIR: join(lab.dir, 'state') };
      const poller = startPsPoller();
      const check = await runCairn(['play', playbook, '-i', inventory, '--check', '--json'], { env });
      const apply = await runCairn(['play', playbook, '-i', inventory, '--json'], { env });
      const commandLines = await poller.stop();
      expect(check.code, check.stderr).toBe(0);
      expect(apply.code, apply.stderr).toBe(0);
      expect(taskResults(jsonEvents(apply.stdout)).map((e) => e.status)).toEqual(['ok', 'changed']);

      // The poller did see curl run (so not seeing a secret means something).
      expect(commandLines.filter((line) => line.startsWith('curl ')).length).toBeGreaterThan(0);
      for (const [name, secret] of Object.entries(secrets)) {
        expect(
          commandLines.filter((line) => line.includes(secret)),
          `${name} in a command line`,
        ).toEqual([]);
      }
      // And the server got all of it: GET in check and apply, POST in apply only.
      expect(requests.map((r) => r.method)).toEqual(['GET', 'GET', 'POST']);
      expect(requests[0]!.url).toBe(`/status?token=${secrets.api_token}`);
      expect(requests[0]!.headers.authorization).toBe(`Bearer ${secrets.api_bearer}`);
      expect(requests[2]!.headers['x-api-key']).toBe(secrets.api_key);
      expect(requests[2]!.body).toBe(secrets.api_body);
      // The private request folder is gone. Other test files run http requests at the same time, so a
      // folder counts only if its request file holds this test's secrets (it would if ours were left).
      const leftovers = readdirSync('/tmp')
        .filter((name) => /^tmp\.\w+$/.test(name))
        .filter((name) => {
          try {
            const request = readFileSync(join('/tmp', name, 'request'), 'utf8');
            return request.includes(secrets.api_token) || request.includes(secrets.api_key);
          } catch {
            return false;
          }
        });
      expect(leftovers).toEqual([]);
    }, 120_000);
  },
);
