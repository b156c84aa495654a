/**
 * Registers every module cairn ships, with Ansible's aliases. Importing this file once fills the registry in
 * ./index.ts: runner/commands/play.ts does, for every command that loads a playbook (the engine only looks up).
 */
import { registerModule } from './index.js';
import { aptModule } from './apt.js';
import { packageModule } from './package.js';
import { assertModule } from './assert.js';
import { blockinfileModule } from './blockinfile.js';
import { commandModule } from './command.js';
import { copyModule } from './copy.js';
import { debugModule } from './debug.js';
import { failModule } from './fail.js';
import { fileModule } from './file.js';
import { httpModule } from './http.js';
import { lineinfileModule } from './lineinfile.js';
import { nftRulesetModule } from './nftables.js';
import { setupModule } from './setup.js';
import { shellModule } from './shell.js';
import { statModule } from './stat.js';
import { sysctlModule } from './sysctl.js';
import { systemdModule } from './systemd.js';
import { templateModule } from './template.js';
import { tlsCertificateModule } from './tls-certificate.js';
import { userModule } from './user.js';
import { waitForModule } from './wait-for.js';
import { pingModule } from './ping.js';
import { asyncStatusModule } from './async_status.js';
import { rawModule } from './raw.js';
import { replaceModule } from './replace.js';
import { groupModule } from './group.js';
import { cronModule } from './cron.js';
import { getUrlModule } from './get-url.js';
import { serviceFactsModule } from './service-facts.js';
import { packageFactsModule } from './package-facts.js';
import { mountModule } from './mount.js';
import { rebootModule } from './reboot.js';
import { waitForConnectionModule } from './wait-for-connection.js';
import { timezoneModule } from './timezone.js';
import { unarchiveModule } from './unarchive.js';
import { fetchModule } from './fetch.js';
import { aptRepositoryModule } from './apt-repository.js';
import { gitModule } from './git.js';
import { addHostModule } from './add-host.js';
import { groupByModule } from './group-by.js';

registerModule(commandModule);
registerModule(shellModule);
registerModule(copyModule);
registerModule(templateModule);
registerModule(tlsCertificateModule);
registerModule(fileModule);
registerModule(lineinfileModule);
registerModule(blockinfileModule);
registerModule(aptModule);
registerModule(packageModule);
registerModule(systemdModule, 'service', 'systemd_service');
registerModule(sysctlModule);
registerModule(nftRulesetModule);
registerModule(userModule);
registerModule(statModule);
registerModule(waitForModule);
registerModule(httpModule, 'uri');
registerModule(assertModule);
registerModule(debugModule);
registerModule(failModule);
registerModule(setupModule, 'gather_facts');
registerModule(pingModule);
registerModule(asyncStatusModule);
registerModule(rawModule);
registerModule(replaceModule);
registerModule(groupModule);
registerModule(cronModule);
registerModule(getUrlModule);
registerModule(serviceFactsModule);
registerModule(packageFactsModule);
registerModule(mountModule);
registerModule(rebootModule);
registerModule(waitForConnectionModule);
registerModule(timezoneModule);
registerModule(addHostModule);
registerModule(groupByModule);
// ansible.builtin.* names reach these through shortModuleName (playbook/ansible-keywords.ts).
registerModule(unarchiveModule);
registerModule(fetchModule);
registerModule(aptRepositoryModule);
registerModule(gitModule);
import './raid/health-module.js'; // raid_health registers itself
import './kvm-zfs.js'; // zfs_pool, zfs_dataset, zpool_health, zfs_snapshot_age, virt_host_validate
import './ceph/health-module.js'; // ceph_health registers itself
import './ceph/volume-module.js'; // ceph_osd_volumes registers itself
