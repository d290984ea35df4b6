import { defineConfig } from 'vitest/config'

// Two projects: `default` (unit, integration with real processes, fidelity: `npm test`) and `e2e`
// (a real Kubernetes control plane, the process-backed node and the Helm-installed operator:
// `npm run test:e2e`).
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn real processes: two cores, so keep the pool small.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'default', include: ['test/{unit,integration,fidelity,live}/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          // One cluster, shared: files run one after another.
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 2_400_000,
        },
      },
    ],
  },
})
