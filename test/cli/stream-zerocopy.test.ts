import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { runStream } from '../../src/bench/engines/stream.ts';
import { assertSchema, runCli, startServer } from '../../testkit/cli.ts';

interface ZeroCopyDocument {
  options: { sender?: string; bitrate?: number };
  summary: {
    bitsPerSecond: number;
    sender: { bytes: number };
    receiver: { bytes: number };
    verify: { bytesChecked: number; bytesCorrupted: number; bytesLost: number } | null;
  };
  selfCheck: { cpuPercent: number; busiestThreadCpuPercent?: number };
  intervals: { streams?: { sentBytes: number }[] }[];
}

test('stream -Z sends with sendfile: every byte arrives in the pattern --verify checks, on -P connections, and the JSON says which sender', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const run = await runCli([
    'stream',
    '-c',
    '127.0.0.1',
    '-p',
    String(server.port),
    '-t',
    '0.5',
    '-i',
    '0.5',
    '-Z',
    '-P',
    '3',
    '--verify',
    '--json',
  ]);
  assert.equal(run.code, 0, run.stderr);
  const document = JSON.parse(run.stdout) as ZeroCopyDocument;
  assertSchema(document);
  assert.equal(document.options.sender, 'sendfile');
  const { sender, receiver, verify } = document.summary;
  assert.ok(sender.bytes > 0);
  // The file wraps around many times in half a second on loopback: a seam that broke the pattern would show here.
  assert.deepEqual(verify, { bytesChecked: sender.bytes, bytesCorrupted: 0, bytesLost: 0 });
  assert.equal(receiver.bytes, sender.bytes);
  assert.ok(
    document.intervals.at(-1)!.streams!.every((stream) => stream.sentBytes > 0),
    'each connection sent',
  );
  assert.equal(typeof document.selfCheck.busiestThreadCpuPercent, 'number');

  const text = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.3', '-Z']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /│ sender +│ client +│ [\d.]+ [KMG]iB/);
});

test('stream -Z -b paces each connection below its rate, as without -Z', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const run = await runCli(['stream', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.5', '-Z', '-P', '2', '-b', '20M', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const document = JSON.parse(run.stdout) as ZeroCopyDocument;
  assert.equal(document.options.bitrate, 20e6);
  // Catching up is capped at 2 ms, and one chunk (128 KiB) may go ahead: a slow machine only makes the rate lower.
  const ceiling = (2 * (20e6 * 0.5 + 8 * 128 * 1024 + 20e6 * 0.002)) / 0.5;
  assert.ok(document.summary.bitsPerSecond > 0 && document.summary.bitsPerSecond <= ceiling, `${document.summary.bitsPerSecond} bit/s`);
});

test('stream -Z against a peer that resets mid-test ends with the reason, not a hang', async (t) => {
  // A raw peer that reads a little, then resets the connection.
  const peer = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.resetAndDestroy());
  });
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => peer.close(resolve)));
  const port = (peer.address() as net.AddressInfo).port;
  const run = await runCli(['stream', '--raw', '-c', `127.0.0.1:${port}`, '-t', '5', '-Z'], 30_000);
  assert.notEqual(run.code, 0);
  assert.match(run.stderr, /ECONNRESET|EPIPE|reset|closed/i);
});

test('stream -Z closes every descriptor it opened: the duplicates and the pattern file', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const openFds = (): number => readdirSync('/proc/self/fd').length;
  // The first run opens what this process keeps for good (the FFI's library, the threads' plumbing).
  let before = 0;
  for (let round = 0; round < 4; round++) {
    if (round === 1) before = openFds();
    const result = await runStream({
      target: { host: '127.0.0.1', port: server.port },
      durationSec: 0.2,
      omitSec: 0,
      intervalSec: 1,
      writeSize: 64 * 1024,
      parallel: 2,
      direction: 'bidir',
      verify: false,
      zeroCopy: true,
      client: {},
      server: {},
    });
    assert.equal(result.options.sender, 'sendfile');
    assert.ok(result.summary.sender!.bytes > 0);
  }
  assert.equal(openFds(), before);
});

test('-Z is refused where this client does not send TCP: -R, -u, --iperf3', async () => {
  for (const [args, message] of [
    [['-R'], /with -R the server sends: drop -Z, or use --bidir/],
    [['-u'], /does not take -Z/],
    [['--iperf3'], /-Z goes with a socktune server or --raw/],
  ] as const) {
    const run = await runCli(['stream', '-c', '127.0.0.1', '-p', '1', '-Z', ...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
});
