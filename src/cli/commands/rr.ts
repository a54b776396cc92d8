import { formatCount } from '../../bench/results/format.ts';
import type { RrResult } from '../../bench/results/result.ts';
import { runClientCommand } from '../client-command.ts';
import { bufferSizes, runOptions, str } from '../client-settings.ts';
import { COMMON_CLIENT_FLAGS, flagText, type Command, type Values } from '../command.ts';
import { formatLatencyInterval, latencyTable } from '../latency-table.ts';
import { REQUEST_FLAGS, requestSettings } from '../request-settings.ts';
import { MAX_REQUEST_BYTES, parseCount, parseSize } from '../units.ts';
import { SocktuneError } from '../../core/errors.ts';
import { HEADER_BYTES, MAX_MESSAGE_BYTES, pingRequest } from '../../protocols/sockperf/codec.ts';
import { SOCKPERF_DEFAULT_PORT } from '../../bench/servers/sockperf/sockperf-server.ts';

export const rrCommand: Command = {
  name: 'rr',
  summary: 'request/response latency and rate, with HDR percentiles (closed or open loop)',
  usage: 'socktune rr -c HOST [-t 10] [--size 64] [-C 1] [--depth 1] [--rate N] [--json]',
  flags: {
    ...COMMON_CLIENT_FLAGS,
    ...REQUEST_FLAGS,
    connections: { help: 'connections', spec: { type: 'string', short: 'C' }, default: '1' },
    depth: { help: 'requests in flight per connection', spec: { type: 'string' }, default: '1' },
    rate: { help: 'open loop: total requests/s on a fixed schedule, latency from the intended send time', spec: { type: 'string' } },
    sockperf: {
      help: `measure a sockperf server (sockperf sr): ping-pong messages with its 14-byte header, port ${SOCKPERF_DEFAULT_PORT} unless -p`,
      spec: { type: 'boolean' },
    },
  },
  examples: [
    'socktune rr -c 127.0.0.1 -t 5',
    'socktune rr -c 127.0.0.1 -C 10 --depth 4 --size 1K',
    'socktune rr -c 127.0.0.1 --rate 20000 --json',
    'socktune rr --raw -c 127.0.0.1:7000 --size 32 --response-size 32    # any echo-like service',
    'socktune rr --sockperf -c 127.0.0.1 --size 64    # against sockperf sr',
  ],
  async run(values, io) {
    const rate = str(values, 'rate');
    const options = {
      ...(values.sockperf ? sockperfRunOptions(values) : { ...runOptions(values), ...requestSettings(values) }),
      connections: parseCount(flagText(values, rrCommand.flags, 'connections')!, '--connections', 1, 10_000),
      depth: parseCount(flagText(values, rrCommand.flags, 'depth')!, '--depth', 1, 1024),
      rate: rate === undefined ? undefined : parseCount(rate, '--rate', 1, 10_000_000),
    };
    return runClientCommand<RrResult, RrResult['intervals'][number]>(
      {
        run: async (onInterval, interrupt) => (await import('../../bench/engines/rr.ts')).runRr({ ...options, onInterval, interrupt }),
        formatInterval: (interval) => formatLatencyInterval(interval, 'req/s'),
        printSummary: (out, result) => {
          out.out(latencyTable([['latency', result.summary.latency]], out.columns));
          out.out(
            `requests   ${result.summary.requests} in ${result.summary.measuredSeconds}s = ` +
              `${formatCount(result.summary.requestsPerSecond)} req/s (${result.summary.mode})`,
          );
        },
        metric: { name: 'requests/s', of: (result) => result.summary.requestsPerSecond, format: (value) => `${formatCount(value)} req/s` },
        nothingMeasured: (result) =>
          result.summary.requests > 0
            ? undefined
            : `no request was answered in ${result.summary.measuredSeconds} s (is the request size right for the service and the time?)`,
        requestedBuffers: Object.keys(bufferSizes(values)).length > 0,
      },
      values,
      io,
    );
  },
};

/** rr against sockperf sr: a raw peer, each request a sockperf message that asks for its reply. */
function sockperfRunOptions(values: Values): ReturnType<typeof runOptions> & { size: number; payload: Buffer } {
  if (values.raw || values.payload !== undefined || values['response-size'] !== undefined) {
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--sockperf builds its own requests: drop --raw, --payload and --response-size');
  }
  const size = parseSize(str(values, 'size') ?? '64', '--size', MAX_REQUEST_BYTES);
  if (size < HEADER_BYTES || size > MAX_MESSAGE_BYTES) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--size for sockperf is ${HEADER_BYTES} to ${MAX_MESSAGE_BYTES} bytes (its header is ${HEADER_BYTES}), got ${size}`,
    );
  }
  const withPort = { ...values, raw: true, port: str(values, 'port') ?? String(SOCKPERF_DEFAULT_PORT) };
  return { ...runOptions(withPort), size, payload: pingRequest(size) };
}
