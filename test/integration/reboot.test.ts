/**
 * reboot and wait_for_connection against a real OpenSSH sshd (test/helpers/sshd.ts). This machine cannot be
 * rebooted, so the host's "reboot" is Ansible's own override point: `reboot_command` touches a request file,
 * and this test answers it as a reboot would look from the controller: it SIGKILLs that sshd and its sessions
 * (by PID, an sshd this test started), changes the boot-id file `boot_time_command` reads, and starts the sshd
 * again on the same address, port and host key. What is proven: the connection drops, cairn waits, reconnects
 * (host key checked), sees the new boot id, runs test_command, and later tasks use the new connection; a host
 * that never comes back fails after reboot_timeout with a clear error. The default path (shutdown -r on a
 * real kernel) can only be proven on the VM tier (test/lab/72-reboot.test.ts, not written yet).
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyExecutor, checkExecutor } from '../../runner/core/engine/executor.js';
import { rebootModule } from '../../runner/core/modules/reboot.js';
import { waitForConnectionModule } from '../../runner/core/modules/wait-for-connection.js';
import type { ModuleContext } from '../../runner/core/modules/types.js';
import { openSshConnection } from '../../runner/core/transport/ssh.js';
import type { Connection } from '../../runner/core/transport/types.js';
import { runCairn } from '../helpers/cli.js';
import { contextFor } from '../helpers/fake-connection.js';
import { requireSshd, startSshHosts, type TestSshHost, type TestSshLab } from '../helpers/sshd.js';

requireSshd();

let lab: TestSshLab;
let host: TestSshHost;
let conn: Connection;
let reconnects = 0;

function ctx(overrides: Partial<ModuleContext> = {}): ModuleContext {
  return contextFor(conn, {
    reconnect: async (opts) => {
      reconnects++;
      await conn.close();
      conn = await openSshConnection(lab.spec(host.name, { connectTimeoutMs: opts?.connectTimeoutMs ?? 5000 }));
      return conn;
    },
    ...overrides,
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Answer the host's reboot request: kill its sshd, write the next boot id, start it again after `downMs`
 * (or never, for the timeout case). Returns a function that stops watching.
 */
function answerReboots(opts: { downMs: number; comeBack: boolean; bootId: () => string }): () => Promise<void> {
  const request = join(host.dir, 'reboot-requested');
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      if (existsSync(request)) {
        rmSync(request);
        host.kill();
        await sleep(opts.downMs);
        writeFileSync(join(host.dir, 'boot_id'), `${opts.bootId()}\n`);
        if (opts.comeBack) await host.restart();
      }
      await sleep(50);
    }
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

beforeAll(async () => {
  lab = await startSshHosts(1, { names: ['rb1'] });
  host = lab.hosts[0]!;
  conn = await openSshConnection(lab.spec(host.name));
}, 30_000);

afterAll(async () => {
  await conn?.close().catch(() => undefined);
  await lab?.stop();
});

describe('reboot (module, real sshd restarted as the reboot)', () => {
  it('check plans the reboot and runs nothing on the host', async () => {
    writeFileSync(join(host.dir, 'boot_id'), 'boot-0\n');
    const args = { reboot_command: `touch ${host.dir}/reboot-requested`, boot_time_command: `cat ${host.dir}/boot_id` };
    const check = await checkExecutor.run(rebootModule, ctx(), args);
    expect(check.plan.changed).toBe(true);
    expect(check.plan.actions).toEqual([`reboot ${host.name} (touch ${host.dir}/reboot-requested)`]);
    expect(check.result.data).toEqual({ rebooted: true, elapsed: 0 });
    expect(existsSync(join(host.dir, 'reboot-requested'))).toBe(false);
    const local = await checkExecutor.run(rebootModule, ctx({ local: true }), args);
    expect(local.plan.failed).toBe('Running reboot with local connection would reboot the control node.');
  });

  it('disconnects, waits, reconnects, sees a new boot id, runs test_command; changed and rebooted', async () => {
    writeFileSync(join(host.dir, 'boot_id'), 'boot-1\n');
    const oldPid = host.pid;
    const before = conn;
    reconnects = 0;
    const stop = answerReboots({ downMs: 1500, comeBack: true, bootId: () => 'boot-2' });
    try {
      const args = {
        reboot_command: `touch ${host.dir}/reboot-requested`,
        boot_time_command: `cat ${host.dir}/boot_id`,
        test_command: `touch ${host.dir}/tested && whoami`,
        connect_timeout: 2,
        reboot_timeout: 60,
      };
      const run = await applyExecutor.run(rebootModule, ctx(), args);
      expect(run.result.failed, run.result.msg).toBeFalsy();
      expect(run.result.changed).toBe(true);
      expect(run.result.data.rebooted).toBe(true);
      expect(typeof run.result.data.elapsed).toBe('number');
      // The old connection died with the old sshd; a new sshd answered on the new connection.
      await expect(before.exec('true')).rejects.toThrow(/lost|closed/);
      expect(host.pid).not.toBe(oldPid);
      expect(reconnects).toBeGreaterThan(0);
      expect(existsSync(join(host.dir, 'tested'))).toBe(true);
      expect((await conn.exec(`cat ${host.dir}/boot_id`)).stdout).toBe('boot-2\n');
    } finally {
      await stop();
    }
  }, 90_000);

  it('a test_command that fails until reboot_timeout fails the task, saying so', async () => {
    writeFileSync(join(host.dir, 'boot_id'), 'boot-3\n');
    const stop = answerReboots({ downMs: 300, comeBack: true, bootId: () => 'boot-4' });
    try {
      const run = await applyExecutor.run(rebootModule, ctx(), {
        reboot_command: `touch ${host.dir}/reboot-requested`,
        boot_time_command: `cat ${host.dir}/boot_id`,
        test_command: 'false',
        reboot_timeout: 4,
      });
      expect(run.result.failed).toBe(true);
      expect(run.result.data.rebooted).toBe(true);
      expect(run.result.msg).toMatch(
        /^Timed out waiting for post-reboot test command \(timeout=4\): last error: Test command failed/,
      );
    } finally {
      await stop();
    }
  }, 60_000);

  it('a host that never comes back fails after reboot_timeout with a clear error', async () => {
    writeFileSync(join(host.dir, 'boot_id'), 'boot-5\n');
    const stop = answerReboots({ downMs: 0, comeBack: false, bootId: () => 'boot-6' });
    try {
      const run = await applyExecutor.run(rebootModule, ctx(), {
        reboot_command: `touch ${host.dir}/reboot-requested`,
        boot_time_command: `cat ${host.dir}/boot_id`,
        connect_timeout: 1,
        reboot_timeout: 5,
      });
      expect(run.result.failed).toBe(true);
      expect(run.result.changed).toBe(true);
      expect(run.result.data.rebooted).toBe(true);
      expect(run.result.msg).toMatch(
        /^Timed out waiting for last boot time check \(timeout=5\): last error: cannot connect to rb1 .*/,
      );
    } finally {
      await stop();
    }
    // wait_for_connection on the dead host: the same clear failure after its timeout.
    const waited = await checkExecutor.run(waitForConnectionModule, ctx(), {
      timeout: 2,
      sleep: 0.5,
      connect_timeout: 1,
    });
    expect(waited.plan.failed).toMatch(/^timed out waiting for ping module test: cannot connect to rb1/);
    // ...and it returns once the host is back (started again 1.5 s into the wait).
    const back = sleep(1500).then(() => host.restart());
    const ok = await checkExecutor.run(waitForConnectionModule, ctx(), { timeout: 30, sleep: 0.5, connect_timeout: 1 });
    await back;
    expect(ok.plan.failed).toBeUndefined();
    expect(ok.plan.changed).toBe(false);
    expect(typeof ok.plan.data?.elapsed).toBe('number');
  }, 60_000);
});

describe('reboot through the CLI: the engine replaces its one connection and the next task uses it', () => {
  it('--check plans it; the run reboots, later tasks see the new boot', async () => {
    writeFileSync(join(host.dir, 'boot_id'), 'boot-7\n');
    const inventory = lab.writeInventory({ rebooters: [host.name] }, { [host.name]: { host_dir: host.dir } });
    const playbook = join(import.meta.dirname, '..', 'fixtures', 'reboot', 'site.yml');
    const env = { CAIRN_STATE_DIR: join(lab.dir, 'state') };
    const check = await runCairn(['play', playbook, '-i', inventory, '--check'], { env });
    expect(check.code, check.stderr + check.stdout).toBe(0);
    expect(existsSync(join(host.dir, 'reboot-requested'))).toBe(false);
    const stop = answerReboots({ downMs: 1000, comeBack: true, bootId: () => 'boot-8' });
    try {
      const run = await runCairn(['play', playbook, '-i', inventory], { env });
      expect(run.code, run.stderr + run.stdout).toBe(0);
      expect(readFileSync(join(host.dir, 'after'), 'utf8')).toBe('True boot-8\n');
    } finally {
      await stop();
    }
  }, 120_000);
});
