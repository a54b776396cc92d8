/** How failed authentication is made expensive for the client that fails, and cheap for the server. */
export interface AuthBackoffOptions {
  /** Failures from one client allowed at full speed; each one after waits before it is answered. @default 3 */
  freeFailures?: number;
  /** The first wait, in ms; it doubles with each failure up to maxDelayMs. @default 250 */
  baseDelayMs?: number;
  /** @default 4000 */
  maxDelayMs?: number;
  /** After this many failures the client is refused at once, with no check at all, for blockMs. @default 10 */
  blockAfter?: number;
  /** @default 60000 */
  blockMs?: number;
  /** A client with no failure for this long starts afresh. @default 60000 */
  forgetAfterMs?: number;
  /** Clients remembered at once (the oldest is forgotten first): the memory a flood of addresses can take is bounded. @default 10000 */
  maxClients?: number;
}

export const AUTH_BACKOFF_DEFAULTS: Readonly<Required<AuthBackoffOptions>> = Object.freeze({
  freeFailures: 3,
  baseDelayMs: 250,
  maxDelayMs: 4000,
  blockAfter: 10,
  blockMs: 60_000,
  forgetAfterMs: 60_000,
  maxClients: 10_000,
});

interface Failures {
  count: number;
  last: number;
  blockedUntil: number;
}

/**
 * Failed authentications counted per client key (clientKey: an IPv4 address, an IPv6 /64): the
 * first few are answered at once, the next after a wait that doubles, and past `blockAfter` the
 * client is refused before any proof is read or any RSA work is done, until `blockMs` has passed.
 */
export class AuthBackoff {
  readonly options: Readonly<Required<AuthBackoffOptions>>;
  /** In order of last failure, oldest first (a Map keeps insertion order; a failure re-inserts). */
  readonly #clients = new Map<string, Failures>();
  readonly #now: () => number;

  constructor(options: AuthBackoffOptions = {}, now: () => number = () => performance.now()) {
    this.options = Object.freeze({ ...AUTH_BACKOFF_DEFAULTS, ...options });
    this.#now = now;
  }

  /** Milliseconds this client is still refused for, or 0 when it may try. */
  blockedFor(key: string): number {
    const entry = this.#fresh(key);
    return entry === undefined ? 0 : Math.max(0, Math.ceil(entry.blockedUntil - this.#now()));
  }

  /** Counts a failure; returns how long to wait before answering it (0 within the free failures). */
  failed(key: string): number {
    const now = this.#now();
    const entry = this.#fresh(key) ?? { count: 0, last: now, blockedUntil: 0 };
    entry.count++;
    entry.last = now;
    if (entry.count >= this.options.blockAfter) entry.blockedUntil = now + this.options.blockMs;
    this.#clients.delete(key);
    this.#clients.set(key, entry);
    if (this.#clients.size > this.options.maxClients) this.#clients.delete(this.#clients.keys().next().value!);
    const over = entry.count - this.options.freeFailures;
    return over <= 0 ? 0 : Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** Math.min(over - 1, 20));
  }

  /** A client that proved its secret starts afresh. */
  succeeded(key: string): void {
    this.#clients.delete(key);
  }

  /** Clients remembered now. */
  get size(): number {
    return this.#clients.size;
  }

  #fresh(key: string): Failures | undefined {
    const entry = this.#clients.get(key);
    if (entry === undefined) return undefined;
    const now = this.#now();
    if (now - entry.last < this.options.forgetAfterMs || now < entry.blockedUntil) return entry;
    this.#clients.delete(key);
    return undefined;
  }
}
