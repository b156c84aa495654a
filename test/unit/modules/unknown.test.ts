import { describe, expect, it } from 'vitest';
import '../../../runner/core/modules/all.js';
import { moduleNames } from '../../../runner/core/modules/index.js';
import { unknownModuleMessage } from '../../../runner/core/modules/unknown.js';
import { shortModuleName } from '../../../runner/core/playbook/ansible-keywords.js';

const message = (written: string) => unknownModuleMessage(written, shortModuleName(written), moduleNames());

describe('unknownModuleMessage', () => {
  it.each([
    ['copyy', 'unknown module "copyy" (did you mean "copy"?)'],
    [
      'ansible.builtin.subversion',
      'unknown module "ansible.builtin.subversion": Ansible\'s subversion module has no cairn equivalent: use ' +
        'command with creates:',
    ],
    [
      'yum',
      'unknown module "yum": Ansible\'s yum module has no cairn equivalent: cairn manages Debian hosts: use apt ' +
        '(or package)',
    ],
    [
      'community.mysql.mysql_user',
      'unknown module "community.mysql.mysql_user": it is from the Ansible collection community.mysql, which cairn ' +
        'has no equivalent for',
    ],
    [
      'community.general.ufw',
      'unknown module "community.general.ufw": Ansible\'s ufw module has no cairn equivalent: use command (ufw ...) ' +
        'with a guard, or template the rules',
    ],
    ['ansible.builtin.lineinfil', 'unknown module "ansible.builtin.lineinfil" (did you mean "lineinfile"?)'],
  ])('%s', (written, expected) => {
    expect(message(written)).toBe(expected);
  });

  it('a name nothing is near lists cairn modules', () => {
    expect(message('homebrew')).toMatch(/^unknown module "homebrew" \(cairn's modules: add_host, apt, /);
  });
});
