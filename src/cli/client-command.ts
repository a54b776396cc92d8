import type { BenchResult } from '../bench/results/result.ts';
import type { CommonOptionsRecord } from '../bench/results/result-options.ts';
import { sleep } from '../bench/engines/ticker.ts';
import { SocktuneError } from '../core/errors.ts';
import { describeInterval, median } from '../bench/results/stats.ts';
import { printedResult, repeatOf, type Repeat, type ScheduledStart } from '../bench/results/envelope.ts';
import { COMMON_CLIENT_FLAGS, type Io, type Values } from './command.ts';
import { pinProcess } from '../core/affinity.ts';
import { affinity, seconds, str } from './client-settings.ts';
import { printFooter } from './report-common.ts';
import { addWarnings, nothingMeasured } from '../bench/results/warnings.ts';
import { parseCount } from './units.ts';
import { joinStartBarrier } from './start-barrier.ts';

/** What a client command (stream, rr, crr, msg, conns) plugs into the shared output and --repeat logic. */
export interface ClientCommandSpec<Result extends BenchResult<unknown, Interval, CommonOptionsRecord>, Interval> {
  /**
   * Runs the test; `interrupt` aborts on Ctrl-C/SIGTERM, and the engine then ends early with what it
   * measured. With `startsWhenReady` the engine sets its test up and awaits `beforeTraffic` before the
   * first byte (a start barrier's common instant); without, the run starts once that has passed.
   */
  run(onInterval: (interval: Interval) => void, interrupt: AbortSignal, beforeTraffic: () => Promise<void>): Promise<Result>;
  startsWhenReady?: boolean;
  formatInterval(interval: Interval): string;
  printSummary(io: Io, result: Result): void;
  metric: { name: string; of(result: Result): number; format(value: number): string };
  /** Non-zero when the run itself found a problem (e.g. --verify saw corrupted bytes). */
  exitCode?(result: Result): number;
  /** Why the run measured nothing (no request answered, no byte received), or undefined when it measured something. */
  nothingMeasured(result: Result): string | undefined;
  requestedBuffers: boolean;
  /** UDP sockets: no Nagle, no accepted sockets, no autotuning to speak of. */
  udp?: boolean;
  /** UDP against a server thread model: its port is a socket per thread. */
  serverSocketPerThread?: boolean;
}

const DAY_MS = 24 * 3600 * 1000;
/** Exit status of a run that completed nothing (README: exit codes). */
export const NOTHING_MEASURED_EXIT = 5;

/**
 * --start-at: that Unix time in ms, checked now, and a wait until it for the moment the first byte
 * is due (after the test is set up, where the engine sets up first: its client threads too). A time
 * already past by at most --start-late-tolerance starts at once with a warning; later is refused,
 * because a run that starts late does not measure the seconds the others measure (a client pod
 * scheduled after the rest).
 */
function startAtOf(values: Values, io: Io, human: boolean): { start: ScheduledStart; wait: () => Promise<void> } | undefined {
  const text = str(values, 'start-at');
  const tolerance = seconds(values, 'start-late-tolerance', Number(COMMON_CLIENT_FLAGS['start-late-tolerance']!.default), { zero: true });
  if (text === undefined) {
    if (values['start-late-tolerance'] !== undefined)
      throw new SocktuneError('SOCKTUNE_ERR_USAGE', '--start-late-tolerance goes with --start-at');
    return undefined;
  }
  const startAt = Number(text);
  const wait = startAt - Date.now();
  if (!/^\d+$/.test(text) || Math.abs(wait) > DAY_MS) {
    throw new SocktuneError(
      'SOCKTUNE_ERR_USAGE',
      `--start-at takes a Unix time in milliseconds within a day of now (e.g. $(( $(date +%s%3N) + 5000 ))), got ${JSON.stringify(text)}`,
    );
  }
  const late = (ms: number): string =>
    `--start-at ${startAt} (${new Date(startAt).toISOString()}) was ${(ms / 1000).toFixed(3)} s ago, later than ` +
    `--start-late-tolerance ${tolerance} s: this run would not measure the same seconds as the others`;
  if (-wait > tolerance * 1000)
    throw new SocktuneError('SOCKTUNE_ERR_USAGE', `${late(-wait)}; not starting (give a later --start-at, or a larger tolerance)`);
  if (wait < 0) io.err(`warning: --start-at was ${-wait} ms ago: starting now`);
  else if (human) io.err(`waiting ${(wait / 1000).toFixed(1)} s for --start-at ${new Date(startAt).toISOString()}`);
  let waited = false;
  return {
    start: { startAt },
    wait: async () => {
      if (waited) return;
      waited = true;
      const left = startAt - Date.now();
      if (left > 0) return sleep(left);
      // Setting the test up took the time: said, since merged runs then line up other seconds.
      if (wait >= 0 && -left > tolerance * 1000) io.err(`warning: ${late(-left)} (the test's set-up took that long)`);
    },
  };
}

export async function runClientCommand<Result extends BenchResult<unknown, Interval, CommonOptionsRecord>, Interval>(
  spec: ClientCommandSpec<Result, Interval>,
  values: Values,
  io: Io,
): Promise<number> {
  const ndjson = values.ndjson === true;
  const human = values.json !== true && !ndjson;
  const repeatText = str(values, 'repeat');
  const repetitions = repeatText === undefined ? 1 : parseCount(repeatText, '--repeat', 1, 1000);
  const { client: cpus } = affinity(values);
  if (cpus !== undefined) pinProcess(cpus);
  const interruption = onInterrupt(io);
  try {
    return await runAndReport(spec, values, io, repetitions, ndjson, human, interruption);
  } finally {
    interruption.dispose();
  }
}

/** The exit status of a process ended by a signal, as shells report it. */
const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

/** 130 after Ctrl-C, 143 after SIGTERM, else 0. */
export function exitCodeOf(signal: 'SIGINT' | 'SIGTERM' | undefined): number {
  return signal === undefined ? 0 : SIGNAL_EXIT[signal];
}

interface Interruption {
  signal: AbortSignal;
  /** The signal that arrived, if one did. */
  received(): 'SIGINT' | 'SIGTERM' | undefined;
  dispose(): void;
}

/**
 * The first Ctrl-C (or SIGTERM) ends the test early: the engine tells the server to finish and the
 * summary of what was measured is printed, marked interrupted. A second one exits at once.
 */
export function onInterrupt(io: Io): Interruption {
  const controller = new AbortController();
  let received: 'SIGINT' | 'SIGTERM' | undefined;
  const handler = (signal: 'SIGINT' | 'SIGTERM'): void => {
    if (received !== undefined) process.exit(SIGNAL_EXIT[signal]);
    received = signal;
    io.err(`${signal === 'SIGINT' ? '^C' : 'SIGTERM'}: ending the test and printing what was measured (again to quit at once)`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    received: () => received,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

async function runAndReport<Result extends BenchResult<unknown, Interval, CommonOptionsRecord>, Interval>(
  spec: ClientCommandSpec<Result, Interval>,
  values: Values,
  io: Io,
  repetitions: number,
  ndjson: boolean,
  human: boolean,
  interruption: Interruption,
): Promise<number> {
  let barrier: Awaited<ReturnType<typeof joinStartBarrier>>;
  try {
    barrier = await joinStartBarrier(values, io, interruption.signal);
  } catch (error) {
    // Ctrl-C at the barrier: nothing ran, nothing to print but that.
    if (!interruption.signal.aborted) throw error;
    io.err('interrupted at the start barrier: not starting');
    return exitCodeOf(interruption.received());
  }
  const startAt = barrier === undefined ? startAtOf(values, io, human) : undefined;
  const start = barrier?.start ?? startAt?.start;
  const beforeTraffic = barrier?.untilStart ?? startAt?.wait ?? (() => Promise.resolve());
  const results: Result[] = [];
  for (let run = 1; run <= repetitions && (run === 1 || !interruption.signal.aborted); run++) {
    if (spec.startsWhenReady !== true) await beforeTraffic();
    const result = await spec.run(
      (interval) => {
        if (ndjson) io.out(JSON.stringify({ type: 'interval', run, ...interval }));
        else if (human && !values.quiet) io.err(spec.formatInterval(interval));
      },
      interruption.signal,
      beforeTraffic,
    );
    const emptyHanded = spec.nothingMeasured(result);
    if (emptyHanded !== undefined) addWarnings(result, nothingMeasured(emptyHanded));
    results.push(result);
    if (human && repetitions > 1) io.err(`run ${run}/${repetitions}: ${spec.metric.name} ${spec.metric.format(spec.metric.of(result))}`);
  }
  const metricValues = results.map((result) => spec.metric.of(result));
  const middle = median(metricValues);
  // The run whose metric is nearest the median is the one shown in full.
  const shown = results.reduce((best, result) =>
    Math.abs(spec.metric.of(result) - middle) < Math.abs(spec.metric.of(best) - middle) ? result : best,
  );
  const repeat: Repeat | undefined = results.length > 1 ? repeatOf(spec.metric.name, metricValues) : undefined;
  const signal = interruption.received();
  const exitCode =
    signal !== undefined
      ? exitCodeOf(signal)
      : Math.max(
          ...results.map((result) => (spec.nothingMeasured(result) !== undefined ? NOTHING_MEASURED_EXIT : (spec.exitCode?.(result) ?? 0))),
        );
  if (!human) {
    const document = printedResult(shown, start, repeat);
    io.out(JSON.stringify(ndjson ? { type: 'result', ...document } : document, null, ndjson ? 0 : 2));
    return exitCode;
  }
  spec.printSummary(io, shown);
  const serverCpu = (shown.summary as { serverCpuPercent?: number | null }).serverCpuPercent ?? null;
  const udp = spec.udp === true ? (spec.serverSocketPerThread === true ? 'per-thread' : 'one') : undefined;
  printFooter(io, shown.effective, shown.selfCheck, shown.warnings, serverCpu, spec.requestedBuffers, udp);
  if (repeat) {
    io.out(
      `repeat     ${results.length} runs: ${spec.metric.name} median ` +
        `${spec.metric.format(repeat.median)}, ` +
        describeInterval({ ...repeat.interval, median: repeat.median, samples: results.length }, (value) => spec.metric.format(value)) +
        ` (min ${spec.metric.format(repeat.min)}, max ` +
        `${spec.metric.format(repeat.max)})${results.length < 6 ? '; 6 runs or more reach 95%' : ''}`,
    );
  }
  return exitCode;
}
