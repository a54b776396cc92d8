/**
 * fd and handle leak check: 1,000 connect/abort cycles against a server in every I/O model, then the
 * process's open descriptors and active handles must be back where they were.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { createServer, type ServerOptions, type SocktuneServer } from '../../src/index.ts';
import { connectedClient, readBytes, waitFor } from '../../testkit/helpers.ts';

const CYCLES = 1_000;
const IN_FLIGHT = 32;
const MAX_THREADS = 8;

const openFds = (): number => readdirSync('/proc/self/fd').length;
const tcpHandles = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap' || kind === 'TCPWrap').length;

/** One cycle: connect, then whichever ending comes up — reset, half-close, or a few bytes and close. */
function cycle(port: number, index: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.on('connect', () => {
      if (index % 3 === 0) socket.resetAndDestroy();
      else if (index % 3 === 1) socket.end();
      else socket.end('abc');
    });
    socket.resume();
  });
}

async function settled(server: SocktuneServer): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (server.metrics().connectionsCurrent > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

const MODELS: [string, ServerOptions][] = [
  ['loop', { ioModel: 'loop' }],
  ['workers', { ioModel: 'workers', workers: 2 }],
  ['thread-per-conn', { ioModel: 'thread-per-conn', maxThreads: MAX_THREADS }],
  ['thread-per-conn blocking', { ioModel: 'thread-per-conn', maxThreads: MAX_THREADS, blocking: true }],
];

for (const [name, options] of MODELS) {
  test(`${name}: after ${CYCLES} connect/abort cycles, fds and handles return to baseline`, { timeout: 120_000 }, async (t) => {
    const server = createServer({ ...options, handler: 'echo', backlog: 1024 });
    const { port } = (await server.listen()) as AddressInfo;
    try {
      // First every thread the pool may start (each has descriptors of its own), all busy at once,
      // and one round of cycles: what exists after that is the baseline.
      const held = await Promise.all(Array.from({ length: MAX_THREADS }, () => connectedClient(port)));
      for (const socket of held) socket.write('x');
      await Promise.all(held.map((socket) => readBytes(socket, 1)));
      for (const socket of held) socket.destroy();
      await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => cycle(port, i)));
      await settled(server);
      const before = { fds: openFds(), handles: tcpHandles() };
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < CYCLES) await cycle(port, next++);
        }),
      );
      await settled(server);
      // A descriptor can still be on its way to a thread (queued or in a message) after the last close,
      // and a connection whose client already left can still wait in the accept queue (it is served, then ends).
      await waitFor(() => openFds() <= before.fds && tcpHandles() <= before.handles && server.metrics().connectionsCurrent === 0);
      const after = { fds: openFds(), handles: tcpHandles() };
      t.diagnostic(
        `fds ${before.fds} → ${after.fds}, TCP handles ${before.handles} → ${after.handles}, ${server.metrics().connectionsTotal} connections served`,
      );
      assert.equal(server.metrics().connectionsCurrent, 0);
      // thread-per-conn lets a queued connection go, unserved, once its client has left.
      const { connectionsTotal, errors } = server.metrics();
      assert.ok(
        connectionsTotal + (errors.SOCKTUNE_ERR_PEER_GONE ?? 0) >= CYCLES,
        `${connectionsTotal} served, ${errors.SOCKTUNE_ERR_PEER_GONE ?? 0} let go`,
      );
      assert.equal(after.handles, before.handles);
      assert.ok(after.fds <= before.fds, `fds ${before.fds} → ${after.fds}`);
    } finally {
      await server.close();
    }
  });
}
