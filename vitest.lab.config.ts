import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { defineConfig } from 'vitest/config';

/** Lab files run in name order (00-lifecycle first: it ends with `lab down`), one at a time. */
class ByName extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => a.moduleId.localeCompare(b.moduleId));
  }
}

export default defineConfig({
  test: {
    include: ['test/lab/**/*.test.ts'],
    fileParallelism: false,
    sequence: { sequencer: ByName },
    globalSetup: ['test/lab/global-setup.ts'],
    testTimeout: 300_000,
    // A cold start builds the base image and package repository (about two minutes).
    hookTimeout: 900_000,
    pool: 'forks',
  },
});
