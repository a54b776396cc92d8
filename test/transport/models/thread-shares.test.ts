import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { createServer, type SocktuneServer } from '../../../src/index.ts';
import { ThreadShares } from '../../../src/transport/models/thread-shares.ts';
import type { Admitted } from '../../../src/transport/server/admission.ts';
import { closed, echoes, readBytes, waitFor } from '../../../testkit/helpers.ts';

const waiter = (peer: string, fd = 0): Admitted => ({ fd, peer });

test('ThreadShares: the queue serves the client holding the fewest threads first, the oldest among equals', () => {
  const shares = new ThreadShares(8);
  for (let i = 0; i < 3; i++) shares.hold('a');
  shares.hold('b');
  const queued = [waiter('a', 1), waiter('b', 2), waiter('c', 3), waiter('a', 4), waiter('c', 5)];
  for (const connection of queued) shares.enqueue(connection);
  const order: number[] = [];
  for (let next = shares.takeFairest(); next !== undefined; next = shares.takeFairest()) {
    order.push(next.fd);
    shares.hold(next.peer);
  }
  // c holds 0, b 1, a 3; after each pick the picked client holds one more.
  assert.deepEqual(order, [3, 2, 5, 1, 4]);
  assert.equal(shares.waitingCount, 0);
});

test('ThreadShares: one client alone is never asked to give a thread up, however many of its connections wait', () => {
  const shares = new ThreadShares(4);
  for (let i = 0; i < 4; i++) shares.hold('a');
  for (let i = 0; i < 10; i++) shares.enqueue(waiter('a'));
  assert.equal(shares.nextGiver(), undefined);
  // Even with one of its threads still starting (held, but the pool not yet full of served threads).
  shares.release('a');
  assert.equal(shares.nextGiver(), undefined);
});

test('ThreadShares: a client above its share gives up one thread per connection owed, counting those already on their way', () => {
  const shares = new ThreadShares(8);
  for (let i = 0; i < 8; i++) shares.hold('hog');
  shares.enqueue(waiter('hog'));
  shares.enqueue(waiter('x'));
  shares.enqueue(waiter('x'));
  // Share 4: x is owed 2 threads (it waits with 2 and holds 0); hog may give 4.
  assert.equal(shares.nextGiver(), 'hog');
  shares.markGivingUp('hog');
  assert.equal(shares.nextGiver(), 'hog');
  shares.markGivingUp('hog');
  assert.equal(shares.nextGiver(), undefined, 'two threads on their way for two owed');
  shares.release('hog', true);
  assert.equal(shares.takeFairest()?.peer, 'x');
  shares.hold('x');
  assert.equal(shares.nextGiver(), undefined, 'one still on its way for the one still owed');
});

test('ThreadShares: clients within a thread of their shares take nothing back and forth', () => {
  // 64 threads, 3 clients: a share of 21.33; 20 + 22 + 22 leaves the waiting one under its share but nobody a whole thread over it.
  const shares = new ThreadShares(64);
  for (const [peer, held] of [
    ['a', 20],
    ['b', 22],
    ['c', 22],
  ] as const)
    for (let i = 0; i < held; i++) shares.hold(peer);
  shares.enqueue(waiter('a'));
  assert.equal(shares.nextGiver(), undefined);
  // Two clients at 4 and 4 of 8: whoever waits, nothing moves.
  const even = new ThreadShares(8);
  for (let i = 0; i < 4; i++) even.hold('a');
  for (let i = 0; i < 4; i++) even.hold('b');
  even.enqueue(waiter('a'));
  even.enqueue(waiter('b'));
  assert.equal(even.nextGiver(), undefined);
});

function connectFrom(localAddress: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Every client closed: no connection left in a thread and the pool back to its minThreads. */
async function assertBaseline(server: SocktuneServer, threads: number): Promise<void> {
  assert.ok(
    await waitFor(() => server.metrics().connectionsCurrent === 0 && server.threads === threads, 10_000),
    `connections ${server.metrics().connectionsCurrent}, threads ${server.threads} (want 0 and ${threads})`,
  );
}

for (const blocking of [false, true]) {
  const variant = blocking ? ' (blocking)' : '';

  test(
    `thread-per-conn${variant}: one address trickling on every thread cannot keep a client from another address waiting`,
    { timeout: 30_000 },
    async (t) => {
      const maxThreads = 8;
      const server = createServer({ ioModel: 'thread-per-conn', blocking, maxThreads, minThreads: maxThreads, handler: 'echo' });
      const sockets: net.Socket[] = [];
      const timers: NodeJS.Timeout[] = [];
      t.after(async () => {
        for (const timer of timers) clearInterval(timer);
        for (const socket of sockets) socket.destroy();
        await server.close();
      });
      const { port } = (await server.listen()) as AddressInfo;
      // Handed over one after another, so the last is the address's newest connection.
      const hogs: net.Socket[] = [];
      for (let i = 0; i < maxThreads; i++) {
        const hog = await connectFrom('127.0.0.2', port);
        sockets.push(hog);
        assert.equal(await echoes(hog, 'x'), true, `connection ${i} from 127.0.0.2 has a thread`);
        hogs.push(hog);
      }
      // The same address queues more before the other client comes: a FIFO queue would serve these first.
      const queuedHogs = [await connectFrom('127.0.0.2', port), await connectFrom('127.0.0.2', port)];
      sockets.push(...queuedHogs);
      for (const socket of queuedHogs) socket.on('error', () => {});
      // Each holder moves a byte every 100 ms: never quiet for the 5 s that frees a thread otherwise.
      const echoed = hogs.map(() => 0);
      hogs.forEach((hog, i) => {
        hog.on('data', (chunk: Buffer) => (echoed[i]! += chunk.length));
        timers.push(setInterval(() => hog.writable && hog.write('.'), 100));
      });
      const newestClosed = closed(hogs.at(-1)!);

      const client = await connectFrom('127.0.0.1', port);
      sockets.push(client);
      client.write('served');
      assert.equal((await readBytes(client, 6, 20_000)).toString(), 'served', 'the client from 127.0.0.1 gets its echo');
      await newestClosed;
      assert.ok(await waitFor(() => server.metrics().errors.SOCKTUNE_ERR_MAX_THREADS === 1, 5000), JSON.stringify(server.metrics().errors));
      assert.equal(server.metrics().errors.SOCKTUNE_ERR_TIMEOUT, undefined, 'taken back by the share rule, not the quiet one');
      // The trickling goes on on the other seven threads.
      const before = [...echoed];
      assert.ok(
        await waitFor(() => hogs.slice(0, -1).every((_, i) => echoed[i]! > before[i]!), 5000),
        'every other connection from 127.0.0.2 is still echoed',
      );
      assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_THREADS, 1, 'one thread taken back, no more');
      assert.equal(
        queuedHogs.every((socket) => socket.bytesRead === 0 && !socket.closed),
        true,
        "127.0.0.2's queued ones still wait",
      );

      for (const timer of timers.splice(0)) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      await assertBaseline(server, maxThreads);
    },
  );

  test(
    `thread-per-conn${variant}: a single address may use the whole pool; its queued connections take no thread back`,
    { timeout: 30_000 },
    async (t) => {
      const maxThreads = 4;
      const queued = 2;
      // maxConnections counts the queued ones: the next newcomer's refusal shows both were taken in and queued.
      const server = createServer({
        ioModel: 'thread-per-conn',
        blocking,
        maxThreads,
        minThreads: maxThreads,
        maxConnections: maxThreads + queued,
        handler: 'echo',
      });
      const sockets: net.Socket[] = [];
      t.after(async () => {
        for (const socket of sockets) socket.destroy();
        await server.close();
      });
      const { port } = (await server.listen()) as AddressInfo;
      const holders: net.Socket[] = [];
      for (let i = 0; i < maxThreads; i++) {
        const holder = await connectFrom('127.0.0.1', port);
        sockets.push(holder);
        assert.equal(await echoes(holder, 'x'), true);
        holders.push(holder);
      }
      const waiting: net.Socket[] = [];
      for (let i = 0; i < queued; i++) {
        const socket = await connectFrom('127.0.0.1', port);
        sockets.push(socket);
        socket.on('error', () => {});
        socket.write(`w${i}`);
        waiting.push(socket);
      }
      const over = await connectFrom('127.0.0.1', port);
      sockets.push(over);
      over.on('error', () => {});
      await closed(over);
      assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_CONNECTIONS, 1);

      for (const holder of holders) assert.equal(await echoes(holder, 'still'), true, 'no holder was taken back');
      assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_THREADS, undefined);
      // A holder that leaves frees its thread for the oldest waiting connection, then the next.
      for (let i = 0; i < queued; i++) {
        holders[i]!.destroy();
        assert.equal((await readBytes(waiting[i]!, 2, 10_000)).toString(), `w${i}`);
      }
      assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_THREADS, undefined);

      for (const socket of sockets) socket.destroy();
      await assertBaseline(server, maxThreads);
    },
  );

  // A blocking thread is taken back through a flag: it must not carry over to the connection handed over next.
  test(`thread-per-conn${variant}: a taken-back thread serves the next connection handed to it`, { timeout: 30_000 }, async (t) => {
    const server = createServer({ ioModel: 'thread-per-conn', blocking, maxThreads: 2, minThreads: 2, handler: 'echo' });
    const sockets: net.Socket[] = [];
    t.after(async () => {
      for (const socket of sockets) socket.destroy();
      await server.close();
    });
    const { port } = (await server.listen()) as AddressInfo;
    for (let i = 0; i < 2; i++) {
      const hog = await connectFrom('127.0.0.2', port);
      sockets.push(hog);
      hog.on('error', () => {});
      assert.equal(await echoes(hog, 'x'), true);
    }
    const first = await connectFrom('127.0.0.1', port);
    sockets.push(first);
    assert.equal(await echoes(first, 'one'), true, 'served on the thread 127.0.0.2 gave up');
    // Each address now holds its share (1 of 2): the next one from 127.0.0.1 takes no thread back.
    const second = await connectFrom('127.0.0.1', port);
    sockets.push(second);
    second.write('two');
    first.destroy();
    await once(first, 'close');
    assert.equal((await readBytes(second, 3, 10_000)).toString(), 'two');
    assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_THREADS, 1);
  });
}
