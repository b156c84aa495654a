/**
 * timezone: the system time zone, as community.general.timezone's `name` (plugins/modules/timezone.py) sets it
 * on a Debian host: /etc/localtime a symlink to the zone's file under /usr/share/zoneinfo (what
 * `timedatectl set-timezone` writes, and what timedatectl then reports), and Debian's /etc/timezone (which
 * tzdata's `dpkg-reconfigure` keeps) holding the name where that file exists. The zone must exist on the host
 * ("given timezone X is not available", as Ansible says). check reads both in one round trip; apply replaces
 * the link by a rename (never missing meanwhile) and /etc/timezone by the atomic write.
 *
 * `hwclock` is not taken: the hardware clock is the host's firmware, which cairn's hosts (containers
 * included) do not let a play set; the schema refuses it at load with file:line:col.
 */
import { posix } from 'node:path';
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import {
  atomicWriteScript,
  decodeBase64Value,
  failureText,
  parseKeyValues,
  parseSections,
  parseWriteResult,
  ProbeError,
  runScript,
  section,
} from './remote.js';
import type { FileDiff, Module, ModuleContext, Planned } from './types.js';

export interface TimezoneArgs {
  name: string;
}

export const ZONEINFO = '/usr/share/zoneinfo';
const LOCALTIME = '/etc/localtime';
const TIMEZONE_FILE = '/etc/timezone';

/** A zone name as tzdata spells them (Europe/Paris, Etc/GMT+5, UTC): no `..`, no leading `/` or `-`. */
const ZONE_NAME = /^[A-Za-z0-9_+][A-Za-z0-9_+.-]*(\/[A-Za-z0-9_+][A-Za-z0-9_+.-]*)*$/;

/** What the host has now. */
export interface TimezoneProbe {
  /** The zone file exists on the host. */
  available: boolean;
  /** /etc/localtime's link target, or undefined when it is missing or not a symlink. */
  linkTarget?: string;
  /** /etc/timezone's content, or undefined when the file does not exist. */
  timezoneFile?: string;
}

interface TimezonePlan {
  relink: boolean;
  rewriteTimezoneFile: boolean;
}

/** The zone a /etc/localtime link names (what timedatectl reports): the part after `zoneinfo/`. */
export function zoneOfLink(target: string | undefined): string | undefined {
  if (target === undefined) return undefined;
  const at = target.lastIndexOf('zoneinfo/');
  return at === -1 ? undefined : target.slice(at + 'zoneinfo/'.length);
}

export function probeTimezoneScript(name: string): string {
  const zonefile = `${ZONEINFO}/${name}`;
  return section(
    'timezone',
    `if [ -f ${quote(zonefile)} ]; then echo available=yes; else echo available=no; fi`,
    `if [ -L ${LOCALTIME} ]; then printf 'link='; readlink -- ${LOCALTIME} | base64 -w0; echo; fi`,
    `if [ -f ${TIMEZONE_FILE} ]; then printf 'file='; head -c 4096 -- ${TIMEZONE_FILE} | base64 -w0; echo; fi`,
  );
}

export function parseTimezoneProbe(text: string | undefined): TimezoneProbe {
  if (text === undefined) throw new ProbeError('the host did not report its time zone');
  const values = parseKeyValues(text);
  const available = values.get('available');
  if (available !== 'yes' && available !== 'no') throw new ProbeError('the host reported a malformed time zone probe');
  const link = values.get('link');
  const file = values.get('file');
  return {
    available: available === 'yes',
    // readlink ends its line with a newline, which is not part of the target.
    ...(link !== undefined
      ? { linkTarget: decodeBase64Value('/etc/localtime link', link).toString('utf8').replace(/\n$/, '') }
      : {}),
    ...(file !== undefined ? { timezoneFile: decodeBase64Value('/etc/timezone', file).toString('utf8') } : {}),
  };
}

/** The plan from the probe (pure; table-tested). */
export function planTimezone(args: TimezoneArgs, probe: TimezoneProbe): Planned<TimezonePlan> {
  const linked = zoneOfLink(probe.linkTarget);
  const filed = probe.timezoneFile?.trim().split(/\s+/)[0];
  const data = { diff: { before: { name: linked ?? filed ?? 'unknown' }, after: { name: args.name } } };
  if (!probe.available)
    return { changed: false, actions: [], failed: `given timezone "${args.name}" is not available`, data };
  const relink = linked !== args.name;
  const rewriteTimezoneFile = probe.timezoneFile !== undefined && filed !== args.name;
  const actions: string[] = [];
  const diffs: FileDiff[] = [];
  if (relink) actions.push(`link ${LOCALTIME} -> ${ZONEINFO}/${args.name} (was ${linked ?? 'not a zone link'})`);
  if (rewriteTimezoneFile) {
    actions.push(`write ${TIMEZONE_FILE}: ${args.name}`);
    diffs.push({ path: TIMEZONE_FILE, before: probe.timezoneFile ?? '', after: `${args.name}\n` });
  }
  return { changed: relink || rewriteTimezoneFile, actions, diffs, state: { relink, rewriteTimezoneFile }, data };
}

/** The link is made under an unpredictable name beside it, then renamed over /etc/localtime (as file: link). */
function relinkScript(name: string): string {
  return [
    `tmp=$(mktemp -u ${quote(`${posix.dirname(LOCALTIME)}/.cairn-link.`)}XXXXXXXXXXXX) || exit 1`,
    `ln -sT -- ${quote(`${ZONEINFO}/${name}`)} "$tmp" || exit 1`,
    `mv -fT -- "$tmp" ${LOCALTIME} || { rm -f -- "$tmp"; exit 1; }`,
  ].join('\n');
}

async function probeTimezone(ctx: ModuleContext, args: TimezoneArgs): Promise<TimezoneProbe> {
  const res = await runScript(ctx, probeTimezoneScript(args.name));
  if (res.code !== 0) throw new ProbeError(`cannot read the time zone: ${failureText(res)}`);
  return parseTimezoneProbe(parseSections(res.stdout).get('timezone'));
}

export const timezoneModule: Module<TimezoneArgs, TimezonePlan> = {
  name: 'timezone',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1 } },
  },

  async check(ctx, args) {
    if (!ZONE_NAME.test(args.name) || args.name.split('/').includes('..'))
      throw argError(ctx, `timezone name ${JSON.stringify(args.name)} is not a zone name (e.g. Etc/UTC)`);
    try {
      return planTimezone(args, await probeTimezone(ctx, args));
    } catch (err) {
      if (err instanceof ProbeError) return { changed: false, actions: [], failed: err.message };
      throw err;
    }
  },

  async apply(ctx, args, plan) {
    const data = { ...(plan.data ?? {}) };
    if (!plan.changed || !plan.state) return { changed: false, data };
    if (plan.state.relink) {
      const res = await runScript(ctx, relinkScript(args.name));
      if (res.code !== 0)
        return { changed: false, failed: true, msg: `cannot link ${LOCALTIME}: ${failureText(res)}`, data };
    }
    if (plan.state.rewriteTimezoneFile) {
      const content = `${args.name}\n`;
      const script = atomicWriteScript({ dest: TIMEZONE_FILE, expectedBytes: Buffer.byteLength(content) });
      const outcome = parseWriteResult(await runScript(ctx, script, { stdin: content }), TIMEZONE_FILE, content);
      if (!outcome.ok) return { changed: plan.state.relink, failed: true, msg: outcome.error, data };
    }
    return { changed: true, diffs: plan.diffs, data };
  },
};
