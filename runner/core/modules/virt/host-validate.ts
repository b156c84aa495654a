/**
 * `virt-host-validate` parsed into one result per check, and judged. libvirt prints
 * `  QEMU: Checking <what, padded>: PASS|WARN (<hint>)|FAIL (<hint>)` (tools/virt-host-validate-common.c);
 * pasted copies often collapse the padding, and a stray line such as `setlocale: ...` may come first: both
 * are read. A nested or container host reports FAIL for the CPU's virtualization flag although /dev/kvm works
 * (and libvirt then skips its own /dev/kvm checks), so that one FAIL can be excused — never silently: the
 * verdict carries a note saying what was excused and why.
 */

export type CheckResult = 'PASS' | 'WARN' | 'FAIL' | 'NOTE';

export interface HostCheck {
  /** QEMU, LXC, BHYVE, CH ... as printed. */
  hypervisor: string;
  /** What was checked, without "Checking" and the padding: "for hardware virtualization". */
  check: string;
  /** A stable key: hw-virt, kvm-exists, kvm-access, vhost-net, tun, cgroup:<ctrl>, cgroup-mount:<ctrl>, iommu, iommu-kernel, secure-guest, or other:<text>. */
  id: string;
  result: CheckResult;
  /** The hint in parentheses after WARN/FAIL. */
  detail?: string;
}

const LINE = /^\s*([A-Za-z][A-Za-z0-9]*):\s+Checking\s+(.*?)\s*:\s+(PASS|WARN|FAIL|NOTE)\b(?:\s*\((.*)\))?\s*$/;

export function checkId(check: string): string {
  const text = check.toLowerCase().replace(/[‘’]/g, "'");
  if (text.includes('hardware virtualization')) return 'hw-virt';
  if (text.includes('/dev/kvm') && text.includes('accessible')) return 'kvm-access';
  if (text.includes('/dev/kvm')) return 'kvm-exists';
  if (text.includes('/dev/vhost-net')) return 'vhost-net';
  if (text.includes('/dev/net/tun')) return 'tun';
  const cgroup = /cgroup '([a-z_]+)' controller (support|mount-point)/.exec(text);
  if (cgroup) return `${cgroup[2] === 'support' ? 'cgroup' : 'cgroup-mount'}:${cgroup[1]}`;
  if (text.includes('iommu is enabled by kernel')) return 'iommu-kernel';
  if (text.includes('iommu')) return 'iommu';
  if (text.includes('secure guest')) return 'secure-guest';
  return `other:${text}`;
}

/** Every check line of the output; other lines are ignored. */
export function parseHostValidate(text: string): HostCheck[] {
  const checks: HostCheck[] = [];
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const check = m[2]!.trim();
    const entry: HostCheck = { hypervisor: m[1]!, check, id: checkId(check), result: m[3] as CheckResult };
    if (m[4] !== undefined && m[4].trim() !== '') entry.detail = m[4].trim();
    checks.push(entry);
  }
  return checks;
}

export interface ValidateOptions {
  /** Only these hypervisors' checks count (default: all printed). */
  hypervisor?: string;
  /** A FAIL for the CPU's virtualization flag fails the verdict (true on bare metal). */
  requireHwVirt: boolean;
  /** WARN lines fail the verdict too. */
  failOnWarn?: boolean;
  /** What cairn measured itself about /dev/kvm (it opens the device); used to excuse or confirm. */
  kvmDevice?: { present: boolean; usable: boolean; detail?: string };
  /**
   * How guests are accelerated: 'kvm' (default) needs a working /dev/kvm; 'tcg' (libvirt domain type qemu, chosen
   * where the host has no /dev/kvm) needs none, so libvirt's /dev/kvm FAILs and a missing device become notes.
   */
  accelerator?: 'kvm' | 'tcg';
}

export interface ValidateVerdict {
  passed: boolean;
  /** Checks that fail the verdict, as "QEMU for hardware virtualization: FAIL (hint)". */
  failures: string[];
  warnings: string[];
  /** What was excused and why, and what libvirt did not check. */
  notes: string[];
  counts: Record<CheckResult, number>;
}

function describe(check: HostCheck): string {
  return `${check.hypervisor} ${check.check}: ${check.result}${check.detail ? ` (${check.detail})` : ''}`;
}

/** Judge the parsed checks against the host's role. */
export function judgeHostValidate(checks: HostCheck[], opts: ValidateOptions): ValidateVerdict {
  const wanted = opts.hypervisor
    ? checks.filter((c) => c.hypervisor.toUpperCase() === opts.hypervisor!.toUpperCase())
    : checks;
  const verdict: ValidateVerdict = {
    passed: true,
    failures: [],
    warnings: [],
    notes: [],
    counts: { PASS: 0, WARN: 0, FAIL: 0, NOTE: 0 },
  };
  for (const check of wanted) verdict.counts[check.result]++;
  if (wanted.length === 0) {
    verdict.failures.push(`virt-host-validate printed no ${opts.hypervisor ?? ''} checks`.replace('  ', ' '));
  }
  const kvm = opts.kvmDevice;
  const tcg = opts.accelerator === 'tcg';
  for (const check of wanted) {
    if (check.result === 'FAIL') {
      if (tcg && (check.id === 'kvm-exists' || check.id === 'kvm-access')) {
        verdict.notes.push(`${describe(check)} — excused: guests are defined with domain type qemu (TCG), not kvm`);
        continue;
      }
      if (check.id === 'hw-virt' && !opts.requireHwVirt && tcg) {
        verdict.notes.push(
          `${describe(check)} — excused because require_hw_virt is false: this host has no usable /dev/kvm, so ` +
            'guests are defined with domain type qemu (TCG, emulated CPU: slower, same guest behaviour)',
        );
        continue;
      }
      if (check.id === 'hw-virt' && !opts.requireHwVirt) {
        if (kvm && !kvm.usable) {
          verdict.failures.push(
            `${describe(check)}; and /dev/kvm is not usable either${kvm.detail ? ` (${kvm.detail})` : ''}`,
          );
        } else {
          verdict.notes.push(
            `${describe(check)} — excused because require_hw_virt is false: the CPU shows no vmx/svm flag (a nested or container host) ` +
              `while /dev/kvm ${kvm ? 'opens' : 'is expected to work'}; guests still run with KVM acceleration`,
          );
        }
        continue;
      }
      verdict.failures.push(describe(check));
    } else if (check.result === 'WARN') {
      (opts.failOnWarn ? verdict.failures : verdict.warnings).push(describe(check));
    }
  }
  const hwVirt = wanted.find((c) => c.id === 'hw-virt');
  const kvmChecked = wanted.some((c) => c.id === 'kvm-exists' || c.id === 'kvm-access');
  if (hwVirt?.result === 'FAIL' && !kvmChecked && !tcg) {
    verdict.notes.push(
      kvm
        ? `libvirt skipped its /dev/kvm checks after the CPU-flag FAIL; cairn checked the device itself: ${kvm.present ? (kvm.usable ? 'present and opens read-write' : `present but not usable${kvm.detail ? ` (${kvm.detail})` : ''}`) : 'absent'}`
        : 'libvirt skipped its /dev/kvm checks after the CPU-flag FAIL',
    );
  }
  if (kvm && !kvm.present && !tcg && !verdict.failures.some((f) => f.includes('/dev/kvm'))) {
    verdict.failures.push('/dev/kvm is missing');
  }
  verdict.passed = verdict.failures.length === 0;
  return verdict;
}
