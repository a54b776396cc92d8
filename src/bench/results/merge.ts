import type { Histogram } from 'hdr-histogram-js';
import { countError, errorEntries, SocktuneError, type ErrorCounts } from '../../core/errors.ts';
import {
  createLatencyHistogram,
  decodeHistogram,
  encodeHistogram,
  percentileCurve,
  summarizeLatency,
  type LatencySummary,
} from './histogram.ts';
import {
  RESULT_SCHEMA,
  type CrrResult,
  type MsgResult,
  type RrInterval,
  type RrResult,
  type StreamInterval,
  type StreamResult,
} from './result.ts';
import { round } from './stats.ts';
import { sourcesSaturated, startSkew, warningFields, type Warning } from './warnings.ts';

export type MergeableResult = RrResult | CrrResult | StreamResult | MsgResult;
export const MERGEABLE_COMMANDS = ['rr', 'crr', 'stream', 'msg'] as const;

export interface MergeSource {
  /** Where the document came from (a file name), for the report. */
  label: string;
  result: MergeableResult;
}

export interface MergedInterval {
  startSec: number;
  endSec: number;
  /** How many runs had an interval in this slot. */
  runs: number;
  omitted: boolean;
  /** rr, crr: completed requests (transactions) and exact percentiles of the slot's merged histograms. */
  requests?: number;
  requestsPerSecond?: number;
  p50Us?: number;
  p99Us?: number;
  /** stream: client-side bytes and the summed rate. */
  sentBytes?: number;
  receivedBytes?: number;
  bitsPerSecond?: number;
  /** msg: messages in the slot and the summed rates. */
  messages?: number;
  messagesPerSecond?: number;
}

export interface MergeResult {
  schema: typeof RESULT_SCHEMA;
  command: 'merge';
  merged: MergeableResult['command'];
  sources: { label: string; startedAt: string; clientSaturated: boolean; cpus: number; node: string }[];
  /** Milliseconds between the first and the last run's start. */
  startSkewMs: number;
  intervalSec: number;
  clientSaturated: boolean;
  warnings: string[];
  warningDetails: Warning[];
  intervals: MergedInterval[];
  summary: Record<string, unknown>;
}

const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
/** Sum of values that are null on a raw peer: null if any is. */
const sumOrNull = (values: (number | null | undefined)[]): number | null =>
  values.some((value) => value === null || value === undefined) ? null : sum(values as number[]);

function mergedHistogram(encoded: string[]): Histogram {
  const total = createLatencyHistogram();
  for (const text of encoded) total.add(decodeHistogram(text));
  return total;
}

function latencyOf(histograms: string[]): {
  latency: LatencySummary;
  histogram: string;
  percentileCurve: ReturnType<typeof percentileCurve>;
} {
  const total = mergedHistogram(histograms);
  return { latency: summarizeLatency(total), histogram: encodeHistogram(total), percentileCurve: percentileCurve(total) };
}

function check(sources: MergeSource[]): void {
  if (sources.length < 2) throw new SocktuneError('SOCKTUNE_ERR_MERGE', 'give at least two results to merge');
  for (const { label, result } of sources) {
    if (result?.schema !== RESULT_SCHEMA) throw new SocktuneError('SOCKTUNE_ERR_MERGE', `${label}: not a socktune/1 result document`);
    if (!(MERGEABLE_COMMANDS as readonly string[]).includes(result.command)) {
      throw new SocktuneError(
        'SOCKTUNE_ERR_MERGE',
        `${label}: ${result.command} results cannot be merged (only ${MERGEABLE_COMMANDS.join(', ')})`,
      );
    }
  }
  const [first] = sources;
  if (!(Number(first!.result.options.intervalSec) > 0))
    throw new SocktuneError('SOCKTUNE_ERR_MERGE', `${first!.label} does not say its interval length (options.intervalSec)`);
  for (const { label, result } of sources) {
    if (result.command !== first!.result.command)
      throw new SocktuneError(
        'SOCKTUNE_ERR_MERGE',
        `${label} is a ${result.command} result, ${first!.label} a ${first!.result.command} result: merge runs of one command`,
      );
    if (result.options.intervalSec !== first!.result.options.intervalSec)
      throw new SocktuneError(
        'SOCKTUNE_ERR_MERGE',
        `${label} has ${String(result.options.intervalSec)} s intervals, ${first!.label} ${String(first!.result.options.intervalSec)} s: run them with the same -i`,
      );
  }
  if (first!.result.command === 'stream') {
    const directions = new Set(sources.map(({ result }) => (result as StreamResult).summary.direction));
    if (directions.size > 1)
      throw new SocktuneError('SOCKTUNE_ERR_MERGE', `stream results of different directions (${[...directions].join(', ')}) do not add up`);
  }
}

type AnyInterval = RrInterval | StreamInterval | MsgResult['intervals'][number];

/** Groups every run's intervals into slots of wall-clock time counted from the earliest start. */
function slots(sources: MergeSource[], intervalSec: number): { startSec: number; members: AnyInterval[] }[] {
  const t0 = Math.min(...sources.map(({ result }) => Date.parse(result.startedAt)));
  const bySlot = new Map<number, AnyInterval[]>();
  for (const { result } of sources) {
    const offsetSec = (Date.parse(result.startedAt) - t0) / 1000;
    for (const interval of result.intervals as AnyInterval[]) {
      const slot = Math.round((offsetSec + interval.startSec) / intervalSec);
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), interval]);
    }
  }
  return [...bySlot.entries()].sort(([a], [b]) => a - b).map(([slot, members]) => ({ startSec: round(slot * intervalSec, 3), members }));
}

function mergeIntervals(command: MergeableResult['command'], sources: MergeSource[], intervalSec: number): MergedInterval[] {
  return slots(sources, intervalSec).map(({ startSec, members }) => {
    const base: MergedInterval = {
      startSec,
      endSec: round(startSec + intervalSec, 3),
      runs: members.length,
      omitted: members.every((m) => m.omitted),
    };
    if (command === 'rr' || command === 'crr') {
      const latency = members as RrInterval[];
      const total = mergedHistogram(latency.map((m) => m.histogram).filter((h): h is string => typeof h === 'string'));
      const at = (p: number): number => (total.totalCount ? round(total.getValueAtPercentile(p) / 1000, 2) : 0);
      return {
        ...base,
        requests: sum(latency.map((m) => m.requests)),
        requestsPerSecond: sum(latency.map((m) => m.requestsPerSecond)),
        p50Us: at(50),
        p99Us: at(99),
      };
    }
    if (command === 'stream') {
      const stream = members as StreamInterval[];
      return {
        ...base,
        sentBytes: sum(stream.map((m) => m.sentBytes)),
        receivedBytes: sum(stream.map((m) => m.receivedBytes)),
        bitsPerSecond: sum(stream.map((m) => m.bitsPerSecond)),
      };
    }
    const msg = members as MsgResult['intervals'];
    return {
      ...base,
      messages: sum(msg.map((m) => m.messages)),
      messagesPerSecond: sum(msg.map((m) => m.messagesPerSecond)),
      bitsPerSecond: sum(msg.map((m) => m.bitsPerSecond)),
    };
  });
}

function mergeSummary(command: MergeableResult['command'], results: MergeableResult[]): Record<string, unknown> {
  const measuredSeconds = Math.max(...results.map((result) => result.summary.measuredSeconds));
  if (command === 'rr') {
    const rr = results as RrResult[];
    return {
      mode: rr[0]!.summary.mode,
      measuredSeconds,
      requests: sum(rr.map((r) => r.summary.requests)),
      requestsPerSecond: sum(rr.map((r) => r.summary.requestsPerSecond)),
      sentRequests: sumOrNull(rr.map((r) => r.summary.sentRequests)),
      ...latencyOf(rr.map((r) => r.summary.histogram)),
    };
  }
  if (command === 'crr') {
    const crr = results as CrrResult[];
    const failures: ErrorCounts = {};
    for (const r of crr) for (const [code, count] of errorEntries(r.summary.failures)) countError(failures, code, count);
    return {
      measuredSeconds,
      transactions: sum(crr.map((r) => r.summary.transactions)),
      transactionsPerSecond: sum(crr.map((r) => r.summary.transactionsPerSecond)),
      ...latencyOf(crr.map((r) => r.summary.histogram)),
      failures,
    };
  }
  if (command === 'stream') {
    const stream = results as StreamResult[];
    const side = (pick: (r: StreamResult) => StreamResult['summary']['sender']): { bytes: number; side: string } | null => {
      const sides = stream.map(pick);
      const bytes = sumOrNull(sides.map((s) => s?.bytes ?? null));
      return bytes === null ? null : { bytes, side: sides[0]!.side };
    };
    const verified = stream.map((r) => r.summary.verify);
    return {
      direction: stream[0]!.summary.direction,
      measuredSeconds,
      bitsPerSecond: sum(stream.map((r) => r.summary.bitsPerSecond)),
      sender: side((r) => r.summary.sender),
      receiver: side((r) => r.summary.receiver),
      retransmits: sumOrNull(stream.map((r) => r.summary.retransmits)),
      verify: verified.some((v) => v === null)
        ? null
        : {
            bytesChecked: sum(verified.map((v) => v!.bytesChecked)),
            bytesCorrupted: sum(verified.map((v) => v!.bytesCorrupted)),
            bytesLost: sum(verified.map((v) => v!.bytesLost)),
          },
    };
  }
  const msg = results as MsgResult[];
  const histograms = msg.map((r) => r.summary.histogram);
  return {
    mode: msg[0]!.summary.mode,
    measuredSeconds,
    messagesSent: sum(msg.map((r) => r.summary.messagesSent)),
    messagesReceivedByServer: sumOrNull(msg.map((r) => r.summary.messagesReceivedByServer)),
    messagesPerSecond: sum(msg.map((r) => r.summary.messagesPerSecond)),
    bitsPerSecond: sum(msg.map((r) => r.summary.bitsPerSecond)),
    unsent: sum(msg.map((r) => r.summary.unsent)),
    ...(histograms.every((h): h is string => typeof h === 'string')
      ? latencyOf(histograms)
      : { latency: null, histogram: null, percentileCurve: [] }),
  };
}

/**
 * Combines results of runs made at the same time from several client hosts: counts and bytes are
 * summed, latency percentiles come from the sum of the encoded HDR histograms (exact, never an
 * average of percentiles), and intervals are lined up by wall-clock time.
 */
export function mergeResults(sources: MergeSource[]): MergeResult {
  check(sources);
  const results = sources.map((source) => source.result);
  const command = results[0]!.command;
  const intervalSec = Number(results[0]!.options.intervalSec);
  const starts = results.map((result) => Date.parse(result.startedAt));
  const startSkewMs = Math.max(...starts) - Math.min(...starts);
  const warnings: Warning[] = [];
  if (startSkewMs > (intervalSec * 1000) / 10) warnings.push(startSkew(startSkewMs, intervalSec));
  const saturated = sources.filter(({ result }) => result.clientSaturated).map(({ label }) => label);
  if (saturated.length > 0) warnings.push(sourcesSaturated(saturated));
  return {
    schema: RESULT_SCHEMA,
    command: 'merge',
    merged: command,
    sources: sources.map(({ label, result }) => ({
      label,
      startedAt: result.startedAt,
      clientSaturated: result.clientSaturated,
      cpus: result.environment.client.cpus,
      node: result.environment.client.node,
    })),
    startSkewMs,
    intervalSec,
    clientSaturated: saturated.length > 0,
    ...warningFields(warnings),
    intervals: mergeIntervals(command, sources, intervalSec),
    summary: mergeSummary(command, results),
  };
}
