/**
 * `ceph health detail` parsers, table-driven over real outputs: the Ceph documentation's examples (older and
 * current text formats, HEALTH_WARN, HEALTH_ERR, a muted check) and captures from the lab's cluster, where
 * the text and the JSON of the same moment must say the same thing.
 */
import { readFileSync } from 'node:fs';
import { frameSections } from '../helpers/fake-connection.js';
import { describe, expect, it } from 'vitest';
import {
  activeChecks,
  CephOutputError,
  describeHealth,
  parseHealthDetailText,
  parseHealthJson,
  parseJsonOutput,
  type HealthStatus,
} from '../../runner/core/modules/ceph/health.js';
import { parseSections } from '../../runner/core/modules/remote.js';

/** A fixture's body: what follows the "---" line under its source comment. */
function fixture(name: string): string {
  const text = readFileSync(new URL(`../fixtures/ceph/${name}`, import.meta.url), 'utf8');
  const at = text.indexOf('\n---\n');
  if (at === -1) throw new Error(`fixture ${name} has no "---" line after its source`);
  // Captured in the readable layout (one marker line, then the section's text); framed as the host prints it now.
  return frameSections(text.slice(at + 5));
}

/** One section of a probe capture, without its "::rc=" trailer. */
function probeSection(name: string, section: string): string {
  const body = parseSections(fixture(name)).get(section);
  if (body === undefined) throw new Error(`${name} has no section ${section}`);
  return body
    .split('\n')
    .filter((l) => !l.startsWith('::rc='))
    .join('\n');
}

interface TextCase {
  file: string;
  status: HealthStatus;
  checks: Array<{ code: string | null; summary: string; severity?: HealthStatus; muted?: boolean; detail?: number }>;
  mutes?: string[];
  unattributed?: string[];
  active: number;
}

const TEXT_CASES: TextCase[] = [
  {
    file: 'docs-health-detail-err-full-osds.txt',
    status: 'HEALTH_ERR',
    checks: [
      { code: null, summary: '1 full osd(s)' },
      { code: null, summary: '1 backfillfull osd(s)' },
      { code: null, summary: '1 nearfull osd(s)' },
    ],
    unattributed: ['osd.3 is full at 97%', 'osd.4 is backfill full at 91%', 'osd.2 is near full at 87%'],
    active: 3,
  },
  {
    file: 'docs-health-detail-err-pgs-down.txt',
    status: 'HEALTH_ERR',
    checks: [
      { code: null, summary: '7 pgs degraded' },
      { code: null, summary: '12 pgs down' },
      { code: null, summary: '12 pgs peering' },
      { code: null, summary: '1 pgs recovering' },
      { code: null, summary: '6 pgs stuck unclean' },
      { code: null, summary: '114/3300 degraded (3.455%)' },
      { code: null, summary: '1/3 in osds are down' },
    ],
    unattributed: [
      '...',
      'pg 0.5 is down+peering',
      'pg 1.4 is down+peering',
      '...',
      'osd.1 is down since epoch 69, last address 192.168.106.220:6801/8651',
    ],
    active: 7,
  },
  {
    file: 'docs-health-detail-err-inconsistent.txt',
    status: 'HEALTH_ERR',
    checks: [
      { code: null, summary: '1 pgs inconsistent' },
      { code: null, summary: '2 scrub errors' },
    ],
    unattributed: ['pg 0.6 is active+clean+inconsistent, acting [0,1,2]', '2 scrub errors'],
    active: 2,
  },
  {
    file: 'docs-health-detail-warn-osd-down.txt',
    status: 'HEALTH_WARN',
    checks: [{ code: null, summary: '1/3 in osds are down', severity: 'HEALTH_WARN' }],
    unattributed: ['osd.0 is down since epoch 23, last address 192.168.106.220:6800/11080'],
    active: 1,
  },
  {
    file: 'docs-health-detail-warn-slow-ping.txt',
    status: 'HEALTH_WARN',
    checks: [
      {
        code: 'OSD_SLOW_PING_TIME_BACK',
        summary: 'Slow OSD heartbeats on back (longest 1118.001ms)',
        severity: 'HEALTH_WARN',
        detail: 4,
      },
    ],
    unattributed: [],
    active: 1,
  },
  {
    file: 'docs-health-detail-ok-muted.txt',
    status: 'HEALTH_OK',
    checks: [{ code: 'OSD_DOWN', summary: '1 osds down', muted: true, detail: 1 }],
    mutes: ['OSD_DOWN'],
    unattributed: [],
    active: 0,
  },
];

describe("parseHealthDetailText: the Ceph documentation's examples", () => {
  it.each(TEXT_CASES)('$file', (c) => {
    const report = parseHealthDetailText(fixture(c.file));
    expect(report.status).toBe(c.status);
    expect(report.checks.map((k) => ({ code: k.code, summary: k.summary }))).toEqual(
      c.checks.map((k) => ({ code: k.code, summary: k.summary })),
    );
    c.checks.forEach((want, i) => {
      const got = report.checks[i]!;
      if (want.severity) expect(got.severity).toBe(want.severity);
      expect(got.muted).toBe(want.muted ?? false);
      if (want.detail !== undefined) expect(got.detail).toHaveLength(want.detail);
    });
    expect(report.mutes).toEqual(c.mutes ?? []);
    if (c.unattributed) expect(report.unattributed).toEqual(c.unattributed);
    expect(activeChecks(report)).toHaveLength(c.active);
  });

  it('keeps a detail line with its check', () => {
    const report = parseHealthDetailText(fixture('docs-health-detail-warn-slow-ping.txt'));
    expect(report.checks[0]!.detail[0]).toBe(
      'Slow OSD heartbeats on back from osd.0 [dc1,rack1] to osd.1 [dc1,rack1] 1118.001 msec possibly improving',
    );
  });

  it('names a muted check in the one-line description', () => {
    expect(describeHealth(parseHealthDetailText(fixture('docs-health-detail-ok-muted.txt')))).toBe(
      'HEALTH_OK: muted OSD_DOWN (1 osds down)',
    );
  });
});

describe("the lab's cluster: text and JSON of the same moment agree", () => {
  const captures = [
    { file: 'lab-probe-ok.txt', status: 'HEALTH_OK', codes: [] as string[], muted: [] as string[] },
    {
      file: 'lab-probe-warn-osd-down-empty.txt',
      status: 'HEALTH_WARN',
      codes: ['OSD_DOWN', 'OSD_HOST_DOWN'],
      muted: [],
    },
    {
      file: 'lab-probe-warn-degraded.txt',
      status: 'HEALTH_WARN',
      codes: ['OSD_DOWN', 'OSD_HOST_DOWN', 'PG_DEGRADED'],
      muted: [],
    },
    {
      file: 'lab-probe-ok-muted-degraded.txt',
      status: 'HEALTH_OK',
      codes: ['OSD_DOWN', 'OSD_HOST_DOWN', 'PG_DEGRADED'],
      muted: ['OSD_DOWN', 'OSD_HOST_DOWN', 'PG_DEGRADED'],
    },
  ];
  it.each(captures)('$file', (c) => {
    const fromJson = parseHealthJson(parseJsonOutput(probeSection(c.file, 'health'), 'ceph health detail -f json'));
    const fromText = parseHealthDetailText(probeSection(c.file, 'health_text'));
    expect(fromJson.status).toBe(c.status);
    expect(fromJson.checks.map((k) => k.code).sort()).toEqual([...c.codes].sort());
    expect(
      fromJson.checks
        .filter((k) => k.muted)
        .map((k) => k.code)
        .sort(),
    ).toEqual([...c.muted].sort());
    expect(fromJson.mutes.sort()).toEqual([...c.muted].sort());
    // The text says everything the JSON says (Ceph lists the checks in the same order in both).
    const strip = (r: ReturnType<typeof parseHealthJson>) => ({
      status: r.status,
      mutes: [...r.mutes].sort(),
      checks: r.checks.map((k) => ({
        code: k.code,
        severity: k.severity,
        summary: k.summary,
        detail: k.detail,
        muted: k.muted,
      })),
    });
    expect(strip(fromText)).toEqual(strip(fromJson));
  });

  it('reads the degraded-object count and detail lines of PG_DEGRADED', () => {
    const report = parseHealthJson(
      parseJsonOutput(probeSection('lab-probe-warn-degraded.txt', 'health'), 'ceph health detail -f json'),
    );
    const degraded = report.checks.find((k) => k.code === 'PG_DEGRADED')!;
    expect(degraded.summary).toBe('Degraded data redundancy: 16/48 objects degraded (33.333%), 13 pgs degraded');
    expect(degraded.detail[0]).toBe('pg 1.1 is active+undersized+degraded, acting [2,1]');
    expect(report.checks.find((k) => k.code === 'OSD_DOWN')!.count).toBe(1);
  });
});

describe('bad input', () => {
  it('refuses text without a status line', () => {
    expect(() => parseHealthDetailText('2026-11-21 monclient: authenticate timed out\n')).toThrow(CephOutputError);
    expect(() => parseHealthDetailText('')).toThrow(/no HEALTH_OK \/ HEALTH_WARN \/ HEALTH_ERR line/);
  });
  it('refuses empty and non-JSON output, naming the command', () => {
    expect(() => parseJsonOutput('', 'ceph -s -f json')).toThrow('`ceph -s -f json` printed nothing');
    expect(() => parseJsonOutput('Error EACCES: access denied', 'ceph -s -f json')).toThrow(
      /did not print JSON: "Error EACCES/,
    );
  });
  it('refuses JSON without a health status', () => {
    expect(() => parseHealthJson({ checks: {} })).toThrow(/no health status/);
    expect(() => parseHealthJson([1, 2])).toThrow(/expected a JSON object/);
  });
});
