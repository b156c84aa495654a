/**
 * The lab fence endpoint's pure parts: per-host tokens and the validation of a request body (hostile input from
 * a lab host). The endpoint itself runs against real containers in test/lab/65-ha-guests.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { fenceToken, parseFenceRequest, tokenOwner } from '../../runner/features/lab/fence.js';

const secret = Buffer.alloc(32, 7);
const HOSTS = ['pve1', 'pve2', 'pve3'];

describe('lab fence tokens', () => {
  it('gives each host its own token and finds its owner', () => {
    const tokens = HOSTS.map((h) => fenceToken(secret, h));
    expect(new Set(tokens).size).toBe(3);
    expect(tokenOwner(secret, tokens[1]!, HOSTS)).toBe('pve2');
  });

  it('refuses an unknown token, another secret, and a host outside the allowed list', () => {
    expect(tokenOwner(secret, 'x'.repeat(64), HOSTS)).toBeUndefined();
    expect(tokenOwner(Buffer.alloc(32, 8), fenceToken(secret, 'pve1'), HOSTS)).toBeUndefined();
    expect(tokenOwner(secret, fenceToken(secret, 'web1'), HOSTS)).toBeUndefined();
    expect(tokenOwner(secret, '', HOSTS)).toBeUndefined();
  });
});

describe('parseFenceRequest', () => {
  it('accepts the agent actions on a pve host', () => {
    expect(parseFenceRequest('{"action":"off","target":"pve2"}', HOSTS)).toEqual({ action: 'off', target: 'pve2' });
    expect(parseFenceRequest('{"action":"list"}', HOSTS)).toEqual({ action: 'list' });
  });

  it('says what is wrong with anything else', () => {
    expect(parseFenceRequest('not json', HOSTS)).toBe('the body is not JSON');
    expect(parseFenceRequest('[1]', HOSTS)).toBe('the body is not an object');
    expect(parseFenceRequest('{"action":"explode","target":"pve1"}', HOSTS)).toMatch(/^action must be one of status/);
    expect(parseFenceRequest('{"action":"off","target":"web1"}', HOSTS)).toMatch(
      /^target must be a lab host of group pve/,
    );
    expect(parseFenceRequest('{"action":"off","target":"../pve1"}', HOSTS)).toMatch(/^target must be/);
  });
});
