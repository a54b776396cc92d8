import { SocktuneError } from '../../core/errors.ts';
import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import type { StreamInterval, StreamSummary } from '../results/result.ts';
import type { PerConnection } from './stream-intervals.ts';

/** A test against a stock iperf3 server, as `stream --iperf3` asks for it. */
export interface Iperf3ClientOptions {
  host: string;
  port: number;
  durationSec: number;
  /** iperf3 -n: end after this many bytes instead of after durationSec. */
  bytes?: number | undefined;
  omitSec: number;
  /** TCP unless 'udp' (iperf3 -u). */
  protocol?: 'tcp' | 'udp' | undefined;
  /** UDP: most datagrams per system call (1: one each, as iperf3 does); else up to 64, cut by the kernel (UDP GSO). */
  batch?: number | undefined;
  /** Bytes per write (iperf3 -l); with UDP, per datagram. */
  writeSize: number;
  parallel: number;
  direction: 'forward' | 'reverse' | 'bidir';
  /** iperf3 -w: SO_SNDBUF and SO_RCVBUF on both ends. */
  window?: number | undefined;
  noDelay: boolean;
  /** iperf3 -b: bits/s per stream; the iperf3 server paces its own sending (-R, --bidir) with it too. */
  bitrate?: number | undefined;
  /** iperf3 --cport: stream i connects from this port + i. */
  localPort?: number | undefined;
  intervalSec: number;
  onInterval?: (interval: StreamInterval) => void;
  /** Ctrl-C: ends the test early (TEST_END as usual); the result keeps what was measured, marked `interrupted`. */
  interrupt?: AbortSignal | undefined;
}

/** What an iperf3 client test needs of its streams, TCP or UDP: the control loop in iperf3.ts drives either. */
export interface Iperf3ClientStreams {
  /** The test's parameters that depend on the protocol (its key, block length, rate, window). */
  parameters(): Record<string, unknown>;
  /** CREATE_STREAMS: every stream, in iperf3's order (the first `parallel` carry client→server data, except with -R). */
  open(cookie: Buffer): Promise<void>;
  effective(): EffectiveSocketOptions | null;
  /** TEST_RUNNING: this client's senders start. */
  start(): void;
  /** Bytes this client has sent, and received, so far. */
  sentBytes(): number;
  receivedBytes(): number;
  perConnection(): PerConnection;
  /** Time is up: sending stops; resolves once what was sent has had its chance to be counted by the server. */
  stop(): Promise<void>;
  /** The streams' entries of the client's results message (iperf3's units). */
  results(durationSec: number): Record<string, unknown>[];
  /** The summary's traffic fields, from this end's counts and the server's own. */
  summarize(server: Iperf3ServerStream[]): Pick<StreamSummary, 'sender' | 'receiver' | 'reverseBytes' | 'retransmits' | 'udp'>;
  close(): void;
}

/** One stream of the server's results, its numbers checked. */
export interface Iperf3ServerStream {
  id: number;
  bytes: number;
  retransmits: number;
  /** Seconds (iperf3's unit). */
  jitter: number;
  /** UDP: datagrams lost (receiving) ; 0 for TCP. */
  errors: number;
  /** UDP: the highest packet number seen (receiving) or the datagrams sent; 0 for TCP. */
  packets: number;
}

/** The server's streams, in order; a server that sends something else than iperf3's numbers is refused. */
export function serverStreamsOf(results: Record<string, unknown>): Iperf3ServerStream[] {
  const streams = results.streams;
  if (!Array.isArray(streams) || streams.length > 256)
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', "the iperf3 server's results have no list of streams");
  return streams.map((stream: unknown, index) => {
    const record = (typeof stream === 'object' && stream !== null ? stream : {}) as Record<string, unknown>;
    const number = (key: string, min: number): number => {
      const value = record[key] ?? 0;
      // iperf3 3.12 writes its "unknown" (-1) as an unsigned 64-bit number.
      if (key === 'retransmits' && value === 2 ** 64) return -1;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > Number.MAX_SAFE_INTEGER)
        throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the iperf3 server's stream ${index + 1} has ${key} ${JSON.stringify(value)}`);
      return value;
    };
    return {
      id: number('id', 0),
      bytes: number('bytes', 0),
      // iperf3 sends -1 where it does not know.
      retransmits: Math.max(0, number('retransmits', -1)),
      jitter: number('jitter', 0),
      errors: number('errors', 0),
      packets: number('packets', 0),
    };
  });
}
