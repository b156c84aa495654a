/**
 * The node-poweroff drill's "cluster clean" reading of crm_mon. The texts are crm_mon -1 output of pacemaker 2.1.5
 * (Debian 12) captured on the lab's pve hosts on 2026-12-07 after test/lab/65-ha-guests.test.ts blocked and then
 * unblocked the fence device (shortened to the sections read here). The failed-resource line is written in
 * crm_mon's format from the stop timeout pacemaker logged that day; only its section header is read.
 */
import { describe, expect, it } from 'vitest';
import { unresolvedFailures } from '../../runner/features/drills/ha-guests.js';

const HEAD = `Node List:
  * Online: [ pve1 pve2 pve3 ]

Active Resources:
  * guest-ha1\t(ocf:heartbeat:VirtualDomain):\t Started pve1
`;

describe('unresolvedFailures (crm_mon)', () => {
  it('a clean cluster has none', () => {
    expect(unresolvedFailures(HEAD)).toBe(false);
  });

  it('failed fences that a later attempt made good are history, not a failure', () => {
    const text = `${HEAD}
Failed Fencing Actions:
  * turning off of pve1 by pve3 for pacemaker-controld.6835@pve3 last failed at 2026-12-07 15:41:54Z (a later attempt from pve3 succeeded)
  * turning off of pve1 by pve3 for pacemaker-controld.6835@pve3 last failed at 2026-12-07 15:41:50Z (a later attempt from pve3 succeeded)
`;
    expect(unresolvedFailures(text)).toBe(false);
  });

  it('a failed fence with no later success is a failure', () => {
    const text = `${HEAD}
Failed Fencing Actions:
  * turning off of pve1 by pve3 for pacemaker-controld.6835@pve3 last failed at 2026-12-07 15:41:54Z (a later attempt from pve3 succeeded)
  * turning off of pve2 by pve3 for pacemaker-controld.6835@pve3 last failed at 2026-12-07 15:43:02Z
`;
    expect(unresolvedFailures(text)).toBe(true);
  });

  it('a failed resource action is a failure', () => {
    const text = `${HEAD}
Failed Resource Actions:
  * guest-ha1 stop on pve2 'error' (1): call=41, status='Timed Out', exitreason='Resource agent did not complete within 1m30s'
`;
    expect(unresolvedFailures(text)).toBe(true);
  });
});
