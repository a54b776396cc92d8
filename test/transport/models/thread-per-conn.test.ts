import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type AddressInfo } from 'node:net';
import { createServer } from '../../../src/index.ts';
import { closed, connectedClient, echoes, waitFor } from '../../../testkit/helpers.ts';

for (const blocking of [false, true]) {
  test(`thread-per-conn${blocking ? ' (blocking)' : ''}: maxConnections counts connections waiting for a thread or for a thread to start, not only those served`, async () => {
    const server = createServer({ ioModel: 'thread-per-conn', blocking, maxThreads: 8, maxConnections: 5, handler: 'echo' });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      const sockets = await Promise.all(Array.from({ length: 40 }, () => connectedClient(port)));
      for (const socket of sockets) socket.on('error', () => {});
      await new Promise((resolve) => setTimeout(resolve, 500));
      const refused = sockets.filter((socket) => socket.destroyed || socket.readableEnded).length;
      assert.ok(
        await waitFor(() => (server.metrics().errors.SOCKTUNE_ERR_MAX_CONNECTIONS ?? 0) === 35, 5000),
        JSON.stringify(server.metrics().errors),
      );
      assert.ok(refused <= 35);
      for (const socket of sockets) socket.destroy();
    } finally {
      await server.close();
    }
  });
}

test('thread-per-conn: a queued connection whose client left is let go, not served later', async () => {
  const server = createServer({ ioModel: 'thread-per-conn', maxThreads: 1, handler: 'echo' });
  const { port } = (await server.listen()) as AddressInfo;
  try {
    const holder = await connectedClient(port);
    assert.equal(await echoes(holder, 'first'), true, 'the one thread serves the first client');
    const quitter = await connectedClient(port);
    quitter.destroy();
    assert.ok(
      await waitFor(() => (server.metrics().errors.SOCKTUNE_ERR_PEER_GONE ?? 0) === 1, 5000),
      `the queue sweep lets it go: ${JSON.stringify(server.metrics().errors)}`,
    );
    const patient = await connectedClient(port);
    holder.destroy();
    await closed(holder);
    assert.equal(await echoes(patient, 'next'), true, 'the freed thread serves the next living client');
    patient.destroy();
  } finally {
    await server.close();
  }
});

test('thread-per-conn: minThreads are started at listen; threads beyond them end after threadIdleTimeout, however often they were reused', async () => {
  const server = createServer({ ioModel: 'thread-per-conn', maxThreads: 4, minThreads: 1, threadIdleTimeout: 1500, handler: 'echo' });
  const { port } = (await server.listen()) as AddressInfo;
  try {
    assert.equal(server.threads, 1, 'minThreads started before the first client');
    const serveThree = async (): Promise<void> => {
      const sockets = await Promise.all([1, 2, 3].map(() => connectedClient(port)));
      for (const socket of sockets) assert.equal(await echoes(socket, 'hello'), true);
      for (const socket of sockets) socket.destroy();
      await Promise.all(sockets.map(closed));
    };
    await serveThree();
    assert.equal(server.threads, 3);
    // Reused just before the first idle period would have ended: the clock starts again.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await serveThree();
    await new Promise((resolve) => setTimeout(resolve, 900));
    assert.equal(server.threads, 3, 'idle 0.9 s of 1.5 s: still kept');
    const threadsNow = (): number => server.threads;
    assert.ok(await waitFor(() => threadsNow() === 1, 5000), `threads beyond minThreads end: ${threadsNow()} left`);
    const late = await connectedClient(port);
    assert.equal(await echoes(late, 'again'), true, 'the kept thread serves the next client');
    late.destroy();
  } finally {
    await server.close();
  }
});

test('thread-per-conn: threadIdleTimeout 0 keeps every thread started', async () => {
  const server = createServer({ ioModel: 'thread-per-conn', maxThreads: 3, minThreads: 0, threadIdleTimeout: 0, handler: 'echo' });
  const { port } = (await server.listen()) as AddressInfo;
  try {
    assert.equal(server.threads, 0);
    const sockets = await Promise.all([1, 2].map(() => connectedClient(port)));
    for (const socket of sockets) assert.equal(await echoes(socket, 'x'), true);
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(server.threads, 2);
  } finally {
    await server.close();
  }
});
