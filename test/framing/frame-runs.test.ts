import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../src/core/errors.ts';
import { FrameDecoder, PREFIX_KINDS, encodeFrame, type PrefixKind } from '../../src/framing/length-prefix.ts';
import { chunksAt } from '../../testkit/helpers.ts';
import { framedFixture } from '../../testkit/frame-fixtures.ts';

/** Every run as the bytes it covers, and the frames counted: the wire bytes must come back exactly. */
function runsOf(chunks: Buffer[], prefix: PrefixKind, maxMessageSize?: number): { bytes: Buffer; frames: number; runs: number } {
  const decoder = new FrameDecoder({ prefix, ...(maxMessageSize === undefined ? {} : { maxMessageSize }) });
  const pieces: Buffer[] = [];
  let frames = 0;
  for (const chunk of chunks) {
    decoder.pushFrames(chunk, (buffer, start, end, count) => {
      assert.ok(count >= 1 && start <= end && end <= buffer.length);
      pieces.push(Buffer.from(buffer.subarray(start, end)));
      frames += count;
    });
  }
  decoder.end();
  return { bytes: Buffer.concat(pieces), frames, runs: pieces.length };
}

for (const prefix of PREFIX_KINDS) {
  const { messages, wire: fixture } = framedFixture(prefix);

  test(`${prefix}: frame runs — the fixture split at every offset gives back its bytes and its frame count`, () => {
    for (let cut = 0; cut <= fixture.length; cut += cut < 300 ? 1 : 97) {
      const { bytes, frames } = runsOf([fixture.subarray(0, cut), fixture.subarray(cut)], prefix);
      assert.deepEqual(bytes, fixture, `cut at ${cut}`);
      assert.equal(frames, messages.length, `cut at ${cut}`);
    }
    const small = Buffer.concat(messages.filter((m) => m.length < 1000).map((m) => encodeFrame(m, prefix)));
    const oneByOne = runsOf(
      Array.from({ length: small.length }, (_, i) => small.subarray(i, i + 1)),
      prefix,
    );
    assert.deepEqual(oneByOne.bytes, small);
  });

  test(`${prefix}: frame runs — property: random frames in random chunks come back byte for byte, counted`, () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (payloads, cuts) => {
          const wire = Buffer.concat(payloads.map((payload) => encodeFrame(payload, prefix)));
          const { bytes, frames } = runsOf(chunksAt(wire, cuts), prefix);
          assert.deepEqual(bytes, wire);
          assert.equal(frames, payloads.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  test(`${prefix}: frame runs — property: random bytes only ever throw SocktuneError, a frame over the cap is never gathered`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 199 }), (bytes, cut) => {
        const data = Buffer.from(bytes);
        try {
          runsOf([data.subarray(0, cut), data.subarray(cut)], prefix, 64);
        } catch (error) {
          assert.ok(error instanceof SocktuneError, String(error));
        }
      }),
      { numRuns: 5000 },
    );
  });
}

test('frame runs: whole frames inside a chunk come as one run over the chunk itself, no copy', () => {
  const chunk = Buffer.concat([encodeFrame(Buffer.from('one')), encodeFrame(Buffer.from('two')), encodeFrame(Buffer.from('three'))]);
  const decoder = new FrameDecoder();
  const runs: [Buffer, number, number, number][] = [];
  decoder.pushFrames(chunk, (buffer, start, end, count) => runs.push([buffer, start, end, count]));
  assert.equal(runs.length, 1);
  assert.equal(runs[0]![0], chunk);
  assert.deepEqual(runs[0]!.slice(1), [0, chunk.length, 3]);
});

test('frame runs: an oversized length is refused before allocation; a frame cut at close is SOCKTUNE_ERR_PROTOCOL; one decoder, one method', () => {
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(0xffff_fff0);
  assert.throws(() => new FrameDecoder().pushFrames(huge, () => {}), { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' });
  const cut = new FrameDecoder();
  cut.pushFrames(encodeFrame(Buffer.alloc(100)).subarray(0, 50), () => {});
  assert.throws(() => cut.end(), { code: 'SOCKTUNE_ERR_PROTOCOL', message: /50 bytes of it received/ });
  const mixed = new FrameDecoder();
  mixed.push(encodeFrame(Buffer.from('x')), () => {});
  assert.throws(() => mixed.pushFrames(encodeFrame(Buffer.from('x')), () => {}), { code: 'SOCKTUNE_ERR_INVALID_OPTION' });
});
