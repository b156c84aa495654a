/**
 * The firewall role and its nft_ruleset module against a real sshd in a network namespace of its own, with
 * real nftables (issue 19, item 2). The namespace is linked to this one by a veth pair on a private /29
 * (10.78.N.0/29): this side has .1 (cairn, the management address) and .3 (an address outside management),
 * the namespace has .2, where sshd and a few TCP listeners run. Nothing leaves the pair; the namespace, the
 * veth and every process are removed by name and pid at the end.
 *
 * What is proven: --check predicts exactly what the run changes; a second run changes nothing; allowed ports
 * answer and a sample of others do not (from management and from outside), the rest is counted; drift is
 * repaired; a ruleset nft refuses touches nothing; a ruleset that refuses cairn's next SSH connection is rolled
 * back at once; a ruleset that cuts cairn's own connection is rolled back by the host itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedKeys, jsonEvents, repoRoot, runCairn, taskResults } from '../helpers/cli.js';
import { requireSshd, startSshHosts, type TestSshLab } from '../helpers/sshd.js';

requireSshd();
const NFT = '/usr/sbin/nft';
const IP = '/usr/sbin/ip';
if (!existsSync(NFT)) throw new Error(`${NFT} is not installed: apt-get install -y nftables (scripts/test-prereqs.sh)`);

const playbook = join(repoRoot, 'playbooks', 'firewall.yaml');
const rulesetPlaybook = join(repoRoot, 'test', 'fixtures', 'firewall', 'ruleset.yaml');

// One /29 per test process, so parallel runs of this file do not meet.
const subnet = 8 + (process.pid % 240);
const NS = `cairnfw${process.pid}`;
const VETH_HERE = `cfw${process.pid % 100000}h`;
const VETH_THERE = `cfw${process.pid % 100000}n`;
const CAIRN_ADDRESS = `10.78.${subnet}.1`;
const OUTSIDE_ADDRESS = `10.78.${subnet}.3`;
const HOST_ADDRESS = `10.78.${subnet}.2`;
const ROLLBACK_SECONDS = 12;
/**
 * `ip netns exec` bind-mounts each file of /etc/netns/NAME over /etc in the command's own mount namespace, so
 * the namespace's sshd, and every nft it runs, reads this file as /etc/protocols. It starts empty, as on a host
 * without netbase, and a test fills it in place (same inode: the bind mount shows the new text), as a later
 * role installing netbase did on the lab's pve nodes.
 */
const NETNS_ETC = `/etc/netns/${NS}`;
const NETNS_PROTOCOLS = join(NETNS_ETC, 'protocols');

/** Ports a listener answers on inside the namespace: allowed ones and a sample of ones that are not. */
const PUBLIC_PORTS = [80, 443];
const MANAGEMENT_PORTS = [9100, 8405];
const OTHER_PORTS = [25, 3306, 5432, 6379, 8080];

function run(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr.trim()}`);
  return result.stdout;
}

const inNs = (...args: string[]): string => run(IP, ['netns', 'exec', NS, ...args]);

/** Whether a TCP connection from `from` to the host's port is accepted within the timeout. */
function connects(from: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: HOST_ADDRESS, port, localAddress: from });
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

async function waitFor(what: string, test: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await test()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

function droppedPackets(): number {
  const listing = inNs(NFT, 'list', 'counter', 'inet', 'cairn', 'dropped');
  const m = /packets (\d+)/.exec(listing);
  if (!m) throw new Error(`no packet count in ${listing}`);
  return Number(m[1]);
}

describe('firewall role and nft_ruleset on a real sshd in its own network namespace', { timeout: 240_000 }, () => {
  let lab: TestSshLab;
  let listeners: ChildProcess | undefined;
  let hostDir: string;
  let stateDir: string;
  let configFile: string;

  const env = () => ({ CAIRN_STATE_DIR: join(lab.dir, 'cairn-state') });
  const firewallVars = (overrides: Record<string, unknown> = {}) => ({
    firewall_config_file: configFile,
    firewall_state_dir: stateDir,
    firewall_manage_service: false,
    firewall_rollback_seconds: ROLLBACK_SECONDS,
    firewall_management_networks: [`${CAIRN_ADDRESS}/32`],
    firewall_jump_hosts: [],
    firewall_public_tcp_ports: PUBLIC_PORTS,
    firewall_management_tcp_ports: MANAGEMENT_PORTS,
    firewall_rules: [{ name: 'vrrp', proto: 'vrrp', sources: [`${CAIRN_ADDRESS}/32`] }],
    ...overrides,
  });
  const inventoryWith = (vars: Record<string, unknown>) => lab.writeInventory({ lb: ['fw1'] }, { fw1: vars });
  const play = (book: string, inventory: string, ...flags: string[]) =>
    runCairn(['play', book, '-i', inventory, '--json', ...flags], { env: env(), timeoutMs: 120_000 });

  beforeAll(async () => {
    const taken = run(IP, ['-4', '-o', 'addr', 'show']);
    if (taken.includes(`10.78.${subnet}.`)) throw new Error(`10.78.${subnet}.0/29 is already in use on this machine`);
    mkdirSync(NETNS_ETC, { recursive: true });
    writeFileSync(NETNS_PROTOCOLS, '');
    run(IP, ['netns', 'add', NS]);
    run(IP, ['link', 'add', VETH_HERE, 'type', 'veth', 'peer', 'name', VETH_THERE, 'netns', NS]);
    run(IP, ['addr', 'add', `${CAIRN_ADDRESS}/29`, 'dev', VETH_HERE]);
    run(IP, ['addr', 'add', `${OUTSIDE_ADDRESS}/29`, 'dev', VETH_HERE]);
    run(IP, ['link', 'set', VETH_HERE, 'up']);
    inNs(IP, 'addr', 'add', `${HOST_ADDRESS}/29`, 'dev', VETH_THERE);
    inNs(IP, 'link', 'set', VETH_THERE, 'up');
    inNs(IP, 'link', 'set', 'lo', 'up');
    lab = await startSshHosts(1, { names: ['fw1'], netns: () => ({ name: NS, address: HOST_ADDRESS }) });
    hostDir = lab.hosts[0]!.dir;
    stateDir = join(hostDir, 'nft-state');
    configFile = join(hostDir, 'nftables.conf');
    // TCP listeners inside the namespace on every port the matrix probes (sshd has 22).
    const ports = [...PUBLIC_PORTS, ...MANAGEMENT_PORTS, ...OTHER_PORTS];
    const script = `for (const p of ${JSON.stringify(ports)}) require('net').createServer((s) => s.end()).listen(p, '0.0.0.0');`;
    listeners = spawn(IP, ['netns', 'exec', NS, process.execPath, '-e', script], { stdio: 'ignore' });
    await waitFor('the listeners in the namespace', () => connects(CAIRN_ADDRESS, 3306), 10_000);
  });

  afterAll(async () => {
    if (listeners?.pid !== undefined) process.kill(listeners.pid, 'SIGKILL');
    // A rollback timer of ours still pending (a failed test): ended by the pid our state dir names.
    for (const pidFile of [join(hostDir ?? '/nonexistent', 'nft-state', 'rollback.pid')]) {
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 1) spawnSync('kill', ['-KILL', `-${pid}`]);
    }
    await lab?.stop();
    spawnSync(IP, ['link', 'del', VETH_HERE]);
    spawnSync(IP, ['netns', 'del', NS]);
    rmSync(NETNS_ETC, { recursive: true, force: true });
  });

  it('--check predicts exactly what the first run changes; the second run changes nothing', async () => {
    const inventory = inventoryWith(firewallVars());
    const check = await play(playbook, inventory, '--check');
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const predicted = changedKeys(jsonEvents(check.stdout));
    expect(predicted).toEqual([
      'fw1 | firewall : input filter loaded with an automatic rollback, then written to the boot file',
    ]);
    // Check mode changed nothing: no table, no boot file.
    expect(inNs(NFT, 'list', 'tables')).not.toContain('cairn');
    expect(existsSync(configFile)).toBe(false);

    const first = await play(playbook, inventory);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(changedKeys(jsonEvents(first.stdout))).toEqual(predicted);
    const loaded = taskResults(jsonEvents(first.stdout)).find((e) => e.task.name.startsWith('input filter'));
    expect(JSON.stringify(loaded)).toContain('got the SSH banner');
    expect(readFileSync(configFile, 'utf8')).toContain('table inet cairn');
    expect(inNs(NFT, 'list', 'table', 'inet', 'cairn')).toContain('comment "management"');
    // Confirmed: no timer pending, nothing rolled back.
    expect(existsSync(join(stateDir, 'rollback.pid'))).toBe(false);
    expect(existsSync(join(stateDir, 'rolled-back'))).toBe(false);

    const second = await play(playbook, inventory);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(changedKeys(jsonEvents(second.stdout))).toEqual([]);
    const recheck = await play(playbook, inventory, '--check');
    expect(changedKeys(jsonEvents(recheck.stdout))).toEqual([]);
  });

  it('the loaded ruleset is not drift when /etc/protocols changes under it (netbase installed later)', async () => {
    // Loaded by the test before with no /etc/protocols entries: nft listed protocols by number then.
    expect(inNs(NFT, 'list', 'table', 'inet', 'cairn')).toContain('meta l4proto { 1, 58 }');
    writeFileSync(NETNS_PROTOCOLS, readFileSync('/etc/protocols'));
    try {
      // The same kernel rules now list by name: a drift check on this listing would plan a reload.
      expect(inNs(NFT, 'list', 'table', 'inet', 'cairn')).toContain('meta l4proto { icmp, ipv6-icmp }');
      const inventory = inventoryWith(firewallVars());
      const check = await play(playbook, inventory, '--check');
      expect(check.code, check.stdout + check.stderr).toBe(0);
      expect(changedKeys(jsonEvents(check.stdout))).toEqual([]);
      const again = await play(playbook, inventory);
      expect(changedKeys(jsonEvents(again.stdout))).toEqual([]);
    } finally {
      writeFileSync(NETNS_PROTOCOLS, '');
    }
  });

  it('allowed ports answer, a sample of others does not, and what is dropped is counted', async () => {
    const before = droppedPackets();
    for (const port of [22, ...PUBLIC_PORTS, ...MANAGEMENT_PORTS])
      expect(await connects(CAIRN_ADDRESS, port), `port ${port} from management`).toBe(true);
    for (const port of PUBLIC_PORTS)
      expect(await connects(OUTSIDE_ADDRESS, port), `port ${port} from outside`).toBe(true);
    // Management ports and everything else: dropped (no RST: the connect times out).
    for (const port of [22, ...MANAGEMENT_PORTS, ...OTHER_PORTS])
      expect(await connects(OUTSIDE_ADDRESS, port), `port ${port} from outside`).toBe(false);
    for (const port of OTHER_PORTS)
      expect(await connects(CAIRN_ADDRESS, port), `port ${port} from management`).toBe(false);
    // Each refused connect sent at least one SYN, each counted.
    expect(droppedPackets() - before).toBeGreaterThanOrEqual(3 + OTHER_PORTS.length * 2);
  });

  it('a live ruleset changed by hand is drift: --check says so, the run restores it, then nothing changes', async () => {
    const inventory = inventoryWith(firewallVars());
    inNs(NFT, 'delete', 'table', 'inet', 'cairn');
    const check = await play(playbook, inventory, '--check');
    expect(changedKeys(jsonEvents(check.stdout))).toHaveLength(1);
    expect(check.stdout).toContain('the live one differs from what cairn loaded');
    const repair = await play(playbook, inventory);
    expect(repair.code, repair.stdout + repair.stderr).toBe(0);
    expect(changedKeys(jsonEvents(repair.stdout))).toEqual(changedKeys(jsonEvents(check.stdout)));
    expect(inNs(NFT, 'list', 'tables')).toContain('inet cairn');
    const again = await play(playbook, inventory);
    expect(changedKeys(jsonEvents(again.stdout))).toEqual([]);
  });

  it('a ruleset nft refuses fails in --check and in the run, and touches nothing', async () => {
    const liveBefore = inNs(NFT, '-s', 'list', 'ruleset');
    const fileBefore = readFileSync(configFile, 'utf8');
    const inventory = inventoryWith({
      fixture_ruleset:
        'table inet cairn {\n  chain input {\n    type filter hook input priority filter; policy drop;\n    tcp dport 22 acept\n  }\n}\n',
      fixture_dest: configFile,
      fixture_state_dir: stateDir,
      fixture_rollback_after: ROLLBACK_SECONDS,
    });
    for (const flags of [['--check'], []]) {
      const r = await play(rulesetPlaybook, inventory, ...flags);
      expect(r.code).not.toBe(0);
      expect(r.stdout).toContain('nft -c refuses the ruleset');
      expect(r.stdout).toContain('acept');
    }
    expect(inNs(NFT, '-s', 'list', 'ruleset')).toBe(liveBefore);
    expect(readFileSync(configFile, 'utf8')).toBe(fileBefore);
    expect(existsSync(join(stateDir, 'rollback.pid'))).toBe(false);
  });

  it('a ruleset that refuses cairn a new SSH connection is rolled back at once; the boot file keeps the old one', async () => {
    const liveBefore = inNs(NFT, '-s', 'list', 'table', 'inet', 'cairn');
    const fileBefore = readFileSync(configFile, 'utf8');
    // Management moved to a network cairn is not on: established sessions still pass, new SSH does not.
    const inventory = inventoryWith(firewallVars({ firewall_management_networks: [`10.78.${subnet}.4/30`] }));
    const r = await play(playbook, inventory);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toContain('refuses a new SSH connection');
    expect(r.stdout).toContain('rolled back now over the existing connection');
    expect(inNs(NFT, '-s', 'list', 'table', 'inet', 'cairn')).toBe(liveBefore);
    expect(readFileSync(configFile, 'utf8')).toBe(fileBefore);
    expect(await connects(CAIRN_ADDRESS, 22)).toBe(true);
  });

  it('a ruleset that cuts cairn own connection is rolled back by the host itself', async () => {
    const liveBefore = inNs(NFT, '-s', 'list', 'table', 'inet', 'cairn');
    const fileBefore = readFileSync(configFile, 'utf8');
    // No "established" rule, nothing but loopback: the open SSH connection dies with the first packet.
    const inventory = inventoryWith({
      fixture_ruleset:
        'table inet cairn {\n}\ndelete table inet cairn\ntable inet cairn {\n  chain input {\n' +
        '    type filter hook input priority filter; policy drop;\n    iif "lo" accept\n  }\n}\n',
      fixture_dest: configFile,
      fixture_state_dir: stateDir,
      fixture_rollback_after: ROLLBACK_SECONDS,
    });
    const started = Date.now();
    const r = await play(rulesetPlaybook, inventory);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/restores the previous ruleset by itself by/);
    // While the cutting ruleset is live, SSH does not answer; then the host puts the old one back.
    const back = await waitFor('SSH answering again', () => connects(CAIRN_ADDRESS, 22, 1000), 60_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(ROLLBACK_SECONDS * 1000 - 2000);
    expect(inNs(NFT, '-s', 'list', 'table', 'inet', 'cairn')).toBe(liveBefore);
    expect(readFileSync(configFile, 'utf8')).toBe(fileBefore);
    expect(existsSync(join(stateDir, 'rolled-back'))).toBe(true);
    expect(existsSync(join(stateDir, 'rollback.pid'))).toBe(false);
    expect(back).toBeGreaterThanOrEqual(0);
    // cairn gets in again and finds the role's ruleset as it left it: nothing to change.
    const again = await play(playbook, inventoryWith(firewallVars()));
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(changedKeys(jsonEvents(again.stdout))).toEqual([]);
  });
});
