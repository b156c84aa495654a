/**
 * The raid_health module end to end on this machine: its real probe script runs in a local shell against
 * real mdstat / mdadm outputs (test/fixtures/raid, each citing its source) written to a temp directory.
 * This machine has no md driver and no mdadm; where the module runs `mdadm --detail`, a stand-in mdadm on
 * PATH prints the captured real output for the array it is asked about.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  raidHealthModule,
  raidProbeScript,
  type RaidHealthArgs,
} from '../../runner/core/modules/raid/health-module.js';
import type { Planned } from '../../runner/core/modules/types.js';
import { openLocalConnection } from '../../runner/core/transport/local.js';
import type { Connection } from '../../runner/core/transport/types.js';
import { contextFor } from '../helpers/fake-connection.js';
import { loadRaidFixture } from '../fixtures/raid/fixture.js';

let dir: string;
let conn: Connection;
const savedPath = process.env.PATH;

function write(name: string, fixture: string): string {
  const path = join(dir, name);
  writeFileSync(path, loadRaidFixture(fixture).body);
  return path;
}

function check(args: RaidHealthArgs): Promise<Planned> {
  return raidHealthModule.check(contextFor(conn, { host: 'local1' }), args);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cairn-raid-'));
  conn = await openLocalConnection({
    name: 'local1',
    connection: 'local',
    address: '127.0.0.1',
    port: 22,
    user: 'root',
    jump: [],
    connectTimeoutMs: 5000,
    knownHostsPath: '/dev/null',
    acceptNewHostKeys: false,
    become: false,
    becomeUser: 'root',
  });
});

afterAll(async () => {
  process.env.PATH = savedPath;
  await conn.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('raid_health on real outputs, through its real probe script', () => {
  it('no mdstat file passes with a note', async () => {
    const plan = await check({ mdstat_path: join(dir, 'absent') });
    expect(plan.failed).toBeUndefined();
    expect(plan.data).toEqual({ arrays: [], mdstat_present: false, msg: `no md arrays (no ${join(dir, 'absent')})` });
  });

  it('healthy arrays pass and are reported one by one', async () => {
    const plan = await check({ mdstat_path: write('healthy', 'healthy-2.4-raid5-raid1.mdstat') });
    expect(plan.failed).toBeUndefined();
    expect(plan.data?.msg).toBe('3 md arrays healthy');
    expect(
      (plan.data?.arrays as Array<{ name: string; level: string; verdict: string }>).map((a) => [
        a.name,
        a.level,
        a.verdict,
      ]),
    ).toEqual([
      ['md2', 'raid5', 'healthy'],
      ['md1', 'raid1', 'healthy'],
      ['md0', 'raid1', 'healthy'],
    ]);
  });

  it('a degraded host fails naming the array and the failed member', async () => {
    const plan = await check({ mdstat_path: write('failed', 'failed-raid1-2.4.mdstat') });
    expect(plan.failed).toMatch(
      /^md3 \(raid1\): failed: member sdb1 is faulty; 1 member missing \(slot 1\); \[2\/2\] \[U_\]/,
    );
    expect(plan.failed).toContain(' | md4 (raid1): failed: member sdb4 is faulty');
  });

  it('a rebuild reports its progress; recovering arrays can be refused', async () => {
    const path = write('resync', 'resync-raid1.mdstat');
    expect((await check({ mdstat_path: path })).data?.msg).toBe(
      '1 md array passes (0 healthy): md127 (raid1): resyncing: resync 50.4% done, 67648K/sec, about 6.4 min left; [2/2] [UU]; members: sdc1, sdc2',
    );
    const recovery = write('recovery', 'recovery-raid1-2.4.mdstat');
    const arrays = (await check({ mdstat_path: recovery })).data?.arrays as Array<{
      name: string;
      verdict: string;
      ok: boolean;
      progress?: { percent: number };
    }>;
    expect(arrays.find((a) => a.name === 'md1')).toMatchObject({
      verdict: 'recovering',
      ok: true,
      progress: { percent: 8.1 },
    });
    const refused = await check({ mdstat_path: recovery, allow_recovering: false });
    expect(refused.failed).toContain(
      'md1 (raid1): recovering: 1 member missing (slot 1); recovery 8.1% done, 6963K/sec, about 6.7 min left',
    );
  });

  it('reads captured mdadm --detail output from a file, merged with mdstat by array name', async () => {
    const plan = await check({
      mdstat_path: write('healthy1', 'healthy-raid1.mdstat'),
      mdadm_detail_path: write('faulty.detail', 'detail-faulty-raid1.detail'),
    });
    expect(plan.failed).toBe(
      'md1 (raid1): failed: member /dev/sda3 is faulty; 1 member missing (slot 0); [2/1]; members: /dev/sdb3, /dev/sda3 (faulty)',
    );
    const missing = await check({ mdstat_path: join(dir, 'healthy1'), mdadm_detail_path: join(dir, 'nope.detail') });
    expect(missing.failed).toBe(`the mdadm --detail file ${join(dir, 'nope.detail')} does not exist or cannot be read`);
  });

  it('runs mdadm --detail for each array of the live mdstat path, in the same round trip', async () => {
    // The probe only runs mdadm for /proc/mdstat (auto) or when asked (true); here it is asked explicitly.
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    write('md127.detail', 'detail-recovering-raid1.detail');
    writeFileSync(
      join(bin, 'mdadm'),
      `#!/bin/sh\n[ "$1" = --detail ] && [ "$2" = /dev/md127 ] && exec cat ${JSON.stringify(join(dir, 'md127.detail'))}\necho "mdadm: cannot open $2" >&2; exit 1\n`,
    );
    chmodSync(join(bin, 'mdadm'), 0o755);
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const plan = await check({ mdstat_path: write('resync127', 'resync-raid1.mdstat'), mdadm_detail: true });
      // mdstat says resync on a complete [UU]; mdadm's captured output (another moment) says rebuilding slot 0.
      expect(plan.data?.arrays).toMatchObject([
        { name: 'md127', sources: ['mdstat', 'mdadm'], verdict: 'recovering', missing: ['slot 0'] },
      ]);
      const other = await check({ mdstat_path: write('failed2', 'failed-raid1-2.4.mdstat'), mdadm_detail: true });
      expect(other.failed).toBe('mdadm --detail /dev/md3: mdadm: cannot open /dev/md3');
    } finally {
      process.env.PATH = savedPath;
    }
    const noMdadm = await check({ mdstat_path: join(dir, 'healthy1'), mdadm_detail: true });
    expect(noMdadm.failed).toBe('mdadm_detail is true but mdadm is not installed');
  });

  it('a malformed mdstat fails naming the host, file and line', async () => {
    const path = join(dir, 'bad');
    writeFileSync(path, 'Personalities : [raid1]\nmd0 : active raid1 sda1[0] sdb1{1}\n');
    expect((await check({ mdstat_path: path })).failed).toMatch(
      new RegExp(`^local1:${path}:2: cannot read "sdb1\\{1\\}" in the header of md0`),
    );
  });

  it('quotes every path it puts in the script', () => {
    const script = raidProbeScript({ mdstat_path: "/tmp/it's here", mdadm_detail_path: '/tmp/$(reboot)' });
    expect(script).toContain(`p='/tmp/it'\\''s here'`);
    expect(script).toContain(`d='/tmp/$(reboot)'`);
    expect(raidProbeScript({})).toContain('mdadm --detail "/dev/$md"');
    expect(raidProbeScript({ mdstat_path: '/tmp/x' })).not.toContain('mdadm --detail');
  });
});
