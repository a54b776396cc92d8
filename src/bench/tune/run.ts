import { isSocktuneError, type ErrorCode, type SocktuneError } from '../../core/errors.ts';
import type { Environment } from '../results/environment.ts';
import { collectEnvironment } from '../results/environment.ts';
import type { ServerTarget } from '../control/remote-test.ts';
import type { IoModel } from '../../transport/server/options.ts';
import { RESULT_SCHEMA, type MsgInterval, type RrInterval, type StreamInterval } from '../results/result.ts';
import { runRr } from '../engines/rr.ts';
import { round } from '../results/stats.ts';
import { runStream } from '../engines/stream.ts';
import { runMsg } from '../engines/msg.ts';
import { higherIsBetter, OBJECTIVE_UNITS, rank, type Objective, type Ranked } from './rank.ts';
import { recommend, socketOptionsOf, type Recommendation } from './recommend.ts';
import { interrupted as interruptedWarning, trialsFailed, trialsSaturated, warningFields, type Warning } from '../results/warnings.ts';
import { configLabel, isDefaultConfig, searchSpace, type TuneConfig, type Workload } from './space.ts';

export type { Workload };

/** One workload to tune: every size × conns pair is a scenario with a ranking of its own. */
export interface TunePlan {
  workload: Workload;
  objective: Objective;
  /** stream: bytes per write; rr: request bytes; msg: message payload bytes. */
  sizes: number[];
  conns: number[];
}

export interface TuneOptions {
  target: ServerTarget;
  /** How the target was reached, for the report ('embedded loopback server' or host:port). */
  targetLabel: string;
  /** How client and server were kept apart on the CPUs ('client CPUs 0, server CPUs 1'), or why not. */
  pinning: string;
  /** What was asked: one workload, or 'mixed' for several plans. */
  workload: Workload | 'mixed';
  /** The target is any echo-like service, not a socktune server: only the client side is tuned. */
  raw: boolean;
  plans: TunePlan[];
  quick: boolean;
  /** --io-model: only these models are swept (loop, the default, always is). */
  ioModels?: readonly IoModel[] | undefined;
  /** -w: only these buffer sizes are swept, undefined for autotuning (always swept, as the default). */
  bufferSizes?: readonly (number | undefined)[] | undefined;
  budgetSec: number;
  trialSec: number;
  /**
   * How stream trials send: sendfile from a page-cache file (stream -Z), so that on loopback the
   * client costs less than the server it measures, or writes from a buffer. @default 'sendfile'
   */
  streamSender?: 'sendfile' | 'write' | undefined;
  onProgress?: (progress: TuneProgress) => void;
  /** Ctrl-C: the trial under way finishes, no other starts; the result ranks what was measured, marked `interrupted`. */
  interrupt?: AbortSignal | undefined;
}

export interface TuneProgress {
  done: number;
  total: number;
  etaSec: number;
  scenario: string;
  label: string;
}

export interface Trial {
  label: string;
  config: TuneConfig;
  round: number;
  metric: number | null;
  error?: string;
  clientSaturated: boolean;
  warnings: string[];
  warningDetails: Warning[];
  intervals: (StreamInterval | RrInterval | MsgInterval)[];
  percentileCurve?: { percentile: number; us: number }[];
}

interface Scenario {
  workload: Workload;
  objective: Objective;
  size: number;
  conns: number;
}

export interface ScenarioResult extends Scenario {
  objectiveUnit: string;
  ranking: (Omit<Ranked<TuneConfig>, 'samples'> & {
    label: string;
    samples: number[];
    clientSaturated: boolean;
    capped: boolean;
    lastRound: number;
  })[];
  recommendation: Recommendation | null;
  trials: Trial[];
}

/** The public settings of a sweep; the target itself (and its auth token) is only named, by targetLabel. */
export type TuneOptionsRecord = Pick<
  TuneOptions,
  | 'targetLabel'
  | 'pinning'
  | 'workload'
  | 'raw'
  | 'plans'
  | 'quick'
  | 'ioModels'
  | 'bufferSizes'
  | 'budgetSec'
  | 'trialSec'
  | 'streamSender'
>;

function tuneOptionsRecord(options: TuneOptions): TuneOptionsRecord {
  return {
    targetLabel: options.targetLabel,
    pinning: options.pinning,
    workload: options.workload,
    raw: options.raw,
    plans: options.plans,
    quick: options.quick,
    ...(options.ioModels === undefined ? {} : { ioModels: options.ioModels }),
    ...(options.bufferSizes === undefined ? {} : { bufferSizes: options.bufferSizes }),
    budgetSec: options.budgetSec,
    trialSec: options.trialSec,
    ...(options.plans.some((plan) => plan.workload === 'stream') ? { streamSender: streamSenderOf(options) } : {}),
  };
}

function streamSenderOf(options: TuneOptions): 'sendfile' | 'write' {
  return options.streamSender ?? 'sendfile';
}

export interface TuneResult {
  schema: typeof RESULT_SCHEMA;
  command: 'tune';
  startedAt: string;
  durationSec: number;
  environment: { client: Environment; server: Environment | null };
  options: TuneOptionsRecord;
  scenarios: ScenarioResult[];
  /** Present (true) when Ctrl-C or SIGTERM ended the sweep early. */
  interrupted?: true;
  warnings: string[];
  warningDetails: Warning[];
}

/** Rounds of successive halving: repetitions per survivor in each round; the default config always survives. */
const QUICK_ROUNDS = [1, 1, 2, 2];
const FULL_MAX_REPETITIONS = 5;
/** Samples at most of a close contender while the full mode tries to separate it from the best. */
const CONTENDER_MAX_SAMPLES = 12;
/** Seconds each trial spends on setup besides its measured time (test server start, connections, drain). */
const TRIAL_OVERHEAD_SEC = 0.25;
/** Failures that say no socktune server can be reached or used there: the sweep stops at once with them. */
const UNREACHABLE: ReadonlySet<ErrorCode> = new Set([
  'SOCKTUNE_ERR_REFUSED',
  'SOCKTUNE_ERR_RESOLVE',
  'SOCKTUNE_ERR_TIMEOUT',
  'SOCKTUNE_ERR_AUTH',
  'SOCKTUNE_ERR_PEER_GONE',
  'SOCKTUNE_ERR_PROTOCOL',
]);

interface Search {
  configs: TuneConfig[];
  samples: Map<TuneConfig, number[]>;
  trials: Trial[];
}

export async function runTune(options: TuneOptions): Promise<TuneResult> {
  const started = Date.now();
  const scenarios: Scenario[] = options.plans.flatMap((plan) =>
    plan.sizes.flatMap((size) => plan.conns.map((conns) => ({ workload: plan.workload, objective: plan.objective, size, conns }))),
  );
  const plannedFor = (scenario: Scenario): number => {
    const configCount = searchSpace({ ...options, workload: scenario.workload }).length;
    if (options.quick) return plannedQuickTrials(configCount, 0);
    return Math.max(configCount, Math.floor(options.budgetSec / (options.trialSec + TRIAL_OVERHEAD_SEC) / scenarios.length));
  };
  let total = scenarios.reduce((sum, scenario) => sum + plannedFor(scenario), 0);
  let done = 0;
  let serverEnvironment: Environment | null = null;
  const results: ScenarioResult[] = [];

  for (const [index, scenario] of scenarios.entries()) {
    const configs = searchSpace({ ...options, workload: scenario.workload });
    const scenarioLabel = `${scenario.workload} ${scenario.size} B × ${scenario.conns} conns`;
    const search: Search = { configs, samples: new Map(configs.map((config) => [config, []])), trials: [] };
    if (options.interrupt?.aborted) break;
    const runOne = async (config: TuneConfig, roundNumber: number): Promise<void> => {
      if (options.interrupt?.aborted) return;
      const label = configLabel(config, scenario.workload, options.raw);
      const elapsed = (Date.now() - started) / 1000;
      options.onProgress?.({
        done,
        total,
        etaSec: done === 0 ? total * (options.trialSec + TRIAL_OVERHEAD_SEC) : (elapsed / done) * (total - done),
        scenario: scenarioLabel,
        label,
      });
      const trial = await runTrial(options, scenario, config, roundNumber);
      // The first trial is the default configuration: if even it cannot reach a server, no other will.
      if (done === 0 && trial.failure !== undefined && UNREACHABLE.has(trial.failure.code)) throw trial.failure;
      serverEnvironment ??= trial.serverEnvironment;
      search.trials.push(trial.trial);
      if (trial.trial.metric !== null) search.samples.get(config)!.push(trial.trial.metric);
      done++;
    };
    const laterScenarios = scenarios.slice(index + 1).reduce((sum, later) => sum + plannedFor(later), 0);
    // Halving keeps the default config too, so the exact count is known only round by round.
    const replan = (remainingInScenario: number): void => {
      total = done + remainingInScenario + laterScenarios;
    };
    if (options.quick) await successiveHalving(search, scenario, runOne, replan);
    else {
      await fullGrid(search, scenario, options, runOne, scenarios.length);
      replan(0);
    }
    results.push(summarizeScenario(search, scenario, options.raw, streamSenderOf(options) === 'sendfile'));
  }
  options.onProgress?.({ done, total: done, etaSec: 0, scenario: '', label: 'done' });
  const saturatedTrials = results.flatMap((s) => s.trials).filter((t) => t.clientSaturated);
  const throttled = saturatedTrials.filter((t) =>
    t.warningDetails.some((warning) => warning.kind === 'client-saturated' && warning.trigger === 'throttled'),
  ).length;
  const failed = results.flatMap((s) => s.trials).filter((t) => t.error !== undefined);
  const interrupted = options.interrupt?.aborted === true;
  return {
    schema: RESULT_SCHEMA,
    command: 'tune',
    startedAt: new Date(started).toISOString(),
    durationSec: round((Date.now() - started) / 1000, 1),
    environment: { client: collectEnvironment(), server: serverEnvironment },
    options: tuneOptionsRecord(options),
    scenarios: results,
    ...(interrupted ? { interrupted: true as const } : {}),
    ...warningFields([
      ...(interrupted ? [interruptedWarning(done)] : []),
      ...(saturatedTrials.length > 0 ? [trialsSaturated(saturatedTrials.length, throttled)] : []),
      ...(failed.length > 0 ? [trialsFailed(failed.length, [...new Set(failed.map((t) => t.error!))])] : []),
    ]),
  };
}

/** Trials left from round `fromRound` on with `survivors` configs, counting the kept default as an extra survivor (an upper bound). */
export function plannedQuickTrials(survivors: number, fromRound: number): number {
  let trials = 0;
  for (const repetitions of QUICK_ROUNDS.slice(fromRound)) {
    trials += survivors * repetitions;
    survivors = Math.ceil(survivors / 2) + 1;
  }
  return trials;
}

async function successiveHalving(
  search: Search,
  scenario: Scenario,
  runOne: (config: TuneConfig, round: number) => Promise<void>,
  replan: (remaining: number) => void,
): Promise<void> {
  const isDefault = (config: TuneConfig): boolean => isDefaultConfig(config, scenario.workload);
  let survivors = search.configs;
  for (const [index, repetitions] of QUICK_ROUNDS.entries()) {
    replan(survivors.length * repetitions + plannedQuickTrials(Math.ceil(survivors.length / 2) + 1, index + 1));
    // Interleaved: A B C A B C, so slow drift of the machine hits every config alike.
    for (let r = 0; r < repetitions; r++) for (const config of survivors) await runOne(config, index + 1);
    const keep = Math.max(1, Math.ceil(survivors.length / 2));
    let ranked = rank(
      survivors.map((config) => ({ config, samples: search.samples.get(config)! })),
      scenario.objective,
      isDefault,
    );
    // No config is dropped on one run: a slow trial (a neighbour's burst, a pause) gets a second look,
    // and the cut is made on each config's best run, so only configs slow every time are dropped.
    // Each config gets at most one second look, so this ends.
    const bestRun = higherIsBetter(scenario.objective) ? Math.max : Math.min;
    const looked = new Set<TuneConfig>();
    for (let onOneRun = ranked.slice(keep).filter((entry) => entry.samples.length < 2); onOneRun.length > 0;) {
      replan(onOneRun.length + plannedQuickTrials(Math.ceil(survivors.length / 2) + 1, index + 1));
      for (const entry of onOneRun) {
        looked.add(entry.config);
        await runOne(entry.config, index + 1);
      }
      ranked = rank(
        survivors.map((config) => {
          const samples = search.samples.get(config)!;
          return { config, samples: samples.length === 0 ? [] : [bestRun(...samples)] };
        }),
        scenario.objective,
        isDefault,
      );
      onOneRun = ranked.slice(keep).filter((entry) => search.samples.get(entry.config)!.length < 2 && !looked.has(entry.config));
    }
    const next = ranked.slice(0, keep).map((entry) => entry.config);
    const fallback = survivors.find(isDefault);
    if (fallback && !next.includes(fallback)) next.push(fallback);
    survivors = next;
  }
}

/**
 * Every config, round after round while the budget allows; then, with what is left of it, more
 * runs of the best and of the configs it does not clearly beat (their confidence intervals
 * overlap), interleaved, until the intervals separate or the contenders have CONTENDER_MAX_SAMPLES.
 */
async function fullGrid(
  search: Search,
  scenario: Scenario,
  options: TuneOptions,
  runOne: (config: TuneConfig, round: number) => Promise<void>,
  scenarioCount: number,
): Promise<void> {
  const budgetPerScenarioSec = options.budgetSec / scenarioCount;
  const scenarioStart = Date.now();
  const spentSec = (): number => (Date.now() - scenarioStart) / 1000;
  const trialCostSec = (): number =>
    search.trials.length === 0 ? options.trialSec + TRIAL_OVERHEAD_SEC : spentSec() / search.trials.length;
  let round = 1;
  for (; round <= FULL_MAX_REPETITIONS; round++) {
    if (round > 1 && spentSec() + search.configs.length * trialCostSec() > budgetPerScenarioSec) break;
    for (const config of search.configs) await runOne(config, round);
  }
  const isDefault = (config: TuneConfig): boolean => isDefaultConfig(config, scenario.workload);
  for (; ; round++) {
    const ranked = rank(
      search.configs.map((config) => ({ config, samples: search.samples.get(config)! })),
      scenario.objective,
      isDefault,
    );
    const contenders = ranked
      .filter((entry) => entry.standing !== 'worse' && entry.samples.length < CONTENDER_MAX_SAMPLES)
      .map((entry) => entry.config);
    if (contenders.length < 2 || spentSec() + contenders.length * trialCostSec() > budgetPerScenarioSec || options.interrupt?.aborted)
      return;
    for (const config of contenders) await runOne(config, round);
  }
}

async function runTrial(
  options: TuneOptions,
  scenario: Scenario,
  config: TuneConfig,
  roundNumber: number,
): Promise<{ trial: Trial; serverEnvironment: Environment | null; failure?: SocktuneError }> {
  const socket = socketOptionsOf(config);
  const server = { ioModel: config.ioModel, ...socket };
  const common = {
    target: options.target,
    raw: options.raw,
    durationSec: options.trialSec,
    omitSec: Math.min(0.25, options.trialSec / 4),
    client: socket,
    server,
    intervalSec: Math.max(0.02, options.trialSec / 5),
  };
  const label = configLabel(config, scenario.workload, options.raw);
  // A run that reached the server but completed no request in its window (a busy machine, a short
  // trial) has no p99: the trial counts as failed, but it says nothing about reaching the server.
  const trial = (
    metric: number | null,
    result: { clientSaturated: boolean; warnings: string[]; warningDetails: Warning[]; intervals: Trial['intervals'] },
    percentiles?: Trial['percentileCurve'],
  ): Trial => ({
    label,
    config,
    round: roundNumber,
    metric,
    ...(metric === null ? { error: `SOCKTUNE_ERR_TIMEOUT: nothing was measured for ${label}: no request completed` } : {}),
    clientSaturated: result.clientSaturated,
    ...warningFields(result.warningDetails),
    intervals: result.intervals,
    ...(percentiles ? { percentileCurve: percentiles } : {}),
  });
  try {
    if (scenario.workload === 'stream') {
      const result = await runStream({
        ...common,
        writeSize: scenario.size,
        parallel: scenario.conns,
        direction: 'forward',
        verify: false,
        zeroCopy: streamSenderOf(options) === 'sendfile',
      });
      return { trial: trial(result.summary.bitsPerSecond, result), serverEnvironment: result.environment.server };
    }
    if (scenario.workload === 'msg') {
      const result = await runMsg({
        ...common,
        size: scenario.size,
        connections: scenario.conns,
        mode: 'echo',
        batch: config.batch,
        depth: config.depth,
      });
      const metric = scenario.objective === 'p99' ? result.summary.latency!.p99Us : result.summary.messagesPerSecond;
      return { trial: trial(metric, result, result.summary.percentileCurve), serverEnvironment: result.environment.server };
    }
    const result = await runRr({ ...common, size: scenario.size, connections: scenario.conns, depth: config.depth });
    const metric = scenario.objective === 'p99' ? result.summary.latency.p99Us : result.summary.requestsPerSecond;
    return { trial: trial(metric, result, result.summary.percentileCurve), serverEnvironment: result.environment.server };
  } catch (error) {
    if (!isSocktuneError(error)) throw error;
    return {
      failure: error,
      trial: {
        label,
        config,
        round: roundNumber,
        metric: null,
        error: `${error.code}: ${error.message}`,
        clientSaturated: false,
        ...warningFields([]),
        intervals: [],
      },
      serverEnvironment: null,
    };
  }
}

function summarizeScenario(search: Search, scenario: Scenario, raw: boolean, zeroCopy: boolean): ScenarioResult {
  const isDefault = (config: TuneConfig): boolean => isDefaultConfig(config, scenario.workload);
  const ranked = rank(
    search.configs.map((config) => ({ config, samples: search.samples.get(config)! })),
    scenario.objective,
    isDefault,
  );
  const trialsOf = (config: TuneConfig): Trial[] => search.trials.filter((trial) => trial.config === config);
  const sysctlsOf = (config: TuneConfig): string[] =>
    trialsOf(config)
      .flatMap((trial) => trial.warningDetails)
      .flatMap((warning) => (warning.kind === 'buffer-capped' ? [`sysctl -w ${warning.sysctl}=${warning.requested}`] : []));
  const ranking = ranked.map((entry) => ({
    ...entry,
    label: configLabel(entry.config, scenario.workload, raw),
    clientSaturated: trialsOf(entry.config).some((trial) => trial.clientSaturated),
    capped: sysctlsOf(entry.config).length > 0,
    lastRound: Math.max(...trialsOf(entry.config).map((trial) => trial.round)),
  }));
  const best = ranking[0];
  const recommendation = best
    ? (recommend(
        ranked,
        scenario.objective,
        scenario.workload,
        scenario.size,
        scenario.conns,
        [...new Set(sysctlsOf(best.config))],
        raw,
        zeroCopy,
      ) ?? null)
    : null;
  return { ...scenario, objectiveUnit: OBJECTIVE_UNITS[scenario.objective], ranking, recommendation, trials: search.trials };
}
