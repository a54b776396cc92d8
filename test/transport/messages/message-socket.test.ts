import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  connect,
  connectMessages,
  createMessageServer,
  createServer,
  encodeFrame,
  type MessageSocket,
  type ServerOptions,
} from '../../../src/index.ts';
import { closed, readBytes } from '../../../testkit/helpers.ts';

function collect(messages: MessageSocket, count: number, timeoutMs = 20_000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const received: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`timed out after ${received.length} of ${count} messages`)), timeoutMs);
    messages.on('message', (message: Buffer) => {
      received.push(Buffer.from(message));
      if (received.length === count) {
        clearTimeout(timer);
        resolve(received);
      }
    });
  });
}

const payload = (i: number): Buffer => Buffer.from(`message ${i} `.repeat((i % 7) + 1));

test('echo: 20k small messages arrive whole and in order, coalesced into few writes', async (t) => {
  const server = createMessageServer({}, (messages) => messages.on('message', (message: Buffer) => messages.send(message)));
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const client = await connectMessages({ port });
  const echoed = collect(client, 20_000);
  for (let i = 0; i < 20_000; i++) client.send(payload(i));
  const received = await echoed;
  received.forEach((message, i) => assert.deepEqual(message, payload(i)));
  const stats = client.stats();
  assert.equal(stats.messagesOut, 20_000);
  assert.ok(stats.averageBatch > 100, `messages per flush: ${stats.averageBatch}`);
  assert.equal((await client.close()).unsent, 0);
});

test('zero-length and large messages keep their order across flushes', async (t) => {
  const server = createMessageServer({}, (messages) => messages.on('message', (message: Buffer) => messages.send(message)));
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const client = await connectMessages({ port });
  const sent = [
    Buffer.alloc(0),
    Buffer.alloc(300_000, 1),
    Buffer.from('x'),
    Buffer.alloc(0),
    Buffer.alloc(5000, 2),
    Buffer.alloc(1_000_000, 3),
  ];
  const echoed = collect(client, sent.length);
  client.sendBatch(sent);
  assert.deepEqual(await echoed, sent);
  await client.close();
});

for (const ioModel of ['loop', 'workers', 'thread-per-conn'] as const) {
  for (const blocking of ioModel === 'thread-per-conn' ? [false, true] : [false]) {
    test(`built-in msg-echo under ${ioModel}${blocking ? ' (blocking)' : ''}`, async (t) => {
      const options: ServerOptions = { ioModel, blocking, workers: 2, handler: 'msg-echo' };
      const server = createServer(options);
      t.after(() => server.close());
      const { port } = (await server.listen()) as AddressInfo;
      const client = await connectMessages({ port });
      const echoed = collect(client, 5000);
      for (let i = 0; i < 5000; i++) client.send(payload(i));
      (await echoed).forEach((message, i) => assert.deepEqual(message, payload(i)));
      await client.close();
      assert.equal(server.metrics().messagesIn, 5000);
    });
  }
}

test('an oversized frame closes that connection with SOCKTUNE_ERR_FRAME_TOO_LARGE; others carry on', async (t) => {
  const errors: string[] = [];
  const server = createMessageServer({ messages: { maxMessageSize: 1024 } }, (messages) => {
    messages.on('error', (error: { code: string }) => errors.push(error.code));
    messages.on('message', (message: Buffer) => messages.send(message));
  });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const healthy = await connectMessages({ port });
  const offender = await connect({ port });
  offender.on('error', () => {});
  offender.write(encodeFrame(Buffer.alloc(2048)));
  await closed(offender);
  assert.deepEqual(errors, ['SOCKTUNE_ERR_FRAME_TOO_LARGE']);
  const echoed = collect(healthy, 1);
  healthy.send(Buffer.from('still fine'));
  assert.deepEqual((await echoed)[0], Buffer.from('still fine'));
  await healthy.close();
});

test('a frame truncated at close is reported as SOCKTUNE_ERR_PROTOCOL', async (t) => {
  const server = createMessageServer({}, (messages) => {
    messages.once('error', (error) => server.emit('message-error', error));
  });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const reported = once(server, 'message-error');
  const client = await connect({ port });
  client.end(encodeFrame(Buffer.alloc(100)).subarray(0, 50));
  const [error] = (await reported) as [{ code: string; message: string }];
  assert.equal(error.code, 'SOCKTUNE_ERR_PROTOCOL');
  assert.match(error.message, /stream ended inside a frame \(50 bytes/);
});

test("a 'message' listener that throws is reported as the application's failure (SOCKTUNE_ERR_HANDLER, cause kept), not the peer's", async (t) => {
  const server = createMessageServer({}, (messages) => {
    messages.on('message', () => {
      throw new TypeError('bug in the application');
    });
    messages.once('error', (error) => server.emit('message-error', error));
  });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const reported = once(server, 'message-error');
  const client = await connect({ port });
  client.on('error', () => {});
  client.write(encodeFrame(Buffer.from('hello')));
  const [error] = (await reported) as [{ code: string; message: string; cause: unknown }];
  assert.equal(error.code, 'SOCKTUNE_ERR_HANDLER');
  assert.match(error.message, /a listener of this MessageSocket threw: bug in the application/);
  assert.ok(error.cause instanceof TypeError);
  await closed(client);
});

test('slow consumer: reading pauses under backpressure, the queue stays bounded, nothing is lost', async (t) => {
  let serverSide: MessageSocket | undefined;
  let maxQueued = 0;
  const highWaterMark = 256 * 1024;
  const server = createMessageServer({ messages: { highWaterMark } }, (messages) => {
    serverSide = messages;
    messages.on('message', (message: Buffer) => {
      messages.send(message);
      maxQueued = Math.max(maxQueued, messages.queuedBytes);
    });
  });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  // A client that sends 64 MiB of echo requests while reading nothing back.
  const client = await connect({ port, receiveBufferSize: 65536, sendBufferSize: 65536 });
  client.pause();
  const message = encodeFrame(Buffer.alloc(1000, 9));
  const total = 64 * 1024;
  let written = 0;
  /** Writes the rest of the requests as the socket takes them; resolves when all are written. */
  const writeAll = (): Promise<void> =>
    new Promise<void>((resolve) => {
      const pump = (): void => {
        while (written < total) {
          written++;
          if (!client.write(message)) return void client.once('drain', pump);
        }
        resolve();
      };
      pump();
    });
  // The server stops reading, so the client's writes back up: give it a moment, then check.
  await Promise.race([writeAll(), new Promise((resolve) => setTimeout(resolve, 1500))]);
  assert.ok(written < total, 'the server stopped reading, so the client could not write everything');
  assert.ok(maxQueued < highWaterMark + 128 * 1024, `server queue peaked at ${maxQueued} bytes`);
  // Now read: every echo comes back and the rest of the requests go through.
  client.resume();
  const echoedBytes = readBytes(client, total * message.length, 60_000);
  await writeAll();
  assert.equal((await echoedBytes).length, total * message.length);
  assert.equal(serverSide!.stats().messagesIn, total);
  client.destroy();
});

/**
 * A server-side MessageSocket whose peer never reads, filled by `send` until it overflows: whatever
 * way it sends, the queue never passes maxQueuedBytes, and `overflow` ends the connection or drops.
 */
async function fillUnreadPeer(
  t: TestContext,
  maxQueuedBytes: number,
  send: (messages: MessageSocket) => void,
  rounds: number,
  yieldEvery: number,
): Promise<void> {
  for (const overflow of ['error', 'drop'] as const) {
    let serverSide: MessageSocket | undefined;
    const errors: string[] = [];
    const server = createMessageServer(
      { sendBufferSize: 16384, messages: { maxQueuedBytes, overflow, pauseReadsWhileBackpressured: false } },
      (messages) => {
        serverSide = messages;
        messages.on('error', (error: { code: string }) => errors.push(error.code));
      },
    );
    t.after(() => server.close());
    const { port } = (await server.listen()) as AddressInfo;
    const client = await connect({ port, receiveBufferSize: 8192 });
    client.pause();
    client.on('error', () => {});
    while (!serverSide) await new Promise((resolve) => setImmediate(resolve));
    for (let round = 0; round < rounds && !serverSide.socket.destroyed; round++) {
      send(serverSide);
      assert.ok(serverSide.queuedBytes <= maxQueuedBytes + 10_004, 'never past the cap');
      if (round % yieldEvery === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    if (overflow === 'error') assert.deepEqual(errors, ['SOCKTUNE_ERR_SLOW_CONSUMER']);
    else assert.ok(serverSide.stats().dropped > 0);
    client.destroy();
    await server.close();
  }
}

test('overflow: "error" ends a consumer past maxQueuedBytes; "drop" drops and counts', async (t) => {
  const chunk = Buffer.alloc(10_000);
  await fillUnreadPeer(t, 512 * 1024, (messages) => messages.send(chunk), 2000, 50);
});

test('sendBatch: the same caps as send() (overflow drops or ends, batch N flushes every N), the socket read once per batch', async (t) => {
  const batch = new Array<Buffer>(100).fill(Buffer.alloc(10_000));
  await fillUnreadPeer(t, 256 * 1024, (messages) => messages.sendBatch(batch), 200, 1);
  const server = createMessageServer({}, (messages) => messages.on('message', (message: Buffer) => messages.send(message)));
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const client = await connectMessages({ port, messages: { batch: 10 } });
  const echoed = collect(client, 95);
  assert.equal(client.sendBatch(Array.from({ length: 95 }, (_, i) => payload(i))), true);
  assert.equal(client.stats().flushes, 9, 'every 10 messages, in the call');
  (await echoed).forEach((message, i) => assert.deepEqual(message, payload(i)));
  assert.equal(client.stats().flushes, 10, 'the last 5 at the end of the tick');
  await client.close();
});

test('graceful close flushes everything queued; the async iterator yields stable copies', async (t) => {
  const received: Buffer[] = [];
  const done = new Promise<void>((resolve) => {
    const server = createMessageServer({}, (messages) => {
      void (async () => {
        for await (const message of messages) received.push(message);
        resolve();
      })();
    });
    t.after(() => server.close());
    void server.listen().then(async (address) => {
      const client = await connectMessages({ port: (address as AddressInfo).port });
      for (let i = 0; i < 3000; i++) client.send(payload(i));
      assert.deepEqual(await client.close(), { unsent: 0 });
    });
  });
  await done;
  assert.equal(received.length, 3000);
  received.forEach((message, i) => assert.deepEqual(message, payload(i)));
});

test('messageHandler exported from a module serves messages in worker threads', async (t) => {
  const server = createServer({
    ioModel: 'workers',
    workers: 2,
    handler: { module: new URL('../../fixtures/message-upper-handler.ts', import.meta.url) },
  });
  t.after(() => server.close());
  const { port } = (await server.listen()) as AddressInfo;
  const client = await connectMessages({ port });
  const answers = collect(client, 3);
  client.sendBatch([Buffer.from('one'), Buffer.from('two'), Buffer.from('three')]);
  assert.deepEqual((await answers).map(String), ['ONE', 'TWO', 'THREE']);
  await client.close();
});
