import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSchema, runCli, runInProcess, startServer } from '../../testkit/cli.ts';

test('rr -u against a socktune server: UDP ping-pong, every request answered, lost or still counted by the server', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const run = await runCli(['rr', '-u', '-c', '127.0.0.1', '-p', String(server.port), '-t', '1', '-C', '2', '--depth', '4', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assertSchema(result);
  const { summary } = result;
  assert.equal(result.options.protocol, 'udp');
  assert.ok(summary.requests > 10, `${summary.requests} requests`);
  assert.equal(summary.latency.count, summary.requests);
  assert.equal(summary.udp.foreign, 0);
  // Each datagram the client sent reached the server or was lost on the way; each reply it sent came back or was lost.
  assert.ok(summary.udp.serverReceived <= summary.sentRequests, JSON.stringify(summary.udp));
  assert.ok(summary.udp.serverReplied <= summary.udp.serverReceived);
  assert.ok(summary.requests + summary.udp.lost <= summary.udp.serverReplied + summary.udp.lost);
  assert.ok(summary.serverCpuPercent !== null);
});

test('rr -u on a server thread model: each thread echoes what its socket receives, and the counts add up', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const run = await runCli([
    'rr',
    '-u',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-t',
    '1',
    '-C',
    '3',
    '--io-model',
    'thread-per-conn',
    '--workers',
    '2',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const { summary, options } = JSON.parse(run.stdout);
  assert.equal(options.server.ioModel, 'thread-per-conn');
  assert.ok(summary.requests > 10, `${summary.requests} requests`);
  assert.ok(
    summary.udp.serverReplied <= summary.udp.serverReceived && summary.udp.serverReceived <= summary.sentRequests,
    JSON.stringify(summary.udp),
  );
  assert.ok(summary.requests <= summary.udp.serverReplied, JSON.stringify(summary));
});

test('rr -u against a server whose --max-rate is spent: the replies it does not send are counted lost, never waited for', async (t) => {
  const server = await startServer(['--max-rate', '100K']);
  t.after(() => server.stop());
  const run = await runCli([
    'rr',
    '-u',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-t',
    '2',
    '--size',
    '1400',
    '--depth',
    '4',
    '--reply-timeout',
    '0.2',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const { udp } = JSON.parse(run.stdout).summary;
  assert.ok(udp.lost > 0, JSON.stringify(udp));
  assert.ok(udp.serverReplied < udp.serverReceived, JSON.stringify(udp));
  assert.equal(udp.replyTimeoutMs, 200);
});

test('rr -u with receive buffers too small for its depth: the sockets’ own drop counters say where requests and replies went', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const base = ['rr', '-u', '-c', '127.0.0.1', '-p', String(server.port), '-t', '1', '--size', '1400', '--depth', '64', '--rcvbuf', '4K'];
  const run = await runCli([...base, '--reply-timeout', '0.1', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const { udp } = JSON.parse(run.stdout).summary;
  // 64 requests of 1400 B at once into a buffer of a few: the server's socket drops most of each burst, and counts it.
  assert.ok(udp.serverReceiveBufferDrops > 0, JSON.stringify(udp));
  assert.ok(typeof udp.receiveBufferDrops === 'number' && udp.receiveBufferDrops >= 0, JSON.stringify(udp));
  assert.ok(udp.lost > 0, JSON.stringify(udp));
  const text = await runCli([...base, '--reply-timeout', '0.1']);
  assert.match(text.stdout, /dropped {4}by a full receive buffer: the server's socket \d+ requests.* \(raise --rcvbuf\)/);
});

test('rr -u refuses what only TCP does, and a request smaller than its header; --reply-timeout goes with -u', async () => {
  const rate = await runInProcess(['rr', '-u', '--rate', '100', '-c', '127.0.0.1']);
  assert.equal(rate.code, 2);
  assert.match(rate.stderr, /rr -u does not take --rate yet/);
  const raw = await runInProcess(['rr', '-u', '--raw', '-c', '127.0.0.1:7']);
  assert.match(raw.stderr, /--raw \(UDP peers: a socktune server, or --sockperf\)/);
  const small = await runInProcess(['rr', '-u', '--size', '20', '-c', '127.0.0.1']);
  assert.match(small.stderr, /--size for rr -u is 40 to 65507 bytes/);
  const timeout = await runInProcess(['rr', '--reply-timeout', '1', '-c', '127.0.0.1']);
  assert.match(timeout.stderr, /--reply-timeout goes with -u/);
});
