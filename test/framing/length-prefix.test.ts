import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../src/core/errors.ts';
import { FrameEncoder } from '../../src/framing/frame-encoder.ts';
import { FrameDecoder, PREFIX_KINDS, encodeFrame, type PrefixKind } from '../../src/framing/length-prefix.ts';
import { chunksAt } from '../../testkit/helpers.ts';
import { framedFixture } from '../../testkit/frame-fixtures.ts';

function decodeAll(chunks: Buffer[], prefix: PrefixKind, maxMessageSize?: number): Buffer[] {
  const decoder = new FrameDecoder({ prefix, ...(maxMessageSize === undefined ? {} : { maxMessageSize }) });
  const messages: Buffer[] = [];
  for (const chunk of chunks) decoder.push(chunk, (message) => messages.push(Buffer.from(message)));
  decoder.end();
  return messages;
}

for (const prefix of PREFIX_KINDS) {
  const { messages, wire: fixture } = framedFixture(prefix);

  test(`${prefix}: the fixture split at every offset decodes the same`, () => {
    for (let cut = 0; cut <= fixture.length; cut += cut < 300 ? 1 : 97) {
      assert.deepEqual(decodeAll([fixture.subarray(0, cut), fixture.subarray(cut)], prefix), messages, `cut at ${cut}`);
    }
  });

  test(`${prefix}: one byte at a time`, () => {
    const small = Buffer.concat(messages.filter((m) => m.length < 1000).map((m) => encodeFrame(m, prefix)));
    const chunks = Array.from({ length: small.length }, (_, i) => small.subarray(i, i + 1));
    assert.deepEqual(
      decodeAll(chunks, prefix),
      messages.filter((m) => m.length < 1000),
    );
  });

  test(`${prefix}: property — random messages, random chunking, round trip through FrameEncoder`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 9000 }), { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (payloads, cuts) => {
          const encoder = new FrameEncoder({ prefix, copyThreshold: 1000, slabSize: 4096 });
          for (const payload of payloads) encoder.add(payload);
          const bytes = Buffer.concat(encoder.take());
          assert.deepEqual(
            decodeAll(chunksAt(bytes, cuts), prefix),
            payloads.map((p) => Buffer.from(p)),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  test(`${prefix}: property — random bytes only ever throw SocktuneError, never allocate past the cap`, (t) => {
    t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 199 }), (bytes, cut) => {
        const decoder = new FrameDecoder({ prefix, maxMessageSize: 64 });
        try {
          const data = Buffer.from(bytes);
          decoder.push(data.subarray(0, cut), (message) => assert.ok(message.length <= 64));
          decoder.push(data.subarray(cut), (message) => assert.ok(message.length <= 64));
          decoder.end();
        } catch (error) {
          assert.ok(error instanceof SocktuneError, String(error));
        }
      }),
      { numRuns: 10_000 },
    );
  });
}

test('whole messages inside a chunk are views of it, not copies', () => {
  const chunk = Buffer.concat([encodeFrame(Buffer.from('one')), encodeFrame(Buffer.from('two'))]);
  const views: Buffer[] = [];
  new FrameDecoder().push(chunk, (message) => views.push(message));
  assert.equal(views[0]!.buffer, chunk.buffer);
  assert.equal(views[1]!.byteOffset, chunk.byteOffset + 11);
});

test('an oversized length is refused before allocation', () => {
  const decoder = new FrameDecoder({ maxMessageSize: 1024 });
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0xffff_fff0);
  assert.throws(() => decoder.push(header, () => {}), {
    code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE',
    message: /4294967280 bytes is over maxMessageSize 1024/,
  });
  assert.throws(() => new FrameEncoder({ maxMessageSize: 10 }).add(Buffer.alloc(11)), { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' });
  assert.throws(() => encodeFrame(Buffer.alloc(70_000), 'u16'), { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' });
});

test('a frame truncated at close is SOCKTUNE_ERR_PROTOCOL', () => {
  const frame = encodeFrame(Buffer.alloc(100));
  for (const cut of [2, 4, 50]) {
    const decoder = new FrameDecoder();
    decoder.push(frame.subarray(0, cut), () => assert.fail('no message expected'));
    assert.throws(() => decoder.end(), {
      code: 'SOCKTUNE_ERR_PROTOCOL',
      message: new RegExp(`stream ended inside a frame \\(${cut} bytes`),
    });
  }
});

test('varint: overlong prefixes are refused', () => {
  assert.throws(() => new FrameDecoder({ prefix: 'varint' }).push(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), () => {}), {
    code: 'SOCKTUNE_ERR_PROTOCOL',
  });
  assert.deepEqual([...encodeFrame(Buffer.alloc(300), 'varint').subarray(0, 2)], [0xac, 0x02]);
});

test('FrameEncoder coalesces small messages into one chunk and passes large ones by reference', () => {
  const encoder = new FrameEncoder({ copyThreshold: 100 });
  const large = Buffer.alloc(1000, 1);
  for (let i = 0; i < 50; i++) encoder.add(Buffer.alloc(16, i));
  encoder.add(large);
  encoder.add(Buffer.from('tail'));
  assert.equal(encoder.queuedMessages, 52);
  assert.equal(encoder.queuedBytes, 50 * 20 + 1004 + 8);
  const chunks = encoder.take();
  assert.equal(chunks.length, 3, 'small ones + prefix, the large message itself, the tail');
  assert.equal(chunks[1], large);
  assert.equal(encoder.queuedBytes, 0);
  assert.deepEqual(encoder.take(), []);
});
