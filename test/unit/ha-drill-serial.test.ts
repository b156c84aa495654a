/**
 * The HA drills read a guest's ticks of one stay on a node: what its serial log gained after the size it had
 * before the guest came (the role opens the log with append='on', so earlier stays' ticks stay in it). The shell
 * commands run here, with /bin/sh, on a real file laid out as the lab's logs are: an earlier boot's ticks, then
 * the new boot's. The old reading (the last 400 lines since the last counter reset) counted the earlier stay's
 * ticks while the new boot had not printed yet, and reported ticks_since_restart = 400.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serialSinceCommand, serialSizeCommand } from '../../runner/features/drills/ha-guests.js';
import { tickerTicks } from '../../runner/features/drills/tiny-guest.js';

const dir = mkdtempSync(join(tmpdir(), 'cairn-serial-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MARKER = 'cairn ha1';
const sh = (script: string): string => execFileSync('/bin/sh', ['-c', script], { encoding: 'utf8' });
const lines = (from: number, to: number): string =>
  Array.from(
    { length: to - from },
    (_, i) => `${MARKER} tick ${(from + i).toString(16).toUpperCase().padStart(4, '0')}\r\n`,
  ).join('');

describe('the ticks of one stay in an appended serial log', () => {
  it('counts only what the log gained after its size before the restart', () => {
    const log = join(dir, "ha1 it's.serial");
    writeFileSync(log, lines(0, 900)); // an earlier stay: 900 ticks, more than a 400-line tail
    const offset = Number(sh(serialSizeCommand(log)));
    expect(offset).toBe(900 * `${MARKER} tick 0000\r\n`.length);
    // The guest is running again but has not printed yet: no ticks of this boot (the old reading said 400).
    expect(tickerTicks(sh(serialSinceCommand(log, offset)), MARKER)).toEqual([]);
    appendFileSync(log, lines(0, 3));
    expect(tickerTicks(sh(serialSinceCommand(log, offset)), MARKER)).toEqual([0, 1, 2]);
  });

  it('a live migration continues the counter after an earlier stay with higher ticks', () => {
    const log = join(dir, 'migrated.serial');
    writeFileSync(log, lines(0x1000, 0x1200));
    const offset = Number(sh(serialSizeCommand(log)));
    appendFileSync(log, lines(0x300, 0x303));
    expect(tickerTicks(sh(serialSinceCommand(log, offset)), MARKER)).toEqual([0x300, 0x301, 0x302]);
  });

  it('a log that is missing is size 0 and gains nothing; a recreated (shorter) log is read whole', () => {
    const log = join(dir, 'absent.serial');
    expect(sh(serialSizeCommand(log)).trim()).toBe('0');
    expect(sh(serialSinceCommand(log, 0))).toBe('');
    writeFileSync(log, lines(0, 2));
    expect(tickerTicks(sh(serialSinceCommand(log, 1_000_000)), MARKER)).toEqual([0, 1]);
  });

  it('refuses an offset that is not a byte count', () => {
    expect(() => serialSinceCommand('/x', -1)).toThrow(/not a byte count/);
    expect(() => serialSinceCommand('/x', 1.5)).toThrow(/not a byte count/);
  });
});
