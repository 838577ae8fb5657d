import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/fast-check.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests create namespaces and TUNs with unique names, so files may run in parallel.
    pool: 'forks',
  },
});
