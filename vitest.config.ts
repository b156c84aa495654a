import { defineConfig } from 'vitest/config';

// Unit tests and integration tests against loopback sshd: files run in parallel. The lab's tests share one
// set of containers and run afterwards, one file at a time (vitest.lab.config.ts).
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
