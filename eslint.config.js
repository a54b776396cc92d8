// Lint: the recommended rules plus type-aware ones that catch what tests rarely do (floating
// promises, unsafe `any` crossing a boundary). Formatting is Prettier's job, not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist-exe/', 'node_modules/', 'test-artifacts/', 'testkit/fixtures/*.py'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'],
            },
          ],
        },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      // A variable a closure reads before its one assignment (a socket's handler and the socket) stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests read documents the CLI printed (JSON.parse gives `any`) and check them with assertSchema at run time.
    files: ['test/**/*.ts', 'testkit/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  // The layers of docs/architecture.md, each folder forbidden what sits above it or beside it there.
  ...Object.entries({
    'src/core/**': ['framing', 'protocols', 'transport', 'bench', 'k8s', 'cli'],
    'src/framing/**': ['protocols', 'transport', 'bench', 'k8s', 'cli'],
    'src/protocols/**': ['transport', 'bench', 'k8s', 'cli'],
    'src/transport/**': ['protocols', 'bench', 'k8s', 'cli'],
    // Replaces the rule above for io/ (one rule per file), so it repeats transport's list.
    'src/transport/io/**': [
      'protocols',
      'bench',
      'k8s',
      'cli',
      'transport/server',
      'transport/client',
      'transport/models',
      'transport/services',
      'transport/messages',
      'transport/udp',
    ],
    'src/bench/results/**': [
      'framing',
      'protocols',
      'transport',
      'bench/control',
      'bench/servers',
      'bench/engines',
      'bench/tune',
      'k8s',
      'cli',
    ],
    'src/bench/control/**': ['protocols', 'bench/servers', 'bench/engines', 'bench/tune', 'k8s', 'cli'],
    'src/bench/servers/**': ['bench/engines', 'bench/tune', 'k8s', 'cli'],
    'src/bench/engines/**': ['bench/servers', 'bench/tune', 'k8s', 'cli'],
    'src/bench/tune/**': ['k8s', 'cli'],
    'src/k8s/**': ['protocols', 'cli'],
  }).map(([files, above]) => ({
    files: [files],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...above.map((folder) => {
              const [top, sub] = folder.split('/');
              // An import names a folder by a relative path: `../../cli/x.ts`, or `../servers/x.ts` from a sibling in bench/.
              const group = sub === undefined ? [`**/${top}/**`] : [`**/${top}/${sub}/**`, `../${sub}/**`, `../../${sub}/**`];
              return { group, message: `${files.replace('/**', '/')} may not import ${folder}/: see the layers in docs/architecture.md` };
            }),
            // src/index.ts re-exports every layer: importing it would pass any of them.
            { group: ['**/index.ts'], message: `${files.replace('/**', '/')} may not import src/index.ts, which re-exports every layer` },
          ],
        },
      ],
      // import() escapes no-restricted-imports; below cli/ only a handler module the user names is loaded by URL.
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression > Literal.source, ImportExpression > TemplateLiteral.source',
          message: 'no import() of a module path below src/cli/: the layer rule cannot see it',
        },
      ],
    },
  })),
  {
    // Prettier wraps code at 140 but not strings or comments.
    files: ['src/**/*.ts'],
    rules: { 'max-len': ['error', { code: 140, ignoreUrls: true }] },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: { process: 'readonly', console: 'readonly' } },
  },
);
