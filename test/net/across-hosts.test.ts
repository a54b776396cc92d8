/**
 * socktune between two test hosts (network namespaces) over a link limited to 200 Mbit/s with tc
 * tbf: the server in one, the clients in the other, socktune's own protocol and the stock iperf3
 * and sockperf peers. Rates are only bounded from above here (no result may claim more than the
 * link carries); how close to the link rate they come is measured in bench/scale-out.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { assertSchema, BIN, startServer, type RunningServer } from '../../testkit/cli.ts';
import { netemAvailable, netnsUnavailable, TestNetwork } from '../../testkit/netns.ts';

const LINK_MBIT = 200;
/**
 * No payload rate may beat the shaped line rate by more than the shaper itself lets through: tbf
 * on this kernel's veth passed 5% over its rate, headers included (79.0 MB in three 1 s iperf3
 * runs at 200 Mbit/s), so payload reached 1.055x in a 1 s test; 10% covers that and the burst.
 */
const CEILING_BPS = LINK_MBIT * 1e6 * 1.1;
const unavailable = netnsUnavailable();
const have = (tool: string): boolean => existsSync(`/usr/bin/${tool}`);

describe('across a 200 Mbit/s link between two test hosts', { skip: unavailable ?? false }, () => {
  let network: TestNetwork;
  let server: RunningServer;
  let serverAddress: string;
  const socktune = (args: string[], timeoutMs = 60_000) => network.exec('client', process.execPath, [BIN, ...args], timeoutMs);
  const inServerHost = (args: string[]) => network.spawn('server', process.execPath, args);

  before(async () => {
    network = await TestNetwork.create({ server: { rateMbit: LINK_MBIT }, client: {} });
    serverAddress = network.host('server').address;
    server = await startServer(['--bind', serverAddress, '--json'], inServerHost);
  });
  after(async () => {
    await server?.stop();
    await network?.destroy();
  });

  test('stream --verify both ways: every byte arrives intact, and no rate above the link is claimed', async (t) => {
    for (const direction of [[], ['-R']]) {
      const run = await socktune(['stream', '-c', serverAddress, '-p', String(server.port), '-t', '1', '--verify', '--json', ...direction]);
      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout);
      assertSchema(result);
      assert.equal(result.summary.sender.bytes, result.summary.receiver.bytes, 'the receiving side counted every byte sent');
      if (result.summary.verify) assert.equal(result.summary.verify.bytesCorrupted + result.summary.verify.bytesLost, 0);
      assert.ok(
        result.summary.bitsPerSecond > 0 && result.summary.bitsPerSecond <= CEILING_BPS,
        `${result.summary.bitsPerSecond} bit/s over a ${LINK_MBIT} Mbit/s link`,
      );
      t.diagnostic(
        `stream ${direction.join('') || 'forward'}: ${(result.summary.bitsPerSecond / 1e6).toFixed(1)} Mbit/s over ${LINK_MBIT} Mbit/s`,
      );
    }
  });

  test("rr and msg across the link: schema-valid results with both ends' effective buffers", async () => {
    const rr = await socktune(['rr', '-c', serverAddress, '-p', String(server.port), '-t', '0.5', '-C', '4', '-w', '64K', '--json']);
    assert.equal(rr.code, 0, rr.stderr);
    const rrResult = JSON.parse(rr.stdout);
    assertSchema(rrResult);
    assert.ok(rrResult.summary.requests > 0);
    assert.equal(rrResult.effective.client.receiveBufferSize, 128 * 1024, 'the kernel doubles the 64K asked for');
    assert.equal(rrResult.effective.server.receiveBufferSize, 128 * 1024);
    const msg = await socktune(['msg', '-c', serverAddress, '-p', String(server.port), '-t', '0.5', '--json']);
    assert.equal(msg.code, 0, msg.stderr);
    const msgResult = JSON.parse(msg.stdout);
    assertSchema(msgResult);
    assert.equal(msgResult.summary.messagesReceivedByServer, msgResult.summary.messagesSent);
  });

  test('tune -c across the link ranks configurations there', async () => {
    const run = await socktune(
      [
        ...['tune', '-c', serverAddress, '-p', String(server.port), '--quick', '--duration-per-trial', '0.2', '--no-report', '--json'],
        ...['--io-model', 'workers', '-w', '64K'],
      ],
      120_000,
    );
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assertSchema(result);
    assert.match(result.options.targetLabel, new RegExp(serverAddress.replaceAll('.', '\\.')));
    const [scenario] = result.scenarios;
    assert.ok(scenario.ranking.length >= 2);
    for (const entry of scenario.ranking) assert.ok(entry.median <= CEILING_BPS, `${entry.label}: ${entry.median} bit/s`);
  });
});

describe(
  'stock iperf3 and sockperf across the link',
  { skip: unavailable ?? (have('iperf3') && have('sockperf') ? false : 'iperf3 and sockperf are not installed (.ci/run installs them)') },
  () => {
    let network: TestNetwork;
    before(async () => {
      network = await TestNetwork.create({ server: { rateMbit: LINK_MBIT }, client: {} });
    });
    after(async () => {
      await network?.destroy();
    });

    test('iperf3 -c against socktune server --iperf3, and socktune stream --iperf3 against iperf3 -s', async (t) => {
      const address = network.host('server').address;
      const server = await startServer(['--iperf3', '--bind', address, '--json'], (args) =>
        network.spawn('server', process.execPath, args),
      );
      const iperf3 = await network.exec('client', 'iperf3', ['-c', address, '-p', String(server.port), '-t', '1', '-J']);
      await server.stop();
      assert.equal(iperf3.code, 0, iperf3.stdout + iperf3.stderr);
      const received = JSON.parse(iperf3.stdout).end.sum_received.bits_per_second as number;
      assert.ok(received > 0 && received <= CEILING_BPS, `${received} bit/s`);
      t.diagnostic(`iperf3 -c: ${(received / 1e6).toFixed(1)} Mbit/s received over ${LINK_MBIT} Mbit/s`);

      network.spawn('server', 'iperf3', ['-s', '-1', '-p', '5201', '-B', address]);
      await network.waitForListening('server', 5201);
      const stream = await network.exec('client', process.execPath, [BIN, 'stream', '--iperf3', '-c', address, '-t', '1', '--json']);
      assert.equal(stream.code, 0, stream.stderr);
      const result = JSON.parse(stream.stdout);
      assert.ok(result.summary.bitsPerSecond > 0 && result.summary.bitsPerSecond <= CEILING_BPS);
      assert.equal(result.summary.receiver.side, 'server');
    });

    test('sockperf pp against socktune server --sockperf, and socktune rr --sockperf against sockperf sr', async () => {
      const address = network.host('server').address;
      const server = await startServer(['--sockperf', '--bind', address, '--json'], (args) =>
        network.spawn('server', process.execPath, args),
      );
      const pp = await network.exec('client', 'sockperf', ['pp', '--tcp', '-i', address, '-p', String(server.port), '-t', '1', '-m', '64']);
      await server.stop();
      assert.equal(pp.code, 0, pp.stdout + pp.stderr);
      assert.match(pp.stdout + pp.stderr, /# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0/);

      network.spawn('server', 'sockperf', ['sr', '--tcp', '-i', address, '-p', '11111']);
      await network.waitForListening('server', 11111);
      const rr = await network.exec('client', process.execPath, [BIN, 'rr', '--sockperf', '-c', address, '-t', '1', '--json']);
      assert.equal(rr.code, 0, rr.stderr);
      assert.ok(JSON.parse(rr.stdout).summary.requests > 0);
    });
  },
);

const netemSkip =
  unavailable ??
  (netemAvailable()
    ? false
    : 'this kernel has no netem: tc can limit rate (tbf) but cannot add delay, so the bandwidth-delay product cannot be shown here');

test('a too-small buffer on a long link is capped near window / RTT (bandwidth-delay product)', { skip: netemSkip }, async () => {
  const network = await TestNetwork.create({ server: { rateMbit: LINK_MBIT, delayMs: 20 }, client: { delayMs: 20 } });
  try {
    const address = network.host('server').address;
    const server = await startServer(['--bind', address], (args) => network.spawn('server', process.execPath, args));
    const run = await network.exec('client', process.execPath, [
      BIN,
      'stream',
      '-c',
      address,
      '-p',
      String(server.port),
      '-t',
      '3',
      '-w',
      '8K',
      '--json',
    ]);
    await server.stop();
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    // 40 ms of round trip with the kernel's doubled 8 KiB: a window can carry at most this much per RTT.
    const window = Math.max(result.effective.client.sendBufferSize, result.effective.server.receiveBufferSize);
    const bdpCeiling = ((window * 8) / 0.04) * 1.5;
    assert.ok(result.summary.bitsPerSecond < bdpCeiling, `${result.summary.bitsPerSecond} bit/s with a ${window} B window over 40 ms`);
  } finally {
    await network.destroy();
  }
});
