import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../src/core/errors.ts';
import { FrameEncoder } from '../../src/framing/frame-encoder.ts';
import { FrameDecoder, PREFIX_KINDS, type PrefixKind } from '../../src/framing/length-prefix.ts';

/** The messages a decoder finds in `chunks`, copied out. */
function decode(chunks: Buffer[], prefix: PrefixKind): Buffer[] {
  const decoder = new FrameDecoder({ prefix });
  const messages: Buffer[] = [];
  for (const chunk of chunks) decoder.push(chunk, (message) => messages.push(Buffer.from(message)));
  decoder.end();
  return messages;
}

test('FrameEncoder: the chunks it gives decode to the messages added, counted, whatever its thresholds', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...PREFIX_KINDS),
      fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 40 }),
      fc.integer({ min: 0, max: 800 }),
      fc.integer({ min: 1, max: 1000 }),
      (prefix, messages, copyThreshold, slabSize) => {
        const encoder = new FrameEncoder({ prefix, copyThreshold, slabSize });
        for (const message of messages) encoder.add(message);
        assert.equal(encoder.queuedMessages, messages.length);
        const queuedBytes = encoder.queuedBytes;
        const chunks = encoder.take();
        assert.equal(
          chunks.reduce((sum, chunk) => sum + chunk.length, 0),
          queuedBytes,
        );
        assert.deepEqual(
          decode(chunks, prefix),
          messages.map((message) => Buffer.from(message)),
        );
        assert.equal(encoder.queuedBytes, 0);
        assert.equal(encoder.queuedMessages, 0);
        assert.deepEqual(encoder.take(), []);
      },
    ),
    { numRuns: 300 },
  );
});

test('FrameEncoder: the wire format is the prefix, then the message', () => {
  const encoder = new FrameEncoder({ prefix: 'u32' });
  encoder.add(Buffer.from('hi'));
  encoder.add(new Uint8Array(0));
  assert.deepEqual(Buffer.concat(encoder.take()), Buffer.from([0, 0, 0, 2, 0x68, 0x69, 0, 0, 0, 0]));
  const varint = new FrameEncoder({ prefix: 'varint' });
  varint.add(Buffer.alloc(300, 1));
  assert.deepEqual(Buffer.concat(varint.take()).subarray(0, 3), Buffer.from([0xac, 0x02, 1]));
  const u16 = new FrameEncoder({ prefix: 'u16' });
  u16.add(Buffer.from('x'));
  assert.deepEqual(Buffer.concat(u16.take()), Buffer.from([0, 1, 0x78]));
});

test('FrameEncoder: small messages are gathered into one chunk, large ones go by reference', () => {
  const encoder = new FrameEncoder({ copyThreshold: 100 });
  for (let i = 0; i < 50; i++) encoder.add(Buffer.alloc(10, i));
  const large = Buffer.alloc(101, 7);
  encoder.add(large);
  encoder.add(Buffer.from('after'));
  const chunks = encoder.take();
  // The small ones gathered with the large one's prefix, the large one itself, then the last small one.
  assert.deepEqual(
    chunks.map((chunk) => chunk.length),
    [50 * 14 + 4, 101, 4 + 5],
  );
  assert.equal(chunks[1], large, 'the very buffer, not a copy');
  // A Uint8Array view that is not a Buffer goes by reference too, its own bytes only.
  const backing = new Uint8Array(300).fill(9);
  const view = backing.subarray(50, 250);
  encoder.add(view);
  assert.deepEqual(decode(encoder.take(), 'u32'), [Buffer.from(view)]);
});

test('FrameEncoder: chunks already taken stay as they were while more messages are added', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.uint8Array({ maxLength: 300 }), fc.boolean()), { maxLength: 60 }),
      fc.integer({ min: 1, max: 600 }),
      (steps, slabSize) => {
        const encoder = new FrameEncoder({ copyThreshold: 200, slabSize });
        const taken: { chunk: Buffer; copy: Buffer }[] = [];
        for (const [message, takeNow] of steps) {
          encoder.add(message);
          if (takeNow) for (const chunk of encoder.take()) taken.push({ chunk, copy: Buffer.from(chunk) });
        }
        encoder.take();
        for (const { chunk, copy } of taken) assert.deepEqual(chunk, copy);
      },
    ),
    { numRuns: 200 },
  );
});

test('FrameEncoder: a message over maxMessageSize or its prefix is refused, and nothing of it is queued', () => {
  const encoder = new FrameEncoder({ maxMessageSize: 64 });
  encoder.add(Buffer.from('kept'));
  assert.throws(
    () => encoder.add(Buffer.alloc(65)),
    (error) =>
      error instanceof SocktuneError &&
      error.code === 'SOCKTUNE_ERR_FRAME_TOO_LARGE' &&
      /65 bytes is over maxMessageSize 64/.test(error.message),
  );
  assert.equal(encoder.queuedMessages, 1);
  assert.equal(encoder.queuedBytes, 8);
  const u16 = new FrameEncoder({ prefix: 'u16', maxMessageSize: 1 << 20 });
  u16.add(Buffer.from('kept'));
  assert.throws(() => u16.add(Buffer.alloc(0x10000)), /does not fit a u16 length prefix/);
  u16.add(Buffer.from('next'));
  assert.deepEqual(decode(u16.take(), 'u16'), [Buffer.from('kept'), Buffer.from('next')]);
});
