import type { ServerOptions } from '../../transport/server-options.ts';
import type { ConnectOptions } from '../../transport/connect.ts';
import { clearlyBetter, type Objective, type Ranked } from './rank.ts';
import { configLabel, DEFAULT_CONFIG, describeBuffer, isDefaultConfig, type TuneConfig } from './space.ts';

export interface Recommendation {
  config: TuneConfig;
  label: string;
  /** 'better': the winner beats the default beyond the noise; 'tie': keep the default. */
  versusDefault: 'better' | 'tie';
  /** Winner's median over the default's, > 1 meaning better. */
  ratioToDefault: number;
  createServer: ServerOptions;
  connect: ConnectOptions;
  cli: string;
  /** Things no socket option expresses, for the application to do (e.g. pipelining). */
  advice: string[];
  sysctl: string[];
}

export function socketOptionsOf(config: TuneConfig): { sendBufferSize?: number; receiveBufferSize?: number; noDelay: boolean } {
  return {
    ...(config.bufferSize === undefined ? {} : { sendBufferSize: config.bufferSize, receiveBufferSize: config.bufferSize }),
    noDelay: config.noDelay,
  };
}

/** How many knobs differ from the default: fewer changes are easier to apply and to trust. */
export function changesFromDefault(config: TuneConfig): number {
  return (Object.keys(DEFAULT_CONFIG) as (keyof TuneConfig)[]).filter((key) => config[key] !== DEFAULT_CONFIG[key]).length;
}

/**
 * The paste-ready result. Among the configs the best does not clearly beat (itself included),
 * the one with the fewest changes from the default wins: the default itself when it is among
 * them, since a win inside the noise is not worth a change.
 */
export function recommend(ranking: Ranked<TuneConfig>[], objective: Objective, workload: 'stream' | 'rr', size: number, conns: number, cappedSysctls: string[]): Recommendation | undefined {
  const best = ranking[0];
  if (!best) return undefined;
  const baseline = ranking.find((entry) => isDefaultConfig(entry.config));
  const contenders = ranking.filter((entry) => entry === best || (entry.verdict === 'tie' && entry.samples.length >= 2));
  const chosen = contenders.reduce((simplest, entry) => (changesFromDefault(entry.config) < changesFromDefault(simplest.config) ? entry : simplest), best);
  const wins = !isDefaultConfig(chosen.config) && (!baseline || clearlyBetter(best, baseline, objective));
  const { config } = chosen;
  const socket = socketOptionsOf(config);
  const flags = [
    `socktune ${workload} -c HOST`,
    workload === 'stream' ? `-l ${describeBuffer(size)} -P ${conns}` : `--size ${size} -C ${conns} --depth ${config.depth}`,
    config.ioModel === 'loop' ? '' : `--io-model ${config.ioModel}`,
    config.bufferSize === undefined ? '' : `-w ${describeBuffer(config.bufferSize)}`,
    config.noDelay ? '' : '--nagle',
  ];
  return {
    config,
    label: configLabel(config, workload),
    versusDefault: wins ? 'better' : 'tie',
    ratioToDefault: chosen.vsBaseline,
    createServer: { ioModel: config.ioModel, ...socket },
    connect: { ...socket },
    cli: flags.filter(Boolean).join(' '),
    advice: config.depth > 1 ? [`keep ${config.depth} requests in flight per connection (pipelining)`] : [],
    sysctl: config.bufferSize === undefined ? [] : cappedSysctls,
  };
}
