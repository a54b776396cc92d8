import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { createServer, type ServerOptions } from '../../../src/index.ts';
import { RemoteTest } from '../../../src/bench/control/remote-test.ts';
import { ControlServer } from '../../../src/bench/servers/control/control-server.ts';
import { closed, echoes, waitFor } from '../../../testkit/helpers.ts';

function connectFrom(localAddress: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(socket));
    socket.once('error', reject);
  });
}

const MODELS: [string, ServerOptions][] = [
  ['loop', { ioModel: 'loop' }],
  ['workers (reuseport)', { ioModel: 'workers', workers: 2 }],
  ['thread-per-conn', { ioModel: 'thread-per-conn', maxThreads: 2 }],
  ['io-uring', { ioModel: 'io-uring', workers: 1 }],
];

for (const [name, options] of MODELS) {
  test(`${name}: allowedPeers serves only those addresses; the others are closed and counted`, async () => {
    const server = createServer({ ...options, allowedPeers: ['127.0.0.2'], handler: 'echo' });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      const allowed = await connectFrom('127.0.0.2', port);
      assert.equal(await echoes(allowed, 'hi'), true);
      const stranger = await connectFrom('127.0.0.3', port);
      assert.equal(await echoes(stranger, 'hi'), false);
      await closed(stranger);
      assert.ok(await waitFor(() => server.metrics().errors.SOCKTUNE_ERR_REFUSED === 1), 'the refusal is counted');
      allowed.destroy();
    } finally {
      await server.close();
    }
  });
}

test("socktune server: a test's data port serves only the client that started it", async () => {
  const server = new ControlServer({ port: 0 });
  const { port } = (await server.listen()) as AddressInfo;
  const remote = await RemoteTest.start({ host: '127.0.0.1', port }, 'echo', {}, 5000);
  try {
    const dataPort = (remote.data as { port: number }).port;
    const own = await connectFrom('127.0.0.1', dataPort);
    assert.equal(await echoes(own, 'hi'), true);
    const stranger = await connectFrom('127.0.0.9', dataPort);
    assert.equal(await echoes(stranger, 'hi'), false, 'another address cannot join the test');
    own.end();
    await closed(own);
    await remote.finish();
  } finally {
    await server.close();
  }
});
