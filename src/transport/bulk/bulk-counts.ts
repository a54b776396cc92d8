/**
 * The counts of one connection a bulk thread keeps, in this order in a Float64Array slot in shared
 * memory: bytes sent or received, system calls, the errno that ended it (0 while it runs), when
 * its last data came (ms since the epoch, from performance.timeOrigin: every thread's clock agrees),
 * and 1 once the peer closed its side (a receiver read the end).
 */
export const BULK_COUNTS = ['bytes', 'calls', 'errno', 'lastDataAt', 'ended'] as const;
