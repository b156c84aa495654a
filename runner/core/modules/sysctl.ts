/**
 * sysctl: a kernel parameter in a sysctl.d file (the line `name = value`, managed like lineinfile) and,
 * live, in /proc/sys. Values compare with whitespace normalised ("1024 65535" == "1024\t65535"). With
 * apply_live 'auto' a read-only /proc/sys (a container) skips the live part and says so; the file part
 * still applies.
 */
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { planFileWrite, probedText, type TextEdit } from './file-write.js';
import {
  atomicWriteScript,
  failureText,
  fileProbeScript,
  parseFileProbe,
  parseKeyValues,
  parseSections,
  parseWriteResult,
  runScript,
  section,
} from './remote.js';
import type { FileDiff, Module, ModuleResult, Planned } from './types.js';

export interface SysctlArgs {
  name: string;
  value?: string | number | boolean;
  state?: 'present' | 'absent';
  sysctl_file?: string;
  reload?: boolean;
  apply_live?: boolean | 'auto';
  sysctl_set?: boolean;
}

export const DEFAULT_SYSCTL_FILE = '/etc/sysctl.d/99-cairn.conf';
export const LIVE_SKIPPED_READ_ONLY = 'live apply skipped: read-only in a container';
/** A kernel-global key (net.core.netdev_max_backlog...) is not even visible in a container's network namespace. */
export const LIVE_SKIPPED_NOT_VISIBLE =
  'live apply skipped: read-only in a container (a kernel-global key, not visible in the container)';
const LIVE_FAILED = 80;

/** Whitespace-insensitive form of a value. */
export function normaliseSysctlValue(value: string): string {
  return value.trim().split(/\s+/).join(' ');
}

/**
 * The /proc/sys path of a key, as sysctl(8) maps it: with dots as separators a slash inside a component
 * (an interface named eth0.100 written eth0/100) stands for a dot.
 */
export function sysctlProcPath(name: string): string {
  const firstDot = name.indexOf('.');
  const firstSlash = name.indexOf('/');
  const dotted = firstDot !== -1 && (firstSlash === -1 || firstDot < firstSlash);
  const path = dotted ? name.replace(/[./]/g, (c) => (c === '.' ? '/' : '.')) : name;
  return `/proc/sys/${path}`;
}

/** Lines of a sysctl.d file that set `name`, with their values. */
function keyOf(line: string): { key: string; value: string } | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return undefined;
  const eq = trimmed.indexOf('=');
  if (eq === -1) return undefined;
  // A leading '-' tells systemd-sysctl to ignore a missing key; it is the same key.
  return { key: trimmed.slice(0, eq).trim().replace(/^-/, ''), value: trimmed.slice(eq + 1).trim() };
}

/** The value the file sets for `name` (the last line wins, as sysctl reads the file), if any. */
export function fileValueOf(text: string | undefined, name: string): string | undefined {
  let found: string | undefined;
  for (const line of (text ?? '').split('\n')) {
    const kv = keyOf(line);
    if (kv && kv.key === name) found = kv.value;
  }
  return found;
}

/**
 * Set (value defined) or remove (value undefined) `name` in a sysctl.d file's text (pure; table-tested).
 * One line that already holds the value (whitespace aside) is left alone; otherwise the first line for the
 * key becomes `name = value` and later duplicates, which would override it, are removed.
 */
export function editSysctlFile(original: string | undefined, name: string, value: string | undefined): TextEdit {
  const text = original ?? '';
  const lines = text === '' ? [] : text.split('\n');
  const trailingNewline = text.endsWith('\n');
  if (trailingNewline) lines.pop();
  const matching = lines.map((line, i) => ({ i, kv: keyOf(line) })).filter((m) => m.kv?.key === name);
  if (value === undefined) {
    if (matching.length === 0) return { text, changed: false, msg: '' };
    const drop = new Set(matching.map((m) => m.i));
    const kept = lines.filter((_, i) => !drop.has(i));
    return { text: kept.length > 0 ? `${kept.join('\n')}\n` : '', changed: true, msg: `removed ${name}` };
  }
  const wanted = normaliseSysctlValue(value);
  if (matching.length === 1 && normaliseSysctlValue(matching[0]!.kv!.value) === wanted)
    return { text, changed: false, msg: '' };
  const newLine = `${name} = ${value}`;
  if (matching.length === 0) {
    lines.push(newLine);
    return { text: `${lines.join('\n')}\n`, changed: true, msg: `added ${name}` };
  }
  const drop = new Set(matching.slice(1).map((m) => m.i));
  const out = lines.map((line, i) => (i === matching[0]!.i ? newLine : line)).filter((_, i) => !drop.has(i));
  return { text: `${out.join('\n')}\n`, changed: true, msg: `set ${name}` };
}

export interface LiveProbe {
  exists: boolean;
  writable: boolean;
  value?: string;
  /** /proc/sys itself is mounted read-only (a container): a missing key may just be invisible here. */
  procSysReadOnly?: boolean;
}

export function parseLiveProbe(text: string | undefined): LiveProbe {
  const kv = parseKeyValues(text ?? '');
  const probe: LiveProbe = { exists: kv.get('exists') === '1', writable: kv.get('writable') === '1' };
  if (kv.get('sys_ro') === '1') probe.procSysReadOnly = true;
  if (kv.has('value_b64'))
    probe.value = Buffer.from(kv.get('value_b64') ?? '', 'base64')
      .toString('utf8')
      .replace(/\n$/, '');
  return probe;
}

export function sysctlProbeScript(file: string, procPath: string): string {
  return [
    fileProbeScript('file', file, { content: true, follow: true }),
    section(
      'live',
      `p=${quote(procPath)}`,
      'if [ -e "$p" ]; then echo exists=1; printf "value_b64="; cat "$p" 2>/dev/null | base64 -w0; echo',
      '  if [ -w "$p" ]; then echo writable=1; else echo writable=0; fi',
      'else echo exists=0; fi',
      // The mount options of /proc/sys itself ("ro,..." in a container; no such mount on a normal host).
      `if awk '$5 == "/proc/sys" { split($6, o, ","); if (o[1] == "ro") ro = 1 } END { exit !ro }' /proc/self/mountinfo 2>/dev/null; then echo sys_ro=1; fi`,
    ),
  ].join('\n');
}

export interface SysctlPlan {
  file: string;
  /** New file content, when the file changes. */
  content?: string;
  live?: { name: string; value: string; procPath: string };
}

type ApplyLive = boolean | 'auto';

/** The plan from the probed file text and live value (pure; table-tested). */
export function planSysctl(
  args: SysctlArgs,
  file: { text?: string; exists: boolean; parentExists: boolean; umask: number; sha256?: string; path: string },
  live: LiveProbe,
): Planned<SysctlPlan> {
  const state = args.state ?? 'present';
  const value = args.value === undefined ? undefined : String(args.value);
  const applyLive: ApplyLive = args.apply_live ?? (args.reload === false || args.sysctl_set === false ? false : 'auto');
  const sysctlFile = args.sysctl_file ?? DEFAULT_SYSCTL_FILE;
  const procPath = sysctlProcPath(args.name);
  const plan: SysctlPlan = { file: file.path };
  const actions: string[] = [];
  const diffs: FileDiff[] = [];
  const notes: string[] = [];
  const fileValue = fileValueOf(file.text, args.name);
  const data: Record<string, unknown> = {
    name: args.name,
    file_value: fileValue ?? null,
    live_value: live.exists ? (live.value ?? null) : null,
    live_applied: false,
  };

  if (state === 'present' && value !== undefined) {
    if (!file.exists && !file.parentExists)
      return { changed: false, actions: [], failed: `the directory of ${sysctlFile} does not exist` };
    const edit = editSysctlFile(file.exists ? file.text : undefined, args.name, value);
    if (edit.changed) {
      const write = planFileWrite(
        {
          path: file.path,
          type: file.exists ? 'file' : 'absent',
          umask: file.umask,
          ...(file.text !== undefined ? { content: Buffer.from(file.text) } : {}),
          ...(file.sha256 ? { sha256: file.sha256 } : {}),
        },
        { path: file.path, content: Buffer.from(edit.text) },
      );
      plan.content = edit.text;
      actions.push(
        `write ${args.name} = ${value} to ${sysctlFile}${fileValue !== undefined ? ` (was ${fileValue})` : ''}`,
      );
      diffs.push(...(write.diffs ?? []));
    }
    if (applyLive !== false) {
      if (!live.exists && applyLive === 'auto' && live.procSysReadOnly) notes.push(LIVE_SKIPPED_NOT_VISIBLE);
      else if (!live.exists)
        return {
          changed: false,
          actions: [],
          failed: `unknown sysctl key ${args.name}: ${procPath} does not exist (typo, or the kernel module is not loaded)`,
        };
    }
    if (applyLive !== false && live.exists) {
      const current = normaliseSysctlValue(live.value ?? '');
      if (current !== normaliseSysctlValue(value)) {
        if (live.writable) {
          plan.live = { name: args.name, value, procPath };
          actions.push(`set ${args.name} ${current} -> ${normaliseSysctlValue(value)} (live)`);
          data.live_applied = true;
        } else if (applyLive === 'auto') {
          notes.push(LIVE_SKIPPED_READ_ONLY);
        } else {
          return {
            changed: false,
            actions: [],
            failed: `cannot set ${args.name} live: ${procPath} is read-only (in a container?); use apply_live: auto or false`,
          };
        }
      }
    }
  } else if (state === 'absent' && file.exists) {
    const edit = editSysctlFile(file.text, args.name, undefined);
    if (edit.changed) {
      plan.content = edit.text;
      actions.push(`remove ${args.name} from ${sysctlFile}`);
      diffs.push({ path: file.path, before: file.text ?? '', after: edit.text });
    }
  }
  if (notes.length > 0) data.msg = notes.join('; ');
  const changed = actions.length > 0;
  // Only the live part was left to do and it cannot be done here: a skip, with why (not a silent "ok").
  const skipped = !changed && notes.length > 0 ? { skipped: notes.join('; ') } : {};
  return {
    changed,
    actions: [...actions, ...(changed ? notes : [])],
    ...(diffs.length > 0 ? { diffs } : {}),
    state: plan,
    data,
    ...skipped,
  };
}

/** The apply script: the atomic file write (content on stdin), then the live value (pure; table-tested). */
export function sysctlApplyScript(plan: SysctlPlan): string {
  const lines: string[] = [];
  if (plan.content !== undefined)
    lines.push(atomicWriteScript({ dest: plan.file, expectedBytes: Buffer.byteLength(plan.content) }));
  if (plan.live) {
    const { name, value, procPath } = plan.live;
    lines.push(
      `if command -v sysctl >/dev/null 2>&1; then sysctl -q -w ${quote(`${name}=${value}`)} || exit ${LIVE_FAILED}`,
      `else printf '%s\\n' ${quote(value)} > ${quote(procPath)} || exit ${LIVE_FAILED}; fi`,
    );
  }
  return lines.join('\n');
}

export const sysctlModule: Module<SysctlArgs, SysctlPlan> = {
  name: 'sysctl',
  // Ansible's aliases (ansible.builtin.sysctl's documentation).
  argAliases: { key: 'name', val: 'value' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9_][^\\s=]*$' },
      value: { type: ['string', 'number', 'boolean'] },
      state: { enum: ['present', 'absent'] },
      sysctl_file: { type: 'string', minLength: 1 },
      reload: { type: 'boolean' },
      apply_live: { enum: [true, false, 'auto'] },
      sysctl_set: { type: 'boolean' },
    },
  },

  async check(ctx, args): Promise<Planned<SysctlPlan>> {
    if ((args.state ?? 'present') === 'present' && args.value === undefined)
      throw argError(ctx, 'sysctl needs value with state=present');
    if (String(args.value ?? '').includes('\n')) throw argError(ctx, 'sysctl value cannot contain a line break');
    const sysctlFile = args.sysctl_file ?? DEFAULT_SYSCTL_FILE;
    const res = await runScript(ctx, sysctlProbeScript(sysctlFile, sysctlProcPath(args.name)));
    const sections = parseSections(res.stdout);
    if (res.code !== 0 || !sections.has('live'))
      return { changed: false, actions: [], failed: `cannot inspect ${args.name}: ${failureText(res)}` };
    const probe = parseFileProbe(sysctlFile, sections.get('file'));
    const probed = probedText(probe);
    if (probed.failed) return { changed: false, actions: [], failed: probed.failed };
    return planSysctl(
      args,
      {
        path: probe.linkResolved ?? sysctlFile,
        exists: probe.type !== 'absent',
        parentExists: probe.parentExists ?? true,
        umask: probe.umask,
        ...(probed.text !== undefined ? { text: probed.text } : {}),
        ...(probe.sha256 ? { sha256: probe.sha256 } : {}),
      },
      parseLiveProbe(sections.get('live')),
    );
  },

  async apply(ctx, _args, plan): Promise<ModuleResult> {
    const state = plan.state;
    const data = { ...(plan.data ?? {}) };
    if (!state) return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
    const res = await runScript(
      ctx,
      sysctlApplyScript(state),
      state.content !== undefined ? { stdin: state.content } : {},
    );
    const msg = typeof data.msg === 'string' ? data.msg : undefined;
    if (res.code === LIVE_FAILED) {
      return {
        changed: state.content !== undefined,
        failed: true,
        msg: `setting ${state.live?.name} live failed: ${failureText(res)}`,
        diffs: plan.diffs,
        data: { ...data, live_applied: false },
      };
    }
    if (res.code !== 0) {
      const outcome = parseWriteResult(res, state.file, state.content ?? '');
      return {
        changed: false,
        failed: true,
        msg: outcome.error ?? `writing ${state.file} failed: ${failureText(res)}`,
        data: { ...data, live_applied: false },
      };
    }
    return { changed: true, diffs: plan.diffs, data, ...(msg ? { msg } : {}) };
  },
};
