/** `cairn init DIR`: scaffold a site repository that uses the installed cairn's roles. */
import type { Command } from 'commander';
import { initSite, SITE_INVENTORY } from '../app/site/init.js';

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description(
      "write a new site repository: inventory of the documents' topology, site.yaml, rollout.yaml, cairn.cfg",
    )
    .argument('<dir>', 'the new (or empty) folder')
    .action((dir: string) => {
      const result = initSite(dir);
      process.stdout.write(`cairn init: wrote ${result.files.length} files to ${result.dir}\n`);
      process.stdout.write(
        [
          'next:',
          `  cd ${dir}`,
          `  edit ${SITE_INVENTORY}/hosts.yaml (addresses) and every group_vars/host_vars file (REPLACE-... values)`,
          `  fill in ${SITE_INVENTORY}/group_vars/all/vault.yaml, then: cairn vault keygen ~/.config/cairn/site.key`,
          `    and cairn vault encrypt ${SITE_INVENTORY}/group_vars/all/vault.yaml --recipient <its age1... recipient>`,
          '  cairn play site.yaml --syntax-check && cairn play site.yaml --check --diff',
          `  the jump host's drift watch: the jumphost group in ${SITE_INVENTORY}/hosts.yaml, then`,
          '    cairn play playbooks/jumphost.yaml (role jumphost: hourly `cairn drift` timer, metrics, logrotate)',
          '',
        ].join('\n'),
      );
    });
}
