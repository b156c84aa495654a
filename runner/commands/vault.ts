/**
 * `cairn vault`: create, edit, view, encrypt, decrypt and rekey age-encrypted YAML files, and keygen.
 *
 * Decrypted text stays in memory, with one exception the user asks for: `edit`/`create` must give an editor
 * a file. That file is 0600 in a private 0700 folder made for this one edit, on /dev/shm (memory) when the
 * machine has it, and is overwritten with zeros and removed afterwards together with anything the editor
 * left beside it (swap and backup files). Every write of a vault file is atomic (temp file + rename).
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { CairnError, formatLocation, inputError, optionsError } from '../core/util/errors.js';
import { quote } from '../core/transport/quote.js';
import { isPlainObject } from '../core/util/vars.js';
import { parseYaml } from '../core/util/yaml-source.js';
import {
  encryptText,
  encryptionTarget,
  explicitRecipients,
  fileMode,
  isAgeEncrypted,
  loadVaultKeys,
  openVaultFile,
  readIdentityFile,
  readPasswordFile,
  recipientCount,
  targetOfKey,
  writeFileAtomic,
  writeNewIdentityFile,
  type EncryptionTarget,
  type VaultKeyOptions,
} from '../core/vault/index.js';
import {
  AnsibleVaultError,
  decryptAnsibleVault,
  isAnsibleVaultText,
  type AnsibleVaultSecret,
} from '../core/util/ansible-vault.js';

/** Where the commands write and what they may ask; tests pass their own. */
export interface VaultIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
  /**
   * Asked when the editor saved text that is not valid YAML; true reopens the editor on it. The default
   * asks on a terminal and answers no otherwise (the edit is then discarded and the vault left unchanged).
   */
  confirmReopen?: (problem: string) => Promise<boolean>;
}

export type VaultCommandOptions = VaultKeyOptions & {
  newVaultIdentity?: string;
  newVaultPasswordFile?: string;
  newRecipient?: string[];
  newRecipientsFile?: string;
};

const defaultIo = (): VaultIo => ({ stdout: process.stdout, stderr: process.stderr, env: process.env });

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--vault-identity` and `--vault-password-file`, for `cairn vault` and for every command that reads an inventory. */
export function addVaultOptions(cmd: Command): Command {
  return cmd
    .option(
      '--vault-identity <file>',
      'age identity file (AGE-SECRET-KEY-1...) that opens vault files (env CAIRN_VAULT_IDENTITY)',
    )
    .option(
      '--vault-password-file <file>',
      'file holding the vault passphrase on one line (env CAIRN_VAULT_PASSWORD_FILE; or the passphrase in CAIRN_VAULT_PASSWORD)',
    );
}

function addRecipientOptions(cmd: Command): Command {
  return cmd
    .option('--recipient <age1...>', 'encrypt to this age recipient (repeatable) instead of the vault key', collect)
    .option('--recipients-file <file>', 'encrypt to the age recipients in this file, one per line');
}

// ---------------------------------------------------------------------------------------------------------
// The private scratch file an editor works on.

/** Whether a folder is on a memory-backed filesystem (tmpfs/ramfs), by its mount in /proc/self/mounts. */
function isInMemory(dir: string): boolean {
  let mounts: string;
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return false;
  }
  let best = '';
  let bestType = '';
  for (const line of mounts.split('\n')) {
    const [, mountPoint, fsType] = line.split(' ');
    if (!mountPoint || !fsType) continue;
    const point = mountPoint.replace(/\\040/g, ' ');
    const inside = dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (inside && point.length >= best.length) {
      best = point;
      bestType = fsType;
    }
  }
  return bestType === 'tmpfs' || bestType === 'ramfs';
}

function writableDirectory(dir: string): boolean {
  try {
    if (!statSync(dir).isDirectory()) return false;
    const probe = mkdtempSync(join(dir, 'cairn-probe-'));
    rmSync(probe, { recursive: true, force: true });
    return true;
  } catch {
    return false;
  }
}

/** CAIRN_VAULT_TMPDIR, else /dev/shm, else the system temp folder. */
function scratchBase(env: NodeJS.ProcessEnv): string {
  if (env.CAIRN_VAULT_TMPDIR) return resolve(env.CAIRN_VAULT_TMPDIR);
  if (writableDirectory('/dev/shm')) return '/dev/shm';
  return tmpdir();
}

/** Overwrite a file with zeros before unlinking it (pointless on tmpfs, worth it on a disk). */
function shredFile(path: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NOFOLLOW);
    const size = statSync(path).size;
    const zeros = Buffer.alloc(Math.min(size, 1 << 20));
    for (let offset = 0; offset < size; offset += zeros.length)
      writeSync(fd, zeros, 0, Math.min(zeros.length, size - offset), offset);
    fsyncSync(fd);
  } catch {
    // a symlink or vanished file: removed below all the same
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  rmSync(path, { force: true });
}

function shredFolder(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const full = join(dir, name);
    try {
      if (statSync(full).isDirectory()) shredFolder(full);
      else shredFile(full);
    } catch {
      // gone already
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

/** A 0600 file in a fresh 0700 folder; `destroy()` shreds the folder, and so does process exit. */
class Scratch {
  readonly dir: string;
  readonly path: string;
  private readonly onExit = () => this.destroy();

  constructor(base: string, name: string, text: string) {
    this.dir = mkdtempSync(join(base, 'cairn-vault-'));
    chmodSync(this.dir, 0o700);
    process.on('exit', this.onExit);
    this.path = join(this.dir, name);
    const fd = openSync(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
  }

  read(): string {
    return readFileSync(this.path, 'utf8');
  }

  destroy(): void {
    process.off('exit', this.onExit);
    shredFolder(this.dir);
  }
}

/**
 * Run the editor on a file and wait for it. EDITOR is a shell command line (as git and ansible-vault use
 * it, so `code --wait` works); the file name is quoted. Ctrl-C goes to the editor from the terminal, so
 * cairn ignores SIGINT meanwhile; SIGTERM/SIGHUP are passed on and end the edit.
 */
async function runEditor(editor: string, path: string, file: string, env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn('/bin/sh', ['-c', `${editor} ${quote(path)}`], { stdio: 'inherit', env });
  let stoppedBy: NodeJS.Signals | undefined;
  const onInterrupt = () => {};
  const onStop = (signal: NodeJS.Signals) => {
    stoppedBy = signal;
    if (child.pid !== undefined) child.kill(signal);
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onStop);
  try {
    const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolveExit({ code, signal }));
    });
    if (stoppedBy) throw inputError(`interrupted by ${stoppedBy} while editing; the vault file is unchanged`, { file });
    if (outcome.code !== 0) {
      const how = outcome.signal ? `was killed by ${outcome.signal}` : `exited with status ${outcome.code}`;
      throw inputError(`the editor (${editor}) ${how}; the vault file is unchanged`, { file });
    }
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw inputError(`cannot run the editor (${editor}): ${err instanceof Error ? err.message : String(err)}`, {
      file,
    });
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onStop);
  }
}

/**
 * Why this text cannot be a vault file, or undefined. The message names line and column but never quotes
 * the text: it is secret.
 */
export function vaultTextProblem(text: string, label: string): string | undefined {
  try {
    const loaded = parseYaml(text, label);
    if (loaded.value !== null && !isPlainObject(loaded.value))
      return `${label}: expected a mapping of variable names to values at the top level`;
    return undefined;
  } catch (err) {
    if (err instanceof CairnError)
      return err.location ? `${formatLocation(err.location)}: ${err.message}` : err.message;
    throw err;
  }
}

async function askOnTerminal(problem: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string>((resolveAnswer) =>
      rl.question(`${problem}\nreopen the editor to fix it? [Y/n] `, resolveAnswer),
    );
    return !/^\s*n/i.test(answer);
  } finally {
    rl.close();
  }
}

/** Let the user edit `initial` until it is valid vault YAML; the result, or a CairnError if they give up. */
async function editText(file: string, initial: string, io: VaultIo): Promise<string> {
  const base = scratchBase(io.env);
  if (!isInMemory(base)) {
    io.stderr.write(
      `WARNING: ${base} is not in memory (no /dev/shm here): the decrypted text is on disk, 0600 in a private folder, until the editor closes\n`,
    );
  }
  const editor = io.env.EDITOR?.trim() || 'vi';
  const confirmReopen = io.confirmReopen ?? askOnTerminal;
  const scratch = new Scratch(base, basename(file), initial);
  try {
    for (;;) {
      await runEditor(editor, scratch.path, file, io.env);
      const text = scratch.read();
      const problem = vaultTextProblem(text, `${file} (decrypted)`);
      if (problem === undefined) return text;
      if (await confirmReopen(`not valid YAML: ${problem}`)) continue;
      throw inputError(
        `not saved: the edited text is not valid vault YAML (${problem}); the vault file is unchanged and the edit was discarded`,
        { file },
      );
    }
  } finally {
    scratch.destroy();
  }
}

function describeTarget(target: EncryptionTarget): string {
  return target.kind === 'passphrase'
    ? 'a passphrase'
    : `${target.recipients.length} recipient${target.recipients.length === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------------------------------------
// The commands, callable without commander.

export async function createVaultFile(file: string, opts: VaultKeyOptions, io: VaultIo = defaultIo()): Promise<void> {
  if (existsSync(file)) throw inputError('the file exists already; `cairn vault edit` changes it', { file });
  if (!existsSync(dirname(resolve(file))))
    throw inputError('the folder for the new vault file does not exist', { file });
  const keys = await loadVaultKeys(opts, io.env);
  const target = encryptionTarget(opts, keys);
  const text = await editText(file, '', io);
  if (text.trim() === '') throw inputError('nothing written: the new vault is empty', { file });
  writeFileAtomic(file, await encryptText(text, target, io.env), { mode: 0o600, exclusive: true });
  io.stderr.write(`created ${file}, encrypted to ${describeTarget(target)}\n`);
}

export async function editVaultFile(
  file: string,
  opts: VaultKeyOptions,
  io: VaultIo = defaultIo(),
): Promise<'saved' | 'unchanged'> {
  const keys = await loadVaultKeys(opts, io.env);
  const vault = await openVaultFile(file, keys);
  const explicit = explicitRecipients(opts.recipient, opts.recipientsFile);
  const target: EncryptionTarget = explicit
    ? { kind: 'recipients', recipients: explicit }
    : targetOfKey(vault.openedBy);
  if (
    !explicit &&
    vault.openedBy.kind === 'identity' &&
    recipientCount(vault.stanzas) > vault.openedBy.recipients.length
  ) {
    throw inputError(
      `this file is encrypted to ${recipientCount(vault.stanzas)} recipients and cairn knows ${vault.openedBy.recipients.length} of them (from ${vault.openedBy.origin}); saving would lock the others out: list every recipient with --recipient or --recipients-file`,
      { file },
    );
  }
  const mode = fileMode(file, 0o600);
  const text = await editText(file, vault.text, io);
  if (text === vault.text) {
    io.stderr.write(`no changes; ${file} left as it was\n`);
    return 'unchanged';
  }
  writeFileAtomic(file, await encryptText(text, target, io.env), { mode });
  io.stderr.write(`saved ${file}, encrypted to ${describeTarget(target)}\n`);
  return 'saved';
}

export async function viewVaultFiles(
  files: readonly string[],
  opts: VaultKeyOptions,
  io: VaultIo = defaultIo(),
): Promise<void> {
  const keys = await loadVaultKeys(opts, io.env);
  // Every file is decrypted before anything is printed: a wrong key prints nothing at all.
  const texts: string[] = [];
  for (const file of files) texts.push((await openVaultFile(file, keys)).text);
  texts.forEach((text, i) => {
    if (files.length > 1) io.stdout.write(`${i > 0 ? '\n' : ''}==> ${files[i]} <==\n`);
    io.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`);
  });
}

function readPlainVaultText(file: string): string {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    throw inputError(
      `cannot read file: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      { file },
    );
  }
  if (isAgeEncrypted(data)) throw inputError('already encrypted (it starts with an age header)', { file });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    throw inputError('not UTF-8 text; a vault file holds YAML', { file });
  }
  const problem = vaultTextProblem(text, file);
  if (problem !== undefined)
    throw inputError(`refusing to encrypt a file the inventory could not read: ${problem}`, { file });
  return text;
}

export async function encryptVaultFiles(
  files: readonly string[],
  opts: VaultKeyOptions,
  io: VaultIo = defaultIo(),
): Promise<void> {
  const keys = await loadVaultKeys(opts, io.env);
  const target = encryptionTarget(opts, keys);
  for (const file of files) {
    const text = readPlainVaultText(file);
    writeFileAtomic(file, await encryptText(text, target, io.env), { mode: fileMode(file, 0o600) });
    io.stderr.write(`encrypted ${file} to ${describeTarget(target)}\n`);
  }
  io.stderr.write(
    'note: earlier plain-text copies (editor backups, git history, free disk blocks) are not touched by this\n',
  );
}

export async function decryptVaultFiles(
  files: readonly string[],
  opts: VaultKeyOptions,
  io: VaultIo = defaultIo(),
): Promise<void> {
  const keys = await loadVaultKeys(opts, io.env);
  for (const file of files) {
    const vault = await openVaultFile(file, keys);
    writeFileAtomic(file, vault.text, { mode: 0o600 });
    io.stderr.write(
      `WARNING: ${file} is now plain text on disk (mode 0600); encrypt it again with \`cairn vault encrypt ${quote(file)}\` before committing it\n`,
    );
  }
}

/** The new key of `rekey`: a passphrase, or recipients (from an identity file and/or named ones). */
export async function rekeyTarget(opts: VaultCommandOptions, env: NodeJS.ProcessEnv): Promise<EncryptionTarget> {
  const recipients: string[] = [];
  if (opts.newVaultIdentity !== undefined)
    recipients.push(...(await readIdentityFile(opts.newVaultIdentity)).recipients);
  recipients.push(...(explicitRecipients(opts.newRecipient, opts.newRecipientsFile) ?? []));
  let passphrase: string | undefined;
  if (opts.newVaultPasswordFile !== undefined) {
    passphrase = readPasswordFile(opts.newVaultPasswordFile).passphrase;
  } else if (env.CAIRN_VAULT_NEW_PASSWORD) {
    passphrase = env.CAIRN_VAULT_NEW_PASSWORD;
  }
  if (passphrase !== undefined && recipients.length > 0) {
    throw optionsError(
      'rekey: an age file is encrypted to a passphrase or to recipients, not both; give one kind of --new-... key',
    );
  }
  if (passphrase !== undefined) return { kind: 'passphrase', passphrase };
  if (recipients.length > 0) return { kind: 'recipients', recipients: [...new Set(recipients)] };
  throw optionsError(
    'rekey needs the new key: --new-vault-identity FILE, --new-recipient age1..., --new-recipients-file FILE, --new-vault-password-file FILE or CAIRN_VAULT_NEW_PASSWORD',
  );
}

export async function rekeyVaultFiles(
  files: readonly string[],
  opts: VaultCommandOptions,
  io: VaultIo = defaultIo(),
): Promise<void> {
  const keys = await loadVaultKeys(opts, io.env);
  const target = await rekeyTarget(opts, io.env);
  for (const file of files) {
    const vault = await openVaultFile(file, keys);
    writeFileAtomic(file, await encryptText(vault.text, target, io.env), { mode: fileMode(file, 0o600) });
    io.stderr.write(`rekeyed ${file}: now encrypted to ${describeTarget(target)}\n`);
  }
}

export async function keygen(file: string, io: VaultIo = defaultIo()): Promise<string> {
  if (!existsSync(dirname(resolve(file))))
    throw inputError('the folder for the identity file does not exist', { file });
  const recipient = await writeNewIdentityFile(file);
  io.stdout.write(`${recipient}\n`);
  io.stderr.write(
    `wrote a new age identity to ${file} (mode 0600); keep it out of version control. Its public key, printed above, is the recipient to encrypt to (--recipient)\n`,
  );
  return recipient;
}

export interface VaultImportOptions {
  vaultPasswordFile?: string[];
  vaultId?: string[];
  output?: string;
  newVaultIdentity?: string;
  newVaultPasswordFile?: string;
  newRecipient?: string[];
  newRecipientsFile?: string;
}

/** An Ansible vault password file, read as Ansible does (the text, whitespace stripped); never a script. */
function readAnsibleSecret(file: string, label: string | undefined, via: string): AnsibleVaultSecret {
  if (file === 'prompt' || file === '@prompt')
    throw optionsError(`${via} ${label ? `${label}@` : ''}prompt: cairn does not prompt here; give a password file`);
  let mode: number;
  let text: string;
  try {
    mode = statSync(file).mode;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw inputError(`cannot read the Ansible vault password file: ${(err as Error).message}`, { file });
  }
  if (mode & 0o111)
    throw inputError(
      'the vault password file is executable: Ansible would run it as a password script, which cairn does not; give a plain file',
      { file },
    );
  const password = text.trim();
  if (password === '') throw inputError('the Ansible vault password file is empty', { file });
  return { label: label ?? 'default', password };
}

/**
 * `cairn vault import FILE`: an Ansible Vault file (1.1 or 1.2) opened with its Ansible secrets and written
 * as a cairn (age) vault, in place or to --output, atomically. The plaintext stays in memory.
 */
export async function importAnsibleVault(
  file: string,
  opts: VaultImportOptions,
  io: VaultIo = defaultIo(),
): Promise<void> {
  const secrets: AnsibleVaultSecret[] = [];
  for (const path of opts.vaultPasswordFile ?? [])
    secrets.push(readAnsibleSecret(path, undefined, '--vault-password-file'));
  for (const id of opts.vaultId ?? []) {
    const at = id.indexOf('@');
    secrets.push(
      at === -1
        ? readAnsibleSecret(id, undefined, '--vault-id')
        : readAnsibleSecret(id.slice(at + 1), id.slice(0, at), '--vault-id'),
    );
  }
  if (secrets.length === 0)
    throw optionsError('vault import needs the Ansible secret: --vault-password-file FILE or --vault-id [LABEL@]FILE');
  const target = await rekeyTarget(
    {
      newVaultIdentity: opts.newVaultIdentity,
      newVaultPasswordFile: opts.newVaultPasswordFile,
      newRecipient: opts.newRecipient,
      newRecipientsFile: opts.newRecipientsFile,
    },
    io.env,
  );
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (err) {
    throw inputError(`cannot read the file: ${(err as Error).message}`, { file });
  }
  if (!isAnsibleVaultText(source))
    throw inputError('not an Ansible Vault file (it does not start with $ANSIBLE_VAULT;)', { file });
  let text: string;
  try {
    text = decryptAnsibleVault(source, secrets);
  } catch (err) {
    if (err instanceof AnsibleVaultError) throw inputError(err.message, { file });
    throw err;
  }
  const problem = vaultTextProblem(text, file);
  if (problem !== undefined)
    throw inputError(`the decrypted content is not a vault cairn can read: ${problem}`, { file });
  const out = opts.output ?? file;
  writeFileAtomic(out, await encryptText(text, target, io.env), {
    mode: existsSync(out) ? fileMode(out, 0o600) : 0o600,
  });
  io.stderr.write(`imported the Ansible vault ${file} into ${out}, encrypted to ${describeTarget(target)}\n`);
}

// ---------------------------------------------------------------------------------------------------------

/** `cairn vault ...`. */
export function registerVaultCommands(program: Command, io: VaultIo = defaultIo()): void {
  const vault = program
    .command('vault')
    .description(
      'encrypted variable files (age format, ASCII-armoured): create, edit, view, encrypt, decrypt, rekey, keygen',
    );

  addRecipientOptions(
    addVaultOptions(
      vault
        .command('create')
        .description('create an encrypted vault file in $EDITOR')
        .argument('<file>', 'the new vault file'),
    ),
  ).action(async (file: string, opts: VaultKeyOptions) => createVaultFile(file, opts, io));

  addRecipientOptions(
    addVaultOptions(
      vault
        .command('edit')
        .description('edit an encrypted vault file in $EDITOR (default vi)')
        .argument('<file>', 'vault file'),
    ),
  ).action(async (file: string, opts: VaultKeyOptions) => {
    await editVaultFile(file, opts, io);
  });

  addVaultOptions(
    vault
      .command('view')
      .description('print the decrypted content of vault files')
      .argument('<files...>', 'vault files'),
  ).action(async (files: string[], opts: VaultKeyOptions) => viewVaultFiles(files, opts, io));

  addRecipientOptions(
    addVaultOptions(
      vault.command('encrypt').description('encrypt plain YAML files in place').argument('<files...>', 'YAML files'),
    ),
  ).action(async (files: string[], opts: VaultKeyOptions) => encryptVaultFiles(files, opts, io));

  addVaultOptions(
    vault
      .command('decrypt')
      .description('decrypt vault files in place (leaves plain text on disk)')
      .argument('<files...>', 'vault files'),
  ).action(async (files: string[], opts: VaultKeyOptions) => decryptVaultFiles(files, opts, io));

  addVaultOptions(
    vault
      .command('rekey')
      .description('re-encrypt vault files to a new passphrase, identity or recipients')
      .argument('<files...>', 'vault files'),
  )
    .option('--new-vault-identity <file>', 'encrypt to the recipients of this age identity file')
    .option('--new-recipient <age1...>', 'encrypt to this age recipient (repeatable)', collect)
    .option('--new-recipients-file <file>', 'encrypt to the age recipients in this file')
    .option('--new-vault-password-file <file>', 'encrypt to the passphrase in this file (or CAIRN_VAULT_NEW_PASSWORD)')
    .action(async (files: string[], opts: VaultCommandOptions) => rekeyVaultFiles(files, opts, io));

  vault
    .command('import')
    .description('convert an Ansible Vault file (1.1/1.2, AES256) into a cairn vault (in place, or --output)')
    .argument('<file>', 'Ansible Vault file')
    .option('--vault-password-file <file>', 'the Ansible vault password file (repeatable)', collect)
    .option('--vault-id <[label@]file>', 'an Ansible vault id and its password file (repeatable)', collect)
    .option('--output <file>', 'write the cairn vault here instead of replacing FILE')
    .option('--new-vault-identity <file>', 'encrypt to the recipients of this age identity file')
    .option('--new-recipient <age1...>', 'encrypt to this age recipient (repeatable)', collect)
    .option('--new-recipients-file <file>', 'encrypt to the age recipients in this file')
    .option('--new-vault-password-file <file>', 'encrypt to the passphrase in this file (or CAIRN_VAULT_NEW_PASSWORD)')
    .action(async (file: string, opts: VaultImportOptions) => importAnsibleVault(file, opts, io));

  vault
    .command('keygen')
    .description('generate an age identity into a new file (0600) and print its public recipient')
    .argument('<file>', 'identity file to create')
    .action(async (file: string) => {
      await keygen(file, io);
    });
}
