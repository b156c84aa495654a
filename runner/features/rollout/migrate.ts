/**
 * Data migration between two hosts with rsync, run ON the hosts over cairn's SSH connections (the data
 * never passes through the controller):
 *
 * 1. Both hosts must have rsync, the source ssh and the source folder.
 * 2. A one-off SSH key is made on the source (a private temp folder) and authorised on the target with
 *    `restrict` and a `cairn-migrate-<token>` comment; the source trusts exactly the target host key that
 *    cairn itself verified (from cairn's known_hosts for that host), with StrictHostKeyChecking=yes. Both are
 *    removed at the end, also on failure and Ctrl-C; a key left by a killed run is removed by the next one.
 * 3. The folder goes over in batches (explicit sub-paths, or the top-level entries split into N groups),
 *    each with `rsync -aH --partial`: an interrupted batch resumes from its partial files, and finished
 *    batches are recorded (by the caller, in the rollout state) so the next run skips them.
 * 4. After each batch, a checksum comparison: `rsync --dry-run --checksum --itemize-changes` over the same
 *    paths lists every regular file whose content differs or that the target lacks. Files the copy's quick
 *    check (size + mtime) missed are copied again with --checksum and compared once more (and recorded as
 *    repaired); anything still different is a failure.
 * A dry run (rehearsal) runs rsync with --dry-run and writes nothing on the target.
 *
 * Every value in a remote command goes through quote()/argv().
 */
import { randomBytes } from 'node:crypto';
import type { KnownHostEntry } from '../../core/transport/known-hosts.js';
import { knownHostsName } from '../../core/transport/known-hosts.js';
import { argv, quote } from '../../core/transport/quote.js';
import type { ExecOptions, ExecResult } from '../../core/transport/types.js';
import { parseItemizedDifferences, parseRsyncStats } from './rsync-output.js';
import type { MigrateBatchEvidence, MigrateEvidence, MigrateStepSpec } from './types.js';

export interface MigrateHost {
  name: string;
  exec(script: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Run commands through sudo (the host's ansible_become). */
  become: boolean;
  /** The login user (rsync logs in as this user on the target). */
  user: string;
  /** How the source reaches the target: address and port of its sshd. */
  address: string;
  port: number;
}

export interface MigrateIO {
  source: MigrateHost;
  target: MigrateHost;
  /** The target's host keys as cairn has them on record (its known_hosts lines for that host). */
  targetHostKeys: KnownHostEntry[];
  /** The target's authorized_keys file (default ~/.ssh/authorized_keys of the login user). */
  authorizedKeysFile?: string;
  /** Entries (paths relative to the source folder) finished by an earlier run. */
  alreadyDone: string[];
  /** Called after each finished batch (not in a dry run), with its entries, before the next starts. */
  onBatchDone(entries: string[]): Promise<void>;
  /** A one-off key folder left on the source by a run that was killed (recorded through onKeyDir). */
  staleKeyDir?: string;
  /** Called with the one-off key folder once made (to record it), and with undefined once removed. */
  onKeyDir(path: string | undefined): Promise<void>;
  log(line: string): void;
  signal: AbortSignal;
}

export interface MigrateResult {
  evidence: MigrateEvidence;
  /** Set when the migration failed; the evidence holds the batches done before. */
  error?: string;
  interrupted?: boolean;
}

export class MigrateError extends Error {}

const WHOLE = '.';
const MARKER = 'cairn-migrate-';

async function run(host: MigrateHost, script: string, what: string, opts: ExecOptions = {}): Promise<ExecResult> {
  const result = await host.exec(script, { become: host.become, ...opts });
  if (result.code !== 0) {
    const detail = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n');
    throw new MigrateError(`${host.name}: ${what} failed (exit ${result.code})${detail ? `: ${detail}` : ''}`);
  }
  return result;
}

/** Split `entries` into `count` contiguous groups of near-equal size (none empty). */
export function splitIntoBatches(entries: string[], count: number): string[][] {
  const n = Math.max(1, Math.min(count, entries.length));
  const out: string[][] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const size = Math.ceil((entries.length - at) / (n - i));
    out.push(entries.slice(at, at + size));
    at += size;
  }
  return out.filter((b) => b.length > 0);
}

export function batchName(entries: string[]): string {
  if (entries.length === 1) return entries[0] === WHOLE ? '(whole folder)' : entries[0]!;
  return `${entries[0]} … ${entries[entries.length - 1]} (${entries.length} entries)`;
}

/** The batches of a migration: each a list of paths relative to the source folder. */
async function planBatches(spec: MigrateStepSpec, source: MigrateHost): Promise<string[][]> {
  if (Array.isArray(spec.batches)) return spec.batches.map((b) => [b.replace(/\/+$/, '')]);
  if (spec.batches === undefined) return [[WHOLE]];
  // Top-level entries, NUL-separated so any file name survives, sorted so the plan is the same every run.
  const listed = await run(
    source,
    `cd ${quote(spec.source.path)} && find . -mindepth 1 -maxdepth 1 -printf '%P\\0'`,
    `listing ${spec.source.path}`,
  );
  const entries = listed.stdout.split('\0').filter(Boolean).sort();
  return splitIntoBatches(entries, spec.batches);
}

function remoteTarget(io: MigrateIO, path: string): string {
  const address = io.target.address.includes(':') ? `[${io.target.address}]` : io.target.address;
  return `${io.target.user}@${address}:${path}`;
}

function rsyncArgs(
  spec: MigrateStepSpec,
  io: MigrateIO,
  keyDir: string,
  entries: string[],
  mode: 'copy' | 'copy-checksum' | 'dry-run' | 'compare',
): string {
  const ssh = [
    'ssh',
    '-i',
    `${keyDir}/key`,
    '-p',
    String(io.target.port),
    '-o',
    `UserKnownHostsFile=${keyDir}/known_hosts`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'ConnectTimeout=15',
  ].join(' ');
  const args = ['rsync', '-aH', '--partial', '--partial-dir=.rsync-partial', '--stats', '-e', ssh];
  if (mode === 'dry-run' || mode === 'compare') args.push('--dry-run', '--itemize-changes');
  if (mode === 'compare' || mode === 'copy-checksum') args.push('--checksum');
  if (spec.delete && mode !== 'compare') args.push('--delete');
  if (spec.bwlimitKiB) args.push(`--bwlimit=${spec.bwlimitKiB}`);
  for (const pattern of spec.exclude) args.push(`--exclude=${pattern}`);
  if (io.target.become) args.push('--rsync-path=sudo -n rsync');
  let sources: string[];
  if (entries.length === 1 && entries[0] === WHOLE) {
    sources = [spec.source.path];
  } else {
    // -R keeps each entry's path under the target folder: /src/./a/b -> /dst/a/b.
    args.push('--relative');
    sources = entries.map((e) => `${spec.source.path}./${e}`);
  }
  return `LC_ALL=C ${argv(...args, ...sources, remoteTarget(io, spec.target.path))}`;
}

async function prepareKey(io: MigrateIO, token: string): Promise<{ keyDir: string; publicKey: string }> {
  const { source } = io;
  const made = await run(
    source,
    'umask 077 && mktemp -d "${TMPDIR:-/tmp}/cairn-migrate.XXXXXXXX"',
    'making a private temp folder',
  );
  const keyDir = made.stdout.trim();
  if (!keyDir.startsWith('/')) throw new MigrateError(`${source.name}: mktemp gave ${JSON.stringify(keyDir)}`);
  const knownHosts =
    io.targetHostKeys
      .map((k) => `${knownHostsName(io.target.address, io.target.port)} ${k.keyType} ${k.keyBlob.toString('base64')}`)
      .join('\n') + '\n';
  await run(
    source,
    `${argv('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${MARKER}${token}`, '-f', `${keyDir}/key`)} && cat > ${quote(`${keyDir}/known_hosts`)}`,
    'making a one-off SSH key',
    { stdin: knownHosts },
  );
  const pub = await run(source, `cat ${quote(`${keyDir}/key.pub`)}`, 'reading the one-off key');
  return { keyDir, publicKey: pub.stdout.trim() };
}

/** A shell snippet that sets $f to the authorized_keys file (default ~/.ssh/authorized_keys). */
function authorizedKeysVar(io: MigrateIO): string {
  return io.authorizedKeysFile ? `f=${quote(io.authorizedKeysFile)}` : 'f="$HOME/.ssh/authorized_keys"';
}

/**
 * Rewrite authorized_keys without any cairn-migrate line (and with `add` appended), atomically: a temp file
 * in the same folder with the old file's mode, then rename.
 */
function rewriteAuthorizedKeys(io: MigrateIO, add?: string): string {
  const append = add ? `printf '%s\\n' ${quote(add)} >> "$t"; ` : '';
  return (
    `set -e; ${authorizedKeysVar(io)}; d=$(dirname "$f"); ` +
    `if [ ! -d "$d" ]; then mkdir -p "$d"; chmod 700 "$d"; fi; ` +
    `t=$(mktemp "$f.cairn.XXXXXX"); ` +
    // grep exits 1 when it keeps no line (fine) and 2 on an error: then stop, never install a file cut short.
    `if [ -f "$f" ]; then rc=0; grep -v ${quote(MARKER)} "$f" > "$t" || rc=$?; if [ "$rc" -gt 1 ]; then rm -f "$t"; exit 1; fi; chmod --reference="$f" "$t"; else chmod 600 "$t"; fi; ` +
    append +
    `mv -f "$t" "$f"`
  );
}

async function checkTools(io: MigrateIO, spec: MigrateStepSpec): Promise<void> {
  const missing = async (host: MigrateHost, tools: string[]) => {
    const r = await host.exec(tools.map((t) => `command -v ${quote(t)} >/dev/null || echo ${quote(t)}`).join('; '), {
      become: host.become,
    });
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  };
  const src = await missing(io.source, ['rsync', 'ssh', 'ssh-keygen']);
  if (src.length)
    throw new MigrateError(
      `${io.source.name}: ${src.join(', ')} not installed (the source runs rsync over ssh; install rsync and openssh-client)`,
    );
  const tgt = await missing(io.target, ['rsync']);
  if (tgt.length) throw new MigrateError(`${io.target.name}: rsync is not installed (install it, e.g. with apt)`);
  const dir = await io.source.exec(`test -d ${quote(spec.source.path)}`, { become: io.source.become });
  if (dir.code !== 0) throw new MigrateError(`${io.source.name}: the source folder ${spec.source.path} does not exist`);
  if (!io.targetHostKeys.length)
    throw new MigrateError(
      `${io.target.name}: cairn has no host key on record for ${knownHostsName(io.target.address, io.target.port)}, so the source could not check whom it sends the data to`,
    );
}

export async function runMigration(spec: MigrateStepSpec, io: MigrateIO): Promise<MigrateResult> {
  const evidence: MigrateEvidence = {
    kind: 'migrate',
    dryRun: spec.dryRun,
    source: `${spec.source.host}:${spec.source.path}`,
    target: `${spec.target.host}:${spec.target.path}`,
    batches: [],
    resumed: [],
  };
  const token = randomBytes(6).toString('hex');
  let keyDir: string | undefined;
  let authorised = false;
  try {
    await checkTools(io, spec);
    const batches = await planBatches(spec, io.source);
    const done = new Set(spec.dryRun ? [] : io.alreadyDone);
    const todo = batches.map((entries) => entries.filter((e) => !done.has(e))).filter((b) => b.length > 0);
    evidence.resumed = batches.flat().filter((e) => done.has(e));
    if (evidence.resumed.length)
      io.log(
        `resuming: ${evidence.resumed.length} entr${evidence.resumed.length === 1 ? 'y' : 'ies'} already migrated by an earlier run`,
      );
    io.log(
      `${spec.dryRun ? 'dry run (rehearsal)' : 'migration'} ${evidence.source} -> ${evidence.target}: ${todo.length} batch${todo.length === 1 ? '' : 'es'} to go`,
    );

    // A key left behind by a killed run goes; one migration runs at a time (the rollout runs one step).
    if (io.staleKeyDir && /\/cairn-migrate\.[A-Za-z0-9]+$/.test(io.staleKeyDir)) {
      await io.source.exec(`rm -rf ${quote(io.staleKeyDir)}`, { become: io.source.become });
      io.log(`removed the one-off key ${io.staleKeyDir} left on ${io.source.name} by a run that was cut short`);
    }
    // authorized_keys is the login user's own file: never through sudo.
    await run(io.target, rewriteAuthorizedKeys(io), 'cleaning old one-off keys from authorized_keys', {
      become: false,
    });
    const key = await prepareKey(io, token);
    keyDir = key.keyDir;
    await io.onKeyDir(keyDir);
    await run(io.target, rewriteAuthorizedKeys(io, `restrict ${key.publicKey}`), 'authorising the one-off key', {
      become: false,
    });
    authorised = true;
    if (!spec.dryRun) await run(io.target, `mkdir -p ${quote(spec.target.path)}`, `creating ${spec.target.path}`);

    for (let i = 0; i < todo.length; i++) {
      if (io.signal.aborted)
        return { evidence, interrupted: true, error: `interrupted after ${i} of ${todo.length} batches` };
      const entries = todo[i]!;
      const name = batchName(entries);
      const started = Date.now();
      io.log(`batch ${i + 1}/${todo.length}: ${name}`);
      const copy = await run(
        io.source,
        rsyncArgs(spec, io, keyDir, entries, spec.dryRun ? 'dry-run' : 'copy'),
        `rsync of ${name}`,
      );
      const stats = parseRsyncStats(copy.stdout);
      if (!stats)
        throw new MigrateError(`${io.source.name}: rsync of ${name} printed no statistics: ${copy.stdout.slice(-300)}`);
      const batch: MigrateBatchEvidence = {
        name,
        filesTransferred: stats.filesTransferred,
        bytesTransferred: stats.bytesTransferred,
        files: stats.regularFiles,
        durationMs: 0,
      };
      if (!spec.dryRun && spec.checksum) {
        const compareOnce = async () => {
          const compare = await run(
            io.source,
            rsyncArgs(spec, io, keyDir!, entries, 'compare'),
            `checksum comparison of ${name}`,
          );
          return {
            diff: parseItemizedDifferences(compare.stdout),
            compared: parseRsyncStats(compare.stdout)?.regularFiles ?? 0,
          };
        };
        let { diff, compared } = await compareOnce();
        let repaired: string[] | undefined;
        if (diff.differing.length || diff.missing.length) {
          // rsync's quick check (size and time) misses a file changed in place with the same size and time;
          // copy those again comparing checksums, then compare once more. What still differs is a failure.
          repaired = [...diff.differing, ...diff.missing];
          io.log(
            `batch ${i + 1}/${todo.length}: ${repaired.length} file(s) differ by checksum after the copy (${repaired.slice(0, 5).join(', ')}${repaired.length > 5 ? ', …' : ''}): copying them again with --checksum`,
          );
          await run(io.source, rsyncArgs(spec, io, keyDir, entries, 'copy-checksum'), `checksum copy of ${name}`);
          ({ diff, compared } = await compareOnce());
        }
        batch.checksums = {
          compared,
          mismatched: diff.differing,
          missing: diff.missing,
          ...(repaired ? { repaired } : {}),
        };
        if (diff.differing.length || diff.missing.length) {
          batch.durationMs = Date.now() - started;
          evidence.batches.push(batch);
          const list = [...diff.differing.map((f) => `${f} (differs)`), ...diff.missing.map((f) => `${f} (missing)`)];
          throw new MigrateError(
            `checksum comparison of ${name} failed: ${list.length} file${list.length === 1 ? '' : 's'} not identical on ${io.target.name}: ${list.slice(0, 10).join(', ')}${list.length > 10 ? ', …' : ''}`,
          );
        }
        io.log(
          `batch ${i + 1}/${todo.length}: ${stats.filesTransferred} files (${stats.bytesTransferred} bytes) sent; checksums of ${compared} files match${repaired ? ` (${repaired.length} copied again)` : ''}`,
        );
      } else {
        io.log(
          `batch ${i + 1}/${todo.length}: ${stats.filesTransferred} files (${stats.bytesTransferred} bytes) ${spec.dryRun ? 'would be sent' : 'sent'}`,
        );
      }
      batch.durationMs = Date.now() - started;
      evidence.batches.push(batch);
      if (!spec.dryRun) await io.onBatchDone(entries);
    }
    return { evidence };
  } catch (err) {
    if (err instanceof MigrateError) return { evidence, error: err.message };
    throw err;
  } finally {
    // Clean up whatever happened; a failure here is logged (the next run retries it) and does not hide the
    // migration's own result.
    if (authorised) {
      const cleaned = await io.target.exec(rewriteAuthorizedKeys(io), { become: false }).then(
        (r) => r.code === 0,
        () => false,
      );
      if (!cleaned)
        io.log(
          `could not remove the one-off key from ${io.target.name}'s authorized_keys (comment ${MARKER}${token}): the next migration removes it, or remove that line by hand`,
        );
    }
    if (keyDir) {
      const removed = await io.source.exec(`rm -rf ${quote(keyDir)}`, { become: io.source.become }).then(
        (r) => r.code === 0,
        () => false,
      );
      if (removed) await io.onKeyDir(undefined).catch(() => undefined);
    }
  }
}
