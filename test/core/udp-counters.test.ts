import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { boundPort, closeFd, createBoundUdpFd, receiveFrom } from '../../src/core/socket-syscalls.ts';
import { socketDrops, udpBufferErrors } from '../../src/core/udp-counters.ts';

function bound(type: 'udp4' | 'udp6', address: string, port = 0, receiveBuffer?: number): Promise<Socket> {
  const socket = createSocket({ type, ...(receiveBuffer === undefined ? {} : { recvBufferSize: receiveBuffer }) });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => resolve(socket));
  });
}

test('socketDrops counts one socket’s drops, found by its address and port: not another address’s socket on that port', async (t) => {
  const counted = await bound('udp4', '127.0.0.1');
  const port = counted.address().port;
  const neighbour = await bound('udp4', '127.0.0.2', port, 2048);
  const sender = await bound('udp4', '127.0.0.1');
  const ipv6 = await bound('udp6', '::1').catch(() => undefined);
  t.after(() => [counted, neighbour, sender, ipv6].forEach((socket) => socket?.close()));
  assert.equal(socketDrops([{ address: '127.0.0.1', port }]), 0);
  // The neighbour never reads: past its tiny buffer every datagram is dropped, on its socket only.
  const datagram = Buffer.alloc(1000);
  for (let i = 0; i < 200; i++) await new Promise((resolve) => sender.send(datagram, port, '127.0.0.2', resolve));
  assert.ok(socketDrops([{ address: '127.0.0.2', port }])! > 0, 'the neighbour dropped datagrams');
  assert.equal(socketDrops([{ address: '127.0.0.1', port }]), 0, 'none of them counted for the other socket');
  assert.equal(
    socketDrops([
      { address: '127.0.0.1', port },
      { address: '127.0.0.2', port },
    ]),
    socketDrops([{ address: '127.0.0.2', port }]),
    'sockets together: their drops summed',
  );
  if (ipv6 !== undefined) assert.equal(socketDrops([{ address: '::1', port: ipv6.address().port }]), 0);
  const free = await bound('udp4', '127.0.0.1');
  const freePort = free.address().port;
  free.close();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(socketDrops([{ address: '127.0.0.1', port: freePort }]), null, 'no socket there');
  assert.equal(
    socketDrops([
      { address: '127.0.0.1', port },
      { address: '127.0.0.1', port: freePort },
    ]),
    null,
    'one unknown: unknown',
  );
  const errors = udpBufferErrors();
  assert.ok(errors !== null && errors.receive >= 0 && errors.send >= 0);
});

test('socketDrops tells apart sockets that share a port by their peer: a connected one’s drops are its own', async (t) => {
  const open = (receiveBuffer?: number): Promise<Socket> => {
    const socket = createSocket({
      type: 'udp4',
      reuseAddr: true,
      ...(receiveBuffer === undefined ? {} : { recvBufferSize: receiveBuffer }),
    });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => resolve(socket));
    });
  };
  const probe = await bound('udp4', '127.0.0.1');
  const port = probe.address().port;
  probe.close();
  const unconnected = await open();
  const connected = await open(2048);
  const sender = await bound('udp4', '127.0.0.1');
  t.after(() => [unconnected, connected, sender].forEach((socket) => socket.close()));
  const senderPort = sender.address().port;
  await new Promise<void>((resolve) => connected.connect(senderPort, '127.0.0.1', resolve));
  const datagram = Buffer.alloc(1000);
  for (let i = 0; i < 200; i++) await new Promise((resolve) => sender.send(datagram, port, '127.0.0.1', resolve));
  const remote = { address: '127.0.0.1', port: senderPort };
  assert.ok(socketDrops([{ address: '127.0.0.1', port, remote }])! > 0, 'the connected socket, which never reads, dropped them');
  assert.equal(socketDrops([{ address: '127.0.0.1', port, remote: { address: '0.0.0.0', port: 0 } }]), 0, 'the unconnected one none');
  assert.equal(socketDrops([{ address: '127.0.0.1', port, remote: { address: '127.0.0.2', port: senderPort } }]), null, 'no such peer');
});

test('socketDrops sums a SO_REUSEPORT group: the unconnected sockets bound to one address and port', async (t) => {
  const first = createBoundUdpFd('ipv4', '127.0.0.1', 0, true, { receiveBufferSize: 2048 });
  const port = boundPort(first);
  const second = createBoundUdpFd('ipv4', '127.0.0.1', port, true, { receiveBufferSize: 2048 });
  const senders = await Promise.all(Array.from({ length: 8 }, () => bound('udp4', '127.0.0.1')));
  t.after(() => {
    closeFd(first);
    closeFd(second);
    senders.forEach((socket) => socket.close());
  });
  const datagram = Buffer.alloc(1000);
  const sent = 25 * senders.length;
  for (let i = 0; i < sent; i++) await new Promise((resolve) => senders[i % senders.length]!.send(datagram, port, '127.0.0.1', resolve));
  // Whatever each socket still holds was not dropped: read both queues out.
  const peer = Buffer.alloc(128);
  let queued = 0;
  for (const fd of [first, second]) while (receiveFrom(fd, Buffer.alloc(2000), peer, new Uint32Array(1), false) > 0) queued++;
  assert.ok(queued < sent, `${queued} of ${sent} queued`);
  assert.equal(socketDrops([{ address: '127.0.0.1', port }]), sent - queued);
});
