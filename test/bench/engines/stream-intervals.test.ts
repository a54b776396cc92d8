import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TcpInfo } from '../../../src/core/socket-syscalls.ts';
import { startStreamIntervals, type PerConnection } from '../../../src/bench/engines/stream-intervals.ts';
import type { StreamInterval } from '../../../src/bench/results/result.ts';
import { fakeTime } from '../../../testkit/clock.ts';

const totals = (interval: StreamInterval) => ({
  startSec: interval.startSec,
  endSec: interval.endSec,
  sentBytes: interval.sentBytes,
  receivedBytes: interval.receivedBytes,
  bitsPerSecond: interval.bitsPerSecond,
  omitted: interval.omitted,
});

test('stream intervals: bytes each way per interval, the rate of the direction measured, the warm-up marked', (t) => {
  for (const [direction, rates] of [
    ['forward', [8000, 16_000, 0]],
    ['bidir', [8000, 16_000, 0]],
    ['reverse', [800, 0, 4000]],
  ] as const) {
    const advance = fakeTime(t);
    let sent = 0;
    let received = 0;
    const reported: StreamInterval[] = [];
    const { ticker, intervals } = startStreamIntervals(
      { intervalSec: 0.5, omitSec: 0.5, onInterval: (interval) => reported.push(interval) },
      direction,
      () => sent,
      () => received,
    );
    sent += 500;
    received += 50;
    advance(500);
    sent += 1000;
    advance(500);
    received += 250;
    advance(500);
    ticker.stop();
    assert.deepEqual(reported, intervals);
    assert.deepEqual(intervals.map(totals), [
      { startSec: 0, endSec: 0.5, sentBytes: 500, receivedBytes: 50, bitsPerSecond: rates[0], omitted: true },
      { startSec: 0.5, endSec: 1, sentBytes: 1000, receivedBytes: 0, bitsPerSecond: rates[1], omitted: false },
      { startSec: 1, endSec: 1.5, sentBytes: 0, receivedBytes: 250, bitsPerSecond: rates[2], omitted: false },
    ]);
    assert.equal(intervals[0]!.streams, undefined, 'no per-connection figures unless asked for');
    t.mock.timers.reset();
    t.mock.restoreAll();
  }
});

const info = (retransmits: number, congestionWindow: number): TcpInfo => ({
  retransmits,
  unacked: 0,
  rttMicros: 120,
  rttVarianceMicros: 30,
  congestionWindow,
  sendMss: 1000,
});

test('stream intervals: per connection, bytes and retransmits of the interval, the sender’s window, null where unknown', (t) => {
  const advance = fakeTime(t);
  const counts = [
    { sent: 0, received: 0, sends: true },
    { sent: 0, received: 0, sends: false },
  ];
  const tcp: (TcpInfo | null)[] = [info(2, 10), info(0, 10)];
  const perConnection: PerConnection = { counts: () => counts.map((count) => ({ ...count })), tcpInfo: (index) => tcp[index] ?? null };
  const { ticker, intervals } = startStreamIntervals(
    { intervalSec: 1, omitSec: 0 },
    'bidir',
    () => counts[0]!.sent,
    () => counts[1]!.received,
    perConnection,
  );
  counts[0]!.sent = 1000;
  counts[1]!.received = 300;
  advance(1000);
  counts[0]!.sent = 1500;
  tcp[0] = info(7, 20);
  advance(1000);
  tcp[0] = null;
  advance(1000);
  tcp[0] = info(9, 20);
  advance(1000);
  ticker.stop();

  const [first, second, third, fourth] = intervals;
  assert.deepEqual(first!.streams, [
    { socket: 1, sentBytes: 1000, receivedBytes: 0, bitsPerSecond: 8000, retransmits: 2, snd_cwnd: 10_000, rtt: 120, rttvar: 30 },
    { socket: 2, sentBytes: 0, receivedBytes: 300, bitsPerSecond: 2400, retransmits: null, snd_cwnd: null, rtt: 120, rttvar: 30 },
  ]);
  assert.equal(first!.retransmits, 2);
  assert.equal(second!.streams![0]!.retransmits, 5, 'the interval’s own retransmits');
  assert.equal(second!.streams![0]!.snd_cwnd, 20_000);
  assert.equal(second!.streams![1]!.bitsPerSecond, 0);
  assert.deepEqual(
    { retransmits: third!.streams![0]!.retransmits, snd_cwnd: third!.streams![0]!.snd_cwnd, rtt: third!.streams![0]!.rtt },
    { retransmits: null, snd_cwnd: null, rtt: null },
    'TCP_INFO unreadable',
  );
  assert.equal(third!.retransmits, null, 'no sender figures at all');
  assert.equal(fourth!.streams![0]!.retransmits, null, 'no baseline to count from after a gap');
});
