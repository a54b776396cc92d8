/**
 * Graceful shutdown under load: clients stream sequence-numbered messages, the application answers
 * each with an acknowledgement, and the server is closed in the middle. Every acknowledgement the
 * application sent must reach its client, in order and without a gap; the messages it never
 * acknowledged are what the clients must retry, and they are counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connectMessages, createMessageServer, type MessageSocket } from '../../src/index.ts';

const CLIENTS = 4;

function sequence(n: number): Buffer {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(n));
  return message;
}

test('server.close() under load: every message the application acknowledged is delivered, in order', { timeout: 60_000 }, async (t) => {
  const acknowledged: number[] = [];
  let nextConnection = 0;
  const server = createMessageServer({ closeTimeout: 5000 }, (messages: MessageSocket) => {
    const connection = nextConnection++;
    acknowledged[connection] = 0;
    messages.on('error', () => {});
    messages.on('message', (message: Buffer) => {
      // After close() has ended this side, a message can no longer be answered: it stays unacknowledged.
      if (messages.socket.writableEnded) return;
      messages.send(message);
      acknowledged[connection]!++;
    });
  });
  const { port } = (await server.listen()) as AddressInfo;

  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const messages = await connectMessages({ port });
      const state = { sent: 0, received: 0, outOfOrder: 0, ended: false };
      messages.on('error', () => {});
      messages.on('message', (message: Buffer) => {
        if (Number(message.readBigUInt64BE()) !== state.received) state.outOfOrder++;
        state.received++;
      });
      const done = new Promise<void>((resolve) => messages.socket.once('close', () => resolve()));
      messages.socket.once('end', () => (state.ended = true));
      // Keep a window of messages in flight until the server ends the connection.
      const pump = (): void => {
        while (!state.ended && !messages.socket.destroyed && state.sent - state.received < 256) messages.send(sequence(state.sent++));
        if (!state.ended && !messages.socket.destroyed) setTimeout(pump, 1);
      };
      pump();
      return { messages, state, done };
    }),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  const { destroyed } = await server.close();
  await Promise.all(clients.map((client) => client.done));

  const sent = clients.reduce((sum, client) => sum + client.state.sent, 0);
  const received = clients.reduce((sum, client) => sum + client.state.received, 0);
  const acked = acknowledged.reduce((sum, count) => sum + count, 0);
  t.diagnostic(
    `${CLIENTS} connections: ${sent} messages sent, ${acked} acknowledged by the application before close, ${received} acknowledgements delivered, ${sent - acked} never processed (to retry), ${destroyed} connections destroyed at the timeout`,
  );
  assert.equal(destroyed, 0, 'every connection ended gracefully');
  assert.ok(acked > 0);
  assert.equal(received, acked, 'every acknowledgement sent before close arrived');
  for (const client of clients) {
    assert.equal(client.state.outOfOrder, 0);
    assert.equal(client.state.ended, true, 'the client saw the end after its acknowledgements');
  }
});
