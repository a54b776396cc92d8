export type Objective = 'throughput' | 'p99' | 'rps';

export const OBJECTIVE_UNITS: Readonly<Record<Objective, string>> = { throughput: 'bit/s', p99: 'µs', rps: 'req/s' };

export function higherIsBetter(objective: Objective): boolean {
  return objective !== 'p99';
}

export interface Sampled<C> {
  config: C;
  samples: number[];
}

export type Verdict = 'best' | 'tie' | 'worse';

export interface Ranked<C> extends Sampled<C> {
  rank: number;
  median: number;
  /** Half the sample range relative to the median: the noise of this config. */
  relativeSpread: number;
  min: number;
  max: number;
  /** Against the best config: 'tie' when the gap is within the noise of either. */
  verdict: Verdict;
  /** This config's median over the baseline's, oriented so that > 1 is better. */
  vsBaseline: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function spreadOf(samples: readonly number[], center: number): number {
  if (samples.length < 2 || center === 0) return 0;
  return (Math.max(...samples) - Math.min(...samples)) / 2 / Math.abs(center);
}

/**
 * Whether `a` beats `b` by more than the noise. With fewer than two samples on either side the
 * noise is unknown, and nothing short of `minimumGap` (10%) counts as a win.
 */
export function clearlyBetter(a: Ranked<unknown> | Sampled<unknown>, b: Ranked<unknown> | Sampled<unknown>, objective: Objective, minimumGap = 0.1): boolean {
  const ma = median(a.samples);
  const mb = median(b.samples);
  const gap = (higherIsBetter(objective) ? ma - mb : mb - ma) / Math.max(Math.abs(ma), Math.abs(mb));
  const unknownNoise = a.samples.length < 2 || b.samples.length < 2;
  const noise = unknownNoise ? minimumGap : Math.max(spreadOf(a.samples, ma), spreadOf(b.samples, mb)) * 2;
  return gap > noise;
}

/** Orders configs by median, best first, and says which ones the best does not clearly beat. */
export function rank<C>(entries: readonly Sampled<C>[], objective: Objective, baseline: (config: C) => boolean): Ranked<C>[] {
  const better = higherIsBetter(objective);
  const withStats = entries
    .filter((entry) => entry.samples.length > 0)
    .map((entry) => {
      const center = median(entry.samples);
      return { ...entry, median: center, min: Math.min(...entry.samples), max: Math.max(...entry.samples), relativeSpread: spreadOf(entry.samples, center) };
    })
    .sort((a, b) => (better ? b.median - a.median : a.median - b.median));
  const best = withStats[0];
  const baselineEntry = withStats.find((entry) => baseline(entry.config));
  return withStats.map((entry, index) => ({
    ...entry,
    rank: index + 1,
    verdict: index === 0 ? 'best' : clearlyBetter(best!, entry, objective) ? 'worse' : 'tie',
    vsBaseline: baselineEntry ? (better ? entry.median / baselineEntry.median : baselineEntry.median / entry.median) : Number.NaN,
  }));
}
