// typescript-eslint's recommended rules, three type-aware ones (below),
// plus an import-cycle rule: src/ keeps its one-way layering (kube ← election,
// controller ← operator ← main) and test code never becomes a dependency of it.
// `npm run lint` runs this and prettier --check; `npm test` runs lint first.
import tseslint from 'typescript-eslint';
import importX, { createNodeResolver } from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'packages/*/dist/', 'bench/results/', '.cluster/', 'bench/clientgo-elector/'] },
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createNodeResolver({ extensions: ['.ts', '.js'] })],
      // Parse .ts dependencies too, or no-cycle sees no edges between TypeScript files.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      // The code uses non-null assertions where the API guarantees a field (metadata.name of a stored object).
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Test files use require-free ESM; a few dynamic shapes are typed as `any` on purpose at boundaries.
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Type-aware rules (they need the type program: tsconfig.json's files), for
    // what an async codebase gets wrong silently: a promise nobody awaits or
    // catches, a promise where a callback's result is ignored, a switch over a
    // union that forgets a member.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
    },
  },
  {
    // src/ never imports test code.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/test/**', '../../test/*'], message: 'src/ must not depend on test code' }] },
      ],
    },
  },
  {
    // The controller's rules are pure: values in, values out. No API client,
    // no I/O module, nothing of the pass or the adapters (types of
    // client-node's objects are fine; node:crypto only hashes).
    files: ['src/controller/rules/**/*.ts'],
    ignores: ['src/controller/rules/**/*.test.ts'],
    rules: {
      'no-restricted-imports': 'off',
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@kubernetes/client-node',
              message: 'rules/ is pure: types of client-node only',
              allowTypeImports: true,
            },
          ],
          patterns: [
            { group: ['node:*', '!node:crypto'], message: 'rules/ does no I/O' },
            { group: ['pino', 'prom-client', 'express', 'undici'], message: 'rules/ does no I/O' },
            {
              group: ['**/pass/*', '**/cluster/*', '../*.ts', '**/election/*', '**/operator/*', '**/server/*'],
              message: 'rules/ depends on nothing of the pass, the ports or the adapters',
            },
            {
              group: ['**/kube/*', '!**/kube/object-key.ts', '!**/kube/resource-version.ts'],
              message: 'rules/ may use only the pure helpers of src/kube',
            },
            { group: ['**/test/**', '../../test/*'], message: 'src/ must not depend on test code' },
          ],
        },
      ],
    },
  },
);
