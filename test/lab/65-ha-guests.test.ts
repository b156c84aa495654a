/**
 * HA guests on the lab's pve hosts (issue 18): the ha_cluster role (corosync + pacemaker, quorum 2 of 3, fencing
 * through the lab's fence endpoint, one HA guest on Ceph RBD as a VirtualDomain resource) converges, changes
 * nothing on a second run and verifies green; `vm-migrate` and `node-poweroff` pass three times each; and with the
 * fence device failing, a powered-off node's guest is NOT started elsewhere until the fence succeeds.
 *
 * The pve hosts are containers here (this machine has no /dev/kvm; the VM tier runs under TCG at ~1 h per test),
 * so the cluster is fenced by the lab's fence agent, which powers a container off (runner/features/lab/fence.ts).
 * Needs the kvm and ceph plays first (50-kvm and 60-ceph run before this file; the file runs them if not).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FENCE_LOG, labKill, labStart, setFenceBlocked } from '../../runner/features/lab/index.js';
import { changedKeys } from '../helpers/cli.js';
import {
  ensureLab,
  failedVerifies,
  failedVerifyResults,
  labDrill,
  labJson,
  labUnavailable,
  onHost,
  sleep,
  type LabJsonOptions,
} from '../helpers/lab.js';

const PLAYBOOK = 'playbooks/ha-guests.yaml';
const NODES = ['pve1', 'pve2', 'pve3'];
const RUN: LabJsonOptions = { timeoutMs: 600_000, lockWaitMs: 900_000, ms: 'run' };
const DRILL: LabJsonOptions = { timeoutMs: 600_000, lockWaitMs: 900_000 };
const measured: string[] = [];
/** The role's defaults (roles/ha_cluster/defaults.yaml): immediate fence retries, then one per recheck. */
const MAX_ATTEMPTS = 10;
const RECHECK_S = 60;

/** Where pacemaker runs guest ha1 (asked on a node that answers). */
async function guestNode(via: string): Promise<string> {
  return (await onHost(via, 'crm_resource --locate --resource guest-ha1 2>/dev/null; true')).replace(
    /.*is running on: (\S+).*/s,
    '$1',
  );
}

/**
 * Measured on this (shared, 2-core) machine: the file takes about 15 minutes (kvm and ceph plays, the cluster,
 * three migrations, four power cuts with their rejoins), which the suite's 45-minute budget cannot hold beside
 * the rest of the lab. It runs when asked for (`npm run test:lab:ha`, docs/lab.md).
 */
const haTierOff =
  process.env.CAIRN_LAB_HA === '1'
    ? undefined
    : 'the HA-guest cluster file takes ~15 min, over the suite budget; set CAIRN_LAB_HA=1 (npm run test:lab:ha)';
const unavailable = labUnavailable() ?? haTierOff;

describe.skipIf(unavailable)(
  `HA guests on the lab's pve hosts${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    beforeAll(async () => {
      await ensureLab({ withPve: true });
      // The cluster's guests need libvirt (kvm role) and the rbd pool (ceph role).
      for (const play of ['playbooks/kvm.yaml', 'playbooks/ceph.yaml']) {
        const { res } = await labJson(['play', play], RUN);
        expect(res.code, `${play}: ${res.stderr}`).toBe(0);
      }
    }, 1_800_000);

    afterAll(() => {
      setFenceBlocked(false);
      if (measured.length) console.log(`HA guests, measured:\n  ${measured.join('\n  ')}`);
    });

    it('converges; verify: quorate with 3 members, fencing configured, ha1 running once, its RBD image watched once', async () => {
      const { res, events, ms } = await labJson(['play', PLAYBOOK], RUN);
      expect(failedVerifies(events), res.stderr).toEqual([]);
      expect(res.code, res.stderr + res.stdout.slice(-3000)).toBe(0);
      measured.push(`converge: ${(ms / 1000).toFixed(1)} s, ${changedKeys(events).length} changes`);
      const status = await onHost('pve2', 'crm_mon -1 2>/dev/null');
      expect(status).toMatch(/partition with quorum/);
      expect(status).toMatch(/Online: \[ pve1 pve2 pve3 \]/);
      for (const node of NODES)
        expect(status).toMatch(new RegExp(`fence-${node}\\s+\\(stonith:fence_cairn_lab\\):\\s+Started`));
    }, 900_000);

    it('a second run changes nothing', async () => {
      const { res, events, ms } = await labJson(['play', PLAYBOOK], RUN);
      expect(res.code, res.stderr).toBe(0);
      expect(changedKeys(events)).toEqual([]);
      measured.push(`second run: ${(ms / 1000).toFixed(1)} s, 0 changed`);
    }, 900_000);

    it('a hand edit of a cairn object in the live CIB: --check and verify name it, the next run puts it back', async () => {
      const score = '<rsc_location id="guest-ha1-prefers-pve2" score="5"/>';
      await onHost('pve3', `cibadmin --modify -o constraints --xml-text '${score}'`);
      expect(await onHost('pve1', 'crm configure show guest-ha1-prefers-pve2')).toContain('guest-ha1 5: pve2');
      const LOAD = "pve1 | ha_cluster : The cluster's configuration is loaded (crm configure load update)";
      const check = await labJson(['play', PLAYBOOK, '--check'], RUN);
      expect(check.res.code, check.res.stderr).toBe(0);
      expect(changedKeys(check.events)).toEqual([LOAD]);
      const verify = await labJson(['verify', PLAYBOOK], RUN);
      const driftOut = failedVerifyResults(verify.events)
        .map((v) => String((v.data as { stdout?: unknown } | undefined)?.stdout ?? ''))
        .join('\n');
      expect(driftOut.trim()).toBe('changed in the live CIB: guest-ha1-prefers-pve2');
      const repair = await labJson(['play', PLAYBOOK], RUN);
      expect(repair.res.code, repair.res.stderr).toBe(0);
      expect(changedKeys(repair.events)).toEqual([LOAD]);
      expect(await onHost('pve2', 'crm configure show guest-ha1-prefers-pve2')).toContain('guest-ha1 100: pve2');
      const again = await labJson(['play', PLAYBOOK, '--check'], RUN);
      expect(changedKeys(again.events)).toEqual([]);
      measured.push(
        `CIB hand edit: --check named the load, verify the object; repaired in ${(repair.ms / 1000).toFixed(1)} s`,
      );
    }, 900_000);

    it('drill vm-migrate passes three times in a row (ticker continues on the new node)', async () => {
      for (let run = 1; run <= 3; run++) {
        const result = await labDrill('vm-migrate', [], measured, DRILL);
        expect(result.passed, result.msg).toBe(true);
        expect(Number(result.measured.first_tick_new)).toBeGreaterThan(Number(result.measured.last_tick_old));
      }
    }, 1_200_000);

    it('drill node-poweroff passes three times in a row (fenced, restarted elsewhere < 120 s, cluster clean)', async () => {
      for (let run = 1; run <= 3; run++) {
        const result = await labDrill('node-poweroff', [], measured, DRILL);
        expect(result.passed, result.msg).toBe(true);
        // The journal's times are to the tenth of a second: the start may carry the fence's time, never an earlier one.
        expect(Number(result.measured.fenced_after_s)).toBeLessThanOrEqual(Number(result.measured.started_after_s));
        expect(result.measured.restarted_on).not.toBe(result.measured.victim);
      }
    }, 1_800_000);

    it('with the fence device failing, the guest is NOT started elsewhere; once it works, the cluster recovers by itself', async () => {
      const victim = await guestNode('pve1').then((n) => (n.startsWith('pve') ? n : guestNode('pve2')));
      const survivor = NODES.find((n) => n !== victim)!;
      const failedFences = (): number =>
        readFileSync(FENCE_LOG, 'utf8')
          .split('\n')
          .filter((l) => l.includes(`"target":"${victim}","outcome":"failed: fencing blocked`)).length;
      const failedBefore = failedFences();
      setFenceBlocked(true);
      try {
        await labKill(victim, { log: () => {} });
        // Held until pacemaker has spent its immediate retries (stonith-max-attempts) and says it gives up for
        // now (the DC's controller logs "Too many failures (N) to fence NODE, giving up"): the recovery after the
        // unblock must then come from the next transition (at the latest the recheck), not from a retry in flight.
        const cut = Date.now();
        const since = Math.floor(cut / 1000) - 5;
        const gaveUp = async (): Promise<boolean> => {
          const counts = await Promise.all(
            NODES.filter((n) => n !== victim).map((n) =>
              onHost(
                n,
                `journalctl -u pacemaker --since @${since} --no-pager 2>/dev/null ` +
                  `| grep -c 'Too many failures ([0-9]*) to fence ${victim}, giving up' || true`,
              ),
            ),
          );
          return counts.some((c) => Number(c) > 0);
        };
        let gaveUpAfterS = -1;
        while (Date.now() - cut < 400_000) {
          if (await gaveUp()) {
            gaveUpAfterS = (Date.now() - cut) / 1000;
            break;
          }
          await sleep(5_000);
        }
        expect(gaveUpAfterS, 'pacemaker never gave up fencing (no "Too many failures" in 400 s)').toBeGreaterThan(0);
        await sleep(10_000);
        const failedDuringBlock = failedFences() - failedBefore;
        const running = await Promise.all(
          NODES.filter((n) => n !== victim).map((n) => onHost(n, 'virsh -q domstate ha1 2>/dev/null || echo absent')),
        );
        expect(running.map((s) => s.trim())).not.toContain('running');
        const status = await onHost(survivor, 'crm_mon -1 2>/dev/null');
        // The cluster says why it waits: the node is UNCLEAN and its fencing failed or is pending.
        expect(status).toMatch(new RegExp(`${victim}: UNCLEAN|UNCLEAN.*${victim}`));
        measured.push(
          `fencing blocked: pacemaker gave up after ${gaveUpAfterS.toFixed(0)} s (stonith-max-attempts ${MAX_ATTEMPTS}),` +
            ` ${failedDuringBlock} failed agent requests; ha1 runs nowhere; crm_mon: ${victim} UNCLEAN`,
        );
      } finally {
        setFenceBlocked(false);
      }
      // Nobody cleans anything up: the next attempt (at the latest on the recheck) fences, the guest starts on a
      // survivor. Bound: one recheck interval, the fence and the guest's start (~40 s on this machine) with room.
      const unblocked = Date.now();
      const logLinesAtUnblock = readFileSync(FENCE_LOG, 'utf8').split('\n').length - 1;
      let where = '';
      while (Date.now() - unblocked < (RECHECK_S + 120) * 1000) {
        where = await guestNode(survivor);
        if (where.startsWith('pve') && where !== victim) break;
        await sleep(2_000);
      }
      const recoveredS = (Date.now() - unblocked) / 1000;
      expect(where).not.toBe(victim);
      expect(NODES).toContain(where);
      expect(recoveredS).toBeLessThan(RECHECK_S + 120);
      const fencedAfterUnblock = new RegExp(`"action":"(off|reboot)","target":"${victim}","outcome":"ok`);
      const fencedOk = readFileSync(FENCE_LOG, 'utf8')
        .split('\n')
        .slice(logLinesAtUnblock)
        .some((l) => fencedAfterUnblock.test(l));
      expect(fencedOk, `no successful fence of ${victim} in ${FENCE_LOG} after the unblock`).toBe(true);
      measured.push(`fencing unblocked: ha1 running on ${where} after ${recoveredS.toFixed(1)} s, no manual cleanup`);
      await labStart(victim, { log: () => {} });
      let clean = '';
      for (let i = 0; i < 60 && !/Online: \[ pve1 pve2 pve3 \]/.test(clean); i++) {
        await sleep(3_000);
        clean = await onHost(survivor, 'crm_mon -1 2>/dev/null');
      }
      expect(clean).toMatch(/Online: \[ pve1 pve2 pve3 \]/);
    }, 1_200_000);

    it('verify is green again after the drills', async () => {
      // A powered-off node's RBD watch on the guest's image outlives it: the OSDs keep watchers in the object's
      // info and expire an unconnected one only after osd_client_watch_timeout (30 s), probably counted again
      // when a killed node's OSD rejoins and its PGs peer (not checked in Ceph's source). The whole-file run of
      // 2026-12-07 19:19 ran this verify just after the fence test's node had rejoined and saw five watchers of
      // ha1 (pve2's live one, stale ones of pve1 and pve2, the drills' victims); a look 3 min later saw one.
      // Verify is right to name them; the test waits until Ceph has expired them, records how long, then verifies.
      const settled = Date.now();
      let watchers = -1;
      while (Date.now() - settled < 180_000) {
        const status = await onHost('pve3', 'rbd status rbd/ha1 2>/dev/null; true');
        watchers = (status.match(/watcher=/g) ?? []).length;
        if (watchers === 1) break;
        await sleep(5_000);
      }
      expect(watchers, 'the stale RBD watches of the powered-off nodes did not expire within 180 s').toBe(1);
      measured.push(
        `stale RBD watches of the powered-off nodes expired after ${((Date.now() - settled) / 1000).toFixed(0)} s`,
      );
      const { res, events } = await labJson(['verify', PLAYBOOK], RUN);
      expect(failedVerifies(events), res.stderr).toEqual([]);
      expect(res.code).toBe(0);
    }, 600_000);
  },
);
