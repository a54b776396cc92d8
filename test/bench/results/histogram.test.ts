import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createLatencyHistogram, decodeHistogram, encodeHistogram, summarizeLatency } from '../../../src/bench/results/histogram.ts';
import { runRr } from '../../../src/bench/engines/rr.ts';

test('percentiles of a known distribution: 1..1000 µs, once each', () => {
  const histogram = createLatencyHistogram();
  for (let us = 1; us <= 1000; us++) histogram.recordValue(us * 1000);
  const summary = summarizeLatency(histogram);
  assert.equal(summary.count, 1000);
  // HDR keeps 3 significant digits: each value is exact to within 0.1%.
  const near = (actual: number | null, expected: number): void =>
    assert.ok(actual !== null && Math.abs(actual - expected) <= expected * 0.001 + 0.01, `${actual} vs ${expected}`);
  near(summary.minUs, 1);
  near(summary.p50Us, 500);
  near(summary.p90Us, 900);
  near(summary.p99Us, 990);
  near(summary.p999Us, 999);
  near(summary.maxUs, 1000);
  near(summary.meanUs, 500.5);
  near(summary.stdevUs, 288.67);
});

test('the encoded histogram decodes to the same distribution (for exact merging)', () => {
  const histogram = createLatencyHistogram();
  for (const nanos of [12_000, 15_000, 15_000, 90_000, 1_500_000]) histogram.recordValue(nanos);
  const decoded = summarizeLatency(decodeHistogram(encodeHistogram(histogram)));
  const original = summarizeLatency(histogram);
  // Buckets travel exactly; the exact max does not (it becomes its bucket's top, within 0.1%).
  assert.deepEqual({ ...decoded, maxUs: 0 }, { ...original, maxUs: 0 });
  assert.ok(Math.abs(decoded.maxUs! - original.maxUs!) <= original.maxUs! * 0.001);
});

test('an empty histogram summarizes to a count of 0 and null statistics, never a made-up 0 µs', () => {
  const { count, ...statistics } = summarizeLatency(createLatencyHistogram());
  assert.equal(count, 0);
  assert.ok(
    Object.values(statistics).every((value) => value === null),
    JSON.stringify(statistics),
  );
});

/** An echo server that stops answering for `stallMs` once, `stallAfterMs` after the first byte. */
async function stallingEchoServer(stallAfterMs: number, stallMs: number): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    let stalledUntil = 0;
    let firstByte = 0;
    socket.on('data', (chunk) => {
      const now = Date.now();
      firstByte ||= now;
      if (stalledUntil === 0 && now - firstByte >= stallAfterMs) stalledUntil = now + stallMs;
      const delay = Math.max(0, stalledUntil - now);
      if (delay > 0) setTimeout(() => socket.write(chunk), delay);
      else socket.write(chunk);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

test('coordinated omission: open loop charges a 300 ms stall to every request scheduled during it; closed loop hides it', async (t) => {
  const common = { raw: true, durationSec: 1.5, omitSec: 0, size: 16, connections: 1, depth: 1, client: {}, server: {}, intervalSec: 1.5 };

  const open = await stallingEchoServer(500, 300);
  t.after(open.close);
  const openLoop = await runRr({ ...common, target: { host: '127.0.0.1', port: open.port }, rate: 1000 });
  // The schedule is kept whatever the stall: never more requests than it holds for the time measured (a
  // busy machine may end the measurement late, never early), and most of them answered.
  const scheduled = 1000 * openLoop.summary.measuredSeconds;
  assert.ok(
    openLoop.summary.requests >= 600 && openLoop.summary.requests <= scheduled + 20,
    `requests ${openLoop.summary.requests} of ${scheduled}`,
  );
  // Requests intended during the stall waited up to 300 ms: about 300 of 1500 (20%) are ≥ ~1 ms late,
  // so p90 must be far above a healthy loopback round trip, and the worst near the stall length.
  assert.ok(openLoop.summary.latency.p90Us! > 20_000, `open-loop p90 ${openLoop.summary.latency.p90Us} µs`);
  assert.ok(openLoop.summary.latency.maxUs! > 250_000, `open-loop max ${openLoop.summary.latency.maxUs} µs`);

  const closed = await stallingEchoServer(500, 300);
  t.after(closed.close);
  const closedLoop = await runRr({ ...common, target: { host: '127.0.0.1', port: closed.port } });
  // Closed loop records the stall once: one slow request among many fast ones.
  assert.ok(closedLoop.summary.latency.maxUs! > 250_000);
  // Hundreds of requests, one of them stalled: its p99 stays below the stall, where open loop's p90 is far above a round trip.
  assert.ok(closedLoop.summary.latency.p99Us! < 250_000, `closed-loop p99 ${closedLoop.summary.latency.p99Us} µs`);
});
