import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect, createServer, type ServerOptions } from '../../../src/index.ts';
import { closed, readBytes } from '../../../testkit/helpers.ts';

/** Every I/O model must pass the same echo conformance suite. */
const MODELS: { name: string; options: ServerOptions }[] = [
  { name: 'loop', options: { ioModel: 'loop' } },
  { name: 'workers (reuseport)', options: { ioModel: 'workers', workers: 2 } },
  { name: 'workers (handoff)', options: { ioModel: 'workers', workers: 2, distribution: 'handoff' } },
  { name: 'thread-per-conn', options: { ioModel: 'thread-per-conn', maxThreads: 64 } },
  { name: 'thread-per-conn blocking', options: { ioModel: 'thread-per-conn', maxThreads: 64, blocking: true } },
  { name: 'io-uring', options: { ioModel: 'io-uring', workers: 2 } },
];

for (const { name, options } of MODELS) {
  describe(`echo conformance: ${name}`, { timeout: 60_000 }, () => {
    async function withServer(body: (port: number) => Promise<void>, extra: ServerOptions = {}): Promise<void> {
      const server = createServer({ ...options, closeTimeout: 2000, ...extra }, 'echo');
      const { port } = (await server.listen()) as AddressInfo;
      try {
        await body(port);
      } finally {
        await server.close();
      }
      assert.equal(server.metrics().connectionsCurrent, 0);
    }

    test('many connections each get their own bytes back', () =>
      withServer(async (port) => {
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            const payload = randomBytes(16 * 1024);
            const socket = await connect({ port });
            socket.write(payload);
            assert.deepEqual(await readBytes(socket, payload.length), payload);
            socket.end();
            await closed(socket);
          }),
        );
      }));

    test("first reads echoed while no client reads yet: no connection gets another's bytes", () =>
      withServer(
        async (port) => {
          // Each first read fills the thread's shared read buffer and, with a small server send
          // buffer, most of its echo stays pending, so a server that echoed it without a copy would be overwritten
          // by the next connection's first read.
          const sockets = await Promise.all(Array.from({ length: 8 }, () => connect({ port, receiveBufferSize: 4096 })));
          const payloads = sockets.map((socket) => {
            const payload = randomBytes(128 * 1024);
            socket.pause();
            socket.write(payload);
            return payload;
          });
          await new Promise((resolve) => setTimeout(resolve, 200));
          const echoed = await Promise.all(
            sockets.map((socket, index) => {
              const reading = readBytes(socket, payloads[index]!.length, 30_000);
              socket.resume();
              return reading;
            }),
          );
          for (const [index, socket] of sockets.entries()) {
            assert.ok(echoed[index]!.equals(payloads[index]!), `connection ${index} got its own bytes back`);
            socket.end();
            await closed(socket);
          }
        },
        { sendBufferSize: 4096 },
      ));

    test('a 4 MiB message and 2000 one-byte writes arrive whole and in order', () =>
      withServer(async (port) => {
        const large = randomBytes(4 * 1024 * 1024);
        const socket = await connect({ port });
        const echoed = readBytes(socket, large.length + 2000, 30_000);
        socket.write(large);
        const tiny = randomBytes(2000);
        for (let i = 0; i < tiny.length; i++) socket.write(tiny.subarray(i, i + 1));
        assert.deepEqual(await echoed, Buffer.concat([large, tiny]));
        socket.destroy();
      }));

    test('half-close: the echo finishes, then the server ends its side', () =>
      withServer(async (port) => {
        const socket = await connect({ port });
        const payload = randomBytes(300_000);
        const echoed = readBytes(socket, Number.MAX_SAFE_INTEGER);
        socket.end(payload);
        assert.deepEqual(await echoed, payload);
        await closed(socket);
      }));

    test('a peer reset does not disturb the server', () =>
      withServer(async (port) => {
        const doomed = await connect({ port });
        doomed.write(randomBytes(100_000));
        doomed.resetAndDestroy();
        const healthy = await connect({ port });
        healthy.write('still here');
        assert.equal((await readBytes(healthy, 10)).toString(), 'still here');
        healthy.destroy();
      }));
  });

  test(`close during transfer: a peer that ignores the server's end is cut at closeTimeout: ${name}`, { timeout: 30_000 }, async () => {
    const server = createServer({ ...options, closeTimeout: 300 }, 'echo');
    const { port } = (await server.listen()) as AddressInfo;
    // allowHalfOpen: this client does not end its side when the server ends its own; it keeps writing.
    const socket = await new Promise<Socket>((resolve) => {
      const opened = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(opened));
    });
    socket.on('error', () => {});
    socket.resume();
    const chunk = randomBytes(64 * 1024);
    let writing = true;
    const pump = (): void => {
      while (writing && socket.write(chunk));
    };
    socket.on('drain', pump);
    pump();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    const result = await server.close();
    writing = false;
    assert.ok(Date.now() - started < 3000, 'close took too long');
    assert.equal(result.destroyed, 1);
    await closed(socket);
    assert.equal(server.metrics().connectionsCurrent, 0);
  });
}
