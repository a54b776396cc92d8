import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { assertSchema, runCli, runInProcess, startServer, type RunningServer } from '../../testkit/cli.ts';
import { freePort, waitForListening } from '../../testkit/helpers.ts';
import { impairedPath } from '../../testkit/udp-impairment.ts';

let server: RunningServer;
before(async () => {
  server = await startServer();
});
after(() => server?.stop());

/** `stream -u` against this file's server for half a second, with `flags`. */
const udpRun = (...flags: string[]) => runCli(['stream', '-u', '-c', '127.0.0.1', '-p', String(server.port), '-t', '0.5', ...flags]);

test('stream -u: what the client sent is what the server counted or says it lost, and why; a schema-valid result', async () => {
  const run = await udpRun('-b', '20M', '-P', '2', '--json');
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assertSchema(result);
  const { udp } = result.summary;
  assert.equal(result.options.protocol, 'udp');
  assert.equal(result.options.bitrate, 20e6);
  assert.equal(udp.datagramBytes, 1460, "iperf3's default datagram size");
  assert.ok(udp.sent > 100, `${udp.sent} datagrams sent`);
  assert.equal(udp.received + udp.lost, udp.sent);
  assert.equal(result.summary.sender.bytes, udp.sent * 1460);
  assert.equal(udp.duplicates, 0);
  assert.equal(udp.foreign, 0);
  // Loopback loses nothing on the way: whatever is missing, the server's socket dropped, or it was still queued at the end.
  assert.ok(udp.receiveBufferDrops !== null && udp.receiveBufferDrops <= udp.lost, JSON.stringify(udp));
});

test('stream -u with a receive buffer too small for the burst: the loss is put down to the server socket’s drops', async () => {
  // One datagram per system call: the kernel counts each drop as one datagram.
  const plain = await udpRun('-b', '0', '--rcvbuf', '4K', '-l', '1400', '--no-batch');
  assert.equal(plain.code, 0, plain.stderr);
  const lost =
    /lost\s+(\d+) of (\d+) \([\d.]+%\): (\d+) dropped by the server's receive buffer \(SO_RCVBUF [\d.]+ KiB\): at -b 0 the sender outruns/.exec(
      plain.stdout,
    );
  assert.ok(lost, plain.stdout);
  assert.ok(Number(lost[3]) > 0 && Number(lost[3]) <= Number(lost[1]), plain.stdout);
  assert.match(plain.stdout, /batching\s+one datagram per send, one datagram per receive/);
});

test('stream -u on a server thread model: a SO_REUSEPORT socket per thread, every stream counted, the group’s drops summed', async () => {
  const run = await udpRun(
    '-b',
    '0',
    '-P',
    '4',
    '--rcvbuf',
    '4K',
    '-l',
    '1400',
    '--no-batch',
    '--io-model',
    'workers',
    '--workers',
    '2',
    '--json',
  );
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  const { udp } = result.summary;
  assert.equal(result.options.server.ioModel, 'workers');
  assert.equal(udp.received + udp.lost, udp.sent);
  assert.equal(udp.duplicates, 0);
  // The threads read what was queued before they stopped: on loopback every datagram lost was a drop of one of the port's sockets.
  assert.ok(udp.lost > 0, JSON.stringify(udp));
  assert.equal(udp.receiveBufferDrops, udp.lost, JSON.stringify(udp));
});

test('stream -u batches where the kernel segments and coalesces (UDP GSO/GRO): counted per datagram, drops per coalesced packet', async () => {
  const batched = await udpRun('-b', '0', '--rcvbuf', '4K', '-l', '1400', '--json');
  assert.equal(batched.code, 0, batched.stderr);
  const { udp } = JSON.parse(batched.stdout).summary;
  assert.ok(udp.datagramsPerSend > 1 && udp.datagramsPerReceive > 1, JSON.stringify(udp));
  assert.equal(udp.received + udp.lost, udp.sent);
  assert.equal(udp.duplicates, 0, 'each segment of a coalesced receive counted once');
  assert.equal(udp.outOfOrder, 0);
  // A dropped packet held a whole send: never more datagrams than drops × segments per send.
  assert.ok(udp.receiveBufferDrops > 0 && udp.lost <= udp.receiveBufferDrops * Math.round(udp.datagramsPerSend), JSON.stringify(udp));
  const text = await udpRun('-b', '0', '--rcvbuf', '4K', '-l', '1400');
  assert.match(
    text.stdout,
    /dropped by the server's receive buffer \(SO_RCVBUF [\d.]+ KiB\) \(an estimate: the socket dropped \d+ packets, each up to \d+ coalesced datagrams\)/,
  );
  assert.match(text.stdout, /batching\s+[\d.]+ datagrams per send \(UDP GSO\), [\d.]+ datagrams per receive \(UDP GRO\)/);
});

test('stream -u -R: the server sends to the client’s sockets; what it sent is counted here or lost, and a small client buffer is named as the cause', async () => {
  const run = await udpRun('-R', '-b', '20M', '-P', '2', '--json');
  assert.equal(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  assertSchema(result);
  const { udp } = result.summary;
  assert.equal(result.summary.direction, 'reverse');
  assert.equal(result.summary.sender.side, 'server');
  assert.ok(udp.sent > 100, `${udp.sent} datagrams sent by the server`);
  assert.equal(udp.received + udp.lost, udp.sent);
  assert.ok(udp.receiveBufferDrops !== null && udp.receiveBufferDrops <= udp.lost, JSON.stringify(udp));
  const small = await udpRun('-R', '-b', '0', '--rcvbuf', '4K');
  assert.equal(small.code, 0, small.stderr);
  const lost = /lost\s+(\d+) of \d+ \([\d.]+%\): (\d+) dropped by the client's receive buffer/.exec(small.stdout);
  assert.ok(lost && Number(lost[2]) > 0 && Number(lost[2]) <= Number(lost[1]), small.stdout);
});

test('stream -u --batch N: at most N datagrams per system call, as counted', async () => {
  const run = await udpRun('-b', '0', '-l', '1400', '--batch', '8', '--json');
  assert.equal(run.code, 0, run.stderr);
  const { udp } = JSON.parse(run.stdout).summary;
  assert.ok(udp.datagramsPerSend > 1 && udp.datagramsPerSend <= 8, JSON.stringify(udp));
  const both = await runInProcess(['stream', '-u', '--no-batch', '--batch', '4', '-c', '127.0.0.1']);
  assert.match(both.stderr, /--no-batch is --batch 1: give one of them/);
  const tcp = await runInProcess(['stream', '--batch', '4', '-c', '127.0.0.1']);
  assert.match(tcp.stderr, /--batch goes with -u/);
  const big = await runInProcess(['stream', '-u', '--batch', '65', '-c', '127.0.0.1']);
  assert.match(big.stderr, /--batch/);
  assert.equal(big.code, 2);
});

test('stream -u refuses what it does not do yet, and a datagram smaller than its header', async () => {
  const refused = await runInProcess(['stream', '-u', '--bidir', '--verify', '-c', '127.0.0.1']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /stream -u sends datagrams between this client and a socktune server or, with --iperf3, a stock iperf3/);
  assert.match(refused.stderr, /it does not take --bidir, --verify yet/);
  const iperf3Only = await runInProcess(['stream', '-u', '-O', '1', '-c', '127.0.0.1']);
  assert.equal(iperf3Only.code, 2);
  assert.match(iperf3Only.stderr, /it does not take --omit without --iperf3/);
  const small = await runInProcess(['stream', '-u', '-l', '20', '-c', '127.0.0.1']);
  assert.equal(small.code, 2);
  assert.match(small.stderr, /-l for UDP is 40 to 65507 bytes/);
  const smallIperf3 = await runInProcess(['stream', '-u', '--iperf3', '-l', '15', '-c', '127.0.0.1']);
  assert.equal(smallIperf3.code, 2);
  assert.match(smallIperf3.stderr, /-l for UDP is 16 to 65507 bytes/);
});

interface Iperf3ServerUdp {
  end: {
    streams: { udp: { packets: number; lost_packets: number; sender: boolean } }[];
    sum_received: { bytes: number };
  };
}

/** A stock `iperf3 -s -1 -J` on a free port: its JSON once the one test is over. */
async function stockIperf3Server(t: TestContext): Promise<{ port: number; report: Promise<Iperf3ServerUdp> }> {
  const port = await freePort();
  const child = spawn('iperf3', ['-s', '-1', '-J', '-B', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => child.kill());
  let json = '';
  child.stdout.on('data', (chunk: Buffer) => (json += chunk.toString()));
  const report = new Promise<Iperf3ServerUdp>((resolve) => child.once('exit', () => resolve(JSON.parse(json) as Iperf3ServerUdp)));
  await waitForListening(port);
  return { port, report };
}

const haveIperf3 = ['/usr/bin/iperf3', '/usr/local/bin/iperf3'].some((path) => existsSync(path));

/** `stream --iperf3 -u` for a second against the stock server on `port`, with `flags`. */
const iperf3UdpRun = (port: number, ...flags: string[]) =>
  runCli(['stream', '--iperf3', '-u', '-c', '127.0.0.1', '-p', String(port), '-t', '1', ...flags]);

test(
  'stream --iperf3 -u -P 2 against iperf3 -s: the stock server’s own datagram counts, and the loss is what it did not count',
  { skip: !haveIperf3 },
  async (t) => {
    const { port, report } = await stockIperf3Server(t);
    const run = await iperf3UdpRun(port, '-b', '20M', '-l', '1400', '-P', '2', '--json');
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assertSchema(result);
    const { udp } = result.summary;
    assert.equal(result.options.protocol, 'udp');
    assert.equal(result.options.peer, 'iperf3');
    const { end } = await report;
    const serverReceived = end.streams.reduce((sum, { udp: stream }) => sum + stream.packets - stream.lost_packets, 0);
    assert.equal(udp.received, serverReceived);
    assert.equal(result.summary.receiver.bytes, end.sum_received.bytes);
    assert.equal(udp.received + udp.lost, udp.sent);
    assert.equal(udp.outOfOrder, null, 'an iperf3 server does not report it');
    assert.equal(udp.receiveBufferDrops, null);
  },
);

test(
  'stream --iperf3 -u -R against iperf3 -s: it counts what the stock server sent, and puts a small buffer’s loss down to its own socket',
  { skip: !haveIperf3 },
  async (t) => {
    const { port, report } = await stockIperf3Server(t);
    const run = await iperf3UdpRun(port, '-R', '-b', '0', '-l', '32K', '-w', '4K');
    assert.equal(run.code, 0, run.stderr);
    const [stream] = (await report).end.streams;
    const lost = /sent\s+│ (\d+)[\s\S]*lost\s+(\d+) of (\d+) \([\d.]+%\): (\d+) dropped by the client's receive buffer/.exec(run.stdout);
    assert.ok(lost, run.stdout);
    assert.equal(Number(lost[3]), stream!.udp.packets, 'sent: the stock server’s own count');
    assert.ok(Number(lost[4]) > 0 && Number(lost[4]) <= Number(lost[2]), run.stdout);
  },
);

test('stream -u through a path that drops, duplicates and reorders: each counted exactly as the relay did it', async (t) => {
  const path = await impairedPath(server.port, {
    drop: (n) => n % 10 === 3,
    duplicate: (n) => n % 7 === 0,
    holdBack: (n) => n % 5 === 1,
  });
  t.after(() => path.close());
  const run = await runCli(['stream', '-u', '-c', '127.0.0.2', '-p', String(path.port), '-t', '0.5', '-b', '8M', '-l', '1000', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const { udp } = JSON.parse(run.stdout).summary;
  const { done } = path;
  assert.ok(done.dropped > 0 && done.duplicated > 0 && done.reordered > 0, JSON.stringify(done));
  assert.equal(udp.sent, done.received, 'every datagram the client sent reached the relay (loopback)');
  assert.equal(udp.lost, done.dropped);
  assert.equal(udp.duplicates, done.duplicated);
  assert.equal(udp.outOfOrder, done.reordered);
  assert.equal(udp.receiveBufferDrops, 0, 'the relay dropped them, not the server’s buffer: the summary says so');
});
