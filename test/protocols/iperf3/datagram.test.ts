import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  iperf3Datagrams,
  isUdpConnectMessage,
  isUdpConnectReply,
  MAX_UDP_BLOCK,
  readIperf3Datagram,
  UDP_CONNECT_MESSAGE,
  UDP_CONNECT_REPLY,
} from '../../../src/protocols/iperf3/datagram.ts';

test("the connect message and reply are iperf3's ints as a little-endian host writes them, the legacy ones too", () => {
  const int32 = (value: number): Buffer => {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32LE(value);
    return bytes;
  };
  assert.deepEqual(UDP_CONNECT_MESSAGE, int32(0x36373839));
  assert.deepEqual(UDP_CONNECT_REPLY, int32(0x39383736));
  assert.ok(isUdpConnectMessage(int32(123_456_789)));
  assert.ok(isUdpConnectReply(int32(987_654_321)));
  assert.ok(!isUdpConnectMessage(UDP_CONNECT_REPLY));
  assert.ok(!isUdpConnectReply(UDP_CONNECT_MESSAGE));
  assert.ok(!isUdpConnectMessage(Buffer.concat([UDP_CONNECT_MESSAGE, Buffer.alloc(1)])), 'exactly 4 bytes');
});

test('iperf3Datagrams: packet numbers from 1 and the wall-clock send time, as readIperf3Datagram reads them back, 32- and 64-bit', () => {
  for (const counters64 of [false, true]) {
    const format = iperf3Datagrams(100, counters64, () => 1_700_000_000_123_456);
    const datagram = format.template();
    assert.equal(datagram.length, 100);
    format.stamp(datagram, 41);
    assert.deepEqual(readIperf3Datagram(datagram, counters64), { packet: 42, sentNs: 1_700_000_000_123_456_000n });
  }
  const wide = iperf3Datagrams(16, true);
  const datagram = wide.template();
  wide.stamp(datagram, 2 ** 40);
  assert.equal(readIperf3Datagram(datagram, true)?.packet, 2 ** 40 + 1, 'past 32 bits with --udp-counters-64bit');
  assert.throws(() => iperf3Datagrams(11, false), /12 to 65507 bytes/);
  assert.throws(() => iperf3Datagrams(15, true), /16 to 65507 bytes/);
  assert.throws(() => iperf3Datagrams(MAX_UDP_BLOCK + 1, false), /SOCKTUNE_ERR_INVALID_OPTION|65507/);
});

test('property: readIperf3Datagram takes any bytes without throwing, and refuses headers too short or counts past 2^53', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), (bytes, counters64) => {
      const header = readIperf3Datagram(Buffer.from(bytes), counters64);
      if (bytes.length < (counters64 ? 16 : 12)) assert.equal(header, undefined);
      else if (header !== undefined) assert.ok(Number.isSafeInteger(header.packet) && header.sentNs >= 0n);
    }),
    { numRuns: 5000 },
  );
  const huge = Buffer.alloc(16, 0xff);
  assert.equal(readIperf3Datagram(huge, true), undefined);
});
