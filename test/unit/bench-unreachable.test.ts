/**
 * The bench's summary of why hosts were unreachable (test/bench/unreachable.ts), on lines as cairn prints them:
 * the compact ones are copied from a real bench run (100 hosts at once with ansible_timeout=2, 2026-12-07), the
 * full-console one is the shape runner/app/report/console.ts prints.
 */
import { describe, expect, it } from 'vitest';
import { describeUnreachable, unreachableReasons } from '../bench/unreachable.js';

const OUTPUT = [
  'PLAY [bench] 100 hosts',
  'fatal: [b100] no-op 1: UNREACHABLE! => cannot connect to b100 (cairnbench@127.77.0.100:46673): timed out after ' +
    '2000 ms (the connect timeout) waiting for the SSH banner and key exchange',
  'fatal: [b99] no-op 1: UNREACHABLE! => cannot connect to b99 (cairnbench@127.77.0.99:46673): timed out after ' +
    '2000 ms (the connect timeout) waiting for the SSH banner and key exchange',
  'changed: [b1] no-op 1',
  'fatal: [b1]: UNREACHABLE! => cannot connect to b1 (cairnbench@127.77.0.1:46673): connection reset by the server',
  'fatal: [b2] a task: with a colon: UNREACHABLE! => connection to b2 (cairnbench@127.77.0.2:46673) lost: b2 closed',
  'fatal: [b3] no-op 1: FAILED! => unrelated',
  '  unreachable: b99 (1)',
].join('\n');

describe('bench: unreachable reasons', () => {
  it('groups the hosts by reason, with the host name and address taken out, the commonest first', () => {
    expect(unreachableReasons(OUTPUT)).toEqual([
      {
        reason:
          'cannot connect to HOST (cairnbench@ADDR:46673): timed out after 2000 ms (the connect timeout) waiting ' +
          'for the SSH banner and key exchange',
        hosts: ['b100', 'b99'],
      },
      { reason: 'cannot connect to HOST (cairnbench@ADDR:46673): connection reset by the server', hosts: ['b1'] },
      { reason: 'connection to HOST (cairnbench@ADDR:46673) lost: HOST closed', hosts: ['b2'] },
    ]);
  });

  it('prints one line per reason with a count and the first hosts', () => {
    const lines = describeUnreachable(unreachableReasons(OUTPUT), 1);
    expect(lines[0]).toBe(
      '     2 × cannot connect to HOST (cairnbench@ADDR:46673): timed out after 2000 ms (the connect timeout) ' +
        'waiting for the SSH banner and key exchange (b100, ...)',
    );
    expect(lines).toHaveLength(3);
  });

  it('finds nothing in output without unreachable hosts', () => {
    expect(unreachableReasons('changed: [b1] no-op 1\nPLAY RECAP')).toEqual([]);
  });
});
