import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real sshd processes and lab containers; give them room.
    testTimeout: 60_000,
    hookTimeout: 600_000,
    // Lab tests share one set of containers; the files serialise on it themselves.
    fileParallelism: true,
    pool: 'forks',
  },
});
