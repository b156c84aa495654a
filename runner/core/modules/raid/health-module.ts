/**
 * raid_health: the health of the host's md (software RAID) arrays, read-only, in one round trip. It reads
 * /proc/mdstat (or `mdstat_path`, so a captured file can stand in for it, as node_exporter's
 * --path.procfs) and, for each array, `mdadm --detail` (run on the host, or read from `mdadm_detail_path`),
 * parses them with the parsers beside this file and fails naming every array that is degraded, failed or inactive. No
 * mdstat file at all (no md driver, a container) passes with the note "no md arrays (no <path>)".
 * Registered values: arrays (one verdict each), mdstat_present, msg.
 *
 * Registered by the side-effect line `import './health-module.js'` in ./all.ts (see the end of this file).
 */
import { CairnError } from '../../util/errors.js';
import { quote } from '../../transport/quote.js';
import { assessRaid, summariseRaid, type ArrayHealth } from './health.js';
import { parseMdadmDetails, type MdadmDetail } from './mdadm-detail.js';
import { parseMdstat, type Mdstat } from './mdstat.js';
import { registerModule } from '../index.js';
import { failureText, parseKeyValues, parseSections, runScript, section } from '../remote.js';
import type { Module, ModuleResult, Planned } from '../types.js';

export interface RaidHealthArgs {
  /** Default /proc/mdstat. */
  mdstat_path?: string;
  /**
   * `mdadm --detail` for each array: 'auto' (default) runs it when reading the live /proc/mdstat and mdadm
   * is installed; true requires mdadm; false skips it.
   */
  mdadm_detail?: boolean | 'auto';
  /** A file of captured `mdadm --detail` output(s) to read instead of running mdadm ("" = none). */
  mdadm_detail_path?: string;
  /** A degraded array that is rebuilding passes with its progress (default true). */
  allow_recovering?: boolean;
}

export const LIVE_MDSTAT = '/proc/mdstat';

/** What the probe found on the host, before parsing. */
export interface RaidProbe {
  mdstatPresent: boolean;
  mdstatText?: string;
  mdadmInstalled: boolean;
  /** Raw `mdadm --detail` outputs (run on the host or read from the file). */
  detailTexts: Array<{ source: string; text: string }>;
  /** Why a wanted detail could not be had. */
  detailProblem?: string;
}

function b64(value: string | undefined): string {
  return Buffer.from(value ?? '', 'base64').toString('utf8');
}

/** The one probe script (pure; table-tested). Contents travel base64-encoded, so no output can fake a marker. */
export function raidProbeScript(args: RaidHealthArgs): string {
  const mdstat = args.mdstat_path || LIVE_MDSTAT;
  const detailPath = args.mdadm_detail_path ?? '';
  const mode = args.mdadm_detail ?? 'auto';
  const runMdadm = detailPath === '' && (mode === true || (mode === 'auto' && mdstat === LIVE_MDSTAT));
  const lines = [
    `p=${quote(mdstat)}`,
    section(
      'mdstat',
      'if [ -e "$p" ]; then echo present=1; printf "content_b64="; base64 -w0 < "$p" || echo read_error=1; echo; else echo present=0; fi',
      'if command -v mdadm >/dev/null 2>&1; then echo mdadm=1; else echo mdadm=0; fi',
    ),
  ];
  const detail: string[] = [];
  if (detailPath !== '') {
    detail.push(
      `d=${quote(detailPath)}`,
      'if [ -r "$d" ]; then printf "file_b64="; base64 -w0 < "$d" || echo read_error=1; echo; else echo file_missing=1; fi',
    );
  } else if (runMdadm) {
    // Array names from the header lines ("md1 : active ..."); one base64 output per array.
    detail.push(
      'if [ -e "$p" ] && command -v mdadm >/dev/null 2>&1; then',
      '  for md in $(sed -n "s/^\\(md[A-Za-z0-9_.-]*\\) *: .*/\\1/p" "$p"); do',
      '    printf "run_%s_b64=" "$md"; mdadm --detail "/dev/$md" 2>&1 | base64 -w0; echo',
      '  done',
      'fi',
    );
  }
  lines.push(section('detail', ...detail));
  return lines.join('\n');
}

export function parseRaidProbe(stdout: string, args: RaidHealthArgs): RaidProbe {
  const sections = parseSections(stdout);
  const mdstat = parseKeyValues(sections.get('mdstat') ?? '');
  const detail = parseKeyValues(sections.get('detail') ?? '');
  const probe: RaidProbe = {
    mdstatPresent: mdstat.get('present') === '1',
    mdadmInstalled: mdstat.get('mdadm') === '1',
    detailTexts: [],
  };
  if (probe.mdstatPresent) probe.mdstatText = b64(mdstat.get('content_b64'));
  const detailPath = args.mdadm_detail_path ?? '';
  if (detailPath !== '') {
    if (detail.get('file_missing') === '1')
      probe.detailProblem = `the mdadm --detail file ${detailPath} does not exist or cannot be read`;
    else probe.detailTexts.push({ source: detailPath, text: b64(detail.get('file_b64')) });
  } else {
    for (const [key, value] of detail) {
      const m = /^run_(.+)_b64$/.exec(key);
      if (m) probe.detailTexts.push({ source: `mdadm --detail /dev/${m[1]}`, text: b64(value) });
    }
    if (args.mdadm_detail === true && !probe.mdadmInstalled && probe.mdstatPresent)
      probe.detailProblem = 'mdadm_detail is true but mdadm is not installed';
  }
  return probe;
}

export interface RaidVerdict {
  ok: boolean;
  msg: string;
  arrays: ArrayHealth[];
}

/** The verdict from a probe (pure; table-tested). Parse errors name the host and file. */
export function judgeRaidProbe(probe: RaidProbe, args: RaidHealthArgs, host: string): RaidVerdict {
  const mdstatPath = args.mdstat_path || LIVE_MDSTAT;
  if (probe.detailProblem) return { ok: false, msg: probe.detailProblem, arrays: [] };
  let mdstat: Mdstat | undefined;
  if (probe.mdstatPresent) mdstat = parseMdstat(probe.mdstatText ?? '', `${host}:${mdstatPath}`);
  const details: MdadmDetail[] = [];
  for (const { source, text } of probe.detailTexts) {
    // mdadm's own complaint ("cannot open /dev/md9") is kept out of the parse and reported as it is.
    if (/^mdadm: /m.test(text) && !/^\/dev\/\S+:\s*$/m.test(text))
      return { ok: false, msg: `${source}: ${text.trim()}`, arrays: [] };
    details.push(...parseMdadmDetails(text, `${host}:${source}`));
  }
  if (!probe.mdstatPresent && details.length === 0)
    return { ok: true, msg: `no md arrays (no ${mdstatPath})`, arrays: [] };
  const arrays = assessRaid(mdstat, details, { allowRecovering: args.allow_recovering ?? true });
  const summary = summariseRaid(arrays);
  return { ok: summary.ok, msg: summary.message, arrays };
}

export const raidHealthModule: Module<RaidHealthArgs> = {
  name: 'raid_health',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      mdstat_path: { type: 'string' },
      mdadm_detail: { enum: [true, false, 'auto'] },
      mdadm_detail_path: { type: 'string' },
      allow_recovering: { type: 'boolean' },
    },
  },

  async check(ctx, args): Promise<Planned> {
    const res = await runScript(ctx, raidProbeScript(args));
    const sections = res.code === 0 ? parseSections(res.stdout) : undefined;
    const readError = /^read_error=1$/m.test(`${sections?.get('mdstat') ?? ''}\n${sections?.get('detail') ?? ''}`);
    if (!sections?.has('detail') || readError) {
      return { changed: false, actions: [], failed: `cannot read the RAID state on ${ctx.host}: ${failureText(res)}` };
    }
    const probe = parseRaidProbe(res.stdout, args);
    let verdict: RaidVerdict;
    try {
      verdict = judgeRaidProbe(probe, args, ctx.host);
    } catch (err) {
      const msg = err instanceof CairnError ? err.render() : String(err);
      return { changed: false, actions: [], failed: msg, data: { msg } };
    }
    const data = { arrays: verdict.arrays, mdstat_present: probe.mdstatPresent, msg: verdict.msg };
    return verdict.ok
      ? { changed: false, actions: [], data }
      : { changed: false, actions: [], failed: verdict.msg, data };
  },

  apply(_ctx, _args, plan): Promise<ModuleResult> {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};

registerModule(raidHealthModule);
