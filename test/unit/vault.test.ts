/**
 * Vault files: real age encryption (age-encryption) with passphrases, passphrase files and identity files;
 * wrong keys; an inventory whose group_vars, host_vars and inventory file are encrypted; the `cairn vault`
 * commands on a fresh commander program, with EDITOR set to small shell scripts that rewrite the file; and a
 * canary secret that must not appear in any file the commands leave anywhere.
 *
 * Passphrase encryption uses scrypt work factor 10 through CAIRN_VAULT_SCRYPT_WORK_FACTOR (the default 18
 * costs about two seconds per file); decryption reads the factor from the file, so the code paths are the same.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerVaultCommands, vaultTextProblem, type VaultIo } from '../../runner/commands/vault.js';
import { CairnError, formatLocation } from '../../runner/core/util/errors.js';
import { loadInventory } from '../../runner/core/inventory/index.js';
import {
  ARMOR_BEGIN,
  configureVault,
  decryptVault,
  encryptText,
  encryptionTarget,
  findInventoryVaultFiles,
  loadVaultKeys,
  newIdentity,
  readIdentityFile,
  readPasswordFile,
  resetVault,
  writeFileAtomic,
  type VaultKey,
} from '../../runner/core/vault/index.js';

const FAST = { CAIRN_VAULT_SCRYPT_WORK_FACTOR: '10' };
// Made at run time so that no source file (nor vitest's transformed copy of this one, which it caches
// under the temp folder) holds the value: the scan of the temp folder below would find it there.
const CANARY = `CANARY-vault-${randomBytes(6).toString('hex')}`;

let work: string;
let identityA: string; // identity file paths
let identityB: string;
let recipientA: string;
let recipientB: string;
const startedAt = Date.now();

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cairn-vault-test-'));
  const a = await newIdentity();
  const b = await newIdentity();
  identityA = join(work, 'a.key');
  identityB = join(work, 'b.key');
  writeFileSync(identityA, a.text, { mode: 0o600 });
  writeFileSync(identityB, b.text, { mode: 0o600 });
  recipientA = a.recipient;
  recipientB = b.recipient;
});

afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => resetVault());

async function cairnError(fn: () => unknown): Promise<CairnError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw new Error(`expected a CairnError, got ${err instanceof Error ? err.stack : String(err)}`, { cause: err });
  }
  throw new Error('expected a CairnError, nothing was thrown');
}

function dir(name: string): string {
  const d = join(work, name);
  mkdirSync(d, { recursive: true });
  return d;
}

const passphraseKey = (passphrase: string): VaultKey => ({ kind: 'passphrase', passphrase, origin: 'test passphrase' });

describe('age format', () => {
  it('round-trips with a passphrase, as armoured text that never holds the plaintext', async () => {
    const text = `db_password: ${CANARY}\n`;
    const armoured = await encryptText(text, { kind: 'passphrase', passphrase: 'correct horse' }, FAST);
    expect(armoured.startsWith(`${ARMOR_BEGIN}\n`)).toBe(true);
    expect(armoured.trimEnd().endsWith('-----END AGE ENCRYPTED FILE-----')).toBe(true);
    expect(armoured.split('\n').every((line) => line.length <= 64)).toBe(true);
    expect(armoured).not.toContain(CANARY);
    const out = await decryptVault('v.yaml', Buffer.from(armoured), [passphraseKey('correct horse')]);
    expect(out.text).toBe(text);
    expect(out.stanzas).toEqual(['scrypt']);
    // Two encryptions of the same text differ (random file key): re-encrypting only on change matters.
    expect(await encryptText(text, { kind: 'passphrase', passphrase: 'correct horse' }, FAST)).not.toBe(armoured);
  });

  it('round-trips with a passphrase file, its final line break not part of the passphrase', async () => {
    const file = join(dir('pwfile'), 'pw');
    writeFileSync(file, 'hunter2 with spaces\n');
    expect(readPasswordFile(file).passphrase).toBe('hunter2 with spaces');
    const armoured = await encryptText('a: 1\n', { kind: 'passphrase', passphrase: 'hunter2 with spaces' }, FAST);
    for (const keys of [
      await loadVaultKeys({ vaultPasswordFile: file }, {}),
      await loadVaultKeys({}, { CAIRN_VAULT_PASSWORD_FILE: file }),
    ]) {
      expect((await decryptVault('v.yaml', Buffer.from(armoured), keys)).text).toBe('a: 1\n');
    }
    writeFileSync(file, '\n');
    expect((await cairnError(() => readPasswordFile(file))).message).toBe('the vault passphrase file is empty');
    writeFileSync(file, 'one\ntwo\n');
    expect((await cairnError(() => readPasswordFile(file))).message).toMatch(/single line/);
  });

  it('round-trips with an identity file, encrypting to its public recipient', async () => {
    const keys = await loadVaultKeys({ vaultIdentity: identityA }, {});
    expect(keys).toHaveLength(1);
    const target = encryptionTarget({}, keys);
    expect(target).toEqual({ kind: 'recipients', recipients: [recipientA] });
    const armoured = await encryptText('token: abc\n', target, {});
    const out = await decryptVault('v.yaml', Buffer.from(armoured), keys);
    expect(out.text).toBe('token: abc\n');
    expect(out.openedBy.origin).toBe(`identity file ${identityA} (--vault-identity)`);
    // Binary (unarmoured) age files, as `age` writes by default, open too.
    const { armor } = await import('age-encryption');
    expect((await decryptVault('v.age', armor.decode(armoured), keys)).text).toBe('token: abc\n');
  });

  it('tries every key in order: identity, passphrase file, CAIRN_VAULT_PASSWORD; flags before environment', async () => {
    const pw = join(dir('order'), 'pw');
    writeFileSync(pw, 'from-file\n');
    const keys = await loadVaultKeys(
      {},
      { CAIRN_VAULT_IDENTITY: identityA, CAIRN_VAULT_PASSWORD_FILE: pw, CAIRN_VAULT_PASSWORD: 'from-env' },
    );
    expect(keys.map((k) => k.origin)).toEqual([
      `identity file ${identityA} (CAIRN_VAULT_IDENTITY)`,
      `passphrase file ${pw} (CAIRN_VAULT_PASSWORD_FILE)`,
      'the passphrase in CAIRN_VAULT_PASSWORD',
    ]);
    const flagged = await loadVaultKeys({ vaultIdentity: identityB }, { CAIRN_VAULT_IDENTITY: identityA });
    expect(flagged.map((k) => k.origin)).toEqual([`identity file ${identityB} (--vault-identity)`]);
    // A file for the env passphrase is opened by it even though other keys come first.
    const armoured = await encryptText('x: 1\n', { kind: 'passphrase', passphrase: 'from-env' }, FAST);
    const out = await decryptVault('v.yaml', Buffer.from(armoured), keys);
    expect(out.openedBy.origin).toBe('the passphrase in CAIRN_VAULT_PASSWORD');
  });

  it('a wrong passphrase or identity is a CairnError naming the file, not a stack trace', async () => {
    const byPassphrase = Buffer.from(
      await encryptText(`s: ${CANARY}\n`, { kind: 'passphrase', passphrase: 'right' }, FAST),
    );
    const err = await cairnError(() =>
      decryptVault('inv/group_vars/all/vault.yaml', byPassphrase, [passphraseKey('wrong')]),
    );
    expect(err.render()).toBe(
      'inv/group_vars/all/vault.yaml: the vault key does not open this file (tried test passphrase)',
    );
    expect(err.render()).not.toContain(CANARY);

    const byIdentity = Buffer.from(await encryptText('s: 1\n', { kind: 'recipients', recipients: [recipientA] }, {}));
    const keysB = await loadVaultKeys({ vaultIdentity: identityB }, {});
    const wrongId = await cairnError(() => decryptVault('v.yaml', byIdentity, keysB));
    expect(wrongId.message).toBe(
      `the vault key does not open this file (tried identity file ${identityB} (--vault-identity))`,
    );
    expect(formatLocation(wrongId.location!)).toBe('v.yaml');

    // The wrong kind of key says which kind the file wants.
    const kind = await cairnError(() => decryptVault('v.yaml', byPassphrase, keysB));
    expect(kind.message).toMatch(/^the vault key does not open this file: it is encrypted for a passphrase/);
    const none = await cairnError(() => decryptVault('v.yaml', byIdentity, []));
    expect(none.message).toMatch(/^this vault file is encrypted and no vault key was given: use --vault-identity FILE/);
  });

  it('a damaged file says so', async () => {
    const armoured = await encryptText('a: 1\n', { kind: 'recipients', recipients: [recipientA] }, {});
    const keys = await loadVaultKeys({ vaultIdentity: identityA }, {});
    const lines = armoured.trimEnd().split('\n');
    // Flip one base64 character in the last payload line: the ciphertext fails authentication.
    const last = lines[lines.length - 2]!;
    lines[lines.length - 2] = (last[0] === 'A' ? 'B' : 'A') + last.slice(1);
    const tampered = await cairnError(() => decryptVault('v.yaml', Buffer.from(`${lines.join('\n')}\n`), keys));
    expect(tampered.message).toMatch(
      /^damaged vault file: its encrypted content fails authentication|^the vault key does not open this file/,
    );
    const cut = await cairnError(() =>
      decryptVault('v.yaml', Buffer.from(`${ARMOR_BEGIN}\nabc\n-----END AGE ENCRYPTED FILE-----\n`), keys),
    );
    expect(cut.message).toBe('damaged vault file: its age armour is invalid (invalid line length)');
  });

  it('reads identity files as age-keygen writes them, and never quotes a key in an error', async () => {
    const { text } = await newIdentity();
    expect(text).toMatch(/^# created: .*\n# public key: age1[0-9a-z]+\nAGE-SECRET-KEY-1[0-9A-Z]+\n$/);
    const d = dir('ids');
    const bad = join(d, 'bad.key');
    writeFileSync(bad, '# comment\n\nnot-a-key\n');
    const err = await cairnError(() => readIdentityFile(bad));
    expect(formatLocation(err.location!)).toBe(`${bad}:3:1`);
    const key = text.trim().split('\n')[2]!;
    const damaged = `${key.slice(0, -4)}QQQQ`;
    writeFileSync(bad, `${damaged}\n`);
    const checksum = await cairnError(() => readIdentityFile(bad));
    expect(checksum.render()).toBe(`${bad}:1:1: this age identity is damaged (its checksum or length is wrong)`);
    expect(checksum.render()).not.toContain(damaged.slice(20));
    writeFileSync(bad, '# nothing\n');
    expect((await cairnError(() => readIdentityFile(bad))).message).toMatch(/^no age identity in this file/);
    expect((await cairnError(() => readIdentityFile(join(d, 'missing')))).message).toBe(
      'cannot read age identity file: no such file',
    );
  });

  it('refuses an unsafe scrypt work factor from the environment', async () => {
    const err = await cairnError(() =>
      encryptText('a: 1', { kind: 'passphrase', passphrase: 'p' }, { CAIRN_VAULT_SCRYPT_WORK_FACTOR: '4' }),
    );
    expect(err.message).toMatch(/^CAIRN_VAULT_SCRYPT_WORK_FACTOR must be a whole number from 10 to 20/);
  });
});

describe('configureVault + loadInventory', () => {
  /** hosts.yaml, a plain and an encrypted group_vars/all file, and an encrypted host_vars file. */
  async function makeInventory(name: string): Promise<string> {
    const inv = dir(name);
    writeFileSync(join(inv, 'hosts.yaml'), 'all:\n  hosts:\n    web1:\n    db1:\n');
    mkdirSync(join(inv, 'group_vars', 'all'), { recursive: true });
    mkdirSync(join(inv, 'host_vars'), { recursive: true });
    writeFileSync(join(inv, 'group_vars', 'all', '10-plain.yaml'), 'db_user: app\ndb_password: placeholder\n');
    writeFileSync(
      join(inv, 'group_vars', 'all', 'vault.yaml'),
      await encryptText(
        `db_password: ${CANARY}\nkeepalived:\n  vrrp_password: vrrp-secret-1\n`,
        { kind: 'passphrase', passphrase: 'inventory-pass' },
        FAST,
      ),
    );
    writeFileSync(
      join(inv, 'host_vars', 'web1.yaml'),
      await encryptText('api_token: tok-web1-aaaa\n', { kind: 'recipients', recipients: [recipientA] }, {}),
    );
    return inv;
  }

  it('decrypts every vault file ahead of loading; the loader sees the values and lists them as secrets', async () => {
    const inv = await makeInventory('inv-ok');
    const setup = await configureVault(inv, { vaultIdentity: identityA }, { CAIRN_VAULT_PASSWORD: 'inventory-pass' });
    expect(setup.files).toEqual([join(inv, 'group_vars', 'all', 'vault.yaml'), join(inv, 'host_vars', 'web1.yaml')]);
    const inventory = loadInventory(inv);
    expect(inventory.hostVars('web1')).toMatchObject({
      db_user: 'app',
      db_password: CANARY,
      api_token: 'tok-web1-aaaa',
      keepalived: { vrrp_password: 'vrrp-secret-1' },
    });
    expect(inventory.hostVars('db1').api_token).toBeUndefined();
    expect(formatLocation(inventory.varOrigin('db1', 'db_password')!)).toBe(`${inv}/group_vars/all/vault.yaml:1:1`);
    expect(inventory.secretValues()).toEqual([CANARY, 'tok-web1-aaaa', 'vrrp-secret-1']);
    // Nothing decrypted was written anywhere in the inventory.
    expect(filesContaining(inv, CANARY)).toEqual([]);
  });

  it('also opens an encrypted inventory file given by path, relative paths included', async () => {
    const inv = dir('inv-whole');
    writeFileSync(
      join(inv, 'prod.yaml'),
      await encryptText(
        'all:\n  hosts:\n    lb1:\n      ansible_host: 10.0.0.9\n',
        { kind: 'recipients', recipients: [recipientA, recipientB] },
        {},
      ),
    );
    const rel = relative(process.cwd(), join(inv, 'prod.yaml'));
    expect(rel.startsWith('/')).toBe(false);
    await configureVault(rel, { vaultIdentity: identityB }, {});
    const inventory = loadInventory(rel);
    expect(inventory.hostVars('lb1').ansible_host).toBe('10.0.0.9');
    expect(inventory.secretValues()).toEqual(['10.0.0.9']);
  });

  it('refuses encrypted files with no key, or a key that does not open one, naming the file', async () => {
    const inv = await makeInventory('inv-bad');
    const none = await cairnError(() => configureVault(inv, {}, {}));
    expect(formatLocation(none.location!)).toBe(join(inv, 'group_vars', 'all', 'vault.yaml'));
    expect(none.message).toMatch(/no vault key was given/);
    // The passphrase opens vault.yaml; nothing given opens web1.yaml.
    const wrong = await cairnError(() =>
      configureVault(inv, { vaultIdentity: identityB }, { CAIRN_VAULT_PASSWORD: 'inventory-pass' }),
    );
    expect(wrong.render()).toBe(
      `${join(inv, 'host_vars', 'web1.yaml')}: the vault key does not open this file (tried identity file ${identityB} (--vault-identity))`,
    );
  });

  it('refuses a vault file replaced between unlocking and loading', async () => {
    const inv = await makeInventory('inv-changed');
    await configureVault(inv, { vaultIdentity: identityA }, { CAIRN_VAULT_PASSWORD: 'inventory-pass' });
    const web1 = join(inv, 'host_vars', 'web1.yaml');
    writeFileSync(web1, await encryptText('api_token: other\n', { kind: 'recipients', recipients: [recipientA] }, {}));
    const err = await cairnError(() => loadInventory(inv));
    expect(err.render()).toBe(`${web1}: this vault file changed while cairn was reading the inventory; run again`);
  });

  it('finds only age files, the way the loader walks (hidden entries skipped)', async () => {
    const inv = await makeInventory('inv-find');
    writeFileSync(
      join(inv, 'group_vars', '.hidden.yaml'),
      await encryptText('a: 1\n', { kind: 'recipients', recipients: [recipientA] }, {}),
    );
    expect(findInventoryVaultFiles(join(inv, 'hosts.yaml'))).toEqual([
      join(inv, 'group_vars', 'all', 'vault.yaml'),
      join(inv, 'host_vars', 'web1.yaml'),
    ]);
    expect(findInventoryVaultFiles(join(inv, 'missing'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------

interface VaultRun {
  stdout: string;
  stderr: string;
  error?: CairnError;
}

/** `cairn vault ARGS` on a fresh commander program, in this process. */
async function vault(
  args: string[],
  env: NodeJS.ProcessEnv,
  confirmReopen?: (problem: string) => Promise<boolean>,
): Promise<VaultRun> {
  const run: VaultRun = { stdout: '', stderr: '' };
  const io: VaultIo = {
    stdout: { write: (t: string) => (run.stdout += t) },
    stderr: { write: (t: string) => (run.stderr += t) },
    env: { PATH: process.env.PATH, ...FAST, ...env },
    confirmReopen,
  };
  const program = new Command().exitOverride();
  registerVaultCommands(program, io);
  try {
    await program.parseAsync(['vault', ...args], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CairnError)) throw err;
    run.error = err;
  }
  return run;
}

/** Editor scripts: they log what they were given (path and modes, never content) and write $NEW_TEXT. */
function editorScript(name: string, body: string): string {
  const path = join(work, `${name}.sh`);
  writeFileSync(
    path,
    `#!/bin/sh\nset -e\nprintf '%s %s %s\\n' "$1" "$(stat -c %a "$1")" "$(stat -c %a "$(dirname "$1")")" >> "$EDITOR_LOG"\n${body}\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

function editorLog(log: string): Array<{ path: string; mode: string; dirMode: string }> {
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const [path, mode, dirMode] = line.split(' ');
      return { path: path!, mode: mode!, dirMode: dirMode! };
    });
}

/** Every file under a folder whose bytes contain the needle. */
function filesContaining(root: string, needle: string, newerThan = 0): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const full = join(d, name);
      let st;
      try {
        st = statSync(full);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(full);
      else if (
        st.isFile() &&
        st.mtimeMs >= newerThan &&
        st.size < 8 * 1024 * 1024 &&
        readFileSync(full).includes(needle)
      )
        found.push(full);
    }
  };
  walk(root);
  return found;
}

describe('cairn vault commands', () => {
  it('create, view, edit, rekey, decrypt and encrypt, with EDITOR scripts', async () => {
    const d = dir('cmd');
    const log = join(d, 'editor.log');
    const write = editorScript('write', 'printf "%s" "$NEW_TEXT" > "$1"');
    const file = join(d, 'vault.yaml');
    const env = { EDITOR: `/bin/sh ${write}`, EDITOR_LOG: log, CAIRN_VAULT_PASSWORD: 'pw-one' };

    const created = await vault(['create', file], { ...env, NEW_TEXT: `db_password: ${CANARY}\n` });
    expect(created.error).toBeUndefined();
    expect(created.stderr).toBe(`created ${file}, encrypted to a passphrase\n`);
    expect(readFileSync(file, 'utf8').startsWith(ARMOR_BEGIN)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await vault(['create', file], env)).error?.message).toBe(
      'the file exists already; `cairn vault edit` changes it',
    );

    expect((await vault(['view', file], env)).stdout).toBe(`db_password: ${CANARY}\n`);

    const edited = await vault(['edit', file], { ...env, NEW_TEXT: `db_password: ${CANARY}\nextra: 2\n` });
    expect(edited.stderr).toBe(`saved ${file}, encrypted to a passphrase\n`);
    expect((await vault(['view', file], env)).stdout).toBe(`db_password: ${CANARY}\nextra: 2\n`);

    // The editor worked on a 0600 file in a 0700 folder in memory, and both are gone.
    const seen = editorLog(log);
    expect(seen).toHaveLength(2);
    for (const s of seen) {
      expect(s.path.startsWith('/dev/shm/cairn-vault-')).toBe(true);
      expect(s.path.endsWith('/vault.yaml')).toBe(true);
      expect(s.mode).toBe('600');
      expect(s.dirMode).toBe('700');
      expect(existsSync(join(s.path, '..'))).toBe(false);
    }

    // No change: the file is not rewritten (age output is random; a rewrite would be a spurious git diff).
    const before = readFileSync(file, 'utf8');
    const same = await vault(['edit', file], { ...env, EDITOR: 'true' });
    expect(same.stderr).toBe(`no changes; ${file} left as it was\n`);
    expect(readFileSync(file, 'utf8')).toBe(before);

    const rekeyed = await vault(['rekey', file, '--new-vault-identity', identityA, '--new-recipient', recipientB], env);
    expect(rekeyed.stderr).toBe(`rekeyed ${file}: now encrypted to 2 recipients\n`);
    expect((await vault(['view', file], env)).error?.message).toMatch(
      /^the vault key does not open this file: it is encrypted for an identity/,
    );
    expect((await vault(['view', file, '--vault-identity', identityB], {})).stdout).toBe(
      `db_password: ${CANARY}\nextra: 2\n`,
    );

    const decrypted = await vault(['decrypt', file, '--vault-identity', identityA], {});
    expect(decrypted.stderr).toMatch(/^WARNING: .* is now plain text on disk \(mode 0600\)/);
    expect(readFileSync(file, 'utf8')).toBe(`db_password: ${CANARY}\nextra: 2\n`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const encrypted = await vault(['encrypt', file, '--recipient', recipientB], {});
    expect(encrypted.stderr.split('\n')[0]).toBe(`encrypted ${file} to 1 recipient`);
    expect((await vault(['view', file, '--vault-identity', identityB], {})).stdout).toContain(CANARY);
    expect((await vault(['encrypt', file, '--recipient', recipientB], {})).error?.message).toBe(
      'already encrypted (it starts with an age header)',
    );
  });

  it('editing YAML that does not parse: abort leaves the vault unchanged, or reopen and fix', async () => {
    const d = dir('badyaml');
    const log = join(d, 'editor.log');
    const file = join(d, 'vault.yaml');
    writeFileSync(file, await encryptText(`token: ${CANARY}\n`, { kind: 'recipients', recipients: [recipientA] }, {}));
    const before = readFileSync(file, 'utf8');
    const broken = editorScript('broken', 'printf "token: [unclosed\\n" > "$1"');
    const env = { EDITOR: `/bin/sh ${broken}`, EDITOR_LOG: log, CAIRN_VAULT_IDENTITY: identityA };

    const aborted = await vault(['edit', file], env);
    expect(aborted.error?.render()).toMatch(
      new RegExp(
        `^${file}: not saved: the edited text is not valid vault YAML \\(${file} \\(decrypted\\):1:8: invalid YAML: this "\\[" is never closed.*\\); the vault file is unchanged and the edit was discarded$`,
      ),
    );
    expect(readFileSync(file, 'utf8')).toBe(before);

    // Second run of the editor (reopened) fixes it: the script writes good YAML once it sees its own bad text.
    const fixing = editorScript(
      'fixing',
      'if grep -q unclosed "$1"; then printf "token: fixed\\n" > "$1"; else printf "token: [unclosed\\n" > "$1"; fi',
    );
    const problems: string[] = [];
    const reopened = await vault(['edit', file], { ...env, EDITOR: `/bin/sh ${fixing}` }, async (problem) => {
      problems.push(problem);
      return true;
    });
    expect(reopened.error).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^not valid YAML: .*\(decrypted\):1:8: invalid YAML: this "\[" is never closed/);
    expect((await vault(['view', file], env)).stdout).toBe('token: fixed\n');

    // A list at the top is valid YAML but not variables.
    expect(vaultTextProblem('- a\n- b\n', 'x')).toBe(
      'x: expected a mapping of variable names to values at the top level',
    );
    // The editor failing leaves the file as it was.
    const failing = await vault(['edit', file], { ...env, EDITOR: 'false' });
    expect(failing.error?.message).toBe('the editor (false) exited with status 1; the vault file is unchanged');
    for (const s of editorLog(log)) expect(existsSync(join(s.path, '..'))).toBe(false);
  });

  it('edit refuses to drop recipients it does not know', async () => {
    const d = dir('team');
    const file = join(d, 'vault.yaml');
    writeFileSync(file, await encryptText('a: 1\n', { kind: 'recipients', recipients: [recipientA, recipientB] }, {}));
    const write = editorScript('write2', 'printf "a: 2\\n" > "$1"');
    const env = { EDITOR: `/bin/sh ${write}`, EDITOR_LOG: join(d, 'log'), CAIRN_VAULT_IDENTITY: identityA };
    const refused = await vault(['edit', file], env);
    expect(refused.error?.message).toMatch(
      /^this file is encrypted to 2 recipients and cairn knows 1 of them .*list every recipient with --recipient/,
    );
    const saved = await vault(['edit', file, '--recipient', recipientA, '--recipient', recipientB], env);
    expect(saved.stderr).toBe(`saved ${file}, encrypted to 2 recipients\n`);
    expect((await vault(['view', file, '--vault-identity', identityB], {})).stdout).toBe('a: 2\n');
  });

  it('keygen writes a 0600 identity file and never replaces one', async () => {
    const d = dir('keygen');
    const file = join(d, 'id.key');
    const run = await vault(['keygen', file], {});
    expect(run.stdout).toMatch(/^age1[0-9a-z]{58}\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const key = await readIdentityFile(file);
    expect(key.recipients).toEqual([run.stdout.trim()]);
    expect((await vault(['keygen', file], {})).error?.message).toBe('refusing to overwrite: the file exists');
    expect(readdirSync(d)).toEqual(['id.key']);
  });

  it('a wrong key prints nothing of any file, even when the other files open', async () => {
    const d = dir('partial');
    const good = join(d, 'good.yaml');
    const other = join(d, 'other.yaml');
    writeFileSync(good, await encryptText(`a: ${CANARY}\n`, { kind: 'recipients', recipients: [recipientA] }, {}));
    writeFileSync(other, await encryptText('b: 1\n', { kind: 'recipients', recipients: [recipientB] }, {}));
    const run = await vault(['view', good, other, '--vault-identity', identityA], {});
    expect(run.stdout).toBe('');
    expect(run.error?.render()).toBe(
      `${other}: the vault key does not open this file (tried identity file ${identityA} (--vault-identity))`,
    );
  });

  it('canary: no file left by create, edit, view, encrypt, rekey or keygen holds the secret', async () => {
    const since = Date.now() - 1000;
    const d = dir('canary');
    const log = join(d, 'editor.log');
    const write = editorScript('canary-write', 'printf "%s" "$NEW_TEXT" > "$1"');
    const file = join(d, 'secrets.yaml');
    const env = {
      EDITOR: `/bin/sh ${write}`,
      EDITOR_LOG: log,
      CAIRN_VAULT_IDENTITY: identityA,
      NEW_TEXT: `borg_passphrase: ${CANARY}\n`,
    };
    expect((await vault(['create', file], env)).error).toBeUndefined();
    expect((await vault(['edit', file], { ...env, NEW_TEXT: `borg_passphrase: ${CANARY}-2\n` })).error).toBeUndefined();
    expect((await vault(['view', file], env)).stdout).toContain(`${CANARY}-2`);
    expect((await vault(['rekey', file, '--new-recipient', recipientB], env)).error).toBeUndefined();
    expect((await vault(['keygen', join(d, 'k.key')], env)).error).toBeUndefined();
    const plain = join(d, 'plain.yaml');
    writeFileSync(plain, `webhook_token: ${CANARY}-3\n`);
    expect((await vault(['encrypt', plain], env)).error).toBeUndefined();
    // Bad YAML aborted: the scratch copy must be gone too.
    const broken = editorScript('canary-broken', 'printf "x: [%s\\n" "$NEW_TEXT" > "$1"');
    expect(
      (await vault(['edit', file, '--vault-identity', identityB], { ...env, EDITOR: `/bin/sh ${broken}` })).error,
    ).toBeDefined();

    expect(filesContaining(work, CANARY, since)).toEqual([]);
    expect(filesContaining(tmpdir(), CANARY, since).filter((f) => !f.startsWith(work))).toEqual([]);
    expect(filesContaining('/dev/shm', CANARY, since)).toEqual([]);
    expect(editorLog(log).length).toBe(3);
    for (const s of editorLog(log)) expect(existsSync(join(s.path, '..'))).toBe(false);
  });
});

describe('writeFileAtomic', () => {
  it('replaces through a temp file, keeps the mode asked for, and creates exclusively when asked', () => {
    const d = dir('atomic');
    const target = join(d, 'f.yaml');
    writeFileAtomic(target, 'one\n', { mode: 0o640 });
    expect(readFileSync(target, 'utf8')).toBe('one\n');
    expect(statSync(target).mode & 0o777).toBe(0o640);
    writeFileAtomic(target, 'two\n', { mode: 0o600 });
    expect(readFileSync(target, 'utf8')).toBe('two\n');
    expect(() => writeFileAtomic(target, 'three\n', { exclusive: true })).toThrow(
      'refusing to overwrite: the file exists',
    );
    expect(readFileSync(target, 'utf8')).toBe('two\n');
    expect(readdirSync(d)).toEqual(['f.yaml']);
  });
});

it('the canary scan can fail: a file holding the canary is found', () => {
  // The canary scan must be able to fail: a file written now with the canary is found.
  const probe = join(dir('probe'), 'p.txt');
  writeFileSync(probe, `x ${CANARY} y`);
  expect(filesContaining(work, CANARY, startedAt)).toContain(probe);
  rmSync(probe);
});
