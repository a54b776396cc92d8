import { isIPv6 } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { datagramTemplate, readDatagram, stampDatagram } from '../../framing/datagram.ts';
import {
  encodeMessage,
  FLAG_CLIENT,
  FLAG_PONG_REQUEST,
  HEADER_BYTES,
  messageFlags,
  messageLength,
} from '../../protocols/sockperf/codec.ts';
import { countDropsFrom } from '../../core/udp-counters.ts';
import { bindUdp, connectUdp, udpBuffers, type BoundUdpSocket } from '../../transport/udp/udp-socket.ts';
import type { TestServerSettings } from '../control/control-protocol.ts';
import { RemoteTest, type ServerTarget } from '../control/remote-test.ts';
import { benchResult } from '../results/envelope.ts';
import type { RrInterval, RrResult, UdpRrSummary } from '../results/result.ts';
import { requestRecord, timedOptionsRecord } from '../results/result-options.ts';
import { round } from '../results/stats.ts';
import { bufferCapped } from '../results/warnings.ts';
import { startLatencyIntervals } from './latency-intervals.ts';
import { LatencyRecorder } from './latency-recorder.ts';
import { SelfMonitor } from './self-check.ts';
import { sleep } from './ticker.ts';

export interface UdpRrOptions {
  /** A socktune server's control port (its udp-echo service), or a stock `sockperf sr` over UDP. */
  peer: { target: ServerTarget; server: TestServerSettings } | { sockperf: { host: string; port: number } };
  durationSec: number;
  omitSec: number;
  intervalSec: number;
  /** Bytes of each request datagram; the reply has as many. */
  size: number;
  /** Client sockets, each with `depth` requests in flight. */
  connections: number;
  depth: number;
  /** A request unanswered this long is counted lost, and its place goes to the next one. */
  replyTimeoutMs: number;
  client: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined };
  onInterval?: (interval: RrInterval) => void;
  interrupt?: AbortSignal | undefined;
}

/** What a request looks like on the wire, and which request a reply answers. */
interface PingFormat {
  request(socket: number, sequence: number): Buffer;
  /** The sequence number this datagram answers, or undefined when it is no reply of this socket's. */
  answers(socket: number, datagram: Buffer): number | undefined;
}

interface PingSocket {
  bound: BoundUdpSocket;
  /** Requests in flight by sequence number, with their send time; in send order. */
  waiting: Map<number, number>;
  next: number;
}

/**
 * `rr -u`: UDP ping-pong, like sockperf's over UDP. Each socket keeps `depth` requests in flight
 * (closed loop); a reply's latency is taken from this client's own record of the send, never from
 * the reply's bytes; a request unanswered after `replyTimeoutMs` is counted lost and replaced, so a
 * lost datagram never stalls the test.
 */
export async function runUdpRr(options: UdpRrOptions): Promise<RrResult> {
  const remote =
    'target' in options.peer
      ? await RemoteTest.start(options.peer.target, 'udp-echo', options.peer.server, (options.durationSec + options.omitSec + 5) * 1000)
      : undefined;
  const sockets: PingSocket[] = [];
  let sweeper: NodeJS.Timeout | undefined;
  let monitor: SelfMonitor | undefined;
  try {
    const { address, port, format } = remote === undefined ? sockperfPeer(options) : socktunePeer(remote, options.size);
    for (let index = 0; index < options.connections; index++) {
      const bound = await bindUdp({ host: isIPv6(address) ? '::' : '0.0.0.0', port: 0, ...udpBuffers(options.client) });
      sockets.push({ bound, waiting: new Map(), next: 0 });
      bound.socket.on('error', () => {});
      await connectUdp(bound.socket, port, address);
    }
    // Replies this client's sockets dropped, their receive buffers full, counted from here; a connected socket is known by the
    // source address the kernel chose for it and its peer.
    const clientDrops = countDropsFrom(sockets.map(({ bound }) => ({ ...bound.socket.address(), remote: bound.socket.remoteAddress() })));
    const latency = new LatencyRecorder(options.omitSec);
    const counts = { sent: 0, lost: 0, late: 0, foreign: 0 };
    let running = true;
    const send = (index: number): void => {
      const socket = sockets[index]!;
      const sequence = socket.next++;
      socket.waiting.set(sequence, performance.now());
      counts.sent++;
      socket.bound.socket.send(format.request(index, sequence));
    };
    sockets.forEach((socket, index) =>
      socket.bound.socket.on('message', (datagram) => {
        const now = performance.now();
        const sequence = format.answers(index, datagram);
        const sentAt = sequence === undefined ? undefined : socket.waiting.get(sequence);
        if (sentAt === undefined) {
          // An answer to a request already counted lost (or a second answer to one): late, not a latency.
          if (sequence !== undefined && sequence < socket.next) counts.late++;
          else counts.foreign++;
          return;
        }
        socket.waiting.delete(sequence!);
        latency.record(now - sentAt);
        if (running) send(index);
      }),
    );
    // Requests are in send order: each sweep stops at the first one still in time.
    const sweep = (): void => {
      const expired = performance.now() - options.replyTimeoutMs;
      sockets.forEach((socket, index) => {
        for (const [sequence, sentAt] of socket.waiting) {
          if (sentAt > expired) break;
          socket.waiting.delete(sequence);
          if (latency.recording) counts.lost++;
          if (running) send(index);
        }
      });
    };
    sweeper = setInterval(sweep, Math.max(5, Math.min(100, options.replyTimeoutMs / 4)));
    monitor = new SelfMonitor().start();
    const startedAt = Date.now();
    const { ticker, intervals } = startLatencyIntervals(options, latency);
    sockets.forEach((_, index) => {
      for (let i = 0; i < options.depth; i++) send(index);
    });
    await sleep(options.omitSec * 1000, options.interrupt);
    latency.recording = true;
    const measureStart = ticker.elapsedSec;
    const sentBefore = counts.sent;
    await sleep(options.durationSec * 1000, options.interrupt);
    const measuredSeconds = ticker.elapsedSec - measureStart;
    running = false;
    latency.recording = false;
    ticker.stop();
    const selfCheck = monitor.stop();
    // The last requests get their time to be answered (or counted lost) before the server is told the test is over.
    await untilAnswered(sockets, options.replyTimeoutMs);
    const measuredRequests = counts.sent - sentBefore;
    const clientDropsAfter = clientDrops().socket;
    const serverResult = remote === undefined ? undefined : await remote.finish();
    const report = serverResult?.datagrams;
    const requests = latency.completed;
    const summary = latency.summary();
    const udp: UdpRrSummary = {
      replyTimeoutMs: options.replyTimeoutMs,
      lost: counts.lost,
      lostPercent: measuredRequests === 0 ? 0 : round((counts.lost / measuredRequests) * 100, 3),
      late: counts.late,
      foreign: counts.foreign,
      serverReceived: report === undefined ? null : report.streams.reduce((sum, stream) => sum + stream.received, 0),
      serverReplied: report?.sent === undefined ? null : report.sent.reduce((sum, sent) => sum + sent, 0),
      serverReceiveBufferDrops: report?.socketDrops ?? null,
      receiveBufferDrops: clientDropsAfter,
    };
    return benchResult({
      command: 'rr',
      startedAt,
      serverEnvironment: remote?.server.environment ?? null,
      options: {
        ...timedOptionsRecord({
          ...options,
          ...('target' in options.peer ? options.peer : { target: options.peer.sockperf, raw: true, server: {} }),
        }),
        ...requestRecord({}, options.size),
        connections: options.connections,
        depth: options.depth,
        protocol: 'udp' as const,
      },
      effective: { client: sockets[0]!.bound.effective, server: remote?.server.effective ?? null },
      intervals,
      summary: {
        mode: 'closed-loop' as const,
        measuredSeconds: round(measuredSeconds, 3),
        requests,
        requestsPerSecond: Math.round(requests / measuredSeconds),
        sentRequests: counts.sent,
        ...summary,
        serverCpuPercent: serverResult?.cpuPercent ?? null,
        udp,
      },
      selfCheck,
      interrupted: options.interrupt?.aborted === true,
      warnings: [
        ...(remote?.server.warnings ?? []).map((warning) => bufferCapped('server', warning)),
        ...sockets[0]!.bound.warnings.map((warning) => bufferCapped('client', warning)),
      ],
    });
  } finally {
    clearInterval(sweeper);
    monitor?.stop();
    for (const socket of sockets) socket.bound.socket.close();
    remote?.abort();
  }
}

/** Waits until no request is in flight, or `timeoutMs` more has passed (what is left is counted by nobody). */
async function untilAnswered(sockets: PingSocket[], timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (sockets.some((socket) => socket.waiting.size > 0) && performance.now() < deadline) await sleep(1);
}

/** A socktune server's udp-echo test: socktune's datagram header with the test's token, each socket a stream of its own. */
function socktunePeer(remote: RemoteTest, size: number): { address: string; port: number; format: PingFormat } {
  if (remote.ready.dataToken === undefined)
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', "the server's ready message for a UDP test has no dataToken");
  if (!('host' in remote.data)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'a UDP test needs an IP server, not a Unix-domain one');
  const token = Buffer.from(remote.ready.dataToken, 'hex');
  const template = datagramTemplate(size, token);
  return {
    address: remote.data.host,
    port: remote.data.port,
    format: {
      request: (socket, sequence) => {
        const datagram = Buffer.from(template);
        stampDatagram(datagram, { stream: socket, sequence, sentNs: 0n });
        return datagram;
      },
      answers: (socket, datagram) => {
        const header = datagram.length === size ? readDatagram(datagram, token) : undefined;
        return header?.stream === socket ? header.sequence : undefined;
      },
    },
  };
}

/** A stock sockperf server over UDP: each request a sockperf message asking for its reply, numbered by its sequence field. */
function sockperfPeer(options: UdpRrOptions): { address: string; port: number; format: PingFormat } {
  const { host, port } = (options.peer as { sockperf: { host: string; port: number } }).sockperf;
  const { size, connections } = options;
  return {
    address: host,
    port,
    format: {
      // Sequence numbers carry the socket in their low bits: one counter per socket, never confused with another's.
      request: (socket, sequence) =>
        encodeMessage(BigInt(sequence) * BigInt(connections) + BigInt(socket), FLAG_CLIENT | FLAG_PONG_REQUEST, size),
      answers: (socket, datagram) => {
        if (datagram.length !== size || datagram.length < HEADER_BYTES || messageLength(datagram) !== size) return undefined;
        if ((messageFlags(datagram) & FLAG_CLIENT) !== 0) return undefined;
        const numbered = datagram.readBigUInt64BE(0);
        if (numbered % BigInt(connections) !== BigInt(socket)) return undefined;
        const sequence = numbered / BigInt(connections);
        return sequence < BigInt(Number.MAX_SAFE_INTEGER) ? Number(sequence) : undefined;
      },
    },
  };
}
