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

/** The layering of src/: each folder may import only what is below it (see its README.md). */
const fence = (files, banned, message) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: [{ group: banned, message }, ...dirImports.patterns] },
    ],
  },
});
const up = (...names) => names.map((n) => `**/${n}/**`);

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
  fence(
    ['src/state/formats/**'],
    [...up('config', 'runner', 'effects', 'reducers', 'cli'), ...ioImports.patterns[0].group],
    'state/formats holds pure file formats: it imports nothing else of danling.',
  ),
  fence(
    ['src/state/config/**'],
    [...up('runner', 'effects', 'reducers', 'cli'), ...ioImports.patterns[0].group],
    'state/config may import only state/Json and state/formats.',
  ),
  fence(
    ['src/effects/storage/**'],
    up('checkpoint', 'run', 'logging', 'shell', 'tfjs', 'reducers', 'cli'),
    'effects/storage is the bottom of the shell: it may import only state/.',
  ),
  fence(
    ['src/effects/checkpoint/**'],
    up('run', 'logging', 'shell', 'tfjs', 'reducers', 'cli'),
    'effects/checkpoint may import only state/ and effects/storage.',
  ),
  fence(
    ['src/effects/run/**'],
    up('logging', 'shell', 'tfjs', 'cli'),
    'effects/run may import state/, reducers/, effects/storage and effects/checkpoint.',
  ),
  fence(
    ['src/effects/logging/**'],
    up('checkpoint', 'run', 'shell', 'tfjs', 'reducers', 'cli'),
    'effects/logging may import only state/ and effects/storage.',
  ),
  fence(
    ['src/effects/shell/**'],
    up('tfjs', 'cli'),
    'effects/shell must not import the tfjs adapters or the CLI.',
  ),
  fence(['src/effects/tfjs/**'], up('cli'), 'effects/tfjs must not import the CLI.'),
  fence(
    ['src/index.ts'],
    [...up('effects', 'cli'), ...ioImports.patterns[0].group],
    "the root entry point 'danling' is the pure core: effects go in src/effects/index.ts.",
  ),
  fence(
    ['src/effects/index.ts'],
    up('tfjs', 'cli'),
    "'danling/effects' must not load the tfjs adapters (src/effects/tfjs/index.ts) or the CLI.",
  ),
  fence(['src/cli/**'], up('tfjs'), 'the CLI must not import the tfjs adapters.'),
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
