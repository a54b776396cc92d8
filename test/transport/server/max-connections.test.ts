import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, type AddressInfo, type Socket } from 'node:net';
import { createServer, type ServerOptions } from '../../../src/index.ts';
import { closed, connectedClient, echoes, waitFor } from '../../../testkit/helpers.ts';

const MODELS: [string, ServerOptions][] = [
  ['loop', { ioModel: 'loop' }],
  ['workers (reuseport)', { ioModel: 'workers', workers: 2 }],
  ['workers (handoff)', { ioModel: 'workers', workers: 2, distribution: 'handoff' }],
  ['thread-per-conn', { ioModel: 'thread-per-conn', maxThreads: 8 }],
  ['io-uring', { ioModel: 'io-uring', workers: 2 }],
];

for (const [name, options] of MODELS) {
  test(`${name}: over maxConnections a newcomer is closed at once and counted; a freed slot is used again`, async () => {
    const server = createServer({ ...options, maxConnections: 3, handler: 'echo' });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      const first = await Promise.all([0, 1, 2].map(() => connectedClient(port)));
      for (const socket of first) assert.equal(await echoes(socket, 'ping'), true);
      const extra = await connectedClient(port);
      assert.equal(await echoes(extra, 'ping'), false, 'the fourth connection is closed');
      await closed(extra);
      assert.ok(await waitFor(() => server.metrics().errors.SOCKTUNE_ERR_MAX_CONNECTIONS === 1), 'the refusal is counted');
      first[0]!.end();
      await closed(first[0]!);
      await waitFor(() => server.metrics().connectionsCurrent <= 2);
      // thread-per-conn hands the slot back when its thread reports the connection done, a moment
      // after the count drops: a newcomer in that moment is refused like any over the cap, so a few tries.
      const tries: Socket[] = [];
      let served = false;
      for (let attempt = 0; attempt < 20 && !served; attempt++) {
        if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 50));
        tries.push(await connectedClient(port));
        served = await echoes(tries.at(-1)!, 'ping');
      }
      assert.equal(served, true, 'a slot freed by a close is used again');
      for (const socket of [...first.slice(1), ...tries]) socket.destroy();
    } finally {
      await server.close();
    }
  });
}

function connectFrom(localAddress: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

for (const [name, options] of [
  ...MODELS,
  ['thread-per-conn blocking', { ioModel: 'thread-per-conn', maxThreads: 8, blocking: true }] as [string, ServerOptions],
]) {
  test(`${name}: over maxConnectionsPerIp one address is turned away, others are not; a close frees its count`, async () => {
    const server = createServer({ ...options, maxConnectionsPerIp: 2, handler: 'echo' });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      const two = await Promise.all([0, 1].map(() => connectFrom('127.0.0.2', port)));
      for (const socket of two) assert.equal(await echoes(socket, 'ping'), true);
      const third = await connectFrom('127.0.0.2', port);
      assert.equal(await echoes(third, 'ping'), false, 'a third connection from the same address is closed');
      const other = await connectFrom('127.0.0.3', port);
      assert.equal(await echoes(other, 'ping'), true, 'another address is served');
      assert.ok(await waitFor(() => server.metrics().errors.SOCKTUNE_ERR_MAX_CONNECTIONS === 1));
      two[0]!.end();
      await closed(two[0]!);
      await waitFor(() => server.metrics().connectionsCurrent <= 2);
      const again = await connectFrom('127.0.0.2', port);
      assert.equal(await echoes(again, 'ping'), true, 'the closed connection freed its count');
      for (const socket of [two[1]!, other, again]) socket.destroy();
    } finally {
      await server.close();
    }
  });
}

for (const [name, options] of MODELS.filter(([, options]) => options.ioModel === 'io-uring' || options.distribution === 'handoff')) {
  test(`${name}: a burst of connections is held to maxConnections, those on their way to a thread counted too`, async () => {
    const server = createServer({ ...options, maxConnections: 12, handler: 'echo' });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      const sockets = await Promise.all(Array.from({ length: 40 }, () => connectedClient(port)));
      const served = await Promise.all(sockets.map((socket) => echoes(socket, 'ping')));
      assert.equal(served.filter(Boolean).length, 12, 'exactly maxConnections are served');
      assert.equal(server.metrics().connectionsCurrent, 12);
      for (const socket of sockets) socket.destroy();
    } finally {
      await server.close();
    }
  });
}
