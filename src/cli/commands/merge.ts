import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { formatBits, formatBytes, formatCount, formatMicros } from '../../bench/results/format.ts';
import type { LatencySummary } from '../../bench/results/histogram.ts';
import type { MergeableResult, MergedInterval, MergeResult } from '../../bench/results/merge.ts';
import { SocktuneError } from '../../core/errors.ts';
import { formatSignedMs } from '../units.ts';
import type { Command, Io } from '../command.ts';
import { latencyTable } from '../latency-table.ts';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'combine --json results of runs started together on several client hosts (exact merged percentiles)',
  usage: 'socktune merge a.json b.json [...] [--json]',
  positionals: 'result files written by `socktune rr|crr|stream|msg --json`',
  flags: {
    json: { help: 'print the merged document (schema socktune/1, command "merge")', spec: { type: 'boolean' } },
  },
  examples: [
    'socktune merge host1.json host2.json host3.json',
    'T=$(( $(date +%s%3N) + 5000 ))    # on each client host, the same T:',
    '  socktune rr -c server --start-at $T -t 10 --json > $(hostname).json',
  ],
  async run(values, io, files) {
    // One run is already its own result; a Kubernetes test of one client pod is merged by k8s collect.
    if (files.length < 2) throw new SocktuneError('SOCKTUNE_ERR_MERGE', 'give at least two results to merge');
    const sources = await Promise.all(files.map(async (file) => ({ label: file, result: await readResult(file) })));
    const { mergeResults } = await import('../../bench/results/merge.ts');
    const merged = mergeResults(sources);
    if (values.json) io.out(JSON.stringify(merged, null, 2));
    else printMerged(io, merged);
    return 0;
  },
};

/** The most of one result file merge reads: a two-hour run at -i 0.01 writes under 200 MB. */
export const MAX_RESULT_FILE_BYTES = 256 * 1024 * 1024;

/**
 * All of `input` as text, refused with SOCKTUNE_ERR_MERGE as soon as it passes `limit` bytes (before
 * the rest is read), or when it cannot be read; `name` is what the message calls it.
 */
export async function readLimited(input: Readable, name: string, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of input) {
      size += (chunk as Buffer).length;
      if (size > limit) throw new SocktuneError('SOCKTUNE_ERR_MERGE', `${name} holds more than ${limit} bytes: not socktune output`);
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof SocktuneError) throw error;
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new SocktuneError('SOCKTUNE_ERR_MERGE', `cannot read ${name}: ${reason}`, { cause: error });
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readResult(file: string): Promise<MergeableResult> {
  const text = await readLimited(createReadStream(file), file, MAX_RESULT_FILE_BYTES);
  // --ndjson output ends with the result line; --json is one document.
  const lines = text.trim().split('\n');
  const candidate = lines.length > 1 && text.trimStart().startsWith('{"') ? lines.at(-1)! : text;
  let document: unknown;
  try {
    document = JSON.parse(candidate);
  } catch {
    throw new SocktuneError('SOCKTUNE_ERR_MERGE', `${file} is not JSON: write it with --json`);
  }
  // An --ndjson result line carries its type; the document is the rest.
  if (typeof document === 'object' && document !== null && (document as { type?: unknown }).type === 'result') {
    const { type: _type, ...rest } = document as Record<string, unknown>;
    document = rest;
  }
  const { validateResult } = await import('../../bench/results/result-schema.ts');
  validateResult(document, file);
  return document as MergeableResult;
}

function formatInterval(interval: MergedInterval, merged: MergeResult['merged']): string {
  const span = `[${interval.startSec.toFixed(2)}-${interval.endSec.toFixed(2)} s] ${String(interval.runs).padStart(2)} run(s)`;
  const omitted = interval.omitted ? '  (omitted)' : '';
  if (merged === 'stream') return `${span}  ${formatBits(interval.bitsPerSecond!).padStart(14)}${omitted}`;
  if (merged === 'msg')
    return `${span}  ${formatCount(interval.messagesPerSecond!).padStart(9)} msg/s  ${formatBits(interval.bitsPerSecond!)}${omitted}`;
  return (
    `${span}  ${formatCount(interval.requestsPerSecond!).padStart(9)} ` +
    `${merged === 'crr' ? 'tx/s' : 'req/s'}  p50 ${formatMicros(interval.p50Us!)}  p99 ` +
    `${formatMicros(interval.p99Us!)}${omitted}`
  );
}

export function printMerged(io: Io, merged: MergeResult): void {
  const common = merged.sources.some((source) => source.clockOffsetMs !== undefined) ? " on the barrier server's clock" : '';
  io.out(`merged ${merged.sources.length} ${merged.merged} runs, started within ${merged.startSkewMs} ms${common}:`);
  for (const source of merged.sources) {
    const throttled = (source.cpuThrottledMs ?? 0) > 0 ? `: its cgroup throttled it ${source.cpuThrottledMs} ms` : '';
    const offset =
      source.clockOffsetMs === undefined ? '' : `  (its clock ${formatSignedMs(-source.clockOffsetMs)} ms from the barrier server's)`;
    io.out(`  ${source.label}  started ${source.startedAt}${offset}${source.clientSaturated ? `  (client saturated${throttled})` : ''}`);
  }
  for (const interval of merged.intervals) io.out(formatInterval(interval, merged.merged));
  const summary = merged.summary;
  if (merged.merged === 'stream') {
    const sender = summary.sender as { bytes: number } | null;
    const receiver = summary.receiver as { bytes: number } | null;
    io.out(
      `total      ${formatBits(summary.bitsPerSecond as number)} ` +
        `(${summary.direction as string}); sent ${sender ? formatBytes(sender.bytes) : '?'}, ` +
        `received ${receiver ? formatBytes(receiver.bytes) : '?'}`,
    );
  } else {
    const latency = summary.latency as LatencySummary | null;
    if (latency) io.out(latencyTable([['latency', latency]], io.columns));
    const count = (summary.requests ?? summary.transactions ?? summary.messagesSent) as number;
    const rate = (summary.requestsPerSecond ?? summary.transactionsPerSecond ?? summary.messagesPerSecond) as number;
    io.out(
      `total      ${formatCount(count)} in ${summary.measuredSeconds as number}s = ` +
        `${formatCount(rate)}/s summed over the runs; percentiles from the merged histograms`,
    );
  }
  for (const warning of merged.warnings) io.err(`warning: ${warning}`);
}
