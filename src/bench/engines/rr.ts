import { SocktuneError } from '../../core/errors.ts';
import { DataSession, type RunOptions } from './data-session.ts';
import { createLatencyHistogram } from '../results/histogram.ts';
import type { RrInterval, RrResult } from '../results/result.ts';
import { InFlight } from './in-flight.ts';
import { LatencyRecorder } from './latency-recorder.ts';
import { round } from '../results/stats.ts';
import { requestRecord, timedOptionsRecord } from '../results/result-options.ts';
import { startLatencyIntervals } from './latency-intervals.ts';

/** Nothing ever wakes it: Atomics.wait on it is a sleep of sub-millisecond precision. */
const SLEEP_CELL = new Int32Array(new SharedArrayBuffer(4));

export interface RrOptions extends RunOptions<RrInterval> {
  /** Request bytes; the echo service answers with as many. */
  size: number;
  /** Response bytes to wait for (raw peers); defaults to the request size. */
  responseSize?: number | undefined;
  /** A real request to send instead of `size` filler bytes (raw peers). */
  payload?: Buffer | undefined;
  connections: number;
  /** Requests in flight per connection. */
  depth: number;
  /** Open loop: total requests per second on a fixed schedule. Undefined: closed loop. */
  rate?: number | undefined;
}

/**
 * One read buffer for every connection of the run (responses are counted, never kept), twice the
 * largest usual response: a read seldom fills it, and libuv reads again after a full buffer, a call
 * that mostly finds nothing (64 KiB: 1.85 reads per 64 KiB response; 128 KiB: 1.03). Larger is
 * slower: 1 MiB cost 40% of the 64 KiB rate (bench/results/load-generator-2026-12-07.md).
 */
const READ_BUFFER_SIZE = 128 * 1024;
/** Requests queued in the client beyond what the socket took: more means the peer does not read. */
const MAX_UNSENT_BYTES = 16 * 1024 * 1024;

/**
 * Request/response latency. Closed loop sends the next request when a response completes; open
 * loop sends on a fixed schedule and measures from the intended send time, so a stalled server
 * cannot hide its stall by slowing the client (coordinated omission).
 */
export async function runRr(options: RrOptions): Promise<RrResult> {
  const latency = new LatencyRecorder(options.omitSec);
  const request = options.payload ?? Buffer.alloc(options.size, 0x61);
  const responseSize = options.responseSize ?? request.length;
  const inFlight = Array.from({ length: options.connections }, () => new InFlight());
  const pendingBytes = new Array<number>(options.connections).fill(0);
  let running = true;
  let sent = 0;

  /** The session once open; a failure seen while it opens is kept for it. */
  let live: DataSession | undefined;
  let earlyFailure: SocktuneError | undefined;
  const fail = (failure: SocktuneError): void => {
    if (live === undefined) earlyFailure ??= failure;
    else live.failWith(failure);
  };

  const send = (index: number, start: number): void => {
    const socket = sockets[index]!;
    // A peer that answers without reading would grow this queue without end: an echo reads what it answers.
    if (socket.writableLength > MAX_UNSENT_BYTES) {
      return fail(
        new SocktuneError(
          'SOCKTUNE_ERR_SLOW_CONSUMER',
          `the peer answers but does not read: ${socket.writableLength} request bytes unsent`,
        ),
      );
    }
    sent++;
    inFlight[index]!.push(start);
    socket.write(request);
  };
  const onResponse = (index: number, now: number): void => {
    latency.record(now - inFlight[index]!.shift());
    if (running && options.rate === undefined) send(index, performance.now());
  };

  const readBuffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  const session = await DataSession.open(options, 'echo', options.server, {
    connections: options.connections,
    onread: (index) => ({
      buffer: readBuffer,
      callback: (bytes: number) => {
        const now = performance.now();
        let pending = pendingBytes[index]! + bytes;
        // Only requests in flight before these bytes arrived can be answered by them (the ones sent below cannot).
        let answerable = inFlight[index]!.size;
        while (pending >= responseSize && answerable > 0) {
          answerable--;
          pending -= responseSize;
          onResponse(index, now);
        }
        // A response to no request would be counted as the next one's, in no time at all: that is no echo.
        if (pending >= responseSize) {
          fail(new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the peer sent responses to requests that were not made'));
          return false;
        }
        pendingBytes[index] = pending;
        return true;
      },
    }),
  });
  live = session;
  if (earlyFailure !== undefined) session.failWith(earlyFailure);
  const { sockets } = session;
  session.startTraffic();
  const scheduleLag = createLatencyHistogram();
  if (options.rate === undefined) {
    for (let i = 0; i < sockets.length; i++) for (let d = 0; d < options.depth; d++) send(i, performance.now());
  } else {
    const periodMs = (1000 * options.connections) / options.rate;
    const scheduleStart = performance.now();
    const nextIntended = sockets.map((_, i) => scheduleStart + (periodMs * i) / options.connections);
    const waiting = sockets.map(() => [] as number[]);
    const tick = (): void => {
      if (!running) return;
      const now = performance.now();
      let nextDue = Infinity;
      for (let i = 0; i < sockets.length; i++) {
        while (nextIntended[i]! <= now) {
          // How late the scheduler noticed a due request: the client's own lag, whatever the server does.
          scheduleLag.recordValue(Math.max(1, Math.round((now - nextIntended[i]!) * 1000)));
          waiting[i]!.push(nextIntended[i]!);
          nextIntended[i]! += periodMs;
        }
        // A request that cannot go yet keeps its intended time: the wait counts as latency.
        while (waiting[i]!.length > 0 && inFlight[i]!.size < options.depth) send(i, waiting[i]!.shift()!);
        nextDue = Math.min(nextDue, nextIntended[i]!);
      }
      // Timers have millisecond granularity: a closer deadline is slept to precisely while no answer
      // is awaited (nothing can arrive to be timed late), and polled each loop turn while one is.
      const wait = nextDue - performance.now();
      if (wait >= 1.5) setTimeout(tick, Math.floor(wait));
      else {
        if (wait > 0 && inFlight.every((requests) => requests.size === 0)) Atomics.wait(SLEEP_CELL, 0, 0, wait);
        setImmediate(tick);
      }
    };
    tick();
  }

  const { ticker, intervals } = startLatencyIntervals(options, latency);
  const { measuredSeconds, selfCheck } = await session.run(options, ticker, {
    onMeasureStart: () => (latency.recording = true),
    stopTraffic: () => {
      running = false;
      latency.recording = false;
    },
    ...(options.rate === undefined ? {} : { scheduleLagP99Us: () => scheduleLag.getValueAtPercentile(99) }),
  });
  const requests = latency.completed;
  const effective = session.failed ? null : session.effective();
  const serverResult = await session.finish();
  return session.result(
    'rr',
    {
      ...timedOptionsRecord(options),
      ...requestRecord(options, request.length),
      connections: options.connections,
      depth: options.depth,
      ...(options.rate === undefined ? {} : { rate: options.rate }),
    },
    selfCheck,
    {
      effective: effective ?? { client: null, server: session.peer.server?.effective ?? null },
      intervals,
      summary: {
        mode: options.rate === undefined ? 'closed-loop' : 'open-loop',
        measuredSeconds: round(measuredSeconds, 3),
        requests,
        requestsPerSecond: Math.round(requests / measuredSeconds),
        sentRequests: sent,
        ...latency.summary(),
        serverCpuPercent: serverResult?.cpuPercent ?? null,
      },
    },
  );
}
