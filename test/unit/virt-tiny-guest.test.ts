/**
 * The drill guest: the hand-assembled boot sector (decoded back instruction by instruction), the domain
 * template, and the clone transformation over real `virsh dumpxml` output captured on the lab (fixtures
 * cite their source). Plus the virt_host_validate module's verdict over a probe built from the lab capture.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { judgeValidateProbe, validateProbeScript } from '../../runner/core/modules/virt/host-validate-module.js';
import {
  bootSector,
  cloneDomainXml,
  TICKER_CODE,
  tickerBootSector,
  tickerTicks,
  tinyGuestXml,
} from '../../runner/features/drills/tiny-guest.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'virt');
/** A fixture without its source line (the XML fixtures start with a `<!-- source: ... -->` comment line). */
const read = (name: string) => readFileSync(join(FIXTURES, name), 'utf8').replace(/^<!-- source:[^\n]*-->\n/, '');

describe('bootSector', () => {
  const sector = bootSector('cairn guest up');

  it('is one 512-byte sector with the BIOS signature', () => {
    expect(sector.length).toBe(512);
    expect([sector[510], sector[511]]).toEqual([0x55, 0xaa]);
  });

  it('points SI at the message and prints it on COM1, then halts', () => {
    // mov si, imm16 (BE lo hi) must address the message at 0x7C00 + its offset.
    expect(sector[5]).toBe(0xbe);
    const si = sector.readUInt16LE(6);
    const message = sector.subarray(si - 0x7c00, sector.indexOf(0, si - 0x7c00));
    expect(message.toString('latin1')).toBe('cairn guest up\r\n');
    // mov dx, 0x3F8 ; the loop: lodsb, test al,al, jz +3, out dx,al, jmp -8 ; done: hlt, jmp -3
    expect(sector.readUInt16LE(9)).toBe(0x3f8);
    expect([...sector.subarray(0x0b, 0x16)]).toEqual([
      0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd,
    ]);
    // jz +3 from 0x10 lands on hlt (0x13); jmp -8 from 0x13 lands on lodsb (0x0B); jmp -3 from 0x16 on hlt.
    expect(0x10 + 0x03).toBe(0x13);
    expect(0x13 - 8).toBe(0x0b);
    expect(0x16 - 3).toBe(0x13);
  });

  it('refuses markers that are not printable ASCII or too long', () => {
    expect(() => bootSector('')).toThrow(/printable ASCII/);
    expect(() => bootSector('a\nb')).toThrow(/printable ASCII/);
    expect(() => bootSector('x'.repeat(81))).toThrow(/printable ASCII/);
  });
});

describe('tinyGuestXml and cloneDomainXml', () => {
  it('renders a KVM domain with the disk and serial file', () => {
    const xml = tinyGuestXml({
      name: 'g1',
      diskPath: '/var/lib/libvirt/images/g1.img',
      serialLogPath: '/var/log/libvirt/qemu/g1.serial',
      memoryMiB: 8,
    });
    expect(xml.split('\n')[0]).toBe("<domain type='kvm'>");
    expect(xml).toContain("<source file='/var/lib/libvirt/images/g1.img'/>");
    expect(xml).toContain("<source path='/var/log/libvirt/qemu/g1.serial'/>");
    expect(xml).toContain("<memory unit='MiB'>8</memory>");
    expect(() => tinyGuestXml({ name: 'g1', diskPath: "/tmp/a'b", serialLogPath: '/tmp/s' })).toThrow(/not usable/);
    expect(() => tinyGuestXml({ name: '../x', diskPath: '/tmp/a', serialLogPath: '/tmp/s' })).toThrow(/not usable/);
  });

  const paths = {
    fromDiskPath: '/var/lib/libvirt/images/cairn-fixture.img',
    fromSerialLogPath: '/var/log/libvirt/qemu/cairn-fixture.serial',
    diskPath: '/var/lib/libvirt/images/c2.img',
    serialLogPath: '/var/log/libvirt/qemu/c2.serial',
  };

  it("clones libvirt's own dumpxml: new name, no uuid, every path moved (serial and console)", () => {
    const original = read('dumpxml-tiny-guest.xml');
    const clone = cloneDomainXml(original, { name: 'c2', ...paths });
    expect(clone).toContain('<name>c2</name>');
    expect(clone).not.toMatch(/<uuid>/);
    expect(clone).not.toContain('cairn-fixture');
    expect(clone.match(/\/var\/log\/libvirt\/qemu\/c2\.serial/g)).toHaveLength(2);
    // Everything else is kept as libvirt wrote it.
    expect(clone).toContain("<type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>");
    expect(clone.split('\n').length).toBe(original.split('\n').length - 1);
  });

  it('drops the MAC address so libvirt makes a new one', () => {
    const original = read('dumpxml-tiny-guest-nic.xml').replace(/cairn-fixture-nic/g, 'cairn-fixture');
    expect(original).toMatch(/<mac address='52:54:00:/);
    const clone = cloneDomainXml(original, { name: 'c2', ...paths });
    expect(clone).not.toMatch(/<mac /);
    expect(clone).toContain("<source network='vm-lan'/>");
  });

  it('refuses what is not a domain, and a clone that would still use the original disk', () => {
    expect(() => cloneDomainXml('<network/>', { name: 'c2', ...paths })).toThrow(/not a domain definition/);
    const odd = read('dumpxml-tiny-guest.xml').replace(
      "<source file='/var/lib/libvirt/images/cairn-fixture.img'/>",
      '<source file="/var/lib/libvirt/images/cairn-fixture.img" x="/var/lib/libvirt/images/cairn-fixture.img-old"/>',
    );
    expect(() => cloneDomainXml(odd, { name: 'c2', ...paths })).toThrow(/still names the original's disk/);
  });
});

describe('virt_host_validate module verdict', () => {
  const output = read('lab-nested-container.txt').split('----- output -----\n')[1]!;
  const probe = (kvm: string) =>
    new Map([
      ['validate', `${output}cairn_rc=1\n`],
      ['kvm', kvm],
      ['cpu', 'virt_flags=0'],
    ]);

  it('passes the lab host with the excused FAIL in its message and notes', () => {
    const plan = judgeValidateProbe({ require_hw_virt: false, kvm_user: 'root' }, probe('present=1\nusable=1'));
    expect(plan.failed).toBeUndefined();
    expect(String(plan.data?.msg)).toMatch(
      /^7 PASS, 3 WARN, 1 FAIL; \/dev\/kvm opens as root; NOTE: QEMU for hardware virtualization: FAIL .* excused/,
    );
    expect(plan.data?.exit_status).toBe(1);
    expect(plan.data?.cpu_virt_flags).toBe(0);
  });

  it("fails it when qemu's user cannot open /dev/kvm, naming why", () => {
    const plan = judgeValidateProbe(
      { require_hw_virt: false, kvm_user: 'libvirt-qemu' },
      probe('present=1\nusable=0\ndetail=sh: 1: cannot create /dev/kvm: Permission denied'),
    );
    expect(plan.failed).toMatch(
      /not usable either \(sh: 1: cannot create \/dev\/kvm: Permission denied\).*does not open as libvirt-qemu/,
    );
  });

  it('says when virt-host-validate is missing, and opens the device as the given user', () => {
    expect(judgeValidateProbe({}, new Map([['validate', 'cairn_rc=127']])).failed).toBe(
      'virt-host-validate is not installed (package libvirt-clients)',
    );
    expect(validateProbeScript({ kvm_user: 'libvirt-qemu' })).toContain(
      "runuser -u libvirt-qemu -- sh -c 'exec 3<>/dev/kvm'",
    );
    expect(validateProbeScript({})).toContain('LC_ALL=C virt-host-validate qemu');
  });
});

describe('the ticker boot sector', () => {
  it('holds the code, the marker at 0x48 and the boot signature', () => {
    const sector = tickerBootSector('cairn ha1');
    expect(sector).toHaveLength(512);
    expect([...sector.subarray(0, TICKER_CODE.length)]).toEqual(TICKER_CODE);
    expect(sector.subarray(0x48, 0x48 + 16).toString('latin1')).toBe('cairn ha1 tick \0');
    expect([sector[510], sector[511]]).toEqual([0x55, 0xaa]);
    expect(() => tickerBootSector('x'.repeat(61))).toThrow(/printable ASCII/);
  });

  it("is the same code the ha_cluster role's image script writes", () => {
    const script = readFileSync(join(import.meta.dirname, '../../roles/ha_cluster/files/cairn-guest-image'), 'utf8');
    const b64 = /^code=(\S+)$/m.exec(script)?.[1];
    const bytes = Buffer.from(b64 ?? '', 'base64');
    expect([...bytes.subarray(0, TICKER_CODE.length)]).toEqual(TICKER_CODE);
    expect(bytes.length).toBe(0x48);
    expect(bytes.subarray(TICKER_CODE.length).every((b) => b === 0)).toBe(true);
  });

  it('reads the counter from a serial log, ignoring other lines', () => {
    const log =
      'SeaBIOS\r\ncairn ha1 tick 0000\r\ncairn ha1 tick 0001\r\nnoise\ncairn ha1 tick 00FF\r\ncairn ha2 tick 0005\r\n';
    expect(tickerTicks(log, 'cairn ha1')).toEqual([0, 1, 255]);
  });
});
