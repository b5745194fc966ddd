// Flat config: typescript-eslint's strict rules for src/, test/ and bench/, and the watch page's browser JavaScript.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', 'src/homebridge-ui/public/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // The test and bench code talks to untyped peers (browsers, hap-controller); keep `any` out of src/ strictly
    // and allow it nowhere else either, but let tests use non-null assertions freely.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // The watch page: browser modules. Names are checked by `tsc -p tsconfig.page.json` (checkJs against
    // the DOM lib), which knows every browser global, so ESLint's own global list would only duplicate it.
    files: ['src/web/page/**/*.js'],
    languageOptions: { sourceType: 'module', ecmaVersion: 2023 },
    rules: { 'no-undef': 'off' },
  },
);
