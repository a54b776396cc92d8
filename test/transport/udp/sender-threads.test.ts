import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { DatagramStats } from '../../../src/bench/results/datagram-stats.ts';
import { readDatagram } from '../../../src/framing/datagram.ts';
import { sendOnThreads } from '../../../src/transport/udp/sender-threads.ts';

const token = Buffer.alloc(16, 7);

function bound(receiveBufferSize?: number): Promise<UdpSocket> {
  const socket = createSocket({ type: 'udp4', ...(receiveBufferSize === undefined ? {} : { recvBufferSize: receiveBufferSize }) });
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket)));
}

test('sender threads: each socket sends its own stream, numbered in order, paced, counted as the receiver counts; stopped, silent', async (t) => {
  const receiver = await bound(4 * 1024 * 1024);
  const senders = await Promise.all([bound(), bound(), bound()]);
  t.after(() => [receiver, ...senders].forEach((socket) => socket.close()));
  const port = receiver.address().port;
  await Promise.all(senders.map((socket) => new Promise<void>((resolve) => socket.connect(port, '127.0.0.1', resolve))));
  const streams = new Map<number, { stats: DatagramStats; from: number }>();
  let foreignStream = false;
  receiver.on('message', (datagram, from) => {
    const header = readDatagram(datagram, token);
    assert.ok(header !== undefined && datagram.length === 200);
    let stream = streams.get(header.stream);
    if (stream === undefined) streams.set(header.stream, (stream = { stats: new DatagramStats(), from: from.port }));
    // Stream i comes from socket i and no other.
    if (from.port !== senders[header.stream]!.address().port) foreignStream = true;
    stream.stats.record(header.sequence, header.sentNs, process.hrtime.bigint(), datagram.length);
  });
  // 200-byte datagrams at 320 kbit/s: 200 a second each, a little more than 100 in half a second.
  const { senders: sending, start } = await sendOnThreads(senders, { datagramBytes: 200, token, bitsPerSecond: 320_000 });
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.ok(
    sending.every((sender) => sender.sent === 0),
    'nothing before start',
  );
  start();
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const sender of sending) sender.stop();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const after = sending.map((sender) => sender.sent);
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(
    sending.map((sender) => sender.sent),
    after,
    'a stopped sender sends nothing more',
  );
  assert.equal(foreignStream, false);
  for (const [index, sender] of sending.entries()) {
    const counts = streams.get(index)!.stats.counts();
    // Loopback with a large buffer loses nothing: every datagram the thread counted arrived, in order, once.
    assert.equal(counts.received, sender.sent, `stream ${index}`);
    assert.equal(counts.expected, sender.sent);
    assert.equal(counts.outOfOrder + counts.duplicates, 0);
    assert.equal(sender.sentBytes, sender.sent * 200);
    assert.equal(sender.sends, sender.sent, 'one datagram per system call');
    // Paced, not as fast as it goes: at most the schedule and its 2 ms catch-up over however long it ran.
    assert.ok(sender.sent > 10 && sender.sent < 400, `stream ${index} sent ${sender.sent}`);
  }
});
