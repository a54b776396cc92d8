import { collectEnvironment, type Environment } from './environment.ts';
import { RESULT_SCHEMA, type BenchResult, type EffectiveBothEnds, type SelfCheck } from './result.ts';
import type { CommonOptionsRecord } from './result-options.ts';
import { medianInterval } from './stats.ts';
import { interrupted as interruptedWarning, saturated, warningFields, type Warning } from './warnings.ts';

/** What a client engine measured, in the fields a result is made of and nothing else. */
export interface MeasuredRun<Summary, Interval, Options> {
  command: string;
  /** Unix ms at which the traffic started. */
  startedAt: number;
  /** The socktune server's own record; null against a raw or iperf3 peer. */
  serverEnvironment: Environment | null;
  /** The public settings, made field by field in result-options.ts (never the auth token). */
  options: Options;
  effective: EffectiveBothEnds;
  intervals: Interval[];
  summary: Summary;
  selfCheck: SelfCheck;
  interrupted: boolean;
  /** The engine's own warnings; the client's saturation and an interruption are added here. */
  warnings: readonly Warning[];
}

/** The one place a client result document (stream, rr, crr, msg, conns, stream --iperf3) is made. */
export function benchResult<Summary, Interval, Options extends CommonOptionsRecord>(
  run: MeasuredRun<Summary, Interval, Options>,
): BenchResult<Summary, Interval, Options> {
  return {
    schema: RESULT_SCHEMA,
    command: run.command,
    startedAt: new Date(run.startedAt).toISOString(),
    environment: { client: collectEnvironment(), server: run.serverEnvironment },
    options: run.options,
    effective: run.effective,
    intervals: run.intervals,
    summary: run.summary,
    selfCheck: run.selfCheck,
    clientSaturated: run.selfCheck.clientSaturated,
    ...(run.interrupted ? { interrupted: true as const } : {}),
    ...warningFields([...run.warnings, ...saturated(run.selfCheck), ...(run.interrupted ? [interruptedWarning()] : [])]),
  };
}

/** --repeat: the runs' metric, its median and the median's confidence interval. */
export interface Repeat {
  metric: string;
  values: number[];
  median: number;
  min: number;
  max: number;
  /** The median's confidence interval from order statistics (confidence: the coverage reached; 0.95 from 6 runs on). */
  interval: { low: number; high: number; confidence: number };
}

export function repeatOf(metric: string, values: number[]): Repeat {
  const { median, low, high, confidence } = medianInterval(values)!;
  return { metric, values, median, min: Math.min(...values), max: Math.max(...values), interval: { low, high, confidence } };
}

/** A run that waited at a start barrier (--barrier): the group, and this client's clock against the rendezvous server's. */
export interface BarrierRecord {
  group: string;
  clients: number;
  /** The rendezvous clock minus this client's: added to this client's times, they read on the common clock. */
  clockOffsetMs: number;
  clockRttMs: number;
  /** How late this client reached the common start. */
  lateMs: number;
}

/** When a run started: the time it waited for (--start-at, or a barrier's common start on the rendezvous clock), and the barrier. */
export interface ScheduledStart {
  startAt: number;
  barrier?: BarrierRecord;
}

/**
 * What a client command prints: the run shown in full, with the start it was scheduled for and,
 * over several runs, their spread.
 */
export function printedResult<Result extends object>(
  shown: Result,
  start: ScheduledStart | undefined,
  repeat: Repeat | undefined,
): Result & { startAt?: number; barrier?: BarrierRecord; repeat?: Repeat } {
  return { ...shown, ...(start ?? {}), ...(repeat ? { repeat } : {}) };
}
