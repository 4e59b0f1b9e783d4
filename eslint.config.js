// One preset for the whole tree: neostandard (the Fastify organisation's style: lint and format
// in one ESLint flat config), plus typescript-eslint's recommended rules. Reformat with
// `pnpm exec eslint --fix .`.
import neostandard from 'neostandard'
import tseslint from 'typescript-eslint'

export default [
  { ignores: ['**/node_modules/**', '.tools/**', '**/dist/**', '**/.tap/**', '.packs/**', 'docker/**', '**/.readme-check/**', 'tools/java-interop/target/**'] },
  ...neostandard({ ts: true }),
  ...tseslint.configs.recommended,
  {
    // The consumer test's apps are plain Node ESM, run outside the workspace.
    files: ['tests/consumer/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', fetch: 'readonly' } }
  },
  {
    // Tests construct for the throw and feed wrapper objects to parsers on purpose.
    files: ['**/test/**/*.ts'],
    rules: { 'no-new': 'off', 'no-new-wrappers': 'off' }
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
      // The tree's idioms, kept on purpose:
      // `new Promise((r) => setTimeout(r, ms))`
      'promise/param-names': 'off',
      // `void p` marks a promise left unawaited deliberately
      'no-void': 'off',
      // loops that poll a flag a callback or timer flips
      'no-unmodified-loop-condition': 'off',
      // a zod schema and the type inferred from it share one name
      '@typescript-eslint/no-redeclare': 'off',
      // an error subclass's constructor narrows `code` to the package's codes
      '@typescript-eslint/no-useless-constructor': 'off',
      // `for (const _ in o) return false`: the allocation-free emptiness test
      'no-unreachable-loop': 'off',
      // write-only setters (the retry controller's `target`)
      'accessor-pairs': 'off',
      // an early `return` in an else-if chain reads as a guard
      'no-useless-return': 'off'
    }
  }
]
