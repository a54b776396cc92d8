import { median, medianInterval, type MedianInterval } from '../results/stats.ts';

export type Objective = 'throughput' | 'p99' | 'rps';

export const OBJECTIVE_UNITS: Readonly<Record<Objective, string>> = { throughput: 'bit/s', p99: 'µs', rps: 'req/s' };

export function higherIsBetter(objective: Objective): boolean {
  return objective !== 'p99';
}

export interface Sampled<C> {
  config: C;
  samples: number[];
}

/** Against the default configuration: what a reader wants to know of each row. */
export type Verdict = 'default' | 'better' | 'same' | 'worse' | 'n/a';
/** Against the best configuration: what the search uses to keep contenders. */
export type Standing = 'best' | 'tie' | 'worse';

export interface Ranked<C> extends Sampled<C> {
  rank: number;
  median: number;
  /** The median's 95% confidence interval (order statistics); null for a config measured once. */
  interval: MedianInterval | null;
  /**
   * Against the default: 'better' or 'worse' when their confidence intervals do not overlap (with
   * one run on either side, when one is over twice the other), 'same' when they do; 'n/a' when the default
   * has no measurement.
   */
  verdict: Verdict;
  /** Against the best, by the same rule: 'tie' when the best does not clearly beat it. */
  standing: Standing;
  /** This config's median over the baseline's, oriented so that > 1 is better. */
  vsBaseline: number;
}

/**
 * The gap a config measured once must clear to count as different: with one sample the noise is
 * unknown, and runs on a shared machine differ by half or more (an 8K buffer's 0.2× still counts;
 * an interrupted sweep's 1.5× on one run each does not).
 */
const SINGLE_RUN_GAP = 0.5;

/** Whether `a` beats `b` beyond the noise: their intervals do not overlap (or, with a single run, by more than 2×). */
export function clearlyBetter(a: Sampled<unknown>, b: Sampled<unknown>, objective: Objective): boolean {
  const ia = medianInterval(a.samples);
  const ib = medianInterval(b.samples);
  const better = higherIsBetter(objective);
  if (ia !== null && ib !== null) return better ? ia.low > ib.high : ia.high < ib.low;
  const ma = median(a.samples);
  const mb = median(b.samples);
  const gap = (better ? ma - mb : mb - ma) / Math.max(Math.abs(ma), Math.abs(mb));
  return gap > SINGLE_RUN_GAP;
}

/** Orders configs by median, best first, and says which ones the best does not clearly beat. */
export function rank<C>(entries: readonly Sampled<C>[], objective: Objective, baseline: (config: C) => boolean): Ranked<C>[] {
  const better = higherIsBetter(objective);
  const withStats = entries
    .filter((entry) => entry.samples.length > 0)
    .map((entry) => ({ ...entry, median: median(entry.samples), interval: medianInterval(entry.samples) }))
    .sort((a, b) => (better ? b.median - a.median : a.median - b.median));
  const best = withStats[0];
  const baselineEntry = withStats.find((entry) => baseline(entry.config));
  const verdictOf = (entry: Sampled<C>): Verdict => {
    if (baselineEntry === undefined) return 'n/a';
    if (entry === baselineEntry) return 'default';
    if (clearlyBetter(entry, baselineEntry, objective)) return 'better';
    return clearlyBetter(baselineEntry, entry, objective) ? 'worse' : 'same';
  };
  return withStats.map((entry, index) => ({
    ...entry,
    rank: index + 1,
    standing: index === 0 ? 'best' : clearlyBetter(best!, entry, objective) ? 'worse' : 'tie',
    verdict: verdictOf(entry),
    vsBaseline: baselineEntry ? (better ? entry.median / baselineEntry.median : baselineEntry.median / entry.median) : Number.NaN,
  }));
}
