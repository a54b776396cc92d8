import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { connect, createServer, type ServerOptions } from '../../../src/index.ts';
import { closed, readBytes, waitFor } from '../../../testkit/helpers.ts';

const TOKEN = Buffer.from('0123456789abcdef');

const MODELS: [string, ServerOptions][] = [
  ['loop', { ioModel: 'loop' }],
  ['loop, a connection handler', { ioModel: 'loop', handler: (socket) => socket.pipe(socket) }],
  ['workers (reuseport)', { ioModel: 'workers', workers: 2 }],
  ['workers (handoff)', { ioModel: 'workers', workers: 2, distribution: 'handoff' }],
  ['thread-per-conn', { ioModel: 'thread-per-conn', maxThreads: 2 }],
  ['thread-per-conn, blocking', { ioModel: 'thread-per-conn', maxThreads: 2, blocking: true }],
  ['io-uring', { ioModel: 'io-uring', workers: 2 }],
];

for (const [name, options] of MODELS) {
  test(`${name}: connectionToken serves connections that send it first, bytes after it included; others are closed and counted`, async () => {
    const server = createServer({ handler: 'echo', ...options, connectionToken: TOKEN });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      // The request rides in the same write as the token: the server must serve it as the first read.
      const eager = net.connect({ port, host: '127.0.0.1' });
      eager.write(Buffer.concat([TOKEN, Buffer.from('hello')]));
      assert.equal((await readBytes(eager, 5)).toString(), 'hello');
      eager.write(' again');
      assert.equal((await readBytes(eager, 6)).toString(), ' again');
      eager.destroy();
      const member = await connect({ port, preamble: TOKEN });
      member.write('hi');
      assert.equal((await readBytes(member, 2)).toString(), 'hi');

      const stranger = net.connect({ port, host: '127.0.0.1' });
      stranger.on('error', () => {});
      stranger.write('fedcba9876543210hello');
      let answered = 0;
      stranger.on('data', (chunk: Buffer) => (answered += chunk.length));
      await closed(stranger);
      assert.equal(answered, 0, 'a wrong token gets nothing back');
      assert.ok(await waitFor(() => server.metrics().errors.SOCKTUNE_ERR_AUTH === 1), 'the refusal is counted');
      member.destroy();
    } finally {
      await server.close();
    }
  });
}

test('connectionToken: a peer that sends part of the token and goes away is uncounted', async () => {
  const server = createServer({ handler: 'discard', maxConnectionsPerIp: 1, connectionToken: TOKEN });
  const { port } = (await server.listen()) as AddressInfo;
  try {
    const partial = net.connect({ port, host: '127.0.0.1' });
    partial.on('error', () => {});
    partial.write(TOKEN.subarray(0, 5));
    await new Promise((resolve) => setTimeout(resolve, 100));
    partial.destroy();
    await waitFor(() => server.metrics().errors.SOCKTUNE_ERR_AUTH === 1);
    // The single slot of this address is free again.
    const member = await connect({ port, preamble: TOKEN });
    member.write('x');
    assert.ok(await waitFor(() => server.metrics().bytesIn >= 1), 'the next member is served');
    member.destroy();
  } finally {
    await server.close();
  }
});

for (const [name, options] of MODELS) {
  test(`${name}: close() cuts connections still reading their token at once, and lets none in after it began`, async () => {
    const server = createServer({ handler: 'echo', ...options, connectionToken: TOKEN, closeTimeout: 300 });
    const { port } = (await server.listen()) as AddressInfo;
    // Connected, but the token comes late: one never sends it, the other only after close() began.
    const silent = net.connect({ port, host: '127.0.0.1' });
    const late = net.connect({ port, host: '127.0.0.1' });
    for (const socket of [silent, late]) socket.on('error', () => {});
    await Promise.all([silent, late].map((socket) => new Promise((resolve) => socket.once('connect', resolve))));
    const started = performance.now();
    const closing = server.close();
    late.write(Buffer.concat([TOKEN, Buffer.from('late')]));
    await closing;
    assert.ok(performance.now() - started < 3000, `close() took ${Math.round(performance.now() - started)} ms with a 300 ms closeTimeout`);
    await Promise.all([closed(silent), closed(late)]);
    assert.equal(server.metrics().connectionsCurrent, 0);
    assert.equal(server.metrics().errors.SOCKTUNE_ERR_AUTH ?? 0, 0, 'a close is no authentication failure');
  });
}
