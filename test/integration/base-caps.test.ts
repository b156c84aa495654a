/**
 * base-tuning's tenant memory cap and zswap (issue 19, item 5) against a real sshd host on loopback.
 *
 * Real here: the role's rendering, its exact --check, the slice unit validated by this machine's
 * systemd-analyze, the facts of this machine (a docker container: the zswap verification must say "needs a
 * VM"), and this kernel's real zswap parameters read (never written) from /sys.
 * A stand-in: the sysfs directory the live zswap task writes is a copy of this kernel's
 * /sys/module/zswap/parameters made at test time (file names and values are the kernel's), because the kernel
 * is shared by everything on this machine and a test must not change it. Real writes need a VM with its
 * own kernel (no lab test for it yet).
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedKeys, jsonEvents, repoRoot, runCairn } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';
import type { RunEvent } from '../../runner/core/engine/events.js';

requireSshd();
const playbook = join(repoRoot, 'playbooks', 'base.yaml');
const ZSWAP = '/sys/module/zswap/parameters';
type VerifyEvent = Extract<RunEvent, { type: 'verify_result' }>;
const verifies = (events: RunEvent[]): VerifyEvent[] =>
  events.filter((e): e is VerifyEvent => e.type === 'verify_result');
type ResultEvent = Extract<RunEvent, { type: 'task_result' }>;
/**
 * Failed tasks of the run itself. The run's exit code is not asserted: verification runs every check of
 * base-tuning (tags do not select verify tasks), and this machine has none of the sysctl/chrony/journald
 * baseline the other checks look for.
 */
const failedTasks = (events: RunEvent[]): string[] =>
  events
    .filter((e): e is ResultEvent => e.type === 'task_result' && !e.verify && e.status === 'failed')
    .map((e) => `${e.task.name}: ${e.msg ?? ''}`);

describe('base-tuning: tenant slice and zswap', { timeout: 600_000 }, () => {
  let lab: TestSshLab;
  let dir: string;
  let sysfsCopy: string;
  const env = () => ({ CAIRN_STATE_DIR: join(lab.dir, 'cairn-state') });
  const vars = (overrides: Record<string, unknown> = {}) => ({
    base_tenant_slice_dir: dir,
    base_zswap_tmpfiles: join(dir, '60-cairn-zswap.conf'),
    base_zswap_sysfs: sysfsCopy,
    base_zswap_live: true,
    ...overrides,
  });
  const play = (inventory: string, ...flags: string[]) =>
    runCairn(['play', playbook, '-i', inventory, '--json', '--tags', 'slice,zswap', ...flags], { env: env() });

  beforeAll(async () => {
    lab = await startSshHosts(1, { names: ['node1'] });
    dir = lab.hosts[0]!.dir;
    sysfsCopy = join(dir, 'zswap-parameters');
    // File by file (fs.cpSync never returns on sysfs files, which report a size of 4096).
    mkdirSync(sysfsCopy);
    for (const name of readdirSync(ZSWAP)) writeFileSync(join(sysfsCopy, name), readFileSync(join(ZSWAP, name)));
  });
  afterAll(async () => {
    await lab?.stop();
  });

  it('--check is exact, the run writes the slice, the boot file and the parameters, a second run changes nothing', async () => {
    const inventory = lab.writeInventory({}, { node1: vars() });
    const check = await play(inventory, '--check');
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const predicted = changedKeys(jsonEvents(check.stdout));
    expect(predicted).toEqual(
      expect.arrayContaining([
        "node1 | base-tuning : tenant services' slice caps their memory (MemoryMax, systemd)",
        'node1 | base-tuning : zswap parameters at every boot (systemd-tmpfiles)',
        "node1 | base-tuning : zswap parameters live (not in containers, which share their host's kernel)",
      ]),
    );
    const first = await play(inventory);
    const events = jsonEvents(first.stdout);
    expect(failedTasks(events)).toEqual([]);
    expect(changedKeys(events).filter((k) => !k.endsWith('(handler)'))).toEqual(predicted);

    const slice = readFileSync(join(dir, 'tenant.slice'), 'utf8');
    expect(slice).toContain('[Slice]\nMemoryAccounting=yes\nMemoryMax=80%\n');
    expect(readFileSync(join(dir, '60-cairn-zswap.conf'), 'utf8')).toContain(
      `w ${sysfsCopy}/compressor - - - - lz4\nw ${sysfsCopy}/max_pool_percent - - - - 20\nw ${sysfsCopy}/enabled - - - - Y\n`,
    );
    for (const [name, value] of [
      ['compressor', 'lz4'],
      ['max_pool_percent', '20'],
      ['enabled', 'Y'],
    ])
      expect(readFileSync(join(sysfsCopy, name), 'utf8').trim()).toBe(value);

    const checks = verifies(events);
    const sliceCheck = checks.find((e) => e.check.startsWith('tenant slice is a valid unit'));
    expect(sliceCheck?.passed, JSON.stringify(sliceCheck)).toBe(true);
    expect(checks.find((e) => e.check === 'zswap runs with its parameters')?.passed).toBe(true);

    const second = await play(inventory);
    expect(failedTasks(jsonEvents(second.stdout))).toEqual([]);
    expect(changedKeys(jsonEvents(second.stdout))).toEqual([]);
  });

  it('a cap systemd cannot read is refused before anything runs; a slice edited by hand fails systemd-analyze', async () => {
    const bad = await play(lab.writeInventory({}, { node1: vars({ base_tenant_memory_high: '200%' }) }));
    expect(bad.code).toBe(5);
    expect(bad.stdout + bad.stderr).toMatch(
      /base_tenant_memory_high" must match .* got the string "200%" \(set in .*inventory-\d+\.yml:\d+:\d+\)/,
    );
    const slicePath = join(dir, 'tenant.slice');
    const good = readFileSync(slicePath, 'utf8');
    writeFileSync(slicePath, good.replace('MemoryMax=80%', 'MemoryMax=80%\nMemoryLimitPercent=80'));
    try {
      const r = await runCairn(['verify', playbook, '-i', lab.writeInventory({}, { node1: vars() }), '--json'], {
        env: env(),
      });
      const failed = verifies(jsonEvents(r.stdout)).find((e) => e.check.startsWith('tenant slice is a valid unit'));
      expect(failed?.passed, r.stdout.slice(-2000)).toBe(false);
      expect(failed?.msg).toMatch(/systemd-analyze verify: .*Unknown key 'MemoryLimitPercent'/);
    } finally {
      writeFileSync(slicePath, good);
    }
  });

  it('in a container (this machine, as its facts say) zswap is not touched and verification says it needs a VM', async () => {
    const before = readdirSync(sysfsCopy).map((f) => `${f}=${readFileSync(join(sysfsCopy, f), 'utf8')}`);
    const inventory = lab.writeInventory({}, { node1: vars({ base_zswap_live: 'auto', base_tenant_memory_high: '' }) });
    const r = await play(inventory);
    expect(failedTasks(jsonEvents(r.stdout))).toEqual([]);
    const check = verifies(jsonEvents(r.stdout)).find((e) => e.check === 'zswap runs with its parameters');
    expect(JSON.stringify(check)).toMatch(
      /needs a VM\. This host is a container \(docker\): it shares its host's kernel/,
    );
    expect(readdirSync(sysfsCopy).map((f) => `${f}=${readFileSync(join(sysfsCopy, f), 'utf8')}`)).toEqual(before);
  });

  it("verification reads this kernel's real zswap parameters and names every one that differs", async () => {
    const real = Object.fromEntries(
      ['compressor', 'max_pool_percent', 'enabled'].map((k) => [k, readFileSync(join(ZSWAP, k), 'utf8').trim()]),
    );
    // Wanted: the kernel's own values, except one flipped, so exactly that one must be named.
    const flipped = real.enabled === 'Y' ? 'N' : 'Y';
    const inventory = lab.writeInventory(
      {},
      {
        node1: vars({
          base_zswap_sysfs: ZSWAP,
          base_zswap_parameters: {
            compressor: real.compressor,
            max_pool_percent: real.max_pool_percent,
            enabled: flipped,
          },
        }),
      },
    );
    const r = await runCairn(['verify', playbook, '-i', inventory, '--json'], { env: env() });
    expect(r.code).not.toBe(0);
    const check = verifies(jsonEvents(r.stdout)).find((e) => e.check === 'zswap runs with its parameters');
    expect(check?.passed, r.stdout.slice(-1500) + r.stderr).toBe(false);
    expect(check?.msg).toMatch(new RegExp(`: zswap: enabled is ${real.enabled}, wanted ${flipped};$`));
  });
});
