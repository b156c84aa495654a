/**
 * `cairn report` after a real rollout on sshd hosts, opened in headless Chromium (Debian's package): the
 * rendered page has the phases on the timeline with today marked, the steps coloured by state, the host ×
 * role matrix with all five states as the runs left them, and the drills against their targets. The
 * screenshot is kept in test-artifacts/ and its pixels are checked for the state colours.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../../runner/features/lab/preflight.js';
import { dateOfPlanDay, localDate, planDay } from '../../runner/features/rollout/days.js';
import { STATE_COLOURS } from '../../runner/features/rollout/html.js';
import { repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

const chromium = findExecutable('chromium') ?? findExecutable('chromium-browser');
// Missing Chromium or sshd fails this file naming the package, never skips it (scripts/test-prereqs.sh installs both).
if (!chromium)
  throw new Error(
    'chromium is not installed: apt-get install -y chromium fonts-dejavu-core (scripts/test-prereqs.sh does it)',
  );
requireSshd();
const playbook = join(repoRoot, 'test', 'fixtures', 'rollout', 'site.yaml');
const artifacts = join(repoRoot, 'test-artifacts');

/** Headless Chromium, isolated: a fresh profile, no network services of its own, no sandbox (root). */
function chrome(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const profile = mkdtempSync(join(tmpdir(), 'cairn-chromium-'));
  try {
    const r = spawnSync(
      chromium!,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--hide-scrollbars',
        `--user-data-dir=${profile}`,
        ...args,
      ],
      { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 * 1024 * 1024 },
    );
    return { stdout: r.stdout, stderr: r.stderr, status: r.status };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) into RGB triples per pixel. */
function decodePng(png: Buffer): {
  width: number;
  height: number;
  rgb: (x: number, y: number) => [number, number, number];
} {
  expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  let at = 8;
  let width = 0,
    height = 0,
    colourType = 0,
    depth = 0,
    interlace = 0;
  const idat: Buffer[] = [];
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.subarray(at + 4, at + 8).toString('latin1');
    const data = png.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR')
      [width, height, depth, colourType, interlace] = [
        data.readUInt32BE(0),
        data.readUInt32BE(4),
        data[8]!,
        data[9]!,
        data[12]!,
      ];
    if (type === 'IDAT') idat.push(data);
    at += 12 + length;
  }
  expect([depth, interlace]).toEqual([8, 0]);
  const channels = colourType === 6 ? 4 : colourType === 2 ? 3 : 0;
  expect(channels).toBeGreaterThan(0);
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[y * stride + i - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i]! : 0;
      const c = y > 0 && i >= channels ? pixels[(y - 1) * stride + i - channels]! : 0;
      const p = a + b - c;
      const paeth =
        Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
          ? a
          : Math.abs(p - b) <= Math.abs(p - c)
            ? b
            : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter]!;
      pixels[y * stride + i] = (line[i]! + predictor) & 0xff;
    }
  }
  return {
    width,
    height,
    rgb: (x, y) => [
      pixels[y * stride + x * channels]!,
      pixels[y * stride + x * channels + 1]!,
      pixels[y * stride + x * channels + 2]!,
    ],
  };
}

function hexToRgb(hex: string): [number, number, number] {
  return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
}

describe('cairn report in headless Chromium', () => {
  let lab: TestSshLab;
  let stateDir: string;
  let checklist: string;
  let inventory: string;
  let http: Server;
  const reportPath = join(artifacts, 'rollout-report.html');
  const screenshotPath = join(artifacts, 'rollout-report.png');
  // D3 of the plan is today.
  const today = localDate();
  const startDate = dateOfPlanDay(today, -1);

  beforeAll(async () => {
    lab = await startSshHosts(3, { names: ['app1', 'app2', 'app3'] });
    inventory = lab.writeInventory(
      { app: ['app1', 'app2', 'app3'] },
      Object.fromEntries(lab.hosts.map((h) => [h.name, { marker_dir: join(h.dir, 'marker') }])),
    );
    stateDir = join(lab.dir, 'state');
    http = createServer((_req, res) => res.end('ok\n'));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    checklist = join(lab.dir, 'rollout.yaml');
    writeFileSync(
      checklist,
      `name: Report <test> & co
inventory: ${inventory}
phases:
  - id: prep
    name: Preparation
    days: D1-D7
    steps:
      - { id: apply, name: Apply the roles, days: D1-D2, play: { playbook: ${playbook} } }
      - { id: check, name: Verify the roles, days: D3, verify: { playbook: ${playbook} } }
      - { id: approve, name: Approve, days: D4-D7, manual: ok }
    gate:
      verifications: [check]
      signoffs: [approve]
  - id: deploy
    name: System deployment
    days: D8-D21
    steps:
      - { id: later, name: Later work, play: { playbook: ${playbook} } }
    gate:
      steps: [later]
  - id: live
    name: Go-live validation
    days: D29-D35
    steps:
      - id: load
        name: Load probe
        drill: { name: load-probe, set: { url: "${url}", concurrency: 2, requests: 40, interval_ms: 0 }, targets: { availability_pct: ">= 99.95" } }
    gate:
      drills: [load]
`,
    );
  });
  afterAll(async () => {
    await lab?.stop();
    await new Promise((r) => http?.close(r));
  });

  const env = () => ({ CAIRN_STATE_DIR: stateDir, CAIRN_OPERATOR: 'ana' });
  const cairn = async (args: string[], expectCode = 0) => {
    const r = await runCairn(args, { env: env() });
    expect(r.code, `cairn ${args.join(' ')}\n${r.stderr}${r.stdout.slice(-1500)}`).toBe(expectCode);
    return r;
  };

  it('renders the timeline, the matrix with every state, and the drills', async () => {
    const roll = (args: string[], code = 0) => cairn(['rollout', ...args, '--checklist', checklist], code);
    await roll(['start', '--date', startDate]);
    await roll(['run', 'apply']); // changed everywhere, verified
    writeFileSync(join(lab.hosts[1]!.dir, 'marker', 'marker'), 'edited by hand\n');
    await roll(['run', 'check'], 2); // drift on app2, the step fails
    // A repair of app2's marker: changed, and its verification holds again.
    await cairn(['play', playbook, '-i', inventory, '-l', 'app2', '--roles', 'rollout-marker']);
    // A hand edit that a --check run predicts: drift on app2's other role.
    writeFileSync(join(lab.hosts[1]!.dir, 'marker', 'extra'), 'edited\n');
    await cairn(['play', playbook, '-i', inventory, '-l', 'app2', '--roles', 'rollout-extra', '--check']);
    // A role task that fails on app1.
    await cairn(
      ['play', playbook, '-i', inventory, '-l', 'app1', '--roles', 'rollout-extra', '-e', 'marker_fail=true'],
      2,
    );
    // app3 goes away.
    await lab.hosts[2]!.stop();
    await cairn(['play', playbook, '-i', inventory, '-l', 'app3'], 4);
    // A drill, run outside the plan (its phase is locked): it shows among the journals' drill results.
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
    await cairn([
      'drill',
      'load-probe',
      '-i',
      inventory,
      '--set',
      `url=${url}`,
      '--set',
      'concurrency=3',
      '--set',
      'requests=30',
      '--set',
      'interval_ms=0',
      // Loose on time: a loaded test machine is no reason for the report's drill to fail.
      '--set',
      'max_p99_ms=60000',
    ]);

    mkdirSync(artifacts, { recursive: true });
    const report = await cairn(['report', '--checklist', checklist, '-o', reportPath]);
    expect(report.stdout.startsWith(`report: ${reportPath}\n\nDRILL SCHEDULE `)).toBe(true);
    const html = readFileSync(reportPath, 'utf8');
    // Self-contained: no script, no external reference of any kind.
    expect(html).not.toMatch(/<script|<link|src=|@import|url\(/i);
    expect(html).toContain('Report &lt;test&gt; &amp; co — rollout report');

    const dom = chrome(['--dump-dom', `file://${reportPath}`]);
    expect(dom.status, dom.stderr.slice(-2000)).toBe(0);
    const text = dom.stdout;
    // The phases on the timeline, coloured by state, and today at D3.
    expect(planDay(startDate, today)).toBe(3);
    expect(text).toContain('data-today="3"');
    expect(text).toContain('today D3');
    for (const [phase, st] of [
      ['prep', 'open'],
      ['deploy', 'locked'],
      ['live', 'locked'],
    ])
      expect(text).toMatch(new RegExp(`<rect data-phase="${phase}" data-state="${st}"`));
    for (const [step, st] of [
      ['apply', 'done'],
      ['check', 'failed'],
      ['approve', 'pending'],
      ['later', 'pending'],
      ['load', 'pending'],
    ])
      expect(text).toMatch(new RegExp(`<rect data-step="${step}" data-state="${st}"`));
    expect(text).toMatch(/D1<\/text>[\s\S]*D35<\/text>/);
    // The matrix: newest run per host and role.
    const cells = [...text.matchAll(/data-host="([^"]+)" data-role="([^"]+)" data-state="([^"]+)"/g)]
      .map((m) => `${m[1]}/${m[2]}=${m[3]}`)
      .sort();
    expect(cells).toEqual([
      'app1/rollout-extra=failed',
      'app1/rollout-marker=ok',
      'app2/rollout-extra=drift',
      'app2/rollout-marker=changed',
      'app3/rollout-extra=unreachable',
      'app3/rollout-marker=unreachable',
    ]);
    // The drill from the journals, with what it measured.
    expect(text).toMatch(
      /data-drill-run="load-probe"[\s\S]*?passed[\s\S]*?requests=30, failed=0, availability_pct=100/,
    );
    expect(text).toContain('verification "check" failed');

    // The screenshot: the page really renders, with the state colours on it.
    const shot = chrome(['--window-size=1500,1900', `--screenshot=${screenshotPath}`, `file://${reportPath}`]);
    expect(shot.status, shot.stderr.slice(-2000)).toBe(0);
    const png = decodePng(readFileSync(screenshotPath));
    expect([png.width, png.height]).toEqual([1500, 1900]);
    const counts = new Map<string, number>();
    const wanted = ['done', 'changed', 'drift', 'failed', 'unreachable', 'pending', 'locked', 'open'].map(
      (s) => [s, hexToRgb(STATE_COLOURS[s]!)] as const,
    );
    for (let y = 0; y < png.height; y += 2) {
      for (let x = 0; x < png.width; x += 2) {
        const [r, g, b] = png.rgb(x, y);
        for (const [name, [wr, wg, wb]] of wanted)
          if (Math.abs(r - wr) <= 3 && Math.abs(g - wg) <= 3 && Math.abs(b - wb) <= 3)
            counts.set(name, (counts.get(name) ?? 0) + 1);
      }
    }
    for (const [name] of wanted)
      expect(counts.get(name) ?? 0, `pixels of ${name} (${STATE_COLOURS[name]})`).toBeGreaterThan(40);
  }, 240_000);
});
