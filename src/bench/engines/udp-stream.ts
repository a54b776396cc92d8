import { isIPv6 } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { countDropsFrom } from '../../core/udp-counters.ts';
import { DATAGRAM_HEADER_BYTES, datagramTemplate, readDatagram, socktuneDatagrams, stampDatagram } from '../../framing/datagram.ts';
import { receiveDatagrams } from '../../transport/udp/udp-batching.ts';
import { sendOnThreads } from '../../transport/udp/sender-threads.ts';
import { sendDatagrams, type DatagramSender } from '../../transport/udp/datagram-sender.ts';
import { bindUdp, connectUdp, udpBuffers, type BoundUdpSocket } from '../../transport/udp/udp-socket.ts';
import type { DatagramReport, TestServerSettings } from '../control/control-protocol.ts';
import { RemoteTest, type ServerTarget } from '../control/remote-test.ts';
import { datagramsPerCall, DatagramStats, sumDatagramCounts, udpSummary, type DatagramCounts } from '../results/datagram-stats.ts';
import { benchResult } from '../results/envelope.ts';
import type { StreamInterval, StreamResult, UdpSummary } from '../results/result.ts';
import { udpStreamRecord } from '../results/result-options.ts';
import { round } from '../results/stats.ts';
import { bufferCapped } from '../results/warnings.ts';
import { SelfMonitor } from './self-check.ts';
import { sleep, Ticker } from './ticker.ts';

export interface UdpStreamOptions {
  target: ServerTarget;
  durationSec: number;
  intervalSec: number;
  /** forward: this client sends; reverse (-R): the server sends to this client's sockets. */
  direction: 'forward' | 'reverse';
  /** Bytes per datagram, header included (iperf3 -l). */
  datagramBytes: number;
  /** Per stream (iperf3 -b); 0: as fast as the socket takes them. */
  bitsPerSecond: number;
  parallel: number;
  /** Most datagrams per system call at the sender (--batch; 1: one each, as iperf3 sends); else up to 64, cut by the kernel (UDP GSO). */
  batch?: number | undefined;
  client: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined };
  server: TestServerSettings;
  onInterval?: (interval: StreamInterval) => void;
  interrupt?: AbortSignal | undefined;
}

/** Time for the last datagrams to arrive before the client says it has finished. */
const SETTLE_MS = 200;
/** -R: how often a socket says hello until the server's first datagram arrives, and how many times. */
const HELLO_EVERY_MS = 100;
const HELLOS = 20;

interface Stream {
  bound: BoundUdpSocket;
  /** This end's own address and port as the kernel's tables show it (a connected socket's chosen source). */
  local: { address: string; port: number };
  sender: DatagramSender | undefined;
  received: DatagramStats;
  receivedBytes: number;
  /** Receive events so far: fewer than the datagrams where the kernel coalesced them (UDP GRO). */
  receives: () => number;
}

/** `stream -u`: datagrams at a paced rate between `parallel` client sockets and a socktune server, counted where they arrive. */
export async function runUdpStream(options: UdpStreamOptions): Promise<StreamResult> {
  const reverse = options.direction === 'reverse';
  const source = reverse
    ? {
        datagramBytes: options.datagramBytes,
        bitsPerSecond: options.bitsPerSecond,
        streams: options.parallel,
        ...(options.batch === undefined ? {} : { batch: options.batch }),
      }
    : undefined;
  const maxDurationMs = (options.durationSec + 5) * 1000;
  const peer = await RemoteTest.start(
    options.target,
    reverse ? 'udp-source' : 'udp-sink',
    options.server,
    maxDurationMs,
    false,
    [],
    source,
  );
  const streams: Stream[] = [];
  let ticker: Ticker | undefined;
  let monitor: SelfMonitor | undefined;
  let helloTimer: NodeJS.Timeout | undefined;
  try {
    if (peer.ready.dataToken === undefined)
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', "the server's ready message for a UDP test has no dataToken");
    const token = Buffer.from(peer.ready.dataToken, 'hex');
    // Datagrams go where the control connection went (its address, not the name again), on a socket of that family.
    if (!('host' in peer.data)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'a UDP test needs an IP server, not a Unix-domain one');
    const { host: serverAddress, port: dataPort } = peer.data;
    const host = isIPv6(serverAddress) ? '::' : '0.0.0.0';
    for (let index = 0; index < options.parallel; index++) {
      const bound = await bindUdp({ host, port: 0, ...udpBuffers(options.client) });
      bound.socket.on('error', () => {});
      await connectUdp(bound.socket, dataPort, serverAddress);
      const local = bound.socket.address();
      // A connected socket hears only the server's address and port; the token says it is this test's.
      // -R: the server's segmented sends may arrive whole, one receive for many datagrams.
      const receives = receiveDatagrams(bound.socket, token, reverse, (datagram, _from, arrival) => {
        const header = readDatagram(datagram, token);
        if (header === undefined || header.stream !== index || datagram.length !== options.datagramBytes) return;
        stream.received.record(header.sequence, header.sentNs, arrival, datagram.length);
        stream.receivedBytes += datagram.length;
      });
      const stream: Stream = { bound, local, sender: undefined, received: new DatagramStats(), receivedBytes: 0, receives };
      streams.push(stream);
    }
    const dropsSince = reverse ? countDropsFrom(streams.map((stream) => stream.local)) : undefined;
    // One datagram per system call goes out from sender threads: node:dgram's per-send cost would bound it.
    const threaded =
      !reverse && options.batch === 1
        ? await sendOnThreads(
            streams.map((stream) => stream.bound.socket),
            { datagramBytes: options.datagramBytes, token, bitsPerSecond: options.bitsPerSecond },
          )
        : undefined;
    threaded?.senders.forEach((sender, index) => (streams[index]!.sender = sender));
    monitor = new SelfMonitor().start();
    const startedAt = Date.now();
    const intervals: StreamInterval[] = [];
    const moved = (): number =>
      streams.reduce((sum, stream) => sum + (reverse ? stream.receivedBytes : (stream.sender?.sentBytes ?? 0)), 0);
    let last = { at: 0, bytes: 0 };
    ticker = new Ticker(options.intervalSec, (elapsedSec) => {
      const bytes = moved();
      const seconds = elapsedSec - last.at;
      const interval: StreamInterval = {
        startSec: round(last.at, 3),
        endSec: round(elapsedSec, 3),
        sentBytes: reverse ? 0 : bytes - last.bytes,
        receivedBytes: reverse ? bytes - last.bytes : 0,
        bitsPerSecond: seconds > 0 ? Math.round(((bytes - last.bytes) * 8) / seconds) : 0,
        omitted: false,
      };
      last = { at: elapsedSec, bytes };
      intervals.push(interval);
      options.onInterval?.(interval);
    });
    if (reverse) helloTimer = sayHello(streams, token);
    else if (threaded !== undefined) threaded.start();
    else
      streams.forEach((stream, index) => {
        stream.sender = sendDatagrams(stream.bound.socket, {
          format: socktuneDatagrams(options.datagramBytes, token, index),
          bitsPerSecond: options.bitsPerSecond,
          streams: options.parallel,
          batch: options.batch,
        });
      });
    await sleep(options.durationSec * 1000, options.interrupt);
    const measuredSeconds = ticker.elapsedSec;
    clearInterval(helloTimer);
    for (const stream of streams) stream.sender?.stop();
    ticker.stop();
    const selfCheck = monitor.stop();
    if (!reverse) await sleep(SETTLE_MS);
    const serverResult = await peer.finish();
    // -R: what the server sent before it heard the finish may still be on its way.
    if (reverse) await sleep(SETTLE_MS);
    const report = serverResult.datagrams;
    if (report === undefined) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the server sent no datagram counts for a UDP test');
    // What the receiving end counted: this client with -R, else the server.
    const counted = sumDatagramCounts(reverse ? streams.map((stream) => stream.received.counts()) : report.streams);
    const udp = reverse
      ? reverseSummary(streams, report, options.datagramBytes, counted, dropsSince!())
      : forwardSummary(streams, report, options.datagramBytes, counted);
    const sentBytes = udp.sent * options.datagramBytes;
    const receivedBytes = counted.bytes;
    return benchResult({
      command: 'stream',
      startedAt,
      serverEnvironment: peer.server.environment,
      options: udpStreamRecord(options),
      effective: { client: streams[0]!.bound.effective, server: peer.server.effective },
      intervals,
      summary: {
        direction: options.direction,
        measuredSeconds: round(measuredSeconds, 3),
        bitsPerSecond: Math.round((receivedBytes * 8) / measuredSeconds),
        drainSeconds: round(SETTLE_MS / 1000, 3),
        sender: { bytes: sentBytes, side: reverse ? 'server' : 'client' },
        receiver: { bytes: receivedBytes, side: reverse ? 'client' : 'server' },
        retransmits: null,
        verify: null,
        serverCpuPercent: serverResult.cpuPercent,
        udp,
      },
      selfCheck,
      interrupted: options.interrupt?.aborted === true,
      warnings: [
        ...peer.server.warnings.map((warning) => bufferCapped('server', warning)),
        ...streams[0]!.bound.warnings.map((warning) => bufferCapped('client', warning)),
      ],
    });
  } finally {
    clearInterval(helloTimer);
    ticker?.stop();
    monitor?.stop();
    for (const stream of streams) {
      stream.sender?.stop();
      stream.bound.socket.close();
    }
    peer.abort();
  }
}

/** -R: each socket sends the server a header-only datagram with the token until the server's first datagram reaches it. */
function sayHello(streams: Stream[], token: Buffer): NodeJS.Timeout {
  const hellos = streams.map((_, index) => {
    const datagram = datagramTemplate(DATAGRAM_HEADER_BYTES, token);
    stampDatagram(datagram, { stream: index, sequence: 0, sentNs: 0n });
    return datagram;
  });
  let said = 0;
  const hello = (): void => {
    streams.forEach((stream, index) => {
      if (stream.received.counts().received === 0) stream.bound.socket.send(hellos[index]!, () => {});
    });
    if (++said >= HELLOS) clearInterval(timer);
  };
  const timer = setInterval(hello, HELLO_EVERY_MS);
  hello();
  return timer;
}

function forwardSummary(streams: Stream[], report: DatagramReport, datagramBytes: number, counted: DatagramCounts): UdpSummary {
  const sent = streams.reduce((sum, stream) => sum + (stream.sender?.sent ?? 0), 0);
  if (report.streams.length > streams.length || counted.received > sent || counted.bytes > sent * datagramBytes)
    throw new SocktuneError(
      'SOCKTUNE_ERR_PROTOCOL',
      `the server counted ${counted.received} datagrams in ${report.streams.length} streams; this client sent ${sent} in ${streams.length}`,
    );
  return summarize(
    datagramBytes,
    sent,
    streams.reduce((sum, stream) => sum + (stream.sender?.failed ?? 0), 0),
    counted,
    {
      receiveBufferDrops: report.socketDrops,
      hostReceiveBufferErrors: report.hostReceiveBufferErrors,
      foreign: report.foreign,
      datagramsPerSend: datagramsPerCall(
        sent,
        streams.reduce((sum, stream) => sum + (stream.sender?.sends ?? 0), 0),
      ),
      datagramsPerReceive: report.receives === undefined ? null : datagramsPerCall(counted.received, report.receives),
    },
  );
}

function reverseSummary(
  streams: Stream[],
  report: DatagramReport,
  datagramBytes: number,
  counted: DatagramCounts,
  drops: { socket: number | null; host: number | null },
): UdpSummary {
  const sent = (report.sent ?? []).reduce((sum, count) => sum + count, 0);
  if ((report.sent ?? []).length > streams.length || counted.received > sent)
    throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', `the server says it sent ${sent} datagrams; this client received ${counted.received}`);
  return summarize(datagramBytes, sent, 0, counted, {
    receiveBufferDrops: drops.socket,
    hostReceiveBufferErrors: drops.host,
    foreign: 0,
    datagramsPerSend: report.sends === undefined ? null : datagramsPerCall(sent, report.sends),
    datagramsPerReceive: datagramsPerCall(
      counted.received,
      streams.reduce((sum, stream) => sum + stream.receives(), 0),
    ),
  });
}

function summarize(
  datagramBytes: number,
  sent: number,
  sendErrors: number,
  counted: DatagramCounts,
  cause: Pick<UdpSummary, 'receiveBufferDrops' | 'hostReceiveBufferErrors' | 'foreign' | 'datagramsPerSend' | 'datagramsPerReceive'>,
): UdpSummary {
  return udpSummary(datagramBytes, sent, counted.received, {
    sendErrors,
    outOfOrder: counted.outOfOrder,
    duplicates: counted.duplicates,
    jitterUs: counted.jitterUs,
    ...cause,
  });
}
