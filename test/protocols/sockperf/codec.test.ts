import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../../src/core/errors.ts';
import {
  FLAG_CLIENT,
  FLAG_PONG_REQUEST,
  FLAG_WARMUP,
  HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  ReplyWriter,
  SockperfDecoder,
  encodeMessage,
  messageFlags,
  wantsReply,
} from '../../../src/protocols/sockperf/codec.ts';
import { chunksAt } from '../../../testkit/helpers.ts';

function decodeAll(chunks: Buffer[]): Buffer[] {
  const decoder = new SockperfDecoder();
  const messages: Buffer[] = [];
  for (const chunk of chunks) decoder.push(chunk, (message) => messages.push(Buffer.from(message)));
  decoder.end();
  return messages;
}

const messages = [
  encodeMessage(1n, FLAG_CLIENT | FLAG_PONG_REQUEST, HEADER_BYTES),
  encodeMessage(2n, FLAG_CLIENT, 64),
  encodeMessage(3n, FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP, 1400),
  encodeMessage(2n ** 63n, FLAG_CLIENT | FLAG_PONG_REQUEST, 70_000),
];
const fixture = Buffer.concat(messages);

test('the fixture split at every offset decodes to the same messages', () => {
  for (let cut = 0; cut <= fixture.length; cut += cut < 1600 ? 1 : 331) {
    assert.deepEqual(decodeAll([fixture.subarray(0, cut), fixture.subarray(cut)]), messages, `cut at ${cut}`);
  }
});

test('property: random messages, random chunking', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          seq: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
          flags: fc.nat({ max: 7 }),
          length: fc.integer({ min: HEADER_BYTES, max: 5000 }),
        }),
        { maxLength: 20 },
      ),
      fc.array(fc.nat(), { maxLength: 10 }),
      (specs, cuts) => {
        const sent = specs.map((spec) => encodeMessage(spec.seq, spec.flags, spec.length));
        const bytes = Buffer.concat(sent);
        assert.deepEqual(decodeAll(chunksAt(bytes, cuts)), sent);
      },
    ),
    { numRuns: 1000 },
  );
});

test('property: random bytes only ever throw SocktuneError', (t) => {
  t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 299 }), (bytes, cut) => {
      const decoder = new SockperfDecoder();
      try {
        const data = Buffer.from(bytes);
        decoder.push(data.subarray(0, cut), () => {});
        decoder.push(data.subarray(cut), () => {});
        decoder.end();
      } catch (error) {
        assert.ok(error instanceof SocktuneError, String(error));
      }
    }),
    { numRuns: 10_000 },
  );
});

test('lengths below the header or over 1 MiB − 1 are refused before allocation; a cut message is reported at the end', () => {
  const short = encodeMessage(1n, 3, HEADER_BYTES);
  short.writeUInt32BE(13, 10);
  assert.throws(() => new SockperfDecoder().push(short, () => {}), { code: 'SOCKTUNE_ERR_PROTOCOL', message: /length 13 is shorter/ });
  const long = encodeMessage(1n, 3, HEADER_BYTES);
  long.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 10);
  assert.throws(() => new SockperfDecoder().push(long, () => {}), { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' });
  const decoder = new SockperfDecoder();
  decoder.push(encodeMessage(1n, 3, 100).subarray(0, 40), () => assert.fail('no message yet'));
  assert.throws(() => decoder.end(), { code: 'SOCKTUNE_ERR_PROTOCOL', message: /40 bytes of it received/ });
});

test('replies: only CLIENT|PONG_REQUEST messages, CLIENT cleared, all else unchanged', () => {
  assert.equal(wantsReply(encodeMessage(1n, FLAG_CLIENT | FLAG_PONG_REQUEST, 20)), true);
  assert.equal(wantsReply(encodeMessage(1n, FLAG_CLIENT, 20)), false);
  assert.equal(wantsReply(encodeMessage(1n, FLAG_PONG_REQUEST, 20)), false);
  const request = encodeMessage(42n, FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP, 30);
  request.fill(0x5a, HEADER_BYTES);
  const writer = new ReplyWriter();
  writer.add(request);
  writer.add(request);
  const replies = writer.take();
  assert.equal(replies.length, 60);
  const reply = replies.subarray(0, 30);
  assert.equal(reply.readBigUInt64BE(0), 42n);
  assert.equal(messageFlags(reply), FLAG_PONG_REQUEST | FLAG_WARMUP);
  assert.equal(reply.readUInt32BE(10), 30);
  assert.deepEqual(reply.subarray(HEADER_BYTES), request.subarray(HEADER_BYTES));
  assert.equal(messageFlags(request), FLAG_CLIENT | FLAG_PONG_REQUEST | FLAG_WARMUP, 'the request itself is untouched');
  assert.equal(writer.length, 0);
});
