import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rank } from '../../src/bench/tune/rank.ts';
import { recommend } from '../../src/bench/tune/recommend.ts';
import type { ScenarioResult } from '../../src/bench/tune/run.ts';
import { configLabel, defaultConfig, isDefaultConfig, type TuneConfig } from '../../src/bench/tune/space.ts';
import { compactLabel, objectiveScale, renderRanking, winnerLine } from '../../src/cli/tune-table.ts';

const DEFAULT = defaultConfig('rr');
const config = (changes: Partial<TuneConfig>): TuneConfig => ({ ...DEFAULT, ...changes });

/** A ranked rr scenario as the sweep makes it, from samples per configuration. */
function scenario(entries: [TuneConfig, number[], { saturated?: boolean; lastRound?: number }?][]): ScenarioResult {
  const ranked = rank(
    entries.map(([c, samples]) => ({ config: c, samples })),
    'rps',
    (c) => isDefaultConfig(c, 'rr'),
  );
  const ranking = ranked.map((entry) => {
    const extra = entries.find(([c]) => c === entry.config)![2] ?? {};
    return {
      ...entry,
      label: configLabel(entry.config, 'rr'),
      clientSaturated: extra.saturated === true,
      capped: false,
      lastRound: extra.lastRound ?? 4,
    };
  });
  return {
    workload: 'rr',
    objective: 'rps',
    size: 64,
    conns: 10,
    objectiveUnit: 'req/s',
    ranking,
    recommendation: recommend(ranked, 'rps', 'rr', 64, 10, []) ?? null,
    trials: [],
  };
}

const wide = config({ bufferSize: 262144, ioModel: 'thread-per-conn', noDelay: false, depth: 16 });
const deep = config({ depth: 16, noDelay: false });
const ranked = scenario([
  [wide, [418_000, 400_000, 437_000, 420_000, 415_000, 431_000], { saturated: true }],
  [deep, [415_000, 405_000, 430_000, 412_000, 419_000, 425_000], { saturated: true }],
  [DEFAULT, [119_000, 121_000, 117_000, 120_000, 118_000, 122_000]],
  [config({ depth: 1, ioModel: 'thread-per-conn' }), [6_400], { lastRound: 1 }],
]);

test('the ranking fits 100 columns, marks the default row, and judges every row against the default', () => {
  const text = renderRanking(ranked, false, 100);
  for (const line of text.split('\n')) assert.ok([...line].length <= 100, `${[...line].length} columns: ${line}`);
  const cells = (line: string): string[] => line.split(/\s*│\s*|\s{2,}/).filter(Boolean);
  const rows = text
    .split('\n')
    .map(cells)
    .filter((row) => /^\d+$/.test(row[0] ?? ''));
  assert.deepEqual(
    rows.map((row) => row.slice(1)),
    [
      ['256K tpc nagle ×16', '419.0', '400.0–437.0', '6', '3.51×', 'better', 'client-bound'],
      ['auto loop nagle ×16', '417.0', '405.0–430.0', '6', '3.49×', 'better', 'client-bound'],
      ['auto loop nodelay ×1', '119.5', '117.0–122.0', '6', '1.00×', 'default'],
      ['auto tpc nodelay ×1', '6.4', '—', '1', '0.05×', 'worse', 'out r1'],
    ],
  );
  // Narrower than the boxed table: no box, and still one row a line, nothing past the width.
  const narrow = renderRanking(ranked, false, 80);
  assert.doesNotMatch(narrow, /│/);
  for (const line of narrow.split('\n')) assert.ok([...line].length <= 80, line);
  assert.equal(narrow.split('\n').filter((line) => /^\d+ /.test(line)).length, 4);
  // The rule is stated once, in words, and so is what "client-bound" means for the reader.
  const prose = text.replaceAll('\n', ' ');
  assert.match(
    prose,
    /verdict: against the default row \(×default: its median over the default’s\): better or worse when the two ranges do not overlap/,
  );
  assert.match(prose, /range: where the median lies with 95% confidence/);
  assert.doesNotMatch(text, /\d+(\.\d+)?% CI/, 'no per-row confidence levels');
  assert.match(prose, /client-bound: the load generator used a whole core/);
  assert.match(text, /#4 auto tpc nodelay ×1: 1 in flight per connection/);
});

test('the winner line names a row the table calls better, or the default when none is', () => {
  const winner = winnerLine(ranked, false);
  assert.match(
    winner,
    /^winner: #2 auto loop nagle ×16 — 3\.49× the default, beyond the noise; #1 is not clearly ahead of it, and it changes fewer settings$/,
  );
  const row = ranked.ranking.find((entry) => entry.rank === 2)!;
  assert.equal(row.verdict, 'better');
  const noisy = scenario([
    [deep, [150_000, 90_000, 210_000]],
    [DEFAULT, [100_000, 95_000, 120_000]],
  ]);
  assert.deepEqual(
    noisy.ranking.map((entry) => entry.verdict),
    ['same', 'default'],
  );
  assert.equal(
    winnerLine(noisy, false),
    'winner: the default (#2 auto loop nodelay ×1) — no configuration is better than it beyond the noise',
  );
});

test('a column has one unit, chosen by its largest value; labels are short and say the I/O model, Nagle and depth', () => {
  assert.deepEqual(objectiveScale('throughput', [23.1e9, 2.7e9]).unit, 'Gbit/s');
  assert.equal(objectiveScale('throughput', [23.1e9, 2.7e9]).format(2.7e9), '2.70');
  assert.equal(objectiveScale('rps', [6400, 900]).format(6400), '6400');
  assert.equal(objectiveScale('rps', [415_400]).unit, 'k req/s');
  assert.equal(objectiveScale('p99', [25_000]).format(25_000), '25.00');
  assert.equal(compactLabel(wide, 'rr', false), '256K tpc nagle ×16');
  assert.equal(compactLabel(wide, 'rr', true), '256K nagle ×16', 'a raw service has no server model to show');
  assert.equal(compactLabel(config({}), 'stream', false), 'auto loop');
});
