/**
 * One round trip to a node with the admin keyring: every ceph command verification and the osd-down drill
 * read, each in its own section (see modules/remote.ts), parsed into a ClusterSnapshot.
 */
import type { ExecResult } from '../../transport/types.js';
import { argv } from '../../transport/quote.js';
import { parseSections, section } from '../remote.js';
import type { ClusterSnapshot } from './assess.js';
import {
  CephOutputError,
  parseHealthDetailText,
  parseHealthJson,
  parseJsonOutput,
  type HealthReport,
} from './health.js';
import {
  parseCrushRulesJson,
  parseOsdDumpJson,
  parseOsdTreeJson,
  parsePoolsJson,
  parseQuorumStatusJson,
  parseStatusJson,
} from './status.js';

/** The commands, by section name. */
export const PROBE_COMMANDS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['status', ['-s', '-f', 'json']],
  ['health', ['health', 'detail', '-f', 'json']],
  ['health_text', ['health', 'detail']],
  ['quorum', ['quorum_status', '-f', 'json']],
  ['osd_tree', ['osd', 'tree', '-f', 'json']],
  ['pools', ['osd', 'pool', 'ls', 'detail', '-f', 'json']],
  ['rules', ['osd', 'crush', 'rule', 'dump', '-f', 'json']],
];

/** Only when asked for (ceph_health's networks): every OSD's public and cluster addresses. */
const OSD_DUMP_COMMAND: readonly [string, readonly string[]] = ['osd_dump', ['osd', 'dump', '-f', 'json']];

export interface ProbeOptions {
  /** Also read `ceph osd dump -f json` (the OSDs' addresses). */
  osdDump?: boolean;
}

function probeCommands(opts: ProbeOptions): ReadonlyArray<readonly [string, readonly string[]]> {
  return opts.osdDump ? [...PROBE_COMMANDS, OSD_DUMP_COMMAND] : PROBE_COMMANDS;
}

function commandText(name: string): string {
  return ['ceph', ...([...PROBE_COMMANDS, OSD_DUMP_COMMAND].find(([n]) => n === name)?.[1] ?? [])].join(' ');
}

/**
 * The probe script. Each command gets a bound (without a quorum ceph would wait forever) and its exit status
 * is printed, so a failed command is told apart from odd output; stderr is printed (prefixed) only for a
 * command that failed, so warnings never mix into the JSON. `ceph -s` runs first: when it fails (no
 * quorum) the rest is skipped, as each would wait its bound; otherwise the rest run at once (each ceph
 * invocation is a Python start-up of about half a second), and the sections are printed in order.
 */
export function probeScript(timeoutS = 20, opts: ProbeOptions = {}): string {
  const commands = probeCommands(opts);
  const [first, ...rest] = commands;
  const run = ([name, args]: readonly [string, readonly string[]]): string =>
    `{ timeout ${timeoutS + 5} ${argv('ceph', '--connect-timeout', String(timeoutS), ...args)} >"$d/${name}.out" 2>"$d/${name}.err"; echo $? >"$d/${name}.rc"; }`;
  const lines: string[] = [
    'd=$(mktemp -d)',
    run(first!),
    `if [ "$(cat "$d/${first![0]}.rc")" = 0 ]; then`,
    ...rest.map((command) => `  ${run(command)} &`),
    '  wait',
    'fi',
  ];
  for (const [name] of commands) {
    lines.push(
      `if [ -e "$d/${name}.rc" ]; then`,
      // JSON output ends without a newline: the status marker starts a line of its own. It is the LAST
      // `::rc=` line of the section (stderr lines after it are all prefixed), so output cannot fake it.
      section(
        name,
        `cat "$d/${name}.out"; rc=$(cat "$d/${name}.rc"); printf '\\n::rc=%s\\n' "$rc"`,
        `[ "$rc" = 0 ] || sed 's/^/::err=/' "$d/${name}.err"`,
      ),
      'fi',
    );
  }
  lines.push('rm -rf "$d"', section('end'));
  return lines.join('\n');
}

export interface ProbeOutput {
  snapshot: ClusterSnapshot;
  /** `ceph health detail` as an operator reads it. */
  healthText: string;
  /** The same report parsed from that text (cross-checks the JSON one). */
  healthFromText: HealthReport;
}

function sectionBody(sections: Map<string, string>, name: string): string {
  const raw = sections.get(name);
  if (raw === undefined) throw new CephOutputError(`the probe's output has no "${name}" section`);
  const lines = raw.split('\n');
  const rcAt = lines.findLastIndex((l) => /^::rc=\d+$/.test(l));
  const body = (rcAt === -1 ? lines : lines.slice(0, rcAt)).join('\n');
  const rc = rcAt === -1 ? -1 : Number(lines[rcAt]!.slice('::rc='.length));
  const stderr = lines
    .slice(rcAt + 1)
    .filter((l) => l.startsWith('::err='))
    .map((l) => l.slice('::err='.length));
  const command = commandText(name);
  if (rc !== 0) {
    const why =
      rc === 124 ? 'timed out (no monitor quorum?)' : rc === -1 ? 'did not finish' : `failed with exit code ${rc}`;
    const said = (stderr.join(' ').trim() || body.trim()).slice(-300);
    throw new CephOutputError(`\`${command}\` ${why}${said ? `: ${said}` : ''}`);
  }
  return body;
}

/** Parse the probe script's output (pure). */
export function parseProbeOutput(stdout: string, opts: ProbeOptions = {}): ProbeOutput {
  const sections = parseSections(stdout);
  if (!sections.has('end')) throw new CephOutputError('the probe did not run to its end');
  const json = (name: string): unknown => parseJsonOutput(sectionBody(sections, name), commandText(name));
  // In command order: when one failed, its own error is the one to report (the rest did not run).
  const status = parseStatusJson(json('status'));
  const health = parseHealthJson(json('health'));
  const healthText = sectionBody(sections, 'health_text').trim();
  return {
    snapshot: {
      status,
      health,
      quorum: parseQuorumStatusJson(json('quorum')),
      osds: parseOsdTreeJson(json('osd_tree')),
      pools: parsePoolsJson(json('pools')),
      rules: parseCrushRulesJson(json('rules')),
      ...(opts.osdDump ? { osdAddresses: parseOsdDumpJson(json('osd_dump')) } : {}),
    },
    healthText,
    healthFromText: parseHealthDetailText(healthText),
  };
}

/** Run the probe with `exec` (a module's runScript or a drill's ctx.exec) and parse it. */
export async function probeCluster(
  exec: (script: string) => Promise<ExecResult>,
  timeoutS = 20,
  opts: ProbeOptions = {},
): Promise<ProbeOutput> {
  const res = await exec(probeScript(timeoutS, opts));
  if (res.code === 255 && res.stdout === '')
    throw new CephOutputError(`the probe could not run: ${res.stderr.trim() || 'connection failed'}`);
  return parseProbeOutput(res.stdout, opts);
}
