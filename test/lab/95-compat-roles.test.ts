/**
 * Issue 12's last acceptance item: five public roles of the compatibility corpus (test/compat/roles/, sources
 * and licences in test/compat/SOURCES.md) run for real, unchanged, on lab containers: --check predicts exactly
 * the changes of the first run, the first run converges with nothing failed, the second run changes nothing,
 * and what each role is for holds on its host afterwards.
 *
 * Each role gets a fresh container of its own (compat-*, group compat, added to the running lab by a topology
 * file), so the roles never collide (nginx and haproxy both want port 80) and no host of the other lab files
 * is touched (they stay in the lab's inventory, group compat, until `lab down`). The variables each play
 * sets, and why, are beside them below.
 *
 * Where the role's service comes from a Debian package (ntpsec, fail2ban, nginx, haproxy), the package is
 * installed on the fresh host before the --check: Debian's install enables and starts the service, which no
 * check mode can know before the package is there (Ansible's systemd module fails on the missing unit in check
 * mode; the roles themselves say so with `ignore_errors: "{{ ansible_check_mode }}"`). haproxy's role also
 * runs `haproxy -v` in check mode (check_mode: false), so it needs the package there anyway. The firewall role
 * writes its own unit and runs from a bare host.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUp } from '../../runner/features/lab/index.js';
import { changedKeys, repoRoot, taskResults } from '../helpers/cli.js';
import { ensureLab, labJson, labUnavailable, onHost, type LabCairnOptions } from '../helpers/lab.js';

const RUN: LabCairnOptions = { timeoutMs: 600_000, lockWaitMs: 300_000 };
const unavailable = labUnavailable();

/** One container per role, on addresses no other lab host uses (.51-.55; management .51-.55 too). */
const HOSTS = {
  ntp: { name: 'compat-ntp', address: '10.77.0.51', packages: ['ntpsec'] },
  // python3-systemd: Debian's fail2ban Recommends it, and the role's jail.local uses `backend = systemd` on
  // Debian 12; Ansible's apt installs Recommends (apt's default), cairn's apt does not unless asked.
  security: {
    name: 'compat-sec',
    address: '10.77.0.52',
    packages: ['fail2ban', 'python3-systemd', 'unattended-upgrades'],
  },
  nginx: { name: 'compat-web', address: '10.77.0.53', packages: ['nginx'] },
  haproxy: { name: 'compat-lb', address: '10.77.0.54', packages: ['haproxy'] },
  firewall: { name: 'compat-fw', address: '10.77.0.55', packages: [] as string[] },
} as const;

const PLAYBOOK = `# Written by test/lab/95-compat-roles.test.ts: the corpus roles, unchanged, one fresh lab container each.
- name: geerlingguy.ntp
  hosts: ${HOSTS.ntp.name}
  become: true
  vars:
    # ntpsec.service has ConditionCapability=CAP_SYS_TIME, which no lab container gets (their clock is this
    # machine's): started, it stays inactive and every run would start it again (Ansible's too). So the role
    # keeps it stopped and disabled, its documented choice for hosts that must not run ntpd.
    ntp_enabled: false
    # The role's ntp.conf, pointing at the lab's time source (the lab has no way to the pool).
    ntp_manage_config: true
    ntp_servers: ["mon1 iburst"]
    # A zone other than the image's Etc/UTC, so the timezone task has something to change.
    ntp_timezone: Europe/Amsterdam
  roles:
    - geerlingguy.ntp

- name: geerlingguy.security
  hosts: ${HOSTS.security.name}
  become: true
  vars:
    # cairn reaches lab hosts as root with a key (inventories/lab): the role's default "no" would lock it out.
    security_ssh_permit_root_login: prohibit-password
    # cairn's SSH port (the role's default, said here because the lab's access depends on it).
    security_ssh_port: 22
  roles:
    - geerlingguy.security

- name: geerlingguy.nginx
  hosts: ${HOSTS.nginx.name}
  become: true
  vars:
    # One managed vhost beside the package's default site: the role's vhost template and loop run too.
    nginx_vhosts:
      - listen: "8080"
        server_name: "${HOSTS.nginx.name}"
        root: "/var/www/html"
        index: "index.nginx-debian.html"
        filename: "compat.conf"
  roles:
    - geerlingguy.nginx

- name: geerlingguy.haproxy
  hosts: ${HOSTS.haproxy.name}
  become: true
  vars:
    # The nginx container as its one backend, on the service network.
    haproxy_backend_servers:
      - name: ${HOSTS.nginx.name}
        address: ${HOSTS.nginx.address}:80
  roles:
    - geerlingguy.haproxy

- name: geerlingguy.firewall
  hosts: ${HOSTS.firewall.name}
  become: true
  vars:
    # cairn's SSH must stay open (the role's default list also opens 25, 80 and 443; nothing listens there).
    firewall_allowed_tcp_ports: ["22"]
  roles:
    - geerlingguy.firewall
`;

/** Whether a TCP connection to address:port is refused, accepted or gets no answer within `ms`. */
function probePort(address: string, port: number, ms: number): Promise<'open' | 'refused' | 'silent'> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (outcome: 'open' | 'refused' | 'silent') => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(ms, () => done('silent'));
    socket.once('connect', () => done('open'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'silent'));
  });
}

describe.skipIf(Boolean(unavailable))(
  `five public roles run for real on lab containers${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-compat-lab-'));
    const playbook = join(dir, 'compat-roles.yml');
    const timings: string[] = [];

    async function play(label: string, ...extra: string[]) {
      const run = await labJson(['play', playbook, ...extra], RUN);
      timings.push(`${label}: ${(run.ms / 1000).toFixed(1)} s`);
      const results = taskResults(run.events);
      const failed = results.filter((e) => (e.status === 'failed' && !e.ignored) || e.status === 'unreachable');
      expect(failed.map((e) => `${e.host} ${e.task.name}: ${e.msg ?? ''}`)).toEqual([]);
      expect(run.res.code, run.res.stderr.slice(-2000)).toBe(0);
      return { keys: changedKeys(run.events), results };
    }

    beforeAll(async () => {
      await ensureLab();
      const topology = join(dir, 'topology.yaml');
      writeFileSync(
        topology,
        `hosts:\n${Object.values(HOSTS)
          .map((h) => `  - name: ${h.name}\n    groups: [compat]\n    address: ${h.address}\n`)
          .join('')}`,
      );
      const started = Date.now();
      await labUp({ topologyFile: topology, log: (line) => console.log(`lab: ${line}`) });
      timings.push(`five containers added: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      symlinkSync(join(repoRoot, 'test', 'compat', 'roles'), join(dir, 'roles'));
      writeFileSync(playbook, PLAYBOOK);
      const installed = Date.now();
      await Promise.all(
        Object.values(HOSTS)
          .filter((h) => h.packages.length > 0)
          .map((h) =>
            onHost(
              h.name,
              `apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y install -- ${h.packages.join(' ')}`,
              {
                timeoutMs: 600_000,
              },
            ),
          ),
      );
      timings.push(`packages installed before the check: ${((Date.now() - installed) / 1000).toFixed(1)} s`);
    }, 1_200_000);

    afterAll(() => {
      console.log(`compat roles on the lab:\n${timings.join('\n')}`);
      rmSync(dir, { recursive: true, force: true });
    });

    it('--check predicts the first run exactly, the first run converges, the second changes nothing', async () => {
      const predicted = await play('--check', '--check');
      const first = await play('first run');
      expect(first.keys).toEqual(predicted.keys);
      const perRole = Object.values(HOSTS).map(
        (h) => `${h.name}: ${first.keys.filter((k) => k.startsWith(`${h.name} |`)).length} changed`,
      );
      timings.push(`first run changes: ${perRole.join(', ')}`);
      for (const h of Object.values(HOSTS))
        expect(
          first.keys.some((k) => k.startsWith(`${h.name} |`)),
          `${h.name} changed nothing`,
        ).toBe(true);
      const second = await play('second run');
      expect(second.keys).toEqual([]);
    }, 1_800_000);

    it('each role did its job on its host', async () => {
      // ntp: the zone, ntpsec's config from the role's template, the daemon disabled as asked.
      expect(await onHost(HOSTS.ntp.name, 'readlink /etc/localtime; cat /etc/timezone; date +%Z')).toMatch(
        /zoneinfo\/Europe\/Amsterdam\nEurope\/Amsterdam\nCES?T/,
      );
      expect(await onHost(HOSTS.ntp.name, 'grep -E "^pool " /etc/ntpsec/ntp.conf')).toBe('pool mon1 iburst');
      expect(await onHost(HOSTS.ntp.name, 'systemctl is-enabled ntpsec || true')).toBe('disabled');

      // security: the role's lines in sshd_config (root by key only, no X11 forwarding, which Debian's file
      // turns on) and sshd reads them so; fail2ban runs with the role's sshd jail; unattended upgrades are on.
      const sshdConfig = "grep -E '^(PermitRootLogin|X11Forwarding) ' /etc/ssh/sshd_config | sort";
      expect(await onHost(HOSTS.security.name, sshdConfig)).toBe('PermitRootLogin prohibit-password\nX11Forwarding no');
      expect(await onHost(HOSTS.security.name, 'sshd -T | grep -E "^x11forwarding "')).toBe('x11forwarding no');
      expect(await onHost(HOSTS.security.name, 'fail2ban-client status sshd | head -1')).toMatch(/sshd/);
      expect(await onHost(HOSTS.security.name, 'cat /etc/apt/apt.conf.d/10periodic')).toMatch(/Unattended-Upgrade "1"/);

      // nginx: the package's site on 80 and the role's vhost on 8080, from this machine.
      for (const port of [80, 8080]) {
        const res = await fetch(`http://${HOSTS.nginx.address}:${port}/`);
        expect(res.status).toBe(200);
        expect(await res.text()).toMatch(/Welcome to nginx/);
      }

      // haproxy: its frontend on 80 answers with the nginx container's page, through its backend.
      const viaHaproxy = await fetch(`http://${HOSTS.haproxy.address}/`);
      expect(viaHaproxy.status).toBe(200);
      expect(await viaHaproxy.text()).toMatch(/Welcome to nginx/);
      expect(await onHost(HOSTS.haproxy.name, 'grep -c "server compat-web" /etc/haproxy/haproxy.cfg')).toBe('1');

      // firewall: the unit ran its script; SSH answers (this test got here), a closed port is now silent
      // (DROP), where an unfiltered host refuses.
      expect(await onHost(HOSTS.firewall.name, 'systemctl is-active firewall')).toBe('active');
      const rules = await onHost(HOSTS.firewall.name, 'iptables -S INPUT');
      expect(rules).toContain('-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT');
      expect(rules).toContain('-A INPUT -j DROP');
      expect(await probePort(HOSTS.firewall.address, 80, 3000)).toBe('silent');
      expect(await probePort(HOSTS.ntp.address, 80, 3000)).toBe('refused');
    }, 300_000);
  },
);
