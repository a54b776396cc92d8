/** `value` with `digits` decimals, for figures a person reads. */
export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** The confidence the intervals aim for. */
export const CONFIDENCE = 0.95;

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** A median with the interval that holds the true median with `confidence` (the coverage actually reached). */
export interface MedianInterval {
  median: number;
  low: number;
  high: number;
  /** 0.95 when there are enough samples; below it with few (5 samples reach 0.9375 with min–max). */
  confidence: number;
  samples: number;
}

/** P(X ≤ k) for X ~ Binomial(n, 1/2). */
function binomialHalfCdf(n: number, k: number): number {
  let term = 0.5 ** n;
  let sum = term;
  for (let i = 1; i <= k; i++) {
    term = (term * (n - i + 1)) / i;
    sum += term;
  }
  return sum;
}

/**
 * The median with a distribution-free confidence interval from order statistics: [x(k+1), x(n−k)]
 * holds the true median with probability 1 − 2·P(Bin(n, ½) ≤ k), whatever the distribution. The
 * narrowest such interval reaching CONFIDENCE is chosen; with fewer than 6 samples none does, and
 * min–max comes with the coverage it has. One sample has no interval (null).
 */
export function medianInterval(values: readonly number[]): MedianInterval | null {
  if (values.length < 2) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  let k = 0;
  while (k + 1 < n / 2 && 1 - 2 * binomialHalfCdf(n, k + 1) >= CONFIDENCE) k++;
  return { median: median(sorted), low: sorted[k]!, high: sorted[n - 1 - k]!, confidence: 1 - 2 * binomialHalfCdf(n, k), samples: n };
}

/** "95% CI 1.2–1.4" style text of an interval's bounds and coverage, or the reason there is none. */
export function describeInterval(interval: MedianInterval | null, format: (value: number) => string): string {
  if (interval === null) return '1 run — no interval';
  const percent = Math.floor(interval.confidence * 1000) / 10;
  return `${percent}% CI ${format(interval.low)} – ${format(interval.high)}`;
}
