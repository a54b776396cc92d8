import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from '../../../src/index.ts';
import { closed, readBytes } from '../../../testkit/helpers.ts';

const handlerModule = new URL('../../fixtures/upper-handler.ts', import.meta.url);

for (const ioModel of ['workers', 'thread-per-conn'] as const) {
  test(`${ioModel}: a handler module serves connections in other threads`, async (t) => {
    const server = createServer({ ioModel, workers: 2, handler: { module: handlerModule } });
    t.after(() => server.close());
    const { port } = (await server.listen()) as AddressInfo;
    const socket = await connect({ port });
    socket.write('hello');
    assert.equal((await readBytes(socket, 5)).toString(), 'HELLO');
    socket.destroy();
  });
}

test('thread-per-conn blocking: a blocking handler module export', async (t) => {
  const server = createServer({
    ioModel: 'thread-per-conn',
    blocking: true,
    handler: { module: handlerModule, exportName: 'blockingUpperCase' },
  });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const socket = await connect({ port });
  socket.end('blocking');
  assert.equal((await readBytes(socket, Number.MAX_SAFE_INTEGER)).toString(), 'BLOCKING');
});

test('a missing handler export is SOCKTUNE_ERR_HANDLER at listen()', async () => {
  const server = createServer({ ioModel: 'workers', workers: 1, handler: { module: handlerModule, exportName: 'nope' } });
  await assert.rejects(server.listen(), { code: 'SOCKTUNE_ERR_HANDLER', message: /no function export 'nope'/ });
});

for (const [name, options] of [
  ['workers', { ioModel: 'workers', workers: 2, distribution: 'handoff' }],
  ['thread-per-conn', { ioModel: 'thread-per-conn', maxThreads: 4 }],
] as const) {
  test(`${name}: a crashed thread is replaced; connections on other threads carry on`, async (t) => {
    const server = createServer({ ...options, handler: { module: handlerModule } });
    t.after(() => server.close());
    const { port } = (await server.listen()) as AddressInfo;
    const survivor = await connect({ port });
    const victim = await connect({ port });
    victim.on('error', () => {});
    const crash = once(server, 'workerCrash');
    victim.write('crash');
    const [error] = (await crash) as [Error];
    assert.match(error.message, /handler crashed on purpose/);
    await closed(victim);
    survivor.write('alive');
    assert.equal((await readBytes(survivor, 5)).toString(), 'ALIVE');
    assert.equal(server.metrics().errors.SOCKTUNE_ERR_WORKER_CRASHED, 1);
    const [a, b] = [await connect({ port }), await connect({ port })];
    a.write('one');
    b.write('two');
    assert.equal((await readBytes(a, 3)).toString(), 'ONE');
    assert.equal((await readBytes(b, 3)).toString(), 'TWO');
    for (const socket of [survivor, a, b]) socket.destroy();
  });
}

test('thread-per-conn: over maxThreads, overflow "refuse" closes the newcomer', async (t) => {
  const server = createServer({ ioModel: 'thread-per-conn', maxThreads: 1, overflow: 'refuse' });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const first = await connect({ port });
  first.write('x');
  await readBytes(first, 1);
  const refused = once(server, 'refused');
  const second = await connect({ port });
  second.on('error', () => {});
  await refused;
  await closed(second);
  assert.equal(server.metrics().errors.SOCKTUNE_ERR_MAX_THREADS, 1);
  first.destroy();
});

test('thread-per-conn: over maxThreads, overflow "queue" serves the newcomer when a thread frees up', async (t) => {
  const server = createServer({ ioModel: 'thread-per-conn', maxThreads: 1, overflow: 'queue' });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const first = await connect({ port });
  first.write('1');
  await readBytes(first, 1);
  const second = await connect({ port });
  second.write('2');
  const answered = readBytes(second, 1);
  let early = false;
  void answered.then(() => (early = true));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(early, false, 'queued connection was served while the only thread was busy');
  first.end();
  assert.equal((await answered).toString(), '2');
  second.destroy();
});

test('unix-domain socket with every model', async () => {
  for (const ioModel of ['loop', 'workers', 'thread-per-conn', 'io-uring'] as const) {
    const path = `/tmp/socktune-test-${process.pid}-${ioModel}.sock`;
    const server = createServer({ ioModel, workers: 1, path, receiveBufferSize: 65536 });
    assert.deepEqual(await server.listen(), { family: 'unix', path });
    const socket = await connect({ path });
    socket.write('unix');
    assert.equal((await readBytes(socket, 4)).toString(), 'unix');
    socket.destroy();
    await server.close();
  }
});
