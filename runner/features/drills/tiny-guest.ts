/**
 * The smallest real guest for drills: a 512-byte BIOS boot sector, no OS image. The firmware (SeaBIOS, which
 * Debian's qemu-system-x86 ships) loads it from the guest's disk and runs it on the vCPU: it writes a marker
 * line to the first serial port (COM1, I/O port 0x3F8) and halts. The domain's serial console goes to a
 * file, so "the marker is in the file" proves the guest executed code, not merely that qemu started.
 *
 * The boot sector, assembled by hand (16-bit real mode, loaded at 0000:7C00):
 *
 *   7C00  FA          cli                   ; no interrupts: nothing wakes the final hlt
 *   7C01  31 C0       xor  ax, ax
 *   7C03  8E D8       mov  ds, ax           ; ds = 0, so [si] addresses 0000:xxxx
 *   7C05  BE 16 7C    mov  si, 0x7C16       ; the message below
 *   7C08  BA F8 03    mov  dx, 0x03F8       ; COM1 data port
 *   7C0B  AC          next: lodsb           ; al = [si++]
 *   7C0C  84 C0       test al, al
 *   7C0E  74 03       jz   done             ; NUL ends the message
 *   7C10  EE          out  dx, al           ; one byte to the UART (qemu needs no UART setup to send)
 *   7C11  EB F8       jmp  next
 *   7C13  F4          done: hlt
 *   7C14  EB FD       jmp  done
 *   7C16  "<marker>\r\n\0"
 *   ...   zero padding, then 55 AA at offset 510 (the BIOS boot signature)
 */

const CODE = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x16, 0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8,
  0xf4, 0xeb, 0xfd,
];
const MESSAGE_OFFSET = 0x16;

/** The boot sector printing `marker` (printable ASCII, at most 80 characters). */
export function bootSector(marker: string): Buffer {
  if (!/^[\x20-\x7e]{1,80}$/.test(marker))
    throw new Error(`boot sector marker must be 1-80 printable ASCII characters, got ${JSON.stringify(marker)}`);
  const sector = Buffer.alloc(512, 0);
  Buffer.from(CODE).copy(sector, 0);
  if (CODE.length !== MESSAGE_OFFSET) throw new Error('boot sector code and message offset disagree');
  Buffer.from(`${marker}\r\n\0`, 'latin1').copy(sector, MESSAGE_OFFSET);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

export interface TinyGuestSpec {
  name: string;
  /** The raw disk image holding the boot sector. */
  diskPath: string;
  /** Where the serial console is written. */
  serialLogPath: string;
  memoryMiB?: number;
  /**
   * libvirt's domain type: 'kvm' (hardware acceleration; libvirt refuses to start it without a usable /dev/kvm,
   * it never falls back) or 'qemu' (TCG, an emulated CPU, for hosts without /dev/kvm). Default 'kvm'.
   */
  domainType?: 'kvm' | 'qemu';
}

const GUEST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;

function xmlText(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

/**
 * The domain XML (the drill's guest template): the given domain type (see TinyGuestSpec.domainType), one vCPU,
 * a little memory, the boot disk on IDE (SeaBIOS boots it without drivers), serial console to a file, no
 * graphics, no network.
 */
export function tinyGuestXml(spec: TinyGuestSpec): string {
  if (!GUEST_NAME.test(spec.name)) throw new Error(`guest name ${JSON.stringify(spec.name)} is not usable`);
  for (const p of [spec.diskPath, spec.serialLogPath])
    if (!SAFE_PATH.test(p)) throw new Error(`path ${JSON.stringify(p)} is not usable in a guest definition`);
  const memory = spec.memoryMiB ?? 16;
  const domainType = spec.domainType ?? 'kvm';
  if (domainType !== 'kvm' && domainType !== 'qemu')
    throw new Error(`domain type ${String(domainType)} is not kvm or qemu`);
  return [
    `<domain type='${domainType}'>`,
    `  <name>${xmlText(spec.name)}</name>`,
    `  <description>cairn drill guest: a boot sector that prints a marker on COM1 and halts</description>`,
    `  <memory unit='MiB'>${memory}</memory>`,
    `  <vcpu>1</vcpu>`,
    `  <os>`,
    `    <type arch='x86_64' machine='pc'>hvm</type>`,
    `    <boot dev='hd'/>`,
    `  </os>`,
    `  <on_poweroff>destroy</on_poweroff>`,
    `  <on_reboot>destroy</on_reboot>`,
    `  <on_crash>destroy</on_crash>`,
    `  <devices>`,
    `    <disk type='file' device='disk'>`,
    `      <driver name='qemu' type='raw'/>`,
    `      <source file='${xmlText(spec.diskPath)}'/>`,
    `      <target dev='hda' bus='ide'/>`,
    `    </disk>`,
    `    <serial type='file'>`,
    `      <source path='${xmlText(spec.serialLogPath)}'/>`,
    `      <target port='0'/>`,
    `    </serial>`,
    `    <video><model type='none'/></video>`,
    `    <memballoon model='none'/>`,
    `  </devices>`,
    `</domain>`,
    '',
  ].join('\n');
}

/**
 * A clone's definition from `virsh dumpxml` of the original (what virt-clone does, minus the disk copy):
 * the new name, no UUID (libvirt makes one), MAC addresses dropped (libvirt makes new ones), and every
 * occurrence of the original's disk and serial paths replaced by the clone's.
 */
export function cloneDomainXml(
  original: string,
  clone: { name: string; diskPath: string; serialLogPath: string; fromDiskPath: string; fromSerialLogPath: string },
): string {
  if (!GUEST_NAME.test(clone.name)) throw new Error(`guest name ${JSON.stringify(clone.name)} is not usable`);
  if (!/<domain\b/.test(original)) throw new Error('not a domain definition (no <domain> element)');
  let xml = original
    .replace(/<name>[^<]*<\/name>/, `<name>${xmlText(clone.name)}</name>`)
    .replace(/^\s*<uuid>[^<]*<\/uuid>\s*\n/m, '')
    .replace(/^\s*<mac address=['"][^'"]*['"]\/>\s*\n/gm, '');
  for (const [from, to] of [
    [clone.fromDiskPath, clone.diskPath],
    [clone.fromSerialLogPath, clone.serialLogPath],
  ] as const) {
    xml = xml
      .split(`'${xmlText(from)}'`)
      .join(`'${xmlText(to)}'`)
      .split(`"${xmlText(from)}"`)
      .join(`"${xmlText(to)}"`);
  }
  if (xml.includes(clone.fromDiskPath))
    throw new Error(`the clone still names the original's disk ${clone.fromDiskPath}`);
  return xml;
}

/**
 * The ticker: a boot sector that keeps running, for guests whose continuity matters (live migration, HA
 * restart). It prints "<marker><hex counter>" on COM1 about twice a second, forever: the counter goes on across
 * a live migration (the same execution moved) and starts again at 0000 after a restart. Interrupts are on so
 * that `hlt` wakes on the BIOS timer tick (18.2 Hz, set up by SeaBIOS); nine ticks make the pause.
 *
 *   7C00  FA           cli
 *   7C01  31 C0        xor  ax, ax
 *   7C03  8E D8        mov  ds, ax
 *   7C05  8E D0        mov  ss, ax
 *   7C07  BC 00 7C     mov  sp, 0x7C00         ; a stack below the code
 *   7C0A  FB           sti                     ; the timer interrupt wakes hlt
 *   7C0B  31 FF        xor  di, di             ; di = the counter
 *   7C0D  BE 48 7C     line: mov si, 0x7C48    ; the marker text
 *   7C10  BA F8 03     mov  dx, 0x03F8         ; COM1
 *   7C13  AC           text: lodsb
 *   7C14  84 C0        test al, al
 *   7C16  74 03        jz   number
 *   7C18  EE           out  dx, al
 *   7C19  EB F8        jmp  text
 *   7C1B  B9 04 00     number: mov cx, 4       ; four hex digits of di
 *   7C1E  89 FB        mov  bx, di
 *   7C20  C1 C3 04     digit: rol bx, 4
 *   7C23  88 D8        mov  al, bl
 *   7C25  24 0F        and  al, 0x0F
 *   7C27  04 30        add  al, '0'
 *   7C29  3C 39        cmp  al, '9'
 *   7C2B  76 02        jbe  emit
 *   7C2D  04 07        add  al, 7              ; 'A'..'F'
 *   7C2F  EE           emit: out dx, al
 *   7C30  E2 EE        loop digit
 *   7C32  B0 0D EE     mov al, 13 / out dx, al
 *   7C35  B0 0A EE     mov al, 10 / out dx, al
 *   7C38  47           inc  di
 *   7C39  B9 09 00     mov  cx, 9              ; nine timer ticks, about 0.5 s
 *   7C3C  F4           pause: hlt
 *   7C3D  E2 FD        loop pause
 *   7C3F  EB CC        jmp  line
 *   7C41  00 ...       padding to 7C48, then "<marker>\0", then 55 AA at offset 510
 *
 * Assembled with GNU as (.code16) and checked with objdump -mi8086 when written. The ha_cluster role makes guest
 * images with the same bytes (roles/ha_cluster/files/cairn-guest-image; a unit test compares them).
 */
export const TICKER_CODE: readonly number[] = [
  0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc, 0x00, 0x7c, 0xfb, 0x31, 0xff, 0xbe, 0x48, 0x7c, 0xba, 0xf8, 0x03,
  0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xb9, 0x04, 0x00, 0x89, 0xfb, 0xc1, 0xc3, 0x04, 0x88, 0xd8, 0x24,
  0x0f, 0x04, 0x30, 0x3c, 0x39, 0x76, 0x02, 0x04, 0x07, 0xee, 0xe2, 0xee, 0xb0, 0x0d, 0xee, 0xb0, 0x0a, 0xee, 0x47,
  0xb9, 0x09, 0x00, 0xf4, 0xe2, 0xfd, 0xeb, 0xcc,
];
const TICKER_MESSAGE_OFFSET = 0x48;

/** The ticker boot sector printing "<marker> tick XXXX" lines (marker: printable ASCII, at most 60 characters). */
export function tickerBootSector(marker: string): Buffer {
  if (!/^[\x20-\x7e]{1,60}$/.test(marker))
    throw new Error(`ticker marker must be 1-60 printable ASCII characters, got ${JSON.stringify(marker)}`);
  const sector = Buffer.alloc(512, 0);
  Buffer.from(TICKER_CODE).copy(sector, 0);
  Buffer.from(`${marker} tick \0`, 'latin1').copy(sector, TICKER_MESSAGE_OFFSET);
  sector[510] = 0x55;
  sector[511] = 0xaa;
  return sector;
}

/** Ticks in a serial log: the counter values of the lines "<marker> tick XXXX", in order. */
export function tickerTicks(serial: string, marker: string): number[] {
  const ticks: number[] = [];
  const prefix = `${marker} tick `;
  for (const line of serial.split(/\r?\n/)) {
    const at = line.indexOf(prefix);
    if (at < 0) continue;
    const hex = line.slice(at + prefix.length, at + prefix.length + 4);
    if (/^[0-9A-F]{4}$/.test(hex)) ticks.push(parseInt(hex, 16));
  }
  return ticks;
}
