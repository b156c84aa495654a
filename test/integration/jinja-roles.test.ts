/**
 * Real Ansible roles' Jinja templates rendered natively (issues 12 and 14): geerlingguy.haproxy's
 * haproxy.cfg.j2 and geerlingguy.firewall's firewall.bash.j2 (test/compat/roles, sources and licences in
 * test/compat/SOURCES.md) with their own role defaults, through the templater as the template module calls
 * it. The results are checked by what reads them for real: `haproxy -c` parses the configuration (haproxy
 * is installed by scripts/test-prereqs.sh), `bash -n` parses the script, and the lines each loop and
 * condition should produce are compared with what the defaults mean. test/fixtures/jinja-roles holds what
 * Ansible's own template module rendered for both (README there): cairn's output must equal it byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTemplater, evaluate } from '../../runner/core/template/index.js';
import { loadYamlFile } from '../../runner/core/util/yaml-source.js';
import { repoRoot } from '../helpers/cli.js';

const roles = join(repoRoot, 'test', 'compat', 'roles');
const recorded = join(repoRoot, 'test', 'fixtures', 'jinja-roles');
const templater = createTemplater({ partialsDirs: [] });
const dir = mkdtempSync(join(tmpdir(), 'cairn-jinja-roles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function defaults(role: string): Record<string, unknown> {
  return loadYamlFile(join(roles, role, 'defaults', 'main.yml')).value as Record<string, unknown>;
}

describe("geerlingguy.haproxy's haproxy.cfg.j2", () => {
  it('renders with the role defaults into a configuration the real haproxy accepts', () => {
    // The role sets haproxy_version from `haproxy -v` with this expression (tasks/main.yml): do the same.
    const versionOutput = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
    expect(versionOutput.status).toBe(0);
    const haproxyVersion = evaluate(
      String.raw`haproxy_version_result.stdout_lines[0] | regex_replace("^HA-?Proxy version (\d+(\.\d+)*).*$", "\1")`,
      { haproxy_version_result: { stdout_lines: versionOutput.stdout.split('\n') } },
    );
    expect(haproxyVersion).toMatch(/^\d+\.\d+(\.\d+)*$/);
    const vars = {
      ...defaults('geerlingguy.haproxy'),
      haproxy_version: haproxyVersion,
      ansible_facts: { os_family: 'Debian' },
      haproxy_frontend_port: 18080,
      haproxy_backend_servers: [
        { name: 'app1', address: '127.0.0.1:18081' },
        { name: 'app2', address: '127.0.0.1:18082' },
      ],
      haproxy_global_vars: ['maxconn 512'],
    };
    const cfg = templater.renderFile(join(roles, 'geerlingguy.haproxy', 'templates', 'haproxy.cfg.j2'), vars);
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, cfg);
    const checked = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
    expect(checked.stderr + checked.stdout).not.toMatch(/ALERT/);
    expect(checked.status).toBe(0);
    // What the template means with these values: each condition and loop, line by line.
    expect(cfg).toContain('  stats socket /var/lib/haproxy/stats level admin\n  chroot /var/lib/haproxy\n');
    expect(cfg).toContain('  daemon\n  maxconn 512\n\ndefaults\n');
    expect(cfg).toContain('        timeout connect 5000\n        timeout client 50000\n        timeout server 50000\n');
    expect(cfg).not.toContain('contimeout');
    expect(cfg.match(/^ {2}errorfile \d+ /gm)).toHaveLength(7);
    expect(cfg).toContain('    bind *:18080\n');
    expect(cfg).toContain(String.raw`    option httpchk HEAD / HTTP/1.1\r\nHost:localhost` + '\n');
    expect(cfg).toContain(
      '    cookie SERVERID insert indirect\n' +
        '    server app1 127.0.0.1:18081 cookie app1 check\n' +
        '    server app2 127.0.0.1:18082 cookie app2 check\n',
    );
    expect(cfg.endsWith('check\n')).toBe(true);
    expect(cfg).not.toMatch(/\{[{%#]|[}%#]\}/);
  });
});

describe("geerlingguy.firewall's firewall.bash.j2", () => {
  const template = join(roles, 'geerlingguy.firewall', 'templates', 'firewall.bash.j2');

  it('renders with the role defaults into a script bash parses, with one rule per default port', () => {
    const script = templater.renderFile(template, defaults('geerlingguy.firewall'));
    const file = join(dir, 'firewall.bash');
    writeFileSync(file, script);
    const parsed = spawnSync('bash', ['-n', file], { encoding: 'utf8' });
    expect(parsed.stderr).toBe('');
    expect(parsed.status).toBe(0);
    expect(script.startsWith('#!/bin/bash\n')).toBe(true);
    // firewall_allowed_tcp_ports 22, 25, 80, 443; no UDP ports, no forwarded ports; IPv6 and logging on.
    const rules = script.split('\n').filter((line) => /^\s*ip6?tables /.test(line));
    expect(rules.filter((r) => r.includes('--dport') && r.includes('-j ACCEPT') && r.includes('-p tcp'))).toEqual([
      'iptables -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      'iptables -A INPUT -p tcp -m tcp --dport 25 -j ACCEPT',
      'iptables -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT',
      'iptables -A INPUT -p tcp -m tcp --dport 443 -j ACCEPT',
      '  ip6tables -A INPUT -p tcp -m tcp --dport 22 -j ACCEPT',
      '  ip6tables -A INPUT -p tcp -m tcp --dport 25 -j ACCEPT',
      '  ip6tables -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT',
      '  ip6tables -A INPUT -p tcp -m tcp --dport 443 -j ACCEPT',
    ]);
    expect(rules.filter((r) => r.includes('REDIRECT') || r.includes('-p udp -m udp'))).toEqual([]);
    expect(script).toContain('# Remove all rules and chains.\niptables -t nat -F\n');
    expect(script).toContain('  # Remove all rules and chains.\n  ip6tables -F\n  ip6tables -X\n');
    expect(rules.filter((r) => r.includes('--log-prefix'))).toHaveLength(2);
    // trim_blocks: the {% %} and {# #} lines leave no blank line of their own.
    expect(script).toContain('# Forwarded ports.\n\n# Open ports.\niptables -A INPUT -p tcp');
    expect(script.endsWith('  ip6tables -A INPUT -j DROP\n\nfi\n')).toBe(true);
    expect(script).not.toMatch(/\{[{%#]|[}%#]\}/);
  });

  it('with IPv6 and flushing off and forwarded ports on, the script says so and still parses', () => {
    const script = templater.renderFile(template, {
      ...defaults('geerlingguy.firewall'),
      firewall_enable_ipv6: false,
      firewall_flush_rules_and_chains: false,
      firewall_forwarded_tcp_ports: [{ src: '2222', dest: '22' }],
      firewall_allowed_udp_ports: ['53'],
      firewall_additional_rules: ['iptables -A INPUT -p tcp --dport 8080 -s 127.0.0.1 -j ACCEPT'],
    });
    const file = join(dir, 'firewall-2.bash');
    writeFileSync(file, script);
    expect(spawnSync('bash', ['-n', file]).status).toBe(0);
    expect(script).not.toContain('ip6tables');
    expect(script).not.toContain('iptables -X');
    expect(script).toContain(
      'iptables -t nat -I PREROUTING -p tcp --dport 2222 -j REDIRECT --to-port 22\n' +
        'iptables -t nat -I OUTPUT -p tcp -o lo --dport 2222 -j REDIRECT --to-port 22\n\n# Open ports.\n',
    );
    expect(script).toContain('iptables -A INPUT -p udp -m udp --dport 53 -j ACCEPT\n');
    expect(script).toContain(
      '# Additional custom rules.\niptables -A INPUT -p tcp --dport 8080 -s 127.0.0.1 -j ACCEPT\n',
    );
  });
});

describe('both role templates render byte for byte what Ansible rendered (test/fixtures/jinja-roles)', () => {
  it.each([
    ['firewall.bash', 'geerlingguy.firewall'],
    ['haproxy.cfg', 'geerlingguy.haproxy'],
  ])('%s', (name, role) => {
    const vars = JSON.parse(readFileSync(join(recorded, `${name}.vars.json`), 'utf8')) as Record<string, unknown>;
    const rendered = templater.renderFile(join(roles, role, 'templates', `${name}.j2`), vars);
    expect(rendered).toBe(readFileSync(join(recorded, `${name}.expected`), 'utf8'));
  });
});
