// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const ioImports = {
  patterns: [
    {
      group: ['node:*', 'fs', 'fs/*', 'path', 'os', 'child_process', 'pino', 'pino/*'],
      message: 'The pure core (src/state, src/reducers) does no I/O: move this to src/effects.',
    },
    {
      group: ['**/effects/**', '**/cli/**'],
      message: 'The pure core must not import effects or the CLI.',
    },
  ],
};

const dirImports = {
  patterns: [
    {
      regex: '^(fp-ts|io-ts)/(?!lib/)',
      message:
        "Import fp-ts/io-ts modules as 'fp-ts/lib/X.js': directory imports crash under plain Node ESM (fp-ts#1966).",
    },
    {
      regex: '^(fp-ts|io-ts)/lib/[A-Za-z]+$',
      message: "Add the '.js' extension: 'fp-ts/lib/X.js'.",
    },
  ],
};

export default tseslint.config(
  { ignores: ['dist/**', 'dist-check/**', 'node_modules/**', 'experiments/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ['*.mjs', 'scripts/*.mjs', 'bench/*.mjs'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      'no-restricted-imports': ['error', dirImports],
    },
  },
  {
    files: ['src/state/**', 'src/reducers/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [...ioImports.patterns, ...dirImports.patterns] },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'Date', message: 'The pure core has no clock: pass time in the payload.' },
        { name: 'process', message: 'The pure core reads no environment.' },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'Randomness lives in the state (pure-rand).',
        },
      ],
    },
  },
  {
    files: ['**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: globals.node },
  },
  {
    files: ['test/**', 'bench/**', 'examples/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
