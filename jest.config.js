// Jest runs in ESM mode (`node --experimental-vm-modules`) because
// @kubernetes/client-node 2.x is ESM-only. Sources import with `.ts`
// extensions (Node 24 runs them directly); ts-jest transpiles them here and
// `npm run typecheck` does the type checking once for the whole tree.
// Imports keep their `.ts` extension under jest (no rewrite to .js), so both
// jest's resolver and Node's own loader (used for globalSetup) find the files.
const tsJest = ['ts-jest', { useESM: true, diagnostics: false, tsconfig: { rewriteRelativeImportExtensions: false } }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': tsJest },
  testEnvironment: 'node',
  // Benchmark scratch data (etcd .snap files), the CLI's cluster and build output are not tests.
  modulePathIgnorePatterns: ['<rootDir>/bench/results', '<rootDir>/.cluster', '<rootDir>/dist'],
};
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/test/chaos/unit/**/*.test.ts'],
    },
    // The chart, manifests, CLI, workflows and the import graph: most spawn processes (helm, lua, the CLI) and take seconds, so they run apart.
    { ...common, displayName: 'packaging', testMatch: ['<rootDir>/test/packaging/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/controlplane/jest-global-setup.ts',
      globalTeardown: '<rootDir>/test/controlplane/jest-global-teardown.ts',
    },
    // The workload library: real PostgreSQL and Redis, started by the tests themselves.
    { ...common, displayName: 'fence', testMatch: ['<rootDir>/packages/fence/test/**/*.test.ts'] },
  ],
  testTimeout: 120000,
};
