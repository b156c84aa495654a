/**
 * What to say about a module name cairn does not have: the nearest cairn module, and whether the name is an
 * Ansible module (built in, or from a collection) that cairn has no equivalent for, with what to use instead.
 * The loader puts this message at the task's file:line:col.
 */
import { closestNames } from '../util/suggest.js';

/** ansible-core 2.14's ansible.builtin modules (the file names under lib/ansible/modules/). */
const ANSIBLE_BUILTIN = new Set(
  (
    'add_host apt apt_key apt_repository assemble assert async_status blockinfile command copy cron debconf debug ' +
    'dnf dpkg_selections expect fail fetch file find gather_facts get_url getent git group group_by hostname ' +
    'import_playbook import_role import_tasks include include_role include_tasks include_vars iptables known_hosts ' +
    'lineinfile meta package package_facts pause ping pip raw reboot replace rpm_key script service service_facts ' +
    'set_fact set_stats setup shell slurp stat subversion systemd systemd_service sysvinit tempfile template ' +
    'unarchive uri user validate_argument_spec wait_for wait_for_connection yum yum_repository'
  ).split(' '),
);

/** What to use in cairn instead of an Ansible module it does not have. */
const INSTEAD: Record<string, string> = {
  yum: 'cairn manages Debian hosts: use apt (or package)',
  dnf: 'cairn manages Debian hosts: use apt (or package)',
  yum_repository: 'cairn manages Debian hosts: write the apt source with copy or template',
  rpm_key: 'cairn manages Debian hosts: put the apt key with get_url or copy',
  apt_key: 'put the key under /etc/apt/keyrings with get_url or copy',
  sysvinit: 'use systemd or service',
  subversion: 'use command with creates:',
  pip: 'use command (pip install ...) or apt for Debian-packaged modules',
  script: 'copy the script, then run it with command',
  slurp: 'use command (cat, or base64) and register the output',
  hostname: 'write /etc/hostname with copy and run hostnamectl with command',
  known_hosts: 'use lineinfile on the known_hosts file',
  authorized_key: 'use lineinfile on ~/.ssh/authorized_keys (mode 0600)',
  iptables: 'use template for the rules file and command (iptables-restore)',
  debconf: 'use command (debconf-set-selections) with a guard',
  pause: 'cairn runs unattended; use wait_for or a drill',
  find: 'use command (find ...) and register the output',
  getent: 'use command (getent ...) and register the output',
  expect: 'use command with stdin:',
  tempfile: 'use command (mktemp) and register the output',
  assemble: 'use template with a loop over the fragments',
  dpkg_selections: 'use apt',
  set_stats: 'cairn has no set_stats; use set_fact',
  ufw: 'use command (ufw ...) with a guard, or template the rules',
  firewalld: 'cairn manages Debian hosts with nftables/iptables: template the rules',
  locale_gen: 'use lineinfile on /etc/locale.gen and command (locale-gen)',
  modprobe: 'use copy for /etc/modules-load.d and command (modprobe)',
  docker_container: 'use command (docker ...) with a guard',
  synchronize: 'use copy (files) or command (rsync)',
};

/** Whether `short` is one of ansible-core's ansible.builtin modules. */
export function isAnsibleBuiltin(short: string): boolean {
  return ANSIBLE_BUILTIN.has(short);
}

/** What to use in cairn instead of Ansible's `short` module, when there is advice. */
export function insteadOf(short: string): string | undefined {
  return INSTEAD[short];
}

/** Collections whose modules cairn may have under the short name (ansible-keywords.ts strips these). */
const MAPPED_COLLECTIONS = [
  'ansible.builtin',
  'ansible.legacy',
  'ansible.posix',
  'community.general',
  'community.crypto',
];

/**
 * The message for an unknown module `written` (as the task spells it; `short` without a mapped collection
 * prefix), given cairn's module names.
 */
export function unknownModuleMessage(written: string, short: string, cairnModules: string[]): string {
  const near = closestNames(short, cairnModules);
  const nearText = near.length
    ? `; the nearest cairn module${near.length > 1 ? 's are' : ' is'} ${near.map((n) => `"${n}"`).join(', ')}`
    : '';
  const instead = INSTEAD[short];
  const insteadText = instead ? `: ${instead}` : '';
  const parts = written.split('.');
  if (parts.length >= 3) {
    const collection = parts.slice(0, 2).join('.');
    const name = parts.slice(2).join('.');
    if (!MAPPED_COLLECTIONS.includes(collection)) {
      return (
        `unknown module "${written}": it is from the Ansible collection ${collection}, which cairn has no ` +
        `equivalent for${INSTEAD[name] ? `: ${INSTEAD[name]}` : ''}${nearText}`
      );
    }
  }
  if (ANSIBLE_BUILTIN.has(short) || INSTEAD[short] !== undefined) {
    // Advice names what to use; a near name would only be noise beside it.
    return `unknown module "${written}": Ansible's ${short} module has no cairn equivalent${insteadText || nearText}`;
  }
  const didYouMean = near.length ? ` (did you mean ${near.map((n) => `"${n}"`).join(' or ')}?)` : '';
  return `unknown module "${written}"${didYouMean || ` (cairn's modules: ${cairnModules.join(', ')})`}`;
}
