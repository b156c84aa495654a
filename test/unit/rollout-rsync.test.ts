/** rsync's --stats and --itemize-changes output, from real captures (test/fixtures/rollout/rsync/README.md). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../runner/core/util/paths.js';
import { batchName, splitIntoBatches } from '../../runner/features/rollout/migrate.js';
import { parseItemizedDifferences, parseRsyncStats } from '../../runner/features/rollout/rsync-output.js';

const fixture = (name: string) =>
  readFileSync(join(packageRoot(), 'test', 'fixtures', 'rollout', 'rsync', name), 'utf8');

describe('rsync --stats', () => {
  it.each([
    ['push-stats.txt', { regularFiles: 3, filesTransferred: 3, bytesTransferred: 12 }],
    ['compare-checksum.txt', { regularFiles: 4, filesTransferred: 2, bytesTransferred: 3004 }],
    ['local-itemized.txt', { regularFiles: 3, filesTransferred: 3, bytesTransferred: 5008 }],
  ])('%s', (name, stats) => {
    expect(parseRsyncStats(fixture(name))).toEqual(stats);
  });

  it('finds no statistics in the output of an rsync that failed early', () => {
    expect(
      parseRsyncStats(
        'rsync: [sender] change_dir "/srv/x" failed: No such file or directory (2)\nrsync error: some files/attrs were not transferred (code 23)\n',
      ),
    ).toBeUndefined();
  });

  it('reads a lone file and an empty folder without a breakdown', () => {
    const lone =
      'Number of files: 1 (reg: 1)\nNumber of regular files transferred: 0\nTotal transferred file size: 0 bytes\n';
    expect(parseRsyncStats(lone)).toEqual({ regularFiles: 1, filesTransferred: 0, bytesTransferred: 0 });
    const emptyDir =
      'Number of files: 1 (dir: 1)\nNumber of regular files transferred: 0\nTotal transferred file size: 0 bytes\n';
    expect(parseRsyncStats(emptyDir)?.regularFiles).toBe(0);
  });
});

describe('rsync --itemize-changes (checksum comparison)', () => {
  it('lists the files with other content and the missing ones, not directories', () => {
    expect(parseItemizedDifferences(fixture('compare-checksum.txt'))).toEqual({
      differing: ['docs/b.txt'],
      missing: ['img/p.bin'],
    });
  });

  it('reads received files (>f) as well as sent ones (<f)', () => {
    expect(parseItemizedDifferences(fixture('local-itemized.txt'))).toEqual({
      differing: [],
      missing: ['top.txt', 'a/one.txt', 'a/b/two.bin'],
    });
  });

  it('a name with spaces survives; attribute-only changes do not count', () => {
    const out = '<fcs....... with space.txt\n.f..t...... only-time.txt\n*deleting   gone.txt\n';
    expect(parseItemizedDifferences(out)).toEqual({ differing: ['with space.txt'], missing: [] });
  });
});

describe('batches', () => {
  it('splits the top-level entries into near-equal contiguous groups, never an empty one', () => {
    expect(splitIntoBatches(['a', 'b', 'c', 'd', 'e'], 3)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(splitIntoBatches(['a', 'b'], 5)).toEqual([['a'], ['b']]);
    expect(splitIntoBatches([], 3)).toEqual([]);
  });

  it('names a batch by its entries', () => {
    expect(batchName(['.'])).toBe('(whole folder)');
    expect(batchName(['docs'])).toBe('docs');
    expect(batchName(['a', 'b', 'c'])).toBe('a … c (3 entries)');
  });
});
