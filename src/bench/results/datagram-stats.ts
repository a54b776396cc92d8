import type { UdpSummary } from './result.ts';
import { round } from './stats.ts';

/** Sequence numbers remembered behind the highest one: a datagram later than this is counted out of order, never a duplicate. */
const WINDOW = 8192;
/** A transit-time change over an hour is not jitter but a sender's clock that jumped: it is counted as an hour. */
const MAX_TRANSIT_CHANGE_NS = 3.6e12;

/** What a receiver counted of one stream of datagrams (or of several, summed). */
export interface DatagramCounts {
  /** Distinct datagrams received. */
  received: number;
  /** Highest sequence number seen + 1: what the sender had sent by the last arrival. */
  expected: number;
  /** Arrived after a higher sequence number. */
  outOfOrder: number;
  duplicates: number;
  /** RFC 3550 interarrival jitter in µs, as iperf3 reports it; 0 before two datagrams. */
  jitterUs: number;
  bytes: number;
}

/**
 * Loss, reordering, duplication and jitter of one stream, from each datagram's sequence number and
 * send time (the sender's clock) against its arrival time (the receiver's): only differences of
 * the two clocks count, so they need not agree.
 */
export class DatagramStats {
  #received = 0;
  #next = 0;
  #outOfOrder = 0;
  #duplicates = 0;
  #bytes = 0;
  #jitterNs = 0;
  #lastTransitNs: number | undefined;
  /** Seen flags of sequence numbers [next − WINDOW, next), as a ring. */
  readonly #seen = new Uint8Array(WINDOW);

  record(sequence: number, sentNs: bigint, arrivalNs: bigint, bytes: number): void {
    if (sequence >= this.#next) {
      // Skipped sequence numbers leave the window marked unseen, and those older than it are forgotten.
      const from = Math.max(this.#next, sequence - WINDOW + 1);
      if (from < sequence) {
        const [start, end] = [from % WINDOW, sequence % WINDOW];
        if (start < end) this.#seen.fill(0, start, end);
        else {
          this.#seen.fill(0, start);
          this.#seen.fill(0, 0, end);
        }
      }
      this.#next = sequence + 1;
    } else if (sequence < this.#next - WINDOW) {
      this.#outOfOrder++;
      this.#accept(sentNs, arrivalNs, bytes);
      return;
    } else if (this.#seen[sequence % WINDOW] === 1) {
      this.#duplicates++;
      return;
    } else {
      this.#outOfOrder++;
    }
    this.#seen[sequence % WINDOW] = 1;
    this.#accept(sentNs, arrivalNs, bytes);
  }

  #accept(sentNs: bigint, arrivalNs: bigint, bytes: number): void {
    this.#received++;
    this.#bytes += bytes;
    const transit = Number(arrivalNs - sentNs);
    if (this.#lastTransitNs !== undefined)
      this.#jitterNs += (Math.min(MAX_TRANSIT_CHANGE_NS, Math.abs(transit - this.#lastTransitNs)) - this.#jitterNs) / 16;
    this.#lastTransitNs = transit;
  }

  counts(): DatagramCounts {
    return {
      received: this.#received,
      expected: this.#next,
      outOfOrder: this.#outOfOrder,
      duplicates: this.#duplicates,
      jitterUs: Math.round(this.#jitterNs) / 1000,
      bytes: this.#bytes,
    };
  }
}

/** Several streams as one: counts summed, jitter the mean of the streams' (as iperf3's sum line). */
export function sumDatagramCounts(streams: readonly DatagramCounts[]): DatagramCounts {
  const sum = (field: Exclude<keyof DatagramCounts, 'jitterUs'>): number => streams.reduce((total, stream) => total + stream[field], 0);
  const jittered = streams.filter((stream) => stream.received > 1);
  return {
    received: sum('received'),
    expected: sum('expected'),
    outOfOrder: sum('outOfOrder'),
    duplicates: sum('duplicates'),
    jitterUs: jittered.length === 0 ? 0 : jittered.reduce((total, stream) => total + stream.jitterUs, 0) / jittered.length,
    bytes: sum('bytes'),
  };
}

/** A UDP test's summary from what was sent and what arrived: the loss is the difference. */
export function udpSummary(
  datagramBytes: number,
  sent: number,
  received: number,
  rest: Omit<UdpSummary, 'datagramBytes' | 'sent' | 'received' | 'lost' | 'lostPercent'>,
): UdpSummary {
  const lost = Math.max(0, sent - received);
  return {
    datagramBytes,
    sent,
    received,
    lost,
    lostPercent: sent === 0 ? 0 : round((lost / sent) * 100, 3),
    ...rest,
    jitterUs: round(rest.jitterUs, 3),
  };
}

/** Datagrams per system call (send or receive), where the calls were counted: 1 is one each, as iperf3. */
export function datagramsPerCall(datagrams: number, calls: number): number | null {
  return calls === 0 ? null : round(datagrams / calls, 2);
}
