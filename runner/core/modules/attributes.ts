/**
 * File attributes as modules take them (owner, group, mode) and how they compare with a probed file. The
 * target mode is always computed here as four octal digits, so check's prediction and apply's chmod agree
 * even for symbolic modes ("u=rw,g=r,o=r", "a+X").
 */
import { CairnError, inputError } from '../util/errors.js';
import type { FileProbe } from './remote.js';
import type { ModuleContext } from './types.js';

/** A bad argument value for the current task: names the task's location and the host. */
export function argError(ctx: Pick<ModuleContext, 'host' | 'taskLocation'>, message: string): CairnError {
  return inputError(`${message} (host ${ctx.host})`, ctx.taskLocation);
}

/** JSON Schema fragments shared by the file-writing modules. */
export const attributeSchema = {
  owner: { type: 'string', minLength: 1 },
  group: { type: 'string', minLength: 1 },
  mode: { type: ['string', 'integer'] },
  // SELinux contexts. Ansible sets them only where SELinux is enabled, and Debian runs without it, so
  // there, as in cairn, they change nothing (docs/ansible-compat.md); roles give them on shared paths.
  seuser: { type: 'string' },
  serole: { type: 'string' },
  setype: { type: 'string' },
  selevel: { type: 'string' },
} as const;

export interface AttributeArgs {
  owner?: string;
  group?: string;
  mode?: string | number;
}

export type ModeSpec = { kind: 'octal'; bits: number } | { kind: 'symbolic'; text: string };

/**
 * Parse a mode argument. Strings: "0644", "644", "0o644", or symbolic. Numbers: YAML 1.2 reads `0644` as
 * the integer 644, so an integer whose digits are all octal is read as those octal digits, as the author
 * meant; anything else is refused rather than guessed.
 */
export function parseModeArg(value: string | number): ModeSpec {
  const text = typeof value === 'number' ? String(value) : value.trim();
  if (typeof value === 'number' && !/^[0-7]{1,4}$/.test(text)) {
    throw new Error(`mode ${value} is not an octal mode; write it as a quoted string such as '0644'`);
  }
  const octal = /^(?:0o|0)?([0-7]{1,4})$/.exec(text);
  if (octal) return { kind: 'octal', bits: parseInt(octal[1]!, 8) };
  if (
    /^[ugoa]*[-+=][rwxXstugo]*(?:[-+=][rwxXstugo]*)*(?:,[ugoa]*[-+=][rwxXstugo]*(?:[-+=][rwxXstugo]*)*)*$/.test(text)
  ) {
    return { kind: 'symbolic', text };
  }
  throw new Error(
    `mode ${JSON.stringify(value)} is neither an octal mode ('0644') nor a symbolic one ('u=rw,g=r,o=r')`,
  );
}

export function formatMode(bits: number): string {
  return (bits & 0o7777).toString(8).padStart(4, '0');
}

const WHO_BITS: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007 };

/**
 * Apply a symbolic mode to `current` as chmod(1) does. Without a `who` the umask's bits are left alone, as
 * chmod does; X adds execute only for directories or when some execute bit is already set.
 */
export function applySymbolicMode(current: number, text: string, isDir: boolean, umask: number): number {
  let mode = current & 0o7777;
  for (const clause of text.split(',')) {
    const m = /^([ugoa]*)(.*)$/.exec(clause)!;
    const whoText = m[1]!;
    const who = whoText === '' || whoText.includes('a') ? 'ugo' : whoText;
    const maskByUmask = whoText === '';
    for (const op of m[2]!.matchAll(/([-+=])([rwxXstugo]*)/g)) {
      const operator = op[1]!;
      const perms = op[2]!;
      let bits = 0;
      for (const w of who) {
        const shift = w === 'u' ? 6 : w === 'g' ? 3 : 0;
        for (const p of perms) {
          if (p === 'r') bits |= 4 << shift;
          else if (p === 'w') bits |= 2 << shift;
          else if (p === 'x') bits |= 1 << shift;
          else if (p === 'X') {
            if (isDir || (mode & 0o111) !== 0) bits |= 1 << shift;
          } else if (p === 's') {
            if (w === 'u') bits |= 0o4000;
            if (w === 'g') bits |= 0o2000;
          } else if (p === 't') {
            if (w === 'o') bits |= 0o1000;
          } else {
            // Copy another class's current permissions (chmod g=u).
            const srcShift = p === 'u' ? 6 : p === 'g' ? 3 : 0;
            bits |= ((mode >> srcShift) & 7) << shift;
          }
        }
      }
      if (maskByUmask) bits &= ~umask;
      let whoMask = 0;
      for (const w of who) whoMask |= WHO_BITS[w]!;
      if (operator === '+') mode |= bits;
      else if (operator === '-') mode &= ~bits;
      else {
        // '=' clears every bit of the class, umask or not (only the bits set are masked); a directory keeps
        // its set-id bits unless the clause names them, as GNU chmod does.
        let clear = whoMask;
        if (isDir && !perms.includes('s')) clear &= ~0o6000;
        mode = (mode & ~clear) | bits;
      }
    }
  }
  return mode & 0o7777;
}

/** The mode a file should end up with, as four octal digits. `current` is undefined for files not there yet. */
export function targetMode(spec: ModeSpec, current: string | undefined, isDir: boolean, umask: number): string {
  if (spec.kind === 'octal') return formatMode(spec.bits);
  const base = current !== undefined ? parseInt(current, 8) : (isDir ? 0o777 : 0o666) & ~umask;
  return formatMode(applySymbolicMode(base, spec.text, isDir, umask));
}

export interface AttributePlan {
  /** Set only where the file differs (or will be created): what to chown/chgrp/chmod. */
  owner?: string;
  group?: string;
  mode?: string;
  /** "mode 0644 -> 0600" lines for the diff and the actions. */
  words: string[];
}

/** Whether the probed owner matches `wanted` (a name or a numeric id). */
function sameOwner(wanted: string, name: string | undefined, id: number | undefined): boolean {
  return wanted === name || (/^\d+$/.test(wanted) && Number(wanted) === id);
}

/**
 * Which attributes differ between the probed file and the wanted ones. For a file that does not exist yet
 * every given attribute is planned (the words then say "owner www-data" without an arrow).
 */
export function planAttributes(
  probe: FileProbe | undefined,
  wanted: AttributeArgs,
  isDir: boolean,
  umask: number,
): AttributePlan {
  const plan: AttributePlan = { words: [] };
  const exists = probe !== undefined && probe.type !== 'absent';
  if (wanted.owner !== undefined && !(exists && sameOwner(wanted.owner, probe.owner, probe.uid))) {
    plan.owner = wanted.owner;
    plan.words.push(exists ? `owner ${probe.owner} -> ${wanted.owner}` : `owner ${wanted.owner}`);
  }
  if (wanted.group !== undefined && !(exists && sameOwner(wanted.group, probe.group, probe.gid))) {
    plan.group = wanted.group;
    plan.words.push(exists ? `group ${probe.group} -> ${wanted.group}` : `group ${wanted.group}`);
  }
  if (wanted.mode !== undefined) {
    const mode = targetMode(parseModeArg(wanted.mode), exists ? probe.mode : undefined, isDir, umask);
    if (!(exists && probe.mode === mode)) {
      plan.mode = mode;
      plan.words.push(exists ? `mode ${probe.mode} -> ${mode}` : `mode ${mode}`);
    }
  }
  return plan;
}

/**
 * Refuse a user or group name that a command would read as an option (`--reference=/etc/shadow`) or that
 * holds a control character: scripts also end options with `--`, this says clearly what was wrong.
 */
export function checkAccountName(
  ctx: Pick<ModuleContext, 'host' | 'taskLocation'>,
  what: string,
  value: string | undefined,
): void {
  if (value === undefined) return;
  if (value.startsWith('-'))
    throw argError(ctx, `${what} ${JSON.stringify(value)} starts with '-'; user and group names cannot`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f:]/.test(value))
    throw argError(ctx, `${what} ${JSON.stringify(value)} holds a control character or ':'`);
}

/** Check a task's attribute arguments up front so a bad mode or owner fails in check mode with the task's location. */
export function validateAttributeArgs(ctx: Pick<ModuleContext, 'host' | 'taskLocation'>, args: AttributeArgs): void {
  checkAccountName(ctx, 'owner', args.owner);
  checkAccountName(ctx, 'group', args.group);
  if (args.mode === undefined) return;
  try {
    parseModeArg(args.mode);
  } catch (err) {
    throw argError(ctx, err instanceof Error ? err.message : String(err));
  }
}

/** Whether a probe must report owner and group names: only to compare them with an owner or group asked. */
export function namesWanted(args: { owner?: string; group?: string }): boolean {
  return args.owner !== undefined || args.group !== undefined;
}
