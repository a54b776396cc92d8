import { SocktuneError } from '../core/errors.ts';
import type { TunedSocket } from '../transport/connect.ts';
import type { TestServerSettings } from './control-protocol.ts';
import { allClosed, effectiveOf, openDataConnections, type ClientSocketSettings } from './data-connections.ts';
import { collectEnvironment } from './environment.ts';
import { createLatencyHistogram, encodeHistogram, percentileCurve, summarizeLatency } from './histogram.ts';
import { RemoteTest, type ServerTarget } from './remote-test.ts';
import { RESULT_SCHEMA, saturationWarning, type RrInterval, type RrResult } from './result.ts';
import { round, SelfMonitor } from './self-check.ts';
import { sleep, Ticker } from './ticker.ts';

export interface RrOptions {
  target: ServerTarget;
  durationSec: number;
  /** Warm-up seconds whose latencies are not recorded. */
  omitSec: number;
  /** Request bytes; the echo service answers with as many. */
  size: number;
  connections: number;
  /** Requests in flight per connection. */
  depth: number;
  /** Open loop: total requests per second on a fixed schedule. Undefined: closed loop. */
  rate?: number | undefined;
  client: ClientSocketSettings;
  server: TestServerSettings;
  intervalSec: number;
  onInterval?: (interval: RrInterval) => void;
}

const READ_BUFFER_SIZE = 64 * 1024;
const DRAIN_GRACE_MS = 5_000;

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
  const remote = await RemoteTest.start(options.target, 'echo', options.server, (options.durationSec + options.omitSec) * 1000 + DRAIN_GRACE_MS);
  const total = createLatencyHistogram();
  const interval = createLatencyHistogram();
  const request = Buffer.alloc(options.size, 0x61);
  const inFlight = Array.from({ length: options.connections }, () => new InFlight());
  const pendingBytes = new Array<number>(options.connections).fill(0);
  let recording = options.omitSec === 0;
  let running = true;
  let completed = 0;
  let sockets: TunedSocket[] = [];

  const send = (index: number, start: number): void => {
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

  try {
    sockets = await openDataConnections(remote.data, options.connections, options.client, (index) => ({
      buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
      callback: (bytes: number) => {
        const now = performance.now();
        let pending = pendingBytes[index]! + bytes;
        while (pending >= options.size && inFlight[index]!.size > 0) {
          pending -= options.size;
          onResponse(index, now);
        }
        pendingBytes[index] = pending;
        return true;
      },
    }));
  } catch (error) {
    remote.abort();
    throw error;
  }
  const stop = new AbortController();
  let failure: Error | undefined;
  for (const socket of sockets) {
    socket.on('error', (error: NodeJS.ErrnoException) => {
      failure ??= new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `data connection failed mid-test: ${error.code ?? error.message}`, { cause: error });
      stop.abort();
    });
  }

  const monitor = new SelfMonitor().start();
  let scheduler: NodeJS.Timeout | NodeJS.Immediate | undefined;
  if (options.rate === undefined) {
    for (let i = 0; i < sockets.length; i++) for (let d = 0; d < options.depth; d++) send(i, performance.now());
  } else {
    const periodMs = (1000 * options.connections) / options.rate;
    const startedAt = performance.now();
    const nextIntended = sockets.map((_, i) => startedAt + (periodMs * i) / options.connections);
    const waiting = sockets.map(() => [] as number[]);
    const tick = (): void => {
      if (!running) return;
      const now = performance.now();
      let nextDue = Infinity;
      for (let i = 0; i < sockets.length; i++) {
        while (nextIntended[i]! <= now) {
          waiting[i]!.push(nextIntended[i]!);
          nextIntended[i]! += periodMs;
        }
        // A request that cannot go yet keeps its intended time: the wait counts as latency.
        while (waiting[i]!.length > 0 && inFlight[i]!.size < options.depth) send(i, waiting[i]!.shift()!);
        nextDue = Math.min(nextDue, nextIntended[i]!);
      }
      // Timers have millisecond granularity: closer deadlines are met by polling each loop turn.
      const wait = nextDue - performance.now();
      scheduler = wait < 1.5 ? setImmediate(tick) : setTimeout(tick, Math.floor(wait));
    };
    tick();
  }

  const intervals: RrInterval[] = [];
  let last = { sec: 0, completed: 0 };
  const ticker = new Ticker(options.intervalSec, (elapsedSec) => {
    const requests = completed - last.completed;
    const sample: RrInterval = {
      startSec: round(last.sec, 3),
      endSec: round(elapsedSec, 3),
      requests,
      requestsPerSecond: Math.round(requests / (elapsedSec - last.sec)),
      p50Us: interval.totalCount ? round(interval.getValueAtPercentile(50) / 1000, 2) : 0,
      p99Us: interval.totalCount ? round(interval.getValueAtPercentile(99) / 1000, 2) : 0,
      omitted: !recording,
    };
    interval.reset();
    intervals.push(sample);
    options.onInterval?.(sample);
    last = { sec: elapsedSec, completed };
  });
  await sleep(options.omitSec * 1000, stop.signal);
  recording = true;
  const measuredStart = ticker.elapsedSec;
  await sleep(options.durationSec * 1000, stop.signal);
  const measuredSeconds = ticker.elapsedSec - measuredStart;
  const requests = completed;
  running = false;
  recording = false;
  ticker.stop();
  const selfCheck = monitor.stop();
  const effectiveClient = failure ? null : effectiveOf(sockets) ?? null;
  for (const socket of sockets) socket.end();
  await allClosed(sockets, DRAIN_GRACE_MS);
  if (failure) {
    remote.abort();
    throw failure;
  }
  const serverResult = await remote.finish();
  return {
    schema: RESULT_SCHEMA,
    command: 'rr',
    startedAt: new Date(Date.now() - ticker.elapsedSec * 1000).toISOString(),
    environment: { client: collectEnvironment(), server: remote.ready.environment },
    options: { ...options, onInterval: undefined },
    effective: { client: effectiveClient, server: remote.ready.effective },
    intervals,
    summary: {
      mode: options.rate === undefined ? 'closed-loop' : 'open-loop',
      measuredSeconds: round(measuredSeconds, 3),
      requests,
      requestsPerSecond: Math.round(requests / measuredSeconds),
      latency: summarizeLatency(total),
      histogram: encodeHistogram(total),
      percentileCurve: percentileCurve(total),
      serverCpuPercent: serverResult.cpuPercent,
    },
    selfCheck,
    clientSaturated: selfCheck.clientSaturated,
    warnings: [...remote.ready.warnings.map((w) => `server: ${w}`), ...sockets[0]!.socketWarnings.map((w) => `client: ${w.message}`), ...saturationWarning(selfCheck)],
  };
}
