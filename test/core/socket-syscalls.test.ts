import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Socket, type AddressInfo } from 'node:net';
import { connect, createServer, effectiveSocketOptions, type BufferCapWarning } from '../../src/index.ts';
import { boundPort, closeFd, createBoundUdpFd, receiveFrom, sourceIs } from '../../src/core/socket-syscalls.ts';
import { ssBufferSizes } from '../../testkit/helpers.ts';

const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));

test('listen-side buffer sizes are in place before listen: accepted sockets inherit them', async () => {
  let accepted: Socket | undefined;
  const server = createServer({ receiveBufferSize: 24_576, sendBufferSize: 40_960 }, (socket) => {
    accepted = socket;
    socket.resume();
  });
  const { port } = (await server.listen()) as AddressInfo;
  assert.deepEqual(server.effectiveSocketOptions(), { receiveBufferSize: 49_152, sendBufferSize: 81_920, noDelay: true, keepAlive: false });
  const client = await connect({ port });
  while (!accepted) await new Promise((resolve) => setImmediate(resolve));
  const fromGetsockopt = effectiveSocketOptions(accepted);
  assert.equal(fromGetsockopt.receiveBufferSize, 49_152);
  assert.equal(fromGetsockopt.sendBufferSize, 81_920);
  const fromSs = await ssBufferSizes(`( sport = :${port} )`);
  assert.deepEqual(fromSs, { rb: 49_152, tb: 81_920 });
  client.destroy();
  await server.close();
});

test('connect-side buffer sizes are set before connect and read back', async () => {
  const server = createServer({ handler: 'discard' });
  const { port } = (await server.listen()) as AddressInfo;
  const client = await connect({ port, receiveBufferSize: 12_288, sendBufferSize: 20_480, keepAlive: true, noDelay: false });
  assert.deepEqual(client.effectiveSocketOptions(), { receiveBufferSize: 24_576, sendBufferSize: 40_960, noDelay: false, keepAlive: true });
  const fromSs = await ssBufferSizes(`( dport = :${port} )`);
  assert.deepEqual(fromSs, { rb: 24_576, tb: 40_960 });
  assert.deepEqual(client.socketWarnings, []);
  client.destroy();
  await server.close();
});

test('a request above rmem_max is capped by the kernel, and socktune warns with the sysctl to raise', async () => {
  const asked = rmemMax * 2;
  const server = createServer({ receiveBufferSize: asked });
  const warnings: BufferCapWarning[] = [];
  server.on('warning', (warning: BufferCapWarning) => warnings.push(warning));
  await server.listen();
  assert.equal(server.effectiveSocketOptions().receiveBufferSize, rmemMax * 2);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.option, 'receiveBufferSize');
  assert.equal(warnings[0]!.sysctl, 'net.core.rmem_max');
  assert.match(warnings[0]!.message, new RegExp(`sysctl -w net\\.core\\.rmem_max=${asked}`));
  await server.close();
});

test('lingerZero closes with RST: the peer sees ECONNRESET', async (t) => {
  const server = createServer({ lingerZero: true }, (socket) => socket.once('data', () => socket.destroy()));
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const client = await connect({ port });
  client.write('x');
  const [error] = (await once(client, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'ECONNRESET');
});

test('reusePort lets two servers share a port; ipv6Only applies on ::1', async () => {
  const first = createServer({ reusePort: true });
  const { port } = (await first.listen()) as AddressInfo;
  const second = createServer({ reusePort: true, port });
  assert.equal(((await second.listen()) as AddressInfo).port, port);
  const third = createServer({ port });
  await assert.rejects(third.listen(), { code: 'SOCKTUNE_ERR_LISTEN', errno: 'EADDRINUSE' });
  await Promise.all([first.close(), second.close()]);

  const v6 = createServer({ host: '::1', ipv6Only: true });
  const address = (await v6.listen()) as AddressInfo;
  assert.equal(address.family, 'ipv6');
  const client = await connect({ host: '::1', port: address.port });
  client.destroy();
  await v6.close();
});

test('connect errors: refused and timeout are SocktuneErrors', async () => {
  const server = createServer();
  const { port } = (await server.listen()) as AddressInfo;
  await server.close();
  await assert.rejects(connect({ port }), { code: 'SOCKTUNE_ERR_REFUSED', errno: 'ECONNREFUSED' });
});

test('keepAlive with an initial delay reaches sockets accepted by every model', async () => {
  for (const ioModel of ['loop', 'workers', 'thread-per-conn'] as const) {
    const server = createServer(
      { ioModel, workers: 1, keepAlive: true, keepAliveInitialDelay: 42_000 },
      { module: new URL('../fixtures/report-keepalive.ts', import.meta.url) },
    );
    const { port } = (await server.listen()) as AddressInfo;
    const client = await connect({ port });
    const [line] = (await once(client, 'data')) as [Buffer];
    assert.deepEqual(JSON.parse(line.toString()), { keepAlive: true, idleSeconds: 42 }, ioModel);
    client.destroy();
    await server.close();
  }
});

test('receiveFrom names each datagram’s source, and sourceIs tells the client’s address from any other, whatever the port', async (t) => {
  for (const [family, address, other] of [
    ['ipv4', '127.0.0.1', '127.0.0.2'],
    ['ipv6', '::1', undefined],
  ] as const) {
    const fd = createBoundUdpFd(family, address, 0, false);
    t.after(() => closeFd(fd));
    const port = boundPort(fd);
    const senders = [address, other].filter((from) => from !== undefined).map(() => createSocket(family === 'ipv4' ? 'udp4' : 'udp6'));
    t.after(() => senders.forEach((sender) => sender.close()));
    const fromClient = sourceIs(family, address);
    const buffer = Buffer.alloc(100);
    const peer = Buffer.alloc(128);
    const peerLength = new Uint32Array(1);
    for (const [index, sender] of senders.entries()) {
      const from = index === 0 ? address : other!;
      await new Promise<void>((resolve) => sender.bind(0, from, () => resolve()));
      await new Promise((resolve) => sender.send(`from ${from}`, port, address, resolve));
      // The datagram is on loopback already; a non-blocking read may still run ahead of it.
      let length = receiveFrom(fd, buffer, peer, peerLength, false);
      for (; length < 0; length = receiveFrom(fd, buffer, peer, peerLength, false)) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(buffer.subarray(0, length).toString(), `from ${from}`);
      assert.equal(peerLength[0], family === 'ipv4' ? 16 : 28, 'the kernel wrote the address length back');
      assert.equal(peer.readUInt16BE(2), sender.address().port);
      assert.equal(fromClient(peer), from === address, `${from} is ${from === address ? '' : 'not '}the client`);
    }
  }
});
