import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DATAGRAM_HEADER_BYTES,
  DATAGRAM_TOKEN_BYTES,
  datagramTemplate,
  eachDatagram,
  MAX_DATAGRAM_BYTES,
  readDatagram,
  socktuneDatagrams,
  stampDatagram,
} from '../../src/framing/datagram.ts';

const token = Buffer.alloc(DATAGRAM_TOKEN_BYTES, 7);

test('a stamped datagram reads back its stream, sequence and send time, with the test token', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: DATAGRAM_HEADER_BYTES, max: 2000 }),
      fc.nat({ max: 0xffffffff }),
      fc.nat(),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      (size, stream, sequence, sentNs) => {
        const datagram = datagramTemplate(size, token);
        stampDatagram(datagram, { stream, sequence, sentNs });
        assert.equal(datagram.length, size);
        assert.deepEqual(readDatagram(datagram, token), { stream, sequence, sentNs });
      },
    ),
  );
});

test('anything else is not this test’s: short, another magic, another token, a sequence past 2^53', () => {
  const datagram = datagramTemplate(100, token);
  stampDatagram(datagram, { stream: 0, sequence: 1, sentNs: 1n });
  assert.equal(readDatagram(datagram.subarray(0, DATAGRAM_HEADER_BYTES - 1), token), undefined);
  assert.equal(readDatagram(datagram, Buffer.alloc(DATAGRAM_TOKEN_BYTES, 8)), undefined);
  const otherMagic = Buffer.from(datagram);
  otherMagic[0] = 0;
  assert.equal(readDatagram(otherMagic, token), undefined);
  const huge = Buffer.from(datagram);
  huge.writeBigUInt64BE(2n ** 60n, 8);
  assert.equal(readDatagram(huge, token), undefined);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => readDatagram(Buffer.from(bytes), token) === undefined));
});

test('datagramTemplate refuses sizes outside a header to the largest UDP payload, and a token of another length', () => {
  for (const size of [DATAGRAM_HEADER_BYTES - 1, MAX_DATAGRAM_BYTES + 1, 1.5])
    assert.throws(() => datagramTemplate(size, token), /SOCKTUNE_ERR_INVALID_OPTION|a socktune datagram is/);
  assert.throws(() => datagramTemplate(100, Buffer.alloc(4)), /a datagram token is 16 bytes/);
});

test('eachDatagram splits a coalesced message at its datagrams’ size, found by the second one’s token and magic; a single one stays whole', () => {
  const token = Buffer.alloc(16, 9);
  const format = socktuneDatagrams(100, token, 3);
  const three = Buffer.concat(
    [0, 1, 2].map((sequence) => {
      const datagram = format.template();
      format.stamp(datagram, sequence);
      return datagram;
    }),
  );
  // The second one's send time ends in the token's byte: the token is found a byte early, where no magic is.
  three[100 + 23] = 9;
  const seen: number[] = [];
  eachDatagram(three, token, (datagram) => seen.push(readDatagram(datagram, token)!.sequence));
  assert.deepEqual(seen, [0, 1, 2]);
  const one: Buffer[] = [];
  eachDatagram(three.subarray(0, 100), token, (datagram) => one.push(datagram));
  assert.deepEqual(
    one.map((datagram) => datagram.length),
    [100],
  );
  const foreign: (number | undefined)[] = [];
  eachDatagram(Buffer.alloc(300, 0x75), token, (datagram) => foreign.push(readDatagram(datagram, token)?.sequence));
  assert.deepEqual(foreign, [undefined], 'no token: one message, which is not this test’s');
});
