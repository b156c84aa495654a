/**
 * One run per inventory per machine (issue 13, item 9): the lock is keyed on the inventory's real path and
 * lives in one machine-wide folder, so the same inventory run from two working folders (each with its own
 * .cairn state), or reached through a symlink, meets the same lock. Real sshd host, the built CLI.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cairnBin, runCairn } from '../helpers/cli.js';
import { sshdAvailable, startSshHosts, type TestSshLab } from '../helpers/sshd.js';
import { runLockPath } from '../../runner/app/lock.js';

const available = sshdAvailable();

describe.skipIf(!available.ok)(
  `the run lock is per inventory, not per folder${available.ok ? '' : ` (skipped: ${available.reason})`}`,
  () => {
    let lab: TestSshLab;
    beforeAll(async () => {
      lab = await startSshHosts(1, { names: ['locked'] });
    });
    afterAll(async () => {
      await lab?.stop();
    });

    it('the same inventory from a second folder (and through a symlink) is refused while the first run holds it', async () => {
      const inventory = lab.writeInventory({}, { locked: { host_dir: lab.hosts[0]!.dir } });
      const playbook = join(lab.dir, 'slow.yaml');
      const started = join(lab.hosts[0]!.dir, 'slow-started');
      const release = join(lab.hosts[0]!.dir, 'slow-release');
      writeFileSync(
        playbook,
        stringify([
          {
            name: 'slow',
            hosts: 'all',
            gather_facts: false,
            tasks: [
              {
                name: 'Hold the lock a while',
                shell: `touch ${started}; i=0; while [ ! -e ${release} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`,
              },
            ],
          },
        ]),
      );
      const folderA = join(lab.dir, 'operator-a');
      const folderB = join(lab.dir, 'operator-b');
      mkdirSync(folderA);
      mkdirSync(folderB);
      const viaLink = join(folderB, 'inventory-link.yml');
      symlinkSync(inventory, viaLink);
      // Each folder keeps its own state (journal), as two shells in two checkouts would.
      const envWithoutLockDir = { ...process.env, NO_COLOR: '1', CAIRN_LOCK_DIR: '' };
      const first = spawn(process.execPath, [cairnBin, 'play', playbook, '-i', inventory], {
        cwd: folderA,
        env: { ...envWithoutLockDir, CAIRN_STATE_DIR: join(folderA, '.cairn') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let firstOut = '';
      first.stdout.on('data', (d: Buffer) => (firstOut += d.toString()));
      first.stderr.on('data', (d: Buffer) => (firstOut += d.toString()));
      const firstDone = new Promise<number>((resolve) => first.on('close', (code) => resolve(code ?? -1)));
      const deadline = Date.now() + 30_000;
      while (!existsSync(started) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(existsSync(started), firstOut).toBe(true);

      for (const path of [inventory, viaLink]) {
        const second = await runCairn(['play', playbook, '-i', path], {
          cwd: folderB,
          env: { CAIRN_LOCK_DIR: '', CAIRN_STATE_DIR: join(folderB, '.cairn') },
        });
        expect(second.code, second.stdout + second.stderr).not.toBe(0);
        expect(second.stderr).toMatch(new RegExp(`another cairn run holds the lock on .*: pid ${first.pid}\\b`));
        // Where the lock lives is said, and it is the machine-wide folder, not either working folder.
        expect(second.stderr).toContain(`lock file: ${runLockPath(inventory)}`);
        expect(runLockPath(inventory).startsWith(folderA) || runLockPath(inventory).startsWith(folderB)).toBe(false);
      }
      // The first run holds the lock until the test lets its task end.
      writeFileSync(release, '');
      expect(await firstDone, firstOut).toBe(0);
      // Released at the end: the next run goes through.
      const after = await runCairn(['play', playbook, '-i', viaLink], {
        cwd: folderB,
        env: { CAIRN_LOCK_DIR: '', CAIRN_STATE_DIR: join(folderB, '.cairn') },
      });
      expect(after.code, after.stderr).toBe(0);
    }, 120_000);
  },
);
