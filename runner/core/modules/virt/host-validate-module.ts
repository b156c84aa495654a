/**
 * virt_host_validate (read-only): runs `virt-host-validate HYPERVISOR`, parses one result per check, opens
 * /dev/kvm itself (as the user qemu runs as, when given) because libvirt skips its own /dev/kvm checks after a
 * CPU-flag FAIL, and judges. With `require_hw_virt: false` the CPU-flag FAIL of a nested or container host is
 * excused only when /dev/kvm really works, and the registered `notes` (and `msg`) say so.
 */
import { failureText, parseKeyValues, parseSections, runScript, section } from '../remote.js';
import type { Module, Planned } from '../types.js';
import { argv, quote } from '../../transport/quote.js';
import { judgeHostValidate, parseHostValidate } from './host-validate.js';

export interface VirtHostValidateArgs {
  hypervisor?: 'qemu' | 'lxc';
  require_hw_virt?: boolean;
  fail_on_warn?: boolean;
  /** Open /dev/kvm as this user (qemu.conf's `user`), not as root. */
  kvm_user?: string;
  /** How the host's guests are accelerated (the kvm role decides: kvm with a usable /dev/kvm, else tcg). */
  accelerator?: 'kvm' | 'tcg';
}

const USER_NAME = /^[a-z_][a-z0-9_-]*\$?$/;

export function validateProbeScript(args: VirtHostValidateArgs): string {
  const hypervisor = args.hypervisor ?? 'qemu';
  // A subshell opening the device read-write is exactly what qemu does first; `runuser` runs it as qemu's user.
  const open = `exec 3<>/dev/kvm`;
  const asUser =
    args.kvm_user && args.kvm_user !== 'root'
      ? `runuser -u ${quote(args.kvm_user)} -- sh -c ${quote(open)}`
      : `sh -c ${quote(open)}`;
  return [
    section(
      'validate',
      `if command -v virt-host-validate >/dev/null 2>&1; then LC_ALL=C ${argv('virt-host-validate', hypervisor)} 2>&1; echo "cairn_rc=$?"; else echo cairn_rc=127; fi`,
    ),
    section(
      'kvm',
      'if [ -c /dev/kvm ]; then echo present=1; else echo present=0; fi',
      `if [ -c /dev/kvm ]; then if err=$(${asUser} 2>&1); then echo usable=1; else echo usable=0; printf 'detail=%s\\n' "$(printf '%s' "$err" | tail -n 1 | tr -d '\\n')"; fi; fi`,
    ),
    section('cpu', "printf 'virt_flags=%s\\n' \"$(grep -c -w -E 'vmx|svm' /proc/cpuinfo 2>/dev/null)\""),
    section('end'),
  ].join('\n');
}

/** The verdict from the probe (pure; table-tested). */
export function judgeValidateProbe(args: VirtHostValidateArgs, probe: Map<string, string>): Planned {
  const output = probe.get('validate') ?? '';
  const rc = /cairn_rc=(\d+)/.exec(output)?.[1];
  if (rc === '127')
    return { changed: false, actions: [], failed: 'virt-host-validate is not installed (package libvirt-clients)' };
  const kv = parseKeyValues(probe.get('kvm') ?? '');
  const cpu = parseKeyValues(probe.get('cpu') ?? '');
  const kvmDevice = { present: kv.get('present') === '1', usable: kv.get('usable') === '1', detail: kv.get('detail') };
  const checks = parseHostValidate(output);
  const verdict = judgeHostValidate(checks, {
    hypervisor: args.hypervisor ?? 'qemu',
    requireHwVirt: args.require_hw_virt ?? true,
    failOnWarn: args.fail_on_warn ?? false,
    kvmDevice,
    accelerator: args.accelerator ?? 'kvm',
  });
  const who = args.kvm_user ? ` as ${args.kvm_user}` : '';
  const data = {
    checks,
    counts: verdict.counts,
    failures: verdict.failures,
    warnings: verdict.warnings,
    notes: verdict.notes,
    kvm_device: {
      present: kvmDevice.present,
      usable: kvmDevice.usable,
      opened_as: args.kvm_user ?? 'root',
      detail: kvmDevice.detail ?? null,
    },
    cpu_virt_flags: Number(cpu.get('virt_flags') ?? '0'),
    exit_status: rc === undefined ? null : Number(rc),
    accelerator: args.accelerator ?? 'kvm',
  };
  const accel = args.accelerator === 'tcg' ? '; guests: domain type qemu (TCG)' : '';
  const summary = `${verdict.counts.PASS} PASS, ${verdict.counts.WARN} WARN, ${verdict.counts.FAIL} FAIL; /dev/kvm ${kvmDevice.present ? (kvmDevice.usable ? `opens${who}` : `does not open${who}`) : 'missing'}${accel}`;
  if (!verdict.passed) {
    const msg = `${verdict.failures.join('; ')} (${summary})`;
    return { changed: false, actions: [], failed: msg, data: { ...data, msg } };
  }
  const msg = [summary, ...verdict.notes.map((n) => `NOTE: ${n}`)].join('; ');
  return { changed: false, actions: [], data: { ...data, msg } };
}

export const virtHostValidateModule: Module<VirtHostValidateArgs> = {
  name: 'virt_host_validate',
  readOnly: true,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      hypervisor: { enum: ['qemu', 'lxc'] },
      require_hw_virt: { type: 'boolean' },
      fail_on_warn: { type: 'boolean' },
      kvm_user: { type: 'string', pattern: USER_NAME.source },
      accelerator: { enum: ['kvm', 'tcg'] },
    },
  },

  async check(ctx, args) {
    const res = await runScript(ctx, validateProbeScript(args));
    if (res.code !== 0)
      return { changed: false, actions: [], failed: `virt-host-validate probe failed: ${failureText(res)}` };
    return judgeValidateProbe(args, parseSections(res.stdout));
  },

  apply(_ctx, _args, plan) {
    return Promise.resolve({ changed: false, data: plan.data ?? {} });
  },
};
