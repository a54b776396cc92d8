import { formatCount } from '../../bench/results/format.ts';
import type { CrrResult } from '../../bench/results/result.ts';
import { runClientCommand } from '../client-command.ts';
import { bufferSizes, runOptions } from '../client-settings.ts';
import { COMMON_CLIENT_FLAGS, flagText, type Command } from '../command.ts';
import { formatLatencyInterval, latencyTable } from '../latency-table.ts';
import { REQUEST_FLAGS, requestSettings } from '../request-settings.ts';
import { askedClientThreads, CLIENT_THREADS_FLAGS, clientThreadsFor } from '../client-threads.ts';
import { parseCount } from '../units.ts';

export const crrCommand: Command = {
  name: 'crr',
  summary: 'connect/request/response/close rate and latency, like netperf TCP_CRR',
  usage: 'socktune crr -c HOST [-t 10] [--size 64] [-C 1] [--json]',
  flags: {
    ...COMMON_CLIENT_FLAGS,
    ...REQUEST_FLAGS,
    ...CLIENT_THREADS_FLAGS,
    concurrency: { help: 'transactions in flight at once, each on its own connection', spec: { type: 'string', short: 'C' }, default: '1' },
  },
  examples: [
    'socktune crr -c 127.0.0.1 -t 5',
    'socktune crr -c 127.0.0.1 -C 8 --io-model workers',
    'socktune crr --raw -c 127.0.0.1:8080 --payload req.txt --response-size 200',
  ],
  async run(values, io) {
    const options = {
      ...runOptions(values),
      ...requestSettings(values),
      concurrency: parseCount(flagText(values, crrCommand.flags, 'concurrency')!, '--concurrency', 1, 4096),
    };
    const askedThreads = askedClientThreads(values);
    return runClientCommand<CrrResult, CrrResult['intervals'][number]>(
      {
        startsWhenReady: true,
        run: async (onInterval, interrupt, beforeTraffic) => {
          const run = { ...options, onInterval, interrupt, beforeTraffic };
          const threads = clientThreadsFor(askedThreads, options.concurrency, io);
          if (threads === 1) return (await import('../../bench/engines/crr.ts')).runCrr(run);
          return (await import('../../bench/engines/client-threads.ts')).runOnClientThreads({ command: 'crr', options: run }, threads);
        },
        formatInterval: (interval) => formatLatencyInterval(interval, 'conn/s'),
        printSummary: (out, result) => {
          const { summary } = result;
          out.out(
            latencyTable(
              [
                ['transaction', summary.latency],
                ['connect', summary.connectLatency],
              ],
              out.columns,
            ),
          );
          out.out(`transactions ${summary.transactions} in ${summary.measuredSeconds}s = ${formatCount(summary.transactionsPerSecond)} /s`);
          const failures = Object.entries(summary.failures);
          if (failures.length > 0) out.out(`failures   ${failures.map(([errno, count]) => `${errno} ×${count}`).join(', ')}`);
        },
        metric: {
          name: 'transactions/s',
          of: (result) => result.summary.transactionsPerSecond,
          format: (value) => `${formatCount(value)}/s`,
        },
        nothingMeasured: (result) =>
          result.summary.transactions > 0 ? undefined : `no transaction completed in ${result.summary.measuredSeconds} s`,
        requestedBuffers: Object.keys(bufferSizes(values)).length > 0,
      },
      values,
      io,
    );
  },
};
