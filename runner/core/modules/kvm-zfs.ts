/**
 * The hypervisor and ZFS modules (kvm and zfs roles): registered from one line in ./all.ts. Their code lives
 * beside their parsers in ./zfs/ and ./virt/.
 */
import { virtHostValidateModule } from './virt/host-validate-module.js';
import { zfsDatasetModule } from './zfs/dataset-module.js';
import { zpoolHealthModule } from './zfs/health-module.js';
import { zfsPoolModule } from './zfs/pool-module.js';
import { zfsSnapshotAgeModule } from './zfs/snapshot-age-module.js';
import { registerModule } from './index.js';

registerModule(zfsPoolModule);
registerModule(zfsDatasetModule);
registerModule(zpoolHealthModule);
registerModule(zfsSnapshotAgeModule);
registerModule(virtHostValidateModule);
