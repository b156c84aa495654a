/**
 * The lab's QMP client against a real qemu: `-machine none` runs no guest at all (no kernel, no accelerator
 * needed), yet answers QMP exactly as a VM's qemu does. Skipped with the reason when qemu is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../../runner/features/lab/preflight.js';
import { qmp, qmpRun } from '../../runner/features/lab/qmp.js';

const qemu = findExecutable('qemu-system-x86_64');
const dir = mkdtempSync(join(tmpdir(), 'cairn-qmp-'));
const socket = join(dir, 'qmp.sock');
let child: ChildProcess | undefined;

beforeAll(async () => {
  if (!qemu) return;
  child = spawn(
    qemu,
    ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${socket},server=on,wait=off`],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 200 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
});
afterAll(() => {
  if (child?.pid) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!qemu)('QMP client (qemu-system-x86_64 not installed: apt-get install qemu-system-x86)', () => {
  it('negotiates and runs commands in order on one connection', async () => {
    const [status, version] = (await qmpRun(socket, [{ execute: 'query-status' }, { execute: 'query-version' }])) as [
      { status: string },
      { qemu: { major: number } },
    ];
    expect(typeof status.status).toBe('string');
    expect(version.qemu.major).toBeGreaterThanOrEqual(5);
  });

  it("reports qemu's error for a bad command, naming it", async () => {
    await expect(qmp(socket, 'device_del', { id: 'no-such-disk' })).rejects.toThrow(/QMP device_del: .*no-such-disk/);
  });

  it('says so when nothing listens', async () => {
    await expect(qmp(join(dir, 'absent.sock'), 'query-status')).rejects.toThrow(/QMP .*absent\.sock/);
  });
});
