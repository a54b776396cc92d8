import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSchema, runCli, startPortPrinter } from '../../testkit/cli.ts';

/** --raw drives services socktune does not control: here the classic Python echo servers a developer tunes by hand. */
const SERVERS = [
  { name: 'Python thread-per-client', script: 'echo_threads.py' },
  { name: 'Python asyncio', script: 'echo_asyncio.py' },
];

for (const { name, script } of SERVERS) {
  describe(`--raw against a ${name} echo server`, () => {
    let server: { port: number; stop: () => Promise<void> };
    before(async () => {
      server = await startPortPrinter('python3', [new URL(`../../testkit/fixtures/${script}`, import.meta.url).pathname]);
    });
    after(() => server.stop());

    test('rr --raw: every request answered, client-side numbers only', async () => {
      const result = await runCli([
        'rr',
        '--raw',
        '-c',
        `127.0.0.1:${server.port}`,
        '-t',
        '1',
        '-C',
        '4',
        '--size',
        '512',
        '-w',
        '64K',
        '--json',
      ]);
      assert.equal(result.code, 0, result.stderr);
      const document = JSON.parse(result.stdout);
      assertSchema(document);
      assert.ok(document.summary.requests > 100);
      assert.equal(document.summary.serverCpuPercent, null);
      assert.equal(document.effective.server, null);
      assert.equal(document.environment.server, null);
      assert.equal(document.effective.client.receiveBufferSize, 131072);
    });

    test('rr --raw --payload: a real request and its expected response size', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'socktune-'));
      const payload = join(dir, 'request.txt');
      await writeFile(payload, 'GET / HTTP/1.0\r\n\r\n');
      const result = await runCli([
        'rr',
        '--raw',
        '-c',
        `127.0.0.1:${server.port}`,
        '-t',
        '0.5',
        '--payload',
        payload,
        '--response-size',
        '18',
        '--json',
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.ok(JSON.parse(result.stdout).summary.requests > 10);
    });

    test('crr --raw: connect, request, response, close', async () => {
      const result = await runCli(['crr', '--raw', '-c', `127.0.0.1:${server.port}`, '-t', '1', '-C', '2', '--json']);
      assert.equal(result.code, 0, result.stderr);
      const document = JSON.parse(result.stdout);
      assertSchema(document);
      assert.ok(document.summary.transactions > 10);
      assert.deepEqual(document.summary.failures, {});
    });

    test('tune --raw: client-side knobs only, and the report says so', async () => {
      const result = await runCli(
        [
          'tune',
          '--raw',
          '-c',
          `127.0.0.1:${server.port}`,
          '--quick',
          '--duration-per-trial',
          '0.05',
          '--conns',
          '2',
          '--no-report',
          '--json',
        ],
        120_000,
      );
      assert.equal(result.code, 0, result.stderr);
      const document = JSON.parse(result.stdout);
      assertSchema(document);
      const [scenario] = document.scenarios;
      assert.ok(
        scenario.ranking.every((entry: { config: { ioModel: string } }) => entry.config.ioModel === 'loop'),
        'the server model is not ours to choose',
      );
      assert.ok(
        scenario.ranking.some((entry: { config: { noDelay: boolean } }) => !entry.config.noDelay),
        'Nagle is swept',
      );
      assert.equal(scenario.recommendation.createServer, null);
      assert.match(scenario.recommendation.cli, /^socktune rr --raw -c HOST:PORT /);
      assert.match(document.options.targetLabel, /only the client side was tuned/);
    });

    test('conns --raw and stream --raw', async () => {
      const conns = await runCli(['conns', '--raw', '-c', `127.0.0.1:${server.port}`, '--target', '200', '--hold', '0.3', '--json']);
      assert.equal(conns.code, 0, conns.stderr);
      const document = JSON.parse(conns.stdout);
      assertSchema(document);
      assert.equal(document.summary.opened, 200);
      assert.equal(document.summary.server, null);
      const stream = await runCli(['stream', '--raw', '-c', `127.0.0.1:${server.port}`, '-t', '0.5', '--json']);
      assert.equal(stream.code, 0, stream.stderr);
      const streamed = JSON.parse(stream.stdout);
      assertSchema(streamed);
      assert.ok(streamed.summary.sender.bytes > 0);
      assert.equal(streamed.summary.receiver, null);
    });
  });
}

test('--raw usage: needs a port; --verify and --response-size need the right mode', async () => {
  const noPort = await runCli(['rr', '--raw', '-c', '127.0.0.1']);
  assert.equal(noPort.code, 2);
  assert.match(noPort.stderr, /--raw needs the service port/);
  const verify = await runCli(['stream', '--raw', '-c', '127.0.0.1:9', '--verify']);
  assert.equal(verify.code, 2);
  assert.match(verify.stderr, /--verify needs a socktune server/);
  const responseSize = await runCli(['rr', '-c', '127.0.0.1', '--response-size', '10']);
  assert.equal(responseSize.code, 2);
  assert.match(responseSize.stderr, /use them with --raw/);
});
