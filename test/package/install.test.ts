// The ways people get socktune, each from the real tarball (`npm pack`) into a fresh directory:
// an application's dependency, a global CLI, and both on a system Node too old to run it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertSchema, startServer } from '../../testkit/cli.ts';
import {
  NODE24_PATH,
  OFFLINE_FIRST,
  OLD_NODE,
  OLD_NODE_VERSION,
  ROOT,
  SYSTEM_PATH,
  WITHOUT_OLD_NODE,
  copyOfTree,
  npmEnvironment,
  packTarball,
  registryUnreachable,
  run,
  temporaryDirectory,
  type Run,
} from '../../testkit/package.ts';

const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

const work = temporaryDirectory({ after }, 'install');
const copy = copyOfTree({ after }, { nodeModules: true, built: true });
let tarball: string;
let env24: NodeJS.ProcessEnv;

before(async () => {
  env24 = await npmEnvironment(work, NODE24_PATH);
  tarball = await packTarball(copy, work, env24, { built: true });
});

/** An install, or why it could not be made here (the registry unreachable for a dependency not in the cache). */
type Installed = { dir: string } | { skip: string };

/** Runs an npm install; a failure for want of the registry becomes a skip, any other fails the test. */
async function install(args: string[], cwd: string): Promise<Run | { skip: string }> {
  const result = await run('npm', [...args, ...OFFLINE_FIRST], { cwd, env: env24, timeoutMs: 60_000 });
  const unreachable = registryUnreachable(result);
  if (unreachable) return { skip: unreachable };
  assert.equal(result.code, 0, result.stderr);
  // npm lists dependencies whose install scripts it did not run; socktune itself has none.
  assert.doesNotMatch(result.stderr, /socktune@\S+ \(/);
  return result;
}

/** Memoizes a set-up that two tests share. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/** An application (`"type": "module"`) with socktune as its dependency, and a script that serves and connects. */
const application = once(async (): Promise<Installed> => {
  const dir = join(work, 'app');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
  const installed = await install(['install', tarball], dir);
  if ('skip' in installed) return installed;
  writeFileSync(
    join(dir, 'echo-once.js'),
    `import { createServer, connect } from 'socktune';
const server = createServer({ host: '127.0.0.1', port: 0, receiveBufferSize: 256 * 1024 }, 'echo');
const { port } = await server.listen();
const socket = await connect({ host: '127.0.0.1', port, sendBufferSize: 64 * 1024 });
const echoed = await new Promise((resolve, reject) => {
  socket.once('data', (data) => resolve(data.toString()));
  socket.once('error', reject);
  socket.write('ping');
});
socket.destroy();
await server.close();
console.log(JSON.stringify({ echoed, receiveBufferSize: server.effectiveSocketOptions().receiveBufferSize }));
`,
  );
  return { dir };
});

/** `npm install -g --prefix <dir>`: the CLI as `<dir>/bin/socktune`. */
const globalCli = once(async (): Promise<Installed> => {
  const dir = join(work, 'global');
  const installed = await install(['install', '--global', '--prefix', dir, tarball], work);
  return 'skip' in installed ? installed : { dir };
});

test('as a library: an application imports socktune, serves on port 0 and gets its bytes echoed', async (t) => {
  const app = await application();
  if ('skip' in app) return t.skip(app.skip);
  const result = await run(process.execPath, ['echo-once.js'], { cwd: app.dir, env: env24, timeoutMs: 15_000 });
  assert.equal(result.code, 0, result.stderr);
  const outcome = JSON.parse(result.stdout) as { echoed: string; receiveBufferSize: number };
  assert.equal(outcome.echoed, 'ping');
  // Linux doubles the request: the socket option went through the FFI (koffi) of the installed package.
  assert.ok(outcome.receiveBufferSize >= 256 * 1024, `receive buffer ${outcome.receiveBufferSize}`);
});

test('as a CLI: installed globally, socktune --version, then a one-off server and an rr run against it', async (t) => {
  const cli = await globalCli();
  if ('skip' in cli) return t.skip(cli.skip);
  const socktune = join(cli.dir, 'bin', 'socktune');
  const shown = await run(socktune, ['--version'], { cwd: work, env: env24 });
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(shown.stdout.trim(), version);

  const server = await startServer(['--one-off', '--json'], (args) =>
    spawn(socktune, args.slice(1), { cwd: work, env: env24, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  t.after(() => server.stop());
  const rr = await run(socktune, ['rr', '-c', '127.0.0.1', '-p', String(server.port), '-t', '1', '--json'], {
    cwd: work,
    env: env24,
    timeoutMs: 30_000,
  });
  assert.equal(rr.code, 0, rr.stderr);
  const document = JSON.parse(rr.stdout);
  assertSchema(document);
  assert.equal(document.command, 'rr');
  assert.ok(document.summary.requests > 0);
  assert.equal(await server.stop(), 0, 'the one-off server exits after its test');
});

test(
  'on the system Node (older than 22.12): one line each for the CLI and an application, and the advised npx command works',
  { skip: WITHOUT_OLD_NODE, timeout: 300_000 },
  async (t) => {
    const [cli, app] = await Promise.all([globalCli(), application()]);
    if ('skip' in cli) return t.skip(cli.skip);
    if ('skip' in app) return t.skip(app.skip);
    const found = OLD_NODE_VERSION!.replace(/^v/, '');
    const systemEnv = { ...env24, PATH: SYSTEM_PATH };

    const fromCli = await run(join(cli.dir, 'bin', 'socktune'), ['rr', '-c', '127.0.0.1', '-t', '1'], { cwd: work, env: systemEnv });
    assert.equal(fromCli.code, 1);
    const advice =
      /Run it with Node 24 through npx: `npx -y -p node@24 -p (\S+) socktune rr -c 127\.0\.0\.1 -t 1`, or upgrade Node to 22\.12 or newer\.\n$/.exec(
        fromCli.stderr,
      );
    assert.ok(advice, fromCli.stderr);
    assert.match(
      fromCli.stderr,
      new RegExp(
        `^socktune: SOCKTUNE_ERR_NODE_VERSION: socktune needs Node\\.js >= 22\\.12\\.0, found ${found.replaceAll('.', '\\.')}\\. `,
      ),
    );

    const fromApplication = await run(OLD_NODE!, ['echo-once.js'], { cwd: app.dir, env: systemEnv });
    assert.equal(fromApplication.code, 1);
    assert.match(
      fromApplication.stderr,
      new RegExp(
        `socktune needs Node\\.js >= 22\\.12\\.0, found ${found.replaceAll('.', '\\.')}\\. Upgrade the Node\\.js that runs this application to 22\\.12 or newer\\.`,
      ),
    );

    // The advice, followed as printed: the package it names is the one installed here.
    const advised = await run('npx', ['--yes', ...OFFLINE_FIRST, '-p', 'node@24', '-p', advice[1]!, 'socktune', 'info', '--json'], {
      cwd: work,
      env: systemEnv,
      // npx unpacks Node 24 (about 100 MB) into its own cache first: a minute and more on a busy machine.
      timeoutMs: 200_000,
    });
    const unreachable = registryUnreachable(advised);
    if (unreachable) return t.skip(unreachable);
    assert.equal(advised.code, 0, advised.stderr);
    assert.match(JSON.parse(advised.stdout).environment.node, /^v24\./);
  },
);
