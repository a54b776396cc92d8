import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { createServer, type ServerOptions } from '../../src/index.ts';
import { closed, connectedClient, readBytes } from '../helpers.ts';

/** Whether the server answers on this connection (echo), or closes it. */
async function served(socket: net.Socket): Promise<boolean> {
  socket.on('error', () => {});
  socket.write('ping');
  const reply = await readBytes(socket, 4, 5000).catch(() => Buffer.alloc(0));
  return reply.toString() === 'ping';
}

const MODELS: [string, ServerOptions][] = [
  ['loop', { ioModel: 'loop' }],
  ['workers (reuseport)', { ioModel: 'workers', workers: 2 }],
  ['workers (handoff)', { ioModel: 'workers', workers: 2, distribution: 'handoff' }],
  ['thread-per-conn', { ioModel: 'thread-per-conn', maxThreads: 8 }],
];

for (const [name, options] of MODELS) {
  test(`${name}: over maxConnections a newcomer is closed at once and counted; a freed slot is used again`, async () => {
    const server = createServer({ ...options, maxConnections: 3, handler: 'echo' });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      const first = await Promise.all([0, 1, 2].map(() => connectedClient(port)));
      for (const socket of first) assert.equal(await served(socket), true);
      const extra = await connectedClient(port);
      assert.equal(await served(extra), false, 'the fourth connection is closed');
      await closed(extra);
      assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_CONNECTIONS, 1);
      first[0]!.end();
      await closed(first[0]!);
      const deadline = Date.now() + 5000;
      while (server.metrics().connectionsCurrent > 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      const again = await connectedClient(port);
      assert.equal(await served(again), true, 'a slot freed by a close is used again');
      for (const socket of [...first.slice(1), again]) socket.destroy();
    } finally {
      await server.close();
    }
  });
}
