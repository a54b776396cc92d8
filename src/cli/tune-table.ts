import type { Objective } from '../bench/tune/rank.ts';
import type { ScenarioResult } from '../bench/tune/run.ts';
import { whyItLost } from '../bench/tune/notes.ts';
import { describeBuffer, type TuneConfig, type Workload } from '../bench/tune/space.ts';
import { renderTable } from './table.ts';

type Entry = ScenarioResult['ranking'][number];

const MODEL_WORD: Readonly<Record<TuneConfig['ioModel'], string>> = {
  loop: 'loop',
  workers: 'workers',
  'thread-per-conn': 'tpc',
  'io-uring': 'uring',
};

/** A configuration in a few characters (the report and the JSON keep the long label). */
export function compactLabel(config: TuneConfig, workload: Workload, raw: boolean): string {
  const parts = [describeBuffer(config.bufferSize), ...(raw ? [] : [MODEL_WORD[config.ioModel]])];
  if (workload === 'rr') parts.push(config.noDelay ? 'nodelay' : 'nagle', `×${config.depth}`);
  if (workload === 'msg') parts.push(config.batch === 'auto' ? 'coalesced' : 'per-msg', `×${config.depth}`);
  return parts.join(' ');
}

/** One unit for a whole column, chosen by its largest value, so the numbers line up and the unit is said once. */
export function objectiveScale(objective: Objective, values: number[]): { unit: string; format: (value: number) => string } {
  const largest = Math.max(0, ...values);
  if (objective === 'throughput') {
    const [unit, divisor] = largest >= 1e9 ? ['Gbit/s', 1e9] : largest >= 1e6 ? ['Mbit/s', 1e6] : ['kbit/s', 1e3];
    return { unit, format: (value) => (value / divisor).toFixed(2) };
  }
  if (objective === 'p99') {
    return largest >= 10_000
      ? { unit: 'ms', format: (value) => (value / 1000).toFixed(2) }
      : { unit: 'µs', format: (value) => value.toFixed(1) };
  }
  const [unit, divisor] = largest >= 1e6 ? ['M req/s', 1e6] : largest >= 1e4 ? ['k req/s', 1e3] : ['req/s', 1];
  return { unit, format: (value) => (divisor === 1 ? String(Math.round(value)) : (value / divisor).toFixed(1)) };
}

function notesOf(entry: Entry, finalRound: number): string {
  return [
    entry.lastRound < finalRound ? `out r${entry.lastRound}` : '',
    entry.clientSaturated ? 'client-bound' : '',
    entry.capped ? 'capped' : '',
  ]
    .filter(Boolean)
    .join(', ');
}

/**
 * A scenario's ranking for the terminal: under 100 columns (short labels, one unit per column,
 * notes as short words), each verdict against the default, and under it the rule that decided them,
 * what the words mean, and why the configurations that lost did so where the mechanism is known.
 */
export function renderRanking(scenario: ScenarioResult, raw: boolean, columns?: number): string {
  const { objective, workload } = scenario;
  const scale = objectiveScale(
    objective,
    scenario.ranking.flatMap((entry) => [entry.median, entry.interval?.high ?? entry.median]),
  );
  const finalRound = Math.max(...scenario.ranking.map((entry) => entry.lastRound));
  const table = renderTable(
    ['#', 'configuration', objective === 'p99' ? `p99 ${scale.unit}` : scale.unit, 'range', 'runs', '×default', 'verdict', 'notes'],
    scenario.ranking.map((entry) => [
      String(entry.rank),
      compactLabel(entry.config, workload, raw),
      scale.format(entry.median),
      entry.interval === null ? '—' : `${scale.format(entry.interval.low)}–${scale.format(entry.interval.high)}`,
      String(entry.samples.length),
      Number.isFinite(entry.vsBaseline) ? `${entry.vsBaseline.toFixed(2)}×` : 'n/a',
      entry.verdict,
      notesOf(entry, finalRound),
    ]),
    columns,
  );
  const width = Math.min(columns ?? PROSE_COLUMNS, PROSE_COLUMNS);
  const paragraphs = [
    'verdict: against the default row (×default: its median over the default’s): better or ' +
      'worse when the two ranges do not overlap, same when they do (one run each: over 2× ' +
      'apart). range: where the median lies with 95% confidence; with fewer than 6 runs, simply ' +
      'the lowest to the highest run, so less sure than that.',
    'auto = kernel-sized buffers; ' +
      `${raw ? '' : 'tpc = thread-per-conn; uring = io-uring; '}${workload === 'stream' ? '' : '×N = in flight per connection; '}out ` +
      'rN = dropped after round N of the search (it was in the worse half on its best run).',
  ];
  if (scenario.ranking.some((entry) => entry.clientSaturated)) {
    paragraphs.push(
      'client-bound: the load generator used a whole core in some of its runs, so that score may ' +
        'be the client’s limit, not the server’s, and differences between such rows say little: ' +
        'run the client on another host (socktune tune -c HOST) to measure the server alone.',
    );
  }
  for (const entry of scenario.ranking) {
    const why = entry.verdict === 'worse' ? whyItLost(entry.config, scenario) : '';
    if (why !== '') paragraphs.push(`#${entry.rank} ${compactLabel(entry.config, workload, raw)}: ${why}`);
  }
  return [table, ...paragraphs.flatMap((paragraph) => wrap(paragraph, width))].join('\n');
}

/** Prose under a table is wrapped at this width at most, so it reads as a paragraph even on a wide terminal. */
const PROSE_COLUMNS = 100;

/** Words to lines of at most `width` characters (a longer word stands alone). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && [...line].length + 1 + [...word].length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** The winner's line, naming its row in the table above. */
export function winnerLine(scenario: ScenarioResult, raw: boolean): string {
  const recommendation = scenario.recommendation!;
  const row = scenario.ranking.find((entry) => entry.config === recommendation.config);
  const name = `${row === undefined ? '' : `#${row.rank} `}${compactLabel(recommendation.config, scenario.workload, raw)}`;
  const belowTop = row !== undefined && row.rank > 1 ? `; #1 is not clearly ahead of it, and it changes fewer settings` : '';
  return recommendation.versusDefault === 'better'
    ? `winner: ${name} — ${recommendation.ratioToDefault.toFixed(2)}× the default, beyond the noise${belowTop}`
    : `winner: the default (${name}) — no configuration is better than it beyond the noise`;
}
