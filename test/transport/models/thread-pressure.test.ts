import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { createServer } from '../../../src/index.ts';
import { echoes, readBytes, waitFor } from '../../../testkit/helpers.ts';

function connectFrom(localAddress: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

for (const blocking of [false, true]) {
  test(
    `thread-per-conn${blocking ? ' (blocking)' : ''}: quiet connections holding every thread give one up within seconds when a client waits`,
    { timeout: 30_000 },
    async () => {
      const server = createServer({ ioModel: 'thread-per-conn', blocking, maxThreads: 2, handler: 'echo' });
      const { port } = (await server.listen()) as AddressInfo;
      try {
        // Two quiet connections (one byte each, then nothing) take both threads; idleTimeout is 300 s. They come
        // from two addresses, each holding no more than its share, so the share rule takes nothing back: the quiet rule must.
        const quiet = await Promise.all([connectFrom('127.0.0.2', port), connectFrom('127.0.0.4', port)]);
        for (const socket of quiet) {
          socket.on('error', () => {});
          assert.equal(await echoes(socket, 'x'), true);
        }
        const began = performance.now();
        const good = await connectFrom('127.0.0.3', port);
        good.write('served');
        assert.equal(
          (await readBytes(good, 6, 12_000)).toString(),
          'served',
          'the waiting client is served once a quiet one gave its thread up',
        );
        const waited = performance.now() - began;
        assert.ok(waited > 3000 && waited < 10_000, `served after ${Math.round(waited)} ms (quiet for 5 s while others wait)`);
        assert.ok(await waitFor(() => (server.metrics().errors.SOCKTUNE_ERR_TIMEOUT ?? 0) >= 1, 5000));
        assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_THREADS, undefined);
        good.destroy();
        for (const socket of quiet) socket.destroy();
      } finally {
        await server.close();
      }
    },
  );
}
