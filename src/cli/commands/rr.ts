import { formatCount } from '../../bench/results/format.ts';
import type { RrResult } from '../../bench/results/result.ts';
import { runClientCommand } from '../client-command.ts';
import { bufferSizes, runOptions, seconds, str } from '../client-settings.ts';
import { COMMON_CLIENT_FLAGS, flagText, type Command, type Io, type Values } from '../command.ts';
import { DATAGRAM_HEADER_BYTES, MAX_DATAGRAM_BYTES } from '../../framing/datagram.ts';
import { formatLatencyInterval, latencyTable } from '../latency-table.ts';
import { REQUEST_FLAGS, requestSettings } from '../request-settings.ts';
import { askedClientThreads, CLIENT_THREADS_FLAGS, clientThreadsFor } from '../client-threads.ts';
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
    ...CLIENT_THREADS_FLAGS,
    connections: { help: 'connections', spec: { type: 'string', short: 'C' }, default: '1' },
    depth: { help: 'requests in flight per connection', spec: { type: 'string' }, default: '1' },
    rate: { help: 'open loop: total requests/s on a fixed schedule, latency from the intended send time', spec: { type: 'string' } },
    sockperf: {
      help: `measure a sockperf server (sockperf sr): ping-pong messages with its 14-byte header, port ${SOCKPERF_DEFAULT_PORT} unless -p`,
      spec: { type: 'boolean' },
    },
    udp: {
      help:
        'UDP ping-pong, as sockperf over UDP: each of -C sockets keeps --depth requests of --size bytes in flight; ' +
        'one unanswered within --reply-timeout is counted lost and replaced',
      spec: { type: 'boolean', short: 'u' },
    },
    'reply-timeout': {
      help: 'with -u: seconds after which an unanswered request counts as lost',
      spec: { type: 'string' },
      default: '1',
      value: '<seconds>',
    },
  },
  examples: [
    'socktune rr -c 127.0.0.1 -t 5',
    'socktune rr -c 127.0.0.1 -C 10 --depth 4 --size 1K',
    'socktune rr -c 127.0.0.1 --rate 20000 --json',
    'socktune rr --raw -c 127.0.0.1:7000 --size 32 --response-size 32    # any echo-like service',
    'socktune rr --sockperf -c 127.0.0.1 --size 64    # against sockperf sr',
    'socktune rr -u -c 127.0.0.1 -C 4 --depth 8    # UDP ping-pong; lost requests counted, never waited for',
    'socktune rr -u --sockperf -c 127.0.0.1    # against sockperf sr over UDP (its default)',
  ],
  async run(values, io) {
    if (values.udp) return runUdpRr(values, io);
    if (values['reply-timeout'] !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--reply-timeout goes with -u (TCP loses nothing)');
    const rate = str(values, 'rate');
    const options = {
      ...(values.sockperf ? sockperfRunOptions(values) : { ...runOptions(values), ...requestSettings(values) }),
      connections: parseCount(flagText(values, rrCommand.flags, 'connections')!, '--connections', 1, 10_000),
      depth: parseCount(flagText(values, rrCommand.flags, 'depth')!, '--depth', 1, 1024),
      rate: rate === undefined ? undefined : parseCount(rate, '--rate', 1, 10_000_000),
    };
    const askedThreads = askedClientThreads(values);
    return runClientCommand<RrResult, RrResult['intervals'][number]>(
      {
        startsWhenReady: true,
        run: async (onInterval, interrupt, beforeTraffic) => {
          const run = { ...options, onInterval, interrupt, beforeTraffic };
          const threads = clientThreadsFor(askedThreads, options.connections, io);
          if (threads === 1) return (await import('../../bench/engines/rr.ts')).runRr(run);
          return (await import('../../bench/engines/client-threads.ts')).runOnClientThreads({ command: 'rr', options: run }, threads);
        },
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

/** What rr -u does not take (yet): they are TCP's. */
const NOT_WITH_UDP: readonly [string, string][] = [
  ['payload', '--payload'],
  ['response-size', '--response-size'],
  ['rate', '--rate'],
  ['unix', '--unix'],
  ['client-threads', '--client-threads'],
];

async function runUdpRr(values: Values, io: Io): Promise<number> {
  const refused = NOT_WITH_UDP.filter(([flag]) => values[flag] !== undefined).map(([, name]) => name);
  if (values.raw && !values.sockperf) refused.unshift('--raw (UDP peers: a socktune server, or --sockperf)');
  if (refused.length > 0) throw new SocktuneError('SOCKTUNE_ERR_USAGE', `rr -u does not take ${refused.join(', ')} yet`);
  const minimum = values.sockperf ? HEADER_BYTES : DATAGRAM_HEADER_BYTES;
  const size = parseSize(str(values, 'size') ?? '64', '--size', MAX_DATAGRAM_BYTES);
  if (size < minimum)
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--size for rr -u is ${minimum} to ${MAX_DATAGRAM_BYTES} bytes (its header is ${minimum})`,
    );
  const run = runOptions(values.sockperf ? { ...values, raw: true, port: str(values, 'port') ?? String(SOCKPERF_DEFAULT_PORT) } : values);
  const options = {
    peer: values.sockperf ? { sockperf: { host: run.target.host, port: run.target.port } } : { target: run.target, server: run.server },
    durationSec: run.durationSec,
    omitSec: run.omitSec,
    intervalSec: run.intervalSec,
    size,
    connections: parseCount(flagText(values, rrCommand.flags, 'connections')!, '--connections', 1, 1024),
    depth: parseCount(flagText(values, rrCommand.flags, 'depth')!, '--depth', 1, 1024),
    replyTimeoutMs: seconds(values, 'reply-timeout', 1) * 1000,
    client: run.client,
  };
  return runClientCommand<RrResult, RrResult['intervals'][number]>(
    {
      run: async (onInterval, interrupt) => (await import('../../bench/engines/udp-rr.ts')).runUdpRr({ ...options, onInterval, interrupt }),
      formatInterval: (interval) => formatLatencyInterval(interval, 'req/s'),
      printSummary: (out, result) => {
        const { summary } = result;
        const udp = summary.udp!;
        out.out(latencyTable([['latency', summary.latency]], out.columns));
        out.out(
          `requests   ${summary.requests} in ${summary.measuredSeconds}s = ${formatCount(summary.requestsPerSecond)} req/s ` +
            `(closed loop); ${summary.sentRequests} sent in all`,
        );
        out.out(
          `lost       ${udp.lost} (${udp.lostPercent}%) unanswered within ${udp.replyTimeoutMs / 1000} s` +
            (udp.late > 0 ? `; ${udp.late} answered later` : '') +
            (udp.serverReceived === null ? '' : `; the server received ${udp.serverReceived} and replied to ${udp.serverReplied}`),
        );
        const drops = [
          (udp.serverReceiveBufferDrops ?? 0) > 0 ? `the server's socket ${udp.serverReceiveBufferDrops} requests` : '',
          (udp.receiveBufferDrops ?? 0) > 0 ? `this client's sockets ${udp.receiveBufferDrops} replies` : '',
        ].filter(Boolean);
        if (drops.length > 0) out.out(`dropped    by a full receive buffer: ${drops.join(', ')} (raise --rcvbuf)`);
      },
      metric: { name: 'requests/s', of: (result) => result.summary.requestsPerSecond, format: (value) => `${formatCount(value)} req/s` },
      nothingMeasured: (result) =>
        result.summary.requests > 0 ? undefined : `no request was answered in ${result.summary.measuredSeconds} s`,
      requestedBuffers: Object.keys(bufferSizes(values)).length > 0,
      udp: true,
      serverSocketPerThread: (run.server.ioModel ?? 'loop') !== 'loop',
    },
    values,
    io,
  );
}
