// Runs the live-cell tests on their own until the root vitest.config.ts includes test/live:
//   npx vitest run --config test/live/vitest.config.ts
import { defineConfig } from 'vitest/config'

export default defineConfig({
  root: import.meta.dirname + '/../..',
  test: {
    testTimeout: 60_000,
    hookTimeout: 600_000,
    maxWorkers: 2,
    include: ['test/live/**/*.test.ts'],
  },
})
