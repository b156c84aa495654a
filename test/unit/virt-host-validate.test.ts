/**
 * virt-host-validate parsing and judging, table-driven over real outputs (each fixture names its source):
 * the lab's nested container host, a bare-metal host, and a paste with collapsed spacing and a stray line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkId, judgeHostValidate, parseHostValidate } from '../../runner/core/modules/virt/host-validate.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'virt');
const MARK = '----- output -----\n';

function fixture(name: string): string {
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  const at = text.indexOf(MARK);
  if (at < 0) throw new Error(`${name}: no "${MARK.trim()}" line under the source header`);
  return text.slice(at + MARK.length);
}

describe('parseHostValidate', () => {
  it('reads the lab host (nested, container): FAIL for the CPU flag, /dev/kvm checks skipped', () => {
    const checks = parseHostValidate(fixture('lab-nested-container.txt'));
    expect(checks.map((c) => [c.id, c.result])).toEqual([
      ['hw-virt', 'FAIL'],
      ['vhost-net', 'WARN'],
      ['tun', 'PASS'],
      ['cgroup:cpu', 'PASS'],
      ['cgroup:cpuacct', 'PASS'],
      ['cgroup:cpuset', 'PASS'],
      ['cgroup:memory', 'PASS'],
      ['cgroup:devices', 'PASS'],
      ['cgroup:blkio', 'PASS'],
      ['iommu', 'WARN'],
      ['secure-guest', 'WARN'],
    ]);
    expect(checks[0]).toEqual({
      hypervisor: 'QEMU',
      check: 'for hardware virtualization',
      id: 'hw-virt',
      result: 'FAIL',
      detail:
        'Host not compatible with KVM; HW virtualization CPU features not found. Only emulated CPUs are available; performance will be significantly limited',
    });
  });

  it('reads a bare-metal host where everything passes', () => {
    const checks = parseHostValidate(fixture('gist-bare-metal-pass.txt'));
    expect(checks).toHaveLength(10);
    expect(checks.every((c) => c.result === 'PASS' && c.hypervisor === 'QEMU' && c.detail === undefined)).toBe(true);
    expect(checks.slice(0, 3).map((c) => c.id)).toEqual(['hw-virt', 'kvm-exists', 'kvm-access']);
  });

  it('reads collapsed spacing and skips lines that are not checks', () => {
    const checks = parseHostValidate(fixture('pastebin-collapsed-setlocale.txt'));
    expect(checks).toHaveLength(10);
    expect(checks.map((c) => c.id)).toContain('cgroup-mount:memory');
    expect(checks.find((c) => c.id === 'kvm-access')?.check).toBe('if device /dev/kvm is accessible');
  });

  it('gives stable ids', () => {
    expect(checkId("for cgroup 'blkio' controller support")).toBe('cgroup:blkio');
    expect(checkId('if IOMMU is enabled by kernel')).toBe('iommu-kernel');
    expect(checkId('for Linux >= 2.6.26')).toBe('other:for linux >= 2.6.26');
  });
});

describe('judgeHostValidate', () => {
  const lab = parseHostValidate(fixture('lab-nested-container.txt'));
  const bare = parseHostValidate(fixture('gist-bare-metal-pass.txt'));

  it('fails the lab host when hardware virtualization is required', () => {
    const v = judgeHostValidate(lab, {
      hypervisor: 'qemu',
      requireHwVirt: true,
      kvmDevice: { present: true, usable: true },
    });
    expect(v.passed).toBe(false);
    expect(v.failures).toEqual([
      expect.stringMatching(/^QEMU for hardware virtualization: FAIL \(Host not compatible with KVM/),
    ]);
    expect(v.warnings).toHaveLength(3);
    expect(v.counts).toEqual({ PASS: 7, WARN: 3, FAIL: 1, NOTE: 0 });
  });

  it('excuses the CPU-flag FAIL when not required and /dev/kvm works, and says so', () => {
    const v = judgeHostValidate(lab, {
      hypervisor: 'qemu',
      requireHwVirt: false,
      kvmDevice: { present: true, usable: true },
    });
    expect(v.passed).toBe(true);
    expect(v.failures).toEqual([]);
    expect(v.notes).toEqual([
      expect.stringMatching(
        /FAIL .*excused because require_hw_virt is false: the CPU shows no vmx\/svm flag .* \/dev\/kvm opens/,
      ),
      'libvirt skipped its /dev/kvm checks after the CPU-flag FAIL; cairn checked the device itself: present and opens read-write',
    ]);
  });

  it('does not excuse the CPU-flag FAIL when /dev/kvm does not work', () => {
    const v = judgeHostValidate(lab, {
      requireHwVirt: false,
      kvmDevice: { present: true, usable: false, detail: 'Permission denied' },
    });
    expect(v.passed).toBe(false);
    expect(v.failures[0]).toMatch(/and \/dev\/kvm is not usable either \(Permission denied\)/);
  });

  it('fails a missing /dev/kvm even when libvirt passed its checks', () => {
    expect(judgeHostValidate(bare, { requireHwVirt: true }).passed).toBe(true);
    const v = judgeHostValidate(bare, { requireHwVirt: true, kvmDevice: { present: false, usable: false } });
    expect(v.failures).toEqual(['/dev/kvm is missing']);
  });

  it('turns warnings into failures on request, and needs at least one check', () => {
    expect(judgeHostValidate(lab, { requireHwVirt: false, failOnWarn: true }).failures).toHaveLength(3);
    expect(judgeHostValidate(lab, { hypervisor: 'lxc', requireHwVirt: false }).failures).toEqual([
      'virt-host-validate printed no lxc checks',
    ]);
  });
});

describe('judgeHostValidate with guests under TCG (no /dev/kvm)', () => {
  const lab = parseHostValidate(fixture('lab-nested-container.txt'));
  const bare = parseHostValidate(fixture('gist-bare-metal-pass.txt'));

  it('passes the lab host without /dev/kvm and names TCG in its notes', () => {
    const v = judgeHostValidate(lab, {
      hypervisor: 'qemu',
      requireHwVirt: false,
      kvmDevice: { present: false, usable: false },
      accelerator: 'tcg',
    });
    expect(v.passed).toBe(true);
    expect(v.notes).toEqual([
      expect.stringMatching(/^QEMU for hardware virtualization: FAIL .*domain type qemu \(TCG/),
    ]);
  });

  it('still fails the CPU-flag FAIL under TCG when hardware virtualization is required', () => {
    const v = judgeHostValidate(lab, {
      requireHwVirt: true,
      kvmDevice: { present: false, usable: false },
      accelerator: 'tcg',
    });
    expect(v.passed).toBe(false);
    expect(v.failures).toEqual([expect.stringMatching(/^QEMU for hardware virtualization: FAIL/)]);
  });

  it("excuses libvirt's own /dev/kvm FAILs under TCG, but not under kvm", () => {
    const noKvm = bare.map((c) =>
      c.id === 'kvm-exists' || c.id === 'kvm-access' ? { ...c, result: 'FAIL' as const, detail: 'missing' } : c,
    );
    const tcg = judgeHostValidate(noKvm, { requireHwVirt: true, accelerator: 'tcg' });
    expect(tcg.passed).toBe(true);
    expect(tcg.notes).toHaveLength(2);
    expect(tcg.notes[0]).toMatch(/excused: guests are defined with domain type qemu \(TCG\)/);
    const kvm = judgeHostValidate(noKvm, { requireHwVirt: true, kvmDevice: { present: false, usable: false } });
    expect(kvm.passed).toBe(false);
    expect(kvm.failures).toHaveLength(2);
  });
});
