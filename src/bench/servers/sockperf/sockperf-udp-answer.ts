import { UDP_IPV4_HEADERS_BYTES } from '../../../framing/datagram.ts';
import { clearClientFlag, udpMessageKind } from '../../../protocols/sockperf/codec.ts';
import type { SendBudget } from '../../../transport/io/send-budget.ts';

/** The counters of the sockperf server's UDP side, in this order in each slot of four of a Float64Array (one slot per thread). */
export const UDP_COUNTS = ['messagesIn', 'replies', 'overRate', 'malformed'] as const;
export const REPLIES = UDP_COUNTS.indexOf('replies');
const MESSAGES_IN = UDP_COUNTS.indexOf('messagesIn');
const OVER_RATE = UDP_COUNTS.indexOf('overRate');
const MALFORMED = UDP_COUNTS.indexOf('malformed');

/**
 * What the sockperf server does with one datagram, counted in `counts` (one slot): true when it is
 * to be answered, and then it has become its own reply where it lies (CLIENT cleared) and the reply
 * is charged to `budget` as on the wire (IP and UDP headers too: tiny requests cannot buy many times
 * the cap). The caller counts the reply once it is sent.
 */
export function answerable(datagram: Buffer, budget: SendBudget, counts: Float64Array): boolean {
  const kind = udpMessageKind(datagram);
  if (kind === 'malformed') {
    counts[MALFORMED]!++;
    return false;
  }
  counts[MESSAGES_IN]!++;
  if (kind === 'silent') return false;
  if (budget.tryTake(datagram.length + UDP_IPV4_HEADERS_BYTES) !== 0) {
    counts[OVER_RATE]!++;
    return false;
  }
  clearClientFlag(datagram);
  return true;
}
