import type { BufferCapWarning } from '../../core/socket-options.ts';

/**
 * What a reader must know to trust a result's numbers, as data: `kind` and the facts, with
 * `message`, the human line, made from those facts here and nowhere else. JSON output carries the
 * objects as `warningDetails` and their messages as `warnings` (older readers).
 */
export type Warning =
  | (BufferCapWarning & { side: 'client' | 'server' })
  | {
      kind: 'client-saturated';
      /**
       * What crossed its threshold (self-check.ts): its cgroup's CPU quota, the process's CPU, its event loop's delay, or, in open
       * loop, how late requests left.
       */
      trigger: 'throttled' | 'cpu' | 'event-loop' | 'schedule';
      cpuPercent: number;
      eventLoopDelayP99Ms: number;
      scheduleLagP99Us?: number;
      cpuThrottledMs?: number;
      cpuThrottledPeriods?: number;
      cpuPeriods?: number;
      cpuQuota?: number;
      message: string;
    }
  | { kind: 'closed-while-held'; closed: number; opened: number; serverErrors: Record<string, number>; message: string }
  | { kind: 'interrupted'; trialsDone?: number; message: string }
  | { kind: 'nothing-measured'; reason: string; message: string }
  | { kind: 'open-files-limit'; soft: number; hard: number; wanted: number; message: string }
  | { kind: 'start-skew'; skewMs: number; intervalSec: number; message: string }
  | { kind: 'sources-saturated'; sources: string[]; throttled?: string[]; message: string }
  | { kind: 'trials-saturated'; trials: number; throttled?: number; message: string }
  | { kind: 'trials-failed'; trials: number; errors: string[]; message: string };

export type WarningKind = Warning['kind'];

const KINDS: Record<WarningKind, true> = {
  'buffer-capped': true,
  'client-saturated': true,
  'closed-while-held': true,
  interrupted: true,
  'nothing-measured': true,
  'open-files-limit': true,
  'start-skew': true,
  'sources-saturated': true,
  'trials-saturated': true,
  'trials-failed': true,
};
/** Every kind, as the JSON schema lists them (a test keeps the two in agreement). */
export const WARNING_KINDS = Object.keys(KINDS) as WarningKind[];

/** The two fields a result document carries its warnings in. */
export function warningFields(list: readonly Warning[]): { warnings: string[]; warningDetails: Warning[] } {
  return { warnings: list.map((warning) => warning.message), warningDetails: [...list] };
}

/** Appends warnings to a result, keeping its two fields in step. */
export function addWarnings(result: { warnings: string[]; warningDetails: Warning[] }, ...added: Warning[]): void {
  result.warnings.push(...added.map((warning) => warning.message));
  result.warningDetails.push(...added);
}

/**
 * A capped buffer of one end (its message was made from the facts where the warning was: the kernel's answer, or the checked control
 * message).
 */
export function bufferCapped(side: 'client' | 'server', capped: BufferCapWarning): Warning {
  return { ...capped, side, message: `${side}: ${capped.message}` };
}

/**
 * The self-check's thresholds (bench/engines/self-check.ts), as the warning names them; in open loop,
 * requests sent scheduleLagP99Us late after their intended time mean the generator cannot keep the schedule.
 */
export const SATURATION_THRESHOLDS = Object.freeze({
  cpuPercent: 90,
  eventLoopDelayP99Ms: 50,
  scheduleLagP99Us: 1000,
  // Any: a throttled period stops every thread of the cgroup until the next (up to 100 ms), in the tail and the rate alike.
  cpuThrottledMs: 0,
});

/** A process whose CPU exceeds its busiest thread's by more than this had several threads at work: both are worth saying. */
export const SEVERAL_THREADS_PERCENT = 10;

/** The self-check's figures (a SelfCheck of result.ts) a saturation warning is made from. */
interface SaturationFacts {
  clientSaturated: boolean;
  cpuPercent: number;
  busiestThreadCpuPercent?: number;
  eventLoopDelayP99Ms: number;
  scheduleLagP99Us?: number;
  cpuThrottledMs?: number;
  cpuThrottledPeriods?: number;
  cpuPeriods?: number;
  cpuQuota?: number;
}

type ClientSaturatedTrigger = Extract<Warning, { kind: 'client-saturated' }>['trigger'];

/** What crossed its threshold; throttling first, as the cause that also makes the event loop late. */
function saturationTrigger({ cpuThrottledMs, eventLoopDelayP99Ms, scheduleLagP99Us }: SaturationFacts): ClientSaturatedTrigger {
  const limits = SATURATION_THRESHOLDS;
  if ((cpuThrottledMs ?? 0) > limits.cpuThrottledMs) return 'throttled';
  if (eventLoopDelayP99Ms > limits.eventLoopDelayP99Ms) return 'event-loop';
  return scheduleLagP99Us !== undefined ? 'schedule' : 'cpu';
}

export function saturated(selfCheck: SaturationFacts): Warning[] {
  if (!selfCheck.clientSaturated) return [];
  const {
    cpuPercent,
    busiestThreadCpuPercent,
    eventLoopDelayP99Ms,
    scheduleLagP99Us,
    cpuThrottledMs,
    cpuThrottledPeriods,
    cpuPeriods,
    cpuQuota,
  } = selfCheck;
  const limits = SATURATION_THRESHOLDS;
  const trigger = saturationTrigger(selfCheck);
  const clientLimit = "; the numbers may show the client's limit, not the server's";
  const why = {
    throttled:
      `the client's cgroup throttled it ${cpuThrottledMs} ms, in ${cpuThrottledPeriods} of ${cpuPeriods} CPU periods ` +
      `(${cpuQuota === undefined ? '' : `CPU quota ${cpuQuota}, `}it used ${cpuPercent}% of one core): its numbers ` +
      'measure the quota, not the server',
    'event-loop':
      `its event loop ran late (delay p99 ${eventLoopDelayP99Ms} ms, over ` +
      `${limits.eventLoopDelayP99Ms} ms), at ${cpuPercent}% of one core${clientLimit}`,
    schedule:
      `requests left late against the --rate schedule (p99 ${Math.round(scheduleLagP99Us ?? 0)} ` +
      `µs late, over ${limits.scheduleLagP99Us} µs), at ${cpuPercent}% of one core${clientLimit}`,
    cpu:
      busiestThreadCpuPercent === undefined || busiestThreadCpuPercent >= cpuPercent - SEVERAL_THREADS_PERCENT
        ? `it used ${cpuPercent}% of one core (over ${limits.cpuPercent}%)${clientLimit}`
        : `its busiest thread used ${busiestThreadCpuPercent}% of one core (over ${limits.cpuPercent}%; ` +
          `${cpuPercent}% in all)${clientLimit}`,
  }[trigger];
  return [
    {
      kind: 'client-saturated',
      trigger,
      cpuPercent,
      eventLoopDelayP99Ms,
      ...(scheduleLagP99Us === undefined ? {} : { scheduleLagP99Us }),
      ...(cpuThrottledMs === undefined ? {} : { cpuThrottledMs, cpuThrottledPeriods, cpuPeriods }),
      ...(cpuQuota === undefined ? {} : { cpuQuota }),
      message: `the load generator itself was saturated: ${why}`,
    },
  ];
}

export function interrupted(trialsDone?: number): Warning {
  return trialsDone === undefined
    ? {
        kind: 'interrupted',
        message: 'interrupted: the test was ended early (Ctrl-C or SIGTERM); every figure covers only the time measured until then',
      }
    : {
        kind: 'interrupted',
        trialsDone,
        message: `interrupted: the sweep was ended early (Ctrl-C or SIGTERM) after ${trialsDone} trial(s); the rankings cover only those`,
      };
}

export function nothingMeasured(reason: string): Warning {
  return { kind: 'nothing-measured', reason, message: `nothing was measured: ${reason}; no percentile of this run is a measurement` };
}

export function openFilesLimit(soft: number, hard: number, wanted: number): Warning {
  return {
    kind: 'open-files-limit',
    soft,
    hard,
    wanted,
    message:
      `open-files limit ${soft} (hard ${hard}) is below ${wanted} connections: raise it with ` +
      'ulimit -n (root can raise the hard limit)',
  };
}

export function startSkew(skewMs: number, intervalSec: number): Warning {
  return {
    kind: 'start-skew',
    skewMs,
    intervalSec,
    message:
      `the runs started ${skewMs} ms apart: intervals are matched to the nearest ${intervalSec} ` +
      's slot; start them together with --start-at',
  };
}

/** `throttled`: those of `sources` whose cgroup's CPU quota throttled their client. */
export function sourcesSaturated(sources: string[], throttled: string[] = []): Warning {
  return {
    kind: 'sources-saturated',
    sources,
    ...(throttled.length === 0 ? {} : { throttled }),
    message:
      `load generator saturated in ${sources.join(', ')}` +
      `${throttled.length === 0 ? '' : ` (throttled by its cgroup's CPU quota in ${throttled.join(', ')})`}: ` +
      'those runs measured their own client as much as the server',
  };
}

/** conns: connections the other end closed while they were held, with what the server counted as it closed them. */
export function closedWhileHeld(closed: number, opened: number, serverErrors: Readonly<Record<string, number>>): Warning {
  const counted = Object.entries(serverErrors)
    .filter(([, count]) => count > 0)
    .map(([code, count]) => `${code} ×${count}`)
    .join(', ');
  return {
    kind: 'closed-while-held',
    closed,
    opened,
    serverErrors: { ...serverErrors },
    message:
      `${closed} of ${opened} connections were closed by the other end while ` +
      `held${counted === '' ? '' : ` (the server counted ${counted})`}; the memory figures are ` +
      `of the ${opened - closed} still open`,
  };
}

/** `throttled`: of those trials, the ones in which the client's cgroup's CPU quota throttled it. */
export function trialsSaturated(trials: number, throttled = 0): Warning {
  return {
    kind: 'trials-saturated',
    trials,
    ...(throttled === 0 ? {} : { throttled }),
    message:
      `the load generator was saturated in ${trials} trial(s): ` +
      (throttled === 0
        ? 'a thread of it (its event loop, or a sender thread) ran out of CPU'
        : `its cgroup's CPU quota throttled it in ${throttled} of them`) +
      ", so those rankings may show the client's limit as much as the server's",
  };
}

export function trialsFailed(trials: number, errors: string[]): Warning {
  return { kind: 'trials-failed', trials, errors, message: `${trials} trial(s) failed: ${errors.join('; ')}` };
}
