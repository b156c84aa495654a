/**
 * The monitoring drills' parsers, on real output: Alertmanager's API v2 and webhook bodies and the alert
 * sink's log as captured on the lab (test/fixtures/monitoring/SOURCES.md), Prometheus durations as its
 * documentation writes them. And the alert sink program itself (roles/prometheus/files/cairn-alert-sink.py),
 * run with python3 on loopback: the token is checked, and what it records is what the drills read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  findNotification,
  matchingAlerts,
  parseAlertmanagerAlerts,
  parsePromDuration,
  parseSinkLog,
} from '../../runner/features/drills/monitoring.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'monitoring');
const fixture = (name: string) => readFileSync(join(fixtures, name), 'utf8');

describe('parsePromDuration', () => {
  // https://prometheus.io/docs/prometheus/latest/querying/basics/#time-durations: "5h", "1h30m", "5m",
  // "10s"; units ms, s, m, h, d, w (7d), y (365d), combined largest first.
  it.each([
    ['5h', 5 * 3600],
    ['1h30m', 5400],
    ['5m', 300],
    ['10s', 10],
    ['30s', 30],
    ['500ms', 0.5],
    ['1w', 7 * 86400],
    ['1y', 365 * 86400],
    ['2d12h', 2.5 * 86400],
    ['1m30s500ms', 90.5],
    ['0s', 0],
    ['0', 0],
  ])('%s is %d s', (text, seconds) => {
    expect(parsePromDuration(text)).toBeCloseTo(seconds, 6);
  });

  it.each(['', '5', '1.5h', '5x', '30 s', '1m1h', '1s1s', '-5s', 's'])('refuses %j', (text) => {
    expect(() => parsePromDuration(text)).toThrow();
  });
});

describe('Alertmanager API v2 alerts', () => {
  it('reads the captured HostDown alert', () => {
    const alerts = parseAlertmanagerAlerts(fixture('am-v2-alerts-hostdown.json'));
    expect(alerts).toEqual([
      {
        alertname: 'HostDown',
        labels: { alertname: 'HostDown', instance: 'web2', job: 'node', severity: 'critical', tier: 'critical' },
        state: 'active',
        startsAt: '2026-11-21T13:34:55.724Z',
        endsAt: '2026-11-21T13:38:55.724Z',
        fingerprint: '516bc6414a37f033',
      },
    ]);
  });

  it('an empty list is no alert', () => {
    expect(parseAlertmanagerAlerts('[]')).toEqual([]);
  });

  it.each([
    ['not JSON', 'did not answer JSON'],
    ['{"alerts": []}', 'a list of alerts'],
    ['[{"status": {}}]', 'alert 1 of /api/v2/alerts has no labels'],
  ])('refuses %j', (body, message) => {
    expect(() => parseAlertmanagerAlerts(body)).toThrow(message);
  });

  it('matches alerts by name and a subset of labels', () => {
    const alerts = parseAlertmanagerAlerts(fixture('am-v2-alerts-hostdown.json'));
    expect(matchingAlerts(alerts, 'HostDown', { instance: 'web2', job: 'node' })).toHaveLength(1);
    expect(matchingAlerts(alerts, 'HostDown', {})).toHaveLength(1);
    expect(matchingAlerts(alerts, 'HostDown', { instance: 'web1' })).toHaveLength(0);
    expect(matchingAlerts(alerts, 'ServiceDown', { instance: 'web2' })).toHaveLength(0);
    expect(matchingAlerts(alerts, 'HostDown', { instance: 'web2', name: 'nginx.service' })).toHaveLength(0);
  });
});

describe('the alert sink log', () => {
  it('reads every notification of the captured log in order', () => {
    const records = parseSinkLog(fixture('sink-alerts.jsonl'));
    expect(records.map((r) => `${r.status} ${r.alerts[0]?.labels.alertname} ${r.alerts[0]?.labels.instance}`)).toEqual([
      'firing ServiceDown localhost:9100',
      'firing HostDown web1',
      'resolved HostDown web1',
      'firing ServiceDown web1',
      'resolved ServiceDown web1',
      'resolved ServiceDown localhost:9100',
      'firing HostDown web2',
    ]);
    expect(records[1]!.received).toBeCloseTo(1795267970.7289128, 3);
  });

  it('finds the firing and the resolved notification of one alert', () => {
    const records = parseSinkLog(fixture('sink-alerts.jsonl'));
    expect(findNotification(records, 'HostDown', { instance: 'web1' }, 'firing')).toBe(records[1]);
    expect(findNotification(records, 'HostDown', { instance: 'web1' }, 'resolved')).toBe(records[2]);
    expect(findNotification(records, 'ServiceDown', { instance: 'web1', name: 'nginx.service' }, 'resolved')).toBe(
      records[4],
    );
    // Only what comes after a point counts: the drill slices the log at the count it saw before.
    expect(findNotification(records.slice(3), 'HostDown', { instance: 'web1' }, 'firing')).toBeUndefined();
    expect(findNotification(records, 'HostDown', { instance: 'web2' }, 'resolved')).toBeUndefined();
  });

  it('skips a torn last line (being written) but not a bad line before it', () => {
    const text = fixture('sink-alerts.jsonl');
    expect(parseSinkLog(`${text}{"received": 17952`)).toHaveLength(7);
    expect(() => parseSinkLog(`{"recei\n${text}`)).toThrow('line 1 is not JSON');
  });
});

const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));
if (!python) throw new Error('python3 is not installed: apt-get install -y python3 (scripts/test-prereqs.sh does it)');
const sinkProgram = join(import.meta.dirname, '..', '..', 'roles', 'prometheus', 'files', 'cairn-alert-sink.py');

function post(
  port: number,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolvePost, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolvePost({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('the alert sink program (python3 on 127.0.0.1)', () => {
  let dir: string;
  let child: ChildProcess;
  let port = 0;
  const token = 'lab-token-for-the-unit-test';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-sink-'));
    writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    child = spawn(python!, [sinkProgram, '127.0.0.1', '0'], {
      env: { PATH: process.env.PATH ?? '', CREDENTIALS_DIRECTORY: dir, STATE_DIRECTORY: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    port = await new Promise<number>((resolvePort, reject) => {
      let err = '';
      const timer = setTimeout(() => reject(new Error(`the sink did not start: ${err}`)), 10_000);
      child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(err);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      });
      child.on('exit', (code) => reject(new Error(`the sink exited (${code}): ${err}`)));
    });
  });

  afterAll(() => {
    if (child?.pid) process.kill(child.pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a missing or wrong bearer token and records nothing', async () => {
    const body = fixture('am-webhook-firing.json');
    expect((await post(port, '/alerts', body, {})).status).toBe(401);
    expect((await post(port, '/alerts', body, { authorization: `Bearer ${token}x` })).status).toBe(401);
    expect((await post(port, '/alerts', body, { authorization: token })).status).toBe(401);
    expect(existsSync(join(dir, 'alerts.jsonl'))).toBe(false);
  });

  it("records Alertmanager's firing and resolved notifications as the drills read them", async () => {
    for (const name of ['am-webhook-firing.json', 'am-webhook-resolved.json']) {
      const res = await post(port, '/alerts', fixture(name), { authorization: `Bearer ${token}` });
      expect(res).toEqual({ status: 200, text: 'recorded\n' });
    }
    const log = readFileSync(join(dir, 'alerts.jsonl'), 'utf8');
    const records = parseSinkLog(log);
    expect(records.map((r) => r.status)).toEqual(['firing', 'resolved']);
    expect(findNotification(records, 'HostDown', { instance: 'web2', job: 'node' }, 'firing')).toBe(records[0]);
    expect(findNotification(records, 'HostDown', { instance: 'web2' }, 'resolved')).toBe(records[1]);
    // The whole body is kept too, as Alertmanager sent it.
    const first = JSON.parse(log.split('\n')[0]!) as { payload: unknown };
    expect(first.payload).toEqual(JSON.parse(fixture('am-webhook-firing.json')));
  });

  it('refuses a body that is not JSON', async () => {
    expect((await post(port, '/alerts', 'not json', { authorization: `Bearer ${token}` })).status).toBe(400);
  });
});
