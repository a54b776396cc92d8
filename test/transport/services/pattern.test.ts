import { test } from 'node:test';
import fc from 'fast-check';
import { PATTERN_PERIOD, patternByte, PatternSource, PatternVerifier } from '../../../src/transport/services/pattern.ts';

test('PatternSource: its chunks, end to end, are the pattern from offset 0, whatever the chunk size', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3 * PATTERN_PERIOD }), fc.integer({ min: 1, max: 20 }), (chunkSize, chunks) => {
      const source = new PatternSource(chunkSize);
      const bytes = Buffer.concat(Array.from({ length: chunks }, () => source.next()));
      return bytes.every((byte, offset) => byte === patternByte(offset));
    }),
  );
});

test('PatternVerifier counts exactly the bytes that break the pattern, however the stream is split', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 200_000 }),
      fc.uniqueArray(fc.nat(), { maxLength: 50 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      (length, corruptAt, cuts) => {
        const stream = Buffer.from(Array.from({ length }, (_, offset) => patternByte(offset)));
        const corrupted = new Set(corruptAt.map((at) => at % length));
        for (const at of corrupted) stream[at] = (stream[at]! + 1) % 256;
        const verifier = new PatternVerifier();
        let counted = 0;
        let from = 0;
        for (const cut of [...cuts.map((at) => at % (length + 1)), length].sort((a, b) => a - b)) {
          counted += verifier.check(stream.subarray(from, Math.max(from, cut)));
          from = Math.max(from, cut);
        }
        return counted === corrupted.size && verifier.bytesCorrupted === corrupted.size && verifier.bytesChecked === length;
      },
    ),
    { numRuns: 60 },
  );
});
