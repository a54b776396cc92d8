/**
 * The single executable (npm run build:exe), built here into a temporary directory: a build takes
 * a few seconds, less than telling whether dist-exe/ is older than its sources, and never tests a
 * stale binary. It runs with nothing but itself: PATH is an empty directory, so neither the pinned
 * Node nor the system's /usr/bin/node can stand in for the Node inside it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, startServer } from '../../testkit/cli.ts';
import { ROOT, run } from '../../testkit/package.ts';

const BUILD = join(ROOT, 'scripts', 'exe', 'build.ts');
const PINNED_NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const skip =
  process.platform !== 'linux'
    ? `single executables are built for Linux, this is ${process.platform}`
    : !['x64', 'arm64'].includes(process.arch)
      ? `the build knows linux-x64 and linux-arm64, this is linux-${process.arch}`
      : !existsSync(PINNED_NODE)
        ? 'the pinned Node (node_modules/node) is not installed: run npm ci'
        : false;

describe('single executable (npm run build:exe)', { skip }, () => {
  let dir: string;
  let exe: string;
  let cache: string;
  let env: NodeJS.ProcessEnv;
  let buildReport: string;
  const socktune = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
    run(exe, args, { cwd: dir, env: { ...env, ...extraEnv }, timeoutMs: 30_000 });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'socktune-exe-test-'));
    exe = join(dir, 'socktune');
    cache = join(dir, 'cache');
    const emptyPath = join(dir, 'empty-path');
    mkdirSync(emptyPath);
    mkdirSync(join(dir, 'home'));
    env = { PATH: emptyPath, HOME: join(dir, 'home'), SOCKTUNE_EXE_CACHE: cache };
    const built = await run(process.execPath, [BUILD, '--output', exe], { cwd: ROOT, env: process.env, timeoutMs: 120_000 });
    assert.equal(built.code, 0, `build:exe failed:\n${built.stdout}${built.stderr}`);
    buildReport = built.stdout.trim();
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('--version with no node in PATH; three copies started at once unpack one tree between them', async (t) => {
    t.diagnostic(buildReport);
    const runs = await Promise.all([1, 2, 3].map(() => socktune(['--version'])));
    for (const result of runs) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), VERSION);
    }
    // Staging directories (.exe-…) of the copies that lost the race are gone.
    assert.deepEqual(
      readdirSync(cache).map((entry) => entry.replace(/[0-9a-f]{16}$/, 'HASH')),
      ['exe-HASH'],
    );
  });

  test('server --json, and rr in every I/O model: worker threads start from the unpacked tree, koffi loads in each', async (t) => {
    const server = await startServer(['--json'], (args) => spawn(exe, args.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    try {
      for (const ioModel of [['loop'], ['workers', '--workers', '2'], ['thread-per-conn'], ['thread-per-conn', '--blocking']]) {
        const args = ['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '1', '-w', '64K', '--json', '--io-model', ...ioModel];
        const result = await socktune(args);
        assert.equal(result.code, 0, `${ioModel.join(' ')}: ${result.stderr}`);
        const document = JSON.parse(result.stdout);
        assertSchema(document);
        assert.equal(document.options.server.ioModel, ioModel[0]);
        assert.ok(document.summary.requests > 0, `${ioModel.join(' ')}: ${document.summary.requests} requests`);
        // SO_RCVBUF through koffi on both ends (the kernel doubles what it is asked for).
        assert.equal(document.effective.client.receiveBufferSize, 128 * 1024);
        assert.equal(document.effective.server.receiveBufferSize, 128 * 1024);
        t.diagnostic(`${ioModel.join(' ')}: ${document.summary.requests} requests`);
      }
      // A UDP test's threads start from their own entry in the tree.
      const udp = await socktune([
        'rr',
        '-u',
        '-c',
        '127.0.0.1',
        '-p',
        String(server.port),
        '-t',
        '0.5',
        '--json',
        '--io-model',
        'workers',
        '--workers',
        '2',
      ]);
      assert.equal(udp.code, 0, udp.stderr);
      assert.ok(JSON.parse(udp.stdout).summary.requests > 0);
      // And stream -u's sender threads (one datagram per call) from theirs.
      const plain = await socktune(['stream', '-u', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.5', '--no-batch', '--json']);
      assert.equal(plain.code, 0, plain.stderr);
      assert.ok(JSON.parse(plain.stdout).summary.udp.sent > 0);
    } finally {
      await server.stop();
    }
  });

  test("tune's local server: started as `process.execPath script`, the executable runs its own script", async () => {
    const [tree] = readdirSync(cache);
    const script = join(cache, tree!, 'dist', 'bench', 'servers', 'control', 'local-server-main.js');
    const child = spawn(exe, [script], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const firstLine = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => reject(new Error(`no address printed: ${stderr}`)), 15_000);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (!stdout.includes('\n')) return;
        clearTimeout(timer);
        resolve(stdout.split('\n')[0]!);
      });
    });
    const address = JSON.parse(firstLine) as { address: string; port: number };
    assert.equal(address.address, '127.0.0.1');
    assert.ok(address.port > 0);
    // Its stdin closing is how tune ends it.
    child.stdin.end();
    assert.equal(await exited, 0, stderr);
  });

  test('a cache directory others can write to is refused: the tree holds code the executable runs', async () => {
    const shared = join(dir, 'shared-cache');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const result = await socktune(['--version'], { SOCKTUNE_EXE_CACHE: shared });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^socktune: cannot unpack its runtime files \(.*is writable by others \(mode 777\)\); set SOCKTUNE_EXE_CACHE/,
    );
    assert.deepEqual(readdirSync(shared), []);
  });
});
