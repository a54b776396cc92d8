import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { eachDatagram, readDatagram, socktuneDatagrams } from '../../../src/framing/datagram.ts';
import { coalesceReceives } from '../../../src/transport/udp/udp-batching.ts';
import { sendDatagrams } from '../../../src/transport/udp/datagram-sender.ts';

const token = Buffer.alloc(16, 3);

/** A socket that takes every datagram and confirms none until told to: what is in flight stays in flight. */
function holdingSocket(): { socket: UdpSocket; sent: Buffer[]; confirm: () => void } {
  const sent: Buffer[] = [];
  const pending: ((error: Error | null) => void)[] = [];
  const socket = {
    send: (datagram: Buffer, ...rest: unknown[]) => {
      sent.push(Buffer.from(datagram));
      pending.push(rest[rest.length - 1] as (error: Error | null) => void);
    },
  } as unknown as UdpSocket;
  return { socket, sent, confirm: () => pending.splice(0).forEach((callback) => callback(null)) };
}

test('in flight: 64 small datagrams per socket at most, and a test of large datagrams on many streams holds about 4 MiB', () => {
  const small = holdingSocket();
  const smallSender = sendDatagrams(small.socket, { format: socktuneDatagrams(100, token, 2), bitsPerSecond: 0, streams: 1 });
  assert.equal(small.sent.length, 64);
  assert.deepEqual(
    small.sent.slice(0, 3).map((datagram) => readDatagram(datagram, token)?.sequence),
    [0, 1, 2],
  );
  assert.ok(small.sent.every((datagram) => readDatagram(datagram, token)?.stream === 2));
  smallSender.stop();
  const large = holdingSocket();
  const largeSender = sendDatagrams(large.socket, { format: socktuneDatagrams(65_507, token, 0), bitsPerSecond: 0, streams: 128 });
  assert.equal(large.sent.length, 1, '128 streams of 64 KiB datagrams: one each in flight');
  largeSender.stop();
  const middle = holdingSocket();
  const middleSender = sendDatagrams(middle.socket, { format: socktuneDatagrams(1460, token, 0), bitsPerSecond: 0, streams: 128 });
  assert.equal(middle.sent.length, Math.floor((4 * 1024 * 1024) / (1460 * 128)));
  middleSender.stop();
});

test('confirmed datagrams free their place; a stopped sender sends nothing more', async () => {
  const held = holdingSocket();
  const sender = sendDatagrams(held.socket, { format: socktuneDatagrams(64, token, 0), bitsPerSecond: 0, streams: 1 });
  held.confirm();
  assert.equal(sender.sent, 64);
  assert.equal(sender.sentBytes, 64 * 64);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(held.sent.length, 128, 'the next 64 went once the first were confirmed');
  sender.stop();
  held.confirm();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(held.sent.length, 128);
});

test('a paced sender at a low rate starts with its one-datagram burst, and waits', (t) => {
  const held = holdingSocket();
  const sender = sendDatagrams(held.socket, { format: socktuneDatagrams(65_507, token, 0), bitsPerSecond: 8, streams: 1 });
  t.after(() => sender.stop());
  held.confirm();
  // The token bucket grants a burst and the datagram that reaches it: two, then nothing for hours.
  assert.equal(held.sent.length, 2);
});

test('segmented sends (UDP GSO) into a coalescing socket (UDP GRO): every datagram arrives numbered in order, fewer system calls than datagrams', async (t) => {
  const receiver = createSocket('udp4');
  const sender = createSocket('udp4');
  t.after(() => {
    receiver.close();
    sender.close();
  });
  await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', resolve));
  assert.ok(coalesceReceives(receiver), 'this kernel coalesces (UDP GRO)');
  const sequences: number[] = [];
  let receives = 0;
  receiver.on('message', (message) => {
    receives++;
    eachDatagram(message, token, (datagram) => sequences.push(readDatagram(datagram, token)!.sequence));
  });
  await new Promise<void>((resolve) => sender.connect(receiver.address().port, '127.0.0.1', resolve));
  const sending = sendDatagrams(sender, { format: socktuneDatagrams(1400, token, 0), bitsPerSecond: 0, streams: 1 });
  const deadline = Date.now() + 5000;
  while (sending.sent < 2000 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  sending.stop();
  // Until the last of them has been read: no new one for a while.
  for (let before = -1; sequences.length !== before && Date.now() < deadline;) {
    before = sequences.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(sending.sends < sending.sent / 10, `${sending.sent} datagrams in ${sending.sends} sends`);
  assert.ok(receives < sequences.length, `${sequences.length} datagrams in ${receives} receives`);
  // Loopback may drop whole packets when the reader falls behind: what arrived is in order, each once.
  assert.deepEqual(
    sequences,
    [...sequences].sort((a, b) => a - b),
  );
  assert.equal(new Set(sequences).size, sequences.length);
});
