import { runRr } from '../../bench/rr.ts';
import type { RrInterval } from '../../bench/result.ts';
import { COMMON_CLIENT_FLAGS, type Command } from '../command.ts';
import { bufferSizes, clientSettings, seconds, serverSettings, str, target } from '../client-settings.ts';
import { printFooter } from '../report-common.ts';
import { renderTable } from '../table.ts';
import { formatCount, formatMicros } from '../../bench/format.ts';
import { parseCount, parseSize } from '../units.ts';

export const rrCommand: Command = {
  name: 'rr',
  summary: 'request/response latency and rate, with HDR percentiles (closed or open loop)',
  usage: 'socktune rr -c HOST [-t 10] [--size 64] [-C 1] [--depth 1] [--rate N] [--json]',
  flags: {
    ...COMMON_CLIENT_FLAGS,
    size: { help: 'request bytes; the server echoes as many (default 64)', spec: { type: 'string' } },
    connections: { help: 'connections (default 1)', spec: { type: 'string', short: 'C' } },
    depth: { help: 'requests in flight per connection (default 1)', spec: { type: 'string' } },
    rate: { help: 'open loop: total requests/s on a fixed schedule, latency from the intended send time', spec: { type: 'string' } },
  },
  examples: ['socktune rr -c 127.0.0.1 -t 5', 'socktune rr -c 127.0.0.1 -C 10 --depth 4 --size 1K', 'socktune rr -c 127.0.0.1 --rate 20000 --json'],
  async run(values, io) {
    const ndjson = values.ndjson === true;
    const human = !values.json && !ndjson;
    const rate = str(values, 'rate');
    const result = await runRr({
      target: target(values),
      durationSec: seconds(values, 'time', 10),
      omitSec: seconds(values, 'omit', 0),
      size: parseSize(str(values, 'size') ?? '64', '--size'),
      connections: parseCount(str(values, 'connections') ?? '1', '--connections', 1, 10_000),
      depth: parseCount(str(values, 'depth') ?? '1', '--depth', 1, 1024),
      rate: rate === undefined ? undefined : parseCount(rate, '--rate', 1, 10_000_000),
      client: clientSettings(values),
      server: serverSettings(values),
      intervalSec: seconds(values, 'interval', 1),
      onInterval: (interval: RrInterval) => {
        if (ndjson) io.out(JSON.stringify({ type: 'interval', ...interval }));
        else if (human && !values.quiet) {
          io.err(
            `[${interval.startSec.toFixed(2)}-${interval.endSec.toFixed(2)} s] ${formatCount(interval.requestsPerSecond).padStart(9)} req/s  p50 ${formatMicros(interval.p50Us)}  p99 ${formatMicros(interval.p99Us)}${interval.omitted ? '  (omitted)' : ''}`,
          );
        }
      },
    });
    if (!human) {
      io.out(JSON.stringify(ndjson ? { type: 'result', ...result } : result, null, ndjson ? 0 : 2));
      return 0;
    }
    const { latency } = result.summary;
    io.out(
      renderTable(
        ['stat', 'min', 'p50', 'p90', 'p99', 'p99.9', 'p99.99', 'max', 'mean', 'stdev'],
        [['latency', ...[latency.minUs, latency.p50Us, latency.p90Us, latency.p99Us, latency.p999Us, latency.p9999Us, latency.maxUs, latency.meanUs, latency.stdevUs].map(formatMicros)]],
      ),
    );
    io.out(`requests   ${result.summary.requests} in ${result.summary.measuredSeconds}s = ${formatCount(result.summary.requestsPerSecond)} req/s (${result.summary.mode})`);
    printFooter(io, result.effective, result.selfCheck, result.warnings, result.summary.serverCpuPercent, Object.keys(bufferSizes(values)).length > 0);
    return 0;
  },
};
