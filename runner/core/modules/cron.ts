/**
 * cron: a named job (or an environment line) in a user's crontab or in a /etc/cron.d file, as Ansible's cron
 * module: the job is the line after "#Ansible: <name>", updated in place or appended; env lines go on top;
 * removing the last job of a cron_file removes the file. The new text is computed here from the probed text
 * by `editCrontab` (pure, table-tested), so check and apply share one decision. A cron.d file is written
 * with the atomic script; a user crontab is installed with `crontab -u USER -` (crontab(1) replaces the
 * spool file itself). Reference: ansible/modules/cron.py.
 */
import { posix } from 'node:path';
import { argv, quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { applyFileWrite, planFileWrite, probedText, type FileWritePlan } from './file-write.js';
import {
  failureText,
  fileProbeScript,
  parseFileProbe,
  parseSections,
  ProbeError,
  runScript,
  section,
} from './remote.js';
import type { FileDiff, Module, ModuleContext, Planned } from './types.js';

export interface CronArgs {
  name: string;
  user?: string;
  job?: string;
  cron_file?: string;
  state?: 'present' | 'absent';
  backup?: boolean;
  minute?: string | number;
  hour?: string | number;
  day?: string | number;
  month?: string | number;
  weekday?: string | number;
  special_time?: 'reboot' | 'yearly' | 'annually' | 'monthly' | 'weekly' | 'daily' | 'hourly';
  disabled?: boolean;
  env?: boolean;
  insertafter?: string;
  insertbefore?: string;
}

const HEADER = '#Ansible: ';

export interface CronEdit {
  /** The crontab's new text (Ansible's render(): lines joined, one final newline). */
  text: string;
  changed: boolean;
  /** state=absent removed the last line of a cron_file: the file itself goes. */
  removeFile: boolean;
  jobs: string[];
  envs: string[];
}

/** Ansible's get_cron_job: the line for the job (with the user in a cron_file, '#' when disabled). */
export function cronJobLine(args: CronArgs, inCronFile: boolean): string {
  const job = (args.job ?? '').replace(/^[\r\n]+|[\r\n]+$/g, '');
  const prefix = args.disabled ? '#' : '';
  const user = inCronFile ? ` ${args.user}` : '';
  if (args.special_time) return `${prefix}@${args.special_time}${user} ${job}`;
  const field = (v: string | number | undefined) => String(v ?? '*');
  const when = [args.minute, args.hour, args.day, args.month, args.weekday].map(field).join(' ');
  return `${prefix}${when}${user} ${job}`;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Python's str.splitlines() for the separators a crontab has. */
const splitLines = (text: string): string[] => (text === '' ? [] : text.replace(/\r?\n$|\r$/, '').split(/\r\n|\n|\r/));

/** Ansible's cron on the text of a crontab (`existing` undefined: no crontab / no file yet). */
export function editCrontab(existing: string | undefined, args: CronArgs, inCronFile: boolean): CronEdit {
  const original = existing ?? '';
  let lines = splitLines(original);
  const install = (args.state ?? 'present') === 'present';
  let changed = false;
  const findEnv = (name: string) => lines.findIndex((l) => new RegExp(`^${escapeRe(name)}=`).test(l));

  if (args.env) {
    const decl = `${args.name}="${args.job ?? ''}"`;
    const at = findEnv(args.name);
    if (install) {
      if (at === -1) {
        const other = args.insertafter ?? args.insertbefore;
        if (other === undefined) lines.unshift(decl);
        else {
          const otherAt = findEnv(other);
          if (otherAt === -1) throw new Error(`Variable named '${other}' not found.`);
          lines.splice(args.insertafter !== undefined ? otherAt + 1 : otherAt, 0, decl);
        }
        changed = true;
      } else if (lines[at] !== decl) {
        lines = lines.map((l) => (new RegExp(`^${escapeRe(args.name)}=`).test(l) ? decl : l));
        changed = true;
      }
    } else if (at !== -1) {
      lines = lines.filter((l) => !new RegExp(`^${escapeRe(args.name)}=`).test(l));
      changed = true;
    }
  } else {
    const header = `${HEADER}${args.name}`;
    /** Drop the header and the job after it; `replacement` lines go where they were. */
    const rewrite = (replacement: string[]) => {
      const out: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        if (lines[i] === header && i + 1 < lines.length) {
          out.push(...replacement);
          i++;
        } else if (lines[i] !== header) out.push(lines[i]!);
      }
      lines = out;
    };
    const findJob = (): { job?: string; adopted?: boolean } => {
      for (let i = 0; i + 1 < lines.length; i++) {
        if (lines[i]!.startsWith(HEADER) && lines[i]!.slice(HEADER.length) === args.name) return { job: lines[i + 1] };
        if (lines[i]!.startsWith(HEADER)) i++;
      }
      return {};
    };
    if (install) {
      const job = cronJobLine(args, inCronFile);
      let found = findJob();
      if (found.job === undefined) {
        // An identical job without a header gets one (Ansible's find_job by exact match).
        const i = lines.indexOf(job);
        if (i !== -1 && !(lines[i - 1] ?? '').startsWith(HEADER)) {
          lines.splice(i, 0, header);
          found = { job, adopted: true };
        } else if (i !== -1 && lines[i - 1] === `${HEADER}None`) {
          lines[i - 1] = header;
          found = { job, adopted: true };
        }
      }
      if (found.job === undefined) {
        lines.push(header, job);
        changed = true;
      } else if (found.job !== job || found.adopted) {
        rewrite([header, job]);
        changed = true;
      }
    } else if (findJob().job !== undefined) {
      rewrite([]);
      changed = true;
      if (inCronFile && lines.every((l) => l.trim() === '')) {
        return { text: '', changed: existing !== undefined, removeFile: existing !== undefined, jobs: [], envs: [] };
      }
    }
  }
  // A crontab without a final newline is rewritten with one (cron ignores an unterminated last line).
  if (!changed && original !== '' && !/[\r\n]$/.test(original)) changed = true;
  const rendered = lines.join('\n');
  return {
    text: rendered ? `${rendered.replace(/[\r\n]+$/, '')}\n` : '',
    changed,
    removeFile: false,
    jobs: lines.filter((l) => l.startsWith(HEADER)).map((l) => l.slice(HEADER.length)),
    envs: lines.filter((l) => /^\S+=/.test(l)).map((l) => l.split('=')[0]!),
  };
}

/** Header lines some crontab(1) implementations print on -l (Ansible drops them from the first three). */
const CRONTAB_HEADERS = [
  /^# DO NOT EDIT THIS FILE - edit the master and reinstall\./,
  /^# \(\/tmp\/.*installed on.*\)/,
  /^# \(.*version.*\)/,
];

export function stripCrontabHeaders(text: string): string {
  const lines = text.split('\n');
  let i = 0;
  while (i < 3 && i < lines.length && CRONTAB_HEADERS.some((re) => re.test(lines[i]!))) i++;
  return lines.slice(i).join('\n');
}

interface CronPlan {
  /** The cron.d file, when the target is one. */
  file?: FileWritePlan;
  removeFile?: string;
  /** The user crontab to install (`crontab -u user -`), when the target is one. */
  crontab?: { user?: string; text: string };
}

export function cronFilePath(cronFile: string): string {
  return posix.isAbsolute(cronFile) ? cronFile : posix.join('/etc/cron.d', cronFile);
}

/** The crontab's text and crontab -l's exit status, framed (pure parse; table-tested). */
export function parseCrontabListing(text: string): string | undefined {
  const at = text.lastIndexOf('\nrc=');
  const rc = at === -1 ? NaN : Number(text.slice(at + 4));
  if (!Number.isInteger(rc)) throw new ProbeError('the host printed no status for crontab -l');
  const output = text.slice(0, at);
  if (rc === 0) return stripCrontabHeaders(output);
  if (rc === 1 && /^no crontab for /m.test(output)) return undefined;
  throw new ProbeError(`cannot read the crontab: ${output.trim() || `crontab -l exited ${rc}`}`);
}

async function readUserCrontab(ctx: ModuleContext, user: string | undefined): Promise<string | undefined> {
  const userArgs = user !== undefined ? ['-u', user] : [];
  // stderr joins stdout: on success crontab -l prints nothing there, on failure nothing else.
  const script = [
    'command -v crontab >/dev/null 2>&1 || { echo "crontab(1) is not installed (Debian package cron)" >&2; exit 3; }',
    section('crontab', `${argv('crontab', ...userArgs, '-l')} 2>&1; printf '\\nrc=%s' "$?"`),
  ].join('\n');
  const res = await runScript(ctx, script);
  if (res.code !== 0) throw new ProbeError(`cannot read the crontab: ${failureText(res)}`);
  return parseCrontabListing(parseSections(res.stdout).get('crontab') ?? '');
}

export const cronModule: Module<CronArgs, CronPlan> = {
  name: 'cron',
  // Ansible's aliases (ansible.builtin.cron's documentation).
  argAliases: { dom: 'day', dow: 'weekday' },
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', minLength: 1 },
      user: { type: 'string', minLength: 1 },
      job: { type: 'string' },
      cron_file: { type: 'string', minLength: 1 },
      state: { enum: ['present', 'absent'] },
      backup: { type: 'boolean' },
      minute: { type: ['string', 'integer'] },
      hour: { type: ['string', 'integer'] },
      day: { type: ['string', 'integer'] },
      month: { type: ['string', 'integer'] },
      weekday: { type: ['string', 'integer'] },
      special_time: { enum: ['reboot', 'yearly', 'annually', 'monthly', 'weekly', 'daily', 'hourly'] },
      disabled: { type: 'boolean' },
      env: { type: 'boolean' },
      insertafter: { type: 'string' },
      insertbefore: { type: 'string' },
    },
  },

  async check(ctx, args): Promise<Planned<CronPlan>> {
    const install = (args.state ?? 'present') === 'present';
    const fields = [args.minute, args.hour, args.day, args.month, args.weekday];
    if (args.special_time && fields.some((f) => f !== undefined && String(f) !== '*'))
      throw argError(ctx, 'You must specify time and date fields or special time.');
    if (args.cron_file && cronFilePath(args.cron_file) === '/etc/crontab')
      throw argError(ctx, 'Will not manage /etc/crontab via cron_file, see documentation.');
    if (install && args.cron_file && !args.user)
      throw argError(ctx, 'To use cron_file=... parameter you must specify user=... as well');
    if (install && args.job === undefined)
      throw argError(ctx, "You must specify 'job' to install a new cron job or variable");
    if (install && (args.insertafter || args.insertbefore) && !args.env)
      throw argError(ctx, 'Insertafter and insertbefore parameters are valid only with env=yes');
    if (args.insertafter !== undefined && args.insertbefore !== undefined)
      throw argError(ctx, 'cron takes insertafter or insertbefore, not both');
    if (args.env && args.name.includes(' ')) throw argError(ctx, 'Invalid name for environment variable');
    if (args.job !== undefined && /[\r\n]/.test(args.job.replace(/^[\r\n]+|[\r\n]+$/g, '')))
      throw argError(ctx, 'cron: the job must be one line (a line break would start another crontab line)');

    const failed = (msg: string): Planned<CronPlan> => ({ changed: false, actions: [], failed: msg });
    try {
      if (args.cron_file) {
        const path = cronFilePath(args.cron_file);
        const res = await runScript(ctx, fileProbeScript('file', path, { content: true, checksum: true }));
        if (res.code !== 0) return failed(`cannot inspect ${path}: ${failureText(res)}`);
        const probe = parseFileProbe(path, parseSections(res.stdout).get('file'));
        const probed = probedText(probe);
        if (probed.failed) return failed(probed.failed);
        const edit = editCrontab(probed.text, args, true);
        const data = { jobs: edit.jobs, envs: edit.envs, cron_file: args.cron_file, state: args.state ?? 'present' };
        if (edit.removeFile) {
          const diff: FileDiff = { path, before: probed.text ?? '', after: '', afterMissing: true };
          return {
            changed: true,
            actions: [`remove ${path} (its last job)`],
            diffs: [diff],
            state: { removeFile: path },
            data,
          };
        }
        if (!edit.changed) return { changed: false, actions: [], state: {}, data };
        const plan = planFileWrite(probe, {
          path,
          content: Buffer.from(edit.text),
          ...(probe.type === 'absent' ? { mode: '0644' } : {}),
          backup: args.backup,
        });
        return { ...plan, state: { file: plan.state }, data };
      }
      const before = await readUserCrontab(ctx, args.user);
      const edit = editCrontab(before, args, false);
      const data = { jobs: edit.jobs, envs: edit.envs, state: args.state ?? 'present' };
      if (!edit.changed) return { changed: false, actions: [], state: {}, data };
      const who = args.user !== undefined ? `crontab for user "${args.user}"` : 'crontab';
      const diff: FileDiff = {
        path: who,
        before: before ?? '',
        after: edit.text,
        ...(before === undefined ? { beforeMissing: true } : {}),
      };
      return {
        changed: true,
        actions: [`update ${who}: ${install ? 'set' : 'remove'} ${args.env ? 'variable' : 'job'} ${args.name}`],
        diffs: [diff],
        state: { crontab: { ...(args.user !== undefined ? { user: args.user } : {}), text: edit.text } },
        data,
      };
    } catch (err) {
      if (err instanceof ProbeError) return failed(err.message);
      if (err instanceof Error && /^Variable named/.test(err.message)) return failed(err.message);
      throw err;
    }
  },

  async apply(ctx, _args, plan) {
    const data = { ...(plan.data ?? {}) };
    const state = plan.state ?? {};
    if (!plan.changed) return { changed: false, data };
    if (state.file) return applyFileWrite(ctx, { ...plan, state: state.file }, data);
    if (state.removeFile) {
      const res = await runScript(ctx, `rm -f -- ${quote(state.removeFile)}`);
      if (res.code !== 0) return { changed: false, failed: true, msg: failureText(res), data };
      return { changed: true, diffs: plan.diffs, data };
    }
    if (state.crontab) {
      const userArgs = state.crontab.user !== undefined ? ['-u', state.crontab.user] : [];
      const res = await runScript(ctx, `${argv('crontab', ...userArgs, '-')}`, { stdin: state.crontab.text });
      if (res.code !== 0) return { changed: false, failed: true, msg: failureText(res), data };
      return { changed: true, diffs: plan.diffs, data };
    }
    return { changed: false, failed: true, msg: 'internal error: apply called without a plan', data };
  },
};
