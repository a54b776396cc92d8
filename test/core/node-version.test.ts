import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { assertSupportedNodeVersion, detectRunContext, isSupportedNodeVersion, nodeVersionAdvice } from '../../src/core/node-version.ts';

const run = promisify(execFile);
const bin = new URL('../../bin/socktune.js', import.meta.url).pathname;

test('node version gate compares versions numerically', () => {
  assert.equal(isSupportedNodeVersion('22.12.0'), true);
  assert.equal(isSupportedNodeVersion('v24.21.0'), true);
  assert.equal(isSupportedNodeVersion('22.11.9'), false);
  assert.equal(isSupportedNodeVersion('20.20.2'), false);
  assert.equal(isSupportedNodeVersion('100.0.0'), true);
  assert.throws(() => assertSupportedNodeVersion('20.20.2'), {
    code: 'SOCKTUNE_ERR_NODE_VERSION',
    message: /needs Node\.js >= 22\.12\.0, found 20\.20\.2/,
  });
});

test('the old-Node advice fits where socktune runs: a clone, an installed CLI, an application', () => {
  const pinnedMajor = /\d+/.exec(
    (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { devDependencies: { node: string } })
      .devDependencies.node,
  )![0];
  assert.equal(
    nodeVersionAdvice({ kind: 'clone', pinnedNode: true, args: ['tune', '--quick'] }),
    `This clone pins Node ${pinnedMajor} as a devDependency: run \`npx socktune tune --quick\` or \`npm test\`, which use it.`,
  );
  assert.equal(
    nodeVersionAdvice({ kind: 'clone', pinnedNode: false }),
    `Run \`npm ci\` first (it installs the Node ${pinnedMajor} this clone pins), then \`npx socktune <command>\` or \`npm test\`.`,
  );
  assert.equal(
    nodeVersionAdvice({ kind: 'cli', args: ['rr', '-c', '198.18.0.2', '--json'], packageRoot: '/usr/lib/node_modules/socktune' }),
    'Run it with Node 24 through npx: `npx -y -p node@24 -p /usr/lib/node_modules/socktune socktune rr -c 198.18.0.2 --json`, or upgrade Node to 22.12 or newer.',
  );
  assert.equal(nodeVersionAdvice({ kind: 'library' }), 'Upgrade the Node.js that runs this application to 22.12 or newer.');
  // The command repeats the arguments as a shell reads them back.
  assert.match(
    nodeVersionAdvice({ kind: 'cli', args: ['stream', '-c', 'a host', "it's", ''], packageRoot: '/opt/my tools/socktune' }),
    /-p '\/opt\/my tools\/socktune' socktune stream -c 'a host' 'it'\\''s' ''`/,
  );
  assert.throws(() => assertSupportedNodeVersion('20.20.2', { kind: 'library' }), {
    message: 'socktune needs Node.js >= 22.12.0, found 20.20.2. Upgrade the Node.js that runs this application to 22.12 or newer.',
  });
});

test('where socktune runs is told by its package root: sources outside node_modules make a clone', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'socktune-context-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const clone = join(dir, 'socktune');
  mkdirSync(join(clone, 'src'), { recursive: true });
  assert.deepEqual(detectRunContext(['info'], clone), { kind: 'clone', pinnedNode: false, args: ['info'] });
  mkdirSync(join(clone, 'node_modules', 'node'), { recursive: true });
  writeFileSync(join(clone, 'node_modules', 'node', 'package.json'), '{}');
  assert.deepEqual(detectRunContext(undefined, clone), { kind: 'clone', pinnedNode: true });

  const installed = join(dir, 'app', 'node_modules', 'socktune');
  mkdirSync(join(installed, 'src'), { recursive: true });
  assert.deepEqual(detectRunContext(['info'], installed), { kind: 'cli', args: ['info'], packageRoot: installed });
  assert.deepEqual(detectRunContext(undefined, installed), { kind: 'library' });
  // An unpacked tarball outside node_modules has no sources: installed, not a clone.
  const unpacked = join(dir, 'package');
  mkdirSync(join(unpacked, 'dist'), { recursive: true });
  assert.deepEqual(detectRunContext(['info'], unpacked), { kind: 'cli', args: ['info'], packageRoot: unpacked });
});

const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((path) => existsSync(path));

test(
  'the CLI on the system Node (older than 22.12) says which version it needs and what to run instead',
  { skip: oldNode ? false : 'no system Node installed' },
  async (t) => {
    const { stdout } = await run(oldNode!, ['--version']);
    if (isSupportedNodeVersion(stdout.trim())) return t.skip(`system Node ${stdout.trim()} is new enough`);
    const result = await run(oldNode!, [bin, 'info']).then(
      () => assert.fail('expected a non-zero exit'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 1);
    // This tree is a clone with its pinned Node installed: the advice is to run through it.
    assert.match(
      result.stderr,
      /^socktune: SOCKTUNE_ERR_NODE_VERSION: socktune needs Node\.js >= 22\.12\.0, found 20\.\d+\.\d+\. This clone pins Node 24 as a devDependency: run `npx socktune info` or `npm test`, which use it\.\n$/,
    );
  },
);

test('socket options that need FFI give SOCKTUNE_ERR_UNSUPPORTED_PLATFORM off Linux', async () => {
  const libcUrl = new URL('../../src/core/libc.ts', import.meta.url).href;
  const script = `Object.defineProperty(process, 'platform', { value: 'darwin' });
    const { libc } = await import(${JSON.stringify(libcUrl)});
    try { libc(); } catch (error) { console.log(error.code + ' ' + error.message); }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  assert.match(stdout, /^SOCKTUNE_ERR_UNSUPPORTED_PLATFORM socket options through setsockopt need Linux; this is darwin/);
});
