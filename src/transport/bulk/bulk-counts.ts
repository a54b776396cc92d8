/**
 * The counts of one connection a bulk thread keeps, in this order in a Float64Array slot in shared
 * memory: bytes sent or received, the errno that ended it (0 while it runs), and when its last data
 * came (ms since the epoch, from performance.timeOrigin: every thread's clock agrees).
 */
export const BULK_COUNTS = ['bytes', 'errno', 'lastDataAt'] as const;
