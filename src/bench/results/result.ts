import type { ErrorCounts } from '../../core/errors.ts';
import type { EffectiveSocketOptions } from '../../core/socket-options.ts';
import type { Environment } from './environment.ts';
import type { LatencySummary } from './histogram.ts';
import type { Warning } from './warnings.ts';
import type {
  ConnsOptionsRecord,
  CrrOptionsRecord,
  MsgOptionsRecord,
  RrOptionsRecord,
  StreamOptionsRecord,
  TimedOptionsRecord,
} from './result-options.ts';

/** How honest a run's numbers are: the client's own CPU and event-loop delay while it measured. */
export interface SelfCheck {
  /** CPU time of this process over wall time, in percent of one core (the client's event loop is one thread). */
  cpuPercent: number;
  /**
   * Linux: the busiest thread of this process (its event loop, or a sender thread of stream -Z or
   * stream -u) in percent of one core, from /proc's per-thread times (10 ms ticks). The CPU part of
   * clientSaturated is judged on it: a thread at its core's limit, not a process busy on several.
   */
  busiestThreadCpuPercent?: number;
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** Open loop only: p99 of how late requests left after their intended send time. */
  scheduleLagP99Us?: number;
  /**
   * Where the client's cgroup has readable CPU counters (core/cgroup-cpu.ts), over the run: how long
   * its CPU quota stopped the cgroup, in how many of the scheduler periods in which it ran.
   */
  cpuThrottledMs?: number;
  cpuThrottledPeriods?: number;
  cpuPeriods?: number;
  /** The cgroup's CPU quota, in CPUs (0.2: 20 ms of every 100 ms); absent without one. */
  cpuQuota?: number;
  /** --client-threads: each client thread's own CPU (percent of one core) and event-loop delay, and whether it was saturated. */
  clientThreads?: { cpuPercent: number; eventLoopDelayP99Ms: number; saturated: boolean }[];
  clientSaturated: boolean;
}

/** Every JSON document socktune prints carries this; docs/json-schema.md describes it. */
export const RESULT_SCHEMA = 'socktune/1';

export interface EffectiveBothEnds {
  client: EffectiveSocketOptions | null;
  /** null when the peer is not a socktune server (--raw). */
  server: EffectiveSocketOptions | null;
}

/** One connection's share of a stream interval, with the kernel's view of it (TCP_INFO), in iperf3's names. */
export interface StreamIntervalStream {
  /** 1 for the first connection, as iperf3 numbers its streams in order. */
  socket: number;
  sentBytes: number;
  receivedBytes: number;
  bitsPerSecond: number;
  /** Segments retransmitted in the interval; the sender's figures, null where this end only receives. */
  retransmits: number | null;
  /** Congestion window in bytes at the interval's end (snd_cwnd × snd_mss). */
  snd_cwnd: number | null;
  /** Smoothed round-trip time and its variance, µs. */
  rtt: number | null;
  rttvar: number | null;
}

export interface StreamInterval {
  startSec: number;
  endSec: number;
  /** Bytes the client wrote / read in the interval. */
  sentBytes: number;
  receivedBytes: number;
  bitsPerSecond: number;
  omitted: boolean;
  /** Retransmitted segments of every connection in the interval (null against a peer whose sockets this end does not send on). */
  retransmits?: number | null;
  /** Per connection, as iperf3's per-stream lines. */
  streams?: StreamIntervalStream[];
}

export interface StreamSummary {
  direction: 'forward' | 'reverse' | 'bidir';
  measuredSeconds: number;
  /**
   * Rate over the measured phase (after --omit), from the client's own counters; for data sent to
   * a socktune server, over the measured phase plus `drainSeconds`, so only what arrived counts.
   */
  bitsPerSecond: number;
  /** How long what was still in the socket buffers at the end took to reach a socktune server; null for reverse, raw and iperf3 peers. */
  drainSeconds: number | null;
  /** null when that side is a raw peer, which counts nothing for us. */
  sender: { bytes: number; side: 'client' | 'server' } | null;
  receiver: { bytes: number; side: 'client' | 'server' } | null;
  /** Server→client bytes in a --bidir test (client→server is sender/receiver above). */
  reverseBytes?: { sent: number | null; received: number };
  retransmits: number | null;
  verify: { bytesChecked: number; bytesCorrupted: number; bytesLost: number } | null;
  serverCpuPercent: number | null;
  /** stream -u: what the datagrams met on the way. */
  udp?: UdpSummary;
}

/**
 * A UDP stream's datagrams: sent by one end, counted by the other (the server, or with -R the client), and why the missing ones are
 * missing.
 */
export interface UdpSummary {
  datagramBytes: number;
  /** Datagrams the sender's kernel took (with -R, the server's count). */
  sent: number;
  /** Sends the kernel refused (ENOBUFS, ECONNREFUSED from an earlier ICMP error). */
  sendErrors: number;
  /** Distinct datagrams the receiver counted. */
  received: number;
  /** sent − received. */
  lost: number;
  lostPercent: number;
  /** Arrived after a higher-numbered datagram; null where the receiver does not report it (an iperf3 server). */
  outOfOrder: number | null;
  /** null where the receiver does not report them (an iperf3 server). */
  duplicates: number | null;
  /** RFC 3550 interarrival jitter, µs (the mean of the streams'). */
  jitterUs: number;
  /**
   * Datagrams the receiving socket's kernel dropped, its receive buffer full (sk_drops); with -R the client's sockets together; null
   * where unknown.
   */
  receiveBufferDrops: number | null;
  /** The receiving host's UdpRcvbufErrors over the test, every UDP socket together; null where unknown. */
  hostReceiveBufferErrors: number | null;
  /** Datagrams the server dropped as not this test's (another source, another token). */
  foreign: number;
  /** Datagrams per send system call at the sender: 1 one each (as iperf3), more where the kernel cut them (UDP GSO); null: not counted. */
  datagramsPerSend: number | null;
  /** Datagrams per receive: more than 1 where the kernel handed over segmented sends whole (UDP GRO); null: not counted. */
  datagramsPerReceive: number | null;
}

export interface RrInterval {
  startSec: number;
  endSec: number;
  requests: number;
  requestsPerSecond: number;
  /** null for an interval in which no request completed. */
  p50Us: number | null;
  p99Us: number | null;
  /** This interval's latencies, encoded like the summary's, so merged intervals have exact percentiles. */
  histogram: string;
  omitted: boolean;
}

export interface RrSummary {
  mode: 'closed-loop' | 'open-loop';
  measuredSeconds: number;
  requests: number;
  requestsPerSecond: number;
  /** Requests written over the whole test, warm-up and the ones still in flight at the end included: what the server received. */
  sentRequests: number;
  latency: LatencySummary;
  /** hdr-histogram-js compressed base64 of the latencies in nanoseconds, for exact merging. */
  histogram: string;
  percentileCurve: { percentile: number; us: number }[];
  serverCpuPercent: number | null;
  /** rr -u: the requests that got no reply. */
  udp?: UdpRrSummary;
}

/** rr -u: what became of the requests that were not answered in time. */
export interface UdpRrSummary {
  replyTimeoutMs: number;
  /** Requests of the measured phase unanswered within replyTimeoutMs (each replaced by the next). */
  lost: number;
  /** Of the requests sent in the measured phase. */
  lostPercent: number;
  /** Replies that came after their request was counted lost. */
  late: number;
  /** Datagrams that answered no request of this client's. */
  foreign: number;
  /** Requests the socktune server counted, and replies it sent (over --max-rate it sends none); null against sockperf. */
  serverReceived: number | null;
  serverReplied: number | null;
  /** Requests the socktune server's socket dropped, its receive buffer full (sk_drops); null against sockperf or where unknown. */
  serverReceiveBufferDrops?: number | null;
  /** Replies this client's sockets dropped, their receive buffers full; null where unknown. */
  receiveBufferDrops?: number | null;
}

export interface CrrSummary {
  measuredSeconds: number;
  transactions: number;
  transactionsPerSecond: number;
  /** Connect + request + response, per transaction. */
  latency: LatencySummary;
  /** The connect() part alone. */
  connectLatency: LatencySummary;
  /** The connect times' HDR histogram, encoded as `histogram` is: client threads' are merged exactly. */
  connectHistogram: string;
  histogram: string;
  percentileCurve: { percentile: number; us: number }[];
  /** Failed transactions by errno (ECONNREFUSED, EADDRNOTAVAIL, ETIMEDOUT, ...). */
  failures: ErrorCounts;
  serverCpuPercent: number | null;
}

export interface ConnsSummary {
  target: number;
  opened: number;
  failed: number;
  failures: ErrorCounts;
  openSeconds: number;
  connectsPerSecond: number;
  connectLatency: LatencySummary;
  heldSeconds: number;
  /** Connections still open at the end of the hold. */
  stillOpen: number;
  openFilesLimit: { soft: number; hard: number };
  client: { rssBytesPerConnection: number };
  /** From the server's own memory before and while holding; null against a raw peer. */
  server: { connections: number; rssBytesPerConnection: number; heapBytesPerConnection: number | null; cpuPercent: number } | null;
}

export interface MsgInterval {
  startSec: number;
  endSec: number;
  /** Messages sent (one-way) or echoes received (echo) in the interval. */
  messages: number;
  messagesPerSecond: number;
  bitsPerSecond: number;
  p50Us?: number;
  p99Us?: number;
  /** echo: the interval's latencies as an encoded HDR histogram, as rr's intervals have them. */
  histogram?: string;
  omitted: boolean;
}

export interface MsgSummary {
  mode: 'one-way' | 'echo';
  measuredSeconds: number;
  messagesPerSecond: number;
  /** Wire rate including the 4-byte prefixes. */
  bitsPerSecond: number;
  messagesSent: number;
  /** From the server's own count; equal to messagesSent when nothing was lost. null for a raw peer. */
  messagesReceivedByServer: number | null;
  /** Messages still queued when the connections closed (0 after a clean close). */
  unsent: number;
  /** Messages per write the client's coalescing achieved. */
  averageBatch: number;
  latency: LatencySummary | null;
  histogram: string | null;
  percentileCurve: { percentile: number; us: number }[];
  serverCpuPercent: number | null;
}

export interface BenchResult<Summary, Interval, Options = TimedOptionsRecord> {
  schema: typeof RESULT_SCHEMA;
  command: string;
  startedAt: string;
  environment: { client: Environment; server: Environment | null };
  /** The public settings of the run (result-options.ts): never the auth token. */
  options: Options;
  effective: EffectiveBothEnds;
  intervals: Interval[];
  summary: Summary;
  selfCheck: SelfCheck;
  clientSaturated: boolean;
  /** Present (true) when Ctrl-C or SIGTERM ended the test early: the figures cover the measured seconds only. */
  interrupted?: true;
  /** The human lines of warningDetails, for readers older than it. */
  warnings: string[];
  warningDetails: Warning[];
}

export type StreamResult = BenchResult<StreamSummary, StreamInterval, StreamOptionsRecord>;
export type RrResult = BenchResult<RrSummary, RrInterval, RrOptionsRecord>;
export type CrrResult = BenchResult<CrrSummary, RrInterval, CrrOptionsRecord>;
export type ConnsResult = BenchResult<ConnsSummary, never, ConnsOptionsRecord>;
export type MsgResult = BenchResult<MsgSummary, MsgInterval, MsgOptionsRecord>;
