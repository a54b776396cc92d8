import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { runIperf3Stream } from '../../../src/bench/engines/iperf3.ts';
import { STATE, stateByte } from '../../../src/protocols/iperf3/codec.ts';

test('a server that repeats a step of the test is refused: the client opens its streams once, never without end', async (t) => {
  const sockets: Socket[] = [];
  let connections = 0;
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    if (++connections > 1) return;
    // The control connection: parameters asked, then CREATE_STREAMS over and over.
    socket.write(stateByte(STATE.PARAM_EXCHANGE));
    socket.once('data', () => socket.write(Buffer.from(Array.from({ length: 40 }, () => STATE.CREATE_STREAMS))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    sockets.forEach((socket) => socket.destroy());
    server.close();
  });
  await assert.rejects(
    runIperf3Stream({
      host: '127.0.0.1',
      port: (server.address() as AddressInfo).port,
      durationSec: 1,
      omitSec: 0,
      writeSize: 1024,
      parallel: 2,
      direction: 'forward',
      noDelay: false,
      intervalSec: 1,
    }),
    { code: 'SOCKTUNE_ERR_PROTOCOL', message: /sent state 10 twice/ },
  );
  // The control connection and the first CREATE_STREAMS' two data connections at most (the server may not have seen them all yet).
  assert.ok(connections <= 3, `${connections} connections`);
});
