/**
 * Load figures for issue 13 (never part of `npm test`): wall time and the controller's peak memory (GNU
 * time's maximum RSS) for
 *   - 9 sshd hosts x 200 tasks,
 *   - 9 sshd hosts x one task looping over 20,000 items,
 *   - one host printing 1 GB (the others printing a line),
 *   - `--list-hosts` over an inventory of 50,000 hosts.
 * Run: `npx tsc -p tsconfig.json && node dist/test/bench/load.js` (as root: it starts sshd on loopback).
 * LOAD_ONLY=tasks,loop,flood,list picks some.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { cairnBin, repoRoot } from '../helpers/cli.js';
import { sshdAvailable, startSshHosts } from '../helpers/sshd.js';
import { trackProcess } from './cleanup.js';

const TASKS = Number(process.env.LOAD_TASKS ?? 200);
const only = new Set((process.env.LOAD_ONLY ?? 'tasks,loop,flood,list').split(','));

interface Measured {
  code: number;
  seconds: number;
  maxRssMiB: number;
  tail: string;
}

function measure(args: string[], env: Record<string, string>): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'LOAD %e %M', process.execPath, cairnBin, ...args], {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackProcess(child);
    let tail = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-400)));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /LOAD ([\d.]+) (\d+)/.exec(stderr);
      resolve({
        code: code ?? -1,
        seconds: m ? Number(m[1]) : NaN,
        maxRssMiB: m ? Math.round(Number(m[2]) / 1024) : NaN,
        tail: tail + stderr.slice(-400),
      });
    });
  });
}

function row(label: string, m: Measured): void {
  console.log(
    `${label.padEnd(44)} | exit ${m.code} | ${m.seconds.toFixed(1).padStart(7)} s | max RSS ${String(m.maxRssMiB).padStart(5)} MiB`,
  );
  if (m.code !== 0) console.log(m.tail);
}

async function main(): Promise<void> {
  const ok = sshdAvailable();
  if (!ok.ok) throw new Error(`load figures need local sshd hosts: ${ok.reason}`);
  const lab = await startSshHosts(9);
  try {
    const inventory = lab.writeInventory(
      {},
      Object.fromEntries(lab.hosts.map((h, i) => [h.name, { loud: i === 0 ? 1 : 0 }])),
    );
    const env = { CAIRN_STATE_DIR: join(lab.dir, 'state'), CAIRN_LOCK_DIR: join(lab.dir, 'locks') };
    const play = (name: string, tasks: unknown[]): string => {
      const path = join(lab.dir, `${name}.yaml`);
      writeFileSync(path, stringify([{ name, hosts: 'all', gather_facts: false, tasks }]));
      return path;
    };
    if (only.has('tasks')) {
      const tasks = Array.from({ length: TASKS }, (_, i) => ({ name: `task ${i + 1}`, command: 'true' }));
      row(`9 hosts x ${TASKS} tasks`, await measure(['play', play('tasks', tasks), '-i', inventory], env));
    }
    if (only.has('loop')) {
      const loop = [
        { name: 'loop', debug: { msg: 'item {{ item }}' }, loop: Array.from({ length: 20_000 }, (_, i) => i) },
      ];
      row('9 hosts x 20,000 loop items (debug)', await measure(['play', play('loop', loop), '-i', inventory], env));
    }
    if (only.has('flood')) {
      const flood = [
        { name: 'flood', shell: "head -c 1G /dev/zero | tr '\\0' x", when: 'loud == 1' },
        { name: 'calm', shell: 'echo calm', when: 'loud == 0' },
      ];
      row(
        '1 host printing 1 GB, 8 printing a line',
        await measure(['play', play('flood', flood), '-i', inventory], env),
      );
    }
    if (only.has('list')) {
      const hosts: Record<string, Record<string, unknown>> = {};
      for (let i = 0; i < 50_000; i++)
        hosts[`node${String(i).padStart(5, '0')}`] = { ansible_host: `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}` };
      const big = join(lab.dir, 'big-inventory.yml');
      writeFileSync(big, stringify({ all: { hosts } }));
      row(
        '--list-hosts over 50,000 hosts',
        await measure(['play', play('list', [{ command: 'true' }]), '-i', big, '--list-hosts'], env),
      );
    }
  } finally {
    await lab.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
