import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { Iperf3Server, type Iperf3TestLog } from '../../../../src/bench/servers/iperf3/iperf3-server.ts';
import { encodeJson, generateCookie, STATE } from '../../../../src/protocols/iperf3/codec.ts';
import { UDP_CONNECT_MESSAGE, UDP_CONNECT_REPLY } from '../../../../src/protocols/iperf3/datagram.ts';
import { ByteReader } from '../../../../src/framing/byte-reader.ts';
import { withTimeout } from '../../../../src/core/timeout.ts';
import { run } from '../../../../testkit/helpers.ts';

const haveIperf3 = ['/usr/bin/iperf3', '/usr/local/bin/iperf3'].some((path) => existsSync(path));
const skip = haveIperf3 ? false : 'iperf3 is not installed (.ci/run installs it)';

interface UdpSum {
  bytes: number;
  packets: number;
  lost_packets: number;
  jitter_ms: number;
}
interface Iperf3UdpJson {
  end: {
    sum?: UdpSum;
    sum_bidir_reverse?: UdpSum;
    streams: { udp: UdpSum & { sender: boolean } }[];
  };
  error?: string;
}

async function iperf3Client(port: number, args: string[]): Promise<{ code: number; json: Iperf3UdpJson }> {
  const result = await run('iperf3', ['-u', '-c', '127.0.0.1', '-p', String(port), '-J', ...args], { timeout: 60_000 }).then(
    (output) => ({ code: 0, stdout: output.stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  return { code: result.code, json: JSON.parse(result.stdout) as Iperf3UdpJson };
}

describe('stock iperf3 -u clients against the iperf3 server', { skip }, () => {
  let server: Iperf3Server;
  let port: number;
  const logs: Iperf3TestLog[] = [];
  before(async () => {
    server = new Iperf3Server({ port: 0 });
    server.on('test', (entry: Iperf3TestLog) => logs.push(entry));
    const address = await server.listen();
    assert.ok('port' in address);
    port = address.port;
  });
  after(() => server.close());

  const lastFigures = (): NonNullable<Iperf3TestLog['figures']> => {
    const entry = logs.at(-1);
    assert.equal(entry?.outcome, 'done', entry?.error);
    return entry.figures!;
  };

  test('forward, -P 2: the client prints the server’s own datagram counts, and every datagram it sent arrived or is counted lost', async () => {
    const { code, json } = await iperf3Client(port, ['-t', '1', '-b', '20M', '-l', '1400', '-P', '2']);
    assert.equal(code, 0, json.error);
    const figures = lastFigures();
    const received = figures.streams.filter((stream) => !stream.sender);
    assert.equal(received.length, 2);
    const packets = received.reduce((sum, stream) => sum + stream.udp!.packets, 0);
    const lost = received.reduce((sum, stream) => sum + stream.udp!.lost, 0);
    assert.ok(packets > 0);
    assert.equal(json.end.sum!.packets, packets, "the client's total is the server's");
    assert.equal(json.end.sum!.lost_packets, lost);
    assert.equal(
      figures.bytesIn,
      received.reduce((sum, stream) => sum + stream.bytes, 0),
    );
    // Loopback loses nothing on the way: whatever was lost, the port's receive buffer dropped (and it may have
    // dropped the last datagrams too, which no later one showed missing).
    assert.ok(figures.udpReceiveBufferDrops! >= lost, JSON.stringify(figures));
  });

  test('-R: the server sends iperf3’s datagrams at -b, numbered so the client counts no loss on loopback beyond its buffer', async () => {
    const { code, json } = await iperf3Client(port, ['-t', '1', '-b', '10M', '-R']);
    assert.equal(code, 0, json.error);
    const [stream] = lastFigures().streams;
    assert.equal(stream!.sender, true);
    assert.ok(stream!.udp!.packets > 0);
    assert.equal(json.end.sum!.packets, stream!.udp!.packets, 'the client compares what it got with what the server says it sent');
    assert.ok(json.end.sum!.lost_packets <= stream!.udp!.packets);
  });

  test('--bidir and --udp-counters-64bit: one stream each way, both counted', async () => {
    const { code, json } = await iperf3Client(port, ['-t', '1', '-b', '5M', '--bidir', '--udp-counters-64bit']);
    assert.equal(code, 0, json.error);
    const figures = lastFigures();
    assert.deepEqual(
      figures.streams.map((stream) => stream.sender),
      [false, true],
    );
    assert.ok(figures.streams.every((stream) => stream.udp!.packets > 0));
    assert.equal(json.end.sum!.packets, figures.streams[0]!.udp!.packets);
  });
});

test(
  'a receive buffer too small for the burst: the loss is counted, and the port’s own drop counter names the cause',
  { skip },
  async (t) => {
    // One 32 KiB datagram fills a 4 KiB buffer: each must be read before the next arrives, from a C sender that does not wait.
    const server = new Iperf3Server({ port: 0, udpReceiveBufferSize: 4096 });
    const logs: Iperf3TestLog[] = [];
    server.on('test', (entry: Iperf3TestLog) => logs.push(entry));
    const address = await server.listen();
    t.after(() => server.close());
    assert.ok('port' in address);
    const { code, json } = await iperf3Client(address.port, ['-t', '1', '-b', '0', '-l', '32K']);
    assert.equal(code, 0, json.error);
    const { figures } = logs.at(-1)!;
    const [stream] = figures!.streams;
    assert.ok(stream!.udp!.lost > 0, `lost ${stream!.udp!.lost} of ${stream!.udp!.packets}`);
    assert.ok(figures!.udpReceiveBufferDrops! >= stream!.udp!.lost, JSON.stringify(figures));
    assert.equal(json.end.sum!.lost_packets, stream!.udp!.lost);
  },
);

test('a UDP port another socket holds fails that test with the reason, and the server goes on serving', { skip }, async (t) => {
  const server = new Iperf3Server({ port: 0 });
  const logs: Iperf3TestLog[] = [];
  server.on('test', (entry: Iperf3TestLog) => logs.push(entry));
  const address = await server.listen();
  assert.ok('port' in address);
  const squatter = createSocket('udp4');
  await new Promise<void>((resolve) => squatter.bind(address.port, '127.0.0.1', resolve));
  let squatting = true;
  t.after(async () => {
    if (squatting) squatter.close();
    await server.close();
  });
  const refused = await iperf3Client(address.port, ['-t', '1']);
  assert.match(refused.json.error ?? '', /unable to create a new stream/);
  assert.match(logs.at(-1)?.error ?? '', /EADDRINUSE/);
  // The server is still there: a TCP test runs, and once the port is free a UDP one does too.
  const tcp = await run('iperf3', ['-c', '127.0.0.1', '-p', String(address.port), '-t', '1', '-J'], { timeout: 30_000 });
  assert.match(tcp.stdout, /"sum_received"/);
  squatter.close();
  squatting = false;
  const udp = await iperf3Client(address.port, ['-t', '1']);
  assert.equal(udp.code, 0, udp.json.error);
});

/** Drives a UDP test's control connection by hand up to CREATE_STREAMS. */
async function udpTestAwaitingStreams(port: number): Promise<net.Socket> {
  const control = net.connect(port, '127.0.0.1');
  const reader = new ByteReader(1024);
  control.on('data', (chunk: Buffer) => reader.push(chunk));
  control.on('error', () => {});
  control.write(generateCookie());
  assert.equal((await withTimeout(reader.read(1), 5000, 'PARAM_EXCHANGE'))[0], STATE.PARAM_EXCHANGE);
  control.write(encodeJson({ udp: true, omit: 0, time: 1, num: 0, blockcount: 0, parallel: 1, len: 1400, bandwidth: 1e6 }));
  assert.equal((await withTimeout(reader.read(1), 5000, 'CREATE_STREAMS'))[0], STATE.CREATE_STREAMS);
  return control;
}

function udpSocket(address: string): Promise<{ socket: UdpSocket; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (datagram) => received.push(datagram));
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => resolve({ socket, received }));
  });
}

test('the UDP port cannot be shared: another socket cannot bind it, even with SO_REUSEADDR, to hear or forge a test’s datagrams', async (t) => {
  const server = new Iperf3Server({ port: 0 });
  const address = await server.listen();
  assert.ok('port' in address);
  t.after(() => server.close());
  const control = await udpTestAwaitingStreams(address.port);
  t.after(() => control.destroy());
  const squatter = createSocket({ type: 'udp4', reuseAddr: true });
  const bound = await new Promise<Error | undefined>((resolve) => {
    squatter.once('error', resolve);
    squatter.bind(address.port, '127.0.0.1', () => resolve(undefined));
  });
  t.after(() => squatter.close());
  assert.match(String(bound), /EADDRINUSE/);
});

test('a connect message from another address than the test’s control connection gets no answer, and junk on the port neither', async (t) => {
  const server = new Iperf3Server({ port: 0 });
  const address = await server.listen();
  assert.ok('port' in address);
  const stranger = await udpSocket('127.0.0.2');
  const client = await udpSocket('127.0.0.1');
  t.after(async () => {
    stranger.socket.close();
    client.socket.close();
    await server.close();
  });
  const control = await udpTestAwaitingStreams(address.port);
  t.after(() => control.destroy());
  stranger.socket.send(UDP_CONNECT_MESSAGE, address.port, '127.0.0.1');
  client.socket.send(Buffer.from('junk'), address.port, '127.0.0.1');
  client.socket.send(UDP_CONNECT_MESSAGE, address.port, '127.0.0.1');
  await withTimeout(
    new Promise<void>((resolve) => client.socket.once('message', () => resolve())),
    5000,
    "the test's own client's connect reply",
  );
  assert.deepEqual(client.received, [UDP_CONNECT_REPLY], 'one reply, to the connect message, none to the junk');
  // The server read the stranger's message before the client's (one socket, in order): an answer would be here by now.
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(stranger.received, []);
});
