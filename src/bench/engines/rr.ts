import { DataSession, type RunOptions } from './data-session.ts';
import { createLatencyHistogram, encodeHistogram, percentileCurve, summarizeLatency } from '../results/histogram.ts';
import type { RrInterval, RrResult } from '../results/result.ts';
import { SelfMonitor } from './self-check.ts';
import { round } from '../results/stats.ts';
import { startLatencyIntervals } from './latency-intervals.ts';

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

const READ_BUFFER_SIZE = 64 * 1024;

/** One connection's requests in flight: their (intended) start times, oldest first. */
class InFlight {
  readonly #starts: number[] = [];
  #head = 0;

  get size(): number {
    return this.#starts.length - this.#head;
  }

  push(start: number): void {
    this.#starts.push(start);
  }

  shift(): number {
    const start = this.#starts[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#starts.length) {
      this.#starts.splice(0, this.#head);
      this.#head = 0;
    }
    return start;
  }
}

/**
 * Request/response latency. Closed loop sends the next request when a response completes; open
 * loop sends on a fixed schedule and measures from the intended send time, so a stalled server
 * cannot hide its stall by slowing the client (coordinated omission).
 */
export async function runRr(options: RrOptions): Promise<RrResult> {
  const total = createLatencyHistogram();
  const interval = createLatencyHistogram();
  const request = options.payload ?? Buffer.alloc(options.size, 0x61);
  const responseSize = options.responseSize ?? request.length;
  const inFlight = Array.from({ length: options.connections }, () => new InFlight());
  const pendingBytes = new Array<number>(options.connections).fill(0);
  let recording = options.omitSec === 0;
  let running = true;
  let completed = 0;
  let sent = 0;

  const send = (index: number, start: number): void => {
    sent++;
    inFlight[index]!.push(start);
    sockets[index]!.write(request);
  };
  const onResponse = (index: number, now: number): void => {
    const start = inFlight[index]!.shift();
    if (recording) {
      const nanos = Math.max(1, Math.round((now - start) * 1e6));
      total.recordValue(nanos);
      interval.recordValue(nanos);
      completed++;
    }
    if (running && options.rate === undefined) send(index, performance.now());
  };

  const session = await DataSession.open(options, 'echo', options.server, options.connections, (index) => ({
    buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
    callback: (bytes: number) => {
      const now = performance.now();
      let pending = pendingBytes[index]! + bytes;
      while (pending >= responseSize && inFlight[index]!.size > 0) {
        pending -= responseSize;
        onResponse(index, now);
      }
      pendingBytes[index] = pending;
      return true;
    },
  }));
  const { sockets } = session;
  const startedAt = Date.now();
  const monitor = new SelfMonitor().start();
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
      // Timers have millisecond granularity: closer deadlines are met by polling each loop turn.
      const wait = nextDue - performance.now();
      if (wait < 1.5) setImmediate(tick);
      else setTimeout(tick, Math.floor(wait));
    };
    tick();
  }

  const { ticker, intervals } = startLatencyIntervals(
    options,
    interval,
    () => completed,
    () => recording,
  );
  const measuredSeconds = await session.measure(options, ticker, () => (recording = true));
  const requests = completed;
  running = false;
  recording = false;
  ticker.stop();
  const selfCheck = monitor.stop(options.rate === undefined ? undefined : scheduleLag.getValueAtPercentile(99));
  const effective = session.failed ? null : session.effective();
  const serverResult = await session.finish();
  return {
    ...session.common('rr', startedAt, options, selfCheck),
    effective: effective ?? { client: null, server: session.peer.server?.effective ?? null },
    intervals,
    summary: {
      mode: options.rate === undefined ? 'closed-loop' : 'open-loop',
      measuredSeconds: round(measuredSeconds, 3),
      requests,
      requestsPerSecond: Math.round(requests / measuredSeconds),
      sentRequests: sent,
      latency: summarizeLatency(total),
      histogram: encodeHistogram(total),
      percentileCurve: percentileCurve(total),
      serverCpuPercent: serverResult?.cpuPercent ?? null,
    },
  };
}
