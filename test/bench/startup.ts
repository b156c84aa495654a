/**
 * `npm run bench:startup [-- --old DIR] [--runs N] [--cpu-prof-dir DIR]`: the fixed start of cairn (issue 17
 * item 2). Each command below runs N times (default 7) under GNU time, interleaved with the same command of
 * the build in --old DIR (another cairn checkout, built: its bin/cairn.js), and the floor (a node-ssh client
 * running one command, test/bench/floor.ts) runs as often. The table shows medians of the controller CPU
 * (user + system of the process: steadier than wall on a shared machine) and wall, and the files each
 * command loads, ES and CommonJS (test/helpers/module-trace.mjs). The load average (1 min) is printed before
 * and after: on a shared machine it says what a figure is worth. Never part of `npm test`.
 *
 * Commands: `--version`, `inventory --list`, `play --syntax-check` of a one-task play and of site.yaml, and
 * that one-task play (`command: /bin/true`) on one loopback sshd host. The host is the test harness's
 * (test/helpers/sshd.ts: its own authorized_keys file), not the bench's shared `cairnbench` user, whose
 * authorized_keys another bench running at the same time would overwrite.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { startSshHosts } from '../helpers/sshd.js';
import { measure, median, type Measured } from './measure.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

const RUNS = Number(option('runs', '7'));
const OLD = option('old', '');
const CPU_PROF_DIR = option('cpu-prof-dir', '');

function load(): string {
  return loadavg()[0]!.toFixed(1);
}

/** How many files (ES modules and CommonJS, node: builtins left out) `node BIN ARGS` loads. */
function filesLoaded(bin: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, trace: string): Promise<number> {
  const hook = join(repoRoot, 'test', 'helpers', 'module-trace.mjs');
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--import', hook, bin, ...args],
      { cwd, env: { ...process.env, ...env, NO_COLOR: '1', CAIRN_MODULE_TRACE: trace }, timeout: 120_000 },
      (err) => {
        if (err && typeof err.code !== 'number') return fail(err);
        const files = readFileSync(trace, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => l.replace(/^(esm|cjs) /, '').replace(/^file:\/\//, ''))
          .filter((f) => !f.startsWith('node:'));
        done(new Set(files).size);
      },
    );
  });
}

async function main(): Promise<void> {
  const lab = await startSshHosts(1);
  try {
    const inventory = lab.writeInventory();
    const host = lab.hosts[0]!;
    const playbook = join(lab.dir, 'one-task.yaml');
    writeFileSync(
      playbook,
      '- name: one task\n  hosts: all\n  gather_facts: false\n  tasks:\n    - command: /bin/true\n',
    );
    const floorHosts = join(lab.dir, 'floor.json');
    writeFileSync(
      floorHosts,
      JSON.stringify({
        user: host.user,
        privateKeyPath: lab.clientKeyPath,
        hosts: [{ address: host.address, port: host.port }],
      }),
    );
    const commands: { label: string; args: string[] }[] = [
      { label: '`cairn --version`', args: ['--version'] },
      { label: '`cairn inventory --list`', args: ['inventory', '--list', '-i', inventory] },
      { label: '`cairn play one-task --syntax-check`', args: ['play', playbook, '-i', inventory, '--syntax-check'] },
      {
        label: '`cairn play site.yaml --syntax-check`',
        args: ['play', 'site.yaml', '-i', 'inventories/example', '--syntax-check'],
      },
      { label: '`cairn play one-task` (1 host)', args: ['play', playbook, '-i', inventory] },
    ];
    const builds = [{ name: 'new', root: repoRoot }, ...(OLD ? [{ name: 'old', root: resolve(OLD) }] : [])];
    const env = { CAIRN_STATE_DIR: join(lab.dir, 'state') };
    const results = new Map<string, Measured[]>();
    const floor: Measured[] = [];
    const key = (build: string, label: string): string => `${build} ${label}`;
    const loadBefore = load();
    console.log(`cairn start-up bench: median of ${RUNS}, builds ${builds.map((b) => b.root).join(' vs ')}`);
    for (let r = 0; r < RUNS; r++) {
      const f = await measure(process.execPath, [join(repoRoot, 'dist/test/bench/floor.js'), floorHosts, '1', '1']);
      if (f.code !== 0) throw new Error(`floor failed (${f.code}): ${f.output}`);
      floor.push(f);
      for (const command of commands) {
        // Alternate which build goes first, so neither always runs right after the other.
        const order = r % 2 === 0 ? builds : [...builds].reverse();
        for (const build of order) {
          const profile =
            CPU_PROF_DIR !== '' ? ['--cpu-prof', '--cpu-prof-dir', resolve(CPU_PROF_DIR, build.name)] : [];
          const m = await measure(process.execPath, [...profile, join(build.root, 'bin/cairn.js'), ...command.args], {
            cwd: build.root,
            env,
          });
          if (m.code !== 0) throw new Error(`${build.name} ${command.label} exited ${m.code}: ${m.output}`);
          const k = key(build.name, command.label);
          results.set(k, [...(results.get(k) ?? []), m]);
        }
      }
    }
    const loadAfter = load();
    const traceDir = join(lab.dir, 'traces');
    mkdirSync(traceDir);
    const header = ['command', ...builds.flatMap((b) => [`files ${b.name}`, `CPU ${b.name} s`, `wall ${b.name} s`])];
    console.log(`| ${header.join(' | ')} |`);
    console.log(`| ${header.map(() => '---').join(' | ')} |`);
    let traces = 0;
    for (const command of commands) {
      const cells = [command.label];
      for (const build of builds) {
        const runs = results.get(key(build.name, command.label))!;
        const trace = join(traceDir, `${traces++}.txt`);
        cells.push(String(await filesLoaded(join(build.root, 'bin/cairn.js'), command.args, build.root, env, trace)));
        cells.push(median(runs.map((m) => m.cpuSeconds)).toFixed(2), median(runs.map((m) => m.wallSeconds)).toFixed(2));
      }
      console.log(`| ${cells.join(' | ')} |`);
    }
    const fl = [median(floor.map((m) => m.cpuSeconds)).toFixed(2), median(floor.map((m) => m.wallSeconds)).toFixed(2)];
    console.log(`floor (node-ssh, one command on the same host): CPU ${fl[0]} s, wall ${fl[1]} s`);
    console.log(`load average (1 min): ${loadBefore} before, ${loadAfter} after`);
  } finally {
    await lab.stop();
  }
}

await main();
