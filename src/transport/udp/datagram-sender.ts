import type { Socket as UdpSocket } from 'node:dgram';
import { datagramTemplate, stampDatagram } from '../../framing/datagram.ts';
import { SendBudget } from '../io/send-budget.ts';

/** Datagrams handed to the kernel and not yet confirmed, per socket; each has a buffer of its own until then. */
const IN_FLIGHT = 64;

/** What one paced sender has done so far. */
export interface DatagramSender {
  sent: number;
  sentBytes: number;
  failed: number;
  stop(): void;
}

export interface DatagramSenderOptions {
  /** Which stream of the test this socket is: the datagram header's stream field. */
  stream: number;
  token: Buffer;
  datagramBytes: number;
  /** 0: as fast as the socket takes them. */
  bitsPerSecond: number;
  /** Where to send; absent for a connected socket. */
  to?: { port: number; address: string };
  /** A budget the sender shares with others (a server's --max-rate), taken before its own pace. */
  shared?: SendBudget | undefined;
}

/**
 * Sends datagrams of a test from one socket until stopped: paced by a token bucket of a few
 * datagrams' burst at `bitsPerSecond`, never more than IN_FLIGHT handed to the kernel unconfirmed,
 * each in a buffer of its own (a queued send still reads it).
 */
export function sendDatagrams(socket: UdpSocket, options: DatagramSenderOptions): DatagramSender {
  const size = options.datagramBytes;
  const ring = Array.from({ length: IN_FLIGHT }, () => datagramTemplate(size, options.token));
  const bytesPerSecond = options.bitsPerSecond / 8;
  const budgets = [
    ...(options.shared === undefined ? [] : [options.shared]),
    ...(bytesPerSecond > 0
      ? [
          new SendBudget(bytesPerSecond, {
            buffer: new SharedArrayBuffer(8),
            burstBytes: Math.max(4 * size, Math.ceil(bytesPerSecond / 500)),
          }),
        ]
      : []),
  ];
  const state: DatagramSender = { sent: 0, sentBytes: 0, failed: 0, stop: () => {} };
  let sequence = 0;
  let inFlight = 0;
  let sending = true;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  // A send may be confirmed at once (nextTick): sending again from the confirmation would never let a timer run.
  const confirmed = (error: Error | null): void => {
    inFlight--;
    if (error) state.failed++;
    else {
      state.sent++;
      state.sentBytes += size;
    }
    if (timer === undefined) immediate ??= setImmediate(pump);
  };
  const pump = (): void => {
    timer = undefined;
    immediate = undefined;
    while (sending && inFlight < IN_FLIGHT) {
      const wait = Math.max(0, ...budgets.map((budget) => budget.behind()));
      if (wait > 0 || !budgets.every((budget) => budget.tryTake(size) === 0)) {
        timer = setTimeout(pump, Math.max(1, wait));
        return;
      }
      const datagram = ring[sequence % IN_FLIGHT]!;
      stampDatagram(datagram, { stream: options.stream, sequence, sentNs: process.hrtime.bigint() });
      sequence++;
      inFlight++;
      if (options.to === undefined) socket.send(datagram, confirmed);
      else socket.send(datagram, options.to.port, options.to.address, confirmed);
    }
  };
  state.stop = () => {
    sending = false;
    clearTimeout(timer);
    clearImmediate(immediate);
  };
  pump();
  return state;
}
