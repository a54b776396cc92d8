import { SocktuneError } from '../../core/errors.ts';
import { latencyReport } from './histogram.ts';
import { HistogramSum } from './histogram-sum.ts';
import { count, countOrNull, MERGE_LIMITS, quote, refuse } from './merge-checks.ts';
import { RESULT_SCHEMA, type CrrResult, type MsgResult, type RrInterval, type RrResult, type StreamResult } from './result.ts';
import { round } from './stats.ts';
import { SATURATION_THRESHOLDS, sourcesSaturated, startSkew, warningFields, type Warning } from './warnings.ts';

export type MergeableResult = RrResult | CrrResult | StreamResult | MsgResult;
export const MERGEABLE_COMMANDS = ['rr', 'crr', 'stream', 'msg'] as const;
type MergeableCommand = (typeof MERGEABLE_COMMANDS)[number];

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

/** One run of a merge, as the merged document names it. */
export interface MergedSource {
  label: string;
  /** The run's start on its own clock. */
  startedAt: string;
  /**
   * Its clock's offset to the rendezvous server's, measured at a start barrier (--barrier): startedAt
   * + this is its start on the common clock.
   */
  clockOffsetMs?: number;
  clientSaturated: boolean;
  /** The run's selfCheck fields of the same names, where it has them: its cgroup's CPU throttling and quota. */
  cpuThrottledMs?: number;
  cpuQuota?: number;
  cpus: number;
  node: string;
}

export interface MergeResult {
  schema: typeof RESULT_SCHEMA;
  command: 'merge';
  merged: MergeableResult['command'];
  sources: MergedSource[];
  /** Milliseconds between the first and the last run's start, on the common clock where the runs measured their offsets to it. */
  startSkewMs: number;
  intervalSec: number;
  clientSaturated: boolean;
  warnings: string[];
  warningDetails: Warning[];
  intervals: MergedInterval[];
  summary: Record<string, unknown>;
}

function latencyOf(histograms: { label: string; histogram: unknown }[]): ReturnType<typeof latencyReport> {
  const sum = new HistogramSum();
  for (const { label, histogram } of histograms) sum.add(histogram, label, 'summary.histogram');
  return latencyReport(sum.toHistogram());
}

function check(sources: MergeSource[]): void {
  if (sources.length === 0) throw new SocktuneError('SOCKTUNE_ERR_MERGE', 'no result to merge');
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
  const intervalSec: unknown = first!.result.options.intervalSec;
  if (typeof intervalSec !== 'number' || !(intervalSec >= MERGE_LIMITS.minIntervalSec && intervalSec <= MERGE_LIMITS.maxIntervalSec))
    throw refuse(
      first!.label,
      'options.intervalSec',
      `must be a number of seconds from ${MERGE_LIMITS.minIntervalSec} to ${MERGE_LIMITS.maxIntervalSec}, got ${quote(intervalSec)}`,
    );
  for (const { label, result } of sources) {
    if (result.command !== first!.result.command)
      throw new SocktuneError(
        'SOCKTUNE_ERR_MERGE',
        `${label} is a ${result.command} result, ${first!.label} a ${first!.result.command} result: merge runs of one command`,
      );
    if (result.options.intervalSec !== first!.result.options.intervalSec)
      throw new SocktuneError(
        'SOCKTUNE_ERR_MERGE',
        `${label} has ${String(result.options.intervalSec)} s intervals, ${first!.label} ` +
          `${String(first!.result.options.intervalSec)} s: run them with the same -i`,
      );
  }
  if (first!.result.command === 'stream') {
    const directions = new Set(sources.map(({ result }) => (result as StreamResult).summary.direction));
    if (directions.size > 1)
      throw new SocktuneError('SOCKTUNE_ERR_MERGE', `stream results of different directions (${[...directions].join(', ')}) do not add up`);
  }
}

/** A day: more than any clock offset a start barrier measures between hosts of one test. */
const MAX_CLOCK_OFFSET_MS = 86_400_000;

/** What a client command's printed result adds about its start (--barrier, --start-at), unchecked as merge's input is. */
function scheduledStart(result: MergeableResult): { barrier?: { clockOffsetMs?: unknown }; startAt?: unknown } {
  return result as { barrier?: { clockOffsetMs?: unknown }; startAt?: unknown };
}

/** A run's offset to the rendezvous clock, where it waited at a start barrier (--barrier); 0 without one. */
function clockOffsetOf({ label, result }: MergeSource): number {
  const { barrier } = scheduledStart(result);
  if (barrier === undefined) return 0;
  const offset = barrier.clockOffsetMs;
  if (typeof offset !== 'number' || !(Math.abs(offset) <= MAX_CLOCK_OFFSET_MS))
    throw refuse(label, 'barrier.clockOffsetMs', `must be a number of ms within a day, got ${quote(offset)}`);
  return offset;
}

/**
 * Runs started at a barrier are lined up on its server's clock: every run must have waited at one,
 * and at the same release, or their starts are on no common clock.
 */
function checkBarriers(sources: MergeSource[]): void {
  const first = sources.find((source) => scheduledStart(source.result).barrier !== undefined);
  if (first === undefined) return;
  const apart = sources.find((source) => scheduledStart(source.result).barrier === undefined);
  if (apart !== undefined)
    throw refuse(
      apart.label,
      'barrier',
      `is missing while ${first.label} started at a start barrier: runs of one test start at the same barrier`,
    );
  const other = sources.find((source) => scheduledStart(source.result).startAt !== scheduledStart(first.result).startAt);
  if (other !== undefined)
    throw refuse(
      other.label,
      'startAt',
      `is ${quote(scheduledStart(other.result).startAt)}, ${first.label}'s ${quote(scheduledStart(first.result).startAt)}: ` +
        'released by different barriers, not one test',
    );
}

/** When a run started on the common clock: its own clock's reading, corrected by its barrier's offset. */
function startOf(source: MergeSource): number {
  return Date.parse(source.result.startedAt) + clockOffsetOf(source);
}

/** The earliest start (Unix ms on the common clock), the zero of the merged time line, and the latest. */
function startTimes(sources: MergeSource[]): { earliest: number; latest: number } {
  const starts = sources.map(startOf);
  let earliest = Infinity;
  let latest = -Infinity;
  for (const start of starts) {
    earliest = Math.min(earliest, start);
    latest = Math.max(latest, start);
  }
  const late = sources.find((_source, index) => starts[index]! - earliest > MERGE_LIMITS.maxStartSkewSec * 1000);
  if (late !== undefined) {
    const first = sources[starts.indexOf(earliest)]!;
    throw refuse(
      late.label,
      'startedAt',
      `is ${quote(late.result.startedAt)}, more than ${MERGE_LIMITS.maxStartSkewSec} s after ` +
        `${first.label}'s ${quote(first.result.startedAt)}: not runs of one test`,
    );
  }
  return { earliest, latest };
}

/** The fields an interval of each command adds up, in the order the merged interval lists them. */
const SUMMED_FIELDS = {
  rr: ['requests', 'requestsPerSecond'],
  crr: ['requests', 'requestsPerSecond'],
  stream: ['sentBytes', 'receivedBytes', 'bitsPerSecond'],
  msg: ['messages', 'messagesPerSecond', 'bitsPerSecond'],
} as const satisfies Record<MergeableCommand, readonly (keyof MergedInterval)[]>;

/** One slot of wall-clock time, accumulated as the intervals arrive: sums, not copies of its members. */
interface Slot {
  slot: number;
  runs: number;
  omitted: boolean;
  sums: number[];
  /** rr, crr: where the members' histograms are, as (source, interval) index pairs, read one slot at a time. */
  histograms: number[];
}

/** Lines every run's intervals up into slots of wall-clock time counted from the earliest start, in time order. */
function slots(command: MergeableCommand, sources: MergeSource[], intervalSec: number, earliest: number): Slot[] {
  const fields = SUMMED_FIELDS[command];
  const latency = command === 'rr' || command === 'crr';
  const bySlot = new Map<number, Slot>();
  sources.forEach((each, source) => {
    const { label, result } = each;
    const offsetSec = (startOf(each) - earliest) / 1000;
    const intervals = result.intervals as unknown as Record<string, unknown>[];
    for (let index = 0; index < intervals.length; index++) {
      const interval = intervals[index]!;
      const startSec = interval.startSec;
      if (typeof startSec !== 'number' || !(startSec >= 0 && startSec <= MERGE_LIMITS.maxIntervalStartSec))
        throw refuse(
          label,
          `intervals.${index}.startSec`,
          `must be a number of seconds from 0 to ${MERGE_LIMITS.maxIntervalStartSec}, got ${quote(startSec)}`,
        );
      if (typeof interval.omitted !== 'boolean')
        throw refuse(label, `intervals.${index}.omitted`, `must be true or false, got ${quote(interval.omitted)}`);
      const key = Math.round((offsetSec + startSec) / intervalSec);
      let slot = bySlot.get(key);
      if (slot === undefined) {
        if (bySlot.size === MERGE_LIMITS.maxSlots)
          throw refuse(
            label,
            `intervals.${index}.startSec`,
            `makes the merge span more than ${MERGE_LIMITS.maxSlots} intervals of ${intervalSec} s: merge fewer or longer intervals`,
          );
        slot = { slot: key, runs: 0, omitted: true, sums: fields.map(() => 0), histograms: [] };
        bySlot.set(key, slot);
      }
      slot.runs++;
      slot.omitted &&= interval.omitted;
      for (let field = 0; field < fields.length; field++)
        slot.sums[field]! += count(interval[fields[field]!], label, `intervals.${index}.${fields[field]!}`);
      if (latency) slot.histograms.push(source, index);
    }
  });
  return [...bySlot.values()].sort((a, b) => a.slot - b.slot);
}

function mergeIntervals(command: MergeableCommand, sources: MergeSource[], intervalSec: number, earliest: number): MergedInterval[] {
  const fields = SUMMED_FIELDS[command];
  // One sum for every slot in turn: a slot's percentiles are all that is kept of its histograms.
  const total = command === 'rr' || command === 'crr' ? new HistogramSum() : undefined;
  return slots(command, sources, intervalSec, earliest).map((slot) => {
    const startSec = round(slot.slot * intervalSec, 3);
    const merged: MergedInterval = { startSec, endSec: round(startSec + intervalSec, 3), runs: slot.runs, omitted: slot.omitted };
    fields.forEach((field, index) => (merged[field] = slot.sums[index]));
    if (total === undefined) return merged;
    total.clear();
    for (let member = 0; member < slot.histograms.length; member += 2) {
      const { label, result } = sources[slot.histograms[member]!]!;
      const index = slot.histograms[member + 1]!;
      total.add((result.intervals[index] as RrInterval).histogram, label, `intervals.${index}.histogram`);
    }
    const at = (p: number): number => (total.totalCount ? round(total.valueAtPercentile(p) / 1000, 2) : 0);
    merged.p50Us = at(50);
    merged.p99Us = at(99);
    return merged;
  });
}

/** The sum over the runs of one count of their summaries, each checked. */
function sumOf<R extends MergeableResult>(sources: MergeSource[], field: string, pick: (result: R) => unknown): number {
  let total = 0;
  for (const { label, result } of sources) total += count(pick(result as R), label, `summary.${field}`);
  return total;
}

/** Like sumOf for a count that is null on a raw peer: null if any run's is. */
function sumOrNullOf<R extends MergeableResult>(sources: MergeSource[], field: string, pick: (result: R) => unknown): number | null {
  const values = sources.map(({ label, result }) => countOrNull(pick(result as R), label, `summary.${field}`));
  let total = 0;
  for (const value of values) {
    if (value === null) return null;
    total += value;
  }
  return total;
}

function mergeSummary(command: MergeableCommand, sources: MergeSource[]): Record<string, unknown> {
  let measuredSeconds = -Infinity;
  for (const { label, result } of sources)
    measuredSeconds = Math.max(measuredSeconds, count(result.summary.measuredSeconds, label, 'summary.measuredSeconds'));
  const histograms = sources.map(({ label, result }) => ({
    label,
    histogram: (result as RrResult | CrrResult | MsgResult).summary.histogram,
  }));
  if (command === 'rr') {
    return {
      mode: (sources[0]!.result as RrResult).summary.mode,
      measuredSeconds,
      requests: sumOf<RrResult>(sources, 'requests', (r) => r.summary.requests),
      requestsPerSecond: sumOf<RrResult>(sources, 'requestsPerSecond', (r) => r.summary.requestsPerSecond),
      sentRequests: sumOrNullOf<RrResult>(sources, 'sentRequests', (r) => r.summary.sentRequests),
      ...latencyOf(histograms),
    };
  }
  if (command === 'crr') {
    // A Map, not an object: a code such as "__proto__" or "constructor" is a key like any other.
    const failures = new Map<string, number>();
    for (const { label, result } of sources)
      for (const [code, failed] of Object.entries((result as CrrResult).summary.failures))
        failures.set(code, (failures.get(code) ?? 0) + count(failed, label, `summary.failures.${code}`));
    return {
      measuredSeconds,
      transactions: sumOf<CrrResult>(sources, 'transactions', (r) => r.summary.transactions),
      transactionsPerSecond: sumOf<CrrResult>(sources, 'transactionsPerSecond', (r) => r.summary.transactionsPerSecond),
      ...latencyOf(histograms),
      failures: Object.fromEntries(failures),
    };
  }
  if (command === 'stream') {
    const stream = sources.map(({ result }) => result as StreamResult);
    const side = (which: 'sender' | 'receiver'): { bytes: number; side: string } | null => {
      const bytes = sumOrNullOf<StreamResult>(sources, `${which}.bytes`, (r) => r.summary[which]?.bytes ?? null);
      return bytes === null ? null : { bytes, side: stream[0]!.summary[which]!.side };
    };
    const verified = stream.map((r) => r.summary.verify);
    return {
      direction: stream[0]!.summary.direction,
      measuredSeconds,
      bitsPerSecond: sumOf<StreamResult>(sources, 'bitsPerSecond', (r) => r.summary.bitsPerSecond),
      sender: side('sender'),
      receiver: side('receiver'),
      retransmits: sumOrNullOf<StreamResult>(sources, 'retransmits', (r) => r.summary.retransmits),
      verify: verified.some((v) => v === null)
        ? null
        : {
            bytesChecked: sumOf<StreamResult>(sources, 'verify.bytesChecked', (r) => r.summary.verify!.bytesChecked),
            bytesCorrupted: sumOf<StreamResult>(sources, 'verify.bytesCorrupted', (r) => r.summary.verify!.bytesCorrupted),
            bytesLost: sumOf<StreamResult>(sources, 'verify.bytesLost', (r) => r.summary.verify!.bytesLost),
          },
    };
  }
  for (const { label, histogram } of histograms)
    if (histogram !== null && typeof histogram !== 'string')
      throw refuse(label, 'summary.histogram', `is not a valid encoded histogram (a ${typeof histogram}, not a string or null)`);
  return {
    mode: (sources[0]!.result as MsgResult).summary.mode,
    measuredSeconds,
    messagesSent: sumOf<MsgResult>(sources, 'messagesSent', (r) => r.summary.messagesSent),
    messagesReceivedByServer: sumOrNullOf<MsgResult>(sources, 'messagesReceivedByServer', (r) => r.summary.messagesReceivedByServer),
    messagesPerSecond: sumOf<MsgResult>(sources, 'messagesPerSecond', (r) => r.summary.messagesPerSecond),
    bitsPerSecond: sumOf<MsgResult>(sources, 'bitsPerSecond', (r) => r.summary.bitsPerSecond),
    unsent: sumOf<MsgResult>(sources, 'unsent', (r) => r.summary.unsent),
    ...(histograms.every(({ histogram }) => typeof histogram === 'string')
      ? latencyOf(histograms)
      : { latency: null, histogram: null, percentileCurve: [] }),
  };
}

function mergedSource(source: MergeSource): MergedSource {
  const { label, result } = source;
  const { cpuThrottledMs, cpuQuota } = result.selfCheck;
  const barrier = scheduledStart(result).barrier !== undefined;
  return {
    label,
    startedAt: result.startedAt,
    ...(barrier ? { clockOffsetMs: clockOffsetOf(source) } : {}),
    clientSaturated: result.clientSaturated,
    ...(cpuThrottledMs === undefined ? {} : { cpuThrottledMs: count(cpuThrottledMs, label, 'selfCheck.cpuThrottledMs') }),
    ...(cpuQuota === undefined ? {} : { cpuQuota: count(cpuQuota, label, 'selfCheck.cpuQuota') }),
    cpus: result.environment.client.cpus,
    node: result.environment.client.node,
  };
}

/**
 * Combines results of runs made at the same time from several client hosts: counts and bytes are
 * summed, latency percentiles come from the sum of the encoded HDR histograms (exact, never an
 * average of percentiles), and intervals are lined up by wall-clock time. Time and memory grow
 * with the number of intervals, however many share a slot. Input that is not what socktune
 * writes, or past MERGE_LIMITS, is refused with SOCKTUNE_ERR_MERGE naming the file and the field.
 */
export function mergeResults(sources: MergeSource[]): MergeResult {
  check(sources);
  checkBarriers(sources);
  const command = sources[0]!.result.command as MergeableCommand;
  const intervalSec = Number(sources[0]!.result.options.intervalSec);
  const { earliest, latest } = startTimes(sources);
  // Whole milliseconds: a start corrected by a measured clock offset is no more exact than that.
  const startSkewMs = Math.round(latest - earliest);
  const warnings: Warning[] = [];
  if (startSkewMs > (intervalSec * 1000) / 10) warnings.push(startSkew(startSkewMs, intervalSec));
  const merged = sources.map(mergedSource);
  const saturated = merged.filter((source) => source.clientSaturated);
  const throttled = saturated.filter((source) => (source.cpuThrottledMs ?? 0) > SATURATION_THRESHOLDS.cpuThrottledMs);
  if (saturated.length > 0)
    warnings.push(
      sourcesSaturated(
        saturated.map(({ label }) => label),
        throttled.map(({ label }) => label),
      ),
    );
  return {
    schema: RESULT_SCHEMA,
    command: 'merge',
    merged: command,
    sources: merged,
    startSkewMs,
    intervalSec,
    clientSaturated: saturated.length > 0,
    ...warningFields(warnings),
    intervals: mergeIntervals(command, sources, intervalSec, earliest),
    summary: mergeSummary(command, sources),
  };
}
