import { describe, expect, it } from 'vitest';
import { statModule, statResult } from '../../../runner/core/modules/stat.js';
import { parseFileProbe, parseSections } from '../../../runner/core/modules/remote.js';
import { FakeConnection, contextFor, fileProbeOutput } from '../../helpers/fake-connection.js';

describe('stat', () => {
  it('registers Ansible-style fields from the probe', async () => {
    const conn = new FakeConnection([
      {
        match: '::cairn-section:: file',
        reply: { stdout: fileProbeOutput({ content: 'abc', mode: '640', owner: 'www-data', uid: 33 }) },
      },
    ]);
    const plan = await statModule.check(contextFor(conn), { path: '/etc/app.conf' });
    expect(plan.changed).toBe(false);
    expect(plan.data?.stat).toEqual({
      exists: true,
      path: '/etc/app.conf',
      isdir: false,
      isreg: true,
      islnk: false,
      mode: '0640',
      uid: 33,
      gid: 0,
      owner: 'www-data',
      group: 'root',
      pw_name: 'www-data',
      gr_name: 'root',
      size: 3,
      mtime: 1795266184,
      checksum: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    });
    expect(conn.calls[0]!.script).not.toContain('stat -L');
    expect(conn.calls[0]!.script).not.toContain('content_b64');
  });

  it('follow and checksum=false change the probe; absent and links are reported', async () => {
    const conn = new FakeConnection([{ match: 'stat -L', reply: { stdout: fileProbeOutput({ absent: true }) } }]);
    const plan = await statModule.check(contextFor(conn), { path: '/x', follow: true, checksum: false });
    expect(plan.data).toEqual({ stat: { exists: false, path: '/x' } });
    expect(conn.calls[0]!.script).not.toContain('sha256sum');
    const link = statResult(
      parseFileProbe('/l', parseSections(fileProbeOutput({ type: 'link', linkTarget: '/t' })).get('file')),
    );
    expect(link).toMatchObject({ islnk: true, lnk_target: '/t', lnk_source: '/t' });
  });
});
