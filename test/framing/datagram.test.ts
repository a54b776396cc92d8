import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  DATAGRAM_HEADER_BYTES,
  DATAGRAM_TOKEN_BYTES,
  datagramTemplate,
  MAX_DATAGRAM_BYTES,
  readDatagram,
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
