/**
 * What is kept of a command's output (runner/transport/output.ts) and how a script is carried
 * (runner/transport/carrier.ts); the real-sshd behaviour is in test/integration/hostile-output.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { carryScript, NulByteError } from '../../runner/core/transport/carrier.js';
import { CappedOutput } from '../../runner/core/transport/output.js';

describe('CappedOutput', () => {
  it('keeps everything under the budget, byte for byte, a split character whole', () => {
    const out = new CappedOutput(10, 4);
    const text = Buffer.from('héllo ✓');
    for (const byte of text) out.push(Buffer.from([byte]));
    expect(out.text()).toBe('héllo ✓');
    expect(out.cutBytes).toBe(0);
    expect(out.totalBytes).toBe(text.length);
  });

  it('keeps the head and the tail, counts what it dropped and says so', () => {
    const out = new CappedOutput(5, 3);
    for (const chunk of ['abc', 'defgh', 'ijklmnop', 'qr', 'stuvwxyz']) out.push(Buffer.from(chunk));
    expect(out.totalBytes).toBe(26);
    expect(out.cutBytes).toBe(18);
    expect(out.text()).toBe(
      'abcde\n[cairn: output cut: 26 bytes in all; the first 5 and the last 3 are kept, 18 bytes in between were dropped]\nxyz',
    );
  });

  it('a chunk larger than the tail budget leaves only its end', () => {
    const out = new CappedOutput(2, 3);
    out.push(Buffer.from('0123456789'));
    expect(out.text().endsWith('\n789')).toBe(true);
    expect(out.text().startsWith('01\n')).toBe(true);
  });
});

describe('carryScript', () => {
  it('the loader is fixed and value-free; the script and then the input follow on stdin', () => {
    const carried = carryScript("printf '%s' secret-value; cat", 'INPUT');
    expect(carried.shellArgs.join(' ')).not.toContain('secret-value');
    expect(carried.shellArgs[1]).toMatch(/^cairn_script=\$\(head -c \d+\) && eval "\$cairn_script"$/);
    const run = spawnSync('/bin/sh', carried.shellArgs, { input: carried.input });
    expect(run.stdout.toString()).toBe('secret-valueINPUT');
  });

  it('without input the shell reads the script itself; a command in it that reads stdin gets nothing', () => {
    const carried = carryScript('echo one; cat; echo two');
    expect(carried.shellArgs).toEqual(['-s']);
    expect(spawnSync('/bin/sh', carried.shellArgs, { input: carried.input }).stdout.toString()).toBe('one\ntwo\n');
  });

  it('a script cut short runs nothing, with or without input', () => {
    for (const carried of [carryScript('echo first\necho second'), carryScript('echo first\necho second', 'x')]) {
      const cut = carried.input.subarray(
        0,
        carried.shellArgs[0] === '-s' ? carried.input.length - 4 : carried.input.length - 5,
      );
      const run = spawnSync('/bin/sh', carried.shellArgs, { input: cut });
      expect(run.stdout.toString()).toBe('');
      expect(run.status).not.toBe(0);
    }
  });

  it('refuses a NUL byte', () => {
    expect(() => carryScript('echo a\u0000b')).toThrow(NulByteError);
  });
});
