import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SocktuneError } from '../../../src/core/errors.ts';
import { ByteReader } from '../../../src/framing/byte-reader.ts';
import { chunksAt } from '../../../testkit/helpers.ts';
import {
  COOKIE_BYTES,
  EINVAL,
  encodeJson,
  generateCookie,
  IPERF3_ERRNO,
  Iperf3ServerError,
  parseParams,
  readJson,
  readState,
  serverError,
  STATE,
} from '../../../src/protocols/iperf3/codec.ts';

/** What an iperf3 client sends on its control connection, up to its results. */
const cookie = generateCookie();
const params = {
  tcp: true,
  omit: 0,
  time: 10,
  num: 0,
  blockcount: 0,
  parallel: 2,
  len: 131072,
  pacing_timer: 1000,
  client_version: '3.12',
};
const results = { cpu_util_total: 1, streams: [{ id: 1, bytes: 42 }] };
const stream = Buffer.concat([
  cookie,
  encodeJson(params),
  Buffer.from([STATE.TEST_END]),
  encodeJson(results),
  Buffer.from([STATE.IPERF_DONE]),
]);

async function parse(chunks: Buffer[]): Promise<unknown[]> {
  const reader = new ByteReader();
  const parsed = (async () => [
    (await reader.read(COOKIE_BYTES)).toString('latin1'),
    await readJson(reader),
    await readState(reader),
    await readJson(reader),
    await readState(reader),
  ])();
  for (const chunk of chunks) reader.push(chunk);
  reader.end();
  return parsed;
}

test('the control stream split at every offset parses the same', async () => {
  const expected = [cookie.toString('latin1'), params, STATE.TEST_END, results, STATE.IPERF_DONE];
  for (let cut = 0; cut <= stream.length; cut++) {
    assert.deepEqual(await parse([stream.subarray(0, cut), stream.subarray(cut)]), expected, `cut at ${cut}`);
  }
  const bytes = Array.from({ length: stream.length }, (_, i) => stream.subarray(i, i + 1));
  assert.deepEqual(await parse(bytes), expected);
});

test('property: random bytes after a cookie, in random chunks, only ever fail with SocktuneError', async (t) => {
  t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 4 }), async (bytes, cuts) => {
      const reader = new ByteReader(70 * 1024);
      const attempt = (async () => {
        await reader.read(COOKIE_BYTES);
        parseParams(await readJson(reader));
        await readState(reader);
      })();
      for (const chunk of chunksAt(Buffer.concat([cookie, Buffer.from(bytes)]), cuts)) reader.push(chunk);
      reader.end();
      await attempt.then(
        () => undefined,
        (error) => assert.ok(error instanceof SocktuneError, String(error)),
      );
    }),
    { numRuns: 10_000 },
  );
});

test('JSON over 64 KiB is refused from its length alone; a stream cut short is PEER_GONE', async () => {
  const reader = new ByteReader();
  const tooLong = Buffer.alloc(4);
  tooLong.writeUInt32BE(64 * 1024 + 1);
  reader.push(tooLong);
  await assert.rejects(readJson(reader), { code: 'SOCKTUNE_ERR_FRAME_TOO_LARGE' });
  const cut = new ByteReader();
  cut.push(encodeJson(params).subarray(0, 10));
  cut.end();
  await assert.rejects(readJson(cut), { code: 'SOCKTUNE_ERR_PEER_GONE' });
});

test('parameters: defaults for what the client leaves out, limits on the rest; SERVER_ERROR layout', () => {
  assert.deepEqual(
    { ...parseParams({ tcp: true, reverse: true, window: 65536 }), clientVersion: undefined },
    {
      tcp: true,
      udp: false,
      sctp: false,
      time: 10,
      omit: 0,
      bytes: 0,
      blocks: 0,
      parallel: 1,
      len: 131072,
      reverse: true,
      bidirectional: false,
      window: 65536,
      nodelay: false,
      getServerOutput: false,
      clientVersion: undefined,
      bandwidth: 0,
      udpCounters64: false,
    },
  );
  const udp = parseParams({ udp: true, bandwidth: 5e6, udp_counters_64bit: 1 });
  assert.deepEqual([udp.udp, udp.len, udp.bandwidth, udp.udpCounters64], [true, 1460, 5e6, true], "UDP's own default block");
  assert.throws(() => parseParams({ udp: true, len: 15 }), { iperfErrno: IPERF3_ERRNO.UDP_BLOCK_SIZE });
  assert.throws(() => parseParams({ udp: true, len: 65_508 }), { iperfErrno: IPERF3_ERRNO.UDP_BLOCK_SIZE });
  assert.throws(() => parseParams({ bandwidth: -1 }), { code: 'SOCKTUNE_ERR_PROTOCOL' });
  assert.throws(() => parseParams({ parallel: 500 }), { code: 'SOCKTUNE_ERR_PROTOCOL' });
  assert.throws(() => parseParams({ len: 0 }), { code: 'SOCKTUNE_ERR_PROTOCOL' });
  assert.deepEqual([...serverError(131, 93)], [0xfe, 0, 0, 0, 131, 0, 0, 0, 93]);
  assert.match(cookie.subarray(0, COOKIE_BYTES - 1).toString(), /^[a-z2-7]{36}$/);
  assert.equal(cookie[COOKIE_BYTES - 1], 0);
});

test('property: any JSON object as iperf3 parameters gives valid parameters or a SocktuneError', (t) => {
  t.diagnostic('10000 generated inputs, each in random chunks where the decoder is incremental');
  const known = fc.constantFrom(
    'tcp',
    'udp',
    'sctp',
    'time',
    'num',
    'blockcount',
    'parallel',
    'len',
    'omit',
    'reverse',
    'bidirectional',
    'window',
    'nodelay',
    'MSS',
    'get_server_output',
    'client_version',
    'bandwidth',
    'udp_counters_64bit',
  );
  fc.assert(
    fc.property(fc.dictionary(fc.oneof(known, fc.string()), fc.jsonValue()), (json) => {
      try {
        const parsed = parseParams(json);
        assert.equal(typeof parsed.tcp, 'boolean');
      } catch (error) {
        assert.ok(error instanceof SocktuneError, String(error));
      }
    }),
    { numRuns: 10_000 },
  );
});

test("parameters: a present number of the wrong type is refused, never defaulted; each refusal carries iperf3's i_errno", () => {
  const refusal = (json: Record<string, unknown>, limits?: Parameters<typeof parseParams>[1]): unknown => {
    try {
      parseParams(json, limits);
    } catch (error) {
      assert.ok(error instanceof Iperf3ServerError, String(error));
      return [error.code, error.iperfErrno, error.osErrno];
    }
    return 'accepted';
  };
  for (const value of ['10', null, true, {}, [], 'NaN'])
    assert.deepEqual(refusal({ time: value }), ['SOCKTUNE_ERR_PROTOCOL', IPERF3_ERRNO.RECV_PARAMS, EINVAL], JSON.stringify(value));
  assert.deepEqual(refusal({ window: 2 ** 32 }), ['SOCKTUNE_ERR_PROTOCOL', IPERF3_ERRNO.BUF_SIZE, 0]);
  assert.deepEqual(refusal({ window: -1 }), ['SOCKTUNE_ERR_PROTOCOL', IPERF3_ERRNO.BUF_SIZE, 0]);
  assert.deepEqual(refusal({ num: 2 ** 53 }), ['SOCKTUNE_ERR_PROTOCOL', IPERF3_ERRNO.RECV_PARAMS, EINVAL]);
  assert.deepEqual(refusal({ len: 1.5 }), ['SOCKTUNE_ERR_PROTOCOL', IPERF3_ERRNO.BLOCK_SIZE, 0]);
  assert.deepEqual(refusal({ MSS: 9217 }), ['SOCKTUNE_ERR_PROTOCOL', IPERF3_ERRNO.MSS, 0]);
  assert.deepEqual(refusal({ omit: -1 }), ['SOCKTUNE_ERR_PROTOCOL', IPERF3_ERRNO.OMIT, 0]);
  // Server limits: refused (SOCKTUNE_ERR_REFUSED), with the same numbers a stock client understands.
  const limits = { maxDurationSec: 600, maxStreams: 4, maxWindow: 1 << 20, maxBlockLength: 65536 };
  assert.deepEqual(refusal({ time: 596 }, limits), ['SOCKTUNE_ERR_REFUSED', IPERF3_ERRNO.DURATION, 0]);
  assert.equal(refusal({ time: 595, len: 1024 }, limits), 'accepted');
  assert.equal(refusal({ time: 0, num: 1e12, len: 1024 }, limits), 'accepted');
  assert.deepEqual(refusal({ time: 0, omit: 601 }, limits), ['SOCKTUNE_ERR_REFUSED', IPERF3_ERRNO.DURATION, 0]);
  assert.deepEqual(refusal({ parallel: 3, bidirectional: true }, limits), ['SOCKTUNE_ERR_REFUSED', IPERF3_ERRNO.NUM_STREAMS, 0]);
  assert.deepEqual(refusal({ window: (1 << 20) + 1 }, limits), ['SOCKTUNE_ERR_REFUSED', IPERF3_ERRNO.BUF_SIZE, 0]);
  assert.deepEqual(refusal({ len: 65537 }, limits), ['SOCKTUNE_ERR_REFUSED', IPERF3_ERRNO.BLOCK_SIZE, 0]);
  assert.deepEqual([...new Iperf3ServerError('SOCKTUNE_ERR_REFUSED', 'x', IPERF3_ERRNO.DURATION).toWire()], [0xfe, 0, 0, 0, 5, 0, 0, 0, 0]);
});
