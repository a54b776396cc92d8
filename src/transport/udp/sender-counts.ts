/** The counts of one stream a sender thread keeps, in this order in a Float64Array slot in shared memory. */
export const SENDER_COUNTS = ['sent', 'sentBytes', 'failed', 'sends'] as const;
