// What `npm pack` and `npm publish` would ship, checked in a copy of the tree (prepack rebuilds dist/ there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MINIMUM_NODE_VERSION } from '../../src/core/node-version.ts';
import { NODE24_PATH, ROOT, copyOfTree, npmEnvironment, registryUnreachable, run, temporaryDirectory } from '../../testkit/package.ts';

/**
 * npm shows kB of 1000 bytes; the docs' screenshots alone were twice this (the schema's closed result
 * options added 10 kB; the split of transport/ and bench/ into 20 more, smaller modules took it to
 * 280,277 B, and stream -u's modules and schema to 291,845 B; iperf3 and sockperf over UDP and rr -u
 * to 315,690 B; the start barrier, Kubernetes' render modules, UDP threads and data ports to 377,072 B;
 * zero-copy bulk threads, client threads for rr, crr, msg and conns to 403,152 B).
 */
const MAX_PACKED_BYTES = 420_000;

interface PackReport {
  size: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  engines: { node: string };
  devDependencies: Record<string, string>;
  repository: { type: string; url: string };
  homepage: string;
  bugs: { url: string };
  keywords: string[];
  license: string;
};

test('package.json: where the project lives, and nothing that runs when someone installs it', () => {
  assert.deepEqual(manifest.repository, { type: 'git', url: 'git+https://github.com/socktune/socktune.git' });
  assert.equal(manifest.homepage, 'https://github.com/socktune/socktune#readme');
  assert.equal(manifest.bugs.url, 'https://github.com/socktune/socktune/issues');
  assert.ok(manifest.keywords.includes('tcp') && manifest.keywords.includes('benchmark'));
  assert.equal(manifest.license, 'MIT');
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 socktune contributors\n/);
  // Consumers' npm warns about (or refuses) install scripts; the build belongs to packing.
  for (const script of ['preinstall', 'install', 'postinstall', 'prepare'])
    assert.equal(manifest.scripts[script], undefined, `no "${script}" script`);
  assert.match(manifest.scripts.prepack ?? '', /npm run build/);
  assert.equal(manifest.engines.node, `>=${MINIMUM_NODE_VERSION.replace(/\.0$/, '')}`, 'engines and the version gate agree');
});

test('npm pack: the library, the CLI, the license and the library reference; no maps, images, benches, tests or sources; within the size budget', async (t) => {
  const copy = copyOfTree(t, { nodeModules: true });
  const env = await npmEnvironment(temporaryDirectory(t, 'pack'), NODE24_PATH);
  const packed = await run('npm', ['pack', '--dry-run', '--json'], { cwd: copy, env, timeoutMs: 120_000 });
  assert.equal(packed.code, 0, packed.stderr);
  const [report] = JSON.parse(packed.stdout) as [PackReport];
  const paths = report.files.map((file) => file.path);
  for (const path of [
    'bin/socktune.js',
    'dist/index.js',
    'dist/index.d.ts',
    'dist/cli/main.js',
    'dist/core/node-version.js',
    'LICENSE',
    'README.md',
    'package.json',
    'docs/errors.md',
    'docs/json-schema.md',
    'docs/schema/socktune-1.schema.json',
  ])
    assert.ok(paths.includes(path), `${path} is packed`);
  const unwanted = paths.filter((path) => /\.map$|\.png$|^(bench|test|testkit|src|scripts|test-artifacts|docs\/images)\//.test(path));
  assert.deepEqual(unwanted, []);
  assert.ok(report.size <= MAX_PACKED_BYTES, `packed size ${report.size} B is at most ${MAX_PACKED_BYTES} B`);
  // The library's reference travels with it; the rest of docs/ is read on the repository, which npm's package page resolves README's relative links against.
  assert.deepEqual(paths.filter((path) => path.startsWith('docs/')).sort(), [
    'docs/errors.md',
    'docs/json-schema.md',
    'docs/library.md',
    'docs/schema/socktune-1.schema.json',
  ]);
  t.diagnostic(`packed ${report.size} B in ${report.entryCount} files`);
});

test('npm publish --dry-run: publishable without a login, and nothing is published', async (t) => {
  const copy = copyOfTree(t, { nodeModules: true });
  const dir = temporaryDirectory(t, 'publish');
  // An empty user config: no token of whoever runs the tests can take part.
  const userconfig = join(dir, 'npmrc');
  writeFileSync(userconfig, '');
  const env = { ...(await npmEnvironment(dir, NODE24_PATH)), npm_config_userconfig: userconfig };
  // --ignore-scripts: the build that prepack runs is the pack test's; here only npm's own checks count.
  const published = await run('npm', ['publish', '--dry-run', '--ignore-scripts'], { cwd: copy, env, timeoutMs: 120_000 });
  const unreachable = registryUnreachable(published);
  if (unreachable) return t.skip(unreachable);
  assert.equal(published.code, 0, published.stderr);
  assert.match(published.stdout, /^\+ socktune@\d+\.\d+\.\d+$/m);
});
