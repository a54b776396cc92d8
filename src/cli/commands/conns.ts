import { formatBytes, formatCount } from '../../bench/results/format.ts';
import type { ConnsResult } from '../../bench/results/result.ts';
import { SocktuneError } from '../../core/errors.ts';
import { isIP } from 'node:net';
import { runClientCommand } from '../client-command.ts';
import { bufferSizes, clientSettings, seconds, serverSettings, str, target } from '../client-settings.ts';
import { COMMON_CLIENT_FLAGS, flagText, type Command } from '../command.ts';
import { latencyTable } from '../latency-table.ts';
import { parseCount } from '../units.ts';
import { askedClientThreads, CLIENT_THREADS_FLAGS, clientThreadsFor } from '../client-threads.ts';

/** "127.0.0.2-127.0.0.50" or "127.0.0.2,127.0.0.3" → the IPv4 addresses. */
export function parseSourceAddresses(text: string): string[] {
  const addresses: string[] = [];
  for (const part of text.split(',').map((item) => item.trim())) {
    const [first, last] = part.split('-');
    if (isIP(first ?? '') !== 4 || (last !== undefined && isIP(last) !== 4)) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        `--source-ips takes IPv4 addresses or ranges like 127.0.0.2-127.0.0.50, got ${JSON.stringify(part)}`,
      );
    }
    const toNumber = (ip: string): number => ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
    const start = toNumber(first!);
    const end = last === undefined ? start : toNumber(last);
    if (end < start || end - start > 65_535)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', `--source-ips range ${part} is empty or too large`);
    for (let n = start; n <= end; n++) addresses.push([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'));
  }
  return addresses;
}

/** conns opens and holds: it has no measured seconds, warm-up or intervals of its own. */
const { time: _time, omit: _omit, interval: _interval, ...CONNS_CLIENT_FLAGS } = COMMON_CLIENT_FLAGS;

const HOLD_NOT_TIME = 'conns opens connections, then holds them for --hold SECONDS; -t times the other commands';
const NO_INTERVALS = 'conns reports its progress as it opens; it has no measured intervals';

export const connsCommand: Command = {
  name: 'conns',
  summary: 'open and hold many connections: connect rate, failures by errno, memory per connection',
  usage: 'socktune conns -c HOST [--target N] [--hold SECONDS] [--source-ips 127.0.0.2-127.0.0.50] [--json]',
  flags: {
    ...CONNS_CLIENT_FLAGS,
    target: { help: 'connections to open', spec: { type: 'string' }, default: '1000' },
    hold: { help: 'seconds to hold them open', spec: { type: 'string' }, default: '5' },
    'source-ips': {
      help: 'local addresses to connect from, round-robin: past the ~28k ephemeral ports of one address',
      spec: { type: 'string' },
    },
    concurrency: { help: 'connects in flight at once', spec: { type: 'string' }, default: '128' },
    'open-timeout': { help: 'seconds to spend opening before holding what is open', spec: { type: 'string' }, default: '60' },
    ...CLIENT_THREADS_FLAGS,
  },
  refusals: {
    time: HOLD_NOT_TIME,
    t: HOLD_NOT_TIME,
    omit: 'conns has no warm-up: it opens, then holds (--hold SECONDS)',
    interval: NO_INTERVALS,
    i: NO_INTERVALS,
  },
  examples: [
    'socktune conns -c 127.0.0.1 --target 10000 --hold 30s',
    'socktune conns -c 127.0.0.1 --target 50000 --source-ips 127.0.0.2-127.0.0.3',
    'socktune conns --raw -c 127.0.0.1:6379 --target 2000',
  ],
  async run(values, io) {
    const sourceIps = str(values, 'source-ips');
    const options = {
      target: target(values),
      raw: values.raw === true,
      count: parseCount(flagText(values, connsCommand.flags, 'target')!, '--target', 1, 1_000_000),
      holdSec: seconds(values, 'hold', Number(connsCommand.flags.hold!.default), { zero: true }),
      sourceAddresses: sourceIps === undefined ? [] : parseSourceAddresses(sourceIps),
      concurrency: parseCount(flagText(values, connsCommand.flags, 'concurrency')!, '--concurrency', 1, 10_000),
      openTimeoutSec: seconds(values, 'open-timeout', Number(connsCommand.flags['open-timeout']!.default)),
      client: clientSettings(values),
      server: serverSettings(values),
    };
    const askedThreads = askedClientThreads(values);
    return runClientCommand<ConnsResult, never>(
      {
        run: async (_onInterval, interrupt) =>
          (await import('../../bench/engines/conns.ts')).runConns({
            ...options,
            // Each thread keeps at least one connect in flight: no more threads than --concurrency.
            clientThreads: clientThreadsFor(askedThreads, Math.min(options.count, options.concurrency), io),
            interrupt,
            onProgress: ({ opened, failed, elapsedSec }) => {
              if (values.json !== true && values.ndjson !== true && !values.quiet)
                io.err(`[${elapsedSec.toFixed(1)} s] ${opened} open, ${failed} failed`);
            },
          }),
        formatInterval: () => '',
        printSummary: (out, result) => {
          const { summary } = result;
          out.out(
            `opened     ${summary.opened} of ${summary.target} in ${summary.openSeconds}s = ` +
              `${formatCount(summary.connectsPerSecond)} connects/s; ${summary.stillOpen} still open ` +
              `after ${summary.heldSeconds}s`,
          );
          const failures = Object.entries(summary.failures).map(([errno, count]) => `${errno} ×${count}`);
          out.out(`failed     ${summary.failed}${failures.length > 0 ? ` (${failures.join(', ')})` : ''}`);
          out.out(latencyTable([['connect', summary.connectLatency]], out.columns));
          out.out(
            `memory     client ${formatBytes(summary.client.rssBytesPerConnection)} RSS per connection` +
              (summary.server
                ? `; server ${formatBytes(summary.server.rssBytesPerConnection)} RSS` +
                  (summary.server.heapBytesPerConnection === null ? '' : `, ${formatBytes(summary.server.heapBytesPerConnection)} heap`) +
                  ` per connection (${summary.server.connections} held)`
                : ''),
          );
          out.out(`limits     open files ${summary.openFilesLimit.soft} (hard ${summary.openFilesLimit.hard})`);
        },
        metric: { name: 'connects/s', of: (result) => result.summary.connectsPerSecond, format: (value) => `${formatCount(value)}/s` },
        // No connection opened is the network failing (exit 3), and the failures by errno say why.
        exitCode: (result) => (result.summary.opened === 0 ? 3 : 0),
        nothingMeasured: () => undefined,
        requestedBuffers: Object.keys(bufferSizes(values)).length > 0,
      },
      values,
      io,
    );
  },
};
