/**
 * A small typed client for HAProxy's runtime API (the admin-level stats socket the haproxy role configures),
 * spoken over the host's one pooled SSH connection: each round trip is ONE remote script that sends every
 * command of a batch through `socat` to the socket, each reply framed as its own base64 section
 * (core/modules/remote.ts), so no reply can end, forge or swallow another one.
 *
 * Everything the host sends back is hostile input: replies are parsed strictly (the exact header of
 * `show servers state`, numbers in range, names of HAProxy's own alphabet) and a reply that is not what
 * HAProxy prints is refused, never guessed at. Names that go INTO a command are checked against the same
 * alphabet first: the runtime API chains commands on ';' and ends one on a newline, so a server called
 * "web1; shutdown frontend www" must never reach the socket.
 */
import { quote } from '../../core/transport/quote.js';
import type { ExecResult } from '../../core/transport/types.js';
import { parseSections, section } from '../../core/modules/remote.js';

/** HAProxy's proxy and server names: letters, digits, '-', '_', '.', ':' (its configuration manual, 2.3). */
const HAPROXY_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

export class HaproxyApiError extends Error {}

export function checkHaproxyName(kind: string, name: string): string {
  if (!HAPROXY_NAME.test(name))
    throw new HaproxyApiError(
      `${kind} ${JSON.stringify(name.slice(0, 80))}: expected HAProxy's name characters (letters, digits, - _ . :)`,
    );
  return name;
}

/** One server as `show servers state` reports it. */
export interface ServerState {
  backend: string;
  server: string;
  address: string;
  /** 0 stopped, 1 starting, 2 running, 3 stopping (SRV_ST_*). */
  opState: number;
  /** Bit field (SRV_ADMF_*): 0x01 forced maint, 0x02 inherited maint, 0x04 config maint, 0x08 drain... */
  adminState: number;
  /** The weight in force (set by `set server ... weight`, an agent, or the configuration). */
  weight: number;
  /** The weight of the configuration (what a reload starts from). */
  initialWeight: number;
  /** The agent-check's port; 0 when the server has no agent-check. */
  agentPort: number;
}

export const ADMIN_MAINT_MASK = 0x01 | 0x02 | 0x04 | 0x10 | 0x20;
export const ADMIN_DRAIN_MASK = 0x08 | 0x40 | 0x80;

/** The server's administrative state in words: "maint", "drain" or "ready". */
export function adminWord(state: ServerState): 'maint' | 'drain' | 'ready' {
  if (state.adminState & ADMIN_MAINT_MASK) return 'maint';
  if (state.adminState & ADMIN_DRAIN_MASK) return 'drain';
  return 'ready';
}

/** The columns cairn reads from `show servers state` (format version 1, HAProxy 1.6 to 3.x). */
const STATE_COLUMNS = [
  'be_name',
  'srv_name',
  'srv_addr',
  'srv_op_state',
  'srv_admin_state',
  'srv_uweight',
  'srv_iweight',
] as const;

function intField(text: string, what: string, min: number, max: number): number {
  if (!/^-?\d{1,10}$/.test(text)) throw new HaproxyApiError(`${what}: expected a whole number, got ${preview(text)}`);
  const value = Number(text);
  if (value < min || value > max)
    throw new HaproxyApiError(`${what}: expected a number from ${min} to ${max}, got ${value}`);
  return value;
}

function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}

/**
 * `show servers state` -> servers. Strict: the first line is the format version "1", the second the
 * "# be_id be_name ..." header, every other non-empty line has exactly the header's number of fields.
 */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines[0]?.trim() !== '1')
    throw new HaproxyApiError(`not "show servers state" output (format version "1" expected): ${preview(text)}`);
  const header = lines[1];
  if (!header?.startsWith('# ')) throw new HaproxyApiError(`"show servers state" has no "# be_id ..." header line`);
  const columns = header.slice(2).trim().split(/ +/);
  const index = new Map(columns.map((c, i) => [c, i]));
  for (const c of STATE_COLUMNS)
    if (!index.has(c)) throw new HaproxyApiError(`"show servers state" lacks the column ${c}`);
  const servers: ServerState[] = [];
  for (const [n, line] of lines.slice(2).entries()) {
    const fields = line.trim().split(/ +/);
    if (fields.length !== columns.length)
      throw new HaproxyApiError(
        `"show servers state" line ${n + 3} has ${fields.length} fields, the header ${columns.length}`,
      );
    const get = (c: string) => fields[index.get(c)!]!;
    const where = `"show servers state" line ${n + 3}`;
    const agent = index.has('srv_agent_port') ? get('srv_agent_port') : '0';
    servers.push({
      backend: checkHaproxyName(`${where}: backend`, get('be_name')),
      server: checkHaproxyName(`${where}: server`, get('srv_name')),
      address: get('srv_addr').slice(0, 255),
      opState: intField(get('srv_op_state'), `${where}: srv_op_state`, 0, 3),
      adminState: intField(get('srv_admin_state'), `${where}: srv_admin_state`, 0, 0xffff),
      weight: intField(get('srv_uweight'), `${where}: srv_uweight`, 0, 256),
      initialWeight: intField(get('srv_iweight'), `${where}: srv_iweight`, 0, 256),
      agentPort: intField(agent, `${where}: srv_agent_port`, 0, 65535),
    });
  }
  return servers;
}

/** One server's line of `show stat`: the fields drain and canary read. */
export interface ServerStat {
  backend: string;
  server: string;
  /** "UP", "DOWN", "DRAIN", "MAINT", "no check", "UP 1/2"... */
  status: string;
  weight: number;
  /** Current sessions (scur). */
  sessions: number;
  /** Sessions since start (stot). */
  totalSessions: number;
}

/** Split one CSV line; haproxy quotes a field that holds a comma or a quote ("" inside stands for "). */
function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

/** One line of `show stat`, by column name ("pxname", "svname", "status", "check_status", ...). */
export type HaproxyStatRow = Record<string, string>;

/**
 * `show stat` output -> rows keyed by the header's column names (the header line starts with "# "; its
 * columns differ between versions, so nothing is looked up by position). Throws when there is no header.
 */
export function parseShowStat(text: string): HaproxyStatRow[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const headerIndex = lines.findIndex((l) => l.startsWith('# '));
  if (headerIndex === -1)
    throw new Error(`not haproxy "show stat" output (no "# pxname,..." header): ${JSON.stringify(text.slice(0, 80))}`);
  const columns = splitCsvLine(lines[headerIndex]!.slice(2));
  const rows: HaproxyStatRow[] = [];
  for (const line of lines.slice(headerIndex + 1)) {
    if (line.trim() === '') continue;
    const values = splitCsvLine(line);
    const row: HaproxyStatRow = {};
    columns.forEach((name, i) => {
      if (name !== '' && name !== '-') row[name] = values[i] ?? '';
    });
    rows.push(row);
  }
  return rows;
}

/** The servers of a `show stat` (not FRONTEND/BACKEND lines), strictly: names, numbers and status checked. */
export function parseServerStats(text: string): ServerStat[] {
  const rows = parseShowStat(text);
  const out: ServerStat[] = [];
  for (const [n, row] of rows.entries()) {
    if (row.svname === 'FRONTEND' || row.svname === 'BACKEND') continue;
    const where = `"show stat" row ${n + 1}`;
    for (const c of ['pxname', 'svname', 'status', 'weight', 'scur', 'stot'])
      if (row[c] === undefined) throw new HaproxyApiError(`${where}: no column ${c}`);
    const status = row.status!;
    if (!/^[A-Za-z0-9 /]{1,40}$/.test(status)) throw new HaproxyApiError(`${where}: bad status ${preview(status)}`);
    out.push({
      backend: checkHaproxyName(`${where}: pxname`, row.pxname!),
      server: checkHaproxyName(`${where}: svname`, row.svname!),
      status,
      weight: intField(row.weight!, `${where}: weight`, 0, 256),
      sessions: intField(row.scur!, `${where}: scur`, 0, 1e9),
      totalSessions: intField(row.stot!, `${where}: stot`, 0, 9.9e9),
    });
  }
  return out;
}

/** A command of the runtime API, typed: only these are ever sent. */
export type RuntimeCommand =
  | { kind: 'show-servers-state'; backend?: string }
  | { kind: 'show-stat' }
  | { kind: 'set-weight'; backend: string; server: string; weight: number }
  | { kind: 'set-state'; backend: string; server: string; state: 'ready' | 'drain' | 'maint' }
  | { kind: 'agent'; backend: string; server: string; enable: boolean };

/** The command line sent to the socket; names and numbers checked first. */
export function commandLine(cmd: RuntimeCommand): string {
  switch (cmd.kind) {
    case 'show-servers-state':
      return cmd.backend === undefined
        ? 'show servers state'
        : `show servers state ${checkHaproxyName('backend', cmd.backend)}`;
    case 'show-stat':
      return 'show stat';
    case 'set-weight':
      if (!Number.isInteger(cmd.weight) || cmd.weight < 0 || cmd.weight > 256)
        throw new HaproxyApiError(`weight ${cmd.weight}: expected a whole number from 0 to 256`);
      return `set server ${serverRef(cmd)} weight ${cmd.weight}`;
    case 'set-state':
      return `set server ${serverRef(cmd)} state ${cmd.state}`;
    case 'agent':
      return `${cmd.enable ? 'enable' : 'disable'} agent ${serverRef(cmd)}`;
  }
}

function serverRef(cmd: { backend: string; server: string }): string {
  return `${checkHaproxyName('backend', cmd.backend)}/${checkHaproxyName('server', cmd.server)}`;
}

/** Runs one script on the load balancer (its pooled SSH connection). */
export type RemoteExec = (script: string) => Promise<ExecResult>;

/** A batch's replies, in command order: the text HAProxy answered, or why the socket could not be reached. */
export interface RuntimeReply {
  command: string;
  ok: boolean;
  text: string;
}

/** The runtime API of one load balancer. */
export class HaproxyRuntime {
  constructor(
    private readonly exec: RemoteExec,
    /** The admin-level stats socket on the host (haproxy_stats_socket). */
    private readonly socket: string,
    /** For messages: the load balancer's inventory name. */
    readonly host: string,
  ) {
    if (!socket.startsWith('/') || socket.includes('\n'))
      throw new HaproxyApiError(`${host}: the stats socket must be an absolute path, got ${preview(socket)}`);
  }

  /**
   * Send the commands in ONE round trip (one remote script, one socat per command), each reply framed.
   * A command the socket answered with anything but its success reply is `ok: false` with that text.
   */
  async batch(commands: RuntimeCommand[]): Promise<RuntimeReply[]> {
    const lines = commands.map(commandLine);
    const target = quote(`UNIX-CONNECT:${this.socket}`);
    const script = lines
      .map((line, i) =>
        // The exit status comes first on its own line: the reply, whatever it holds, cannot forge it.
        section(
          `r${i}`,
          `out=$(printf '%s\\n' ${quote(line)} | socat -t 5 stdio ${target} 2>&1); rc=$?`,
          `printf '%s\\n%s' "$rc" "$out"`,
        ),
      )
      .join('\n');
    const res = await this.exec(script);
    if (res.code !== 0)
      throw new HaproxyApiError(
        `${this.host}: the runtime API script failed (exit ${res.code}): ${preview(res.stderr)}`,
      );
    let sections: Map<string, string>;
    try {
      sections = parseSections(res.stdout);
    } catch (err) {
      throw new HaproxyApiError(`${this.host}: ${(err as Error).message}`);
    }
    return lines.map((command, i) => {
      const payload = sections.get(`r${i}`);
      if (payload === undefined) throw new HaproxyApiError(`${this.host}: no reply to "${command}"`);
      const nl = payload.indexOf('\n');
      const rc = nl === -1 ? payload : payload.slice(0, nl);
      const text = nl === -1 ? '' : payload.slice(nl + 1);
      if (!/^\d{1,3}$/.test(rc)) throw new HaproxyApiError(`${this.host}: malformed reply frame to "${command}"`);
      if (rc !== '0') return { command, ok: false, text: `socat exit ${rc}: ${text.trim().slice(0, 300)}` };
      const setter = !command.startsWith('show ');
      // A setter succeeds silently; any text is HAProxy's refusal ("No such server.", "Absolute weight ...").
      return { command, ok: setter ? text.trim() === '' : text.trim() !== '', text };
    });
  }

  /** Send setters in one round trip; throws naming every refused command. */
  async apply(commands: RuntimeCommand[]): Promise<void> {
    if (!commands.length) return;
    const replies = await this.batch(commands);
    const refused = replies.filter((r) => !r.ok);
    if (refused.length)
      throw new HaproxyApiError(
        `${this.host}: HAProxy refused ${refused.map((r) => `"${r.command}": ${preview(r.text.trim())}`).join('; ')}`,
      );
  }

  /** Setters (if any) then both views, in ONE round trip. */
  async applyAndRead(
    commands: RuntimeCommand[],
  ): Promise<{ refused: RuntimeReply[]; servers: ServerState[]; stats: ServerStat[] }> {
    const replies = await this.batch([...commands, { kind: 'show-servers-state' }, { kind: 'show-stat' }]);
    const [state, stat] = replies.slice(-2) as [RuntimeReply, RuntimeReply];
    for (const r of [state, stat])
      if (!r.ok) throw new HaproxyApiError(`${this.host}: "${r.command}" failed: ${preview(r.text.trim())}`);
    try {
      return {
        refused: replies.slice(0, -2).filter((r) => !r.ok),
        servers: parseServersState(state.text),
        stats: parseServerStats(stat.text),
      };
    } catch (err) {
      throw new HaproxyApiError(`${this.host}: ${(err as Error).message}`);
    }
  }

  async read(): Promise<{ servers: ServerState[]; stats: ServerStat[] }> {
    const { servers, stats } = await this.applyAndRead([]);
    return { servers, stats };
  }
}
