import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../src/core/errors.ts';
import { JsonLinesDecoder, encodeJsonLine } from '../../src/framing/json-lines.ts';
import { chunksAt } from '../../testkit/helpers.ts';

const fixture = Buffer.concat([
  encodeJsonLine({ type: 'start', test: { kind: 'stream', duration: 1 } }),
  encodeJsonLine([1, 2, 3]),
  encodeJsonLine('text with \n escaped newline'),
  encodeJsonLine({ unicode: 'é✓' }),
]);
const expected = [{ type: 'start', test: { kind: 'stream', duration: 1 } }, [1, 2, 3], 'text with \n escaped newline', { unicode: 'é✓' }];

test('decodes the fixture split at every offset, and at every pair of offsets', () => {
  for (let a = 0; a <= fixture.length; a++) {
    for (let b = a; b <= fixture.length; b += 7) {
      const decoder = new JsonLinesDecoder();
      const values = [fixture.subarray(0, a), fixture.subarray(a, b), fixture.subarray(b)].flatMap((part) => decoder.push(part));
      assert.deepEqual(values, expected, `split at ${a}/${b}`);
      assert.equal(decoder.pendingBytes, 0);
    }
  }
});

test('one byte at a time', () => {
  const decoder = new JsonLinesDecoder();
  const values: unknown[] = [];
  for (let i = 0; i < fixture.length; i++) values.push(...decoder.push(fixture.subarray(i, i + 1)));
  assert.deepEqual(values, expected);
});

test('a line over the cap is refused before it is buffered', () => {
  const decoder = new JsonLinesDecoder(16);
  assert.deepEqual(decoder.push(Buffer.from('{"a":1}\n')), [{ a: 1 }]);
  decoder.push(Buffer.from('"0123456789'));
  assert.throws(() => decoder.push(Buffer.from('0123456789"\n')), { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' });
  assert.throws(() => new JsonLinesDecoder(16).push(Buffer.alloc(17, 0x20)), { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' });
});

test('garbage is SOCKTUNE_ERR_PROTOCOL', () => {
  assert.throws(() => new JsonLinesDecoder().push(Buffer.from('{nope\n')), { code: 'SOCKTUNE_ERR_PROTOCOL' });
});

test('property: any values, any chunking, round-trip', () => {
  fc.assert(
    fc.property(fc.array(fc.jsonValue(), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 10 }), (values, cuts) => {
      const bytes = Buffer.concat(values.map(encodeJsonLine));
      const decoder = new JsonLinesDecoder(Number.MAX_SAFE_INTEGER);
      const decoded = chunksAt(bytes, cuts).flatMap((chunk) => decoder.push(chunk));
      assert.deepEqual(decoded, JSON.parse(JSON.stringify(values)));
    }),
    { numRuns: 2000 },
  );
});

test('property: random bytes only ever throw SocktuneError', (t) => {
  t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const decoder = new JsonLinesDecoder(128);
      try {
        decoder.push(Buffer.from(bytes));
      } catch (error) {
        assert.ok(error instanceof SocktuneError, String(error));
      }
    }),
    { numRuns: 10_000 },
  );
});
