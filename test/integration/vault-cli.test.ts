/**
 * `cairn vault` as a real process: exit codes and messages (ERROR! one paragraph, no stack trace, nothing on
 * stdout when the key is wrong), a real $EDITOR child with signals arriving mid-edit (SIGINT is left to the
 * editor; SIGTERM ends the edit, and the decrypted scratch copy is shredded either way), and a canary secret
 * that never reaches stderr or any file left behind.
 *
 * The vault commands are compiled with the project's TypeScript into a temporary folder and driven by a
 * small entry that handles errors as runner/cli.ts's main() does (the real CLI wires registerVaultCommands
 * the same way; this test does not depend on `npm run build`).
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
// Made at run time so that no file on disk holds it before the test writes it (see test/unit/vault.test.ts).
const CANARY = `CANARY-vault-cli-${randomBytes(6).toString('hex')}`;
let work: string;

const entry = `
import { Command, CommanderError } from 'commander';
import { CairnError } from './out/runner/core/util/errors.js';
import { registerVaultCommands } from './out/runner/commands/vault.js';
const program = new Command().name('cairn').exitOverride();
registerVaultCommands(program);
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? 0 : 5;
  else if (err instanceof CairnError) { process.stderr.write('ERROR! ' + err.render() + '\\n'); process.exitCode = 5; }
  else { process.stderr.write('ERROR! unexpected internal error: ' + (err && err.message) + '\\n'); process.exitCode = 250; }
}
`;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cairn-vault-cli-'));
  symlinkSync(join(root, 'node_modules'), join(work, 'node_modules'), 'dir');
  writeFileSync(join(work, 'package.json'), '{"type":"module"}\n');
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules/typescript/bin/tsc'),
      ...['--outDir', join(work, 'out'), '--rootDir', root, '--module', 'NodeNext', '--moduleResolution', 'NodeNext'],
      ...[
        '--target',
        'ES2022',
        '--strict',
        '--skipLibCheck',
        '--esModuleInterop',
        '--types',
        'node',
        '--declaration',
        'false',
      ],
      join(root, 'runner/commands/vault.ts'),
    ],
    { cwd: root, stdio: 'pipe' },
  );
  writeFileSync(join(work, 'cairn-vault.mjs'), entry);
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  pid: number;
  done: Promise<Run>;
}

function start(args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(process.execPath, ['cairn-vault.mjs', 'vault', ...args], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, CAIRN_VAULT_SCRYPT_WORK_FACTOR: '10', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolveRun) =>
    child.on('close', (code, signal) => resolveRun({ code, signal, stdout, stderr })),
  );
  return { pid: child.pid!, done };
}

const cairnVault = (args: string[], env: Record<string, string> = {}) => start(args, env).done;

async function waitFor(what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (test()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gave up waiting for ${what}`);
}

function script(name: string, body: string): string {
  const path = join(work, name);
  writeFileSync(path, `#!/bin/sh\nset -e\necho "$1" >> "$EDITOR_LOG"\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function noStackTrace(text: string): void {
  expect(text).not.toMatch(/^\s+at .*:\d+:\d+\)?$/m);
}

describe('cairn vault (process)', () => {
  it('keygen, create, view; a wrong key exits 5 with one message, nothing on stdout, no stack trace', async () => {
    const keyA = join(work, 'a.key');
    const keyB = join(work, 'b.key');
    const genA = await cairnVault(['keygen', keyA]);
    expect(genA.code).toBe(0);
    expect(genA.stdout).toMatch(/^age1[0-9a-z]+\n$/);
    expect(statSync(keyA).mode & 0o777).toBe(0o600);
    expect((await cairnVault(['keygen', keyB])).code).toBe(0);

    const log = join(work, 'create.log');
    const write = script('write.sh', 'printf "%s" "$NEW_TEXT" > "$1"');
    const file = join(work, 'vault.yaml');
    const created = await cairnVault(['create', file, '--vault-identity', keyA], {
      EDITOR: `/bin/sh ${write}`,
      EDITOR_LOG: log,
      NEW_TEXT: `vrrp_password: ${CANARY}\n`,
    });
    expect(created).toMatchObject({ code: 0, stdout: '' });
    expect(created.stderr).not.toContain(CANARY);

    const viewed = await cairnVault(['view', file], { CAIRN_VAULT_IDENTITY: keyA });
    expect(viewed).toMatchObject({ code: 0, stdout: `vrrp_password: ${CANARY}\n`, stderr: '' });

    const wrong = await cairnVault(['view', file], { CAIRN_VAULT_IDENTITY: keyB });
    expect(wrong.code).toBe(5);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toBe(
      `ERROR! ${file}: the vault key does not open this file (tried identity file ${keyB} (CAIRN_VAULT_IDENTITY))\n`,
    );
    noStackTrace(wrong.stderr);

    const wrongPass = await cairnVault(['view', file], { CAIRN_VAULT_PASSWORD: 'nope' });
    expect(wrongPass.code).toBe(5);
    expect(wrongPass.stderr).toMatch(
      /^ERROR! .*vault\.yaml: the vault key does not open this file: it is encrypted for an identity/,
    );

    const noKey = await cairnVault(['view', file]);
    expect(noKey.code).toBe(5);
    expect(noKey.stderr).toMatch(/no vault key was given: use --vault-identity FILE/);

    const missing = await cairnVault(['view', join(work, 'nope.yaml')], { CAIRN_VAULT_IDENTITY: keyA });
    expect(missing.stderr).toBe(`ERROR! ${join(work, 'nope.yaml')}: cannot read vault file: no such file\n`);
  });

  it('SIGINT during the edit goes to the editor, not cairn: the edit still saves, the scratch copy is shredded', async () => {
    const key = join(work, 'int.key');
    expect((await cairnVault(['keygen', key])).code).toBe(0);
    const file = join(work, 'int.yaml');
    const plain = join(work, 'int-plain.yaml');
    writeFileSync(plain, `token: ${CANARY}\n`);
    expect((await cairnVault(['encrypt', plain, '--vault-identity', key])).code).toBe(0);
    execFileSync('mv', [plain, file]);

    const log = join(work, 'int.log');
    const go = join(work, 'int.go');
    const editor = script(
      'wait-then-write.sh',
      'while [ ! -e "$GO" ]; do sleep 0.05; done\nprintf "token: %s-edited\\n" "$SECRET" > "$1"',
    );
    const run = start(['edit', file], {
      EDITOR: `/bin/sh ${editor}`,
      EDITOR_LOG: log,
      GO: go,
      SECRET: CANARY,
      CAIRN_VAULT_IDENTITY: key,
    });
    await waitFor('the editor to start', () => existsSync(log));
    const scratch = readFileSync(log, 'utf8').trim();
    expect(scratch.startsWith('/dev/shm/cairn-vault-')).toBe(true);
    expect(readFileSync(scratch, 'utf8')).toBe(`token: ${CANARY}\n`);
    process.kill(run.pid, 'SIGINT');
    writeFileSync(go, '');
    const result = await run.done;
    expect(result).toMatchObject({ code: 0, signal: null, stdout: '' });
    expect(result.stderr).toBe(`saved ${file}, encrypted to 1 recipient\n`);
    expect(existsSync(dirname(scratch))).toBe(false);
    expect((await cairnVault(['view', file], { CAIRN_VAULT_IDENTITY: key })).stdout).toBe(`token: ${CANARY}-edited\n`);
  });

  it('SIGTERM during the edit ends it: vault unchanged, exit 5, scratch copy gone', async () => {
    const key = join(work, 'term.key');
    expect((await cairnVault(['keygen', key])).code).toBe(0);
    const file = join(work, 'term.yaml');
    const log = join(work, 'term.log');
    const write = script('term-create.sh', 'printf "%s" "$NEW_TEXT" > "$1"');
    expect(
      (
        await cairnVault(['create', file, '--vault-identity', key], {
          EDITOR: `/bin/sh ${write}`,
          EDITOR_LOG: log,
          NEW_TEXT: `a: ${CANARY}\n`,
        })
      ).code,
    ).toBe(0);
    const before = readFileSync(file, 'utf8');

    const hangLog = join(work, 'hang.log');
    // exec: the editor process is the sleep itself, so the SIGTERM cairn passes on ends it at once.
    const hang = script('hang.sh', 'exec sleep 120');
    const run = start(['edit', file], {
      EDITOR: `exec /bin/sh ${hang}`,
      EDITOR_LOG: hangLog,
      CAIRN_VAULT_IDENTITY: key,
    });
    await waitFor('the editor to start', () => existsSync(hangLog));
    const scratch = readFileSync(hangLog, 'utf8').trim();
    process.kill(run.pid, 'SIGTERM');
    const result = await run.done;
    expect(result.code).toBe(5);
    expect(result.stderr).toBe(`ERROR! ${file}: interrupted by SIGTERM while editing; the vault file is unchanged\n`);
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect(existsSync(dirname(scratch))).toBe(false);
  });

  it('refuses to save YAML that does not parse (no terminal: abort), without quoting the secret', async () => {
    const key = join(work, 'bad.key');
    expect((await cairnVault(['keygen', key])).code).toBe(0);
    const file = join(work, 'bad.yaml');
    const log = join(work, 'bad.log');
    const write = script('bad-create.sh', 'printf "%s" "$NEW_TEXT" > "$1"');
    expect(
      (
        await cairnVault(['create', file, '--vault-identity', key], {
          EDITOR: `/bin/sh ${write}`,
          EDITOR_LOG: log,
          NEW_TEXT: `a: 1\n`,
        })
      ).code,
    ).toBe(0);
    const before = readFileSync(file, 'utf8');
    const result = await cairnVault(['edit', file, '--vault-identity', key], {
      EDITOR: `/bin/sh ${write}`,
      EDITOR_LOG: log,
      NEW_TEXT: `a: 1\nb: [${CANARY}\n`,
    });
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(
      new RegExp(
        `^ERROR! ${file}: not saved: the edited text is not valid vault YAML \\(${file} \\(decrypted\\):\\d+:\\d+: invalid YAML: [^\\n]*\\); the vault file is unchanged and the edit was discarded\\n$`,
      ),
    );
    expect(result.stderr).not.toContain(CANARY);
    expect(readFileSync(file, 'utf8')).toBe(before);
    for (const line of readFileSync(log, 'utf8').trim().split('\n')) expect(existsSync(dirname(line))).toBe(false);
  });

  it('decrypt warns; rekey to a passphrase file; bad options exit 5', async () => {
    const key = join(work, 'rk.key');
    expect((await cairnVault(['keygen', key])).code).toBe(0);
    const file = join(work, 'rk.yaml');
    writeFileSync(file, 'x: 1\n');
    expect((await cairnVault(['encrypt', file, '--vault-identity', key])).code).toBe(0);
    const pw = join(work, 'rk.pw');
    writeFileSync(pw, 'new passphrase\n');
    const rekeyed = await cairnVault(['rekey', file, '--vault-identity', key, '--new-vault-password-file', pw]);
    expect(rekeyed).toMatchObject({ code: 0, stderr: `rekeyed ${file}: now encrypted to a passphrase\n` });
    expect((await cairnVault(['view', file, '--vault-password-file', pw])).stdout).toBe('x: 1\n');
    const noNew = await cairnVault(['rekey', file, '--vault-password-file', pw]);
    expect(noNew.code).toBe(5);
    expect(noNew.stderr).toMatch(/^ERROR! rekey needs the new key/);
    const both = await cairnVault([
      'rekey',
      file,
      '--vault-password-file',
      pw,
      '--new-vault-password-file',
      pw,
      '--new-vault-identity',
      key,
    ]);
    expect(both.stderr).toMatch(/not both/);
    const decrypted = await cairnVault(['decrypt', file, '--vault-password-file', pw]);
    expect(decrypted.code).toBe(0);
    expect(decrypted.stderr).toMatch(/^WARNING: .*rk\.yaml is now plain text on disk/);
    expect(readFileSync(file, 'utf8')).toBe('x: 1\n');
    expect((await cairnVault(['frobnicate'])).code).toBe(5);
    // Nothing but our own files in the work folder: no temp file survived any atomic write.
    expect(readdirSync(work).filter((n) => n.includes('.cairn-') || n.endsWith('.tmp'))).toEqual([]);
  });
});
