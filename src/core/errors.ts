import { constants } from 'node:os';

/**
 * Every failure socktune reports carries one of these stable codes. docs/errors.md lists the
 * same codes with what the user should do; a test keeps the two in agreement.
 */
export const ERROR_CODES = [
  'SOCKTUNE_ERR_INVALID_OPTION',
  'SOCKTUNE_ERR_NODE_VERSION',
  'SOCKTUNE_ERR_UNSUPPORTED_PLATFORM',
  'SOCKTUNE_ERR_SOCKOPT',
  'SOCKTUNE_ERR_LISTEN',
  'SOCKTUNE_ERR_HANDLER',
  'SOCKTUNE_ERR_WORKER_CRASHED',
  'SOCKTUNE_ERR_MAX_THREADS',
  'SOCKTUNE_ERR_MAX_CONNECTIONS',
  'SOCKTUNE_ERR_CLOSE_TIMEOUT',
  'SOCKTUNE_ERR_REFUSED',
  'SOCKTUNE_ERR_RESOLVE',
  'SOCKTUNE_ERR_TIMEOUT',
  'SOCKTUNE_ERR_PEER_GONE',
  'SOCKTUNE_ERR_PROTOCOL',
  'SOCKTUNE_ERR_FRAME_TOO_LARGE',
  'SOCKTUNE_ERR_SLOW_CONSUMER',
  'SOCKTUNE_ERR_BUFFER_BUDGET',
  'SOCKTUNE_ERR_USAGE',
  'SOCKTUNE_ERR_MERGE',
  'SOCKTUNE_ERR_AUTH',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** The system's error names (ECONNRESET, EMFILE, ...), as Node knows them. */
export type ErrnoName = keyof typeof constants.errno;

/**
 * What a server counts a refused or failed connection by: socktune's own code, the system's errno
 * name, or UNKNOWN for a failure that has neither (a Node-internal error).
 */
export type CountedError = ErrorCode | ErrnoName | 'UNKNOWN';

/** Counts of refused or failed connections by what refused or ended them. */
export type ErrorCounts = Partial<Record<CountedError, number>>;

export function countError(counts: ErrorCounts, code: CountedError, by = 1): void {
  counts[code] = (counts[code] ?? 0) + by;
}

/** The counts, each under its code (Object.entries loses the key type). */
export function errorEntries(counts: ErrorCounts): [CountedError, number][] {
  return Object.entries(counts) as [CountedError, number][];
}

const ERRNO_NAMES: ReadonlySet<string> = new Set(Object.keys(constants.errno));

/** What to count `error` under: its socktune code, its errno name, else `fallback`. */
export function countedErrorOf(error: unknown, fallback: CountedError = 'UNKNOWN'): CountedError {
  if (error instanceof SocktuneError)
    return error.errno !== undefined && ERRNO_NAMES.has(error.errno) ? (error.errno as ErrnoName) : error.code;
  const { code } = (error ?? {}) as { code?: unknown };
  return typeof code === 'string' && ERRNO_NAMES.has(code) ? (code as ErrnoName) : fallback;
}

export interface SocktuneErrorDetails {
  cause?: unknown;
  /** The OS error name (ECONNREFUSED, EADDRINUSE, ...) when a system call failed. */
  errno?: string;
}

export class SocktuneError extends Error {
  readonly code: ErrorCode;
  readonly errno: string | undefined;

  constructor(code: ErrorCode, message: string, details: SocktuneErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'SocktuneError';
    this.code = code;
    this.errno = details.errno;
  }
}

export function isSocktuneError(value: unknown): value is SocktuneError {
  return value instanceof SocktuneError;
}

const errnoToCode: Readonly<Record<string, ErrorCode>> = Object.freeze({
  ECONNREFUSED: 'SOCKTUNE_ERR_REFUSED',
  ECONNRESET: 'SOCKTUNE_ERR_PEER_GONE',
  EPIPE: 'SOCKTUNE_ERR_PEER_GONE',
  ETIMEDOUT: 'SOCKTUNE_ERR_TIMEOUT',
  EHOSTUNREACH: 'SOCKTUNE_ERR_REFUSED',
  ENETUNREACH: 'SOCKTUNE_ERR_REFUSED',
});

/** The OS error name of a failure (ECONNREFUSED, ...): socktune's `errno`, else Node's `code`. */
export function errnoOf(error: unknown): string {
  const { errno, code } = (error ?? {}) as { errno?: unknown; code?: unknown };
  return typeof errno === 'string' ? errno : typeof code === 'string' ? code : 'UNKNOWN';
}

/** Wraps a Node system error (err.code = 'ECONNREFUSED', ...) into a SocktuneError. */
export function fromSystemError(error: unknown, context: string): SocktuneError {
  if (error instanceof SocktuneError) return error;
  const errno = (error as { code?: unknown } | null)?.code;
  const errnoName = typeof errno === 'string' ? errno : undefined;
  const code = (errnoName && errnoToCode[errnoName]) || 'SOCKTUNE_ERR_PEER_GONE';
  const reason = error instanceof Error ? error.message : String(error);
  return new SocktuneError(code, `${context}: ${reason}`, { cause: error, errno: errnoName });
}

/** Errors cross threads as plain clones; this restores the class so callers can rely on `code`. */
export function reviveError(error: unknown): Error {
  if (error instanceof SocktuneError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)) {
    return new SocktuneError(code as ErrorCode, (error as Error).message, { cause: error });
  }
  return error instanceof Error ? error : new Error(String(error));
}
