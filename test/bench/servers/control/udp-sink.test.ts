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

for (const server of [{}, { ioModel: 'workers', workers: 2 }, { ioModel: 'thread-per-conn', workers: 1 }] as const) {
  test(`a UDP test (${server.ioModel ?? 'loop'}) counts only datagrams from the client’s own address with the test’s token, and answers none`, async () => {
    await withServer({ host: '127.0.0.1' }, async (port) => {
      const test = await RemoteTest.start({ host: '127.0.0.1', port }, 'udp-sink', server, 10_000);
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
}

test('stream -u -R in a thread model is refused, naming the model', async () => {
  await withServer({ host: '127.0.0.1' }, async (port) => {
    const settings = { datagramBytes: 100, bitsPerSecond: 800_000, streams: 1 };
    await assert.rejects(
      RemoteTest.start({ host: '127.0.0.1', port }, 'udp-source', { ioModel: 'workers' }, 10_000, false, [], settings),
      /stream -u -R runs in the loop model .*, not workers/,
    );
  });
});

test('udp-source sends only to a socket of the client’s own address that said hello with the token, at most what was asked', async () => {
  await withServer({ host: '127.0.0.1' }, async (port) => {
    const settings = { datagramBytes: 100, bitsPerSecond: 800_000, streams: 1 };
    const test = await RemoteTest.start({ host: '127.0.0.1', port }, 'udp-source', {}, 10_000, false, [], settings);
    const token = Buffer.from(test.ready.dataToken!, 'hex');
    const client = await bound('127.0.0.1');
    const spoofer = await bound('127.0.0.2');
    const heard = { client: 0, spoofer: 0 };
    client.on('message', () => heard.client++);
    spoofer.on('message', () => heard.spoofer++);
    try {
      const hello = datagramTemplate(40, token);
      stampDatagram(hello, { stream: 0, sequence: 0, sentNs: 0n });
      await send(spoofer, hello, test.ready.dataPort);
      await send(client, datagramTemplate(40, Buffer.alloc(16)), test.ready.dataPort);
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(heard, { client: 0, spoofer: 0 }, 'no hello from the wrong address or with the wrong token starts anything');
      await send(client, hello, test.ready.dataPort);
      const started = performance.now();
      while (heard.client === 0 && performance.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 20));
      const result = await test.finish();
      assert.ok(heard.client > 0 && heard.spoofer === 0, JSON.stringify(heard));
      assert.equal(result.datagrams?.foreign, 2);
      assert.ok(result.datagrams.sent![0]! >= heard.client, 'the server counts what it sent');
    } finally {
      client.close();
      spoofer.close();
      test.abort();
    }
  });
});

test('a udp-source test must say what to send', async () => {
  await withServer({ host: '127.0.0.1' }, async (port) => {
    await assert.rejects(RemoteTest.start({ host: '127.0.0.1', port }, 'udp-source', {}, 10_000), /start.udp is missing/);
    await assert.rejects(
      RemoteTest.start({ host: '127.0.0.1', port }, 'udp-source', {}, 10_000, false, [], {
        datagramBytes: 10,
        bitsPerSecond: 0,
        streams: 1,
      }),
      /datagramBytes must be an integer from 40 to 65507/,
    );
  });
});
