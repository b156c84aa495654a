/** Running one drill on an open session: its context (hosts, exec, power over lab hosts, plays) and its result. */
import { hostVariables } from '../../core/engine/variables.js';
import { resolve } from 'node:path';
import { loadPlaybookFile } from '../../app/playbook.js';
import type { Session } from '../../app/session.js';
import { DriftCollector, type DriftReport } from '../../app/report/drift.js';
import { EventBus, now } from '../../core/engine/events.js';
import { ExitCode } from '../../core/util/errors.js';
import type { Vars } from '../../core/util/vars.js';
import {
  labHostInfo,
  labKill,
  labPlug,
  labPlugBlankDisk,
  labPullDisk,
  labStart,
  labStop,
  labUnplug,
} from '../lab/index.js';
import type { Drill, DrillContext, DrillOutcome, DrillPower, DrillVerifyResult, DrillVm } from './types.js';

/**
 * Run one drill on an open session (its inventory, bus, journal and Ctrl-C handling) and emit its
 * `drill_result`. A drill that throws is a failed result, never a crash. Used by `cairn drill` and by the
 * rollout's drill steps.
 */
export async function runDrillInSession(
  session: Session,
  drill: Drill,
  opts: { extraVars: Vars; set: Record<string, string> },
): Promise<DrillOutcome> {
  const name = drill.name;
  const engine = session.engine;
  const isLab =
    session.inventory.hosts.size > 0 &&
    [...session.inventory.hosts.keys()].some((h) => session.inventory.hostVars(h).lab === true);
  const quiet = { log: () => {} };
  const power: DrillPower | undefined = isLab
    ? {
        stop: async (host) => {
          await labStop(host, quiet);
          await engine.dropConnection(host);
        },
        kill: async (host) => {
          await labKill(host, quiet);
          await engine.dropConnection(host);
        },
        start: async (host) => {
          await labStart(host, quiet);
          await engine.dropConnection(host);
        },
        unplug: async (host) => {
          await labUnplug(host, quiet);
        },
        plug: async (host) => {
          await labPlug(host, quiet);
          // The connection may have timed out while the cable was out: the next use opens a fresh one.
          await engine.dropConnection(host);
        },
      }
    : undefined;
  const vm: DrillVm | undefined = isLab
    ? {
        host: (host) => labHostInfo(host),
        pullDisk: (host, index) => labPullDisk(host, index, quiet),
        plugBlankDisk: (host, index) => labPlugBlankDisk(host, index, quiet),
        reconnect: (host) => engine.dropConnection(host),
      }
    : undefined;
  const extraVars = opts.extraVars;
  const ctx: DrillContext = {
    inventory: session.inventory,
    hostVars: (host) => hostVariables({ inventory: session.inventory, host, extraVars }),
    exec: (host, script, execOpts) => engine.exec(host, script, execOpts),
    power,
    log: (line) => session.bus.emit({ type: 'warning', time: now(), msg: `drill ${name}: ${line}` }),
    signal: session.signal,
    options: opts.set,
    play: async (playbookPath, playOpts = {}) => {
      const playbook = loadPlaybookFile(resolve(playbookPath));
      const sub = session.newEngine({
        limit: playOpts.limit,
        roles: playOpts.roles,
        extraVars: { ...extraVars, ...(playOpts.extraVars ?? {}) },
        check: false,
      });
      try {
        const outcome = await sub.runPlaybook(playbook);
        if (outcome.unreachableHosts.size) return ExitCode.hostUnreachable;
        if (outcome.failedHosts.size || outcome.verifyFailures) return ExitCode.hostFailed;
        return ExitCode.ok;
      } finally {
        await sub.close();
      }
    },
    drift: async (playbookPath, driftOpts = {}) => {
      const playbook = loadPlaybookFile(resolve(playbookPath));
      const sub = session.newEngine({
        limit: driftOpts.limit,
        roles: driftOpts.roles,
        extraVars,
        check: true,
        verify: false,
      });
      const collector = new DriftCollector(session.bus);
      let report: DriftReport;
      try {
        await sub.runPlaybook(playbook);
      } finally {
        // finish() also stops listening, so a failed run leaves no subscriber behind.
        report = collector.finish([...session.inventory.hosts.keys()]);
        await sub.close();
      }
      return report;
    },
    verify: async (playbookPath, verifyOpts = {}) => {
      const playbook = loadPlaybookFile(resolve(playbookPath));
      // Its own bus: the failures a drill provokes on purpose are judged by the drill (its drill_result), and
      // must not fail the run's recap as if the platform had failed.
      const bus = new EventBus();
      const results: DrillVerifyResult[] = [];
      const stop = bus.subscribe((e) => {
        if (e.type === 'verify_result')
          results.push({ host: e.host, role: e.role, check: e.check, passed: e.passed, msg: e.msg });
      });
      const sub = session.newEngine({ limit: verifyOpts.limit, extraVars, check: false, bus });
      try {
        const outcome = await sub.runPlaybook(playbook, true);
        return { results, unreachable: [...outcome.unreachableHosts] };
      } finally {
        stop();
        await sub.close();
      }
    },
    vm,
  };
  let outcome: DrillOutcome;
  try {
    outcome = await drill.run(ctx);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    outcome = { passed: false, measured: {}, target: '', msg: `drill could not run: ${msg}` };
  }
  session.bus.emit({
    type: 'drill_result',
    time: now(),
    drill: name,
    passed: outcome.passed,
    measured: outcome.measured,
    target: outcome.target,
    msg: outcome.msg,
    options: { ...opts.set },
  });
  return outcome;
}
