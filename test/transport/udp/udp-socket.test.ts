import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { bindUdp, validateUdpSocketOptions } from '../../../src/transport/udp/udp-socket.ts';

test('bindUdp: buffers set before bind and read back; a wrong option is named', async (t) => {
  const bound = await bindUdp({ receiveBufferSize: 4096, sendBufferSize: 8192 });
  t.after(() => bound.socket.close());
  assert.equal(bound.family, 'IPv4');
  assert.ok(bound.port > 0);
  // Linux doubles what it is asked for (and has a floor): never less than asked.
  assert.ok(bound.effective.receiveBufferSize >= 4096 && bound.effective.sendBufferSize >= 8192, JSON.stringify(bound.effective));
  assert.throws(() => validateUdpSocketOptions({ receiveBufferSize: 0 }), /options\.receiveBufferSize must be an integer from 1/);
  assert.throws(() => validateUdpSocketOptions({ port: 70_000 }), /options\.port must be an integer from 0 to 65535/);
  assert.throws(() => validateUdpSocketOptions({ bogus: 1 } as never), /options\.bogus is not a known option/);
  await assert.rejects(bindUdp({ host: '192.0.2.1' }), { code: 'SOCKTUNE_ERR_LISTEN', errno: 'EADDRNOTAVAIL' });
});

test('bindUdp: the socket’s own drop counter counts what a full receive buffer threw away, connected or not', async (t) => {
  const receiver = await bindUdp({ receiveBufferSize: 2048 });
  const sender = createSocket('udp4');
  t.after(() => {
    receiver.socket.close();
    sender.close();
  });
  assert.equal(receiver.receiveBufferDrops(), 0);
  await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => receiver.socket.connect(sender.address().port, '127.0.0.1', resolve));
  // All in one turn of the loop, each handed to the kernel at once: the receiver cannot read between them,
  // and its tiny buffer holds two.
  const datagram = Buffer.alloc(1000);
  for (let i = 0; i < 99; i++) sender.send(datagram, receiver.port, '127.0.0.1');
  await new Promise((resolve) => sender.send(datagram, receiver.port, '127.0.0.1', resolve));
  const drops = receiver.receiveBufferDrops();
  assert.ok(drops !== null && drops > 0, `drops ${drops}`);
});
