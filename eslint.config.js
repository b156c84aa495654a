// ESLint for cairn: typescript-eslint's recommended rules over runner/ and test/ (flat config).
// Formatting is Prettier's job (.prettierrc.json), so no stylistic rules here.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // Build output, installed packages, and inputs that are data, not code.
    ignores: [
      'dist/',
      'node_modules/',
      'test/fixtures/',
      'test/bad-input/',
      '.cairn/',
      'test-artifacts/',
      'var/',
      'runner/core/util/schema-validators.generated.ts',
    ],
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // `_name` marks a parameter or binding that must exist (a callback's signature, a destructured rest)
      // but is not read.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Test helpers and fixtures may build loosely typed values on purpose (malformed input, fakes).
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', module: 'writable', require: 'readonly', console: 'readonly' } },
  },
);
