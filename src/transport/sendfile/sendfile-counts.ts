/** The counts of one connection a sendfile thread keeps, in this order in a Float64Array slot in shared memory. */
export const SENDFILE_COUNTS = ['sentBytes', 'calls', 'errno'] as const;
