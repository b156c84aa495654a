import { describe, expect, it } from 'vitest';
import { inputError } from '../../../runner/core/util/errors.js';
import { templateModule } from '../../../runner/core/modules/template.js';
import { FakeConnection, contextFor, fileProbeOutput } from '../../helpers/fake-connection.js';

describe('template', () => {
  it('renders templates/<src> with the task vars and plans the diff', async () => {
    const conn = new FakeConnection([
      { match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({ content: 'maxconn 100\n' }) } },
    ]);
    const calls: string[] = [];
    const ctx = contextFor(conn, {
      vars: { maxconn: 200 },
      findLocalFile: (kind, rel) => `/play/roles/lb/${kind}/${rel}`,
      renderTemplateFile: (path, vars) => (calls.push(path), `maxconn ${String(vars.maxconn)}\n`),
    });
    const plan = await templateModule.check(ctx, { src: 'haproxy.cfg.hbs', dest: '/etc/haproxy/haproxy.cfg' });
    expect(calls).toEqual(['/play/roles/lb/templates/haproxy.cfg.hbs']);
    expect(plan.actions).toEqual(['update /etc/haproxy/haproxy.cfg']);
    expect(plan.diffs).toEqual([{ path: '/etc/haproxy/haproxy.cfg', before: 'maxconn 100\n', after: 'maxconn 200\n' }]);
    expect(plan.data).toMatchObject({ dest: '/etc/haproxy/haproxy.cfg', src: 'haproxy.cfg.hbs', size: 12 });
  });

  it('a rendering error propagates as the CairnError naming the template, before any remote call', async () => {
    const conn = new FakeConnection([]);
    const ctx = contextFor(conn, {
      renderTemplateFile: () => {
        throw inputError('undefined variable "maxconn"', { file: '/play/templates/x.hbs', line: 2, col: 9 });
      },
    });
    await expect(templateModule.check(ctx, { src: 'x.hbs', dest: '/etc/x' })).rejects.toMatchObject({
      location: { file: '/play/templates/x.hbs', line: 2 },
    });
    expect(conn.calls).toHaveLength(0);
  });
});
