import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTemplater } from '../../../runner/core/template/index.js';
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

  it("a Jinja (.j2) template sees Ansible's template_* names and ansible_managed; a .hbs one does not", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-template-vars-'));
    try {
      const templater = createTemplater({ partialsDirs: [] });
      writeFileSync(
        join(dir, 'motd.j2'),
        '{{ ansible_managed | comment }}\n{{ template_path }} {{ template_destpath }} {{ template_host }}\n' +
          '{{ template_fullpath }}\n{% for s in servers %}\n{{ loop.index }}={{ s }}\n{% endfor %}\n',
      );
      writeFileSync(join(dir, 'motd.hbs'), '{{ template_path }}\n');
      const conn = new FakeConnection([{ match: '::cairn-section:: file', reply: { stdout: fileProbeOutput({}) } }]);
      const ctx = contextFor(conn, {
        vars: { servers: ['a', 'b'] },
        findLocalFile: (_kind, rel) => join(dir, rel),
        renderTemplateFile: (path, vars) => templater.renderFile(path, vars),
      });
      const plan = await templateModule.check(ctx, { src: 'motd.j2', dest: '/etc/motd' });
      expect(plan.diffs?.[0]?.after).toBe(
        `#\n# Ansible managed\n#\nmotd.j2 /etc/motd ${hostname()}\n${join(dir, 'motd.j2')}\n1=a\n2=b\n`,
      );
      // cairn's own Handlebars templates keep exactly the variables they had.
      await expect(templateModule.check(ctx, { src: 'motd.hbs', dest: '/etc/motd' })).rejects.toThrow(
        'undefined variable "template_path"',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
