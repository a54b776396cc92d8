import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { assertSupportedNodeVersion, isSupportedNodeVersion } from '../../src/core/node-version.ts';

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

const oldNode = ['/usr/bin/node', '/usr/local/bin/node'].find((path) => existsSync(path));

test(
  'the CLI on the system Node (older than 22.12) says which version it needs',
  { skip: oldNode ? false : 'no system Node installed' },
  async (t) => {
    const { stdout } = await run(oldNode!, ['--version']);
    if (isSupportedNodeVersion(stdout.trim())) return t.skip(`system Node ${stdout.trim()} is new enough`);
    const result = await run(oldNode!, [bin, 'info']).then(
      () => assert.fail('expected a non-zero exit'),
      (error: { code: number; stderr: string }) => error,
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /SOCKTUNE_ERR_NODE_VERSION: socktune needs Node\.js >= 22\.12\.0, found 20\./);
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
