/**
 * The zfs role's compatibility `zfs` for zfs-fuse (roles/zfs/files/zfs-fuse-compat-zfs), run by /bin/sh with
 * a stand-in for the real zfs that records its arguments and prints a dataset and a snapshot line. zfs-fuse
 * has no `zfs get -t TYPE`: the wrapper must drop the type, keep every other option with its value, and keep
 * only the lines of that type, for the forms sanoid (-Hrpt snapshot) and syncoid (-Hpd 1 -t snapshot) use.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'cairn-zfs-compat-'));
const log = join(dir, 'real.log');
const fake = join(dir, 'zfs');
writeFileSync(
  fake,
  `#!/bin/sh\necho "$*" > ${log}\nprintf 'tank/data\\tguid\\t1\\t-\\ntank/data@s1\\tguid\\t2\\t-\\n'\n`,
);
chmodSync(fake, 0o755);
const wrapper = join(dir, 'compat-zfs');
const source = readFileSync(new URL('../../roles/zfs/files/zfs-fuse-compat-zfs', import.meta.url), 'utf8');
writeFileSync(wrapper, source.replace(/^real=\/usr\/sbin\/zfs$/m, `real=${fake}`));
chmodSync(wrapper, 0o755);

function run(args: string): { real: string; out: string[] } {
  const out = execFileSync('/bin/sh', [wrapper, ...args.split(' ')], { encoding: 'utf8' });
  return {
    real: readFileSync(log, 'utf8').trim(),
    out: out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t')[0]!),
  };
}

describe('zfs-fuse compatibility zfs', () => {
  it.each([
    // syncoid 2.1 listing a dataset's snapshots (local and, through the replication key, on the backup host)
    ['get -Hpd 1 -t snapshot guid,creation tank/data', 'get -Hpd 1 guid,creation tank/data', ['tank/data@s1']],
    // sanoid listing every snapshot
    ['get -Hrpt snapshot creation tank', 'get -Hrp creation tank', ['tank/data@s1']],
    ['get -H -p -d 1 -t snapshot guid tank/data', 'get -H -p -d 1 guid tank/data', ['tank/data@s1']],
    ['get -t filesystem -Hp guid tank', 'get -Hp guid tank', ['tank/data']],
    ['get -t bookmark -Hp guid tank', '', []],
    // Everything else goes through unchanged.
    ['get -Hp guid tank/data', 'get -Hp guid tank/data', ['tank/data', 'tank/data@s1']],
    ['list -H -o name tank', 'list -H -o name tank', ['tank/data', 'tank/data@s1']],
  ])('%s -> real zfs %s', (args, real, lines) => {
    writeFileSync(log, '');
    const res = run(args);
    expect(res.real).toBe(real);
    expect(res.out).toEqual(lines);
  });
});
