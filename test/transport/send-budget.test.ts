import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { createServer, type ServerOptions } from '../../src/index.ts';
import { SendBudget } from '../../src/transport/send-budget.ts';

test('SendBudget: the burst goes at once; past it, each reservation waits for the bytes queued before it', () => {
  const budget = new SendBudget(1_000_000);
  assert.equal(budget.burstBytes, 64 * 1024);
  assert.equal(budget.reserve(60_000), 0);
  assert.equal(budget.reserve(10_000), 0, 'within the burst');
  const wait = budget.reserve(100_000);
  assert.ok(wait >= 1 && wait <= 12, `waits for what overdraws the burst: ${wait} ms`);
  const next = budget.reserve(0);
  assert.ok(next >= 90 && next <= 112, `the next writer waits behind 100 kB more at 1 MB/s: ${next} ms`);
});

test('SendBudget: a copy in another thread shares the same bucket', () => {
  const budget = new SendBudget(1_000_000);
  const twin = SendBudget.fromState(budget.state);
  budget.reserve(64 * 1024 + 200_000);
  const wait = twin.reserve(0);
  assert.ok(wait >= 180, `the twin sees the reservations of the first: ${wait} ms`);
});

const RATE = 500_000;

/** Bytes the clients received in ~1 s from a paced server, and the ceiling the budget allows. */
async function receivedFrom(options: ServerOptions, clients: number, send?: Buffer): Promise<{ received: number; ceiling: number }> {
  const budget = new SendBudget(RATE);
  const server = createServer({ ...options, maxSendRate: budget });
  const { port } = (await server.listen()) as AddressInfo;
  const started = performance.now();
  let received = 0;
  const sockets = Array.from({ length: clients }, () => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.on('error', () => {});
    if (send) {
      // An echo client that never stops sending: only the budget holds the server back.
      const pump = (): void => {
        while (!socket.destroyed && socket.write(send));
      };
      socket.on('connect', pump).on('drain', pump);
    }
    return socket;
  });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const seconds = (performance.now() - started) / 1000;
  for (const socket of sockets) socket.destroy();
  await server.close();
  // Documented bound: the rate over the time, two bursts, and one read's answer per connection for read-driven services.
  const ceiling = RATE * seconds + 2 * budget.burstBytes + (send ? clients * 64 * 1024 : 0);
  return { received, ceiling };
}

for (const [ioModel, blocking] of [['loop', false], ['workers', false], ['thread-per-conn', false], ['thread-per-conn', true]] as const) {
  const label = `${ioModel}${blocking ? ', blocking' : ''}`;
  test(`maxSendRate (${label}): the source service, every connection and thread together, stays under the cap`, async () => {
    const { received, ceiling } = await receivedFrom({ ioModel, blocking, workers: 2, handler: 'source', sourceChunkSize: 1024 * 1024 }, 3);
    assert.ok(received > 0 && received <= ceiling, `${received} bytes (ceiling ${Math.round(ceiling)})`);
  });

  test(`maxSendRate (${label}): echo is paced too`, async () => {
    const { received, ceiling } = await receivedFrom({ ioModel, blocking, workers: 2, handler: 'echo' }, 3, Buffer.alloc(16 * 1024, 7));
    assert.ok(received > 0 && received <= ceiling, `${received} bytes echoed (ceiling ${Math.round(ceiling)})`);
  });
}

test('maxSendRate: one SendBudget shared by two servers holds for both together', async () => {
  const budget = new SendBudget(RATE);
  const servers = [createServer({ handler: 'source', maxSendRate: budget }), createServer({ ioModel: 'workers', workers: 2, handler: 'source', maxSendRate: budget })];
  const ports = await Promise.all(servers.map(async (server) => ((await server.listen()) as AddressInfo).port));
  const started = performance.now();
  let received = 0;
  const sockets = ports.flatMap((port) =>
    [0, 1].map(() => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.on('data', (chunk: Buffer) => (received += chunk.length));
      socket.on('error', () => {});
      return socket;
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const seconds = (performance.now() - started) / 1000;
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => server.close()));
  const ceiling = RATE * seconds + 2 * budget.burstBytes;
  assert.ok(received > 0 && received <= ceiling, `${received} bytes from two servers (ceiling ${Math.round(ceiling)})`);
});
