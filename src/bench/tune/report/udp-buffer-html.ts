import { formatBits, formatBytes } from '../../results/format.ts';
import type { UdpBufferSweep } from '../udp-buffer.ts';
import { pageHead } from './page.ts';
import { escapeXml, lineChart } from './svg.ts';

/** `tune -u`'s report: loss against the receive buffer, one self-contained HTML file. */
export function renderUdpBufferReport(sweep: UdpBufferSweep): string {
  const { options } = sweep;
  const measured = sweep.points.filter((point) => point.trials.length > 0);
  const receiver = options.direction === 'reverse' ? 'client' : 'server';
  const label = (batch: number): string => (batch === 1 ? 'one datagram per send' : `up to ${batch} datagrams per send`);
  const chart = lineChart(
    options.batches.map((batch) => ({
      name: `lost, median of the rounds (%): ${label(batch)}`,
      points: measured.filter((point) => point.batch === batch).map((point) => ({ x: point.asked, y: point.medianLostPercent })),
    })),
    {
      label: `SO_RCVBUF asked of the ${receiver}'s socket (log)`,
      log: true,
      format: formatBytes,
      ticks: [...options.sizes],
    },
    { label: 'lost (%)', format: (value) => `${value}%` },
    `Loss against the receive buffer at ${formatBits(options.bitsPerSecond)} per stream × ${options.parallel}, per sender batch`,
  );
  const smallest = (point: UdpBufferSweep['points'][number]): boolean =>
    sweep.byBatch.find((entry) => entry.batch === point.batch)?.recommendation?.asked === point.asked;
  const rows = measured
    .map(
      (point) =>
        `<tr class="${smallest(point) ? 'better' : point.clean ? '' : 'worse'}"><td>${escapeXml(label(point.batch))}</td>` +
        `<td>${formatBytes(point.asked)}</td><td>${formatBytes(point.effective)}</td><td>${point.medianLostPercent}%</td>` +
        `<td>${point.maxDrops ?? 'unknown'}</td><td>${point.trials.map((trial) => `${trial.lostPercent}%`).join(', ')}</td></tr>`,
    )
    .join('');
  const perBatch = sweep.byBatch
    .map(
      ({ batch, recommendation }) =>
        `<li>${escapeXml(label(batch))}: ` +
        (recommendation === null
          ? 'every size dropped datagrams'
          : `<b>${formatBytes(recommendation.asked)}</b> (the kernel gave ${formatBytes(recommendation.effective)})`) +
        '</li>',
    )
    .join('');
  const verdict =
    sweep.recommendation === null
      ? '<p>Every size dropped datagrams: the receiver cannot keep up at this rate whatever its buffer' +
        `${sweep.sysctl ? ', or the kernel capped the largest size' : ''}.</p>`
      : `<p>The smallest receive buffer that dropped nothing (with every larger one), per sender batch:</p><ul>${perBatch}</ul>`;
  const warnings = [...sweep.warnings, ...(sweep.sysctl ? [`the kernel capped the size that decides: ${sweep.sysctl}`] : [])]
    .map((warning) => `<li>${escapeXml(warning)}</li>`)
    .join('');
  return `${pageHead('socktune tune -u report')}
<h1>socktune tune -u</h1>
<p>${escapeXml(sweep.startedAt)} · ${sweep.durationSec}s · ${escapeXml(options.targetLabel)} · datagrams of ${options.datagramBytes} B,
${options.rounds} round(s) of ${options.trialSec}s per size and batch, all interleaved.</p>
${warnings ? `<ul class="warnings">${warnings}</ul>` : ''}
${verdict}
${chart}
<table><tr><th>sender batch</th><th>SO_RCVBUF asked</th><th>kernel gave</th><th>lost (median)</th><th>socket drops (most)</th>
<th>each round</th></tr>
${rows}</table>
</body></html>
`;
}
