/**
 * `socktune merge` at scale (hardening issue: intervals that share a slot were copied per insert):
 * the time `mergeResults` takes for
 *   - 80,000 and 200,000 rr intervals in one slot (two runs whose intervals all start at 0 s)
 *   - 30,000 rr intervals spread out, one per slot (two runs of 15,000, the second started after the first)
 * Each measurement runs in a fresh child process (its own heap, its own peak RSS); the cases are
 * interleaved (A B C A B C) and repeated, median (range). Making the input is not timed, nor is
 * reading and validating files: only the merge.
 *
 *   npm run bench:merge-scale [-- --repetitions 3]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { collectEnvironment } from '../src/bench/results/environment.ts';
import { createLatencyHistogram, encodeHistogram, summarizeLatency } from '../src/bench/results/histogram.ts';
import { mergeResults, type MergeSource } from '../src/bench/results/merge.ts';
import type { RrInterval, RrResult } from '../src/bench/results/result.ts';
import { median } from '../src/bench/results/stats.ts';

const CASES = {
  'one slot, 80,000': { runs: 2, perRun: 40_000, spread: false },
  'one slot, 200,000': { runs: 2, perRun: 100_000, spread: false },
  'spread, 30,000': { runs: 2, perRun: 15_000, spread: true },
} as const;
type CaseName = keyof typeof CASES;

/** Before: the figures of the issue (the merge that copied a slot's array per interval); the spread case is not in it. */
const BEFORE: Record<CaseName, string> = {
  'one slot, 80,000': '48.6 s',
  'one slot, 200,000': '520 s, 2 GB',
  'spread, 30,000': '—',
};

interface Sample {
  seconds: number;
  slots: number;
  intervals: number;
  /** Peak RSS of the child, input included, and how far the merge raised it above the input. */
  peakRssMiB: number;
  mergeRssMiB: number;
}

const { values } = parseArgs({ options: { repetitions: { type: 'string', default: '3' }, case: { type: 'string' } } });

/** Distinct interval histograms, about 50 latencies each around 100 µs with a tail, from a fixed seed. */
function histogramPool(size: number): string[] {
  let seed = 20261206;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const histogram = createLatencyHistogram();
  return Array.from({ length: size }, () => {
    histogram.reset();
    for (let latency = 0; latency < 50; latency++)
      histogram.recordValue(Math.round(60_000 * Math.exp(random() * 1.5) * (random() < 0.02 ? 20 : 1)));
    return encodeHistogram(histogram);
  });
}

/** A run as an rr client writes it, intervals of 1 s, started at `startedAt`. */
function rrRun(startedAt: number, intervals: number, spread: boolean, pool: string[]): RrResult {
  const summary = createLatencyHistogram();
  summary.recordValueWithCount(100_000, 50 * intervals);
  return {
    schema: 'socktune/1',
    command: 'rr',
    startedAt: new Date(startedAt).toISOString(),
    environment: { client: collectEnvironment(), server: null },
    options: { intervalSec: 1 } as RrResult['options'],
    effective: { client: null, server: null },
    intervals: Array.from({ length: intervals }, (_, index): RrInterval => ({
      startSec: spread ? index : 0,
      endSec: spread ? index + 1 : 1,
      requests: 50,
      requestsPerSecond: 50,
      p50Us: 100,
      p99Us: 900,
      histogram: pool[index % pool.length]!,
      omitted: false,
    })),
    summary: {
      mode: 'closed-loop',
      measuredSeconds: spread ? intervals : 1,
      requests: 50 * intervals,
      requestsPerSecond: 50,
      sentRequests: 50 * intervals,
      latency: summarizeLatency(summary),
      histogram: encodeHistogram(summary),
      percentileCurve: [],
      serverCpuPercent: null,
    },
    selfCheck: { cpuPercent: 50, eventLoopDelayP99Ms: 1, eventLoopDelayMaxMs: 1, clientSaturated: false },
    clientSaturated: false,
    warnings: [],
    warningDetails: [],
  };
}

/** In the child: make the case's input, then time the merge alone. */
function measure(name: CaseName): Sample {
  const { runs, perRun, spread } = CASES[name];
  const pool = histogramPool(1000);
  const t0 = Date.parse('2026-12-06T12:00:00.000Z');
  const sources: MergeSource[] = Array.from({ length: runs }, (_, index) => ({
    label: `host${index}`,
    // Spread: each run after the one before, so that every interval has a slot of its own.
    result: rrRun(t0 + (spread ? index * perRun * 1000 : 0), perRun, spread, pool),
  }));
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  const merged = mergeResults(sources);
  const seconds = (performance.now() - started) / 1000;
  const peak = process.resourceUsage().maxRSS * 1024;
  return {
    seconds,
    slots: merged.intervals.length,
    intervals: runs * perRun,
    peakRssMiB: peak / 2 ** 20,
    mergeRssMiB: Math.max(0, peak - rssBefore) / 2 ** 20,
  };
}

function measureInChild(name: CaseName): Promise<Sample> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--case', name], { stdio: ['ignore', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) =>
    child.once('close', (code) => (code === 0 ? resolve(JSON.parse(output) as Sample) : reject(new Error(`${name}: exit ${code}`)))),
  );
}

function commit(): string {
  const git = (args: string[]): string => execFileSync('git', ['--no-optional-locks', ...args], { encoding: 'utf8' }).trim();
  try {
    const changed = git(['diff', '--name-only', 'HEAD', '--', 'src/bench/results/merge.ts', 'src/cli/commands/merge.ts']);
    return `${git(['rev-parse', '--short', 'HEAD'])}${changed ? ` + uncommitted changes to ${changed.split('\n').join(', ')}` : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

if (values.case !== undefined) {
  process.stdout.write(JSON.stringify(measure(values.case as CaseName)));
} else {
  const repetitions = Number(values.repetitions);
  const names = Object.keys(CASES) as CaseName[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as Sample[]])) as Record<CaseName, Sample[]>;
  for (let repetition = 0; repetition < repetitions; repetition++) {
    for (const name of names) samples[name].push(await measureInChild(name));
    process.stderr.write(`repetition ${repetition + 1}/${repetitions} done\n`);
  }
  const range = (list: number[], digits: number): string =>
    `${median(list).toFixed(digits)} (${Math.min(...list).toFixed(digits)}–${Math.max(...list).toFixed(digits)})`;
  const environment = collectEnvironment();
  const date = new Date().toISOString().slice(0, 10);
  const rows = names.map((name) => {
    const list = samples[name];
    const seconds = list.map((sample) => sample.seconds);
    const perInterval = (median(seconds) / list[0]!.intervals) * 1e6;
    return `| ${name} | ${list[0]!.intervals} | ${list[0]!.slots} | ${range(seconds, 2)} | ${perInterval.toFixed(1)} | ${range(
      list.map((sample) => sample.mergeRssMiB),
      0,
    )} | ${range(
      list.map((sample) => sample.peakRssMiB),
      0,
    )} | ${BEFORE[name]} |`;
  });
  const markdown = `# socktune merge at scale (${date})

\`mergeResults\` on rr runs of 1 s intervals, each interval's histogram about 50 latencies around
100 µs (1,000 distinct ones, cycled); input made in the child and not timed, nor file reading and
schema validation. Each measurement in a fresh child process; ${repetitions} interleaved repetitions,
median (range). Commit ${commit()}. Node ${environment.node}, kernel ${environment.kernel},
${environment.cpus} × ${environment.cpuModel}.

| case | intervals | merged slots | merge time, s | µs per interval | RSS the merge added, MiB | peak RSS, MiB | before (the issue) |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}
`;
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(new URL(`./results/merge-scale-${date}.md`, import.meta.url), markdown);
  process.stdout.write(markdown);
}
