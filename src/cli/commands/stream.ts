import { MAX_SEGMENTS } from '../../transport/udp/udp-batching.ts';
import { SocktuneError } from '../../core/errors.ts';
import { formatBytes, formatRate, RATE_FORMATS, type RateFormat } from '../../bench/results/format.ts';
import type { StreamInterval, StreamResult, UdpSummary } from '../../bench/results/result.ts';
import { DATAGRAM_HEADER_BYTES, MAX_DATAGRAM_BYTES } from '../../framing/datagram.ts';
import type { StreamOptions } from '../../bench/engines/stream.ts';
import type { Iperf3ClientOptions } from '../../bench/engines/iperf3-client-streams.ts';
import { IPERF3_DEFAULT_PORT } from '../../bench/servers/iperf3/iperf3-server.ts';
import { MAX_UDP_BLOCK, MIN_UDP_BLOCK } from '../../protocols/iperf3/datagram.ts';
import { runClientCommand } from '../client-command.ts';
import { bufferSizes, runOptions, str } from '../client-settings.ts';
import { COMMON_CLIENT_FLAGS, flagText, type Command, type Io, type Values } from '../command.ts';
import { renderTable } from '../table.ts';
import { MAX_REQUEST_BYTES, parseBitRate, parseCount, parseSize } from '../units.ts';

function verifyFailed(result: StreamResult): boolean {
  const verify = result.summary.verify;
  return verify !== null && verify.bytesCorrupted + verify.bytesLost > 0;
}

export const streamCommand: Command = {
  name: 'stream',
  summary: 'bulk throughput, like iperf3: bytes and Gbit/s, retransmits, effective buffers',
  usage: 'socktune stream -c HOST [-t 10] [-l 128K] [-P 1] [-R | --bidir] [-w SIZE] [--verify] [--json]',
  flags: {
    ...COMMON_CLIENT_FLAGS,
    length: { help: 'bytes per write', spec: { type: 'string', short: 'l' }, default: '128K' },
    parallel: { help: 'parallel connections', spec: { type: 'string', short: 'P' }, default: '1' },
    reverse: { help: 'the server sends, the client receives', spec: { type: 'boolean', short: 'R' } },
    bidir: { help: 'both directions at once', spec: { type: 'boolean' } },
    udp: {
      help:
        'UDP, as iperf3 -u: datagrams of -l bytes (default 1460) at -b per stream (default 1M; 0: as fast as ' +
        'the socket takes them), -R for the server to send; the receiver counts loss, reordering, jitter and ' +
        'its receive-buffer drops',
      spec: { type: 'boolean', short: 'u' },
    },
    'no-batch': {
      help:
        'with -u: one datagram per system call at the sender, as iperf3 sends (by default several, cut by the kernel: ' +
        'UDP GSO, where it has it); the same as --batch 1',
      spec: { type: 'boolean' },
    },
    batch: {
      help:
        "with -u: at most this many datagrams per system call at the sender, 1 to 64 (default 64, the kernel's most; " +
        'a paced stream sends at most a millisecond of its traffic at once): larger bursts need larger receive buffers',
      spec: { type: 'string' },
      value: '<n>',
    },
    bitrate: {
      help:
        'send at most this many bits/s on each connection, as iperf3 -b (with a socktune server over TCP, ' +
        'what this client sends; with -u or --iperf3, whichever end sends)',
      spec: { type: 'string', short: 'b' },
    },
    format: {
      help: 'unit of every rate: k m g t for Kbit/s to Tbit/s, K M G T for KiB/s to TiB/s, as iperf3 -f (default: the unit that fits)',
      spec: { type: 'string', short: 'f' },
    },
    cport: {
      help: 'connect data connection i from local port N+i, as iperf3 --cport (a firewall that allows only known source ports)',
      spec: { type: 'string' },
    },
    bytes: { help: '--iperf3 only: end after this many bytes instead of -t (iperf3 -n), e.g. 500M', spec: { type: 'string', short: 'n' } },
    iperf3: {
      help:
        `test against a stock iperf3 server (iperf3 -s), port ${IPERF3_DEFAULT_PORT} unless -p; ` +
        'byte counts come from the iperf3 server itself',
      spec: { type: 'boolean' },
    },
    zerocopy: {
      help:
        'send with sendfile from a page-cache file of the test pattern, as iperf3 -Z: no copy through this client, ' +
        "on threads of their own (TCP, this client's sends: forward or --bidir); --verify still checks every byte",
      spec: { type: 'boolean', short: 'Z' },
    },
    verify: {
      help:
        'check every received byte against the test pattern (forward: at the server; -R/--bidir: ' +
        'server→client here); exit 4 on a mismatch',
      spec: { type: 'boolean' },
    },
  },
  examples: [
    'socktune stream -c 127.0.0.1 -t 5',
    'socktune stream -c 127.0.0.1 -R -P 4 -w 256K --verify',
    'socktune stream -c 127.0.0.1 --io-model workers --json > stream.json',
    'socktune stream --raw -c 127.0.0.1:9000 -t 5    # any sink (discard-like) service',
    'socktune stream --iperf3 -c 127.0.0.1 -R -P 4    # against iperf3 -s',
    'socktune stream -c 198.18.0.2 -P 2 -b 100M -f m --cport 5300    # iperf3 habits: paced, in Mbit/s, from ports 5300-5301',
    'socktune stream -c 127.0.0.1 -Z -P 2    # zero-copy sends (sendfile): the client costs less than the server',
    'socktune stream -u -c 127.0.0.1 -b 500M --rcvbuf 4M    # UDP: loss and jitter, and whether the receive buffer dropped them',
  ],
  async run(values, io) {
    if (values.udp) return runUdp(values, io);
    for (const flag of ['no-batch', 'batch'])
      if (values[flag] !== undefined)
        throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--${flag} goes with -u (TCP has no datagrams to batch)`);
    const direction = values.bidir ? 'bidir' : values.reverse ? 'reverse' : 'forward';
    if (values.iperf3 && (values.raw || values.verify || values.unix !== undefined)) {
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', "--iperf3 speaks iperf3's own protocol over TCP: drop --raw, --verify and --unix");
    }
    if (values.zerocopy && (values.iperf3 || direction === 'reverse'))
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        values.iperf3
          ? '-Z goes with a socktune server or --raw: against iperf3 -s this client writes from a buffer'
          : '-Z makes what this client sends zero-copy; with -R the server sends: drop -Z, or use --bidir',
      );
    if (values.bytes !== undefined && !values.iperf3)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', "-n/--bytes goes with --iperf3 (socktune's own tests are timed: -t)");
    if (values.raw && values.verify)
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        "--verify needs a socktune server on the other end (it checks socktune's test pattern); drop --raw or --verify",
      );
    const run = runOptions(values);
    const parallel = parseCount(flagText(values, streamCommand.flags, 'parallel')!, '--parallel', 1, 128);
    const localPort = firstLocalPort(values, values.iperf3 && direction === 'bidir' ? 2 * parallel : parallel);
    const bitrateText = str(values, 'bitrate');
    const bitrate = bitrateText === undefined ? undefined : parseBitRate(bitrateText, '--bitrate');
    if (bitrate !== undefined && direction === 'reverse' && !values.iperf3)
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        '-b paces what this client sends; with -R the socktune server sends: start it with --max-rate, or use --bidir to pace this side',
      );
    const rateFormat = formatOf(values);
    const options = {
      ...run,
      client: localPort === undefined ? run.client : { ...run.client, localPort },
      writeSize: parseSize(flagText(values, streamCommand.flags, 'length')!, '--length', MAX_REQUEST_BYTES),
      parallel,
      direction,
      verify: values.verify === true,
      bitrate,
      zeroCopy: values.zerocopy === true,
    } as const;
    return runClientCommand<StreamResult, StreamResult['intervals'][number]>(
      {
        // iperf3's server sets its test up in its own time: that run starts once the barrier's instant has passed.
        startsWhenReady: values.iperf3 !== true,
        run: async (onInterval, interrupt, beforeTraffic) =>
          values.iperf3
            ? (await import('../../bench/engines/iperf3.ts')).runIperf3Stream({
                ...iperf3Options(values, options, onInterval),
                interrupt,
              })
            : (await import('../../bench/engines/stream.ts')).runStream({ ...options, onInterval, interrupt, beforeTraffic }),
        formatInterval: (interval) => formatStreamInterval(interval, direction, rateFormat),
        printSummary: (out, result) => {
          const { summary } = result;
          const side = (entry: { bytes: number; side: string } | null): [string, string] =>
            entry ? [entry.side, formatBytes(entry.bytes)] : ['raw peer', 'n/a'];
          const rows = [
            [
              'sender',
              ...side(summary.sender),
              formatRate(summary.bitsPerSecond, rateFormat),
              summary.retransmits === null ? 'n/a' : String(summary.retransmits),
            ],
            ['receiver', ...side(summary.receiver), '', ''],
          ];
          if (summary.reverseBytes) rows.push(['server→client', 'client', formatBytes(summary.reverseBytes.received), '', '']);
          // -O: the counts are the whole test's, the rate the measured seconds' (the server counts no warm-up apart).
          const bytes = result.options.omitSec > 0 ? `bytes (with ${result.options.omitSec}s warm-up)` : 'bytes';
          out.out(renderTable(['', 'side', bytes, `rate (${summary.measuredSeconds}s measured)`, 'retransmits'], rows, out.columns));
          if (summary.verify) {
            // --bidir checks one direction, as -R does: say which.
            const checked = summary.direction === 'forward' ? '' : ' (server→client)';
            out.out(
              `verify     ${formatBytes(summary.verify.bytesChecked)} checked${checked}, ` +
                `${summary.verify.bytesCorrupted} bytes corrupted, ${summary.verify.bytesLost} bytes lost`,
            );
          }
          if (result.options.sender === 'sendfile') out.out('sender     sendfile from the page cache on threads (-Z)');
        },
        metric: { name: 'throughput', of: (result) => result.summary.bitsPerSecond, format: (bits) => formatRate(bits, rateFormat) },
        exitCode: (result) => (verifyFailed(result) ? 4 : 0),
        nothingMeasured: (result) =>
          result.summary.bitsPerSecond > 0 ? undefined : `no byte was received in ${result.summary.measuredSeconds} s`,
        requestedBuffers: Object.keys(bufferSizes(values)).length > 0,
      },
      values,
      io,
    );
  },
};

/** -c and -p for a stock iperf3 server: its own port unless -p. */
function iperf3Target(values: Values): { host: string; port: number } {
  const port = str(values, 'port');
  return {
    host: str(values, 'client') ?? '127.0.0.1',
    port: port === undefined ? IPERF3_DEFAULT_PORT : parseCount(port, '--port', 1, 65535),
  };
}

function iperf3Options(values: Values, options: StreamOptions, onInterval: (interval: StreamInterval) => void): Iperf3ClientOptions {
  return {
    ...iperf3Target(values),
    durationSec: options.durationSec,
    bytes: values.bytes === undefined ? undefined : parseSize(str(values, 'bytes')!, '--bytes'),
    omitSec: options.omitSec,
    writeSize: options.writeSize,
    parallel: options.parallel,
    direction: options.direction,
    window: options.client.receiveBufferSize ?? options.client.sendBufferSize,
    noDelay: values.nagle !== true && values['no-delay'] === true,
    localPort: options.client.localPort,
    bitrate: options.bitrate,
    intervalSec: options.intervalSec,
    onInterval,
  };
}

/**
 * `[  1] 0.00-1.00 s  2.71 GB  23.3 Gbit/s  retr 0  cwnd 3.9 MB  rtt 35 µs`, a line per connection and a [SUM] line with -P, as
 * iperf3 prints them; an interval without streams is one line, labelled `totalLabel` (UDP: `sent` or `received`).
 */
export function formatStreamInterval(
  interval: StreamInterval,
  direction: 'forward' | 'reverse' | 'bidir',
  rateFormat?: RateFormat,
  totalLabel = 'SUM',
): string {
  const when = `${interval.startSec.toFixed(2)}-${interval.endSec.toFixed(2)} s`;
  const bytesOf = (entry: { sentBytes: number; receivedBytes: number }): number =>
    direction === 'reverse' ? entry.receivedBytes : entry.sentBytes;
  const tcp = (entry: { retransmits?: number | null; snd_cwnd?: number | null; rtt?: number | null }): string =>
    [
      entry.retransmits === null || entry.retransmits === undefined ? '' : `  retr ${entry.retransmits}`,
      entry.snd_cwnd === null || entry.snd_cwnd === undefined ? '' : `  cwnd ${formatBytes(entry.snd_cwnd)}`,
      entry.rtt === null || entry.rtt === undefined ? '' : `  rtt ${entry.rtt} µs`,
    ].join('');
  const omitted = interval.omitted ? '  (omitted)' : '';
  const line = (label: string, bytes: number, bitsPerSecond: number, extra: string): string =>
    `[${label}] ${when} ${formatBytes(bytes).padStart(10)}  ${formatRate(bitsPerSecond, rateFormat).padStart(13)}${extra}${omitted}`;
  const streams = interval.streams ?? [];
  if (streams.length <= 1) {
    return line(
      streams.length === 1 ? '  1' : totalLabel,
      bytesOf(interval),
      interval.bitsPerSecond,
      tcp(streams[0] ?? { retransmits: interval.retransmits ?? null }),
    );
  }
  return [
    ...streams.map((stream) => line(String(stream.socket).padStart(3), bytesOf(stream), stream.bitsPerSecond, tcp(stream))),
    line('SUM', bytesOf(interval), interval.bitsPerSecond, tcp({ retransmits: interval.retransmits ?? null })),
  ].join('\n');
}

/** --cport: the first data connection's local port, so that every one of `connections` has a port. */
function firstLocalPort(values: Values, connections: number): number | undefined {
  const text = str(values, 'cport');
  if (text === undefined) return undefined;
  if (values.unix !== undefined) throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--cport is a TCP port: drop it with --unix');
  return parseCount(text, '--cport', 1, 65536 - connections);
}

/** -f: one of iperf3's unit letters. */
function formatOf(values: Values): RateFormat | undefined {
  const text = str(values, 'format');
  if (text === undefined) return undefined;
  if (!(RATE_FORMATS as readonly string[]).includes(text))
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--format takes one of ${RATE_FORMATS.join(' ')} (as iperf3 -f), got ${JSON.stringify(text)}`,
    );
  return text as RateFormat;
}

/** Flags stream -u does not take yet; the second list only against a stock iperf3 server. */
const NOT_WITH_UDP: readonly [string, string][] = [
  ['bidir', '--bidir'],
  ['raw', '--raw'],
  ['verify', '--verify'],
  ['unix', '--unix'],
  ['bytes', '-n'],
  ['zerocopy', '-Z'],
];
const UDP_IPERF3_ONLY: readonly [string, string][] = [
  ['omit', '--omit'],
  ['cport', '--cport'],
];

async function runUdp(values: Values, io: Io): Promise<number> {
  const given = (flags: readonly [string, string][]): string[] =>
    flags.filter(([flag]) => values[flag] !== undefined && values[flag] !== false).map(([, name]) => name);
  const refused = [...given(NOT_WITH_UDP), ...(values.iperf3 ? [] : given(UDP_IPERF3_ONLY))];
  if (refused.length > 0)
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      'stream -u sends datagrams between this client and a socktune server or, with --iperf3, a stock iperf3 server ' +
        `(-R: the server sends); it does not take ${refused.join(', ')} ${given(UDP_IPERF3_ONLY).length > 0 ? 'without --iperf3' : 'yet'}`,
    );
  const run = runOptions(values);
  if (values.reverse === true && !values.iperf3 && (run.server.ioModel ?? 'loop') !== 'loop')
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `stream -u -R runs in the server's loop model (it sends with UDP GSO from its event loop): drop --io-model ${run.server.ioModel}`,
    );
  const headerBytes = values.iperf3 ? MIN_UDP_BLOCK : DATAGRAM_HEADER_BYTES;
  const maxBytes = values.iperf3 ? MAX_UDP_BLOCK : MAX_DATAGRAM_BYTES;
  const lengthText = str(values, 'length');
  const datagramBytes = lengthText === undefined ? 1460 : parseSize(lengthText, '--length', maxBytes);
  if (datagramBytes < headerBytes)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `-l for UDP is ${headerBytes} to ${maxBytes} bytes (its header is ${headerBytes})`);
  const bitrateText = str(values, 'bitrate') ?? '1M';
  const bitsPerSecond = bitrateText === '0' ? 0 : parseBitRate(bitrateText, '--bitrate');
  const rateFormat = formatOf(values);
  const direction: 'forward' | 'reverse' = values.reverse === true ? 'reverse' : 'forward';
  const parallel = parseCount(flagText(values, streamCommand.flags, 'parallel')!, '--parallel', 1, 128);
  const options = {
    target: run.target,
    durationSec: run.durationSec,
    intervalSec: run.intervalSec,
    direction,
    datagramBytes,
    bitsPerSecond,
    parallel,
    batch: senderBatch(values),
    client: run.client,
    server: run.server,
  };
  const iperf3 = values.iperf3
    ? {
        ...iperf3Target(values),
        protocol: 'udp' as const,
        durationSec: run.durationSec,
        omitSec: run.omitSec,
        writeSize: datagramBytes,
        parallel,
        direction,
        window: run.client.receiveBufferSize ?? run.client.sendBufferSize,
        noDelay: false,
        bitrate: bitsPerSecond,
        localPort: firstLocalPort(values, parallel),
        intervalSec: run.intervalSec,
        batch: senderBatch(values),
      }
    : undefined;
  return runClientCommand<StreamResult, StreamInterval>(
    {
      run: async (onInterval, interrupt) =>
        iperf3 === undefined
          ? (await import('../../bench/engines/udp-stream.ts')).runUdpStream({ ...options, onInterval, interrupt })
          : (await import('../../bench/engines/iperf3.ts')).runIperf3Stream({ ...iperf3, onInterval, interrupt }),
      // UDP's intervals are one side's count: the line says which.
      formatInterval: (interval) => formatStreamInterval(interval, direction, rateFormat, direction === 'reverse' ? 'received' : 'sent'),
      printSummary: (out, result) => {
        const udp = result.summary.udp!;
        const sentRate = ((result.summary.sender?.bytes ?? 0) * 8) / result.summary.measuredSeconds;
        out.out(
          renderTable(
            ['', 'datagrams', 'bytes', `rate (${result.summary.measuredSeconds}s measured)`],
            [
              ['sent', String(udp.sent), formatBytes(result.summary.sender?.bytes ?? 0), formatRate(sentRate, rateFormat)],
              [
                'received',
                String(udp.received),
                formatBytes(result.summary.receiver?.bytes ?? 0),
                formatRate(result.summary.bitsPerSecond, rateFormat),
              ],
            ],
            out.columns,
          ),
        );
        const receiver = direction === 'reverse' ? result.effective.client : result.effective.server;
        const receiving = direction === 'reverse' ? 'client' : iperf3 === undefined ? 'server' : 'iperf3 server';
        const asked = { bitsPerSecond: bitsPerSecond * parallel, receiveBufferSize: bufferSizes(values).receiveBufferSize };
        out.out(`lost       ${describeUdpLoss(udp, receiver?.receiveBufferSize, receiving, asked)}`);
        if (bitsPerSecond > 0 && sentRate < 0.9 * asked.bitsPerSecond)
          out.out(
            `sender     sent ${formatRate(sentRate, rateFormat)} of the ${formatRate(asked.bitsPerSecond, rateFormat)} asked ` +
              '(-b × -P): the sending host did not keep up',
          );
        const order = udp.outOfOrder === null ? '' : `, ${udp.outOfOrder} out of order, ${udp.duplicates ?? 0} duplicated`;
        out.out(`jitter     ${udp.jitterUs.toFixed(3)} µs${order}`);
        out.out(`batching   ${describeBatching(udp)}`);
      },
      metric: { name: 'throughput', of: (result) => result.summary.bitsPerSecond, format: (bits) => formatRate(bits, rateFormat) },
      nothingMeasured: (result) =>
        result.summary.udp!.received > 0 ? undefined : `no datagram arrived in ${result.summary.measuredSeconds} s`,
      requestedBuffers: Object.keys(bufferSizes(values)).length > 0,
      udp: true,
      serverSocketPerThread: (run.server.ioModel ?? 'loop') !== 'loop',
    },
    values,
    io,
  );
}

/** "44 datagrams per send (UDP GSO), 44 per receive (UDP GRO)": what the system calls carried, as measured. */
function describeBatching(udp: UdpSummary): string {
  const side = (perCall: number | null, call: string, kernel: string): string =>
    perCall === null ? `${call}s not counted` : perCall > 1 ? `${perCall} datagrams per ${call} (${kernel})` : `one datagram per ${call}`;
  return `${side(udp.datagramsPerSend, 'send', 'UDP GSO')}, ${side(udp.datagramsPerReceive, 'receive', 'UDP GRO')}`;
}

/** "3 of 1000 (0.3%): 3 dropped by the server's receive buffer (SO_RCVBUF 208 KiB): raise --rcvbuf", or where else they went. */
function describeUdpLoss(
  udp: UdpSummary,
  receiveBufferSize: number | undefined,
  receiver: 'client' | 'server' | 'iperf3 server',
  asked: { bitsPerSecond: number; receiveBufferSize?: number | undefined },
): string {
  const head = `${udp.lost} of ${udp.sent} (${udp.lostPercent}%)`;
  if (udp.lost === 0) return head;
  if (udp.receiveBufferDrops === null)
    return receiver === 'iperf3 server'
      ? `${head}: an iperf3 server does not say why (socktune server --iperf3 logs its port's receive-buffer drops)`
      : `${head}: the ${receiver} could not read its socket's drop counter`;
  const buffer = receiveBufferSize === undefined ? '' : ` (SO_RCVBUF ${formatBytes(receiveBufferSize)})`;
  // The kernel counts a drop per packet it threw away: one that arrived coalesced (UDP GRO) held a whole segmented send.
  const coalesced = udp.datagramsPerReceive !== null && udp.datagramsPerReceive > 1;
  const perDrop = coalesced ? Math.max(1, Math.round(udp.datagramsPerSend ?? udp.datagramsPerReceive!)) : 1;
  const dropped = Math.min(udp.lost, udp.receiveBufferDrops * perDrop);
  const elsewhere = udp.lost - dropped;
  const packets =
    perDrop > 1 ? ` (an estimate: the socket dropped ${udp.receiveBufferDrops} packets, each up to ${perDrop} coalesced datagrams)` : '';
  const capped =
    asked.receiveBufferSize !== undefined && receiveBufferSize !== undefined && receiveBufferSize < 2 * asked.receiveBufferSize;
  const advice =
    dropped === 0
      ? ''
      : asked.bitsPerSecond === 0
        ? ': at -b 0 the sender outruns the receiver whatever its buffer; give -b the rate to test'
        : capped
          ? `: the kernel capped the buffer (net.core.rmem_max): sysctl -w net.core.rmem_max=${asked.receiveBufferSize}`
          : ': raise --rcvbuf (or -w)';
  return (
    `${head}: ${dropped} dropped by the ${receiver}'s receive buffer${buffer}${packets}${advice}` +
    (elsewhere > 0 ? `; ${elsewhere} lost on the way (the network or the sender's host)` : '')
  );
}

/** --batch N, or 1 for --no-batch; undefined: the sender's own most (64). */
function senderBatch(values: Values): number | undefined {
  const text = str(values, 'batch');
  if (values['no-batch'] === true) {
    if (text !== undefined) throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--no-batch is --batch 1: give one of them');
    return 1;
  }
  return text === undefined ? undefined : parseCount(text, '--batch', 1, MAX_SEGMENTS);
}
