import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { createServer, type ServerOptions } from '../../../src/index.ts';
import { closed, connectedClient, readBytes } from '../../../testkit/helpers.ts';

const MODELS: [string, ServerOptions][] = [
  ['loop', { ioModel: 'loop' }],
  ['workers', { ioModel: 'workers', workers: 2 }],
  ['thread-per-conn', { ioModel: 'thread-per-conn', maxThreads: 4 }],
  ['thread-per-conn blocking', { ioModel: 'thread-per-conn', maxThreads: 4, blocking: true }],
  ['io-uring', { ioModel: 'io-uring', workers: 2 }],
];

for (const [name, options] of MODELS) {
  test(`${name}: a quiet connection is closed after idleTimeout and counted; a busy one stays`, { timeout: 30_000 }, async () => {
    const server = createServer({ ...options, idleTimeout: 400, handler: 'echo' });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      const quiet = await connectedClient(port);
      quiet.on('error', () => {});
      quiet.resume();
      const busy = await connectedClient(port);
      const started = Date.now();
      const pinging = setInterval(() => busy.write('p'), 100);
      let echoed = 0;
      busy.on('data', (chunk: Buffer) => (echoed += chunk.length));
      await closed(quiet);
      const quietFor = Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 600));
      clearInterval(pinging);
      assert.ok(quietFor >= 300, `the quiet connection was closed after ${quietFor} ms, not before its idle time`);
      assert.equal(busy.closed, false, 'a connection in use is not idle');
      busy.write('!');
      assert.ok(echoed > 0);
      assert.equal(server.metrics().errors.SOCKTUNE_ERR_TIMEOUT, 1);
      busy.destroy();
    } finally {
      await server.close();
    }
  });
}

test('idleTimeout 0: a quiet connection stays open', async () => {
  const server = createServer({ idleTimeout: 0, handler: 'echo' });
  const { port } = (await server.listen()) as AddressInfo;
  const quiet = await connectedClient(port);
  await new Promise((resolve) => setTimeout(resolve, 300));
  quiet.write('still here');
  assert.equal((await readBytes(quiet, 10)).toString(), 'still here');
  quiet.destroy();
  await server.close();
});
