/**
 * Secrets stay out of everything cairn prints or stores, and a host cannot drive the operator's terminal
 * (issue 13, items 5 and 11). Real sshd host, a real age-encrypted vault, the built CLI; the console, --json,
 * --diff and the run journal are scanned for every secret and the forms a template derives from it.
 *
 * The secrets are made at run time, never written in a source file (see test/unit/vault.test.ts for why).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { sshdAvailable, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

const available = sshdAvailable();

describe.skipIf(!available.ok)(
  `secrets and hostile text against real sshd${available.ok ? '' : ` (skipped: ${available.reason})`}`,
  () => {
    let lab: TestSshLab;
    let inventoryDir: string;
    let identity: string;
    const pin = randomInt(1_000_000, 9_999_999);
    const dbPassword = `pw-${randomBytes(40).toString('hex')}`;
    const apiToken = `tok-${randomBytes(12).toString('hex')}`;

    beforeAll(async () => {
      lab = await startSshHosts(1, { names: ['vaulted'] });
      inventoryDir = join(lab.dir, 'inventory');
      mkdirSync(join(inventoryDir, 'group_vars', 'all'), { recursive: true });
      writeFileSync(
        join(inventoryDir, 'hosts.yaml'),
        readFileSync(lab.writeInventory({}, { vaulted: { host_dir: lab.hosts[0]!.dir, svc_user: 'nobody' } }), 'utf8'),
      );
      const vaultFile = join(inventoryDir, 'group_vars', 'all', 'vault.yaml');
      writeFileSync(vaultFile, stringify({ api_pin: pin, db_password: dbPassword, api_token: apiToken }));
      identity = join(lab.dir, 'vault.key');
      const keygen = await runCairn(['vault', 'keygen', identity]);
      expect(keygen.code, keygen.stderr).toBe(0);
      const encrypt = await runCairn(['vault', 'encrypt', vaultFile, '--vault-identity', identity]);
      expect(encrypt.code, encrypt.stderr).toBe(0);
      expect(readFileSync(vaultFile, 'utf8')).not.toContain(dbPassword);
    });
    afterAll(async () => {
      await lab?.stop();
    });

    function writePlaybook(name: string, tasks: unknown[]): string {
      const path = join(lab.dir, `${name}.yaml`);
      writeFileSync(path, stringify([{ name, hosts: 'all', gather_facts: false, tasks }]));
      return path;
    }

    /** Every form of every secret that must never be seen. */
    function leaks(text: string): string[] {
      const forms: Record<string, string> = {
        'api_pin (a number)': String(pin),
        db_password: dbPassword,
        'db_password upper-cased': dbPassword.toUpperCase(),
        'db_password in base64': Buffer.from(dbPassword).toString('base64'),
        'the first 20 characters of db_password': dbPassword.slice(0, 20),
        api_token: apiToken,
      };
      return Object.entries(forms)
        .filter(([, form]) => text.includes(form))
        .map(([name]) => name);
    }

    it('vault numbers, derived forms and cut secrets never reach the console, --json, --diff or the journal', async () => {
      const playbook = writePlaybook('secrets', [
        { name: 'Use the pin', shell: 'echo "pin={{ api_pin }}"' },
        {
          name: 'Write the config',
          copy: {
            dest: '{{ host_dir }}/app.conf',
            content: 'password={{ db_password | upper }}\ntoken={{ api_token }}\n',
          },
        },
        { name: 'Encode the password', shell: "printf '%s' '{{ db_password }}' | base64 -w0" },
        {
          name: 'Add text to a number',
          debug: { msg: '{{ db_password }}' },
          when: 'db_password + 1 > 0',
          ignore_errors: true,
        },
        { name: 'Fail loudly', shell: 'echo "token {{ api_token }} rejected" >&2; exit 4', ignore_errors: true },
      ]);
      const stateDir = join(lab.dir, 'state-secrets');
      const env = { CAIRN_STATE_DIR: stateDir };
      const vault = ['--vault-identity', identity];
      const consoleRun = await runCairn(['play', playbook, '-i', inventoryDir, '-v', ...vault], { env });
      const jsonRun = await runCairn(['play', playbook, '-i', inventoryDir, '--json', ...vault], { env });
      // Drift, so the --diff run has a content change to show.
      writeFileSync(join(lab.hosts[0]!.dir, 'app.conf'), 'old\n');
      const diffRun = await runCairn(['play', playbook, '-i', inventoryDir, '--json', '--diff', '--check', ...vault], {
        env,
      });
      // Exit 0: the expression error and the failing command are both under ignore_errors, and an ignored error
      // never makes the run exit 5 (issue 12, as Ansible); everything else ran.
      for (const run of [consoleRun, jsonRun, diffRun]) expect(run.code, run.stderr + run.stdout.slice(-2000)).toBe(0);

      // The tasks really used the secrets.
      const check = await runCairn(['play', playbook, '-i', inventoryDir, '--json', ...vault], { env });
      expect(readFileSync(join(lab.hosts[0]!.dir, 'app.conf'), 'utf8')).toBe(
        `password=${dbPassword.toUpperCase()}\ntoken=${apiToken}\n`,
      );
      expect(leaks(check.stdout)).toEqual([]);
      const results = taskResults(jsonEvents(jsonRun.stdout));
      expect(results.find((e) => e.task.name === 'Use the pin')?.result?.stdout).toBe('pin=********');
      expect(results.find((e) => e.task.name === 'Encode the password')?.result?.stdout).toBe('********');
      const cut = results.find((e) => e.task.name === 'Add text to a number');
      expect(cut?.status).toBe('failed');
      expect(cut?.msg).toMatch(/cannot add a string \("\*{8}…"\) and a number/);

      expect(leaks(consoleRun.stdout + consoleRun.stderr), 'console').toEqual([]);
      expect(leaks(jsonRun.stdout + jsonRun.stderr), '--json').toEqual([]);
      expect(leaks(diffRun.stdout + diffRun.stderr), '--json --diff').toEqual([]);
      const journals = readdirSync(join(stateDir, 'runs')).map((name) =>
        readFileSync(join(stateDir, 'runs', name), 'utf8'),
      );
      expect(journals).toHaveLength(4);
      for (const journal of journals) expect(leaks(journal), 'journal').toEqual([]);

      // Rendered contents are journalled only when --diff asked for them, and then masked.
      const [withoutDiff, withDiff] = [jsonRun, diffRun].map((run) =>
        jsonEvents(run.stdout).filter((e) => e.type === 'task_result' && e.diffs !== undefined),
      );
      expect(withoutDiff).toEqual([]);
      expect(JSON.stringify(withDiff)).toContain('password=********');
    }, 180_000);

    it("escape codes in a host's stderr and stdout are shown as text, never sent to the terminal", async () => {
      const playbook = writePlaybook('escapes', [
        {
          name: 'Hostile stderr',
          shell: "printf 'bad\\033]0;owned\\007\\033[2J\\033[31mred\\r\\n' >&2; exit 3",
          ignore_errors: true,
        },
        { name: 'Hostile stdout', shell: "printf 'out\\033[1Aup\\n'" },
      ]);
      const run = await runCairn(['play', playbook, '-i', inventoryDir, '-v', '--vault-identity', identity], {
        env: { CAIRN_STATE_DIR: join(lab.dir, 'state-esc') },
      });
      expect(run.code, run.stderr).toBe(0);
      // NO_COLOR and a pipe: not one escape byte in the whole output.
      expect(run.stdout.includes('\u001b')).toBe(false);
      expect(run.stdout.includes('\u0007')).toBe(false);
      const fatal = run.stdout.split('\n').find((line) => line.startsWith('fatal: [vaulted]: FAILED!'));
      expect(fatal).toContain('bad\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred');
    }, 120_000);

    it('become_user is templated', async () => {
      const playbook = writePlaybook('become', [
        { name: 'Who am I', command: 'id -un', become: true, become_user: '{{ svc_user }}', register: 'who' },
      ]);
      const run = await runCairn(['play', playbook, '-i', inventoryDir, '--json', '--vault-identity', identity], {
        env: { CAIRN_STATE_DIR: join(lab.dir, 'state-become') },
      });
      expect(run.code, run.stderr + run.stdout.slice(-1500)).toBe(0);
      expect(taskResults(jsonEvents(run.stdout))[0]?.result?.stdout).toBe('nobody');
    }, 120_000);
  },
);
