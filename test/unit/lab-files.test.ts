import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYamlText } from 'yaml';
import {
  hostsFile,
  networkUnit,
  nspawnArgs,
  supervisorScript,
  NSPAWN_REBOOT_EXIT,
} from '../../runner/features/lab/container.js';
import { IMAGE_RECIPE, recipeHash } from '../../runner/features/lab/image.js';
import { inventoryDocument, inventoryText } from '../../runner/features/lab/inventory.js';
import { DEBIAN_SOURCES_FILE, parseDeb822Sources, pickMirror } from '../../runner/features/lab/mirror.js';
import { isUnder, parseMountInfo } from '../../runner/features/lab/mounts.js';
import { hostPaths } from '../../runner/features/lab/paths.js';
import { parseProcStat, processInfo } from '../../runner/features/lab/proc.js';
import { releaseText } from '../../runner/features/lab/repo.js';
import { knownHostsText, readHostKeys, sshArgs } from '../../runner/features/lab/ssh.js';
import { defaultTopology, managementAddress, sshAddress } from '../../runner/features/lab/topology.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-lab-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('per-host files', () => {
  const topology = defaultTopology();

  it('networkd unit gives host0 a static address and nothing else', () => {
    const unit = networkUnit('10.77.0.21');
    expect(unit).toContain('[Match]\nVirtualization=container\nName=host0\n');
    expect(unit).toContain('Address=10.77.0.21/24\n');
    expect(unit).not.toMatch(/^(Gateway|DHCP|DNS)=/m);
    const management = networkUnit('10.77.1.21', 'container', 'mgmt0');
    expect(management).toContain('[Match]\nVirtualization=container\nName=mgmt0\n');
    expect(management).toContain('Address=10.77.1.21/24\n');
    expect(management).not.toMatch(/^(Gateway|DHCP|DNS)=/m);
  });

  it("gives every container a management address in the lab's own next /24, and a VM none", () => {
    expect(topology.management).toMatchObject({ bridge: 'cairnbr1', bridgeAddress: '10.77.1.1' });
    expect(topology.management!.subnet.text).toBe('10.77.1.0/24');
    const web1 = topology.hosts.find((h) => h.name === 'web1')!;
    expect(managementAddress(topology, web1)).toBe('10.77.1.21');
    expect(sshAddress(topology, web1)).toBe('10.77.1.21');
    const vms = defaultTopology(false, true);
    const pve1 = vms.hosts.find((h) => h.name === 'pve1')!;
    expect(managementAddress(vms, pve1)).toBeUndefined();
    expect(sshAddress(vms, pve1)).toBe('10.77.0.41');
    // A lab brought up before the management bridge existed keeps everything on the service bridge.
    expect(sshAddress({ ...topology, management: undefined }, web1)).toBe('10.77.0.21');
  });

  it('/etc/hosts lists every lab name, keeps other lines, and replaces only its own block', () => {
    const first = hostsFile(undefined, topology);
    expect(first.split('\n')[0]).toBe('127.0.0.1\tlocalhost');
    // Names are management addresses: what goes by name (SSH between hosts, backups) is management traffic.
    expect(first).toContain(
      '10.77.1.1\tcairn-controller\n10.77.1.11\tlb1\n10.77.1.12\tlb2\n10.77.1.21\tweb1\n10.77.1.22\tweb2\n10.77.1.31\tmon1\n',
    );
    const edited = first + '192.168.5.5\tbackup-target\n';
    const again = hostsFile(edited, defaultTopology(true));
    expect(again).toContain('10.77.1.43\tpve3\n');
    expect(again).toContain('192.168.5.5\tbackup-target\n');
    expect(again.match(/BEGIN cairn lab hosts/g)).toHaveLength(1);
    expect(hostsFile(again, defaultTopology(true))).toBe(again);
  });

  it('nspawn boots the overlay on the bridge with the repository read-only, and device nodes only where asked', () => {
    const pve = defaultTopology(true).hosts.find((h) => h.name === 'pve1')!;
    const web = topology.hosts.find((h) => h.name === 'web1')!;
    const ctx = { repoDir: '/var/lib/cairn/lab/repo-abc', topology };
    const webArgs = nspawnArgs(web, ctx, hostPaths('web1'));
    expect(webArgs).toEqual(
      expect.arrayContaining([
        '--directory=/var/lib/cairn/lab/hosts/web1/root',
        '--boot',
        '--machine=web1',
        '--register=no',
        '--keep-unit',
        '--network-bridge=cairnbr0',
        '--network-veth-extra=mg-web1:mgmt0',
        '--resolv-conf=off',
        '--bind-ro=/var/lib/cairn/lab/repo-abc:/srv/repo',
      ]),
    );
    expect(webArgs.some((a) => a.startsWith('--bind='))).toBe(false);
    expect(webArgs).toContain('--capability=CAP_SYS_RESOURCE');
    const pveArgs = nspawnArgs(pve, ctx, hostPaths('pve1'));
    for (const node of ['/dev/kvm', '/dev/fuse', '/dev/loop-control']) {
      expect(pveArgs.includes(`--bind=${node}`)).toBe(existsSync(node));
    }
    expect(pveArgs).toContain('--capability=CAP_SYS_RESOURCE,CAP_IPC_LOCK');
  });
});

describe('the supervisor loop', () => {
  it('boots again after exit 133 (reboot) and stops on any other status', () => {
    // A stand-in systemd-nspawn on PATH: the real script runs, counting boots; reboots twice, then exits 7.
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const counter = join(dir, 'boots');
    writeFileSync(counter, '');
    writeFileSync(
      join(bin, 'systemd-nspawn'),
      `#!/bin/sh\necho "$*" >> '${counter}'\nn=$(wc -l < '${counter}')\n[ "$n" -lt 3 ] && exit ${NSPAWN_REBOOT_EXIT}\nexit 7\n`,
    );
    chmodSync(join(bin, 'systemd-nspawn'), 0o755);
    const web = defaultTopology().hosts.find((h) => h.name === 'web1')!;
    const script = supervisorScript(web, ['-q', "--directory=/odd path/it's", '--boot']);
    const res = spawnSync('sh', ['-c', script, 'cairn-lab-web1'], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
      encoding: 'utf8',
    });
    expect(res.status).toBe(7);
    const boots = readFileSync(counter, 'utf8').trim().split('\n');
    expect(boots).toHaveLength(3);
    // Arguments arrive intact through the quoting, spaces and quotes included.
    expect(boots[0]).toBe("-q --directory=/odd path/it's --boot");
    expect(res.stdout.match(/cairn-lab: booting web1 at/g)).toHaveLength(3);
    expect(res.stdout).toContain('cairn-lab: web1 ended with status 7');
  });

  it("puts each boot's management veth on the management bridge once nspawn has made it", () => {
    // Stand-ins: nspawn "boots" for a moment and exits 7; ip fails twice (no veth yet), then succeeds.
    const bin = join(dir, 'bin-mgmt');
    mkdirSync(bin, { recursive: true });
    const calls = join(dir, 'ip-calls');
    writeFileSync(calls, '');
    writeFileSync(join(bin, 'systemd-nspawn'), '#!/bin/sh\nsleep 1\nexit 7\n');
    writeFileSync(join(bin, 'ip'), `#!/bin/sh\necho "$*" >> '${calls}'\n[ "$(wc -l < '${calls}')" -ge 3 ]\n`);
    for (const f of ['systemd-nspawn', 'ip']) chmodSync(join(bin, f), 0o755);
    const web = defaultTopology().hosts.find((h) => h.name === 'web1')!;
    const script = supervisorScript(web, ['--boot'], join(bin, 'systemd-nspawn'), {
      bridge: 'cairnbr1',
      ipPath: join(bin, 'ip'),
    });
    const res = spawnSync('sh', ['-c', script, 'cairn-lab-web1'], { encoding: 'utf8' });
    expect(res.status).toBe(7);
    const attempts = readFileSync(calls, 'utf8').trim().split('\n');
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts)).toEqual(new Set(['link set dev mg-web1 master cairnbr1 up']));
  });
});

describe('inventory', () => {
  it('is Ansible-shaped: hosts with how to reach them, groups, lab-wide vars', () => {
    const paths = { privateKey: '/x/generated/id_ed25519', knownHosts: '/x/generated/known_hosts' };
    const text = inventoryText({ topology: defaultTopology(), paths });
    expect(text.startsWith('# Generated by `cairn lab up`')).toBe(true);
    const doc = parseYamlText(text) as {
      all: {
        vars: Record<string, unknown>;
        hosts: Record<string, Record<string, unknown>>;
        children: Record<string, { hosts: Record<string, unknown> }>;
      };
    };
    expect(doc).toEqual(inventoryDocument({ topology: defaultTopology(), paths }));
    expect(doc.all.vars).toMatchObject({
      ansible_user: 'root',
      ansible_ssh_private_key_file: '/x/generated/id_ed25519',
      cairn_known_hosts: '/x/generated/known_hosts',
      vip_address: '10.77.0.10',
      lab: true,
    });
    // cairn on the management bridge; the roles' service traffic on service_address.
    expect(doc.all.hosts.web2).toEqual({ ansible_host: '10.77.1.22', ansible_port: 22, service_address: '10.77.0.22' });
    expect(doc.all.vars).toMatchObject({
      lab_subnet: '10.77.0.0/24',
      lab_controller_address: '10.77.0.1',
      lab_management_subnet: '10.77.1.0/24',
      lab_management_interface: 'mgmt0',
      lab_controller_management_address: '10.77.1.1',
    });
    expect(Object.keys(doc.all.children.lb!.hosts)).toEqual(['lb1', 'lb2']);
    expect(doc.all.children.pve!.hosts).toEqual({});
    expect(Object.keys(doc.all.children)).toEqual(['lb', 'web', 'mon', 'pve']);
  });

  it('adds groups a topology names beyond the standard four', () => {
    const t = {
      ...defaultTopology(),
      hosts: [{ name: 'db1', address: '10.77.0.50', groups: ['db', 'web'], devices: [] }],
    };
    const doc = inventoryDocument({ topology: t, paths: { privateKey: 'k', knownHosts: 'h' } }) as {
      all: { children: Record<string, { hosts: Record<string, unknown> }> };
    };
    expect(Object.keys(doc.all.children)).toEqual(['lb', 'web', 'mon', 'pve', 'db']);
    expect(Object.keys(doc.all.children.web!.hosts)).toEqual(['db1']);
  });
});

describe('ssh', () => {
  it('reads real host keys made by ssh-keygen -A into known_hosts lines', () => {
    const root = join(dir, 'hostroot');
    mkdirSync(join(root, 'etc', 'ssh'), { recursive: true });
    execFileSync('ssh-keygen', ['-A', '-f', root]);
    const keys = readHostKeys(join(root, 'etc', 'ssh'));
    expect(keys.map((k) => k.split(' ')[0])).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-rsa']);
    const text = knownHostsText([{ name: 'web1', address: '10.77.0.21', keys }]);
    const file = join(dir, 'known_hosts');
    writeFileSync(file, text);
    // ssh-keygen -F finds the host by address and by name: the file is in the format ssh reads.
    expect(execFileSync('ssh-keygen', ['-F', '10.77.0.21', '-f', file], { encoding: 'utf8' })).toContain('ssh-ed25519');
    expect(execFileSync('ssh-keygen', ['-F', 'web1', '-f', file], { encoding: 'utf8' })).toContain('ssh-rsa');
    expect(readHostKeys(join(dir, 'missing'))).toEqual([]);
  });

  it('builds ssh arguments with strict host-key checking and quoted remote words', () => {
    const target = { address: '10.77.0.21', privateKey: '/k/id', knownHosts: '/k/known_hosts' };
    const args = sshArgs(target, { argv: ['echo', "it's $HOME", 'a;b'] });
    expect(args).toEqual(
      expect.arrayContaining([
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        'UserKnownHostsFile=/k/known_hosts',
        '-i',
        '/k/id',
      ]),
    );
    expect(args.at(-2)).toBe('root@10.77.0.21');
    expect(args.at(-1)).toBe(`echo 'it'\\''s $HOME' 'a;b'`);
    // The quoted line, run by a real shell, gives back the words as given.
    expect(execFileSync('sh', ['-c', `printf '%s\\n' ${args.at(-1)!.slice(5)}`], { encoding: 'utf8' })).toBe(
      "it's $HOME\na;b\n",
    );
    expect(sshArgs(target, undefined).at(-1)).toBe('root@10.77.0.21');
  });
});

describe('apt sources', () => {
  it('finds the mirror in deb822 text', () => {
    // Debian 12's default /etc/apt/sources.list.d/debian.sources layout.
    const text = [
      'Types: deb',
      'URIs: http://deb.debian.org/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
      'Types: deb',
      'URIs: http://deb.debian.org/debian-security',
      'Suites: bookworm-security',
      'Components: main',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
    ].join('\n');
    const stanzas = parseDeb822Sources(text);
    expect(stanzas).toHaveLength(2);
    expect(pickMirror(stanzas, 'bookworm')).toMatchObject({
      uris: ['http://deb.debian.org/debian'],
      signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    });
    expect(pickMirror(stanzas, 'bookworm-security')!.uris[0]).toBe('http://deb.debian.org/debian-security');
    expect(pickMirror(stanzas, 'trixie')).toBeUndefined();
    expect(
      pickMirror(parseDeb822Sources('Types: deb-src\nURIs: http://x\nSuites: bookworm\n'), 'bookworm'),
    ).toBeUndefined();
    expect(parseDeb822Sources('Enabled: no\nTypes: deb\nURIs: http://x\nSuites: bookworm\n')).toEqual([]);
  });

  it("reads this machine's own sources file when there is one", () => {
    if (!existsSync(DEBIAN_SOURCES_FILE)) return;
    const stanzas = parseDeb822Sources(readFileSync(DEBIAN_SOURCES_FILE, 'utf8'));
    expect(stanzas.length).toBeGreaterThan(0);
    for (const s of stanzas) expect(s.uris.every((u) => /^[a-z+]+:/.test(u))).toBe(true);
  });
});

describe('image recipe', () => {
  it('hashes the package list and the customisation script', () => {
    const base = recipeHash(IMAGE_RECIPE);
    expect(base).toMatch(/^[0-9a-f]{16}$/);
    expect(recipeHash({ ...IMAGE_RECIPE, packages: [...IMAGE_RECIPE.packages].reverse() })).toBe(base);
    expect(recipeHash({ ...IMAGE_RECIPE, packages: [...IMAGE_RECIPE.packages, 'vim'] })).not.toBe(base);
    expect(recipeHash({ ...IMAGE_RECIPE, customise: IMAGE_RECIPE.customise + '\n# changed' })).not.toBe(base);
  });

  it('refuses to customise anything but a tree under the lab directory', () => {
    const res = spawnSync('sh', ['-c', IMAGE_RECIPE.customise, 'customise', '/'], { encoding: 'utf8' });
    expect(res.status).toBe(64);
    expect(res.stderr).toContain('refusing to customise /');
  });
});

describe('repository index', () => {
  it('lists each index file with its size and hashes', () => {
    const data = Buffer.from('Package: x\nVersion: 1\n\n');
    const text = releaseText([{ name: 'Packages', data }], new Date('2026-01-02T03:04:05Z'));
    expect(text).toContain('Date: Fri, 02 Jan 2026 03:04:05 UTC\n');
    const sha = execFileSync('sha256sum', { input: data, encoding: 'utf8' }).split(' ')[0];
    expect(text).toContain(`SHA256:\n ${sha} ${String(data.length).padStart(8)} Packages\n`);
  });
});

describe('/proc parsing', () => {
  it('reads mountinfo, unescaping octal escapes (proc(5) format)', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '512 30 0:77 / /var/lib/cairn/lab/hosts/web1/root rw,relatime - overlay cairn-lab-web1 rw,lowerdir=/a,upperdir=/b,workdir=/c',
      '513 30 0:78 / /tmp/with\\040space rw - tmpfs tmpfs rw',
    ].join('\n');
    const mounts = parseMountInfo(text);
    expect(mounts).toEqual([
      { mountPoint: '/mnt2', fsType: 'ext3', source: '/dev/root' },
      { mountPoint: '/var/lib/cairn/lab/hosts/web1/root', fsType: 'overlay', source: 'cairn-lab-web1' },
      { mountPoint: '/tmp/with space', fsType: 'tmpfs', source: 'tmpfs' },
    ]);
    expect(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).some((m) => m.mountPoint === '/')).toBe(true);
    expect(isUnder('/var/lib/cairn/lab/hosts/web1/root', '/var/lib/cairn/lab')).toBe(true);
    expect(isUnder('/var/lib/cairn/lab2', '/var/lib/cairn/lab')).toBe(false);
  });

  it('reads /proc/PID/stat, even with spaces and parentheses in the command name', () => {
    const self = processInfo(process.pid)!;
    expect(self.pid).toBe(process.pid);
    expect(self.ppid).toBe(process.ppid);
    expect(self.startTime).toBeGreaterThan(0);
    const odd = parseProcStat(42, '42 (a (b) c) S 7 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 1 1');
    expect(odd).toMatchObject({ pid: 42, comm: 'a (b) c', state: 'S', ppid: 7, startTime: 12345 });
  });
});
