import { SocktuneError } from '../../core/errors.ts';
import { effectiveSocketOptions } from '../../transport/client/connect.ts';
import { connectMessages } from '../../transport/messages/message-endpoints.ts';
import type { MessageSocket } from '../../transport/messages/message-socket.ts';
import { DataSession, type RunOptions } from './data-session.ts';
import type { MsgInterval, MsgResult } from '../results/result.ts';
import { InFlight } from './in-flight.ts';
import { LatencyRecorder } from './latency-recorder.ts';
import { round } from '../results/stats.ts';
import { timedOptionsRecord } from '../results/result-options.ts';
import { Ticker } from './ticker.ts';
import { encodeHistogram, intervalPercentileUs } from '../results/histogram.ts';

export interface MsgOptions extends RunOptions<MsgInterval> {
  /** Payload bytes per message (the u32 length prefix adds 4). */
  size: number;
  connections: number;
  /** one-way: send as fast as the peer takes; echo: the peer sends each message back. */
  mode: 'one-way' | 'echo';
  /** Coalescing: 'auto' flushes once per tick, N every N messages. */
  batch: 'auto' | number;
  /** echo: messages in flight per connection. */
  depth: number;
}

const PREFIX_BYTES = 4;
/** Time spent queueing per event-loop turn before yielding, so timers and interval reports keep time. */
const TURN_MS = 2;
const MESSAGES_PER_BATCH = 256;

/** Length-prefixed small messages: messages/s one way, or echoed with per-message latency. */
export async function runMsg(options: MsgOptions): Promise<MsgResult> {
  const payload = Buffer.alloc(options.size, 0x6d);
  const session = await DataSession.open(options, options.mode === 'echo' ? 'msg-echo' : 'msg-sink', options.server);
  /** Until the traffic stops: errors after it (the closing handshake) are not the test's. */
  const traffic = { running: true };
  const sockets: MessageSocket[] = [];
  // Whatever fails, from the first connection to the result, leaves nothing open.
  try {
    for (let i = 0; i < options.connections; i++) {
      sockets.push(await connectMessages({ ...session.peer.data, ...options.client, messages: { batch: options.batch } }));
    }
    // Read now: a connection the peer breaks later has no descriptor left to read them from.
    const effectiveClient = sockets[0] ? effectiveSocketOptions(sockets[0].socket) : null;
    for (const socket of sockets) {
      socket.on('error', (error: Error) => {
        if (!traffic.running) return;
        session.failWith(
          error instanceof SocktuneError
            ? error
            : new SocktuneError('SOCKTUNE_ERR_PEER_GONE', `data connection failed mid-test: ${error.message}`, { cause: error }),
        );
      });
    }
    return await measure(options, session, sockets, payload, effectiveClient, traffic);
  } catch (error) {
    for (const socket of sockets) socket.socket.destroy();
    session.peer.abort();
    throw error;
  }
}

/** The traffic and the measured phase of a msg test whose connections are open. */
async function measure(
  options: MsgOptions,
  session: DataSession,
  sockets: MessageSocket[],
  payload: Buffer,
  effectiveClient: ReturnType<typeof effectiveSocketOptions> | null,
  traffic: { running: boolean },
): Promise<MsgResult> {
  const latency = new LatencyRecorder(options.omitSec);
  let sent = 0;
  session.startTraffic();

  if (options.mode === 'one-way') {
    // Sent as an application with a queue would, MESSAGES_PER_BATCH at a time through sendBatch: each still framed on its own.
    const batch = new Array<Buffer>(MESSAGES_PER_BATCH).fill(payload);
    for (const socket of sockets) {
      const pump = (): void => {
        const turnEnds = performance.now() + TURN_MS;
        while (traffic.running) {
          sent += MESSAGES_PER_BATCH;
          if (!socket.sendBatch(batch)) return void socket.once('drain', pump);
          if (performance.now() > turnEnds) break;
        }
        if (traffic.running) setImmediate(pump);
      };
      setImmediate(pump);
    }
  } else {
    for (const socket of sockets) {
      const inFlight = new InFlight();
      const sendOne = (): void => {
        inFlight.push(performance.now());
        sent++;
        socket.send(payload);
      };
      socket.on('message', () => {
        latency.record(performance.now() - inFlight.shift());
        if (traffic.running) sendOne();
      });
      for (let i = 0; i < options.depth; i++) sendOne();
    }
  }

  const intervals: MsgInterval[] = [];
  let last = { sec: 0, count: 0 };
  const counted = (): number => (options.mode === 'echo' ? latency.completed : sent);
  const ticker = new Ticker(options.intervalSec, (elapsedSec) => {
    const messages = counted() - last.count;
    const seconds = elapsedSec - last.sec;
    const interval: MsgInterval = {
      startSec: round(last.sec, 3),
      endSec: round(elapsedSec, 3),
      messages,
      messagesPerSecond: Math.round(messages / seconds),
      bitsPerSecond: Math.round((messages * (options.size + PREFIX_BYTES) * 8) / seconds),
      ...(options.mode === 'echo' && latency.interval.totalCount > 0
        ? {
            p50Us: intervalPercentileUs(latency.interval, 50)!,
            p99Us: intervalPercentileUs(latency.interval, 99)!,
          }
        : {}),
      ...(options.mode === 'echo' ? { histogram: encodeHistogram(latency.interval) } : {}),
      omitted: !latency.recording && options.mode === 'echo' ? true : elapsedSec <= options.omitSec + 1e-3,
    };
    latency.foldInterval();
    intervals.push(interval);
    options.onInterval?.(interval);
    last = { sec: elapsedSec, count: counted() };
  });
  let atOmit = 0;
  let measuredMessages = 0;
  const { measuredSeconds, selfCheck } = await session.run(options, ticker, {
    onMeasureStart: () => {
      latency.recording = true;
      atOmit = sent;
    },
    stopTraffic: () => {
      measuredMessages = options.mode === 'echo' ? latency.completed : sent - atOmit;
      traffic.running = false;
      latency.recording = false;
    },
  });
  const effective = { client: effectiveClient, server: session.peer.server?.effective ?? null };
  const clientStats = sockets.map((socket) => socket.stats());
  const unsent = (await Promise.all(sockets.map((socket) => socket.close()))).reduce((sum, closedSocket) => sum + closedSocket.unsent, 0);
  const serverResult = await session.finish();
  const messagesOut = clientStats.reduce((sum, stats) => sum + stats.messagesOut, 0);
  const flushes = clientStats.reduce((sum, stats) => sum + stats.flushes, 0);
  return session.result(
    'msg',
    {
      ...timedOptionsRecord(options),
      size: options.size,
      connections: options.connections,
      mode: options.mode,
      batch: options.batch,
      depth: options.depth,
    },
    selfCheck,
    {
      effective,
      intervals,
      summary: {
        mode: options.mode,
        measuredSeconds: round(measuredSeconds, 3),
        messagesPerSecond: Math.round(measuredMessages / measuredSeconds),
        bitsPerSecond: Math.round((measuredMessages * (options.size + PREFIX_BYTES) * 8) / measuredSeconds),
        messagesSent: sent,
        messagesReceivedByServer: serverResult?.metrics.messagesIn ?? null,
        unsent,
        averageBatch: flushes === 0 ? 0 : round(messagesOut / flushes, 1),
        ...(options.mode === 'echo' ? latency.summary() : { latency: null, histogram: null, percentileCurve: [] }),
        serverCpuPercent: serverResult?.cpuPercent ?? null,
      },
    },
  );
}
