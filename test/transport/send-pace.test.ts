import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { createServer, SocktuneError } from '../../src/index.ts';
import { SendPace } from '../../src/transport/send-pace.ts';

test('SendPace: a burst of 10 ms of traffic goes at once; past it, the wait is the debt at the rate', () => {
  const pace = new SendPace(1_000_000);
  assert.equal(pace.spend(10_000), 0);
  const wait = pace.spend(100_000);
  assert.ok(wait >= 90 && wait <= 110, `wait ${wait} ms for 100 kB over the burst at 1 MB/s`);
});

for (const ioModel of ['loop', 'workers'] as const) {
  test(`maxSendRate (${ioModel}): the source service, all connections together, stays under the cap`, async () => {
    const server = createServer({ ioModel, workers: 2, handler: 'source', maxSendRate: 500_000, sourceChunkSize: 16 * 1024 });
    const { port } = (await server.listen()) as AddressInfo;
    const started = performance.now();
    let received = 0;
    const sockets = [0, 1, 2].map(() => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.on('error', () => {});
      return socket;
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const seconds = (performance.now() - started) / 1000;
    for (const socket of sockets) socket.destroy();
    await server.close();
    // The rate over the elapsed time, plus each event loop's burst and one chunk per connection in flight.
    const ceiling = 500_000 * seconds + 2 * 16 * 1024 + 3 * 16 * 1024;
    assert.ok(received > 0 && received <= ceiling, `${received} bytes in ${seconds.toFixed(2)} s (ceiling ${ceiling})`);
  });
}

test('maxSendRate is refused for thread-per-conn, naming the option', () => {
  assert.throws(() => createServer({ ioModel: 'thread-per-conn', maxSendRate: 1000 }), (error: unknown) => error instanceof SocktuneError && /options\.maxSendRate needs ioModel 'loop' or 'workers'/.test(error.message));
});
