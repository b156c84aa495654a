/**
 * Ansible modules cairn knows by name but does not run: package managers and services of other systems (yum,
 * dnf, rpm_key, pkgng, SELinux), cloud, container and database APIs, and any module from a collection
 * cairn has no equivalent for. Real roles branch on `ansible_os_family` (`when: ansible_os_family ==
 * 'RedHat'`) or keep cloud provisioning in a play of its own, so refusing these names at load time refused
 * whole roles whose Debian path cairn runs. Ansible itself loads such a task and fails only when a host
 * reaches it (its dnf module fails on a host without dnf), so cairn does the same:
 * - the loader accepts the task (arguments unchecked: cairn does not know their schema) and warns at the
 *   task's file:line:col, so `--syntax-check` names every one;
 * - a task that is reached (its `when` true) fails in check and in apply, before anything is sent to the
 *   host, with the module's name and what to use in cairn instead.
 * A name that is none of these (a typo) is still refused at load time with the nearest names (unknown.ts).
 */
import { insteadOf, isAnsibleBuiltin } from './unknown.js';
import type { AnyModule, Module, Planned } from './types.js';

/** Short names of Ansible modules (2.9's flat namespace and today's collections) for systems cairn does not manage. */
const FOREIGN_NAMES = new Set(
  // package managers and repositories of other systems
  (
    'yum dnf dnf5 rpm_key yum_repository pkgng zypper zypper_repository apk pacman homebrew homebrew_cask ' +
    'homebrew_tap portage openbsd_pkg pkgutil pkg5 slackpkg swdepot snap flatpak flatpak_remote ' +
    'redhat_subscription rhsm_repository rhn_channel rhn_register macports sorcery xbps opkg urpmi ' +
    // SELinux and other firewalls
    'selinux seport seboolean sefcontext selogin semodule firewalld ufw ' +
    // language package managers
    'npm gem composer cpanm bower yarn pear easy_install bundler maven_artifact pipx ' +
    // containers and orchestration
    'k8s k8s_info k8s_exec k8s_scale k8s_service k8s_log k8s_drain k8s_cp helm helm_info helm_repository ' +
    'helm_plugin podman_container podman_image podman_network podman_volume podman_pod lxc_container lxd_container ' +
    // services driven through their own APIs
    'haproxy nagios jenkins_plugin jenkins_job rabbitmq_user rabbitmq_vhost rabbitmq_plugin ' +
    'mysql_db mysql_user mysql_replication mysql_variables mysql_query mysql_info postgresql_db ' +
    'postgresql_user postgresql_privs postgresql_ext postgresql_query postgresql_info mongodb_user ' +
    'redis elasticsearch_plugin kibana_plugin letsencrypt acme_certificate openssl_privatekey ' +
    'openssl_csr openssl_certificate x509_certificate openssl_dhparam htpasswd ini_file xml ' +
    'git_config gitlab_project github_release apache2_module apache2_mod_proxy gluster_volume gluster_peer ' +
    // ansible.posix, and ansible.builtin modules newer than the 2.14 list in unknown.ts
    'mount authorized_key synchronize firewalld_info acl at patch sysctl_facts deb822_repository mount_facts'
  ).split(' '),
);

/** Families of cloud, container and network modules, by prefix (ec2_group, digital_ocean_droplet, docker_image...). */
const FOREIGN_PREFIXES =
  /^(ec2|ec2_\w+|aws_\w+|s3_\w+|rds\w*|route53\w*|elb_\w+|iam\w*|cloudformation\w*|lambda\w*|digital_ocean\w*|linode\w*|gce\w*|gcp_\w+|azure_rm_\w+|os_\w+|openstack\w*|hcloud_\w+|vultr_\w+|proxmox\w*|vmware_\w+|docker\w*|win_\w+|ios_\w+|nxos_\w+|eos_\w+|junos_\w+)$/;

function foreignReason(short: string): string {
  const instead = insteadOf(short);
  if (instead) return instead;
  if (FOREIGN_PREFIXES.test(short) || FOREIGN_NAMES.has(short))
    return 'cairn manages Debian hosts over SSH and has no module for this system or API; run its CLI with command';
  return 'cairn has no equivalent; run its command with command or shell';
}

/**
 * Whether `written` (as the task spells it) names an Ansible module cairn does not run; `short` is the name
 * without a collection prefix cairn maps. A qualified name of another collection always does (it cannot be a
 * misspelt cairn module, and cairn cannot know every module of every collection), except in ansible.builtin.
 */
export function isForeignModule(written: string, short: string): boolean {
  if (FOREIGN_NAMES.has(short) || FOREIGN_PREFIXES.test(short) || isAnsibleBuiltin(short)) return true;
  if (insteadOf(short) !== undefined) return true; // an Ansible module unknown.ts has advice for
  // ansible.builtin's names are all known (above), so a name there that is none of them is a typo.
  const qualified = /^([a-z0-9_]+\.[a-z0-9_]+)\.[A-Za-z0-9_]+$/.exec(written);
  return qualified !== null && qualified[1] !== 'ansible.builtin' && qualified[1] !== 'ansible.legacy';
}

interface ForeignArgs {
  [key: string]: unknown;
}

const made = new Map<string, AnyModule>();

/** The module object for a foreign name: accepts any arguments, and fails when a task reaches it. */
export function foreignModule(name: string): AnyModule {
  const known = made.get(name);
  if (known) return known;
  const collection = /^([a-z0-9_]+\.[a-z0-9_]+)\.(\w+)$/.exec(name);
  const short = collection ? collection[2]! : name;
  const what = collection ? `Ansible's ${short} module (collection ${collection[1]})` : `Ansible's ${name} module`;
  const message = `${what} is not run by cairn: ${foreignReason(short)}`;
  const refuse = async (): Promise<Planned<never>> => ({ changed: false, actions: [], failed: message });
  const module: Module<ForeignArgs, never> = {
    name,
    argsSchema: { type: 'object' },
    foreign: message,
    check: refuse,
    apply: async () => ({ changed: false, failed: true, msg: message, data: {} }),
  };
  made.set(name, module);
  return module;
}
