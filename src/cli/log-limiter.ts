/** What was left out of the log for one source over a window. */
export interface Suppressed {
  source: string;
  count: number;
  /** Lines left out, by what they were (an error code, or "done"). */
  kinds: Record<string, number>;
}

export interface LogLimits {
  /** Lines from one source per window. @default 5 */
  perSource?: number;
  /** Lines from every source together per window. @default 50 */
  total?: number;
  /** @default 10000 */
  windowMs?: number;
  /** Sources summarized one by one at the end of a window; the rest in one line. @default 5 */
  summarized?: number;
  /** Sources whose left-out lines are counted apart (memory stays bounded under a flood of addresses). @default 10000 */
  maxSources?: number;
}

/** Sources beyond the busiest: how many, and their lines; `more` when a flood of addresses went past maxSources. */
export interface OtherSources {
  sources: number;
  count: number;
  more: boolean;
}

export type OnSummary = (busiest: Suppressed[], others: OtherSources, windowSec: number) => void;

export const LOG_LIMITS: Readonly<Required<LogLimits>> = Object.freeze({
  perSource: 5,
  total: 50,
  windowMs: 10_000,
  summarized: 5,
  maxSources: 10_000,
});

/**
 * Log lines a server writes because of what clients do, rate-limited per source (a client key) and
 * in total, so that a flood of connections cannot flood the log: over the limits lines are counted,
 * and at the end of each window `onSummary` gets the busiest sources and the rest, once.
 */
export class LogLimiter {
  readonly #limits: Required<LogLimits>;
  readonly #shown = new Map<string, number>();
  #shownTotal = 0;
  readonly #left = new Map<string, Suppressed>();
  /** Lines left out from sources past maxSources. */
  #untracked = 0;
  readonly #timer: NodeJS.Timeout;

  readonly #onSummary: OnSummary;

  constructor(onSummary: OnSummary, limits: LogLimits = {}) {
    this.#onSummary = onSummary;
    this.#limits = { ...LOG_LIMITS, ...limits };
    this.#timer = setInterval(() => this.#endWindow(), this.#limits.windowMs).unref();
  }

  /** Whether to write this line; if not, it is counted for the window's summary. */
  admit(source: string, kind: string): boolean {
    const shown = this.#shown.get(source) ?? 0;
    if (shown < this.#limits.perSource && this.#shownTotal < this.#limits.total) {
      this.#shown.set(source, shown + 1);
      this.#shownTotal++;
      return true;
    }
    let entry = this.#left.get(source);
    if (entry === undefined) {
      if (this.#left.size >= this.#limits.maxSources) {
        this.#untracked++;
        return false;
      }
      entry = { source, count: 0, kinds: {} };
      this.#left.set(source, entry);
    }
    entry.count++;
    entry.kinds[kind] = (entry.kinds[kind] ?? 0) + 1;
    return false;
  }

  /** Ends the window now (at shutdown), then stops. */
  stop(): void {
    clearInterval(this.#timer);
    this.#endWindow();
  }

  #endWindow(): void {
    this.#shown.clear();
    this.#shownTotal = 0;
    if (this.#left.size === 0) return;
    const ranked = [...this.#left.values()].sort((a, b) => b.count - a.count);
    const rest = ranked.slice(this.#limits.summarized);
    const others = {
      sources: rest.length,
      count: this.#untracked + rest.reduce((sum, entry) => sum + entry.count, 0),
      more: this.#untracked > 0,
    };
    this.#left.clear();
    this.#untracked = 0;
    this.#onSummary(ranked.slice(0, this.#limits.summarized), others, this.#limits.windowMs / 1000);
  }
}

/** "1,503 more from 10.0.0.7 in the last 10 s: SOCKTUNE_ERR_AUTH ×1,500, done ×3" */
export function describeSuppressed(entry: Suppressed, windowSec: number): string {
  const kinds = Object.entries(entry.kinds)
    .sort((a, b) => b[1] - a[1])
    .map(([kind, count]) => `${kind} ×${count.toLocaleString('en-US')}`)
    .join(', ');
  return `… ${entry.count.toLocaleString('en-US')} more from ${entry.source} in the last ${windowSec} s: ${kinds}`;
}

/** "… and 2,000 more from 300 other sources" */
export function describeOthers(others: OtherSources): string {
  return `… and ${others.count.toLocaleString('en-US')} more from ${others.sources}${others.more ? '+' : ''} other sources`;
}

/** The summary as log lines, or as one JSON event per line (--json). */
export function summaryWriter(write: (line: string) => void, event?: (fields: Record<string, unknown>) => void): OnSummary {
  return (busiest, others, windowSec) => {
    for (const entry of busiest) {
      if (event) event({ source: entry.source, count: entry.count, kinds: entry.kinds, windowSec });
      else write(describeSuppressed(entry, windowSec));
    }
    if (others.count === 0) return;
    if (event) event({ otherSources: others.sources, count: others.count, windowSec });
    else write(describeOthers(others));
  };
}
