/** Free-form command lines with Ansible's inline options (lib/ansible/parsing/splitter.py parse_kv, check_raw). */
import { describe, expect, it } from 'vitest';
import '../../runner/core/modules/all.js';
import { getModule } from '../../runner/core/modules/index.js';
import { freeFormArgs } from '../../runner/core/playbook/load.js';

const command = getModule('command')!;
const shell = getModule('shell')!;

describe('free-form arguments', () => {
  it('takes creates= out of the command line, wherever it stands (a folded scalar included)', () => {
    expect(freeFormArgs('cmd', command.argsSchema, 'iptables -F creates=/etc/firewall.bash\n')).toEqual({
      cmd: 'iptables -F\n',
      creates: '/etc/firewall.bash',
    });
    expect(freeFormArgs('cmd', command.argsSchema, 'chdir=/tmp ls -l removes="/a b"')).toEqual({
      cmd: 'ls -l',
      chdir: '/tmp',
      removes: '/a b',
    });
  });

  it('leaves other key=value words, quoted words and templates in the command line', () => {
    expect(freeFormArgs('cmd', shell.argsSchema, 'echo foo=bar "creates=x" {{ a }}=b')).toEqual({
      cmd: 'echo foo=bar "creates=x" {{ a }}=b',
    });
    expect(freeFormArgs('cmd', command.argsSchema, 'ls')).toEqual({ cmd: 'ls' });
  });
});
