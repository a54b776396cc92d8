import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { RemoteTest } from '../../../../src/bench/control/remote-test.ts';
import { datagramTemplate, stampDatagram } from '../../../../src/framing/datagram.ts';
import { withServer } from '../../../../testkit/control-messages.ts';

function bound(address: string): Promise<Socket> {
  const socket = createSocket('udp4');
  return new Promise((resolve) => socket.bind(0, address, () => resolve(socket)));
}

function send(socket: Socket, datagram: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => socket.send(datagram, port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
}

test('a UDP test counts only datagrams from the client’s own address with the test’s token, and answers none', async () => {
  await withServer({ host: '127.0.0.1' }, async (port) => {
    const test = await RemoteTest.start({ host: '127.0.0.1', port }, 'udp-sink', {}, 10_000);
    const token = Buffer.from(test.ready.dataToken!, 'hex');
    const client = await bound('127.0.0.1');
    const spoofer = await bound('127.0.0.2');
    const answers: string[] = [];
    for (const socket of [client, spoofer]) socket.on('message', (_, from) => answers.push(`${from.address}:${from.port}`));
    try {
      const datagram = datagramTemplate(200, token);
      for (const sequence of [0, 1, 3, 2, 3]) {
        stampDatagram(datagram, { stream: 0, sequence, sentNs: BigInt(sequence) * 1000n });
        await send(client, datagram, test.ready.dataPort);
      }
      // The right token from another address, and the client's address with another token.
      await send(spoofer, datagram, test.ready.dataPort);
      await send(client, datagramTemplate(200, Buffer.alloc(16)), test.ready.dataPort);
      await send(client, Buffer.from('not a datagram of any test'), test.ready.dataPort);
      const result = await test.finish();
      assert.equal(result.datagrams?.foreign, 3);
      assert.deepEqual(
        result.datagrams?.streams.map(({ received, expected, outOfOrder, duplicates, bytes }) => ({
          received,
          expected,
          outOfOrder,
          duplicates,
          bytes,
        })),
        [{ received: 4, expected: 4, outOfOrder: 1, duplicates: 1, bytes: 800 }],
      );
      assert.equal(result.metrics.bytesIn, 1000, 'the wire bytes of the test, its duplicate included');
      assert.equal(result.datagrams?.socketDrops, 0);
      assert.deepEqual(answers, [], 'the server sends nothing to any source');
    } finally {
      client.close();
      spoofer.close();
      test.abort();
    }
  });
});

test('a UDP test in another I/O model is refused, naming the model', async () => {
  await withServer({ host: '127.0.0.1' }, async (port) => {
    await assert.rejects(
      RemoteTest.start({ host: '127.0.0.1', port }, 'udp-sink', { ioModel: 'workers' }, 10_000),
      /UDP tests run in the loop model, not workers/,
    );
  });
});
