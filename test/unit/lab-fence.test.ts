/**
 * The lab fence endpoint's pure parts: per-host tokens and the validation of a request body (hostile input from
 * a lab host). The endpoint itself runs against real containers in test/lab/65-ha-guests.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fenceServerCli, fenceToken, parseFenceRequest, tokenOwner } from '../../runner/features/lab/fence.js';

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

describe('the CLI the fence endpoint is started with', () => {
  // Run from source (as here, and as the lab tests bring the lab up in-process), the module's own ../../cli.js
  // is runner/cli.js, which does not exist: the endpoint died with MODULE_NOT_FOUND and no fence ever succeeded.
  it('is a CLI that exists and runs, also when the lab module runs from source', () => {
    const cli = fenceServerCli();
    expect(existsSync(cli)).toBe(true);
    expect(cli).toMatch(/(bin\/cairn\.js|dist\/runner\/cli\.js)$/);
    expect(execFileSync(process.execPath, [cli, 'lab', '--help'], { encoding: 'utf8' })).toMatch(/fence-block/);
  });
});
