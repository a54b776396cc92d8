import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertSchema, runCli, runInProcess, startServer, type RunningServer } from '../../testkit/cli.ts';

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
  const run = await udpRun('-b', '0', '--rcvbuf', '4K', '-l', '1400');
  assert.equal(run.code, 0, run.stderr);
  const lost =
    /lost\s+(\d+) of (\d+) \([\d.]+%\): (\d+) dropped by the server's receive buffer \(SO_RCVBUF [\d.]+ KiB\): raise --rcvbuf/.exec(
      run.stdout,
    );
  assert.ok(lost, run.stdout);
  assert.ok(Number(lost[3]) > 0 && Number(lost[3]) <= Number(lost[1]), run.stdout);
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

test('stream -u refuses what it does not do yet, and a datagram smaller than its header', async () => {
  const refused = await runInProcess(['stream', '-u', '--bidir', '--verify', '-c', '127.0.0.1']);
  assert.equal(refused.code, 2);
  assert.match(
    refused.stderr,
    /stream -u sends datagrams between this client and a socktune server \(-R: the server sends\); it does not take --bidir, --verify yet/,
  );
  const small = await runInProcess(['stream', '-u', '-l', '20', '-c', '127.0.0.1']);
  assert.equal(small.code, 2);
  assert.match(small.stderr, /-l for UDP is 40 to 65507 bytes/);
});
