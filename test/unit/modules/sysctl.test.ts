/**
 * sysctl: the file edit, the /proc/sys path mapping, live values and the read-only container case. The live
 * values used are real: /proc/sys/net/ipv4/ip_local_port_range on the cairn development container reads
 * "32768\t60999\n" (a tab between the numbers, as the kernel prints ranges); a container's /proc/sys is
 * mounted read-only, which `test -w` reports as not writable even for root.
 */
import { describe, expect, it } from 'vitest';
import {
  LIVE_SKIPPED_NOT_VISIBLE,
  LIVE_SKIPPED_READ_ONLY,
  editSysctlFile,
  fileValueOf,
  normaliseSysctlValue,
  parseLiveProbe,
  planSysctl,
  sysctlApplyScript,
  sysctlModule,
  sysctlProcPath,
} from '../../../runner/core/modules/sysctl.js';
import {
  FakeConnection,
  contextFor,
  fileProbeOutput,
  frameSections,
  outsideSingleQuotes,
} from '../../helpers/fake-connection.js';
import { parseSections } from '../../../runner/core/modules/remote.js';

const liveSection = (value: string, writable: boolean, exists = true): string =>
  frameSections(
    exists
      ? `::cairn-section:: live\nexists=1\nvalue_b64=${Buffer.from(value).toString('base64')}\nwritable=${writable ? 1 : 0}\n`
      : '::cairn-section:: live\nexists=0\n',
  );

describe('editSysctlFile', () => {
  it.each([
    ['adds a key to a missing file', undefined, 'net.core.somaxconn', '1024', 'net.core.somaxconn = 1024\n', true],
    [
      'appends to a file',
      '# tuned\nvm.swappiness = 10\n',
      'net.core.somaxconn',
      '1024',
      '# tuned\nvm.swappiness = 10\nnet.core.somaxconn = 1024\n',
      true,
    ],
    [
      'keeps a line whose value matches apart from whitespace',
      'net.ipv4.ip_local_port_range=1024\t65535\n',
      'net.ipv4.ip_local_port_range',
      '1024 65535',
      'net.ipv4.ip_local_port_range=1024\t65535\n',
      false,
    ],
    [
      'rewrites a different value in place',
      'a = 1\nnet.core.somaxconn=128\nb = 2\n',
      'net.core.somaxconn',
      '1024',
      'a = 1\nnet.core.somaxconn = 1024\nb = 2\n',
      true,
    ],
    ['removes later duplicates that would override', 'k = 1\nk = 2\n', 'k', '1', 'k = 1\n', true],
    ['ignores comments naming the key', '# k = 5\n', 'k', '5', '# k = 5\nk = 5\n', true],
    ['treats a "-" prefixed key as the same key', '-k = 5\n', 'k', '5', '-k = 5\n', false],
  ] as Array<[string, string | undefined, string, string, string, boolean]>)(
    '%s',
    (_n, original, name, value, text, changed) => {
      const edit = editSysctlFile(original, name, value);
      expect(edit.text).toBe(text);
      expect(edit.changed).toBe(changed);
      expect(editSysctlFile(edit.text, name, value).changed).toBe(false);
    },
  );

  it('removes every line of the key for absent', () => {
    expect(editSysctlFile('a = 1\nk = 1\nk=2\n', 'k', undefined)).toEqual({
      text: 'a = 1\n',
      changed: true,
      msg: 'removed k',
    });
    expect(editSysctlFile('a = 1\n', 'k', undefined).changed).toBe(false);
  });

  it('fileValueOf reports the value sysctl would apply (the last line)', () => {
    expect(fileValueOf('k = 1\nk = 2\n', 'k')).toBe('2');
    expect(fileValueOf(undefined, 'k')).toBeUndefined();
  });
});

describe('keys and values', () => {
  it('maps names to /proc/sys paths as sysctl(8)', () => {
    expect(sysctlProcPath('net.core.somaxconn')).toBe('/proc/sys/net/core/somaxconn');
    expect(sysctlProcPath('net.ipv4.conf.eth0/100.forwarding')).toBe('/proc/sys/net/ipv4/conf/eth0.100/forwarding');
    expect(sysctlProcPath('net/ipv4/conf/eth0.100/forwarding')).toBe('/proc/sys/net/ipv4/conf/eth0.100/forwarding');
  });

  it('normalises whitespace', () => {
    expect(normaliseSysctlValue('32768\t60999\n')).toBe('32768 60999');
  });

  it('reads the live probe', () => {
    expect(parseLiveProbe(parseSections(liveSection('32768\t60999\n', true)).get('live'))).toEqual({
      exists: true,
      writable: true,
      value: '32768\t60999',
    });
  });
});

const file = (text?: string) => ({
  path: '/etc/sysctl.d/99-cairn.conf',
  exists: text !== undefined,
  parentExists: true,
  umask: 0o022,
  ...(text !== undefined ? { text } : {}),
});

describe('planSysctl', () => {
  it('plans the file line and the live value, and nothing when both match', () => {
    const plan = planSysctl({ name: 'net.ipv4.ip_local_port_range', value: '1024 65535' }, file(), {
      exists: true,
      writable: true,
      value: '32768\t60999',
    });
    expect(plan.actions).toEqual([
      'write net.ipv4.ip_local_port_range = 1024 65535 to /etc/sysctl.d/99-cairn.conf',
      'set net.ipv4.ip_local_port_range 32768 60999 -> 1024 65535 (live)',
    ]);
    expect(plan.data).toMatchObject({ file_value: null, live_value: '32768\t60999', live_applied: true });
    const done = planSysctl(
      { name: 'net.ipv4.ip_local_port_range', value: '1024 65535' },
      file('net.ipv4.ip_local_port_range = 1024 65535\n'),
      { exists: true, writable: true, value: '1024\t65535' },
    );
    expect(done).toMatchObject({ changed: false, actions: [] });
  });

  it('apply_live auto skips a read-only /proc/sys and says so; the file part still applies', () => {
    const plan = planSysctl({ name: 'net.core.somaxconn', value: 1024 }, file(), {
      exists: true,
      writable: false,
      value: '4096',
    });
    expect(plan.changed).toBe(true);
    expect(plan.actions).toEqual([
      'write net.core.somaxconn = 1024 to /etc/sysctl.d/99-cairn.conf',
      LIVE_SKIPPED_READ_ONLY,
    ]);
    expect(plan.state?.live).toBeUndefined();
    expect(plan.data).toMatchObject({ msg: LIVE_SKIPPED_READ_ONLY, live_applied: false });
    const fileDone = planSysctl({ name: 'net.core.somaxconn', value: 1024 }, file('net.core.somaxconn = 1024\n'), {
      exists: true,
      writable: false,
      value: '4096',
    });
    expect(fileDone).toMatchObject({ changed: false, actions: [], data: { msg: LIVE_SKIPPED_READ_ONLY } });
  });

  it('apply_live true on a read-only /proc/sys fails; false ignores the live value', () => {
    expect(
      planSysctl({ name: 'k.x', value: 1, apply_live: true }, file(), { exists: true, writable: false, value: '0' })
        .failed,
    ).toMatch(/read-only/);
    expect(
      planSysctl({ name: 'k.x', value: 1, apply_live: false }, file('k.x = 1\n'), { exists: false, writable: false })
        .changed,
    ).toBe(false);
  });

  it('auto with nothing left but a read-only live value is a skip with the reason, not a silent ok', () => {
    // The container case the lab shows: vm.swappiness reads 60 (the host's) and /proc/sys is mounted ro.
    const plan = planSysctl({ name: 'vm.swappiness', value: 1 }, file('vm.swappiness = 1\n'), {
      exists: true,
      writable: false,
      value: '60',
    });
    expect(plan).toMatchObject({ changed: false, actions: [], skipped: LIVE_SKIPPED_READ_ONLY });
    expect(
      planSysctl({ name: 'vm.swappiness', value: 1 }, file('vm.swappiness = 1\n'), {
        exists: true,
        writable: false,
        value: '1',
      }).skipped,
    ).toBeUndefined();
  });

  it('auto skips a key that is not visible when /proc/sys itself is read-only (a kernel-global key in a container)', () => {
    // net.core.netdev_max_backlog exists only in the initial network namespace: absent in an nspawn container.
    const hidden = { exists: false, writable: false, procSysReadOnly: true };
    const plan = planSysctl({ name: 'net.core.netdev_max_backlog', value: 10000 }, file(), hidden);
    expect(plan.changed).toBe(true);
    expect(plan.actions).toEqual([
      'write net.core.netdev_max_backlog = 10000 to /etc/sysctl.d/99-cairn.conf',
      LIVE_SKIPPED_NOT_VISIBLE,
    ]);
    expect(
      planSysctl(
        { name: 'net.core.netdev_max_backlog', value: 10000 },
        file('net.core.netdev_max_backlog = 10000\n'),
        hidden,
      ),
    ).toMatchObject({ changed: false, skipped: LIVE_SKIPPED_NOT_VISIBLE });
    // apply_live true still refuses, and a missing key on a writable /proc/sys is still a typo.
    expect(
      planSysctl({ name: 'net.core.netdev_max_backlog', value: 1, apply_live: true }, file(), hidden).failed,
    ).toMatch(/^unknown sysctl key/);
    expect(parseLiveProbe('exists=0\nsys_ro=1\n')).toEqual({ exists: false, writable: false, procSysReadOnly: true });
  });

  it('an unknown key fails unless the live part is off', () => {
    expect(planSysctl({ name: 'net.nope', value: 1 }, file(), { exists: false, writable: false }).failed).toMatch(
      /^unknown sysctl key net\.nope/,
    );
  });
});

describe('sysctl module', () => {
  it('one probe, one apply: file written atomically and value set with sysctl -w, quoted', async () => {
    const conn = new FakeConnection([
      {
        match: '::cairn-section:: live',
        reply: { stdout: fileProbeOutput({ absent: true }) + liveSection('32768\t60999\n', true) },
      },
      { match: 'sysctl -q -w', reply: {} },
    ]);
    const ctx = contextFor(conn, { become: true });
    const args = { name: 'net.ipv4.ip_local_port_range', value: '1024 65535' };
    const plan = await sysctlModule.check(ctx, args);
    const result = await sysctlModule.apply(ctx, args, plan);
    expect(result.changed).toBe(true);
    expect(conn.calls).toHaveLength(2);
    expect(conn.calls[1]!.script).toContain("sysctl -q -w 'net.ipv4.ip_local_port_range=1024 65535'");
    expect(conn.calls[1]!.opts).toMatchObject({ become: true, stdin: 'net.ipv4.ip_local_port_range = 1024 65535\n' });
  });

  it('a value with shell syntax stays inside quotes', () => {
    const script = sysctlApplyScript({
      file: '/etc/sysctl.d/x.conf',
      live: { name: 'kernel.core_pattern', value: "|$(touch /tmp/x) 'q'", procPath: '/proc/sys/kernel/core_pattern' },
    });
    expect(outsideSingleQuotes(script)).not.toContain('$(touch');
  });
});
