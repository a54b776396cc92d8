import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../src/core/errors.ts';
import { ByteReader } from '../../src/framing/byte-reader.ts';
import { settled } from '../../testkit/clock.ts';

const withCode =
  (code: string) =>
  (error: unknown): boolean =>
    error instanceof SocktuneError && error.code === code;

test('ByteReader: reads give exactly the bytes asked for, in order, however the stream was cut', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 20 }),
      fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 20 }),
      async (chunks, sizes) => {
        const stream = Buffer.concat(chunks);
        const reader = new ByteReader();
        for (const chunk of chunks) reader.push(Buffer.from(chunk));
        let offset = 0;
        for (const size of sizes) {
          if (offset + size > stream.length) break;
          assert.deepEqual(await reader.read(size), stream.subarray(offset, offset + size));
          offset += size;
        }
        assert.equal(reader.buffered, stream.length - offset);
        assert.deepEqual(reader.drain(), stream.subarray(offset));
        assert.equal(reader.buffered, 0);
      },
    ),
  );
});

test('ByteReader: a read waits for its bytes, which may come in pieces', async () => {
  const reader = new ByteReader();
  const read = reader.read(6);
  reader.push(Buffer.from('ab'));
  assert.equal(await settled(read), false);
  reader.push(Buffer.from('cdefgh'));
  assert.equal((await read).toString(), 'abcdef');
  assert.equal(reader.buffered, 2);
  assert.equal((await reader.read(0)).length, 0);
  assert.equal((await reader.read(2)).toString(), 'gh');
});

test('ByteReader: a pushed buffer is copied, so the caller may reuse it at once', async () => {
  const reader = new ByteReader();
  const chunk = Buffer.from('original');
  reader.push(chunk);
  chunk.fill(0);
  assert.equal((await reader.read(8)).toString(), 'original');
});

test('ByteReader: one read at a time; a field over the limit is refused before any byte is awaited', async () => {
  const reader = new ByteReader(16);
  const first = reader.read(4);
  await assert.rejects(reader.read(1), withCode('SOCKTUNE_ERR_PROTOCOL'));
  reader.push(Buffer.from('abcd'));
  assert.equal((await first).toString(), 'abcd');
  await assert.rejects(reader.read(17), /a 17-byte field is over the 16-byte limit/);
  reader.push(Buffer.from('x'));
  assert.equal((await reader.read(1)).toString(), 'x', 'a refused read leaves the reader usable');
});

test('ByteReader: past maxBuffered unread bytes it keeps nothing, not even what it held', () => {
  const reader = new ByteReader(8);
  reader.push(Buffer.from('12345678'));
  reader.push(Buffer.from('9'));
  reader.push(Buffer.from('more after the refusal'));
  assert.equal(reader.drain().length, 0);
});

test('ByteReader: at the end what was received can still be read; a read past it fails with the end error', async () => {
  const reader = new ByteReader();
  reader.push(Buffer.from('abc'));
  reader.end();
  reader.push(Buffer.from('ignored after the end'));
  assert.equal((await reader.read(2)).toString(), 'ab');
  await assert.rejects(reader.read(2), withCode('SOCKTUNE_ERR_PEER_GONE'));

  const waiting = new ByteReader();
  const read = waiting.read(4);
  const reason = new SocktuneError('SOCKTUNE_ERR_TIMEOUT', 'gave up');
  waiting.end(reason);
  waiting.end(new Error('a later end does not replace the first'));
  await assert.rejects(read, (error) => error === reason);
  await assert.rejects(waiting.read(1), (error) => error === reason);
});

test('after an overflow every read fails with it, a pending one included, and none returns short', async () => {
  const pending = new ByteReader(8);
  const read = pending.read(8);
  pending.push(Buffer.alloc(2));
  pending.push(Buffer.alloc(7));
  await assert.rejects(read, withCode('SOCKTUNE_ERR_FRAME_TOO_LARGE'));
  const later = new ByteReader(10);
  later.push(Buffer.alloc(6));
  later.push(Buffer.alloc(6));
  assert.equal(later.buffered, 0, 'what was held is dropped with the overflow');
  await assert.rejects(later.read(4), withCode('SOCKTUNE_ERR_FRAME_TOO_LARGE'));
});
