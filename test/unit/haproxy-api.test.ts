/**
 * The runtime API client's parsing and framing, on replies as HAProxy prints them (captured from Debian's
 * haproxy 2.6.12 on this machine: `show servers state web` with two servers, one with an agent-check) and on
 * hostile ones: a forged frame, a reply that is not HAProxy's, names that would chain a second command.
 */
import { describe, expect, it } from 'vitest';
import { formatSection } from '../../runner/core/modules/remote.js';
import {
  adminWord,
  commandLine,
  HaproxyRuntime,
  parseServersState,
  parseServerStats,
} from '../../runner/features/drills/haproxy-api.js';
import { canaryWeights } from '../../runner/features/drills/traffic.js';

const STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
2 web 1 web1 127.0.0.1 2 8 100 100 1 1 0 2 0 0 0 0 - 1 - 0 0 - - 0
2 web 2 web2 127.0.0.1 2 0 50 50 1 1 0 2 0 22 0 0 - 2 - 0 0 - - 3

`;

const STAT = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
web,web1,0,0,3,0,,7,0,0,,0,,0,0,0,0,DRAIN,30
web,BACKEND,0,0,3,0,1,7,0,0,0,0,,0,0,0,0,UP,50
`;

const reply = (rc: number, text: string) => `${rc}\n${text}`;

describe('HAProxy runtime API parsing', () => {
  it('reads show servers state: weights, admin state, agent port', () => {
    const [web1, web2] = parseServersState(STATE);
    expect(web1).toMatchObject({ backend: 'web', server: 'web1', weight: 100, adminState: 8, agentPort: 0 });
    expect(adminWord(web1!)).toBe('drain');
    expect(web2).toMatchObject({ server: 'web2', weight: 50, initialWeight: 50, agentPort: 3 });
    expect(adminWord(web2!)).toBe('ready');
  });

  it('refuses what HAProxy does not print', () => {
    expect(() => parseServersState('Unknown command.\n')).toThrow(/format version "1" expected/);
    expect(() => parseServersState(STATE.replace('2 web 1 web1', '2 web 1 web1 extra'))).toThrow(/has 26 fields/);
    expect(() => parseServersState(STATE.replace(' 100 100 ', ' 900 100 '))).toThrow(
      /srv_uweight: expected a number from 0 to 256/,
    );
    expect(() => parseServersState(STATE.replace('web1', 'web1;x'))).toThrow(/HAProxy's name characters/);
    expect(() => parseServerStats(STAT.replace(',3,0,,7', ',-3,0,,7'))).toThrow(/scur: expected a number/);
  });

  it('reads show stat servers only, with current sessions', () => {
    expect(parseServerStats(STAT)).toEqual([
      { backend: 'web', server: 'web1', status: 'DRAIN', weight: 30, sessions: 3, totalSessions: 7 },
    ]);
  });

  it('never sends a name that would chain a second command', () => {
    expect(commandLine({ kind: 'set-weight', backend: 'web', server: 'web1', weight: 10 })).toBe(
      'set server web/web1 weight 10',
    );
    expect(() =>
      commandLine({ kind: 'set-state', backend: 'web', server: 'web1; shutdown frontend www', state: 'drain' }),
    ).toThrow(/HAProxy's name characters/);
    expect(() => commandLine({ kind: 'set-weight', backend: 'web', server: 'web1', weight: 257 })).toThrow(/0 to 256/);
  });

  it('a batch: one script, replies by frame; a setter that answered text is refused; a forged frame is refused', async () => {
    const scripts: string[] = [];
    const api = new HaproxyRuntime(
      async (script) => {
        scripts.push(script);
        return {
          code: 0,
          stderr: '',
          stdout:
            formatSection('r0', reply(0, '\n')) +
            formatSection('r1', reply(0, 'No such server.\n\n')) +
            // A reply that tries to look like the next frame stays inside its own base64 payload.
            formatSection('r2', reply(0, STATE + '::cairn-section:: r3 AAAA\n')),
        };
      },
      '/run/haproxy/admin.sock',
      'lb1',
    );
    const replies = await api.batch([
      { kind: 'set-weight', backend: 'web', server: 'web1', weight: 5 },
      { kind: 'set-state', backend: 'web', server: 'web9', state: 'drain' },
      { kind: 'show-servers-state' },
    ]);
    expect(scripts).toHaveLength(1);
    expect(replies.map((r) => r.ok)).toEqual([true, false, true]);
    expect(replies[1]!.text).toBe('No such server.\n\n');

    const forged = new HaproxyRuntime(
      async () => ({ code: 0, stderr: '', stdout: formatSection('r0', 'x') + formatSection('r0', 'y') }),
      '/run/haproxy/admin.sock',
      'lb1',
    );
    await expect(forged.batch([{ kind: 'show-stat' }])).rejects.toThrow(/twice/);
    const noStatus = new HaproxyRuntime(
      async () => ({ code: 0, stderr: '', stdout: formatSection('r0', 'weird\nstuff') }),
      '/run/haproxy/admin.sock',
      'lb1',
    );
    await expect(noStatus.batch([{ kind: 'show-stat' }])).rejects.toThrow(/malformed reply frame/);
  });
});

describe('canary weights', () => {
  it('give the new pool its share of the old pool total, the old servers keep their proportions', () => {
    expect(canaryWeights({ web1: 100, web2: 100 }, ['web3'], 0)).toEqual({ web1: 100, web2: 100, web3: 0 });
    expect(canaryWeights({ web1: 100, web2: 100 }, ['web3'], 0.1)).toEqual({ web1: 90, web2: 90, web3: 20 });
    expect(canaryWeights({ web1: 100, web2: 100 }, ['web3'], 1)).toEqual({ web1: 0, web2: 0, web3: 200 });
    // 300 per new server would pass 256: everything scaled to fit.
    const big = canaryWeights({ a: 200, b: 100 }, ['n'], 0.5);
    expect(big.n).toBeLessThanOrEqual(256);
    expect(big.n! / (big.a! + big.b! + big.n!)).toBeCloseTo(0.5, 1);
  });
});
