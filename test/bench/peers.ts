/**
 * `npm run bench:peers [-- --hosts 20] [--runs 3] [--forks N] [--tools cairn] [--workloads W2] [--old DIR]`: the two workloads of issue 17, run by cairn and by
 * Debian's ansible-core (tuned: pipelining + ControlPersist; and default) on the same loopback sshd hosts
 * (test/bench/hosts.ts), interleaved (each run goes through every tool before the next run), median of the runs:
 *   W1: 50 × `command: /bin/true` per host;
 *   W2: a 20-task config play (4 dirs, 4 copies, 4 templates, 4 lineinfile, 2 blockinfile, 2 probes): first run
 *       on a clean tree, no-change rerun, --check.
 * Each task writes its own file (a lineinfile on a copied file would be undone by the copy on every rerun).
 * One playbook file serves both tools (cairn reads Ansible's task syntax; the template is `{{ var }}` only).
 * ansible-core is installed with apt when ansible-playbook is missing. Not part of `npm test`.
 *
 * W2 also has a floor (test/bench/floor-w2.ts, node-ssh): "sequential" = one command per task per host, one
 * round trip each (the issue's per-command floor); "batched" = the host's twenty commands in one round trip.
 * The first run's floor writes, the rerun's and --check's floor reads (one probe per task). They run in the
 * same interleaved rounds as cairn, and a second table prints floor, cairn and cairn ÷ floor.
 * `--old DIR` also measures the cairn of another built checkout (DIR/bin/cairn.js) as "cairn old", in the same
 * rounds: a before/after that the machine's load moves alike. The 1-min load average is printed per round.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { BENCH_USER, startBenchHosts } from './hosts.js';
import { measure, median, type Measured } from './measure.js';
import { w1, w2, W2_ROOT, W2_TEMPLATE } from './workloads.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

const HOSTS = Number(option('hosts', '20'));
const RUNS = Number(option('runs', '3'));
const FORKS = Number(option('forks', String(HOSTS <= 20 ? 20 : HOSTS <= 100 ? 50 : 200)));

function ensureAnsible(): void {
  if (spawnSync('sh', ['-c', 'command -v ansible-playbook']).status === 0) return;
  console.log('ansible-playbook is missing: apt-get install ansible-core');
  const apt = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'ansible-core'], { stdio: 'inherit' });
  if (apt.status !== 0) throw new Error('apt-get install ansible-core failed');
}

type Tool = 'cairn' | 'cairn old' | 'ansible tuned' | 'ansible default';
const ALL_TOOLS: Tool[] = ['cairn', 'ansible tuned', 'ansible default'];
/** Another built checkout's cairn, measured as "cairn old" (`--old DIR`). */
const OLD = option('old', '');
/** `--tools cairn` (comma-separated) measures only those: cairn alone needs no ansible-core. */
const TOOLS: Tool[] = option('tools', ALL_TOOLS.join(','))
  .split(',')
  .map((name) => {
    const tool = ALL_TOOLS.find((known) => known === name.trim());
    if (!tool) throw new Error(`--tools: unknown tool ${JSON.stringify(name)} (known: ${ALL_TOOLS.join(', ')})`);
    return tool;
  })
  .concat(OLD !== '' ? ['cairn old' as const] : []);
const WORKLOADS = new Set(option('workloads', 'W1,W2').split(','));
const ALL_CASES = ['W1', 'W2 first run', 'W2 no-change rerun', 'W2 --check'] as const;
const CASES = ALL_CASES.filter((name) => WORKLOADS.has(name.slice(0, 2)));
type FloorCase = 'seq first' | 'seq probe' | 'batched first' | 'batched probe';

function load(): string {
  return loadavg()[0]!.toFixed(2);
}

async function main(): Promise<void> {
  if (TOOLS.some((tool) => tool !== 'cairn')) ensureAnsible();
  const lab = await startBenchHosts(HOSTS);
  try {
    const inventory = lab.writeInventory(HOSTS, 'inventory.yml');
    const templatePath = join(lab.dir, 'app.conf.j2');
    writeFileSync(templatePath, W2_TEMPLATE);
    const w1Path = join(lab.dir, 'w1.yml');
    const w2Path = join(lab.dir, 'w2.yml');
    writeFileSync(w1Path, w1());
    writeFileSync(w2Path, w2(templatePath));
    const cfg = (name: string, tuned: boolean): string => {
      const path = join(lab.dir, `ansible-${name}.cfg`);
      mkdirSync(join(lab.dir, `cp-${name}`), { recursive: true });
      const lines = [
        '[defaults]',
        'host_key_checking = True',
        'interpreter_python = /usr/bin/python3',
        'retry_files_enabled = False',
      ];
      lines.push('[ssh_connection]', `control_path_dir = ${join(lab.dir, `cp-${name}`)}`);
      if (tuned) lines.push('pipelining = True', 'ssh_args = -o ControlMaster=auto -o ControlPersist=60s');
      writeFileSync(path, lines.join('\n') + '\n');
      return path;
    };
    const ansibleCfg: Record<string, string> = {
      'ansible tuned': cfg('tuned', true),
      'ansible default': cfg('default', false),
    };
    const sshCommonArgs = `-o UserKnownHostsFile=${lab.knownHostsPath} -o StrictHostKeyChecking=yes`;

    const runTool = (tool: Tool, playbook: string, check: boolean): Promise<Measured> => {
      if (tool === 'cairn' || tool === 'cairn old') {
        const args = [
          tool === 'cairn' ? join(repoRoot, 'bin/cairn.js') : join(resolve(OLD), 'bin/cairn.js'),
          'play',
          playbook,
          '-i',
          inventory,
          '--no-journal',
          '-f',
          `${FORKS}`,
        ];
        return measure(process.execPath, check ? [...args, '--check'] : args, {
          env: { CAIRN_STATE_DIR: join(lab.dir, 'state') },
        });
      }
      const args = [playbook, '-i', inventory, '-f', `${FORKS}`, ...(check ? ['--check'] : [])];
      return measure('ansible-playbook', args, {
        cwd: lab.dir,
        env: { ANSIBLE_CONFIG: ansibleCfg[tool], ANSIBLE_SSH_COMMON_ARGS: sshCommonArgs, ANSIBLE_NOCOLOR: '1' },
      });
    };

    const floorHosts = join(lab.dir, 'floor-w2.json');
    const hostList = lab.hosts.slice(0, HOSTS).map((h) => ({ name: h.name, address: h.address, port: h.port }));
    writeFileSync(floorHosts, JSON.stringify({ user: lab.user, privateKeyPath: lab.clientKeyPath, hosts: hostList }));
    const runFloor = (mode: 'first' | 'probe', shape: 'sequential' | 'batched'): Promise<Measured> =>
      measure(process.execPath, [
        join(repoRoot, 'dist/test/bench/floor-w2.js'),
        floorHosts,
        mode,
        shape,
        `${FORKS}`,
        W2_ROOT,
      ]);
    const cleanW2 = (): void => {
      if (existsSync(W2_ROOT)) rmSync(W2_ROOT, { recursive: true, force: true });
      mkdirSync(W2_ROOT, { recursive: true });
      spawnSync('chown', [`${BENCH_USER}:`, W2_ROOT]);
    };

    const results = new Map<string, Measured[]>();
    const record = (tool: string, name: string, m: Measured): void => {
      if (m.code !== 0) throw new Error(`${tool} ${name} failed (${m.code}):\n${m.output}`);
      const key = `${tool}|${name}`;
      results.set(key, [...(results.get(key) ?? []), m]);
      process.stderr.write(
        `  run: ${tool.padEnd(15)} ${name.padEnd(19)} ${m.wallSeconds.toFixed(2)} s ${m.cpuSeconds.toFixed(2)} CPU (load ${load()})\n`,
      );
    };
    const loads: string[] = [];
    const w2Floor = WORKLOADS.has('W2') && TOOLS.some((tool) => tool.startsWith('cairn'));
    for (let r = 0; r < RUNS; r++) {
      const loadBefore = load();
      if (w2Floor) {
        for (const shape of ['sequential', 'batched'] as const) {
          const short = shape === 'sequential' ? 'seq' : 'batched';
          cleanW2();
          record('floor', `${short} first`, await runFloor('first', shape));
          record('floor', `${short} probe`, await runFloor('probe', shape));
        }
      }
      for (const tool of TOOLS) {
        if (WORKLOADS.has('W1')) record(tool, 'W1', await runTool(tool, w1Path, false));
        if (!WORKLOADS.has('W2')) continue;
        cleanW2();
        record(tool, 'W2 first run', await runTool(tool, w2Path, false));
        record(tool, 'W2 no-change rerun', await runTool(tool, w2Path, false));
        record(tool, 'W2 --check', await runTool(tool, w2Path, true));
      }
      loads.push(`${loadBefore} → ${load()}`);
    }
    console.log(
      `\nbench:peers: ${HOSTS} loopback hosts, forks ${FORKS}, median of ${RUNS} interleaved runs (wall s; CPU s)`,
    );
    console.log(`| workload | cairn | ansible tuned | ansible default | tuned ÷ cairn | default ÷ cairn |`);
    console.log(`|---|---|---|---|---|---|`);
    for (const name of CASES) {
      const runs = (tool: Tool): Measured[] => results.get(`${tool}|${name}`) ?? [];
      const wall = (tool: Tool): number => median(runs(tool).map((m) => m.wallSeconds));
      const cpu = (tool: Tool): number => median(runs(tool).map((m) => m.cpuSeconds));
      const cell = (tool: Tool): string =>
        runs(tool).length ? `${wall(tool).toFixed(2)} (${cpu(tool).toFixed(1)} CPU)` : 'not run';
      const ratio = (tool: Tool): string =>
        runs(tool).length && runs('cairn').length ? `${(wall(tool) / wall('cairn')).toFixed(1)}×` : '—';
      console.log(
        `| ${name} | ${cell('cairn')} | ${cell('ansible tuned')} | ${cell('ansible default')} | ${ratio('ansible tuned')} | ${ratio('ansible default')} |`,
      );
    }
    if (w2Floor) {
      const wall = (key: string): number => median((results.get(key) ?? []).map((m) => m.wallSeconds));
      const cpu = (key: string): number => median((results.get(key) ?? []).map((m) => m.cpuSeconds));
      const cairns = TOOLS.filter((tool) => tool.startsWith('cairn'));
      console.log(
        `\nW2 against its floor (node-ssh; sequential = one round trip per task per host, batched = one per host); wall s (CPU s)`,
      );
      console.log(
        `| W2 | floor sequential | floor batched | ${cairns.join(' | ')} | ${cairns.map((t) => `${t} ÷ sequential`).join(' | ')} |`,
      );
      console.log(`|---|---|---|${cairns.map(() => '---|---|').join('')}`);
      const floorOf: Record<string, FloorCase[]> = {
        'W2 first run': ['seq first', 'batched first'],
        'W2 no-change rerun': ['seq probe', 'batched probe'],
        'W2 --check': ['seq probe', 'batched probe'],
      };
      for (const name of CASES.filter((c) => c !== 'W1')) {
        const [seq, batched] = floorOf[name]!.map((c) => `floor|${c}`) as [string, string];
        const cell = (key: string): string => `${wall(key).toFixed(2)} (${cpu(key).toFixed(2)})`;
        const ratios = cairns.map((t) => `${(wall(`${t}|${name}`) / wall(seq)).toFixed(2)}×`);
        console.log(
          `| ${name} | ${cell(seq)} | ${cell(batched)} | ${cairns.map((t) => cell(`${t}|${name}`)).join(' | ')} | ${ratios.join(' | ')} |`,
        );
      }
    }
    console.log(`\nload average (1 min) before → after each round: ${loads.join('; ')}`);
  } finally {
    await lab.stop();
  }
}

await main();
