import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CONTROL_PROTOCOL_VERSION, parseClientMessage } from '../../../src/bench/control/control-protocol.ts';
import { parseServerMessage } from '../../../src/bench/control/server-messages.ts';
import { SocktuneError } from '../../../src/core/errors.ts';
import { JsonLinesDecoder } from '../../../src/framing/json-lines.ts';
import { chunksAt } from '../../../testkit/helpers.ts';

/** Start messages near the valid ones, so the checks past the first field are reached too. */
const nearStart = fc.record(
  {
    type: fc.oneof(fc.constant('start'), fc.constant('finish'), fc.constant('auth'), fc.jsonValue()),
    protocol: fc.oneof(fc.constant(CONTROL_PROTOCOL_VERSION), fc.jsonValue()),
    service: fc.oneof(fc.constantFrom('echo', 'discard', 'source', 'verify', 'msg-echo', 'msg-sink'), fc.jsonValue()),
    server: fc.oneof(
      fc.record(
        {
          ioModel: fc.oneof(fc.constantFrom('loop', 'workers', 'thread-per-conn'), fc.jsonValue()),
          workers: fc.jsonValue(),
          sendBufferSize: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue(),
    ),
    maxDurationMs: fc.oneof(fc.integer({ min: -10, max: 4_000_000 }), fc.jsonValue()),
    proof: fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdef') }), fc.jsonValue()),
  },
  { requiredKeys: [] },
);

test('property: any JSON a client sends parses to a valid message or throws SocktuneError', (t) => {
  t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
  fc.assert(
    fc.property(fc.oneof(nearStart, fc.jsonValue()), (value) => {
      try {
        const message = parseClientMessage(value);
        assert.ok(['start', 'finish', 'auth'].includes(message.type));
        if (message.type === 'start') assert.ok(message.maxDurationMs >= 1 && message.maxDurationMs <= 3_600_000);
      } catch (error) {
        assert.ok(error instanceof SocktuneError, String(error));
      }
    }),
    { numRuns: 10_000 },
  );
});

test('property: any JSON a server sends is a known message or a SocktuneError', (t) => {
  t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      try {
        assert.ok(['ready', 'result', 'error', 'challenge'].includes(parseServerMessage(value).type));
      } catch (error) {
        assert.ok(error instanceof SocktuneError, String(error));
      }
    }),
    { numRuns: 10_000 },
  );
});

test('property: the control stream (JSON lines) in random chunks decodes to the same messages, or fails with SocktuneError on random bytes', (t) => {
  t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
  fc.assert(
    fc.property(
      fc.array(fc.jsonValue(), { maxLength: 5 }),
      fc.uint8Array({ maxLength: 64 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (messages, garbage, cuts) => {
        const text = Buffer.from(messages.map((message) => `${JSON.stringify(message)}\n`).join(''));
        const decoder = new JsonLinesDecoder(64 * 1024);
        const decoded = chunksAt(text, cuts).flatMap((chunk) => decoder.push(chunk));
        assert.deepEqual(decoded, JSON.parse(JSON.stringify(messages)));
        try {
          decoder.push(Buffer.from(garbage));
        } catch (error) {
          assert.ok(error instanceof SocktuneError, String(error));
        }
      },
    ),
    { numRuns: 10_000 },
  );
});
