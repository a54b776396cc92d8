import { isIPv6 } from 'node:net';
import { SocktuneError } from '../../core/errors.ts';
import { datagramTemplate, stampDatagram } from '../../framing/datagram.ts';
import { SendBudget } from '../../transport/io/send-budget.ts';
import { bindUdp, type BoundUdpSocket } from '../../transport/udp/udp-socket.ts';
import type { DatagramReport, TestServerSettings } from '../control/control-protocol.ts';
import { RemoteTest, type ServerTarget } from '../control/remote-test.ts';
import { sumDatagramCounts } from '../results/datagram-stats.ts';
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
  /** Bytes per datagram, header included (iperf3 -l). */
  datagramBytes: number;
  /** Per stream (iperf3 -b); 0: as fast as the socket takes them. */
  bitsPerSecond: number;
  parallel: number;
  client: { sendBufferSize?: number | undefined; receiveBufferSize?: number | undefined };
  server: TestServerSettings;
  onInterval?: (interval: StreamInterval) => void;
  interrupt?: AbortSignal | undefined;
}

/** Datagrams handed to the kernel and not yet confirmed, per socket; each has a buffer of its own until then. */
const IN_FLIGHT = 64;
/** Time for the last datagrams to reach the server before the client says it has finished. */
const SETTLE_MS = 200;

interface Sender {
  bound: BoundUdpSocket;
  sent: number;
  sentBytes: number;
  failed: number;
  stop: () => void;
}

/** `stream -u`: datagrams at a paced rate from each of `parallel` sockets to a socktune server, which counts what arrived. */
export async function runUdpStream(options: UdpStreamOptions): Promise<StreamResult> {
  const peer = await RemoteTest.start(options.target, 'udp-sink', options.server, (options.durationSec + 5) * 1000);
  const senders: Sender[] = [];
  let ticker: Ticker | undefined;
  let monitor: SelfMonitor | undefined;
  try {
    if (peer.ready.dataToken === undefined)
      throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', "the server's ready message for a UDP test has no dataToken");
    const token = Buffer.from(peer.ready.dataToken, 'hex');
    // Datagrams go where the control connection went (its address, not the name again), on a socket of that family.
    if (!('host' in peer.data)) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'a UDP test needs an IP server, not a Unix-domain one');
    const { host: serverAddress, port: dataPort } = peer.data;
    const host = isIPv6(serverAddress) ? '::' : '0.0.0.0';
    for (let stream = 0; stream < options.parallel; stream++) {
      const bound = await bindUdp({ host, port: 0, ...options.client });
      bound.socket.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        bound.socket.once('error', reject);
        bound.socket.connect(dataPort, serverAddress, () => {
          bound.socket.off('error', reject);
          resolve();
        });
      });
      senders.push({ bound, sent: 0, sentBytes: 0, failed: 0, stop: () => {} });
    }
    monitor = new SelfMonitor().start();
    const startedAt = Date.now();
    const intervals: StreamInterval[] = [];
    let last = { at: 0, bytes: 0 };
    ticker = new Ticker(options.intervalSec, (elapsedSec) => {
      const bytes = senders.reduce((sum, sender) => sum + sender.sentBytes, 0);
      const seconds = elapsedSec - last.at;
      const interval: StreamInterval = {
        startSec: round(last.at, 3),
        endSec: round(elapsedSec, 3),
        sentBytes: bytes - last.bytes,
        receivedBytes: 0,
        bitsPerSecond: seconds > 0 ? Math.round(((bytes - last.bytes) * 8) / seconds) : 0,
        omitted: false,
      };
      last = { at: elapsedSec, bytes };
      intervals.push(interval);
      options.onInterval?.(interval);
    });
    senders.forEach((sender, stream) => startSending(sender, stream, token, options));
    await sleep(options.durationSec * 1000, options.interrupt);
    const measuredSeconds = ticker.elapsedSec;
    for (const sender of senders) sender.stop();
    ticker.stop();
    const selfCheck = monitor.stop();
    await sleep(SETTLE_MS);
    const serverResult = await peer.finish();
    const report = serverResult?.datagrams;
    if (report === undefined) throw new SocktuneError('SOCKTUNE_ERR_PROTOCOL', 'the server sent no datagram counts for a UDP test');
    const interrupted = options.interrupt?.aborted === true;
    return benchResult({
      command: 'stream',
      startedAt,
      serverEnvironment: peer.server.environment,
      options: udpStreamRecord(options),
      effective: { client: senders[0]!.bound.effective, server: peer.server.effective },
      intervals,
      summary: {
        direction: 'forward',
        measuredSeconds: round(measuredSeconds, 3),
        bitsPerSecond: Math.round((sumDatagramCounts(report.streams).bytes * 8) / measuredSeconds),
        drainSeconds: round(SETTLE_MS / 1000, 3),
        sender: { bytes: senders.reduce((sum, sender) => sum + sender.sentBytes, 0), side: 'client' },
        receiver: { bytes: serverResult.metrics.bytesIn, side: 'server' },
        retransmits: null,
        verify: null,
        serverCpuPercent: serverResult?.cpuPercent ?? null,
        udp: udpSummary(senders, report, options.datagramBytes),
      },
      selfCheck,
      interrupted,
      warnings: [
        ...peer.server.warnings.map((warning) => bufferCapped('server', warning)),
        ...senders[0]!.bound.warnings.map((warning) => bufferCapped('client', warning)),
      ],
    });
  } finally {
    ticker?.stop();
    monitor?.stop();
    for (const sender of senders) {
      sender.stop();
      sender.bound.socket.close();
    }
    peer.abort();
  }
}

function udpSummary(senders: Sender[], report: DatagramReport, datagramBytes: number): UdpSummary {
  const sent = senders.reduce((sum, sender) => sum + sender.sent, 0);
  const counted = sumDatagramCounts(report.streams);
  if (report.streams.length > senders.length || counted.received > sent || counted.bytes > sent * datagramBytes)
    throw new SocktuneError(
      'SOCKTUNE_ERR_PROTOCOL',
      `the server counted ${counted.received} datagrams in ${report.streams.length} streams; this client sent ${sent} in ${senders.length}`,
    );
  const lost = Math.max(0, sent - counted.received);
  return {
    datagramBytes,
    sent,
    sendErrors: senders.reduce((sum, sender) => sum + sender.failed, 0),
    received: counted.received,
    lost,
    lostPercent: sent === 0 ? 0 : round((lost / sent) * 100, 3),
    outOfOrder: counted.outOfOrder,
    duplicates: counted.duplicates,
    jitterUs: round(counted.jitterUs, 3),
    receiveBufferDrops: report.socketDrops,
    hostReceiveBufferErrors: report.hostReceiveBufferErrors,
    foreign: report.foreign,
  };
}

/**
 * Sends datagrams from one socket until stopped: paced by a token bucket of a few datagrams' burst
 * at `bitsPerSecond`, and never more than IN_FLIGHT handed to the kernel unconfirmed, each in a
 * buffer of its own (a queued send still reads it).
 */
function startSending(sender: Sender, stream: number, token: Buffer, options: UdpStreamOptions): void {
  const size = options.datagramBytes;
  const ring = Array.from({ length: IN_FLIGHT }, () => datagramTemplate(size, token));
  const bytesPerSecond = options.bitsPerSecond / 8;
  const budget =
    bytesPerSecond > 0
      ? new SendBudget(bytesPerSecond, {
          buffer: new SharedArrayBuffer(8),
          burstBytes: Math.max(4 * size, Math.ceil(bytesPerSecond / 500)),
        })
      : undefined;
  let sequence = 0;
  let inFlight = 0;
  let sending = true;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const socket = sender.bound.socket;
  // A send may be confirmed at once (nextTick): sending again from the confirmation would never let a timer run.
  const confirmed = (error: Error | null): void => {
    inFlight--;
    if (error) sender.failed++;
    else {
      sender.sent++;
      sender.sentBytes += size;
    }
    if (timer === undefined) immediate ??= setImmediate(pump);
  };
  const pump = (): void => {
    timer = undefined;
    immediate = undefined;
    while (sending && inFlight < IN_FLIGHT) {
      const wait = budget?.tryTake(size) ?? 0;
      if (wait > 0) {
        timer = setTimeout(pump, wait);
        return;
      }
      const datagram = ring[sequence % IN_FLIGHT]!;
      stampDatagram(datagram, { stream, sequence, sentNs: process.hrtime.bigint() });
      sequence++;
      inFlight++;
      socket.send(datagram, confirmed);
    }
  };
  sender.stop = () => {
    sending = false;
    clearTimeout(timer);
    clearImmediate(immediate);
  };
  pump();
}
