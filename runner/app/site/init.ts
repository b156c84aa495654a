/**
 * `cairn init DIR`: a new site repository, outside cairn's own clone, that runs the built-in roles from the
 * installed cairn. What it writes:
 *
 *   cairn.cfg                    inventory = inventories/production/hosts.yaml, roles_path = roles
 *   site.yaml, playbooks/*.yaml  the built-in plays (a copy the site owns; the roles stay cairn's)
 *   rollout.yaml                 the D1-D35 rollout plan
 *   drills.yaml                  the drill schedule (document 001: monthly ... yearly), `cairn drill --due`
 *   inventories/production/      exactly cairn's inventories/example/ (the documents' topology, every role
 *                                variable, vault placeholders)
 *   roles/README.md              how a site role of a built-in name takes over (announced at run time)
 *   README.md, .gitignore
 *
 * The folder is built beside DIR under a temporary name and renamed into place at the end, so an error
 * (a full disk, a missing source file) never leaves a half-written site.
 */
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { optionsError } from '../../core/util/errors.js';
import { packageRoot } from '../../core/util/paths.js';

/** The example inventory `init` copies, inside cairn's package. */
export const exampleInventoryDir = (): string => join(packageRoot(), 'inventories', 'example');
/** Where `init` puts it inside the site. */
export const SITE_INVENTORY = 'inventories/production';

export const CAIRN_CFG = `# cairn's settings for this site (read from the folder cairn runs in; Ansible's ansible.cfg names).
[defaults]
# The default -i: this site's hosts, group_vars and host_vars.
inventory = ${SITE_INVENTORY}/hosts.yaml
# A role in roles/ with a built-in role's name replaces it (cairn says so when it runs); other names add roles.
roles_path = roles
# The age identity that opens the encrypted vault files (see ${SITE_INVENTORY}/group_vars/all/vault.yaml):
# vault_identity_file = ~/.config/cairn/site.key
`;

const ROLES_README = `# Site roles

cairn's built-in roles (base-tuning, zfs, kvm, ceph, webapp, haproxy, keepalived, prometheus, backup, ...)
come from the installed cairn. A folder here with the same name (\`roles/haproxy/\`, with at least a
tasks.yaml) replaces the built-in role for this site, and every run says so on stderr; a folder with a new
name adds a role that the plays can list.
`;

const GITIGNORE = `# cairn's run journals, rollout evidence and locks
.cairn/
# never commit a private key
*.key
`;

function siteReadme(dir: string): string {
  return `# ${basename(dir)}: a cairn site

Made by \`cairn init\`. Everything runs from this folder (cairn.cfg sets the inventory):

1. Put your hosts' addresses in \`${SITE_INVENTORY}/hosts.yaml\` and go through every file under
   \`${SITE_INVENTORY}/group_vars/\` and \`host_vars/\`: each variable says what it means and which source
   document asks for it. \`REPLACE-...\` marks values only you know (disks, NICs).
2. Secrets: fill in \`${SITE_INVENTORY}/group_vars/all/vault.yaml\`, then encrypt it:

       cairn vault keygen ~/.config/cairn/site.key
       cairn vault encrypt ${SITE_INVENTORY}/group_vars/all/vault.yaml --recipient age1...

   and uncomment \`vault_identity_file\` in cairn.cfg.
3. Check, then apply:

       cairn play site.yaml --syntax-check
       cairn play site.yaml --list-hosts
       cairn play site.yaml --check --diff --accept-new-host-keys
       cairn play site.yaml

4. Follow the rollout plan: \`cairn rollout status\`, \`cairn rollout next\`; watch for drift: \`cairn drift\`.
   Keep to the drill schedule (drills.yaml, document 001): \`cairn drill --due\` lists what is due.
5. The jump host: uncomment the \`jumphost\` group in \`${SITE_INVENTORY}/hosts.yaml\`, set the jumphost role's
   variables (the drift user's key from the vault), then \`cairn play playbooks/jumphost.yaml\`: it installs
   the hourly drift check (docs/drift.md) with its metrics for Prometheus and logrotate for its log.
`;
}

/** The files of the built-in plays `init` copies: site.yaml's imports, read from cairn's site.yaml. */
function builtinPlaybooks(root: string): string[] {
  return readdirSync(join(root, 'playbooks'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join('playbooks', f));
}

export interface InitResult {
  dir: string;
  files: string[];
}

export function initSite(target: string): InitResult {
  const dir = resolve(target);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw optionsError(`${dir} exists and is not a folder`);
    if (readdirSync(dir).length > 0)
      throw optionsError(`${dir} is not empty: cairn init writes a new site into an empty or new folder`);
  }
  const parent = dirname(dir);
  if (!existsSync(parent))
    throw optionsError(`${parent} does not exist (cairn init makes one folder, not its parents)`);
  const root = packageRoot();
  const staging = mkdtempSync(join(parent, `.${basename(dir)}.cairn-init-`));
  try {
    const copy = (from: string, to = from): void =>
      cpSync(join(root, from), join(staging, to), { recursive: true, errorOnExist: true, force: false });
    copy('site.yaml');
    copy('rollout.yaml');
    copy('drills.yaml');
    for (const play of builtinPlaybooks(root)) copy(play);
    mkdirSync(join(staging, 'inventories'), { mode: 0o755 });
    copy(join('inventories', 'example'), SITE_INVENTORY);
    mkdirSync(join(staging, 'roles'), { mode: 0o755 });
    writeFileSync(join(staging, 'roles', 'README.md'), ROLES_README, { flag: 'wx' });
    writeFileSync(join(staging, 'cairn.cfg'), CAIRN_CFG, { flag: 'wx' });
    writeFileSync(join(staging, 'README.md'), siteReadme(dir), { flag: 'wx' });
    writeFileSync(join(staging, '.gitignore'), GITIGNORE, { flag: 'wx' });
    if (existsSync(dir)) rmdirSync(dir); // empty (checked above); rename needs the name free
    renameSync(staging, dir);
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  return { dir, files: listFiles(dir) };
}

function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}
