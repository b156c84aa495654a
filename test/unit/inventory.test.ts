import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CairnError, formatLocation } from '../../runner/core/util/errors.js';
import { hostGroupsDepthOrder, loadInventory, setVaultDecryptor } from '../../runner/core/inventory/index.js';

const FIXTURES = 'test/fixtures/inventory';
const fixture = (...parts: string[]) => join(FIXTURES, ...parts);

/** Run `fn`, expect a CairnError, return it (so tests can check message and location). */
function cairnError(fn: () => unknown): CairnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CairnError) return err;
    throw new Error(`expected a CairnError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a CairnError, nothing was thrown');
}

describe('loadInventory: precedence', () => {
  const inv = loadInventory(fixture('precedence'));
  const P = fixture('precedence');
  // [host, variable, winning value, where it was set]: one row per contest in the fixture.
  const table: Array<[string, string, unknown, string]> = [
    ['solo', 'from_all', 'all-inline', `${P}/hosts.yaml:4:5`],
    ['web1', 'all_vs_all_file', 'all-file', `${P}/group_vars/all.yaml:1:1`], // group_vars file > inline, same group
    ['web1', 'all_file_vs_site', 'site-inline', `${P}/hosts.yaml:17:9`], // all (depth 0) < site (depth 1), files too
    ['solo', 'all_file_vs_site', 'all-file', `${P}/group_vars/all.yaml:2:1`],
    ['web1', 'site_vs_site_file', 'site-file', `${P}/group_vars/site.yml:1:1`],
    ['web1', 'site_vs_web', 'web-inline', `${P}/hosts.yaml:31:13`], // parent < child
    ['web1', 'depth_vs_name', 'web-inline', `${P}/hosts.yaml:34:13`], // depth 2 beats depth 1 whatever the names
    ['web1', 'same_depth', 'zeta-inline', `${P}/hosts.yaml:48:9`], // site < zeta: same depth, by name
    ['web2', 'same_depth', 'site-inline', `${P}/hosts.yaml:20:9`],
    ['web1', 'siblings', 'web-inline', `${P}/hosts.yaml:33:13`], // cache < web by name, though cache comes later in the file
    ['web1', 'zeta_file', 'zeta-file', `${P}/group_vars/zeta:2:1`], // extension-less group_vars file
    ['web1', 'folder_order', 'web-folder-20', `${P}/group_vars/web/20-more.yml:1:1`], // folder: name order, after inline
    ['web2', 'folder_only', 'base', `${P}/group_vars/web/10-base.yaml:2:1`],
    ['web2', 'deep_file', 'from-subfolder', `${P}/group_vars/web/zz/deeper.yaml:1:1`],
    ['web1', 'web_vs_host', 'web1-inline', `${P}/hosts.yaml:26:15`], // group < host
    ['web2', 'web_vs_host', 'web-inline', `${P}/hosts.yaml:32:13`],
    ['web1', 'host_vs_host_file', 'web1-file', `${P}/host_vars/web1.yaml:1:1`], // host inline < host_vars file
    ['web1', 'host_listed_twice', 'second-listing', `${P}/hosts.yaml:46:11`], // later listing of the host wins
    ['solo', 'from_host', 'solo-inline', `${P}/hosts.yaml:13:7`],
    ['web2', 'from_host', 'web2-file', `${P}/host_vars/web2:1:1`], // extension-less host_vars file
    ['web1', 'ansible_port', 2222, `${P}/hosts.yaml:27:15`],
    ['web2', 'ansible_port', 22, `${P}/hosts.yaml:10:5`],
    ['web1', 'settings', { b: 3 }, `${P}/hosts.yaml:36:13`], // mappings replace, never merge
    ['solo', 'settings', { a: 1, b: 2 }, `${P}/hosts.yaml:7:5`],
  ];
  it.each(table)('%s: %s = %j from %s', (host, variable, value, origin) => {
    expect(inv.hostVars(host)[variable]).toEqual(value);
    expect(formatLocation(inv.varOrigin(host, variable)!)).toBe(origin);
  });

  it('leaves variables nobody set undefined, with no origin', () => {
    expect(inv.hostVars('solo')).not.toHaveProperty('folder_order');
    expect(inv.varOrigin('solo', 'folder_order')).toBeUndefined();
  });

  it("orders a host's groups all first, then by depth, then by name", () => {
    expect(inv.hosts.get('web1')!.groups).toEqual(['all', 'site', 'zeta', 'cache', 'web']);
    expect(hostGroupsDepthOrder(inv, ['web', 'cache', 'zeta', 'all', 'site'])).toEqual([
      'all',
      'site',
      'zeta',
      'cache',
      'web',
    ]);
  });

  it('sets the magic variables', () => {
    const vars = inv.hostVars('web1');
    expect(vars.inventory_hostname).toBe('web1');
    expect(vars.inventory_file).toBe(`${P}/hosts.yaml`);
    expect(vars.inventory_dir).toBe(P);
    expect(vars.group_names).toEqual(['cache', 'site', 'web', 'zeta']);
    expect(inv.hostVars('solo').group_names).toEqual(['ungrouped']);
    expect(vars.groups).toEqual({
      all: ['solo', 'web1', 'web2'],
      site: ['web1', 'web2'],
      web: ['web1', 'web2'],
      cache: ['web1'],
      zeta: ['web1'],
      ungrouped: ['solo'],
    });
    expect(formatLocation(inv.varOrigin('web1', 'inventory_hostname')!)).toBe(`${P}/hosts.yaml:24:13`);
  });

  it("gives every call its own copy, so one host cannot change another's variables", () => {
    const first = inv.hostVars('web2');
    (first.settings as Record<string, unknown>).b = 99;
    expect(inv.hostVars('web1').settings).toEqual({ b: 3 });
    expect(inv.hostVars('web2').settings).toEqual({ b: 3 });
  });

  it('exposes layered vars on hosts and groups', () => {
    expect(inv.hosts.get('web1')!.vars).toMatchObject({
      host_vs_host_file: 'web1-file',
      host_listed_twice: 'second-listing',
    });
    expect(inv.groups.get('web')!.vars).toMatchObject({
      folder_order: 'web-folder-20',
      folder_only: 'base',
      site_vs_web: 'web-inline',
    });
    expect(inv.groups.get('all')!.vars).toMatchObject({ all_vs_all_file: 'all-file', from_all: 'all-inline' });
  });

  it('rejects an unknown host', () => {
    const err = cairnError(() => inv.hostVars('nope'));
    expect(err.message).toMatch(/no host "nope"/);
  });

  it('has no secrets without vault files', () => {
    expect(inv.secretValues()).toEqual([]);
  });
});

describe('loadInventory: structure', () => {
  const S = fixture('structure');
  const inv = loadInventory(S);

  it('reads inventory.yaml from a folder and keeps the given path', () => {
    expect(inv.path).toBe(S);
    expect(inv.file).toBe(`${S}/inventory.yaml`);
  });

  it('numbers hosts in the order they first appear', () => {
    expect([...inv.hosts.keys()]).toEqual([
      'web1.example.com',
      'web2.example.com',
      'db1',
      'db2',
      'bastion',
      'lb1',
      'lb2',
    ]);
  });

  it('makes top-level groups children of all and keeps every parent', () => {
    expect(inv.groups.get('all')!.children).toEqual(['canary', 'web', 'db', 'lb', 'ungrouped']);
    expect(inv.groups.get('canary')!.parents).toEqual(['web', 'all']);
    expect(inv.groups.get('web')!.parents).toEqual(['all']);
    // canary's longest path from all goes through web: depth 2, after web.
    expect(inv.hosts.get('web2.example.com')!.groups).toEqual(['all', 'web', 'canary']);
    expect(inv.hostVars('web2.example.com').canary).toBe(true);
  });

  it('puts hosts that are in no other group in ungrouped', () => {
    expect(inv.groups.get('ungrouped')!.hosts).toEqual(['bastion']);
    expect(inv.hostVars('bastion').ungrouped_marker).toBe('bastion-only');
    expect(inv.hostVars('lb1')).not.toHaveProperty('ungrouped_marker');
  });

  it('reads host_vars folders in name order and host_vars files of dotted host names', () => {
    expect(inv.hostVars('db1')).toMatchObject({ ansible_port: 5022, ansible_user: 'deploy', db_role: 'leader' });
    expect(formatLocation(inv.varOrigin('db1', 'db_role')!)).toBe(`${S}/host_vars/db1/20-role.yml:1:1`);
    expect(inv.hostVars('web1.example.com').ansible_host).toBe('127.0.0.11');
    expect(inv.hostVars('web1.example.com').inventory_hostname_short).toBe('web1');
  });

  it('selects through the inventory object', () => {
    expect(inv.select('web:!canary')).toEqual(['web1.example.com']);
  });

  it("reads an INI inventory (Ansible's default format)", () => {
    const ini = loadInventory(fixture('errors', 'ini-hosts'));
    expect(ini.select('web')).toEqual(['web1']);
    expect(ini.hostVars('web1').ansible_host).toBe('10.0.0.1');
  });

  it('lets templated connection variables through to rendering', () => {
    const templated = loadInventory(fixture('templated', 'hosts.yaml'));
    expect(templated.hostVars('web1')).toMatchObject({
      ansible_port: '{{ base_port }}',
      cairn_jump: ['bastion', 'deploy@gw:2222'],
    });
    // As Ansible (PyYAML, YAML 1.1): an unquoted `yes` is the boolean true.
    expect(templated.hostVars('web2').ansible_become).toBe(true);
  });
});

describe('loadInventory: errors', () => {
  const E = fixture('errors');
  // [fixture, message (regex), "file:line:col" or file]
  const table: Array<[string, RegExp, string]> = [
    [
      'unknown-key.yaml',
      /^inventory: unknown key "host" in "web" \(did you mean "hosts"\? expected one of: hosts, vars, children\)$/,
      'unknown-key.yaml:4:7',
    ],
    [
      'host-entry-list.yaml',
      /^inventory: "web1" must be a mapping of variables, or empty, got a list$/,
      'host-entry-list.yaml:4:7',
    ],
    [
      'hosts-list.yaml',
      /^inventory: "hosts" must be a mapping of host names to their variables \(not a list\), got a list$/,
      'hosts-list.yaml:3:5',
    ],
    [
      'not-a-mapping.yaml',
      /^inventory: the top level must be a mapping of group names \(all, web, \.\.\.\) to groups, got a list$/,
      'not-a-mapping.yaml:1:1',
    ],
    [
      'bad-host-name.yaml',
      /^inventory: invalid host name "web 2" \(expected letters, digits, "_", "\." and "-"/,
      'bad-host-name.yaml:4:5',
    ],
    [
      'bad-group-name.yaml',
      /^inventory: invalid group name "1web" \(expected letters, digits, "_" and "-", starting with a letter or "_"\)$/,
      'bad-group-name.yaml:3:5',
    ],
    ['bad-var-name.yaml', /^inventory: invalid variable name "my-var"/, 'bad-var-name.yaml:3:5'],
    [
      'magic-var.yaml',
      /^inventory: "group_names" is set by cairn for every host; the inventory cannot set it$/,
      'magic-var.yaml:4:7',
    ],
    ['cycle.yaml', /^group "a" is its own ancestor: a -> b -> c -> a$/, 'cycle.yaml:9:17'],
    ['self-cycle.yaml', /^group "web" is its own ancestor: web -> web$/, 'self-cycle.yaml:3:5'],
    [
      'all-as-child.yaml',
      /^"all" holds every group; it cannot be the child of another group$/,
      'all-as-child.yaml:3:5',
    ],
    [
      'host-group-clash.yaml',
      /^"db" is both a host and a group \(the group is at .*host-group-clash\.yaml:5:5\)/,
      'host-group-clash.yaml:3:5',
    ],
    [
      'host-named-all.yaml',
      /^"all" is the name of a group every inventory has; rename the host$/,
      'host-named-all.yaml:3:5',
    ],
    [
      'port-range.yaml',
      /^inventory: "ansible_port" must be an integer from 1 to 65535, got number 70000$/,
      'port-range.yaml:4:21',
    ],
    [
      'port-string.yaml',
      /^inventory: "ansible_port" must be an integer from 1 to 65535, got the string "ssh"$/,
      'port-string.yaml:3:19',
    ],
    [
      'become-string.yaml',
      /^inventory: "ansible_become" must be true or false \(or yes\/no, on\/off\), got the string "sometimes"$/,
      'become-string.yaml:5:25',
    ],
    [
      'connection-enum.yaml',
      /^inventory: "ansible_connection" must be "ssh" or "local", got the string "paramiko"$/,
      'connection-enum.yaml:4:27',
    ],
    [
      'timeout-zero.yaml',
      /^inventory: "ansible_timeout" must be a whole number of seconds, at least 1, got number 0$/,
      'timeout-zero.yaml:4:24',
    ],
    ['jump-list.yaml', /^inventory: entry 2 of "cairn_jump" must be a string, got number 22$/, 'jump-list.yaml:6:11'],
    [
      'user-empty.yaml',
      /^inventory: "ansible_user" must be a user name \(a non-empty string\), got the string ""$/,
      'user-empty.yaml:4:21',
    ],
    ['bad-yaml.yaml', /^invalid YAML: /, 'bad-yaml.yaml:'],
    [
      'stray-host-vars',
      /^host_vars file for host "web3", which is not in the inventory; did you mean "web1" or "web2"\?/,
      'stray-host-vars/host_vars/web3.yaml',
    ],
    [
      'stray-group-vars',
      /^group_vars file for group "dbs", which is not in the inventory; did you mean "db"\?/,
      'stray-group-vars/group_vars/dbs.yml',
    ],
    ['folder-junk', /^files in a vars folder must end in \.yaml or \.yml/, 'folder-junk/group_vars/web/notes.txt'],
    [
      'group-vars-bad',
      /^group_vars file: "ansible_port" must be an integer from 1 to 65535, got number 0$/,
      'group-vars-bad/group_vars/web.yaml:3:15',
    ],
    [
      'group-vars-list',
      /^group_vars file: the top level must be a mapping of variable names to values, got a list$/,
      'group-vars-list/group_vars/web.yaml:1:1',
    ],
    [
      'no-inventory',
      /^no inventory file in this folder \(expected one of hosts\.yaml, hosts\.yml, inventory\.yaml, inventory\.yml, or Ansible inventory files\)$/,
      'no-inventory',
    ],
    [
      'two-inventories',
      /^several inventory files in this folder \(hosts\.yaml, inventory\.yaml\); keep one$/,
      'two-inventories',
    ],
    ['does-not-exist.yaml', /^cannot read inventory: no such file$/, 'does-not-exist.yaml'],
  ];
  it.each(table)('%s', (name, message, where) => {
    const err = cairnError(() => loadInventory(join(E, name)));
    expect(err.message).toMatch(message);
    expect(err.kind).toBe('input');
    const location = formatLocation(err.location!);
    if (where.endsWith(':')) expect(location.startsWith(`${E}/${where}`)).toBe(true);
    else expect(location).toBe(`${E}/${where}`);
  });

  it('shows the offending line with a caret', () => {
    const err = cairnError(() => loadInventory(join(E, 'port-range.yaml')));
    expect(err.detail).toBe('4 |       ansible_port: 70000\n                        ^');
    const cycle = cairnError(() => loadInventory(join(E, 'cycle.yaml')));
    expect(cycle.detail).toBe('9 |                 a:\n                    ^');
  });
});

describe('loadInventory: vault files', () => {
  const V = fixture('vault');
  /**
   * Stand-in for `cairn vault` (not written yet): the fixture holds the age header and then the base64 of
   * the plaintext, so this only undoes that. See test/fixtures/inventory/README.md.
   */
  const decodeFixture = (file: string, data: Buffer): string => {
    const text = data.toString('latin1');
    if (!text.startsWith('age-encryption.org/v1\n')) throw new Error(`${file} is not an age file`);
    const lines = text.trim().split('\n');
    return Buffer.from(lines[lines.length - 1]!, 'base64').toString('utf8');
  };
  afterEach(() => setVaultDecryptor(undefined));

  it('refuses encrypted files without a decryptor, naming the file', () => {
    const err = cairnError(() => loadInventory(join(V, 'vars-file')));
    expect(err.message).toMatch(/^encrypted vault files need `cairn vault` support/);
    expect(formatLocation(err.location!)).toBe(`${V}/vars-file/group_vars/all/vault.yaml`);
    const whole = cairnError(() => loadInventory(join(V, 'inventory-file')));
    expect(formatLocation(whole.location!)).toBe(`${V}/inventory-file/hosts.yaml`);
  });

  it('sniffs the header before reading text, so a binary age payload is not called "binary YAML"', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-inv-'));
    try {
      writeFileSync(
        join(dir, 'hosts.yaml'),
        Buffer.concat([
          Buffer.from('age-encryption.org/v1\n-> X25519 abc\n--- def\n'),
          Buffer.from([0, 255, 1, 0, 200]),
        ]),
      );
      expect(cairnError(() => loadInventory(dir)).message).toMatch(/^encrypted vault files need `cairn vault`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses a plugged-in decryptor and records every string from vault files as secret', () => {
    setVaultDecryptor(decodeFixture);
    const inv = loadInventory(join(V, 'vars-file'));
    // vault.yaml sorts after 10-plain.yaml in the all/ folder, so it wins.
    expect(inv.hostVars('db1')).toMatchObject({ db_password: 'correct-horse-battery', db_user: 'app', port: 5432 });
    expect(formatLocation(inv.varOrigin('db1', 'db_password')!)).toBe(`${V}/vars-file/group_vars/all/vault.yaml:1:1`);
    // Numbers from a vault are secrets too (issue 13: `api_pin: 4711936` was printed in clear).
    expect(inv.secretValues()).toEqual(['correct-horse-battery', 'tok-bbbbbbbb', 'tok-aaaa', '5432']);

    const whole = loadInventory(join(V, 'inventory-file'));
    expect(whole.hostVars('web1').api_key).toBe('inventory-secret');
    expect(whole.secretValues()).toEqual(['inventory-secret']);
  });

  it('turns a failing decryptor into a CairnError naming the file', () => {
    setVaultDecryptor(() => {
      throw new Error('no identity matched');
    });
    const err = cairnError(() => loadInventory(join(V, 'vars-file')));
    expect(err.message).toBe('cannot decrypt vault file: no identity matched');
    expect(formatLocation(err.location!)).toBe(`${V}/vars-file/group_vars/all/vault.yaml`);
  });
});

describe('loadInventory: property', () => {
  const root = mkdtempSync(join(tmpdir(), 'cairn-inv-prop-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  // Few names, so clashes (host = group), repeats and cycles are common.
  const groupName = fc.constantFrom('all', 'web', 'db', 'lb', 'ungrouped', 'g1', 'web1');
  const hostName = fc.constantFrom('web1', 'web2', 'db1', 'lb1', 'x.example.com', 'db');
  const vars = fc.dictionary(
    fc.constantFrom('a', 'b', 'ansible_port', 'ansible_become'),
    fc.oneof(fc.integer({ min: -5, max: 70000 }), fc.boolean(), fc.string({ maxLength: 4 })),
    { maxKeys: 2 },
  );
  const { group } = fc.letrec((tie) => ({
    group: fc.option(
      fc.record(
        {
          hosts: fc.option(fc.dictionary(hostName, fc.option(vars), { maxKeys: 3 })),
          vars: fc.option(vars),
          children: fc.option(fc.dictionary(groupName, tie('group'), { maxKeys: 2 }), { depthSize: 'small' }),
        },
        { requiredKeys: [] },
      ),
    ),
  }));
  const inventory = fc.dictionary(groupName, group, { maxKeys: 3 });
  // Mostly well-formed patterns over names that often exist, some token soup, some arbitrary text.
  const term = fc
    .tuple(
      fc.constantFrom('', '', '', '&', '!'),
      fc.constantFrom(
        'all',
        '*',
        'web',
        'web1',
        'web*',
        'db',
        'lb?',
        '*.example.com',
        '~w.*',
        '~(db|lb)',
        'g1',
        'ungrouped',
      ),
      fc.constantFrom('', '', '', '[0]', '[-1]', '[0:1]', '[1:]'),
    )
    .map(([op, name, sub]) => (name.startsWith('~') ? op + name : op + name + sub));
  const wellFormed = fc
    .array(term, { minLength: 1, maxLength: 4 })
    .chain((terms) =>
      fc
        .array(fc.constantFrom(':', ','), { minLength: terms.length, maxLength: terms.length })
        .map((seps) => terms.map((t, i) => (i ? seps[i]! : '') + t).join('')),
    );
  // Terms built from the names the loaded inventory really has (chosen by index once it is loaded).
  const nameTerm = fc.record({
    op: fc.constantFrom('', '', '&', '!'),
    pick: fc.nat(),
    form: fc.constantFrom('exact', 'exact', 'prefix*', '?suffix', 'regex', 'index', 'range'),
  });
  type NameTerm = { op: string; pick: number; form: string };
  const fromNames = (specs: NameTerm[], names: string[]): string =>
    specs
      .map(({ op, pick, form }) => {
        const name = names[pick % names.length]!;
        switch (form) {
          case 'prefix*':
            return `${op}${name.slice(0, 2)}*`;
          case '?suffix':
            return `${op}?${name.slice(1)}`;
          case 'regex':
            return `${op}~${name.replace(/\./g, '\\.')}`;
          case 'index':
            return `${op}${name}[${pick % 3 === 0 ? -1 : 0}]`;
          case 'range':
            return `${op}${name}[0:${pick % 4}]`;
          default:
            return `${op}${name}`;
        }
      })
      .join(':');
  const token = fc.constantFrom(
    'all',
    '*',
    'web',
    'web1',
    'db',
    'lb?',
    '~w.*',
    '~(',
    ':',
    ',',
    '&',
    '!',
    '[0]',
    '[-1]',
    '[0:1]',
    '[',
    ']',
    ' ',
    'nosuch',
    'g1',
  );
  const soup = fc.array(token, { maxLength: 6 }).map((t) => t.join(''));
  const pattern = fc.oneof(
    { arbitrary: wellFormed, weight: 4 },
    { arbitrary: soup, weight: 1 },
    { arbitrary: fc.string({ maxLength: 12 }), weight: 1 },
  );

  it('random group trees and patterns throw nothing but CairnError', () => {
    let n = 0;
    let loaded = 0;
    let selections = 0;
    fc.assert(
      fc.property(
        inventory,
        fc.array(pattern, { minLength: 1, maxLength: 4 }),
        fc.array(fc.array(nameTerm, { minLength: 1, maxLength: 3 }), { maxLength: 4 }),
        (shape, fixedPatterns, specs) => {
          const dir = join(root, String(n++));
          mkdirSync(dir);
          writeFileSync(join(dir, 'hosts.yaml'), stringify(shape));
          let inv;
          try {
            inv = loadInventory(dir);
            loaded++;
          } catch (err) {
            if (err instanceof CairnError) return;
            throw err;
          }
          const order = [...inv.hosts.keys()];
          const names = [...order, ...inv.groups.keys()];
          const patterns = [...fixedPatterns, ...specs.map((spec) => fromNames(spec, names))];
          for (const p of patterns) {
            let selected: string[];
            try {
              selected = inv.select(p);
            } catch (err) {
              if (err instanceof CairnError) continue;
              throw err;
            }
            selections++;
            // In inventory order, each host once.
            const positions = selected.map((h) => order.indexOf(h));
            expect(positions.every((pos, i) => pos >= 0 && (i === 0 || pos > positions[i - 1]!))).toBe(true);
          }
          for (const host of order) {
            const hostVars = inv.hostVars(host);
            expect(hostVars.group_names).not.toContain('all');
            expect(inv.hosts.get(host)!.groups[0]).toBe('all');
          }
        },
      ),
      { numRuns: 300 },
    );
    // The property is only worth something if most cases get past loading and pattern parsing.
    expect(loaded).toBeGreaterThan(60);
    expect(selections).toBeGreaterThan(100);
  });
});
