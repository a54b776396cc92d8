import { runStream } from '../../bench/stream.ts';
import type { StreamInterval } from '../../bench/result.ts';
import { COMMON_CLIENT_FLAGS, type Command } from '../command.ts';
import { bufferSizes, clientSettings, seconds, serverSettings, str, target } from '../client-settings.ts';
import { printFooter } from '../report-common.ts';
import { renderTable } from '../table.ts';
import { formatBits, formatBytes } from '../../bench/format.ts';
import { parseCount, parseSize } from '../units.ts';

export const streamCommand: Command = {
  name: 'stream',
  summary: 'bulk throughput, like iperf3: bytes and Gbit/s, retransmits, effective buffers',
  usage: 'socktune stream -c HOST [-t 10] [-l 128K] [-P 1] [-R | --bidir] [-w SIZE] [--verify] [--json]',
  flags: {
    ...COMMON_CLIENT_FLAGS,
    length: { help: 'bytes per write (default 128K)', spec: { type: 'string', short: 'l' } },
    parallel: { help: 'parallel connections (default 1)', spec: { type: 'string', short: 'P' } },
    reverse: { help: 'the server sends, the client receives', spec: { type: 'boolean', short: 'R' } },
    bidir: { help: 'both directions at once', spec: { type: 'boolean' } },
    verify: { help: 'check every received byte against the test pattern (server→client data)', spec: { type: 'boolean' } },
  },
  examples: [
    'socktune stream -c 127.0.0.1 -t 5',
    'socktune stream -c 127.0.0.1 -R -P 4 -w 256K --verify',
    'socktune stream -c 127.0.0.1 --io-model workers --json > stream.json',
  ],
  async run(values, io) {
    const direction = values.bidir ? 'bidir' : values.reverse ? 'reverse' : 'forward';
    const ndjson = values.ndjson === true;
    const human = !values.json && !ndjson;
    const result = await runStream({
      target: target(values),
      durationSec: seconds(values, 'time', 10),
      omitSec: seconds(values, 'omit', 0),
      writeSize: parseSize(str(values, 'length') ?? '128K', '--length'),
      parallel: parseCount(str(values, 'parallel') ?? '1', '--parallel', 1, 128),
      direction,
      client: clientSettings(values),
      server: serverSettings(values),
      verify: values.verify === true,
      intervalSec: seconds(values, 'interval', 1),
      onInterval: (interval: StreamInterval) => {
        if (ndjson) io.out(JSON.stringify({ type: 'interval', ...interval }));
        else if (human && !values.quiet) {
          const bytes = direction === 'reverse' ? interval.receivedBytes : interval.sentBytes;
          io.err(`[${interval.startSec.toFixed(2)}-${interval.endSec.toFixed(2)} s] ${formatBytes(bytes).padStart(10)}  ${formatBits(interval.bitsPerSecond).padStart(13)}${interval.omitted ? '  (omitted)' : ''}`);
        }
      },
    });
    if (!human) {
      io.out(JSON.stringify(ndjson ? { type: 'result', ...result } : result, null, ndjson ? 0 : 2));
      return result.summary.verify && result.summary.verify.bytesCorrupted + result.summary.verify.bytesLost > 0 ? 4 : 0;
    }
    const { summary } = result;
    const rows = [
      ['sender', summary.sender.side, formatBytes(summary.sender.bytes), formatBits(summary.bitsPerSecond), summary.retransmits === null ? 'n/a' : String(summary.retransmits)],
      ['receiver', summary.receiver.side, formatBytes(summary.receiver.bytes), '', ''],
    ];
    if (summary.reverseBytes) rows.push(['server→client', 'client', formatBytes(summary.reverseBytes.received), '', '']);
    io.out(renderTable(['', 'side', 'bytes', `rate (${summary.measuredSeconds}s measured)`, 'retransmits'], rows));
    if (summary.verify) {
      io.out(`verify     ${formatBytes(summary.verify.bytesChecked)} checked, ${summary.verify.bytesCorrupted} bytes corrupted, ${summary.verify.bytesLost} bytes lost`);
    }
    printFooter(io, result.effective, result.selfCheck, result.warnings, summary.serverCpuPercent, Object.keys(bufferSizes(values)).length > 0);
    return summary.verify && summary.verify.bytesCorrupted + summary.verify.bytesLost > 0 ? 4 : 0;
  },
};
