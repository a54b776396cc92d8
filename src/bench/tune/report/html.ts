import { pageHead } from './page.ts';
import { formatBits, formatCount, formatMicros } from '../../results/format.ts';
import { describeInterval } from '../../results/stats.ts';
import type { MsgInterval, RrInterval, StreamInterval } from '../../results/result.ts';
import type { Objective } from '../rank.ts';
import type { ScenarioResult, TuneResult } from '../run.ts';
import { rankingNotes } from '../notes.ts';
import { barChart, escapeXml, lineChart, type Series } from './svg.ts';

export function formatObjective(objective: Objective, value: number): string {
  if (objective === 'throughput') return formatBits(value);
  if (objective === 'p99') return formatMicros(value);
  return `${formatCount(value)} req/s`;
}

const PERCENTILE_TICKS = [0, 90, 99, 99.9, 99.99, 99.999];
/** HDR-style x axis: 1 / (1 - percentile), so the tail gets the room. */
const tailScale = (percentile: number): number => 1 / (1 - Math.min(percentile, 99.9999) / 100);

function intervalValue(interval: StreamInterval | RrInterval | MsgInterval): number {
  if ('messagesPerSecond' in interval) return interval.messagesPerSecond;
  return 'bitsPerSecond' in interval ? interval.bitsPerSecond : interval.requestsPerSecond;
}

function scenarioSection(result: TuneResult, scenario: ScenarioResult, index: number): string {
  const { objective, workload } = scenario;
  const format = (value: number): string => formatObjective(objective, value);
  const top = scenario.ranking.slice(0, 3);
  const lastTrial = (label: string) => [...scenario.trials].reverse().find((trial) => trial.label === label && trial.metric !== null);
  const bars = barChart(
    scenario.ranking.map((entry) => ({
      label: entry.label,
      value: entry.median,
      low: entry.interval?.low ?? entry.median,
      high: entry.interval?.high ?? entry.median,
      highlight: entry.label === scenario.recommendation?.label,
    })),
    format,
    `${objective} per configuration (median; whiskers: its confidence interval)`,
  );
  const overTime: Series[] = top.flatMap((entry) => {
    const trial = lastTrial(entry.label);
    return trial
      ? [
          {
            name: entry.label,
            points: trial.intervals
              .filter((interval) => !interval.omitted)
              .map((interval) => ({ x: interval.endSec, y: intervalValue(interval) })),
          },
        ]
      : [];
  });
  const timeChart = lineChart(
    overTime,
    { label: 'seconds into the trial (after warm-up)', format: (v) => v.toFixed(result.options.trialSec < 2 ? 2 : 1) },
    {
      label: workload === 'stream' ? 'throughput' : workload === 'msg' ? 'messages/s' : 'requests/s',
      format: (v) => (workload === 'stream' ? formatBits(v) : formatCount(v)),
    },
    `${workload === 'stream' ? 'Throughput' : workload === 'msg' ? 'Message rate' : 'Request rate'} over time, top configurations`,
  );
  const curves: Series[] = top.flatMap((entry) => {
    const curve = lastTrial(entry.label)?.percentileCurve;
    return curve && curve.length > 0
      ? [{ name: entry.label, points: curve.map((point) => ({ x: tailScale(point.percentile), y: Math.max(point.us, 0.1) })) }]
      : [];
  });
  const percentileChart =
    curves.length > 0
      ? lineChart(
          curves,
          {
            label: 'percentile',
            log: true,
            format: (v) => `${(100 - 100 / v).toPrecision(6).replace(/\.?0+$/, '')}%`,
            ticks: PERCENTILE_TICKS.map(tailScale),
          },
          { label: 'latency', log: true, format: formatMicros },
          'Latency by percentile (HDR, log scale)',
        )
      : '<p class="empty">Latency percentile curves come from request/response and message workloads (--workload rr or msg).</p>';
  const rows = scenario.ranking
    .map((entry) => {
      const cells = [
        String(entry.rank),
        escapeXml(entry.label),
        escapeXml(format(entry.median)),
        escapeXml(describeInterval(entry.interval, format)),
        String(entry.samples.length),
        Number.isFinite(entry.vsBaseline) ? `${entry.vsBaseline.toFixed(2)}×` : 'n/a',
        entry.verdict,
        escapeXml(rankingNotes(entry, scenario)),
      ];
      return `<tr class="${entry.verdict}">${cells.map((cell) => `<td>${cell}</td>`).join('')}</tr>`;
    })
    .join('');
  const recommendation = scenario.recommendation;
  const snippet = recommendation
    ? escapeXml(
        [
          recommendation.versusDefault === 'better'
            ? `// ${recommendation.ratioToDefault.toFixed(2)}× the default`
            : '// nothing better than the default beyond the noise: keep the defaults',
          ...(recommendation.createServer
            ? [`createServer(${JSON.stringify(recommendation.createServer)})`]
            : ['// a raw service: only client-side options were tuned']),
          `connect({ host, port, ...${JSON.stringify(recommendation.connect)} })`,
          `# ${recommendation.cli}`,
          ...recommendation.advice.map((line) => `# ${line}`),
          ...recommendation.sysctl.map((line) => `# ${line}`),
        ].join('\n'),
      )
    : 'no configuration completed a trial';
  const unit = { stream: 'B writes', rr: 'B requests', msg: 'B messages' }[workload];
  return (
    `<section id="scenario-${index}"><h2>${workload}: ${scenario.size} ${unit} × ` +
    `${scenario.conns} connection(s), objective ` +
    `${escapeXml(objective)}</h2>
<h3>Recommendation</h3><pre class="snippet">${snippet}</pre>
<h3>Ranking</h3><table><thead><tr><th>#</th><th>configuration</th><th>${escapeXml(objective)} ` +
    '(median)</th><th>range</th><th>runs</th><th>vs ' +
    `default</th><th>verdict</th><th>notes</th></tr></thead><tbody>${rows}</tbody></table>
${LEGEND}
${bars}${timeChart}${percentileChart}</section>`
  );
}

/** What every verdict and note in a ranking means: a reader should not have to guess. */
const LEGEND =
  `<dl class="legend-notes">
<dt>median</dt><dd>the middle of the configuration's runs: its score. Runs are ` +
  'interleaved (A B C A B C), so drift of the machine hits every configuration ' +
  `alike.</dd>
<dt>range</dt><dd>the median's confidence interval: two of its runs between which the ` +
  'true median lies with the stated probability, whatever the distribution (order ' +
  'statistics); 95% from 6 runs on, less with fewer (the lowest to the highest of 3 runs: ' +
  '75%). "1 run — no interval": measured once, its noise is ' +
  `unknown.</dd>
<dt>verdict</dt><dd>each configuration against the <em>default</em> one (marked ` +
  '"default"): <b>better</b> or <b>worse</b> when the two ranges do not overlap, <b>same</b> ' +
  'when they do, so the difference is inside the noise. Against a configuration measured ' +
  'once, anything short of 2× apart is the ' +
  `same.</dd>
<dt>vs default</dt><dd>median over the default configuration's, above 1 meaning better.</dd>
<dt>dropped after round N</dt><dd>successive halving (--quick) or the full mode's ` +
  'contender runs left it out after that round: it was in the worse half, or clearly ' +
  `beaten.</dd>
<dt>client saturated</dt><dd>the load generator itself used a whole core or lagged in at ` +
  `least one run: that score may be the client's limit, not the server's.</dd>
<dt>a … buffer caps the TCP window; N in flight per connection</dt><dd>why a ` +
  'configuration lost, where the mechanism says so: a stream can carry at most one window ' +
  '(about the buffer) per round trip; a request/response connection with fewer requests in ' +
  `flight waits more round trips per request.</dd>
<dt>buffer capped by kernel</dt><dd>the kernel gave a smaller socket buffer than asked ` +
  '(net.core.rmem_max / wmem_max); the recommendation shows the sysctl to raise it. A small ' +
  `buffer also caps a stream's rate at about buffer ÷ round-trip time.</dd>
</dl>`;

/** One self-contained HTML file: inline CSS and SVG, nothing fetched when it is opened. */
export function renderTuneReport(result: TuneResult): string {
  const env = result.environment.client;
  const envRows = [
    ['Node', env.node],
    ['kernel', `${env.platform} ${env.kernel}`],
    ['CPUs', `${env.cpus} × ${env.cpuModel}`],
    ['target', result.options.targetLabel],
    ['CPU pinning', result.options.pinning],
    ...(result.options.streamSender === undefined
      ? []
      : [
          [
            'stream sender',
            result.options.streamSender === 'sendfile' ? 'sendfile from the page cache (stream -Z)' : 'writes from a buffer',
          ],
        ]),
    [
      'workload',
      `${result.options.workload}, ` +
        `${result.options.quick ? 'quick (successive halving)' : `full grid, budget ${result.options.budgetSec}s`}, ` +
        `${result.options.trialSec}s per trial`,
    ],
    ...Object.entries(env.sysctl),
  ]
    .map(([name, value]) => `<tr><th>${escapeXml(name!)}</th><td>${escapeXml(value!)}</td></tr>`)
    .join('');
  const warnings = result.warnings.map((warning) => `<li>${escapeXml(warning)}</li>`).join('');
  return (
    `${pageHead('socktune tune report')}
<h1>socktune tune</h1>
<p>${escapeXml(result.startedAt)} · ${result.durationSec}s · ` +
    `${result.scenarios.reduce((n, s) => n + s.trials.length, 0)} trials. Each configuration ` +
    'is judged against the default one: a difference whose ranges overlap is the same, inside ' +
    'the noise (legend under each ' +
    `ranking).</p>
${warnings ? `<ul class="warnings">${warnings}</ul>` : ''}
<h2>Environment</h2><table>${envRows}</table>
${result.scenarios.map((scenario, index) => scenarioSection(result, scenario, index)).join('\n')}
</body></html>
`
  );
}
