/**
 * http (alias uri): an HTTP request made ON THE TARGET with curl, in one round trip, as Ansible's uri
 * module. GET and HEAD are read-only and run in check mode; other methods are planned as changes and sent
 * by apply. The response body travels back base64-encoded so any content survives.
 */
import { quote } from '../transport/quote.js';
import { argError } from './attributes.js';
import { failureText, parseKeyValues, parseSections, runScript, section } from './remote.js';
import type { Module, ModuleContext, ModuleResult, Planned } from './types.js';

export interface HttpArgs {
  url: string;
  method?: string;
  body?: unknown;
  body_format?: 'json' | 'raw' | 'form-urlencoded';
  headers?: Record<string, string | number | boolean>;
  /** A list of codes; Ansible's list type also takes them comma-separated in one string ("200,403"). */
  status_code?: number | number[] | string;
  return_content?: boolean;
  body_contains?: string;
  timeout?: number;
  follow_redirects?: boolean | 'all' | 'safe' | 'none' | 'yes' | 'no' | 'urllib2';
  validate_certs?: boolean;
  /**
   * As Ansible's uri: a PEM file of CA certificates (on the host that runs the request) to check the server's
   * chain against; "" (as unset) keeps the system's store, so a role can pass its variable through.
   */
  ca_path?: string;
}

/** Response bodies larger than this are cut (and said to be). */
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
const NO_CURL = 90;

export interface HttpRequest {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body?: string;
  follow: boolean;
  timeoutS: number;
  insecure: boolean;
  caPath?: string;
}

/** Turn the module's arguments into one request (pure; table-tested). Throws an Error on bad input. */
export function buildRequest(args: HttpArgs): HttpRequest {
  const method = (args.method ?? 'GET').toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new Error(`method ${JSON.stringify(args.method)} is not an HTTP method`);
  if (!/^https?:\/\//i.test(args.url))
    throw new Error(`url must start with http:// or https://, got ${JSON.stringify(args.url)}`);
  const headers: Array<[string, string]> = [];
  for (const [name, value] of Object.entries(args.headers ?? {})) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
      throw new Error(`header name ${JSON.stringify(name)} is not a valid HTTP header name`);
    const text = String(value);
    if (/[\r\n]/.test(text)) throw new Error(`header ${name} contains a line break`);
    headers.push([name, text]);
  }
  const hasHeader = (name: string): boolean => headers.some(([n]) => n.toLowerCase() === name.toLowerCase());
  let body: string | undefined;
  const format = args.body_format ?? 'raw';
  if (args.body !== undefined) {
    if (format === 'json') {
      body = typeof args.body === 'string' ? args.body : JSON.stringify(args.body);
      if (!hasHeader('Content-Type')) headers.push(['Content-Type', 'application/json']);
    } else if (format === 'form-urlencoded') {
      if (typeof args.body === 'string') body = args.body;
      else if (args.body && typeof args.body === 'object' && !Array.isArray(args.body)) {
        body = new URLSearchParams(
          Object.entries(args.body as Record<string, unknown>).map(([k, v]): [string, string] => [k, String(v)]),
        ).toString();
      } else throw new Error('body_format form-urlencoded needs a mapping or a string');
      if (!hasHeader('Content-Type')) headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
    } else {
      body = typeof args.body === 'string' ? args.body : JSON.stringify(args.body);
    }
  }
  const redirects = args.follow_redirects ?? 'safe';
  const safe = method === 'GET' || method === 'HEAD';
  const follow =
    redirects === true ||
    redirects === 'all' ||
    redirects === 'yes' ||
    redirects === 'urllib2' ||
    (redirects === 'safe' && safe);
  const request: HttpRequest = {
    method,
    url: args.url,
    headers,
    follow,
    timeoutS: args.timeout ?? 30,
    insecure: args.validate_certs === false,
  };
  if (body !== undefined) request.body = body;
  if (args.ca_path !== undefined && args.ca_path !== '') request.caPath = args.ca_path;
  return request;
}

/**
 * curl's config file syntax for a value: double-quoted, with backslash and double quote escaped (line breaks
 * are refused in buildRequest, so a value is always one line).
 */
export function curlConfigValue(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * What curl reads from its config file: the URL (it may carry a token or user:password) and every header.
 * These are the request's secrets, so they never go into curl's argv, where any user of the host sees them
 * in `ps` (in check mode too, since GET runs there).
 */
export function curlConfig(request: HttpRequest): string {
  const lines = [`url = ${curlConfigValue(request.url)}`];
  for (const [name, value] of request.headers) lines.push(`header = ${curlConfigValue(`${name}: ${value}`)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The curl script for a request (pure; table-tested). Its standard input is curlInput(): the config file's
 * bytes, then the body. The config goes to a file in a fresh private folder (mktemp -d: 0700, owned by the
 * user running curl; umask 077 for the file itself), created before a byte of it is written; the body is
 * read by curl from the rest of standard input. The folder is removed on every exit.
 */
export function curlScript(request: HttpRequest): string {
  const configBytes = Buffer.byteLength(curlConfig(request));
  const words = ['curl', '-sS', '--max-time', String(request.timeoutS)];
  words.push(request.method === 'HEAD' ? '-I' : '-X', ...(request.method === 'HEAD' ? [] : [request.method]));
  if (request.follow) words.push('-L', '--max-redirs', '10');
  if (request.insecure) words.push('-k');
  if (request.caPath !== undefined) words.push('--cacert', request.caPath);
  if (request.body !== undefined) words.push('--data-binary', '@-');
  const curl = `${words.map(quote).join(' ')} --config "$d/request" -o "$d/body" -D "$d/headers" -w '%{http_code} %{time_total} %{url_effective}'`;
  return [
    `command -v curl >/dev/null 2>&1 || { echo 'curl is not installed on this host; the http module runs curl on the target (apt: curl)' >&2; exit ${NO_CURL}; }`,
    'umask 077',
    'd=$(mktemp -d) || exit 91',
    `trap 'rm -rf -- "$d"' EXIT`,
    `head -c ${configBytes} > "$d/request" && [ "$(wc -c < "$d/request")" -eq ${configBytes} ] || { echo 'the request did not arrive whole' >&2; exit 92; }`,
    `${curl} > "$d/meta" 2> "$d/err"${request.body === undefined ? ' < /dev/null' : ''}`,
    'rc=$?',
    section('rc', 'echo "curl_rc=$rc"'),
    section('meta', 'cat "$d/meta"'),
    section('err', 'cat "$d/err"'),
    section('headers', 'if [ -f "$d/headers" ]; then cat "$d/headers"; fi'),
    section('body', `if [ -f "$d/body" ]; then head -c ${MAX_RESPONSE_BYTES} "$d/body"; fi`),
  ].join('\n');
}

/** The standard input of curlScript(): the config file, then the body. */
export function curlInput(request: HttpRequest): Buffer {
  return Buffer.concat([Buffer.from(curlConfig(request)), Buffer.from(request.body ?? '')]);
}

/** The last response's headers (after redirects), names lower-cased. */
export function parseResponseHeaders(raw: string): Record<string, string> {
  const blocks = raw.split(/\r?\n\r?\n/).filter((block) => /^HTTP\//.test(block.trim()));
  const last = blocks[blocks.length - 1] ?? '';
  const headers: Record<string, string> = {};
  for (const line of last.split(/\r?\n/).slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** Read the curl script's output into the registered result, and whether the task fails. */
export function readResponse(stdout: string, args: HttpArgs): { data: Record<string, unknown>; failed?: string } {
  const sections = parseSections(stdout);
  const curlRc = Number(parseKeyValues(sections.get('rc') ?? '').get('curl_rc') ?? '-1');
  const [statusText = '0', timeText = '0', ...urlParts] = (sections.get('meta') ?? '').trim().split(' ');
  const status = Number(statusText);
  const data: Record<string, unknown> = {
    status,
    url: urlParts.join(' ') || args.url,
    elapsed_ms: Math.round(Number(timeText) * 1000),
  };
  if (curlRc !== 0) {
    const msg = `Request failed: ${(sections.get('err') ?? '').trim() || `curl exit code ${curlRc}`}`;
    return { data: { ...data, status: -1, msg }, failed: msg };
  }
  const headers = parseResponseHeaders(sections.get('headers') ?? '');
  data.headers = headers;
  data.content_type = headers['content-type'] ?? '';
  const content = sections.get('body') ?? '';
  if (args.return_content) data.content = content;
  if (/json/i.test(String(data.content_type)) && content !== '') {
    try {
      data.json = JSON.parse(content);
    } catch {
      // Not JSON after all: content (when asked for) still carries it.
    }
  }
  const wanted =
    args.status_code === undefined
      ? [200]
      : Array.isArray(args.status_code)
        ? args.status_code
        : typeof args.status_code === 'string'
          ? args.status_code.split(',').map((code) => Number(code.trim()))
          : [args.status_code];
  if (!wanted.includes(status)) {
    const msg = `Status code was ${status} and not [${wanted.join(', ')}]`;
    return { data: { ...data, msg }, failed: msg };
  }
  if (args.body_contains !== undefined && !content.includes(args.body_contains)) {
    const msg = `the response from ${args.url} does not contain ${JSON.stringify(args.body_contains)}`;
    return { data: { ...data, msg }, failed: msg };
  }
  return { data: { ...data, msg: `OK (${status})` } };
}

async function send(
  ctx: ModuleContext,
  args: HttpArgs,
  request: HttpRequest,
): Promise<{ data: Record<string, unknown>; failed?: string }> {
  const res = await runScript(ctx, curlScript(request), {
    stdin: curlInput(request),
    timeoutMs: (request.timeoutS + 15) * 1000,
  });
  if (res.code === NO_CURL) return { data: { status: -1 }, failed: failureText(res) };
  if (res.code !== 0)
    return { data: { status: -1 }, failed: `http request to ${args.url} could not be run: ${failureText(res)}` };
  return readResponse(res.stdout, args);
}

function requestOf(ctx: ModuleContext, args: HttpArgs): HttpRequest {
  try {
    return buildRequest(args);
  } catch (err) {
    throw argError(ctx, err instanceof Error ? err.message : String(err));
  }
}

export const httpModule: Module<HttpArgs, HttpRequest> = {
  name: 'http',
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', minLength: 1 },
      method: { type: 'string', minLength: 1 },
      body: {},
      body_format: { enum: ['json', 'raw', 'form-urlencoded'] },
      headers: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
      status_code: {
        anyOf: [
          { type: 'integer' },
          { type: 'array', items: { type: 'integer' }, minItems: 1 },
          { type: 'string', pattern: '^\\s*[0-9]+(\\s*,\\s*[0-9]+)*\\s*$' },
        ],
      },
      return_content: { type: 'boolean' },
      body_contains: { type: 'string' },
      timeout: { type: 'integer', minimum: 1 },
      follow_redirects: { enum: [true, false, 'all', 'safe', 'none', 'yes', 'no', 'urllib2'] },
      validate_certs: { type: 'boolean' },
      ca_path: { type: 'string' },
    },
  },

  async check(ctx, args): Promise<Planned<HttpRequest>> {
    const request = requestOf(ctx, args);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return { changed: true, actions: [`${request.method} ${request.url}`], state: request };
    }
    const { data, failed } = await send(ctx, args, request);
    return failed !== undefined ? { changed: false, actions: [], data, failed } : { changed: false, actions: [], data };
  },

  async apply(ctx, args, plan): Promise<ModuleResult> {
    if (!plan.state) return { changed: false, data: plan.data ?? {} };
    const { data, failed } = await send(ctx, args, plan.state);
    return failed !== undefined ? { changed: true, failed: true, msg: failed, data } : { changed: true, data };
  },
};
