import { describe, expect, it } from 'vitest';
import '../../../runner/core/modules/all.js';
import { getModule, moduleNames } from '../../../runner/core/modules/index.js';
import { compileSchema } from '../../../runner/core/util/schema.js';

describe('runner/core/modules/all.ts', () => {
  it("registers every module and Ansible's aliases", () => {
    expect(moduleNames()).toEqual([
      'add_host',
      'apt',
      'apt_repository',
      'assert',
      'async_status',
      'blockinfile',
      'ceph_health',
      'ceph_osd_volumes',
      'command',
      'copy',
      'cron',
      'debug',
      'fail',
      'fetch',
      'file',
      'gather_facts',
      'get_url',
      'git',
      'group',
      'group_by',
      'http',
      'lineinfile',
      'mount',
      'nft_ruleset',
      'package',
      'package_facts',
      'ping',
      'raid_health',
      'raw',
      'reboot',
      'replace',
      'service',
      'service_facts',
      'setup',
      'shell',
      'stat',
      'sysctl',
      'systemd',
      'systemd_service',
      'template',
      'timezone',
      'tls_certificate',
      'unarchive',
      'uri',
      'user',
      'virt_host_validate',
      'wait_for',
      'wait_for_connection',
      'zfs_dataset',
      'zfs_pool',
      'zfs_snapshot_age',
      'zpool_health',
    ]);
    expect(getModule('service')).toBe(getModule('systemd'));
    expect(getModule('systemd_service')).toBe(getModule('systemd'));
    expect(getModule('uri')).toBe(getModule('http'));
    expect(getModule('gather_facts')).toBe(getModule('setup'));
  });

  it('every argsSchema compiles and refuses unknown arguments', () => {
    for (const name of moduleNames()) {
      const module = getModule(name)!;
      const validate = compileSchema(module.argsSchema);
      // add_host's other keys are the new host's variables (Ansible's add_host.py): only names are checked.
      if (name === 'add_host') {
        expect(validate({ name: 'web9', cairn_no_such_argument: 1 }), name).toBe(true);
        expect(validate({ name: 'web9', 'not a name': 1 }), name).toBe(false);
        expect(validate({ name: 'web9', hostvars: {} }), name).toBe(false);
        continue;
      }
      expect((module.argsSchema as { additionalProperties?: unknown }).additionalProperties, name).toBe(false);
      expect(validate({ cairn_no_such_argument: 1 }), name).toBe(false);
    }
  });

  it('read-only modules are flagged so the engine never applies them', () => {
    const readOnly = moduleNames().filter((name) => getModule(name)!.readOnly);
    expect(readOnly).toEqual([
      'assert',
      'ceph_health',
      'debug',
      'fail',
      'gather_facts',
      'package_facts',
      'ping',
      'raid_health',
      'service_facts',
      'setup',
      'stat',
      'virt_host_validate',
      'wait_for',
      'wait_for_connection',
      'zfs_snapshot_age',
      'zpool_health',
    ]);
    expect(getModule('command')!.freeFormArg).toBe('cmd');
    expect(getModule('shell')!.freeFormArg).toBe('cmd');
  });
});
