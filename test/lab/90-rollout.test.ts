/**
 * A small rollout checklist walked through on the lab (issue 8): a play step with the test roles on the web
 * hosts (it also installs rsync from the lab's package repository), its verification, a manual sign-off,
 * then a migration phase that copies a folder from web1 to web2 in batches with rsync over a one-off key.
 * The gate keeps the migration closed while the verification fails (a hand edit on web1) and opens once it
 * passes and is signed. Ends with the HTML report built from the run journals. Leaves the hosts as found
 * (its folders removed; rsync stays installed).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '../../runner/features/rollout/types.js';
import { repoRoot, runCairn, type CliResult } from '../helpers/cli.js';
import { ensureLab, labCairnTimed, labUnavailable, onHost } from '../helpers/lab.js';

const reason = labUnavailable();
const playbook = join(repoRoot, 'test', 'fixtures', 'rollout', 'site.yaml');
const MARKER_DIR = '/var/lib/cairn-rollout-test';
const SRC = '/srv/cairn-rollout-test/legacy';
const DST = '/srv/cairn-rollout-test/app-data';

describe.skipIf(Boolean(reason))(`rollout checklist on the lab${reason ? ` (skipped: ${reason})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-rollout-lab-'));
  const stateDir = join(dir, 'state');
  const checklist = join(dir, 'rollout.yaml');
  const timings: Record<string, number> = {};

  /** A rollout command, retried while someone else's run holds the lab inventory's lock. */
  async function rollout(args: string[]): Promise<CliResult> {
    const { res, attemptMs } = await labCairnTimed(['rollout', ...args, '--checklist', checklist], {
      env: { CAIRN_STATE_DIR: stateDir, CAIRN_OPERATOR: 'lab-test' },
      timeoutMs: 240_000,
      lockWaitMs: 300_000,
    });
    timings[args.slice(0, 2).join(' ')] = attemptMs / 1000;
    return res;
  }
  const state = () => JSON.parse(readFileSync(join(stateDir, 'rollout.json'), 'utf8')) as RolloutState;

  beforeAll(async () => {
    await ensureLab();
    writeFileSync(
      checklist,
      `name: Lab rollout test
phases:
  - id: deploy
    name: Deployment
    days: D1-D3
    steps:
      - id: apply
        name: Test roles on the web hosts
        play: { playbook: ${playbook}, limit: web, extra_vars: { marker_install_rsync: true } }
      - id: check
        name: Verify them
        verify: { playbook: ${playbook}, limit: web }
      - id: approve
        name: Deployment approved
        manual: The verification is green.
    gate:
      verifications: [check]
      signoffs: [approve]
  - id: migration
    name: Data migration
    days: D4-D5
    steps:
      - id: move
        name: Move the data in batches
        migrate: { source: { host: web1, path: ${SRC} }, target: { host: web2, path: ${DST} }, batches: 2 }
    gate:
      steps: [move]
`,
    );
    // The "legacy" data on web1: three folders and a file.
    await onHost(
      'web1',
      `rm -rf /srv/cairn-rollout-test && mkdir -p ${SRC}/a ${SRC}/b ${SRC}/c && for d in a b c; do for i in 1 2; do head -c 50000 /dev/urandom > ${SRC}/$d/f$i; done; done && echo top > ${SRC}/top.txt`,
    );
    await onHost('web2', 'rm -rf /srv/cairn-rollout-test');
  });
  afterAll(async () => {
    for (const host of ['web1', 'web2'])
      await onHost(host, `rm -rf /srv/cairn-rollout-test ${MARKER_DIR}`).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    console.log(`rollout on the lab, seconds per command: ${JSON.stringify(timings)}`);
  });

  it('walks the phases: the gate holds while the verification fails, opens when it passes and is signed', async () => {
    const apply = await rollout(['run', 'apply']);
    expect(apply.code, apply.stderr + apply.stdout.slice(-2000)).toBe(0);
    expect(state().steps.apply!.evidence).toMatchObject({
      kind: 'play',
      hosts: ['web1', 'web2'],
      failedHosts: [],
      verify: { failed: 0 },
    });
    expect(await onHost('web2', 'command -v rsync')).toBe('/usr/bin/rsync');

    const closed = await rollout(['run', 'move']);
    expect(closed.code).toBe(5);
    expect(closed.stderr).toContain(
      'phase "migration" (Data migration, D4–D5) is not open: the gate of phase "deploy" (Deployment) has not passed',
    );

    await onHost('web1', `echo edited > ${MARKER_DIR}/marker`);
    const failing = await rollout(['run', 'check']);
    expect(failing.code).toBe(2);
    expect(state().steps.check).toMatchObject({
      state: 'failed',
      evidence: { failed: 1, failures: [{ host: 'web1', role: 'rollout-marker' }] },
    });
    const stillClosed = await rollout(['run', 'move']);
    expect(stillClosed.stderr).toMatch(/verification "check" failed: 1 of \d+ checks failed: web1 rollout-marker/);

    expect((await rollout(['run', 'apply'])).code).toBe(0);
    const green = await rollout(['run', 'check']);
    expect(green.code, green.stderr + green.stdout.slice(-1000)).toBe(0);
    const unsigned = await rollout(['next']);
    expect(unsigned.code).toBe(5);
    expect(unsigned.stderr).toContain('the next step, "approve" (Deployment approved), is manual');
    expect(
      (await rollout(['sign', 'approve', '--by', 'lab-test', '--note', 'verify green on web1 and web2'])).code,
    ).toBe(0);

    const move = await rollout(['next']);
    expect(move.code, move.stderr + move.stdout.slice(-2000)).toBe(0);
    expect(state().steps.move!.evidence).toMatchObject({
      kind: 'migrate',
      dryRun: false,
      batches: [
        { name: 'a … b (2 entries)', filesTransferred: 4 },
        { name: 'c … top.txt (2 entries)', filesTransferred: 3 },
      ],
    });
    const sums = async (host: string, root: string) =>
      onHost(host, `cd ${root} && find . -type f -print0 | sort -z | xargs -0 sha256sum`);
    expect(await sums('web2', DST)).toBe(await sums('web1', SRC));
    expect(await onHost('web2', 'grep -c cairn-migrate /root/.ssh/authorized_keys || true')).toBe('0');

    const status = await rollout(['status']);
    expect(status.stdout).toMatch(/✓ Deployment \[deploy\] D1–D3 — complete, gate passed/);
    expect(status.stdout).toMatch(/✓ Data migration \[migration\] D4–D5 — complete, gate passed/);
    expect(status.stdout).toContain('Next: every phase is complete and every gate has passed');

    const report = await runCairn(['report', '--checklist', checklist, '-o', join(dir, 'report.html')], {
      env: { CAIRN_STATE_DIR: stateDir },
    });
    expect(report.code, report.stderr).toBe(0);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    for (const host of ['web1', 'web2'])
      for (const role of ['rollout-marker', 'rollout-extra'])
        expect(html).toContain(`data-host="${host}" data-role="${role}" data-state="ok"`);
    expect(html).toContain('<rect data-phase="migration" data-state="complete"');
  });
});
