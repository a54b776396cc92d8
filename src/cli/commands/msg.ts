import { askedClientThreads, CLIENT_THREADS_FLAGS, clientThreadsFor } from '../client-threads.ts';
import { SocktuneError } from '../../core/errors.ts';
import { formatBits, formatCount, formatMicros } from '../../bench/results/format.ts';
import type { MsgResult } from '../../bench/results/result.ts';
import { runClientCommand } from '../client-command.ts';
import { bufferSizes, runOptions } from '../client-settings.ts';
import { COMMON_CLIENT_FLAGS, flagText, type Command } from '../command.ts';
import { latencyTable } from '../latency-table.ts';
import { parseCount, parseSize } from '../units.ts';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../../framing/length-prefix.ts';

export const msgCommand: Command = {
  name: 'msg',
  summary: 'small length-prefixed messages through the coalescing fast path: messages/s, one way or echoed',
  usage: 'socktune msg -c HOST [--size 64] [--one-way | --echo] [-C 1] [--batch auto|N] [--depth 64] [--json]',
  flags: {
    ...COMMON_CLIENT_FLAGS,
    size: { help: 'payload bytes per message; a 4-byte length prefix is added', spec: { type: 'string' }, default: '64' },
    'one-way': { help: 'send as fast as the server takes (the default)', spec: { type: 'boolean' } },
    echo: { help: 'the server sends every message back: messages/s and latency', spec: { type: 'boolean' } },
    connections: { help: 'connections', spec: { type: 'string', short: 'C' }, default: '1' },
    batch: { help: "coalescing: 'auto' (one write per tick) or N messages per write", spec: { type: 'string' }, default: 'auto' },
    depth: { help: '--echo: messages in flight per connection', spec: { type: 'string' }, default: '64' },
    ...CLIENT_THREADS_FLAGS,
  },
  examples: [
    'socktune msg -c 127.0.0.1 --size 64 -t 5',
    'socktune msg -c 127.0.0.1 --echo -C 4 --depth 32',
    'socktune msg -c 127.0.0.1 --batch 1    # no coalescing: one write per message, for comparison',
    'socktune msg --raw -c 127.0.0.1:9000 --echo    # any server speaking u32 length-prefixed frames',
  ],
  async run(values, io) {
    if (values['one-way'] && values.echo) throw new SocktuneError('SOCKTUNE_ERR_USAGE', 'choose one of --one-way and --echo');
    if (values['io-model'] === 'io-uring') {
      throw new SocktuneError(
        'SOCKTUNE_ERR_USAGE',
        '--io-model io-uring serves bytes (stream, rr, crr, conns), not length-prefixed messages: ' +
          'use loop, workers or thread-per-conn for msg',
      );
    }
    const batchText = flagText(values, msgCommand.flags, 'batch')!;
    const mode = values.echo ? 'echo' : 'one-way';
    const options = {
      ...runOptions(values),
      size: parseSize(flagText(values, msgCommand.flags, 'size')!, '--size', DEFAULT_MAX_MESSAGE_SIZE),
      connections: parseCount(flagText(values, msgCommand.flags, 'connections')!, '--connections', 1, 10_000),
      mode,
      batch: batchText === 'auto' ? 'auto' : parseCount(batchText, '--batch', 1, 1_000_000),
      depth: parseCount(flagText(values, msgCommand.flags, 'depth')!, '--depth', 1, 100_000),
    } as const;
    const askedThreads = askedClientThreads(values);
    return runClientCommand<MsgResult, MsgResult['intervals'][number]>(
      {
        startsWhenReady: true,
        run: async (onInterval, interrupt, beforeTraffic) => {
          const run = { ...options, onInterval, interrupt, beforeTraffic };
          const threads = clientThreadsFor(askedThreads, options.connections, io);
          if (threads === 1) return (await import('../../bench/engines/msg.ts')).runMsg(run);
          return (await import('../../bench/engines/client-threads.ts')).runOnClientThreads({ command: 'msg', options: run }, threads);
        },
        formatInterval: (interval) =>
          `[${interval.startSec.toFixed(2)}-${interval.endSec.toFixed(2)} s] ` +
          `${formatCount(interval.messagesPerSecond).padStart(9)} msg/s  ` +
          `${formatBits(interval.bitsPerSecond).padStart(13)}` +
          (interval.p99Us === undefined ? '' : `  p50 ${formatMicros(interval.p50Us!)}  p99 ${formatMicros(interval.p99Us)}`) +
          (interval.omitted ? '  (omitted)' : ''),
        printSummary: (out, result) => {
          const { summary } = result;
          if (summary.latency) out.out(latencyTable([['latency', summary.latency]], out.columns));
          out.out(
            `messages   ${formatCount(summary.messagesPerSecond)} msg/s ` +
              `(${formatBits(summary.bitsPerSecond)} on the wire) over ${summary.measuredSeconds}s, ` +
              `${mode}`,
          );
          out.out(
            `delivery   ${summary.messagesSent} sent` +
              (summary.messagesReceivedByServer === null ? '' : `, ${summary.messagesReceivedByServer} received by the server`) +
              `, ${summary.unsent} unsent; ${summary.averageBatch} messages per write`,
          );
        },
        metric: { name: 'messages/s', of: (result) => result.summary.messagesPerSecond, format: (value) => `${formatCount(value)} msg/s` },
        nothingMeasured: (result) =>
          result.summary.messagesPerSecond > 0
            ? undefined
            : `no message ${mode === 'echo' ? 'was echoed' : 'was sent'} in ${result.summary.measuredSeconds} s`,
        exitCode: (result) =>
          result.summary.messagesReceivedByServer !== null &&
          mode === 'one-way' &&
          result.summary.messagesReceivedByServer !== result.summary.messagesSent
            ? 4
            : 0,
        requestedBuffers: Object.keys(bufferSizes(values)).length > 0,
      },
      values,
      io,
    );
  },
};
