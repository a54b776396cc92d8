import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { availableParallelism } from 'node:os';
import type { ConnsResult, CrrResult, MsgResult, RrResult } from '../../src/bench/results/result.ts';
import { assertSchema, runCli, serverEvents, startServer } from '../../testkit/cli.ts';
import { waitFor } from '../../testkit/helpers.ts';
import { decodeHistogram } from '../../src/bench/results/histogram.ts';
import { spawn } from 'node:child_process';
import { BIN } from '../../testkit/cli.ts';

function parsed<Result>(stdout: string): Result {
  const document = JSON.parse(stdout) as Result;
  assertSchema(document);
  return document;
}

/** Each interval's histogram holds exactly its completions: the threads' histograms of that interval were summed, none dropped. */
function assertIntervalsMerged(result: RrResult | CrrResult): void {
  assert.ok(result.intervals.length > 0);
  for (const interval of result.intervals) assert.equal(decodeHistogram(interval.histogram).totalCount, interval.requests);
}

test('rr --client-threads: one test at the server, one document whose counts and histograms are the threads’ summed', async (t) => {
  const server = await startServer(['--json']);
  t.after(() => server.stop());
  const run = await runCli([
    'rr',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-C',
    '5',
    '--client-threads',
    '2',
    '-t',
    '1',
    '-i',
    '0.25',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const result = parsed<RrResult>(run.stdout);
  assert.equal(result.options.clientThreads, 2);
  assert.equal(result.options.connections, 5);
  assert.equal(result.selfCheck.clientThreads?.length, 2);
  assert.ok(result.summary.requests > 0);
  assert.equal(result.summary.latency.count, result.summary.requests, 'the merged histogram holds every request');
  assertIntervalsMerged(result);
  assert.ok(result.summary.serverCpuPercent !== null, 'the server’s counters are the one test’s');
  // One test at the server, which read every request each thread sent.
  assert.ok(await waitFor(() => serverEvents(server, 'test').length === 1), server.stdout());
  const tests = serverEvents<{ outcome: string; bytesIn: number }>(server, 'test');
  assert.equal(tests.length, 1, server.stdout());
  assert.equal(tests[0]!.outcome, 'done');
  assert.equal(tests[0]!.bytesIn, result.summary.sentRequests * 64);
});

test('rr --client-threads prints each thread’s CPU; at most one thread a connection', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const run = await runCli(['rr', '-c', '127.0.0.1', '-p', String(server.port), '-C', '2', '--client-threads', '8', '-t', '0.5']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^ {11}client threads 2, CPU of one core each: [\d.]+%, [\d.]+%( \(threads? [\d, ]+ saturated\))?$/m);
  const single = await runCli([
    'rr',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-C',
    '2',
    '--client-threads',
    '1',
    '-t',
    '0.3',
    '--json',
  ]);
  assert.equal(single.code, 0, single.stderr);
  const result = parsed<RrResult>(single.stdout);
  assert.equal(result.options.clientThreads, undefined, 'one thread is the event loop alone');
  assert.equal(result.selfCheck.clientThreads, undefined);
});

test('crr --client-threads splits the concurrency; connect times are merged exactly too', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const run = await runCli([
    'crr',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-C',
    '3',
    '--client-threads',
    '2',
    '-t',
    '0.6',
    '-i',
    '0.2',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const result = parsed<CrrResult>(run.stdout);
  assert.equal(result.options.clientThreads, 2);
  assert.equal(result.options.concurrency, 3);
  assert.ok(result.summary.transactions > 0);
  assert.equal(result.summary.latency.count, result.summary.transactions);
  assert.equal(result.summary.connectLatency.count, result.summary.transactions);
  assertIntervalsMerged(result);
});

test('msg --client-threads: the server received every message the threads sent; echo latencies merged exactly', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const target = ['-c', '127.0.0.1', '-p', String(server.port), '-C', '3', '--client-threads', '2', '-t', '0.6', '-i', '0.2', '--json'];
  const oneWay = parsed<MsgResult>((await runCli(['msg', ...target])).stdout);
  assert.equal(oneWay.options.clientThreads, 2);
  assert.equal(oneWay.selfCheck.clientThreads?.length, 2);
  assert.ok(oneWay.summary.messagesSent > 0);
  assert.equal(oneWay.summary.messagesReceivedByServer, oneWay.summary.messagesSent - oneWay.summary.unsent);
  const echo = parsed<MsgResult>((await runCli(['msg', '--echo', ...target])).stdout);
  assert.equal(echo.summary.mode, 'echo');
  assert.ok(echo.summary.latency !== null && echo.summary.latency.count > 0);
  assert.ok(echo.intervals.length > 0);
  for (const interval of echo.intervals) assert.equal(decodeHistogram(interval.histogram!).totalCount, interval.messages);
});

test('conns --client-threads: each thread opens and holds its share; counts, connect times and the server’s count agree', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const run = await runCli([
    'conns',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '--target',
    '300',
    '--concurrency',
    '16',
    '--client-threads',
    '2',
    '--hold',
    '0.2',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const result = parsed<ConnsResult>(run.stdout);
  assert.equal(result.options.clientThreads, 2);
  assert.equal(result.summary.opened, 300);
  assert.equal(result.summary.stillOpen, 300);
  assert.equal(result.summary.connectLatency.count, 300);
  assert.equal(result.summary.server?.connections, 300);
  const single = parsed<ConnsResult>(
    (
      await runCli([
        'conns',
        '-c',
        '127.0.0.1',
        '-p',
        String(server.port),
        '--target',
        '50',
        '--client-threads',
        '1',
        '--hold',
        '0',
        '--json',
      ])
    ).stdout,
  );
  assert.equal(single.options.clientThreads, undefined);
  assert.equal(single.summary.opened, 50);
});

test('rr --raw --client-threads drives any echo service from every thread, open loop at the total rate', async (t) => {
  const sockets = new Set<net.Socket>();
  const echo = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket)).on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    echo.close();
  });
  const port = (echo.address() as net.AddressInfo).port;
  const run = await runCli([
    'rr',
    '--raw',
    '-c',
    `127.0.0.1:${port}`,
    '-C',
    '4',
    '--client-threads',
    '2',
    '--rate',
    '400',
    '-t',
    '1',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const result = parsed<RrResult>(run.stdout);
  assert.equal(result.options.rate, 400);
  assert.equal(result.summary.mode, 'open-loop');
  // 400/s for about a second, from two threads of 200/s each: neither thread sent the whole rate.
  assert.ok(result.summary.sentRequests >= 300 && result.summary.sentRequests <= 500, String(result.summary.sentRequests));
  assert.equal(result.summary.serverCpuPercent, null);
});

test('a server that vanishes mid-test ends a threaded run with its error, not a hang', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const client = spawn(
    process.execPath,
    [BIN, 'rr', '-c', '127.0.0.1', '-p', String(server.port), '-C', '4', '--client-threads', '2', '-t', '30', '-i', '0.1'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.after(() => client.kill('SIGKILL'));
  let output = '';
  const ended = new Promise<number | null>((resolve) => client.once('exit', resolve));
  // Once it measures (an interval printed), the server goes.
  const onOutput = (chunk: Buffer): void => {
    output += chunk.toString();
    if (/^\[\d+\.\d+-\d+\.\d+ s\]/m.test(output) && server.child.exitCode === null) server.child.kill('SIGKILL');
  };
  client.stdout.on('data', onOutput);
  client.stderr.on('data', onOutput);
  const code = await ended;
  assert.notEqual(code, 0, output);
  assert.match(output, /SOCKTUNE_ERR_PEER_GONE|data connection failed|server closed a data connection/);
});

test('--start-at with client threads: the threads are set up while it waits, and the traffic starts at the time, not before', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const startAt = Date.now() + 3000;
  const run = await runCli([
    'rr',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-C',
    '2',
    '--client-threads',
    '2',
    '-t',
    '0.3',
    '--start-at',
    String(startAt),
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const result = parsed<RrResult & { startAt: number }>(run.stdout);
  assert.equal(result.startAt, startAt);
  assert.ok(Date.parse(result.startedAt) >= startAt, `${result.startedAt} is before ${new Date(startAt).toISOString()}`);
  assert.doesNotMatch(run.stderr, /later than --start-late-tolerance/);
});

test('more client threads than CPUs: as many as the CPUs, and said', async (t) => {
  const server = await startServer([]);
  t.after(() => server.stop());
  const cpus = availableParallelism();
  const run = await runCli([
    'rr',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-C',
    String(cpus + 2),
    '--client-threads',
    String(cpus + 1),
    '-t',
    '0.3',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stderr,
    new RegExp(`note: --client-threads ${cpus + 1}: this process may run on ${cpus} CPU\\(s\\); using ${cpus} thread\\(s\\)`),
  );
  const result = parsed<RrResult>(run.stdout);
  assert.equal(result.options.clientThreads ?? 1, cpus);
});

test('--client-threads is checked before anything starts, and rr -u does not take it', async () => {
  for (const [args, message] of [
    [['rr', '-c', '127.0.0.1', '--client-threads', '0'], /--client-threads/],
    [['crr', '-c', '127.0.0.1', '--client-threads', 'many'], /--client-threads/],
    [['rr', '-c', '127.0.0.1', '--client-threads', '0x2'], /--client-threads takes a whole number/],
    [['rr', '-u', '-c', '127.0.0.1', '--client-threads', '2'], /rr -u does not take --client-threads/],
  ] as const) {
    const run = await runCli([...args]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
  }
});
