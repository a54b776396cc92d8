/**
 * A peer that sends requests as fast as it can but reads the answers at 1 KiB/s: the server's queue
 * for it must stay under its cap the whole time (reading from that peer pauses), and the server
 * process must not grow with what the peer does not read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { createMessageServer, encodeFrame, type MessageSocket } from '../../src/index.ts';

const SECONDS = 3;
const READ_BYTES_PER_SECOND = 1024;

test(`slow consumer: a peer reading 1 KiB/s for ${SECONDS} s keeps the server's queue under its cap`, { timeout: 30_000 }, async (t) => {
  const highWaterMark = 64 * 1024;
  let maxQueued = 0;
  let serverSide: MessageSocket | undefined;
  const server = createMessageServer({ messages: { highWaterMark, maxQueuedBytes: 1024 * 1024 } }, (messages) => {
    serverSide = messages;
    messages.on('error', () => {});
    messages.on('message', (message: Buffer) => {
      messages.send(message);
      maxQueued = Math.max(maxQueued, messages.queuedBytes);
    });
  });
  const { port } = (await server.listen()) as AddressInfo;
  const rssBefore = process.memoryUsage().rss;
  const client = net.connect({ port, host: '127.0.0.1' });
  client.on('error', () => {});
  client.pause();
  const request = encodeFrame(Buffer.alloc(1000, 7));
  let written = 0;
  let read = 0;
  const until = Date.now() + SECONDS * 1000;
  const writer = (): void => {
    while (Date.now() < until && client.write(request)) written++;
    if (Date.now() < until) client.once('drain', writer);
  };
  client.once('connect', writer);
  // 1 KiB a second, in tenths.
  const reader = setInterval(() => {
    const chunk = client.read(READ_BYTES_PER_SECOND / 10) as Buffer | null;
    if (chunk) read += chunk.length;
  }, 100);
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  clearInterval(reader);
  const rssGrowth = process.memoryUsage().rss - rssBefore;
  t.diagnostic(
    `${written} requests written (${written * request.length} bytes), ${read} bytes read back in ${SECONDS} s; server queue peaked at ${maxQueued} bytes (highWaterMark ${highWaterMark}); process RSS +${(rssGrowth / 2 ** 20).toFixed(1)} MiB; messages the server took in: ${serverSide?.stats().messagesIn}`,
  );
  client.destroy();
  await server.close();
  assert.ok(read <= (SECONDS + 1) * READ_BYTES_PER_SECOND, 'the client really read slowly');
  assert.ok(written > 0, 'the client kept sending');
  // The queue stops growing at highWaterMark (reading pauses); one read's worth of requests may land on top.
  assert.ok(maxQueued <= highWaterMark + 256 * 1024, `server queue peaked at ${maxQueued} bytes`);
  assert.ok(rssGrowth < 64 * 1024 * 1024, `RSS grew by ${rssGrowth} bytes`);
});
