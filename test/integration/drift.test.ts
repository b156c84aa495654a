/**
 * `cairn drift` against real sshd hosts on loopback: after an apply nothing drifts (exit 0, zeros in the
 * metrics); a hand edit on one host is drift of exactly its (host, role) cell (exit 3, the table and the
 * metrics say so); rerunning that role on that host repairs it; a dead host is exit 4 and
 * cairn_drift_unreachable 1. The metrics file is replaced atomically (no temp file left beside it).
 */
import { appendFileSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();
const playbook = join(repoRoot, 'test', 'fixtures', 'drift', 'site.yaml');

/** The samples of a textfile, "name{labels}" -> value; every line must be a comment or a sample. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (-?[0-9.e+]+)$/.exec(line);
    expect(m, `not a sample line: ${line}`).not.toBeNull();
    out.set(m![1]!, Number(m![2]));
  }
  return out;
}

describe('cairn drift against real sshd hosts', { timeout: 180_000 }, () => {
  let lab: TestSshLab;
  let inventory: string;
  let metricsDir: string;
  let metrics: string;
  const env = () => ({ CAIRN_STATE_DIR: join(lab.dir, 'state') });

  beforeAll(async () => {
    lab = await startSshHosts(2, { names: ['lb1', 'web1'] });
    inventory = lab.writeInventory({}, Object.fromEntries(lab.hosts.map((h) => [h.name, { host_dir: h.dir }])));
    metricsDir = join(lab.dir, 'textfile');
    mkdirSync(metricsDir);
    metrics = join(metricsDir, 'cairn-drift.prom');
    const applied = await runCairn(['play', playbook, '-i', inventory], { env: env() });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
  });
  afterAll(async () => {
    await lab?.stop();
  });

  const drift = (...args: string[]) =>
    runCairn(['drift', playbook, '-i', inventory, '--metrics', metrics, ...args], { env: env() });

  it('reports no drift after an apply: exit 0, a table of dots, zero metrics with a fresh timestamp', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await drift();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^host\s+proxy\s+web\nlb1\s+\.\s+\.\nweb1\s+\.\s+\.\n/m);
    expect(r.stdout).toContain('no drift: check mode predicts no change');
    const m = samples(readFileSync(metrics, 'utf8'));
    expect(m.get('cairn_drift_changes{host="lb1",role="proxy"}')).toBe(0);
    expect(m.get('cairn_drift_changes{host="web1",role="web"}')).toBe(0);
    expect(m.get('cairn_drift_unreachable{host="lb1"}')).toBe(0);
    expect(m.get('cairn_drift_check_timestamp_seconds')).toBeGreaterThanOrEqual(before);
    expect(readdirSync(metricsDir)).toEqual(['cairn-drift.prom']);
  });

  it('finds a hand edit as drift of that host and role only (exit 3), and the role rerun repairs it', async () => {
    appendFileSync(join(lab.hosts[0]!.dir, 'proxy.cfg'), '    # hand edit\n');
    const r = await drift();
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/^lb1\s+1\s+\.\n/m);
    expect(r.stdout).toMatch(/^web1\s+\.\s+\.\n/m);
    expect(r.stdout).toContain('lb1 proxy: proxy configuration');
    expect(r.stdout).toContain('drift: 1 predicted change on 1 host (lb1)');
    let m = samples(readFileSync(metrics, 'utf8'));
    expect(m.get('cairn_drift_changes{host="lb1",role="proxy"}')).toBe(1);
    expect(m.get('cairn_drift_changes{host="lb1",role="web"}')).toBe(0);
    expect(m.get('cairn_drift_changes{host="web1",role="proxy"}')).toBe(0);

    const repair = await runCairn(['play', playbook, '-i', inventory, '--roles', 'proxy', '-l', 'lb1'], { env: env() });
    expect(repair.code, repair.stderr).toBe(0);
    const after = await drift();
    expect(after.code, after.stdout).toBe(0);
    m = samples(readFileSync(metrics, 'utf8'));
    expect(m.get('cairn_drift_changes{host="lb1",role="proxy"}')).toBe(0);
    expect(readdirSync(metricsDir)).toEqual(['cairn-drift.prom']);
  });

  it('exits 4 when a host is unreachable and says so in the table and the metrics', async () => {
    lab.hosts[1]!.kill();
    const r = await drift();
    expect(r.code, r.stdout + r.stderr).toBe(4);
    expect(r.stdout).toMatch(/^web1\s+\?\s+\?\n/m);
    expect(r.stdout).toContain('web1: UNREACHABLE');
    const m = samples(readFileSync(metrics, 'utf8'));
    expect(m.get('cairn_drift_unreachable{host="web1"}')).toBe(1);
    expect(m.get('cairn_drift_unreachable{host="lb1"}')).toBe(0);
  });
});
