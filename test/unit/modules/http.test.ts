/**
 * http: request building, the curl script and reading its output. CURL_OK is the real output of curlScript()
 * run with /bin/sh on the cairn development container (curl 7.88.1) against `python3 -m http.server` on
 * 127.0.0.1 serving a health.json file; CURL_REFUSED is the same against a closed port.
 */
import { describe, expect, it } from 'vitest';
import {
  buildRequest,
  curlConfig,
  curlInput,
  curlScript,
  httpModule,
  parseResponseHeaders,
  readResponse,
} from '../../../runner/core/modules/http.js';
import { formatSection } from '../../../runner/core/modules/remote.js';
import { FakeConnection, contextFor } from '../../helpers/fake-connection.js';

// Captured with the earlier probe layout (headers and body base64 inside their sections); the values are the
// same, now each section framed as the current curlScript prints it.
const CURL_OK = [
  formatSection('rc', 'curl_rc=0\n'),
  formatSection('meta', '200 0.009111 http://127.0.0.1:38211/health.json'),
  formatSection('err', ''),
  formatSection(
    'headers',
    Buffer.from(
      'SFRUUC8xLjAgMjAwIE9LDQpTZXJ2ZXI6IFNpbXBsZUhUVFAvMC42IFB5dGhvbi8zLjExLjcNCkRhdGU6IFNhdCwgMjEgTm92IDIwMjYgMTM6MDg6MDEgR01UDQpDb250ZW50LXR5cGU6IGFwcGxpY2F0aW9uL2pzb24NCkNvbnRlbnQtTGVuZ3RoOiAyNQ0KTGFzdC1Nb2RpZmllZDogU2F0LCAyMSBOb3YgMjAyNiAxMzowNzo1OCBHTVQNCg0K',
      'base64',
    ),
  ),
  formatSection('body', Buffer.from('eyJzdGF0dXMiOiJvayIsIm5vZGVzIjozfQ==', 'base64')),
].join('');
const CURL_REFUSED = [
  formatSection('rc', 'curl_rc=7\n'),
  formatSection('meta', '000 0.000132 http://127.0.0.1:40311/'),
  formatSection('err', "curl: (7) Failed to connect to 127.0.0.1 port 40311 after 0 ms: Couldn't connect to server\n"),
  formatSection('headers', ''),
  formatSection('body', ''),
].join('');

describe('buildRequest', () => {
  it('json bodies get a content type; GET follows redirects by default (safe), POST does not', () => {
    const post = buildRequest({ url: 'http://127.0.0.1/api', method: 'post', body: { a: 1 }, body_format: 'json' });
    expect(post).toMatchObject({
      method: 'POST',
      body: '{"a":1}',
      headers: [['Content-Type', 'application/json']],
      follow: false,
    });
    expect(buildRequest({ url: 'http://127.0.0.1/' }).follow).toBe(true);
    expect(buildRequest({ url: 'http://127.0.0.1/', follow_redirects: 'none' }).follow).toBe(false);
    expect(
      buildRequest({ url: 'http://x/', method: 'PUT', body: { k: 'v w' }, body_format: 'form-urlencoded' }).body,
    ).toBe('k=v+w');
  });

  it('refuses header injection and odd URLs', () => {
    expect(() => buildRequest({ url: 'http://x/', headers: { 'X-A': 'v\r\nX-B: evil' } })).toThrow(/line break/);
    expect(() => buildRequest({ url: 'file:///etc/shadow' })).toThrow(/http:\/\/ or https:\/\//);
  });
});

describe('curlScript', () => {
  it('the URL and the headers go to curl through a config file on stdin, never into the script or argv', () => {
    const url = "http://127.0.0.1/$(touch /tmp/x)?q='1'&token=s3cr\"et\\";
    const request = buildRequest({ url, headers: { Authorization: 'Bearer a\'b "c" $(id) \\' } });
    const script = curlScript(request);
    expect(script).not.toContain('touch');
    expect(script).not.toContain('Bearer');
    expect(script).not.toContain('token');
    // curl's config syntax: double quotes, backslash and double quote escaped.
    expect(curlConfig(request)).toBe(
      'url = "http://127.0.0.1/$(touch /tmp/x)?q=\'1\'&token=s3cr\\"et\\\\"\nheader = "Authorization: Bearer a\'b \\"c\\" $(id) \\\\"\n',
    );
    expect(curlInput({ ...request, body: 'BODY' }).toString()).toBe(`${curlConfig(request)}BODY`);
    // The config file is created in a private folder under umask 077 before anything is written to it.
    expect(script.indexOf('umask 077')).toBeLessThan(script.indexOf('mktemp -d'));
    expect(script).toContain(`head -c ${Buffer.byteLength(curlConfig(request))} > "$d/request"`);
  });

  it('HEAD uses -I; a body is read from stdin', () => {
    expect(curlScript(buildRequest({ url: 'http://x/', method: 'HEAD' }))).toContain('curl -sS --max-time 30 -I -L');
    expect(curlScript(buildRequest({ url: 'http://x/', method: 'POST', body: 'x' }))).toContain('--data-binary @-');
  });

  it("ca_path (Ansible's uri) checks the chain against that CA file, quoted", () => {
    const script = curlScript(buildRequest({ url: 'https://x/', ca_path: "/etc/my ca's.pem" }));
    expect(script).toContain(`-L --max-redirs 10 --cacert '/etc/my ca'\\''s.pem' --config`);
  });
});

describe('readResponse', () => {
  it('status, json, content and headers from a real response', () => {
    const { data, failed } = readResponse(CURL_OK, { url: 'http://127.0.0.1:38211/health.json', return_content: true });
    expect(failed).toBeUndefined();
    expect(data).toMatchObject({
      status: 200,
      elapsed_ms: 9,
      json: { status: 'ok', nodes: 3 },
      content: '{"status":"ok","nodes":3}',
      content_type: 'application/json',
    });
    expect((data.headers as Record<string, string>)['server']).toBe('SimpleHTTP/0.6 Python/3.11.7');
  });

  it('fails on status and body_contains, and on a refused connection', () => {
    expect(readResponse(CURL_OK, { url: 'u', status_code: [201, 204] }).failed).toBe(
      'Status code was 200 and not [201, 204]',
    );
    expect(readResponse(CURL_OK, { url: 'u', body_contains: 'degraded' }).failed).toBe(
      'the response from u does not contain "degraded"',
    );
    expect(readResponse(CURL_REFUSED, { url: 'u' })).toMatchObject({
      failed:
        "Request failed: curl: (7) Failed to connect to 127.0.0.1 port 40311 after 0 ms: Couldn't connect to server",
      data: { status: -1 },
    });
  });

  it('takes the headers of the last response after redirects', () => {
    expect(
      parseResponseHeaders('HTTP/1.1 301 Moved\r\nLocation: /b\r\n\r\nHTTP/1.1 200 OK\r\nX-Final: yes\r\n\r\n'),
    ).toEqual({ 'x-final': 'yes' });
  });
});

describe('http module', () => {
  it('GET runs in check (read-only) in one round trip; apply does not repeat it', async () => {
    const conn = new FakeConnection([{ match: 'curl', reply: { stdout: CURL_OK } }]);
    const ctx = contextFor(conn);
    const plan = await httpModule.check(ctx, { url: 'http://127.0.0.1:38211/health.json' });
    expect(plan).toMatchObject({ changed: false, data: { status: 200 } });
    expect(conn.calls).toHaveLength(1);
  });

  it('POST is planned in check and sent by apply, body on stdin', async () => {
    const conn = new FakeConnection([{ match: 'curl', reply: { stdout: CURL_OK } }]);
    const ctx = contextFor(conn);
    const args = { url: 'http://127.0.0.1/api', method: 'POST', body: { drain: true }, body_format: 'json' as const };
    const plan = await httpModule.check(ctx, args);
    expect(plan).toMatchObject({ changed: true, actions: ['POST http://127.0.0.1/api'] });
    expect(conn.calls).toHaveLength(0);
    expect(await httpModule.apply(ctx, args, plan)).toMatchObject({ changed: true, data: { status: 200 } });
    expect(String(conn.calls[0]!.opts.stdin)).toBe(
      'url = "http://127.0.0.1/api"\nheader = "Content-Type: application/json"\n{"drain":true}',
    );
  });

  it('a host without curl fails clearly', async () => {
    const conn = new FakeConnection([
      {
        match: 'curl',
        reply: {
          code: 90,
          stderr: 'curl is not installed on this host; the http module runs curl on the target (apt: curl)\n',
        },
      },
    ]);
    expect((await httpModule.check(contextFor(conn), { url: 'http://127.0.0.1/' })).failed).toBe(
      'curl is not installed on this host; the http module runs curl on the target (apt: curl)',
    );
  });
});
