/**
 * nft_ruleset's drift rule (runner/core/modules/nftables.ts): two stateless listings show the same rules when
 * they differ only in how nft prints a one-element anonymous set. The two forms are nftables 1.0.6's own
 * output on the lab: after loading the role's file, and after a rollback loaded the saved listing back.
 */
import { describe, expect, it } from 'vitest';
import { sameRuleset } from '../../../runner/core/modules/nftables.js';

const fresh = '\t\tip saddr { 10.77.0.0/24 } tcp dport { 22, 9100 } accept comment "management"\n';
const restored = '\t\tip saddr 10.77.0.0/24 tcp dport { 22, 9100 } accept comment "management"\n';

describe('nft_ruleset drift: sameRuleset', () => {
  it.each([
    ['a set of one, braced or not', fresh, restored, true],
    ['identical listings', fresh, fresh, true],
    ['another network', fresh, restored.replace('10.77.0.0/24', '10.78.0.0/24'), false],
    ['a port more', fresh, fresh.replace('22, 9100', '22, 80, 9100'), false],
    ['a set of two is not a set of one', '{ 10.0.0.1, 10.0.0.2 }', '10.0.0.1, 10.0.0.2', false],
  ])('%s', (_what, a, b, same) => {
    expect(sameRuleset(a, b)).toBe(same);
    expect(sameRuleset(b, a)).toBe(same);
  });
});
