import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SocktuneError } from '../../core/errors.ts';
import { formatBits, formatBytes } from '../../bench/results/format.ts';
import { DEFAULT_UDP_BATCHES, DEFAULT_UDP_BUFFER_SIZES, type UdpBufferSweep } from '../../bench/tune/udp-buffer.ts';
import { MAX_SEGMENTS } from '../../transport/udp/udp-batching.ts';
import { MAX_DATAGRAM_BYTES, DATAGRAM_HEADER_BYTES } from '../../framing/datagram.ts';
import { str, target as targetOf } from '../client-settings.ts';
import { exitCodeOf, NOTHING_MEASURED_EXIT, onInterrupt } from '../client-command.ts';
import type { Io, Values } from '../command.ts';
import { renderTable } from '../table.ts';
import { median } from '../../bench/results/stats.ts';
import { MAX_SOCKET_BUFFER, parseBitRate, parseCount, parseSeconds, parseSize } from '../units.ts';

/** What tune -u does not take: the TCP sweep's dimensions. */
const TCP_ONLY: readonly [string, string][] = [
  ['workload', '--workload'],
  ['objective', '--objective'],
  ['io-model', '--io-model'],
  ['raw', '--raw'],
  ['budget', '--budget'],
];

/**
 * `tune -u`: the smallest SO_RCVBUF that drops no datagram at `-b`, against the embedded server
 * (or -c HOST), with the loss at every size in a table and the report.
 */
export async function runUdpTune(values: Values, io: Io): Promise<number> {
  const refused = TCP_ONLY.filter(([flag]) => values[flag] !== undefined).map(([, name]) => name);
  if (refused.length > 0)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `tune -u sweeps the receive buffer at one rate; it does not take ${refused.join(', ')}`);
  const sizeText = str(values, 'size') ?? '1460';
  if (sizeText.includes(',')) throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'tune -u takes one datagram size (--size), not a list');
  const datagramBytes = parseSize(sizeText, '--size', MAX_DATAGRAM_BYTES);
  if (datagramBytes < DATAGRAM_HEADER_BYTES)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--size for tune -u is ${DATAGRAM_HEADER_BYTES} to ${MAX_DATAGRAM_BYTES} bytes`);
  const quick = values.quick === true;
  const trialText = str(values, 'duration-per-trial');
  const windows = str(values, 'window');
  const options = {
    direction: values.reverse === true ? ('reverse' as const) : ('forward' as const),
    bitsPerSecond: parseBitRate(str(values, 'bitrate') ?? '100M', '--bitrate'),
    datagramBytes,
    parallel: parseCount(str(values, 'conns') ?? '1', '--conns', 1, 128),
    sizes:
      windows === undefined
        ? DEFAULT_UDP_BUFFER_SIZES
        : windows
            .split(',')
            .map((item) => parseSize(item.trim(), '--window', MAX_SOCKET_BUFFER))
            .sort((a, b) => a - b),
    batches: batchesOf(str(values, 'batch')),
    trialSec: trialText === undefined ? (quick ? 0.6 : 1) : parseSeconds(trialText, '--duration-per-trial'),
    rounds: quick ? 1 : 3,
  };
  const local =
    str(values, 'client') === undefined
      ? await (await import('../../bench/servers/control/local-server.ts')).LocalServer.start()
      : undefined;
  const target = local?.target ?? targetOf(values);
  const targetLabel = local
    ? `embedded socktune server on ${target.host} (separate process)`
    : `socktune server ${target.host}:${target.port}`;
  const human = values.json !== true;
  if (human && !values.quiet)
    io.err(
      `tuning the ${options.direction === 'reverse' ? "client's" : "server's"} UDP receive buffer at ` +
        `${formatBits(options.bitsPerSecond)} × ${options.parallel} against ${targetLabel}: ` +
        `${options.sizes.length} sizes × ${options.batches.length} sender batch(es) (${options.batches.join(', ')}) × ` +
        `${options.rounds} round(s) of ${options.trialSec}s`,
    );
  const interruption = onInterrupt(io);
  let sweep: UdpBufferSweep;
  try {
    const { sweepUdpReceiveBuffer } = await import('../../bench/tune/udp-buffer.ts');
    sweep = await sweepUdpReceiveBuffer({
      ...options,
      target,
      targetLabel,
      onProgress: (progress) => {
        if (human && !values.quiet && progress.done === progress.total) io.err(`${progress.done}/${progress.total} trials`);
      },
      interrupt: interruption.signal,
    });
  } finally {
    interruption.dispose();
    await local?.stop();
  }
  const reportPath = values['no-report'] ? undefined : resolve(str(values, 'report') ?? 'socktune-tune-udp.html');
  if (reportPath) await writeFile(reportPath, (await import('../../bench/tune/report/udp-buffer-html.ts')).renderUdpBufferReport(sweep));
  const exitCode =
    interruption.received() === undefined && sweep.points.every((point) => point.trials.length === 0)
      ? NOTHING_MEASURED_EXIT
      : exitCodeOf(interruption.received());
  if (!human) {
    io.out(JSON.stringify({ ...sweep, report: reportPath ?? null }, null, 2));
    return exitCode;
  }
  printSweep(io, sweep, local === undefined ? `${target.host} -p ${target.port}` : 'HOST');
  if (reportPath) io.out(`report: ${reportPath}`);
  return exitCode;
}

/** --batch LIST: the sender batches to sweep, in order, each once. */
function batchesOf(text: string | undefined): number[] {
  if (text === undefined) return [...DEFAULT_UDP_BATCHES];
  return [...new Set(text.split(',').map((item) => parseCount(item.trim(), '--batch', 1, MAX_SEGMENTS)))].sort((a, b) => a - b);
}

const describeBatch = (batch: number): string => (batch === 1 ? '1 (one per call)' : `${batch}`);

/** A rate as -b takes it: `100M`, `1.5G`, or bits/s where no unit divides it. */
function bitRateFlag(bitsPerSecond: number): string {
  for (const [unit, size] of [
    ['G', 1e9],
    ['M', 1e6],
    ['K', 1e3],
  ] as const)
    if (bitsPerSecond >= size && Number.isInteger((bitsPerSecond / size) * 1000)) return `${bitsPerSecond / size}${unit}`;
  return String(bitsPerSecond);
}

function printSweep(io: Io, sweep: UdpBufferSweep, server: string): void {
  const measured = sweep.points.filter((point) => point.trials.length > 0);
  const chosen = sweep.byBatch;
  const { options } = sweep;
  io.out(
    `the ${options.direction === 'reverse' ? "client's" : "server's"} receive buffer at ${formatBits(options.bitsPerSecond)}` +
      `${options.parallel > 1 ? ` × ${options.parallel} streams` : ''}, datagrams of ${options.datagramBytes} B, ` +
      `${options.rounds === 1 ? 'one trial' : `${options.rounds} rounds`} of ${options.trialSec} s each:`,
  );
  io.out(
    renderTable(
      [
        'batch',
        'SO_RCVBUF asked',
        'kernel gave',
        'sent per call',
        options.rounds === 1 ? 'lost' : 'lost (median)',
        'socket drops (most, in packets)',
        'verdict',
      ],
      measured.map((point) => {
        const perSend = point.trials.map((trial) => trial.datagramsPerSend).filter((value) => value !== null);
        const smallest = chosen.find((entry) => entry.batch === point.batch)?.recommendation?.asked === point.asked;
        return [
          describeBatch(point.batch),
          formatBytes(point.asked),
          `${formatBytes(point.effective)}${point.effective < 2 * point.asked ? ' (capped)' : ''}`,
          perSend.length === 0 ? '?' : String(median(perSend)),
          `${point.medianLostPercent}%`,
          point.maxDrops === null ? 'unknown' : String(point.maxDrops),
          smallest ? '← smallest without drops' : point.clean ? 'no drops' : '',
        ];
      }),
      io.columns,
    ),
  );
  const receiver = options.direction === 'reverse' ? 'client' : 'server';
  const load = `${formatBits(options.bitsPerSecond)}${options.parallel > 1 ? ` × ${options.parallel} streams` : ''}`;
  for (const { batch, recommendation } of chosen)
    io.out(
      `batch ${describeBatch(batch)}: ` +
        (recommendation === null
          ? `every size dropped datagrams at ${load}`
          : `smallest receive buffer with no drops at ${load}: ${formatBytes(recommendation.asked)} ` +
            `(the kernel gave ${formatBytes(recommendation.effective)})`),
    );
  if (sweep.recommendation === null) {
    io.out(
      `every size dropped datagrams at ${load}: the ${receiver} does not keep up whatever its buffer` +
        (sweep.sysctl === null ? '' : ', or the kernel capped the largest sizes'),
    );
  } else {
    const { asked, batch } = sweep.recommendation;
    io.out('paste:');
    const run =
      `socktune stream -u -c ${server}${options.direction === 'reverse' ? ' -R' : ''} -b ${bitRateFlag(options.bitsPerSecond)} ` +
      `-l ${options.datagramBytes}${options.parallel > 1 ? ` -P ${options.parallel}` : ''}` +
      `${batch === MAX_SEGMENTS ? '' : ` --batch ${batch}`} --rcvbuf ${asked}`;
    io.out(
      `  ${run}    # ${options.direction === 'reverse' ? "this client's sockets get it" : "the server's socket gets it for the test"}`,
    );
    io.out(`  bindUdp({ host, port, receiveBufferSize: ${asked} })`);
  }
  if (sweep.sysctl !== null) io.out(`  ${sweep.sysctl}    # the kernel capped this size`);
  for (const warning of sweep.warnings) io.err(`warning: ${warning}`);
}
