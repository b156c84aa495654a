/**
 * mount (ansible.posix.mount): an fstab entry and the mount itself. States as Ansible's module
 * (plugins/modules/mount.py in ansible-collections/ansible.posix):
 * - present / absent_from_fstab: the fstab entry only;
 * - mounted: the entry, the mount point (created when missing), and the mount; a changed entry on a mounted
 *   path is remounted (`mount -o remount`, falling back to umount + mount);
 * - unmounted: unmount, fstab untouched;
 * - absent: remove the entry; when one was removed, unmount and remove the mount point directory;
 * - remounted: always a change (as Ansible).
 * fstab is written through the house's atomic write (temp file, rename, optional backup). The mount reads its
 * source, type and options from that fstab (`mount -T FSTAB PATH`), as Ansible's does, so the entry and the
 * live mount never disagree. A mount that fails after the entry was written puts the old fstab back
 * (ansible/ansible#59183: a broken entry can stop the next boot).
 */
import { posix } from 'node:path';
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { planFileWrite, probedText } from './file-write.js';
import {
  atomicWriteScript,
  failureText,
  fileProbeScript,
  parseFileProbe,
  parseKeyValues,
  parseSections,
  parseWriteResult,
  ProbeError,
  runScript,
  section,
} from './remote.js';
import type { FileDiff, Module, ModuleResult, Planned } from './types.js';

export type MountState = 'mounted' | 'unmounted' | 'present' | 'absent' | 'absent_from_fstab' | 'remounted';

export interface MountArgs {
  path: string;
  src?: string;
  fstype?: string;
  opts?: string;
  dump?: string | number;
  passno?: string | number;
  state: MountState;
  fstab?: string;
  boot?: boolean;
  backup?: boolean;
}

/** The six fields of an fstab line, escaped as fstab wants them. */
export interface FstabEntry {
  src: string;
  name: string;
  fstype: string;
  opts: string;
  dump: string;
  passno: string;
}

/** fstab's escapes for space, ampersand and backslash (Ansible's _escape_fstab). */
export function escapeFstab(value: string): string {
  return value.replace(/\\/g, '\\134').replace(/ /g, '\\040').replace(/&/g, '\\046');
}

/** How /proc/self/mountinfo writes a path: space, tab, newline and backslash as octal escapes. */
export function escapeMountinfo(path: string): string {
  return path.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/** The wanted entry from the arguments, with Ansible's defaults (opts `defaults`, dump and passno 0). */
export function wantedEntry(args: MountArgs): FstabEntry {
  let opts = args.opts ?? 'defaults';
  // boot: false is the noauto option (Ansible ignores boot when opts already holds noauto).
  if (args.boot === false && !opts.split(',').includes('noauto')) opts = `${opts},noauto`;
  return {
    src: escapeFstab(args.src ?? ''),
    name: escapeFstab(args.path),
    fstype: escapeFstab(args.fstype ?? ''),
    opts: escapeFstab(opts),
    dump: escapeFstab(String(args.dump ?? '0')),
    passno: escapeFstab(String(args.passno ?? '0')),
  };
}

function entryLine(e: FstabEntry): string {
  return `${e.src} ${e.name} ${e.fstype} ${e.opts} ${e.dump} ${e.passno}\n`;
}

/** The fields of a line that is an entry (4 to 6 fields, a `#` comment cut off), or undefined. */
function parseEntry(line: string): FstabEntry | undefined {
  if (line.trim() === '' || line.trim().startsWith('#')) return undefined;
  const fields = line
    .split('#')[0]!
    .split(/\s+/)
    .filter((f) => f !== '');
  if (fields.length < 4 || fields.length > 6) return undefined;
  const [src, name, fstype, opts, dump = '0', passno = '0'] = fields as [string, string, string, string];
  return { src, name, fstype, opts, dump, passno };
}

/** Ansible's match: the same mount point; for swap (`none`), the same source too. */
function sameEntry(found: FstabEntry, wanted: { name: string; src?: string }): boolean {
  if (found.name !== wanted.name) return false;
  if (wanted.src !== undefined && found.name === 'none' && found.fstype === 'swap' && found.src !== wanted.src)
    return false;
  return true;
}

/**
 * Set (`entry` given) or remove (`remove`) a mount point's entry in fstab's text (pure; table-tested). Every
 * matching line is brought to the wanted fields; other lines, comments and blank lines stay byte for byte.
 */
export function editFstab(
  original: string,
  change: { set: FstabEntry } | { remove: { name: string; src?: string } },
): { text: string; changed: boolean } {
  const lines = original.split(/(?<=\n)/).filter((l) => l !== '');
  const out: string[] = [];
  let changed = false;
  let found = false;
  for (const raw of lines) {
    const line = raw.endsWith('\n') ? raw : `${raw}\n`;
    const entry = parseEntry(line);
    const target = 'set' in change ? change.set : change.remove;
    if (!entry || !sameEntry(entry, target)) {
      out.push(line);
      continue;
    }
    found = true;
    if ('remove' in change) {
      changed = true;
      continue;
    }
    const want = change.set;
    const differs = (['src', 'fstype', 'opts', 'dump', 'passno'] as const).some((k) => entry[k] !== want[k]);
    if (differs) changed = true;
    out.push(differs ? entryLine({ ...want }) : line);
  }
  if ('set' in change && !found) {
    out.push(entryLine(change.set));
    changed = true;
  }
  // A last line without its newline is given one only when the file is rewritten anyway.
  return { text: changed ? out.join('') : original, changed };
}

export interface MountProbe {
  mounted: boolean;
  /** What is mounted there now (from /proc/self/mountinfo). */
  source?: string;
  fstype?: string;
  options?: string;
  pointExists: boolean;
  pointIsDir: boolean;
}

export function parseMountProbe(text: string | undefined): MountProbe {
  const kv = parseKeyValues(text ?? '');
  const probe: MountProbe = {
    mounted: kv.get('mounted') === '1',
    pointExists: kv.get('exists') === '1',
    pointIsDir: kv.get('dir') === '1',
  };
  if (probe.mounted) {
    probe.source = kv.get('source') ?? '';
    probe.fstype = kv.get('fstype') ?? '';
    probe.options = kv.get('options') ?? '';
  }
  return probe;
}

/** One round trip: fstab's content and the mount point (exists, mounted, with what). */
export function mountProbeScript(fstab: string, path: string): string {
  return [
    fileProbeScript('fstab', fstab, { content: true, follow: true }),
    section(
      'point',
      `p=${quote(path)}`,
      'if [ -d "$p" ]; then echo exists=1; echo dir=1; elif [ -e "$p" ] || [ -L "$p" ]; then echo exists=1; echo dir=0;',
      'else echo exists=0; echo dir=0; fi',
      // The topmost mount on the path (mountinfo lists stacked mounts in order); bind mounts count too, as
      // Ansible's is_bind_mounted. The path is compared in mountinfo's own escaped form, passed through the
      // environment so awk reads no escapes in it.
      `P=${quote(escapeMountinfo(path))} awk 'BEGIN { p = ENVIRON["P"] }`,
      '  $5 == p { for (i = 7; i <= NF; i++) if ($i == "-") break; t = $(i + 1); s = $(i + 2); o = $6; m = 1 }',
      `  END { if (m) { print "mounted=1"; print "fstype=" t; print "source=" s; print "options=" o } }' /proc/self/mountinfo`,
    ),
  ].join('\n');
}

export interface MountPlan {
  path: string;
  fstab: string;
  /** New fstab content, when the entry changes. */
  fstabContent?: string;
  /** fstab's content before, put back when the mount fails after the write. */
  fstabBefore?: string;
  backup: boolean;
  mkdir: boolean;
  mount: boolean;
  remount: boolean;
  /** remounted with opts: `-o remount,OPTS`, and no fallback (as Ansible). */
  remountOpts?: string;
  umount: boolean;
  rmdir: boolean;
}

/** Exit codes of the apply script's steps after the write. */
const STEP_EXIT = { mkdir: 81, umount: 82, mount: 83, remount: 84, rmdir: 85 } as const;

/** `mount`'s fstab argument: -T only for another fstab than /etc/fstab (Ansible's _set_fstab_args). */
function fstabOption(fstab: string): string {
  return fstab === '/etc/fstab' ? '' : ` -T ${quote(fstab)}`;
}

/** The apply script: mount point, fstab write (content on stdin), then (u)mount steps (pure; table-tested). */
export function mountApplyScript(plan: MountPlan): string {
  const path = quote(plan.path);
  const lines: string[] = [];
  if (plan.mkdir) lines.push(`mkdir -p -- ${path} || exit ${STEP_EXIT.mkdir}`);
  if (plan.fstabContent !== undefined)
    lines.push(
      atomicWriteScript({
        dest: plan.fstab,
        backup: plan.backup,
        expectedBytes: Buffer.byteLength(plan.fstabContent),
      }),
    );
  const mountCmd = `mount${fstabOption(plan.fstab)} -- ${path}`;
  if (plan.umount) lines.push(`umount -- ${path} 2>&1 || exit ${STEP_EXIT.umount}`);
  if (plan.mount) lines.push(`${mountCmd} 2>&1 || exit ${STEP_EXIT.mount}`);
  if (plan.remount) {
    if (plan.remountOpts !== undefined)
      lines.push(
        `mount -o ${quote(`remount,${plan.remountOpts}`)}${fstabOption(plan.fstab)} -- ${path} 2>&1 || exit ${STEP_EXIT.remount}`,
      );
    else
      lines.push(
        `if ! mount -o remount${fstabOption(plan.fstab)} -- ${path} 2>/dev/null; then`,
        `  { umount -- ${path} && ${mountCmd}; } 2>&1 || exit ${STEP_EXIT.remount}`,
        'fi',
      );
  }
  if (plan.rmdir) lines.push(`if [ -d ${path} ]; then rmdir -- ${path} 2>&1 || exit ${STEP_EXIT.rmdir}; fi`);
  return lines.join('\n');
}

interface FstabState {
  path: string;
  exists: boolean;
  text: string;
  probe: ReturnType<typeof parseFileProbe>;
}

/** The plan from the probe (pure but for the fstab probe object; table-tested through check). */
export function planMount(args: MountArgs, fstab: FstabState, point: MountProbe): Planned<MountPlan> {
  const state = args.state;
  const fstabPath = args.fstab ?? '/etc/fstab';
  const entry = wantedEntry(args);
  const plan: MountPlan = {
    path: args.path,
    fstab: fstab.path,
    backup: Boolean(args.backup),
    mkdir: false,
    mount: false,
    remount: false,
    umount: false,
    rmdir: false,
  };
  const actions: string[] = [];
  const diffs: FileDiff[] = [];
  const data: Record<string, unknown> = {
    name: args.path,
    src: args.src ?? null,
    fstype: args.fstype ?? null,
    opts: entry.opts.replace(/\\040/g, ' '),
    dump: entry.dump,
    passno: entry.passno,
    fstab: fstabPath,
    boot: args.boot === false ? 'no' : 'yes',
  };

  const writeFstab = (edit: { text: string; changed: boolean }, words: string): void => {
    if (!edit.changed) return;
    const write = planFileWrite(fstab.probe, {
      path: fstab.path,
      content: Buffer.from(edit.text),
      backup: args.backup,
    });
    plan.fstabContent = edit.text;
    plan.fstabBefore = fstab.text;
    actions.push(words);
    diffs.push(...(write.diffs ?? []));
  };

  const hasEntry = fstab.text.split(/(?<=\n)/).some((l) => {
    const e = parseEntry(l);
    return e !== undefined && sameEntry(e, { name: entry.name, src: entry.src });
  });
  switch (state) {
    case 'present':
    case 'mounted': {
      const edit = editFstab(fstab.text, { set: entry });
      writeFstab(edit, `${hasEntry ? 'update' : 'add'} the entry for ${args.path} in ${fstabPath}`);
      if (state === 'mounted') {
        if (!point.pointExists) {
          plan.mkdir = true;
          actions.unshift(`create mount point ${args.path}`);
        } else if (!point.pointIsDir && !point.mounted && args.fstype !== 'swap') {
          // A bind mount of a file has a file as its mount point; anything else would fail in mount(8).
          if (!(args.opts ?? '').split(',').includes('bind'))
            return { changed: false, actions: [], failed: `mount point ${args.path} exists and is not a directory` };
        }
        if (point.mounted && edit.changed) {
          plan.remount = true;
          actions.push(`remount ${args.path} (its entry changed)`);
        } else if (!point.mounted) {
          plan.mount = true;
          actions.push(`mount ${args.src} on ${args.path} (${args.fstype})`);
        }
      }
      break;
    }
    case 'absent_from_fstab':
    case 'absent': {
      const edit = editFstab(fstab.text, { remove: { name: entry.name, src: entry.src } });
      writeFstab(edit, `remove the entry for ${args.path} from ${fstabPath}`);
      // As Ansible: unmount and remove the mount point only when an entry was removed.
      if (state === 'absent' && edit.changed) {
        if (point.mounted) {
          plan.umount = true;
          actions.push(`unmount ${args.path}`);
        }
        if (point.pointExists) {
          plan.rmdir = true;
          actions.push(`remove mount point ${args.path}`);
        }
      }
      break;
    }
    case 'unmounted':
      if (point.mounted) {
        plan.umount = true;
        actions.push(`unmount ${args.path}`);
      }
      break;
    case 'remounted':
      if (!point.mounted) return { changed: false, actions: [], failed: `Error remounting ${args.path}: not mounted` };
      plan.remount = true;
      if (args.opts !== undefined && args.opts !== 'defaults') plan.remountOpts = args.opts;
      actions.push(`remount ${args.path}${plan.remountOpts ? ` with ${plan.remountOpts}` : ''}`);
      break;
  }
  if (point.mounted) data.mounted = { source: point.source, fstype: point.fstype, options: point.options };
  return { changed: actions.length > 0, actions, ...(diffs.length > 0 ? { diffs } : {}), state: plan, data };
}

const STATES: MountState[] = ['mounted', 'unmounted', 'present', 'absent', 'absent_from_fstab', 'remounted'];

export const mountModule: Module<MountArgs, MountPlan> = {
  name: 'mount',
  argAliases: { name: 'path' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['path', 'state'],
    properties: {
      // `none`: a swap entry's mount point field (fstab has no path for swap), as Ansible's documentation shows.
      path: { type: 'string', pattern: '^(/|none$)' },
      src: { type: 'string', minLength: 1 },
      fstype: { type: 'string', minLength: 1 },
      opts: { type: 'string', minLength: 1 },
      dump: { type: ['string', 'integer'] },
      passno: { type: ['string', 'integer'] },
      state: { enum: STATES },
      fstab: { type: 'string', pattern: '^/' },
      boot: { type: 'boolean' },
      backup: { type: 'boolean' },
    },
  },

  async check(ctx, args): Promise<Planned<MountPlan>> {
    if ((args.state === 'mounted' || args.state === 'present') && (args.src === undefined || args.fstype === undefined))
      throw argError(ctx, `mount with state=${args.state} needs src and fstype`);
    for (const [key, value] of Object.entries(args))
      if (typeof value === 'string' && /[\n\t#]/.test(value) && key !== 'fstab')
        throw argError(ctx, `mount ${key} cannot contain a line break, a tab or '#' (it is an fstab field)`);
    if (args.path === 'none' && !['present', 'absent', 'absent_from_fstab'].includes(args.state))
      throw argError(
        ctx,
        `mount path none (a swap entry) edits fstab only: use state present, absent or absent_from_fstab ` +
          `(swapon/swapoff with command for the swap itself), not ${args.state}`,
      );
    // Ansible's type 'path': a trailing slash is the same mount point.
    const path = args.path.length > 1 ? posix.normalize(args.path).replace(/\/$/, '') : args.path;
    const normalised: MountArgs = { ...args, path };
    const fstabPath = args.fstab ?? '/etc/fstab';
    const res = await runScript(ctx, mountProbeScript(fstabPath, path));
    const sections = parseSections(res.stdout);
    if (res.code !== 0 || !sections.has('point'))
      return { changed: false, actions: [], failed: `cannot inspect ${path}: ${failureText(res)}` };
    let probe;
    try {
      probe = parseFileProbe(fstabPath, sections.get('fstab'));
    } catch (err) {
      if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
      throw err;
    }
    const probed = probedText(probe);
    if (probed.failed) return { changed: false, actions: [], failed: probed.failed };
    if (probe.type === 'absent' && !(probe.parentExists ?? true))
      return { changed: false, actions: [], failed: `the directory of ${fstabPath} does not exist` };
    // A swap entry has no mount point: whatever `none` names on the host is not looked at, made or removed.
    const point: MountProbe =
      path === 'none'
        ? { mounted: false, pointExists: false, pointIsDir: false }
        : parseMountProbe(sections.get('point'));
    return planMount(
      normalised,
      { path: probe.linkResolved ?? fstabPath, exists: probe.type !== 'absent', text: probed.text ?? '', probe },
      point,
    );
  },

  async apply(ctx, args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
    const res = await runScript(
      ctx,
      mountApplyScript(state),
      state.fstabContent !== undefined ? { stdin: state.fstabContent } : {},
    );
    if (res.code === 0) {
      const written = parseSections(res.stdout).get('backup');
      if (written) data.backup_file = written;
      return { changed: true, diffs: plan.diffs, data };
    }
    const step = Object.entries(STEP_EXIT).find(([, code]) => code === res.code)?.[0];
    if (step === undefined) {
      const outcome = parseWriteResult(res, state.fstab, state.fstabContent ?? '');
      return { changed: false, failed: true, msg: outcome.error ?? `writing ${state.fstab} failed`, data };
    }
    let msg = `Error ${step === 'umount' ? 'unmounting' : step === 'rmdir' ? 'removing' : `${step}ing`} ${args.path}: ${failureText(res)}`;
    // A mount that failed after the entry was written: the old fstab goes back (as Ansible does).
    if (
      (step === 'mount' || step === 'remount') &&
      state.fstabContent !== undefined &&
      state.fstabBefore !== undefined
    ) {
      const restore = await runScript(
        ctx,
        atomicWriteScript({ dest: state.fstab, expectedBytes: Buffer.byteLength(state.fstabBefore) }),
        { stdin: state.fstabBefore },
      );
      msg +=
        restore.code === 0 ? ` (${state.fstab} was put back as it was)` : ` (and putting ${state.fstab} back failed)`;
    }
    return { changed: step !== 'mkdir', failed: true, msg, data };
  },
};
