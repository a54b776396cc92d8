import { readDatagram, type DatagramHeader } from '../../../framing/datagram.ts';
import { DatagramStats } from '../../results/datagram-stats.ts';

/**
 * Streams one test may count (stream -u -P takes at most 128): a client cannot grow the server's
 * memory with stream numbers (each stream's reorder window is 8 KiB).
 */
const MAX_STREAMS = 128;

/** The running counts of a UDP test's receiving end, in this order in a Float64Array slot (one per thread, in shared memory). */
export const LIVE_COUNTS = ['bytesIn', 'datagrams', 'foreign', 'receives', 'echoedBytes'] as const;
const [BYTES_IN, DATAGRAMS, FOREIGN, RECEIVES, ECHOED_BYTES] = LIVE_COUNTS.map((_, index) => index) as [
  number,
  number,
  number,
  number,
  number,
];

/**
 * What one receiving end of a UDP test (the event loop's socket, or one thread's) counted: per
 * stream, loss, order, duplicates and jitter; the replies it echoed; and the running counts in `live`.
 */
export class UdpTestCounts {
  readonly streams = new Map<number, DatagramStats>();
  readonly echoed: number[] = [];
  readonly #token: Buffer;
  readonly live: Float64Array<ArrayBufferLike>;

  constructor(token: Buffer, live: Float64Array<ArrayBufferLike> = new Float64Array(LIVE_COUNTS.length)) {
    this.#token = token;
    this.live = live;
  }

  /** The header of a datagram of this test from the client's address, or undefined (counted foreign) for anything else. */
  accept(datagram: Buffer, fromClient: boolean): DatagramHeader | undefined {
    const header = fromClient ? readDatagram(datagram, this.#token) : undefined;
    if (header === undefined || (header.stream >= MAX_STREAMS && !this.streams.has(header.stream))) {
      this.live[FOREIGN]!++;
      return undefined;
    }
    return header;
  }

  record(header: DatagramHeader, arrivalNs: bigint, bytes: number): void {
    let stats = this.streams.get(header.stream);
    if (stats === undefined) this.streams.set(header.stream, (stats = new DatagramStats()));
    stats.record(header.sequence, header.sentNs, arrivalNs, bytes);
    this.live[BYTES_IN]! += bytes;
    this.live[DATAGRAMS]!++;
  }

  received(): void {
    this.live[RECEIVES]!++;
  }

  echo(stream: number, bytes: number): void {
    this.echoed[stream] = (this.echoed[stream] ?? 0) + 1;
    this.live[ECHOED_BYTES]! += bytes;
  }
}

/** Slots of LIVE_COUNTS (one per thread) summed, by name. */
export function sumLiveCounts(slots: Float64Array<ArrayBufferLike>): Record<(typeof LIVE_COUNTS)[number], number> {
  const sum = (field: number): number => slots.filter((_, index) => index % LIVE_COUNTS.length === field).reduce((a, b) => a + b, 0);
  return Object.fromEntries(LIVE_COUNTS.map((name, field) => [name, sum(field)])) as Record<(typeof LIVE_COUNTS)[number], number>;
}
