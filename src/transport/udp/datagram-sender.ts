import type { Socket as UdpSocket } from 'node:dgram';
import type { DatagramFormat } from '../../framing/datagram.ts';
import { SendBudget } from '../io/send-budget.ts';
import { segmentSends, unsegmentSends } from './udp-batching.ts';

/** Sends handed to the kernel and not yet confirmed, per socket at most; each has a buffer of its own until then. */
const MAX_IN_FLIGHT = 64;
/** The buffers of a test's in-flight sends together, every stream's: a test of 128 streams of 64 KiB datagrams gets one each. */
const IN_FLIGHT_BYTES_PER_TEST = 4 * 1024 * 1024;

/** What one paced sender has done so far. */
export interface DatagramSender {
  sent: number;
  sentBytes: number;
  failed: number;
  /** System calls that sent them: fewer than the datagrams where the kernel cut segmented sends (GSO). */
  sends: number;
  stop(): void;
}

export interface DatagramSenderOptions {
  /** The protocol's datagrams of this stream (socktune's, iperf3's), and their size. */
  format: DatagramFormat;
  /** 0: as fast as the socket takes them. */
  bitsPerSecond: number;
  /** Where to send; absent for a connected socket. */
  to?: { port: number; address: string };
  /** A budget the sender shares with others (a server's --max-rate), taken before its own pace. */
  shared?: SendBudget | undefined;
  /** How many streams of the test send at once, for their buffers to fit IN_FLIGHT_BYTES_PER_TEST together. */
  streams: number;
  /**
   * Most datagrams per system call, which the kernel cuts apart (UDP GSO; fewer for a paced stream,
   * at most a millisecond of it); 1: one each, as iperf3 sends. @default 64 (the kernel's most)
   */
  batch?: number | undefined;
}

/**
 * Sends datagrams of a test from one socket until stopped: paced by a token bucket at
 * `bitsPerSecond`, several per system call where the kernel segments them (each with its own
 * header), never more than a few sends handed to the kernel unconfirmed (MAX_IN_FLIGHT, fewer for
 * large ones and many streams), each in a buffer of its own (a queued send still reads it).
 */
export function sendDatagrams(socket: UdpSocket, options: DatagramSenderOptions): DatagramSender {
  const { format } = options;
  const size = format.bytes;
  let batch = options.batch === 1 ? 1 : segmentSends(socket, size, options.bitsPerSecond, options.batch);
  const inFlightMax = (): number =>
    Math.max(1, Math.min(MAX_IN_FLIGHT, Math.floor(IN_FLIGHT_BYTES_PER_TEST / (size * batch * options.streams))));
  // Made as they are first needed: a stream that sends slowly never holds the whole ring.
  let ring: Buffer[] = [];
  const bytesPerSecond = options.bitsPerSecond / 8;
  const budgets = [
    ...(options.shared === undefined ? [] : [options.shared]),
    ...(bytesPerSecond > 0
      ? [
          new SendBudget(bytesPerSecond, {
            buffer: new SharedArrayBuffer(8),
            // One send, or 2 ms of traffic where timers could not keep up with one at a time.
            burstBytes: Math.max(size * batch, Math.ceil(bytesPerSecond / 500)),
          }),
        ]
      : []),
  ];
  const state: DatagramSender = { sent: 0, sentBytes: 0, failed: 0, sends: 0, stop: () => {} };
  let sequence = 0;
  let inFlight = 0;
  let slot = 0;
  let sending = true;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const template = (): Buffer => Buffer.concat(Array.from({ length: batch }, () => format.template()));
  // A send may be confirmed at once (nextTick): sending again from the confirmation would never let a timer run.
  const confirmed = (count: number) => (error: Error | null) => {
    inFlight--;
    if (error) {
      state.failed += count;
      // A path whose MTU is below the datagram refuses segmented sends: one datagram per send from here on.
      if (count > 1 && batch > 1) {
        batch = 1;
        ring = [];
        unsegmentSends(socket);
      }
    } else {
      state.sent += count;
      state.sentBytes += count * size;
      state.sends++;
    }
    if (timer === undefined) immediate ??= setImmediate(pump);
  };
  const pump = (): void => {
    timer = undefined;
    immediate = undefined;
    while (sending && inFlight < inFlightMax()) {
      const bytes = size * batch;
      const wait = Math.max(0, ...budgets.map((budget) => budget.behind()));
      if (wait > 0 || !budgets.every((budget) => budget.tryTake(bytes) === 0)) {
        // A very low rate waits long: look again at least every second (and within a timer's range).
        timer = setTimeout(pump, Math.min(1000, Math.max(1, wait)));
        return;
      }
      slot = (slot + 1) % inFlightMax();
      const buffer = (ring[slot] ??= template());
      for (let i = 0; i < batch; i++) format.stamp(batch === 1 ? buffer : buffer.subarray(i * size, (i + 1) * size), sequence + i);
      sequence += batch;
      inFlight++;
      if (options.to === undefined) socket.send(buffer, confirmed(batch));
      else socket.send(buffer, options.to.port, options.to.address, confirmed(batch));
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
