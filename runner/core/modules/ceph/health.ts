/**
 * Ceph's health report, from `ceph health detail -f json` (or the `health` section of `ceph -s -f json`) and
 * from the plain `ceph health detail` an operator reads, in both of its shapes: the current one (Octopus
 * and later: a summary line, then `[WRN] CODE: summary` with indented detail lines) and the older one the
 * documentation still shows (a `HEALTH_ERR a; b; c` line, then unindented detail lines without codes).
 */

export type HealthStatus = 'HEALTH_OK' | 'HEALTH_WARN' | 'HEALTH_ERR';

export interface HealthCheck {
  /** The check's code (OSD_DOWN, PG_DEGRADED...); null in the older text format, which names none. */
  code: string | null;
  severity: HealthStatus;
  summary: string;
  /** How many things the check counts (osds down...), when Ceph says. */
  count?: number;
  detail: string[];
  /** Muted with `ceph health mute CODE`: shown, but not counted in the overall status. */
  muted: boolean;
}

export interface HealthReport {
  /** The overall status, muted checks left out (as Ceph computes it). */
  status: HealthStatus;
  checks: HealthCheck[];
  /** Codes muted with `ceph health mute`, whether or not their check currently fails. */
  mutes: string[];
  /** Detail lines the older text format prints without saying which check they belong to. */
  unattributed: string[];
}

/** Ceph's output was not what the parser expected; the message says what and where. */
export class CephOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CephOutputError';
  }
}

const STATUSES: readonly HealthStatus[] = ['HEALTH_OK', 'HEALTH_WARN', 'HEALTH_ERR'];

export function isHealthStatus(value: unknown): value is HealthStatus {
  return typeof value === 'string' && (STATUSES as readonly string[]).includes(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** JSON text from a ceph command, or a CephOutputError naming the command. */
export function parseJsonOutput(text: string, command: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') throw new CephOutputError(`\`${command}\` printed nothing`);
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    throw new CephOutputError(`\`${command}\` did not print JSON: ${JSON.stringify(trimmed.slice(0, 120))}`);
  }
}

function summaryMessage(summary: unknown): { message: string; count?: number } {
  // Luminous and later: {"message": "...", "count": N}; a bare string is accepted too.
  if (typeof summary === 'string') return { message: summary };
  if (isRecord(summary) && typeof summary.message === 'string') {
    return typeof summary.count === 'number'
      ? { message: summary.message, count: summary.count }
      : { message: summary.message };
  }
  return { message: '' };
}

/**
 * The `health` object of `ceph health detail -f json` or `ceph -s -f json`:
 * {status, checks: {CODE: {severity, summary: {message, count}, detail?: [{message}], muted}}, mutes: [{code}]}.
 */
export function parseHealthJson(value: unknown, command = 'ceph health detail -f json'): HealthReport {
  if (!isRecord(value)) throw new CephOutputError(`\`${command}\`: expected a JSON object`);
  const health = isRecord(value.health) && value.status === undefined ? value.health : value;
  if (!isRecord(health) || !isHealthStatus(health.status)) {
    throw new CephOutputError(
      `\`${command}\`: no health status (expected "status": HEALTH_OK, HEALTH_WARN or HEALTH_ERR)`,
    );
  }
  const mutes = Array.isArray(health.mutes)
    ? health.mutes
        .map((m) => (isRecord(m) && typeof m.code === 'string' ? m.code : typeof m === 'string' ? m : ''))
        .filter((c) => c !== '')
    : [];
  const checks: HealthCheck[] = [];
  const rawChecks = isRecord(health.checks) ? health.checks : {};
  for (const [code, raw] of Object.entries(rawChecks)) {
    if (!isRecord(raw)) continue;
    const severity = isHealthStatus(raw.severity) ? raw.severity : 'HEALTH_WARN';
    const { message, count } = summaryMessage(raw.summary);
    const detail = Array.isArray(raw.detail)
      ? raw.detail
          .map((d) => (isRecord(d) && typeof d.message === 'string' ? d.message : typeof d === 'string' ? d : ''))
          .filter((d) => d !== '')
      : [];
    const muted = raw.muted === true || mutes.includes(code);
    checks.push({ code, severity, summary: message, ...(count === undefined ? {} : { count }), detail, muted });
  }
  return { status: health.status, checks, mutes, unattributed: [] };
}

const SEVERITY_TAG: Record<string, HealthStatus> = { WRN: 'HEALTH_WARN', ERR: 'HEALTH_ERR', INF: 'HEALTH_OK' };

// "[WRN] OSD_DOWN: 1 osds down", "(MUTED) [WRN] OSD_DOWN: 1 osds down", "(MUTED) OSD_DOWN 1 osds down".
const CHECK_LINE = /^(\(MUTED\)\s+)?(?:\[(WRN|ERR|INF)\]\s+)?([A-Z][A-Z0-9_]+)(?::\s*|\s+)(.*)$/;
// "HEALTH_OK (muted: OSD_DOWN)", "HEALTH_WARN 1 osds down; Degraded data redundancy: ...".
const STATUS_LINE = /^(HEALTH_OK|HEALTH_WARN|HEALTH_ERR)\b\s*(.*)$/;

/** Split "a; b (x; y); c" at the top-level "; " separators Ceph joins summaries with. */
function splitSummaries(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    if ((ch === ')' || ch === ']' || ch === '}') && depth > 0) depth--;
    if (ch === ';' && depth === 0) {
      if (current.trim()) parts.push(current.trim());
      current = '';
      continue;
    }
    current += ch;
  }
  if (current.trim()) parts.push(current.trim());
  return parts;
}

/** Plain `ceph health detail` (or `ceph health`) output, either format (see the file comment). */
export function parseHealthDetailText(text: string): HealthReport {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  // Tools that wrap the command may print log noise first: the report starts at the status line.
  const start = lines.findIndex((l) => STATUS_LINE.test(l.trim()));
  if (start === -1)
    throw new CephOutputError(
      `\`ceph health detail\`: no HEALTH_OK / HEALTH_WARN / HEALTH_ERR line in ${JSON.stringify(text.trim().slice(0, 120))}`,
    );
  const head = STATUS_LINE.exec(lines[start]!.trim())!;
  const status = head[1] as HealthStatus;
  let rest = head[2] ?? '';
  const mutes: string[] = [];
  const mutedPart = /\(muted:\s*([^)]*)\)/.exec(rest);
  if (mutedPart) {
    mutes.push(...mutedPart[1]!.split(/[\s,]+/).filter((c) => c !== ''));
    rest = rest.replace(mutedPart[0], '').trim();
  }
  const checks: HealthCheck[] = [];
  const unattributed: string[] = [];
  let current: HealthCheck | undefined;
  let sawCodes = false;
  for (const raw of lines.slice(start + 1)) {
    const indented = /^\s/.test(raw);
    const line = raw.trim();
    const match = indented ? null : CHECK_LINE.exec(line);
    // A code line needs the [WRN]/[ERR] tag or the (MUTED) mark: "OSD_DOWN 1 osds down" alone could be prose.
    if (match && (match[1] !== undefined || match[2] !== undefined)) {
      sawCodes = true;
      const code = match[3]!;
      current = {
        code,
        severity: match[2] ? SEVERITY_TAG[match[2]]! : status === 'HEALTH_OK' ? 'HEALTH_WARN' : status,
        summary: match[4]!.trim(),
        detail: [],
        muted: match[1] !== undefined || mutes.includes(code),
      };
      checks.push(current);
      continue;
    }
    if (current && indented) current.detail.push(line);
    else unattributed.push(line);
  }
  if (!sawCodes && rest !== '') {
    // The older format: the checks are only the summaries on the status line, without codes.
    for (const summary of splitSummaries(rest))
      checks.push({ code: null, severity: status, summary, detail: [], muted: false });
  }
  return { status, checks, mutes, unattributed };
}

/** Checks that fail and are not muted: what keeps the cluster from HEALTH_OK. */
export function activeChecks(report: HealthReport): HealthCheck[] {
  return report.checks.filter((c) => !c.muted);
}

/** One line for messages: "HEALTH_WARN: OSD_DOWN (1 osds down); PG_DEGRADED (...)", muted checks marked. */
export function describeHealth(report: HealthReport): string {
  if (report.checks.length === 0) return report.status;
  const parts = report.checks.map((c) => `${c.muted ? 'muted ' : ''}${c.code ?? 'check'} (${c.summary})`);
  return `${report.status}: ${parts.join('; ')}`;
}
