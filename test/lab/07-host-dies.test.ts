/**
 * A lab host that dies in the middle of a play (a power cut, `cairn lab kill`): it is reported unreachable,
 * the other hosts finish, and `--rerun failed` completes it once it is back.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { labKill, labStart } from '../../runner/features/lab/index.js';
import { jsonEvents, runCairn, taskResults } from '../helpers/cli.js';
import { ensureLab, labUnavailable } from '../helpers/lab.js';

const unavailable = labUnavailable();
const HOSTS = ['lb1', 'web1', 'web2'];

describe.skipIf(unavailable)(`a host dies mid-play${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let playbook = '';
  let stateDir = '';

  beforeAll(async () => {
    await ensureLab();
    const dir = mkdtempSync(join(tmpdir(), 'cairn-host-dies-'));
    stateDir = join(dir, 'state');
    playbook = join(dir, 'slow.yaml');
    writeFileSync(
      playbook,
      [
        `- hosts: ${HOSTS.join(':')}`,
        '  gather_facts: false',
        '  tasks:',
        '    - name: before',
        '      copy: { dest: /root/cairn-host-dies-before, content: "{{ inventory_hostname }}\\n" }',
        '    - name: slow step',
        '      command: sleep 6',
        '    - name: after',
        '      copy: { dest: /root/cairn-host-dies-after, content: "{{ inventory_hostname }}\\n" }',
        '',
      ].join('\n'),
    );
    await runCairn(['run', HOSTS.join(':'), '-m', 'file', '-a', 'path=/root/cairn-host-dies-after state=absent'], {
      env: { CAIRN_STATE_DIR: stateDir },
    });
  });

  it('the killed host is unreachable, the others finish, and --rerun failed completes it after it is back', async () => {
    const play = runCairn(['play', playbook, '--json'], { env: { CAIRN_STATE_DIR: stateDir }, timeoutMs: 120_000 });
    // Every host is inside "slow step" (6 s) by then.
    await new Promise((r) => setTimeout(r, 3000));
    await labKill('web2', { log: () => {} });
    const res = await play;
    expect(res.code, res.stderr).toBe(4);
    const events = jsonEvents(res.stdout);
    const unreachable = events
      .filter((e) => e.type === 'host_unreachable')
      .map((e) => (e.type === 'host_unreachable' ? e.host : ''));
    expect(unreachable).toEqual(['web2']);
    const after = taskResults(events)
      .filter((e) => e.task.name === 'after' && e.status === 'changed')
      .map((e) => e.host)
      .sort();
    expect(after).toEqual(['lb1', 'web1']);

    await labStart('web2', { log: () => {} });
    const rerun = await runCairn(['play', playbook, '--rerun', 'failed', '--json'], {
      env: { CAIRN_STATE_DIR: stateDir },
      timeoutMs: 120_000,
    });
    expect(rerun.code, rerun.stderr + rerun.stdout.slice(-2000)).toBe(0);
    const rerunHosts = [...new Set(taskResults(jsonEvents(rerun.stdout)).map((e) => e.host))];
    expect(rerunHosts).toEqual(['web2']);
    const done = taskResults(jsonEvents(rerun.stdout)).find((e) => e.task.name === 'after');
    expect(done?.status).toBe('changed');
  });
});
