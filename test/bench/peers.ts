/**
 * `npm run bench:peers [-- --hosts 20] [--runs 3] [--forks N] [--tools cairn]`: the two workloads of issue 17, run by cairn and by
 * Debian's ansible-core (tuned: pipelining + ControlPersist; and default) on the same loopback sshd hosts
 * (test/bench/hosts.ts), interleaved (each run goes through every tool before the next run), median of the runs:
 *   W1: 50 × `command: /bin/true` per host;
 *   W2: a 20-task config play (4 dirs, 4 copies, 4 templates, 4 lineinfile, 2 blockinfile, 2 probes): first run
 *       on a clean tree, no-change rerun, --check.
 * Each task writes its own file (a lineinfile on a copied file would be undone by the copy on every rerun).
 * One playbook file serves both tools (cairn reads Ansible's task syntax; the template is `{{ var }}` only).
 * ansible-core is installed with apt when ansible-playbook is missing. Not part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/cli.js';
import { BENCH_USER, startBenchHosts } from './hosts.js';
import { measure, median, type Measured } from './measure.js';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at !== -1 && process.argv[at + 1] !== undefined ? (process.argv[at + 1] as string) : fallback;
}

const HOSTS = Number(option('hosts', '20'));
const RUNS = Number(option('runs', '3'));
const FORKS = Number(option('forks', String(HOSTS <= 20 ? 20 : HOSTS <= 100 ? 50 : 200)));
/** Where W2 writes on each "host"; every loopback host shares this machine's disk, so each gets its own folder. */
const W2_ROOT = `/var/lib/cairn-bench/w2`;

function ensureAnsible(): void {
  if (spawnSync('sh', ['-c', 'command -v ansible-playbook']).status === 0) return;
  console.log('ansible-playbook is missing: apt-get install ansible-core');
  const apt = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'ansible-core'], { stdio: 'inherit' });
  if (apt.status !== 0) throw new Error('apt-get install ansible-core failed');
}

function w1(): string {
  const tasks = Array.from({ length: 50 }, (_, i) => `    - name: no-op ${i + 1}\n      command: /bin/true\n`);
  return `- name: w1\n  hosts: all\n  gather_facts: false\n  tasks:\n${tasks.join('')}`;
}

function w2(templatePath: string): string {
  const base = `${W2_ROOT}/{{ inventory_hostname }}`;
  const t: string[] = [];
  for (let i = 1; i <= 4; i++) {
    t.push(`    - name: dir ${i}\n      file: { path: "${base}/d${i}", state: directory, mode: "0755" }`);
  }
  for (let i = 1; i <= 4; i++) {
    t.push(
      `    - name: copy ${i}\n      copy: { dest: "${base}/d${i}/static.conf", content: "static ${i}\\n", mode: "0644" }`,
    );
  }
  for (let i = 1; i <= 4; i++) {
    t.push(
      `    - name: template ${i}\n      template: { src: "${templatePath}", dest: "${base}/d${i}/app.conf", mode: "0644" }`,
    );
  }
  for (let i = 1; i <= 4; i++) {
    t.push(
      `    - name: lineinfile ${i}\n      lineinfile: { path: "${base}/d${i}/lines.conf", regexp: "^key${i}=", line: "key${i}=v${i}", create: true }`,
    );
  }
  for (let i = 1; i <= 2; i++) {
    t.push(
      `    - name: blockinfile ${i}\n      blockinfile: { path: "${base}/d${i}/block.conf", block: "block ${i} line a\\nblock ${i} line b", create: true }`,
    );
  }
  t.push(`    - name: probe stat\n      stat: { path: "${base}/d1/app.conf" }\n      register: probe_stat`);
  t.push(`    - name: probe command\n      command: cat ${base}/d2/static.conf\n      changed_when: false`);
  return `- name: w2\n  hosts: all\n  gather_facts: false\n  vars:\n    app_port: 8080\n  tasks:\n${t.join('\n')}\n`;
}

type Tool = 'cairn' | 'ansible tuned' | 'ansible default';
const ALL_TOOLS: Tool[] = ['cairn', 'ansible tuned', 'ansible default'];
/** `--tools cairn` (comma-separated) measures only those: cairn alone needs no ansible-core. */
const TOOLS: Tool[] = option('tools', ALL_TOOLS.join(','))
  .split(',')
  .map((name) => {
    const tool = ALL_TOOLS.find((known) => known === name.trim());
    if (!tool) throw new Error(`--tools: unknown tool ${JSON.stringify(name)} (known: ${ALL_TOOLS.join(', ')})`);
    return tool;
  });
const CASES = ['W1', 'W2 first run', 'W2 no-change rerun', 'W2 --check'] as const;

async function main(): Promise<void> {
  if (TOOLS.some((tool) => tool !== 'cairn')) ensureAnsible();
  const lab = await startBenchHosts(HOSTS);
  try {
    const inventory = lab.writeInventory(HOSTS, 'inventory.yml');
    const templatePath = join(lab.dir, 'app.conf.j2');
    writeFileSync(templatePath, '# managed\nhost = {{ inventory_hostname }}\nport = {{ app_port }}\n');
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
      if (tool === 'cairn') {
        const args = [
          join(repoRoot, 'bin/cairn.js'),
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

    const results = new Map<string, Measured[]>();
    const record = (tool: Tool, name: string, m: Measured): void => {
      if (m.code !== 0) throw new Error(`${tool} ${name} failed (${m.code}):\n${m.output}`);
      const key = `${tool}|${name}`;
      results.set(key, [...(results.get(key) ?? []), m]);
      process.stderr.write(`  run: ${tool.padEnd(15)} ${name.padEnd(19)} ${m.wallSeconds.toFixed(2)} s\n`);
    };
    for (let r = 0; r < RUNS; r++) {
      for (const tool of TOOLS) {
        record(tool, 'W1', await runTool(tool, w1Path, false));
        if (existsSync(W2_ROOT)) rmSync(W2_ROOT, { recursive: true, force: true });
        mkdirSync(W2_ROOT, { recursive: true });
        spawnSync('chown', [`${BENCH_USER}:`, W2_ROOT]);
        record(tool, 'W2 first run', await runTool(tool, w2Path, false));
        record(tool, 'W2 no-change rerun', await runTool(tool, w2Path, false));
        record(tool, 'W2 --check', await runTool(tool, w2Path, true));
      }
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
  } finally {
    await lab.stop();
  }
}

await main();
