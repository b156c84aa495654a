#!/usr/bin/env node
// One-off helper for merging branches made before the re-lay into layers (issue 15, branch house-layers):
// rewrites relative imports that no longer resolve because a file moved. For each .ts file under runner/
// and test/, an import that does not resolve is resolved as it was meant in the old layout (from the file's
// old place, to the target's old place) and pointed at the target's new place. Imports that resolve are
// left alone. Usage: node scripts/relayer-imports.mjs [--dry-run]. Delete this script once every branch
// from before the re-lay has landed.
//
// Symbols that moved between files (not fixed here): loadPlaybookFile commands/play.ts -> app/playbook.ts;
// runDrillInSession commands/drill.ts -> features/drills/run.ts; ExitCode is no longer re-exported by
// commands/play.ts (import it from core/util/errors.ts).
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { posix } from 'node:path';

const MOVES = new Map([
  ['runner/engine/batches.ts', 'runner/core/engine/batches.ts'],
  ['runner/engine/connection-spec.ts', 'runner/core/engine/connection-spec.ts'],
  ['runner/engine/engine.ts', 'runner/core/engine/engine.ts'],
  ['runner/engine/events.ts', 'runner/core/engine/events.ts'],
  ['runner/engine/executor.ts', 'runner/core/engine/executor.ts'],
  ['runner/engine/lazy-vars.ts', 'runner/core/engine/lazy-vars.ts'],
  ['runner/engine/tags.ts', 'runner/core/engine/tags.ts'],
  ['runner/modules/all.ts', 'runner/core/modules/all.ts'],
  ['runner/modules/apt.ts', 'runner/core/modules/apt.ts'],
  ['runner/modules/assert.ts', 'runner/core/modules/assert.ts'],
  ['runner/modules/attributes.ts', 'runner/core/modules/attributes.ts'],
  ['runner/modules/blockinfile.ts', 'runner/core/modules/blockinfile.ts'],
  ['runner/modules/ceph-health.ts', 'runner/core/modules/ceph/health-module.ts'],
  ['runner/modules/command.ts', 'runner/core/modules/command.ts'],
  ['runner/modules/copy.ts', 'runner/core/modules/copy.ts'],
  ['runner/modules/debug.ts', 'runner/core/modules/debug.ts'],
  ['runner/modules/fail.ts', 'runner/core/modules/fail.ts'],
  ['runner/modules/file-write.ts', 'runner/core/modules/file-write.ts'],
  ['runner/modules/file.ts', 'runner/core/modules/file.ts'],
  ['runner/modules/http.ts', 'runner/core/modules/http.ts'],
  ['runner/modules/index.ts', 'runner/core/modules/index.ts'],
  ['runner/modules/kvm-zfs.ts', 'runner/core/modules/kvm-zfs.ts'],
  ['runner/modules/lineinfile.ts', 'runner/core/modules/lineinfile.ts'],
  ['runner/modules/pyregex.ts', 'runner/core/modules/pyregex.ts'],
  ['runner/modules/raid-health.ts', 'runner/core/modules/raid/health-module.ts'],
  ['runner/modules/remote.ts', 'runner/core/modules/remote.ts'],
  ['runner/modules/setup.ts', 'runner/core/modules/setup.ts'],
  ['runner/modules/shell.ts', 'runner/core/modules/shell.ts'],
  ['runner/modules/shlex.ts', 'runner/core/modules/shlex.ts'],
  ['runner/modules/stat.ts', 'runner/core/modules/stat.ts'],
  ['runner/modules/sysctl.ts', 'runner/core/modules/sysctl.ts'],
  ['runner/modules/systemd.ts', 'runner/core/modules/systemd.ts'],
  ['runner/modules/template.ts', 'runner/core/modules/template.ts'],
  ['runner/modules/types.ts', 'runner/core/modules/types.ts'],
  ['runner/modules/user.ts', 'runner/core/modules/user.ts'],
  ['runner/modules/wait-for.ts', 'runner/core/modules/wait-for.ts'],
  ['runner/ceph/assess.ts', 'runner/core/modules/ceph/assess.ts'],
  ['runner/ceph/health.ts', 'runner/core/modules/ceph/health.ts'],
  ['runner/ceph/probe.ts', 'runner/core/modules/ceph/probe.ts'],
  ['runner/ceph/status.ts', 'runner/core/modules/ceph/status.ts'],
  ['runner/raid/health.ts', 'runner/core/modules/raid/health.ts'],
  ['runner/raid/mdadm-detail.ts', 'runner/core/modules/raid/mdadm-detail.ts'],
  ['runner/raid/mdstat.ts', 'runner/core/modules/raid/mdstat.ts'],
  ['runner/zfs/dataset-module.ts', 'runner/core/modules/zfs/dataset-module.ts'],
  ['runner/zfs/health-module.ts', 'runner/core/modules/zfs/health-module.ts'],
  ['runner/zfs/health.ts', 'runner/core/modules/zfs/health.ts'],
  ['runner/zfs/pool-module.ts', 'runner/core/modules/zfs/pool-module.ts'],
  ['runner/zfs/properties.ts', 'runner/core/modules/zfs/properties.ts'],
  ['runner/zfs/snapshot-age-module.ts', 'runner/core/modules/zfs/snapshot-age-module.ts'],
  ['runner/zfs/zpool-status.ts', 'runner/core/modules/zfs/zpool-status.ts'],
  ['runner/virt/host-validate-module.ts', 'runner/core/modules/virt/host-validate-module.ts'],
  ['runner/virt/host-validate.ts', 'runner/core/modules/virt/host-validate.ts'],
  ['runner/virt/tiny-guest.ts', 'runner/features/drills/tiny-guest.ts'],
  ['runner/transport/known-hosts.ts', 'runner/core/transport/known-hosts.ts'],
  ['runner/transport/local.ts', 'runner/core/transport/local.ts'],
  ['runner/transport/pool.ts', 'runner/core/transport/pool.ts'],
  ['runner/transport/quote.ts', 'runner/core/transport/quote.ts'],
  ['runner/transport/ssh.ts', 'runner/core/transport/ssh.ts'],
  ['runner/transport/types.ts', 'runner/core/transport/types.ts'],
  ['runner/inventory/index.ts', 'runner/core/inventory/index.ts'],
  ['runner/inventory/load.ts', 'runner/core/inventory/load.ts'],
  ['runner/inventory/patterns.ts', 'runner/core/inventory/patterns.ts'],
  ['runner/inventory/schema.ts', 'runner/core/inventory/schema.ts'],
  ['runner/inventory/types.ts', 'runner/core/inventory/types.ts'],
  ['runner/playbook/load.ts', 'runner/core/playbook/load.ts'],
  ['runner/playbook/schema.ts', 'runner/core/playbook/schema.ts'],
  ['runner/playbook/suggest.ts', 'runner/core/util/suggest.ts'],
  ['runner/playbook/types.ts', 'runner/core/playbook/types.ts'],
  ['runner/template/expr.ts', 'runner/core/template/expr.ts'],
  ['runner/template/handlebars.ts', 'runner/core/template/handlebars.ts'],
  ['runner/template/helpers.ts', 'runner/core/template/helpers.ts'],
  ['runner/template/index.ts', 'runner/core/template/index.ts'],
  ['runner/template/types.ts', 'runner/core/template/types.ts'],
  ['runner/vault/age.ts', 'runner/core/vault/age.ts'],
  ['runner/vault/index.ts', 'runner/core/vault/index.ts'],
  ['runner/vault/keys.ts', 'runner/core/vault/keys.ts'],
  ['runner/errors.ts', 'runner/core/util/errors.ts'],
  ['runner/paths.ts', 'runner/core/util/paths.ts'],
  ['runner/sleep.ts', 'runner/core/util/sleep.ts'],
  ['runner/yaml-source.ts', 'runner/core/util/yaml-source.ts'],
  ['runner/schema.ts', 'runner/core/util/schema.ts'],
  ['runner/vars.ts', 'runner/core/util/vars.ts'],
  ['runner/lock.ts', 'runner/app/lock.ts'],
  ['runner/commands/session.ts', 'runner/app/session.ts'],
  ['runner/report/console.ts', 'runner/app/report/console.ts'],
  ['runner/report/diff.ts', 'runner/app/report/diff.ts'],
  ['runner/report/html.ts', 'runner/features/rollout/html.ts'],
  ['runner/report/index.ts', 'runner/app/report/index.ts'],
  ['runner/report/journal.ts', 'runner/app/report/journal.ts'],
  ['runner/report/json.ts', 'runner/app/report/json.ts'],
  ['runner/report/mask.ts', 'runner/app/report/mask.ts'],
  ['runner/report/recap.ts', 'runner/app/report/recap.ts'],
  ['runner/lab/container.ts', 'runner/features/lab/container.ts'],
  ['runner/lab/exec.ts', 'runner/features/lab/exec.ts'],
  ['runner/lab/image.ts', 'runner/features/lab/image.ts'],
  ['runner/lab/index.ts', 'runner/features/lab/index.ts'],
  ['runner/lab/inventory.ts', 'runner/features/lab/inventory.ts'],
  ['runner/lab/ipv4.ts', 'runner/features/lab/ipv4.ts'],
  ['runner/lab/lock.ts', 'runner/features/lab/lock.ts'],
  ['runner/lab/mirror.ts', 'runner/features/lab/mirror.ts'],
  ['runner/lab/mounts.ts', 'runner/features/lab/mounts.ts'],
  ['runner/lab/network.ts', 'runner/features/lab/network.ts'],
  ['runner/lab/paths.ts', 'runner/features/lab/paths.ts'],
  ['runner/lab/preflight.ts', 'runner/features/lab/preflight.ts'],
  ['runner/lab/proc.ts', 'runner/features/lab/proc.ts'],
  ['runner/lab/repo.ts', 'runner/features/lab/repo.ts'],
  ['runner/lab/ssh.ts', 'runner/features/lab/ssh.ts'],
  ['runner/lab/state.ts', 'runner/features/lab/state.ts'],
  ['runner/lab/topology.ts', 'runner/features/lab/topology.ts'],
  ['runner/drills/all.ts', 'runner/features/drills/all.ts'],
  ['runner/drills/backup.ts', 'runner/features/drills/backup.ts'],
  ['runner/drills/ceph.ts', 'runner/features/drills/ceph.ts'],
  ['runner/drills/data-inconsistent.ts', 'runner/features/drills/data-inconsistent.ts'],
  ['runner/drills/ha.ts', 'runner/features/drills/ha.ts'],
  ['runner/drills/hyperconverged.ts', 'runner/features/drills/hyperconverged.ts'],
  ['runner/drills/kvm-zfs.ts', 'runner/features/drills/kvm-zfs.ts'],
  ['runner/drills/monitoring.ts', 'runner/features/drills/monitoring.ts'],
  ['runner/drills/probe.ts', 'runner/features/drills/probe.ts'],
  ['runner/drills/registry.ts', 'runner/features/drills/registry.ts'],
  ['runner/drills/rollout.ts', 'runner/features/drills/rollout.ts'],
  ['runner/drills/settings.ts', 'runner/features/drills/settings.ts'],
  ['runner/drills/types.ts', 'runner/features/drills/types.ts'],
  ['runner/rollout/checklist.ts', 'runner/features/rollout/checklist.ts'],
  ['runner/rollout/days.ts', 'runner/features/rollout/days.ts'],
  ['runner/rollout/evidence.ts', 'runner/features/rollout/evidence.ts'],
  ['runner/rollout/gate.ts', 'runner/features/rollout/gate.ts'],
  ['runner/rollout/matrix.ts', 'runner/features/rollout/matrix.ts'],
  ['runner/rollout/migrate.ts', 'runner/features/rollout/migrate.ts'],
  ['runner/rollout/report.ts', 'runner/features/rollout/report.ts'],
  ['runner/rollout/rsync-output.ts', 'runner/features/rollout/rsync-output.ts'],
  ['runner/rollout/schema.ts', 'runner/features/rollout/schema.ts'],
  ['runner/rollout/state.ts', 'runner/features/rollout/state.ts'],
  ['runner/rollout/status.ts', 'runner/features/rollout/status.ts'],
  ['runner/rollout/steps.ts', 'runner/features/rollout/steps.ts'],
  ['runner/rollout/targets.ts', 'runner/features/rollout/targets.ts'],
  ['runner/rollout/types.ts', 'runner/features/rollout/types.ts'],
]);
const OLD_OF = new Map([...MOVES].map(([o, n]) => [n, o]));
// A file another branch added in an old folder may have been carried into the new folder by git's directory
// rename detection: its imports are still written from the old folder (the one most files there came from).
const OLD_DIR_OF = new Map();
for (const [o, n] of MOVES) {
  const counts = OLD_DIR_OF.get(posix.dirname(n)) ?? new Map();
  counts.set(posix.dirname(o), (counts.get(posix.dirname(o)) ?? 0) + 1);
  OLD_DIR_OF.set(posix.dirname(n), counts);
}
const oldPlaceOf = (file) => {
  if (OLD_OF.has(file)) return OLD_OF.get(file);
  const counts = OLD_DIR_OF.get(posix.dirname(file));
  if (!counts) return file;
  const [dir] = [...counts].sort((a, b) => b[1] - a[1])[0];
  return posix.join(dir, posix.basename(file));
};
const dryRun = process.argv.includes('--dry-run');

const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (name === 'node_modules' || name === 'fixtures' || name === 'out') return [];
    return statSync(path).isDirectory() ? walk(path) : path.endsWith('.ts') ? [path] : [];
  });

const exists = (path) => existsSync(path.replace(/\.js$/, '.ts')) || existsSync(path);
const IMPORT = /(from\s+|import\s*\(\s*|import\s+|vi\.mock\(\s*)(['"])(\.{1,2}\/[^'"]+)\2/g;
let changed = 0;
for (const file of [...walk('runner'), ...walk('test')]) {
  const text = readFileSync(file, 'utf8');
  const oldPlace = oldPlaceOf(file);
  const next = text.replace(IMPORT, (all, prefix, quote, spec) => {
    // ./out/...: test code compiled at run time (vault-cli, lock, report-process tests), not a source path.
    if (spec.startsWith('./out/') || exists(posix.join(posix.dirname(file), spec))) return all;
    const oldTarget = posix.normalize(posix.join(posix.dirname(oldPlace), spec)).replace(/\.js$/, '.ts');
    const newTarget = MOVES.get(oldTarget);
    if (!newTarget) {
      console.error(`${file}: cannot resolve ${spec} (not a moved file either)`);
      return all;
    }
    let rel = posix.relative(posix.dirname(file), newTarget).replace(/\.ts$/, spec.endsWith('.js') ? '.js' : '.ts');
    if (!rel.startsWith('.')) rel = `./${rel}`;
    console.log(`${file}: ${spec} -> ${rel}`);
    changed++;
    return `${prefix}${quote}${rel}${quote}`;
  });
  if (next !== text && !dryRun) writeFileSync(file, next);
}
console.log(`${changed} import(s) ${dryRun ? 'would be ' : ''}rewritten`);
